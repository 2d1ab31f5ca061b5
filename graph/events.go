package graph

import (
	"context"
	"log/slog"

	"github.com/evidence-parity/docket/graph/model"
)

// events streams ledger events appended from now on, optionally only one
// change's, until the subscriber goes away.
func (r *Resolver) events(ctx context.Context, changeID *string) (<-chan *model.LedgerEvent, error) {
	size, _, err := r.Prover.Head(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan *model.LedgerEvent, 64)
	go func() {
		defer close(out)
		for rec, err := range r.Log.Subscribe(ctx, size) {
			if err != nil {
				if ctx.Err() == nil {
					slog.Default().Error("events subscription", "err", err)
				}
				return
			}
			e := rec.Event
			if changeID != nil && e.Correlation != *changeID {
				continue
			}
			ev := &model.LedgerEvent{ID: e.ID, Position: int(rec.Position), Stream: e.Stream, Revision: int(e.Revision), Type: e.Type,
				Time: e.Time, ActorKind: e.Actor.Kind, ActorID: e.Actor.ID, Data: string(e.Data)}
			if e.Correlation != "" {
				c := e.Correlation
				ev.ChangeID = &c
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
