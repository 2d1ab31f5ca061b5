package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"

	"golang.org/x/mod/sumdb/note"
)

// Leaf is one stored event as verification reads it: its position, its
// canonical bytes, and the leaf hash the store recorded for it.
type Leaf struct {
	Position  uint64
	Canonical []byte
	Stored    []byte
	// Index holds the id, stream and revision the store keeps beside the
	// event to find it by; nil if it keeps none. They must agree with the
	// envelope, or readers by stream or id would be misled.
	Index *Index
}

// Index is what a store indexes an event by.
type Index struct {
	ID       string
	Stream   string
	Revision uint64
}

// VerifiableLog is what Verify reads from a store.
//
// Leaves yields every stored event in position order from position 0, as
// stored, without checking anything. Checkpoints returns every stored signed
// checkpoint note, in any order.
type VerifiableLog interface {
	Leaves(ctx context.Context) iter.Seq2[Leaf, error]
	Checkpoints(ctx context.Context) ([][]byte, error)
}

// VerifyOptions says what Verify trusts.
type VerifyOptions struct {
	// Origin is the log's origin line; every checkpoint must carry it.
	Origin string
	// Verifiers are the pinned keys; a checkpoint verifies only if one of
	// them signed it.
	Verifiers note.Verifiers
	// Trusted are signed checkpoints the verifier saw earlier (for example
	// kept from a previous run): the log must still contain and agree with
	// each of them, so truncating or rewriting the tail is caught even if
	// the stored checkpoints were truncated too.
	Trusted [][]byte
	// Live says a writer is running: events after the latest checkpoint are
	// expected (it signs within a second) and are counted, not failed. At
	// rest, a clean shutdown has signed everything, so they are a failure.
	Live bool
}

// Report summarises a verified log.
type Report struct {
	// Events is the number of events checked.
	Events uint64
	// Checkpoints is the number of stored checkpoints verified.
	Checkpoints int
	// Latest is the largest verified checkpoint.
	Latest Checkpoint
	// Unsigned counts events after Latest (only in Live verification).
	Unsigned uint64
}

// Failure is a verification failure: the first thing found wrong.
type Failure struct {
	// Position is the first log position that is wrong, or -1 when the
	// failure is not about one position (a bad checkpoint signature).
	Position int64
	// Checkpoint is the size of the checkpoint involved, or 0.
	Checkpoint uint64
	// Reason says what is wrong.
	Reason string
}

func (f *Failure) Error() string {
	switch {
	case f.Position >= 0:
		return fmt.Sprintf("position %d: %s", f.Position, f.Reason)
	case f.Checkpoint > 0:
		return fmt.Sprintf("checkpoint at size %d: %s", f.Checkpoint, f.Reason)
	default:
		return f.Reason
	}
}

type target struct {
	cp     Checkpoint
	stored bool
}

