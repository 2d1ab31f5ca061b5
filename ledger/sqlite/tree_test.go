package sqlite_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/evidence-parity/docket/anchors"
	"github.com/evidence-parity/docket/ledger"
	"github.com/evidence-parity/docket/ledger/sqlite"
	"github.com/evidence-parity/docket/ledger/storetest"
)

// fixture is a ledger file with a local signing key.
type fixture struct {
	dir    string
	db     string
	signer *anchors.FileSigner
	fp     string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	signer, err := anchors.OpenFileSigner(filepath.Join(dir, "keys", "checkpoint.pem"), true)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := anchors.Fingerprint(signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{dir: dir, db: filepath.Join(dir, "ledger.db"), signer: signer, fp: fp}
}

func (f *fixture) open(t *testing.T, opts sqlite.Options) *sqlite.Store {
	t.Helper()
	if opts.Signer == nil && !opts.ReadOnly {
		opts.Signer = f.signer
	}
	if opts.CheckpointInterval == 0 {
		// Background signing must not interleave with the test's own.
		opts.CheckpointInterval = time.Hour
	}
	s, err := sqlite.Open(context.Background(), f.db, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fill appends events in batches of the given sizes, signing a checkpoint
// after each batch, and returns the signed notes in order.
func fill(t *testing.T, s *sqlite.Store, sizes ...int) [][]byte {
	t.Helper()
	ctx := context.Background()
	var notes [][]byte
	n := 0
	for _, size := range sizes {
		evs := make([]ledger.Event, size)
		for i := range evs {
			evs[i] = storetest.Event("Step", "n", n)
			n++
		}
		if _, err := s.Append(ctx, fmt.Sprintf("change-%d", n%3), ledger.Any, evs...); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		note, _, err := s.LatestCheckpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		notes = append(notes, note)
	}
	return notes
}

func TestProofsAgainstEveryCheckpoint(t *testing.T) {
	f := newFixture(t)
	s := f.open(t, sqlite.Options{})
	ctx := context.Background()
	notes := fill(t, s, 1, 1, 2, 5, 8, 13, 21, 34, 1, 55, 3)
	verifier, err := anchors.NewNoteVerifier(s.Origin(), mustSPKI(t, f.signer))
	if err != nil {
		t.Fatal(err)
	}
	var cps []ledger.Checkpoint
	for _, n := range notes {
		cp, err := ledger.OpenCheckpoint(n, noteList(verifier))
		if err != nil {
			t.Fatalf("checkpoint does not verify with github.com/transparency-dev/formats/note: %v\n%s", err, n)
		}
		cps = append(cps, cp)
	}
	var recs []ledger.Record
	for r, err := range s.ReadAll(ctx, 0) {
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	// Independent roots: golang.org/x/mod/sumdb/tlog over the same records.
	var stored []tlog.Hash
	for i, r := range recs {
		hs, err := tlog.StoredHashes(int64(i), r.Canonical, tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(idx))
			for j, x := range idx {
				out[j] = stored[x]
			}
			return out, nil
		}))
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, hs...)
	}
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for j, x := range idx {
			out[j] = stored[x]
		}
		return out, nil
	})
	for _, cp := range cps {
		want, err := tlog.TreeHash(int64(cp.Size), reader)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(cp.Root, want[:]) {
			t.Fatalf("checkpoint size %d root %x, tlog computes %x", cp.Size, cp.Root, want)
		}
		for i := uint64(0); i < cp.Size; i++ {
			p, err := s.InclusionProof(ctx, i, cp.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := ledger.VerifyInclusion(i, cp.Size, recs[i].LeafHash(), p, cp.Root); err != nil {
				t.Fatalf("inclusion of %d in size %d: %v", i, cp.Size, err)
			}
			if i == cp.Size/2 {
				var tp tlog.RecordProof
				for _, h := range p {
					tp = append(tp, tlog.Hash(h))
				}
				if err := tlog.CheckRecord(tp, int64(cp.Size), tlog.Hash(cp.Root), int64(i), tlog.RecordHash(recs[i].Canonical)); err != nil {
					t.Fatalf("tlog rejects inclusion proof of %d in %d: %v", i, cp.Size, err)
				}
			}
		}
	}
	for i, a := range cps {
		for _, b := range cps[i:] {
			p, err := s.ConsistencyProof(ctx, a.Size, b.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := ledger.VerifyConsistency(a.Size, b.Size, p, a.Root, b.Root); err != nil {
				t.Fatalf("consistency %d → %d: %v", a.Size, b.Size, err)
			}
		}
	}
	if _, err := s.InclusionProof(ctx, 0, uint64(len(recs))+1); err == nil {
		t.Error("an inclusion proof against a size beyond the log must fail")
	}
}

func TestReopenKeepsTreeAndCheckpoints(t *testing.T) {
	f := newFixture(t)
	s := f.open(t, sqlite.Options{})
	fill(t, s, 7, 20, 100)
	_, root1, _ := s.Head(context.Background())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = f.open(t, sqlite.Options{})
	size, root2, _ := s.Head(context.Background())
	if size != 127 || !bytes.Equal(root1, root2) {
		t.Fatalf("after reopen: size %d root %x; want 127 %x", size, root2, root1)
	}
	notes := fill(t, s, 9)
	cp, err := ledger.CheckpointBody(notes[0])
	if err != nil || cp.Size != 136 {
		t.Fatalf("checkpoint after reopen: %v %v, want size 136", cp, err)
	}
	if _, err := s.Verify(context.Background(), []string{f.fp}, nil); err != nil {
		t.Fatalf("verify: %v", err)
	}
}

func TestCheckpointsFollowGrowthAtMostOncePerInterval(t *testing.T) {
	f := newFixture(t)
	s := f.open(t, sqlite.Options{CheckpointInterval: 200 * time.Millisecond})
	ctx := context.Background()
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if _, err := s.Append(ctx, "s", ledger.Any, storetest.Event("E")); err != nil {
			t.Fatal(err)
		}
	}
	size, _, _ := s.Head(ctx)
	// Growth is followed by a checkpoint: wait for one covering the log.
	for i := 0; ; i++ {
		note, _, err := s.LatestCheckpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if note != nil {
			if cp, _ := ledger.CheckpointBody(note); cp.Size == size {
				break
			}
		}
		if i > 100 {
			t.Fatalf("no checkpoint of size %d appeared after the appends stopped", size)
		}
		time.Sleep(50 * time.Millisecond)
	}
	notes, err := s.Checkpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// About 1s of appends at one checkpoint per 200ms, plus the catch-up.
	if len(notes) < 2 || len(notes) > 8 {
		t.Errorf("%d checkpoints for 1s of appends with a 200ms interval, want 2..8", len(notes))
	}
	storetest.CheckRecentCheckpoints(t, notes, s.RecentCheckpoints)
	// Nothing new: no new checkpoint.
	time.Sleep(300 * time.Millisecond)
	again, _ := s.Checkpoints(ctx)
	if len(again) != len(notes) {
		t.Errorf("checkpoints grew from %d to %d with no new events", len(notes), len(again))
	}
}

