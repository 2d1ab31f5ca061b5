package graph

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/evidence-parity/docket/domain"
	"github.com/evidence-parity/docket/graph/model"
	"github.com/evidence-parity/docket/ledger"
)

// Prover is what the integrity queries need from the ledger (the embedded
// store provides it). Lookup fails with ledger.ErrNoEvent for an unknown id.
type Prover interface {
	Lookup(ctx context.Context, id string) (ledger.Record, error)
	LatestCheckpoint(ctx context.Context) ([]byte, bool, error)
	InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error)
	// RecentCheckpoints returns the n latest checkpoints' notes, latest
	// first.
	RecentCheckpoints(ctx context.Context, n int) ([][]byte, error)
	Head(ctx context.Context) (size uint64, root []byte, err error)
}

func checkpointOf(note []byte) (*model.Checkpoint, error) {
	cp, err := ledger.CheckpointBody(note)
	if err != nil {
		return nil, err
	}
	return &model.Checkpoint{Size: int(cp.Size), Root: base64.StdEncoding.EncodeToString(cp.Root), Note: string(note)}, nil
}

func (r *Resolver) proof(ctx context.Context, eventID string) (*model.Proof, error) {
	rec, err := r.Prover.Lookup(ctx, eventID)
	if errors.Is(err, ledger.ErrNoEvent) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	note, found, err := r.Prover.LatestCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("%w: no checkpoint signed yet", domain.ErrNotFound)
	}
	cp, err := checkpointOf(note)
	if err != nil {
		return nil, err
	}
	if rec.Position >= uint64(cp.Size) {
		return nil, fmt.Errorf("%w: event %s is newer than the latest checkpoint (size %d); checkpoints follow within a second", domain.ErrNotFound, eventID, cp.Size)
	}
	hashes, err := r.Prover.InclusionProof(ctx, rec.Position, uint64(cp.Size))
	if err != nil {
		return nil, err
	}
	out := &model.Proof{EventID: eventID, Position: int(rec.Position), Canonical: string(rec.Canonical),
		LeafHash: hex.EncodeToString(rec.LeafHash()), Checkpoint: cp, Hashes: []string{}}
	for _, h := range hashes {
		out.Hashes = append(out.Hashes, base64.StdEncoding.EncodeToString(h))
	}
	return out, nil
}

func (r *Resolver) checkpoints(ctx context.Context, last *int) ([]*model.Checkpoint, error) {
	n := 10
	if last != nil {
		n = *last
	}
	if n < 1 || n > 1000 {
		return nil, fmt.Errorf("%w: last must be 1..1000", domain.ErrInvalidInput)
	}
	notes, err := r.Prover.RecentCheckpoints(ctx, n)
	if err != nil {
		return nil, err
	}
	out := []*model.Checkpoint{}
	for _, note := range notes {
		cp, err := checkpointOf(note)
		if err != nil {
			return nil, err
		}
		out = append(out, cp)
	}
	return out, nil
}