// Verify checks a log against its signed checkpoints. It recomputes every
// leaf hash from the stored canonical bytes, requires positions to be
// gap-free and each stream's revisions to run 0, 1, 2, … in position order,
// recomputes the tree, and requires every checkpoint (stored or trusted) to
// carry a valid signature by a pinned key and to match the recomputed root
// at its size. Because every checkpoint is checked against one recomputed
// tree, each is consistent with the ones before it. Events after the latest
// checkpoint are a failure: nothing vouches for them.
//
// It returns a *Failure for the first problem found, or an I/O error.
func Verify(ctx context.Context, log VerifiableLog, opts VerifyOptions) (Report, error) {
	notes, err := log.Checkpoints(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("read checkpoints: %w", err)
	}
	var targets []target
	for _, n := range notes {
		cp, err := openPinned(n, opts)
		if err != nil {
			return Report{}, err
		}
		targets = append(targets, target{cp: cp, stored: true})
	}
	for _, n := range opts.Trusted {
		cp, err := openPinned(n, opts)
		if err != nil {
			return Report{}, fmt.Errorf("trusted checkpoint: %w", err)
		}
		targets = append(targets, target{cp: cp})
	}
	slices.SortStableFunc(targets, func(a, b target) int { return cmpUint(a.cp.Size, b.cp.Size) })
	rep := Report{Checkpoints: len(notes)}
	for i := 1; i < len(targets); i++ {
		a, b := targets[i-1].cp, targets[i].cp
		if a.Size == b.Size && !bytes.Equal(a.Root, b.Root) {
			return rep, &Failure{Position: -1, Checkpoint: a.Size, Reason: "two validly signed checkpoints of this size have different roots (the log forked)"}
		}
	}

	for len(targets) > 0 && targets[0].cp.Size == 0 {
		if !bytes.Equal(targets[0].cp.Root, Hasher.EmptyRoot()) {
			return rep, &Failure{Position: -1, Reason: "a checkpoint of size 0 has a root other than the empty tree's"}
		}
		targets = targets[1:]
	}
	rng := RangeFactory.NewEmptyRange(0)
	revisions := make(map[string]uint64)
	var next, lastGood uint64
	ti := 0
	for leaf, err := range log.Leaves(ctx) {
		if err != nil {
			var f *Failure
			if errors.As(err, &f) {
				return rep, f
			}
			return rep, fmt.Errorf("read log: %w", err)
		}
		if leaf.Position != next {
			return rep, &Failure{Position: int64(next), Reason: fmt.Sprintf("event missing: the log jumps from position %d to %d", int64(next)-1, leaf.Position)}
		}
		h := LeafHash(leaf.Canonical)
		if !bytes.Equal(h, leaf.Stored) {
			return rep, &Failure{Position: int64(next), Reason: "event altered: its canonical bytes do not hash to the leaf hash stored for it"}
		}
		if err := checkEnvelope(leaf.Canonical, revisions); err != nil {
			return rep, &Failure{Position: int64(next), Reason: err.Error()}
		}
		if x := leaf.Index; x != nil && !bytes.Contains(leaf.Canonical, indexBytes(x)) {
			return rep, &Failure{Position: int64(next), Reason: fmt.Sprintf(
				"the stored index (id %s, stream %s, revision %d) disagrees with the event: readers by stream or id would be misled", x.ID, x.Stream, x.Revision)}
		}
		if err := rng.Append(h, nil); err != nil {
			return rep, err
		}
		next++
		for ; ti < len(targets) && targets[ti].cp.Size == next; ti++ {
			root, err := rng.GetRootHash(nil)
			if err != nil {
				return rep, err
			}
			t := targets[ti]
			if !bytes.Equal(root, t.cp.Root) {
				what := "the signed checkpoint"
				if !t.stored {
					what = "the trusted checkpoint"
				}
				return rep, &Failure{Position: int64(lastGood), Checkpoint: t.cp.Size, Reason: fmt.Sprintf(
					"events %d..%d do not match %s of size %d: an event in that range was altered, inserted, deleted or reordered (the store's own hashes were rewritten to agree)",
					lastGood, next-1, what, t.cp.Size)}
			}
			lastGood = next
			if t.stored {
				rep.Latest = t.cp
			}
		}
	}
	rep.Events = next
	if ti < len(targets) {
		t := targets[ti]
		return rep, &Failure{Position: int64(next), Checkpoint: t.cp.Size, Reason: fmt.Sprintf(
			"log truncated: it ends after %d events, but a signed checkpoint commits to %d", next, t.cp.Size)}
	}
	if rep.Latest.Size < next && opts.Live {
		rep.Unsigned = next - rep.Latest.Size
	} else if rep.Latest.Size < next {
		return rep, &Failure{Position: int64(rep.Latest.Size), Reason: fmt.Sprintf(
			"events %d..%d are not covered by any signed checkpoint", rep.Latest.Size, next-1)}
	}
	return rep, nil
}