func TestSignerRefusesInconsistentTree(t *testing.T) {
	f := newFixture(t)
	s := f.open(t, sqlite.Options{})
	fill(t, s, 5)
	s.Close()
	// An attacker rewrites event 2 and its stored leaf hash.
	tamper(t, f.db, func(db execer) {
		canon := canonicalAt(t, db, 2)
		canon = bytes.Replace(canon, []byte(`"n":2`), []byte(`"n":9`), 1)
		exec(t, db, `UPDATE events SET canonical = ?, leaf = ? WHERE position = 2`, canon, ledger.LeafHash(canon))
	})
	s = f.open(t, sqlite.Options{})
	if _, err := s.Append(context.Background(), "s", ledger.Any, storetest.Event("E")); err != nil {
		t.Fatal(err)
	}
	_, err := s.Checkpoint(context.Background())
	if !errors.Is(err, ledger.ErrInconsistent) {
		t.Fatalf("signing a rewritten tree: got %v, want ErrInconsistent", err)
	}
	if notes, _ := s.Checkpoints(context.Background()); len(notes) != 1 {
		t.Fatalf("%d checkpoints stored, want only the original 1", len(notes))
	}
}

// TestWitnessRefusesLaunderedRewrite: an attacker rewrites an event,
// recomputes every stored hash, and deletes the checkpoints that would
// expose it, as if the process had crashed. The witness beside the key
// remembers what was signed, and the signer refuses.
func TestWitnessRefusesLaunderedRewrite(t *testing.T) {
	for _, dropCheckpoints := range []bool{true, false} {
		t.Run(fmt.Sprintf("checkpoints deleted %v", dropCheckpoints), func(t *testing.T) {
			f := newFixture(t)
			witness := filepath.Join(f.dir, "keys", "last-checkpoint")
			s := f.open(t, sqlite.Options{WitnessPath: witness})
			sizes := make([]int, 40)
			for i := range sizes {
				sizes[i] = 1
			}
			fill(t, s, sizes...)
			s.Close()
			tamper(t, f.db, func(db execer) {
				c := bytes.Replace(canonicalAt(t, db, 17), []byte(`"Step"`), []byte(`"Stop"`), 1)
				exec(t, db, `UPDATE events SET canonical = ?, leaf = ? WHERE position = 17`, c, ledger.LeafHash(c))
				rehashTree(t, db)
				if dropCheckpoints {
					exec(t, db, `DELETE FROM checkpoints WHERE size > 17`)
				}
			})
			s = f.open(t, sqlite.Options{WitnessPath: witness})
			if _, err := s.Append(context.Background(), "s", ledger.Any, storetest.Event("E")); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Checkpoint(context.Background()); !errors.Is(err, ledger.ErrInconsistent) {
				t.Fatalf("signing the laundered log: got %v, want ErrInconsistent", err)
			}
		})
	}
}
