package esdb

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"iter"

	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"

	"github.com/evidence-parity/docket/ledger"
)

var _ ledger.VerifiableLog = (*Log)(nil)

// streamView is what readers of one stream see: the hash of each visible
// event's data by revision, or why nothing is visible.
type streamView struct {
	visible map[uint64][32]byte
	last    uint64 // the highest event number read; meaningful with visible
	gone    string // "", "deleted or never written" or "tombstoned"
}

// Leaves re-reads the ledger from EventStoreDB: every Docket event of $all
// in order (positions 0, 1, …), with its leaf hash computed from the bytes
// EventStoreDB returns and its index (id, stream, revision) as EventStoreDB
// keeps it. An event that $all still holds but its stream no longer shows
// (soft-deleted, truncated by $tb, tombstoned, or shadowed by bytes that
// differ) is a *ledger.Failure "event missing" naming it. Events removed by
// a scavenge are gone from $all too; the recomputed tree then disagrees
// with the signed checkpoints.
func (l *Log) Leaves(ctx context.Context) iter.Seq2[ledger.Leaf, error] {
	return func(yield func(ledger.Leaf, error) bool) {
		views := map[string]*streamView{}
		ids := map[string]uint64{} // event id → position: an id is the ledger's once
		var pos uint64
		stopped := false
		err := l.readAll(ctx, func(e *kurrentdb.RecordedEvent) bool {
			stream, ok := l.ledgerStream(e.StreamID)
			if !ok || system(e.EventType) {
				return true
			}
			env, err := envelopeOf(e, stream)
			if err != nil {
				stopped = true
				yield(ledger.Leaf{}, &ledger.Failure{Position: int64(pos), Reason: fmt.Sprintf(
					"foreign event under Docket's prefix: %s event number %d (event id %s) is not the ledger's: %v", e.StreamID, e.EventNumber, e.EventID, err)})
				return false
			}
			view, ok := views[e.StreamID]
			// A stream read earlier in this pass may have grown since (a
			// live ledger): an event past what was read calls for a fresh
			// read, not a verdict.
			if ok && view.gone == "" && (len(view.visible) == 0 || e.EventNumber > view.last) {
				ok = false
			}
			if !ok {
				var err error
				if view, err = l.view(ctx, e.StreamID); err != nil {
					stopped = true
					yield(ledger.Leaf{}, err)
					return false
				}
				views[e.StreamID] = view
			}
			leaf := ledger.Leaf{Position: pos, Canonical: e.Data, Stored: ledger.LeafHash(e.Data)}
			name := fmt.Sprintf("%s revision %d (event id %s)", stream, e.EventNumber, e.EventID)
			if h, ok := view.visible[e.EventNumber]; !ok || h != sha256.Sum256(e.Data) {
				why := view.gone
				if why == "" && ok {
					why = "a different event is read at that revision"
				} else if why == "" {
					why = "deleted, or hidden by truncate-before ($tb)"
				}
				stopped = true
				yield(ledger.Leaf{}, &ledger.Failure{Position: int64(pos), Reason: fmt.Sprintf(
					"event missing: %s is in $all but no longer readable from its stream %s in EventStoreDB (%s)", name, e.StreamID, why)})
				return false
			}
			if first, dup := ids[env.ID]; dup {
				stopped = true
				yield(ledger.Leaf{}, &ledger.Failure{Position: int64(pos), Reason: fmt.Sprintf(
					"%s: the event id %s is already the ledger's at position %d (an event written twice)", name, env.ID, first)})
				return false
			}
			ids[env.ID] = pos
			leaf.Index = &ledger.Index{ID: env.ID, Stream: stream, Revision: e.EventNumber}
			pos++
			if !yield(leaf, nil) {
				stopped = true
				return false
			}
			return true
		})
		if err != nil && !stopped {
			yield(ledger.Leaf{}, err)
		}
	}
}

// view reads a whole stream as readers see it.
func (l *Log) view(ctx context.Context, name string) (*streamView, error) {
	evs, found, err := l.readStream(ctx, name, 0, false, 0)
	v := &streamView{visible: map[uint64][32]byte{}}
	switch {
	case errors.Is(err, errTombstoned):
		v.gone = "the stream was tombstoned"
		return v, nil
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", name, err)
	case !found:
		v.gone = "the stream was deleted"
		return v, nil
	}
	for _, e := range evs {
		v.visible[e.EventNumber] = sha256.Sum256(e.Data)
		v.last = max(v.last, e.EventNumber)
	}
	return v, nil
}

// Origin returns the checkpoint origin, "docket/<ledger id>".
func (l *Log) Origin(ctx context.Context) (string, error) {
	id, err := l.LedgerID(ctx)
	if err != nil {
		return "", err
	}
	return "docket/" + id, nil
}

// Verify checks the ledger in EventStoreDB against its signed checkpoints
// (ledger.Verify over Leaves and Checkpoints), trusting only the pinned
// key fingerprints and the trusted checkpoint notes. With live, events
// after the latest checkpoint are counted rather than failed (a writer is
// running and signs within a second).
func (l *Log) Verify(ctx context.Context, fingerprints []string, trusted [][]byte, live bool) (ledger.Report, error) {
	origin, err := l.Origin(ctx)
	if err != nil {
		var f *ledger.Failure
		if errors.As(err, &f) {
			return ledger.Report{}, f
		}
		if errors.Is(err, errNoLedger) {
			return ledger.Report{}, &ledger.Failure{Position: -1, Reason: err.Error()}
		}
		return ledger.Report{}, err
	}
	vs, err := l.Verifiers(ctx, origin, fingerprints...)
	if err != nil {
		return ledger.Report{}, &ledger.Failure{Position: -1, Reason: err.Error()}
	}
	return ledger.Verify(ctx, l, ledger.VerifyOptions{Origin: origin, Verifiers: vs, Trusted: trusted, Live: live})
}
