package graph

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/evidence-parity/docket/domain"

	"github.com/evidence-parity/docket/graph/model"
)

// recheckEvery is how often a streaming subscription checks its caller
// again: a revoked token, a retired agent or a principal left with no role
// stops receiving within this long of the next event.
const recheckEvery = time.Second

// events streams ledger events appended from now on, optionally only one
// change's, until the subscriber goes away or may no longer read them.
func (r *Resolver) events(ctx context.Context, changeID *string) (<-chan *model.LedgerEvent, error) {
	size, _, err := r.Prover.Head(ctx)
	if err != nil {
		return nil, err
	}
	header, streaming := ctx.Value(streamAuthKey{}).(string)
	checked := time.Now()
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
			if streaming && time.Since(checked) >= recheckEvery {
				switch err := r.reauthorize(ctx, header); {
				case errors.Is(err, domain.ErrUnauthenticated) || errors.Is(err, domain.ErrForbidden):
					slog.Default().Info("events subscription ended: its caller may no longer read", "err", err)
					return
				case err != nil:
					// Not an answer about the caller (the ledger, the
					// identity provider): checked again at the next event.
					slog.Default().Warn("events subscription: checking its caller again failed", "err", err)
				default:
					checked = time.Now()
				}
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
