package evidence

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/evidence-parity/docket/domain"
	"github.com/evidence-parity/docket/domain/answers"
	"github.com/evidence-parity/docket/ledger"
)

// Source is what exporting a binder reads from a ledger.
type Source interface {
	ReadStream(ctx context.Context, stream string, from uint64) ([]ledger.Record, error)
	LatestCheckpoint(ctx context.Context) (note []byte, found bool, err error)
	InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error)
	ConsistencyProof(ctx context.Context, size1, size2 uint64) ([][]byte, error)
	// Keys returns the checkpoint signing keys by fingerprint (SPKI DER).
	Keys(ctx context.Context) (map[string][]byte, error)
}

// AnchorFile is an anchored checkpoint as the anchoring loop keeps it.
type AnchorFile struct {
	Note []byte
	OTS  []byte
}

// Request says what to export.
type Request struct {
	Sample SampleDef
	// Anchors are the anchored checkpoints known to the exporter; those
	// larger than the binder checkpoint are left out.
	Anchors []AnchorFile
	// BitcoinHeaders, if known, let an auditor verify the anchors offline.
	BitcoinHeaders []string
	// Now is the export time (default time.Now).
	Now func() time.Time
	// Progress, if set, is told after each change.
	Progress func(done, total int)
}

// ErrNoCheckpoint is returned when the ledger has no signed checkpoint.
var ErrNoCheckpoint = errors.New("the ledger has no signed checkpoint yet")

// Build assembles the bundle for req.Sample.Selected from src: the binder
// checkpoint is the latest signed one, and each change's stream is taken up
// to it.
func Build(ctx context.Context, src Source, req Request) (*Bundle, error) {
	now := time.Now
	if req.Now != nil {
		now = req.Now
	}
	note, found, err := src.LatestCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, ErrNoCheckpoint
	}
	cp, err := ledger.CheckpointBody(note)
	if err != nil {
		return nil, err
	}
	b := &Bundle{Format: Format, Version: Version, CreatedAt: now().UTC(), Origin: cp.Origin, Checkpoint: string(note),
		Sample: req.Sample, BitcoinHeaders: req.BitcoinHeaders}
	b.Sample.CheckpointSize = cp.Size
	keys, err := src.Keys(ctx)
	if err != nil {
		return nil, err
	}
	for _, fp := range slices.Sorted(maps.Keys(keys)) {
		b.Keys = append(b.Keys, Key{Fingerprint: fp, SPKI: keys[fp]})
	}
	for i, id := range req.Sample.Selected {
		c, err := buildChange(ctx, src, id, cp.Size)
		if err != nil {
			return nil, fmt.Errorf("change %s: %w", id, err)
		}
		b.Changes = append(b.Changes, c)
		if req.Progress != nil {
			req.Progress(i+1, len(req.Sample.Selected))
		}
	}
	for _, a := range req.Anchors {
		acp, err := ledger.CheckpointBody(a.Note)
		if err != nil || acp.Size > cp.Size || acp.Origin != cp.Origin {
			continue
		}
		proof, err := src.ConsistencyProof(ctx, acp.Size, cp.Size)
		if err != nil {
			return nil, fmt.Errorf("anchor at %d: %w", acp.Size, err)
		}
		b.Anchors = append(b.Anchors, Anchor{Note: string(a.Note), Consistency: proof, OTS: a.OTS})
	}
	return b, nil
}

func buildChange(ctx context.Context, src Source, id string, size uint64) (Change, error) {
	recs, err := src.ReadStream(ctx, domain.ChangeStream(id), 0)
	if err != nil {
		return Change{}, err
	}
	// The change as of the binder checkpoint.
	n := 0
	for n < len(recs) && recs[n].Position < size {
		n++
	}
	recs = recs[:n]
	if len(recs) == 0 {
		return Change{}, fmt.Errorf("%w: no events at or before the binder checkpoint", domain.ErrNotFound)
	}
	v, err := answers.BuildChangeView(recs)
	if err != nil {
		return Change{}, err
	}
	c := Change{ID: id, Stated: StatedOf(v)}
	for _, r := range recs {
		p, err := src.InclusionProof(ctx, r.Position, size)
		if err != nil {
			return Change{}, err
		}
		c.Events = append(c.Events, Event{Position: r.Position, Canonical: r.Canonical, Proof: p})
	}
	return c, nil
}

// StatedOf is what a binder states about a change view.
func StatedOf(v *answers.ChangeView) Stated {
	s := Stated{Status: v.Status, PlanHash: v.PlanHash}
	for _, a := range v.Answers {
		sa := StatedAnswer{Question: a.Question, Answer: a.Answer, Result: a.Result}
		for _, at := range a.Attributes {
			sa.Attributes = append(sa.Attributes, StatedAttribute{Name: at.Name, Result: at.Result})
		}
		s.Answers = append(s.Answers, sa)
	}
	return s
}

// noteDigest is what an anchor's OpenTimestamps proof is about.
func noteDigest(note string) [32]byte { return sha256.Sum256([]byte(note)) }
