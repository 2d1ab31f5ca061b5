package projections

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/evidence-parity/docket/domain"
	"github.com/evidence-parity/docket/domain/answers"
)

// Sample draws a reproducible sample: see answers.Sample, which the
// portal, the GraphQL API and the evidence binder all use.
func Sample(population []string, seed string, n int) []string {
	return answers.Sample(population, seed, n)
}

// Population returns the ids of the changes promoted in [from, to), sorted.
func (p *Projector) Population(ctx context.Context, from, to time.Time) ([]string, error) {
	if !from.Before(to) {
		return nil, fmt.Errorf("%w: the period's start must be before its end", domain.ErrInvalidInput)
	}
	rows, err := p.db.QueryContext(ctx, `SELECT id FROM changes WHERE promoted_at >= ? AND promoted_at < ? ORDER BY id`,
		from.UTC().Format(sortableTime), to.UTC().Format(sortableTime))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// Changes returns the views of the given ids, in the order given; ids
// without a change are skipped.
func (p *Projector) Changes(ctx context.Context, ids []string) ([]*ChangeView, error) {
	out := make([]*ChangeView, 0, len(ids))
	for _, id := range ids {
		v, err := p.Change(ctx, id)
		if err != nil {
			return nil, err
		}
		if v != nil {
			out = append(out, v)
		}
	}
	return out, nil
}

// Summary is the overview of a period's population.
type Summary struct {
	Promoted, RolledBack, Emergency, WithDeviation int
	// RubberStamp are the population's approvals flagged as rubber-stamp
	// risk.
	RubberStamp []*ChangeView
}

// Summarize counts the changes promoted in [from, to): all, those since
// rolled back, emergency changes and changes with a deviation.
func (p *Projector) Summarize(ctx context.Context, from, to time.Time) (Summary, error) {
	var s Summary
	err := p.eachView(ctx, from, to, func(v *ChangeView) {
		s.Promoted++
		if v.Status == "rolled-back" {
			s.RolledBack++
		}
		if v.Plan.Emergency {
			s.Emergency++
		}
		if v.OutOfScope > 0 {
			s.WithDeviation++
		}
		if v.Review != nil && v.Review.RubberStamp {
			s.RubberStamp = append(s.RubberStamp, v)
		}
	})
	return s, err
}

// ApproverStats is one approver's record over a period.
type ApproverStats struct {
	Approver  string
	Approvals int
	// MedianDwell is the median seconds from first view to decision.
	MedianDwell float64
	Flagged     int
}

// FlaggedShare is the share of approvals flagged as rubber-stamp risk.
func (a ApproverStats) FlaggedShare() float64 {
	if a.Approvals == 0 {
		return 0
	}
	return float64(a.Flagged) / float64(a.Approvals)
}

// Approvers computes each approver's metrics over the changes promoted in
// [from, to), by approver id.
func (p *Projector) Approvers(ctx context.Context, from, to time.Time) ([]ApproverStats, error) {
	dwell := map[string][]float64{}
	flagged := map[string]int{}
	err := p.eachView(ctx, from, to, func(v *ChangeView) {
		if v.Approver == "" || v.Review == nil {
			return
		}
		dwell[v.Approver] = append(dwell[v.Approver], v.Review.DwellSeconds)
		if v.Review.RubberStamp {
			flagged[v.Approver]++
		}
	})
	if err != nil {
		return nil, err
	}
	var out []ApproverStats
	for _, a := range slices.Sorted(maps.Keys(dwell)) {
		ds := dwell[a]
		slices.Sort(ds)
		med := ds[len(ds)/2]
		if len(ds)%2 == 0 {
			med = (ds[len(ds)/2-1] + ds[len(ds)/2]) / 2
		}
		out = append(out, ApproverStats{Approver: a, Approvals: len(ds), MedianDwell: med, Flagged: flagged[a]})
	}
	return out, nil
}

func (p *Projector) eachView(ctx context.Context, from, to time.Time, f func(*ChangeView)) error {
	rows, err := p.db.QueryContext(ctx, `SELECT view FROM changes WHERE promoted_at >= ? AND promoted_at < ?`,
		from.UTC().Format(sortableTime), to.UTC().Format(sortableTime))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return err
		}
		var v ChangeView
		if err := json.Unmarshal(raw, &v); err != nil {
			return err
		}
		f(&v)
	}
	return rows.Err()
}

// Queue returns the changes awaiting a decision (submitted, not yet
// approved or rejected), oldest first.
func (p *Projector) Queue(ctx context.Context) ([]*ChangeView, error) {
	var out []*ChangeView
	for v, err := range p.views(ctx, `SELECT view FROM changes WHERE status = 'submitted' ORDER BY submitted_at, id`) {
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
