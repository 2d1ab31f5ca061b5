package evidence

import (
	"fmt"
	"time"

	"github.com/evidence-parity/docket/domain"
	"github.com/evidence-parity/docket/domain/answers"
	"github.com/evidence-parity/docket/ledger"
)

// changeDoc is one change of a binder as the PDF presents it: the events
// decoded from the bundle and the view recomputed from them. The answers
// the PDF prints are the bundle's stated ones; the view supplies the facts
// around them (plan, sessions, exceptions) and the attributes' details.
type changeDoc struct {
	Change
	recs    []answers.Decoded
	entries []entry
	view    *answers.ChangeView
	// err says why the events could not be decoded or folded, if they
	// could not; the PDF then prints the stated answers alone.
	err error
	// differs lists where the stated answers differ from the recomputed
	// ones (only for a bundle that would fail verification).
	differs []string
	// positions maps event ids to log positions, for citations.
	positions map[string]uint64
}

// decodeChange decodes a bundled change's events and recomputes its view.
func decodeChange(c Change) *changeDoc {
	d := &changeDoc{Change: c, positions: map[string]uint64{}}
	recs := make([]ledger.Record, 0, len(c.Events))
	for _, e := range c.Events {
		ev, err := ledger.Decode(e.Canonical)
		if err != nil {
			d.err = fmt.Errorf("event at position %d does not decode: %w", e.Position, err)
			return d
		}
		recs = append(recs, ledger.Record{Position: e.Position, Event: ev, Canonical: e.Canonical})
		d.positions[ev.ID] = e.Position
	}
	d.recs = answers.Decode(recs)
	for _, r := range d.recs {
		d.entries = append(d.entries, entryOf(r))
	}
	v, err := answers.BuildDecoded(d.recs)
	if err != nil {
		d.err = err
		return d
	}
	d.view = v
	d.differs = diffStated(c.Stated, StatedOf(v))
	return d
}

// eventsOf returns the change's domain events of type T, in log order.
func eventsOf[T domain.Event](d *changeDoc) []T {
	var out []T
	for _, r := range d.recs {
		if e, ok := r.Domain.(T); ok {
			out = append(out, e)
		}
	}
	return out
}

// entry is one event of a change's timeline.
type entry struct {
	Position uint64
	Type     string
	Time     time.Time
	Actor    string
	// Summary is one line; Lines are details (verdicts, checks).
	Summary string
	Lines   []string
	// Bad marks deviations, refusals, failed gates and revocations.
	Bad bool
}

func entryOf(r answers.Decoded) entry {
	x := r.Event
	e := entry{Position: r.Position, Type: x.Type, Time: x.Time, Actor: x.Actor.Kind + ":" + x.Actor.ID}
	if r.Err != nil {
		e.Summary, e.Bad = "undecodable event: "+r.Err.Error(), true
		return e
	}
	dd := answers.Describe(r.Domain)
	e.Summary, e.Lines, e.Bad = dd.Summary, dd.Lines, dd.Bad
	if dd.Evidence != "" {
		e.Lines = append(e.Lines, "sha256 "+dd.Evidence)
	}
	return e
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