func openPinned(n []byte, opts VerifyOptions) (Checkpoint, error) {
	unverified, perr := CheckpointBody(n)
	cp, err := OpenCheckpoint(n, opts.Verifiers)
	if err != nil {
		if perr != nil {
			return Checkpoint{}, &Failure{Position: -1, Reason: "unreadable checkpoint: " + perr.Error()}
		}
		return Checkpoint{}, &Failure{Position: -1, Checkpoint: unverified.Size, Reason: "no valid signature by a pinned key: " + err.Error()}
	}
	if cp.Origin != opts.Origin {
		return Checkpoint{}, &Failure{Position: -1, Checkpoint: cp.Size, Reason: fmt.Sprintf("origin %q, want %q", cp.Origin, opts.Origin)}
	}
	return cp, nil
}

// indexBytes is how the indexed members read inside canonical bytes.
func indexBytes(x *Index) []byte {
	b := appendString([]byte(`,"id":`), x.ID)
	b = strconv.AppendUint(append(b, `,"revision":`...), x.Revision, 10)
	b = appendString(append(b, `,"stream":`...), x.Stream)
	return append(b, ',')
}

// envelopeKey holds what verification needs of an envelope.
type envelopeKey struct {
	stream   string
	revision uint64
}

// checkEnvelope reads the stream and revision of an envelope and checks the
// revision follows the stream's previous one.
func checkEnvelope(canonical []byte, revisions map[string]uint64) error {
	k, ok := tailKey(canonical)
	if !ok {
		var e struct {
			ID       string  `json:"id"`
			Stream   string  `json:"stream"`
			Revision *uint64 `json:"revision"`
			Type     string  `json:"type"`
		}
		if err := json.Unmarshal(canonical, &e); err != nil {
			return fmt.Errorf("not a valid event envelope: %v", err)
		}
		if e.ID == "" || e.Stream == "" || e.Type == "" || e.Revision == nil {
			return fmt.Errorf("not a valid event envelope: id, stream, revision and type are required")
		}
		k = envelopeKey{stream: e.Stream, revision: *e.Revision}
	}
	want, seen := revisions[k.stream]
	if k.revision != want {
		if !seen {
			return fmt.Errorf("stream %s starts at revision %d, not 0 (events deleted or reordered)", k.stream, k.revision)
		}
		return fmt.Errorf("stream %s has revision %d where %d was due (events deleted, inserted or reordered)", k.stream, k.revision, want)
	}
	revisions[k.stream] = want + 1
	return nil
}

// tailKey reads stream and revision from the fixed tail of canonical bytes,
// `,"revision":N,"stream":"S","time":…}` (see envelopeParts), without
// decoding the whole envelope. It reports false for anything else, and the
// caller then decodes properly. Bytes that pass the leaf-hash and
// checkpoint checks are the ones the store canonicalized, so this reads
// them right; tampered bytes that fool it still fail the checkpoint root.
func tailKey(c []byte) (envelopeKey, bool) {
	i := bytes.LastIndex(c, []byte(`,"revision":`))
	if i < 0 {
		return envelopeKey{}, false
	}
	rest := c[i+len(`,"revision":`):]
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	rev, err := strconv.ParseUint(string(rest[:n]), 10, 64)
	if err != nil || (n > 1 && rest[0] == '0') {
		return envelopeKey{}, false
	}
	rest = rest[n:]
	if !bytes.HasPrefix(rest, []byte(`,"stream":"`)) {
		return envelopeKey{}, false
	}
	rest = rest[len(`,"stream":"`):]
	end := bytes.IndexByte(rest, '"')
	if end <= 0 || bytes.IndexByte(rest[:end], '\\') >= 0 || !bytes.HasPrefix(rest[end:], []byte(`","time":"`)) || !bytes.HasSuffix(c, []byte(`"}`)) {
		return envelopeKey{}, false // escapes or an unexpected shape: decode properly
	}
	return envelopeKey{stream: string(rest[:end]), revision: rev}, true
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
