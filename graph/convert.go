package graph

import (
	"context"
	"fmt"

	"github.com/evidence-parity/docket/domain"
	"github.com/evidence-parity/docket/graph/model"
	"github.com/evidence-parity/docket/projections"
)

// scope is a list of scope rules as the domain takes it.
func scope(rules []*domain.Rule) domain.Scope {
	var s domain.Scope
	for _, r := range rules {
		s = append(s, *r)
	}
	return s
}

func planFrom(in model.PlanInput) domain.Plan {
	p := domain.Plan{Objective: in.Objective, Method: in.Method, Scope: scope(in.Scope), TestApproach: in.TestApproach, BackoutPath: in.BackoutPath, Environment: in.Environment}
	if in.Risk != nil {
		p.Risk = *in.Risk
	}
	if in.Emergency != nil {
		p.Emergency = *in.Emergency
	}
	return p
}

// orNull is a nullable string field's value: null for an empty string.
func orNull(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// view reads a change's view straight from its stream, so a mutation's
// answer reflects its own write.
func (r *Resolver) view(ctx context.Context, id string) (*projections.ChangeView, error) {
	recs, err := r.Log.ReadStream(ctx, domain.ChangeStream(id), 0)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%w: no change %s", domain.ErrNotFound, id)
	}
	return projections.BuildChangeView(recs)
}
