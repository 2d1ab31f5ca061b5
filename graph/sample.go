package graph

import (
	"context"
	"fmt"
	"time"

	"github.com/evidence-parity/docket/domain"
	"github.com/evidence-parity/docket/graph/model"
	"github.com/evidence-parity/docket/projections"
)

// maxSample bounds a sample's size, as the portal does.
const maxSample = 1000

func (r *Resolver) sample(ctx context.Context, from, to time.Time, size *int, seed string) (*model.Sample, error) {
	n := 25
	if size != nil {
		n = *size
	}
	if n < 1 || n > maxSample {
		return nil, fmt.Errorf("%w: size must be 1..%d", domain.ErrInvalidInput, maxSample)
	}
	if seed == "" || len(seed) > 200 {
		return nil, fmt.Errorf("%w: a seed is 1 to 200 characters", domain.ErrInvalidInput)
	}
	pop, err := r.Projections.Population(ctx, from, to)
	if err != nil {
		return nil, err
	}
	views, err := r.Projections.Changes(ctx, projections.Sample(pop, seed, n))
	if err != nil {
		return nil, err
	}
	out := &model.Sample{Seed: seed, Size: n, PopulationSize: len(pop), Changes: views}
	if note, found, err := r.Prover.LatestCheckpoint(ctx); err != nil {
		return nil, err
	} else if found {
		if out.Checkpoint, err = checkpointOf(note); err != nil {
			return nil, err
		}
	}
	return out, nil
}
