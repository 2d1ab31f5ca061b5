package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/evidence-parity/docket/ledger"
	"github.com/evidence-parity/docket/ledger/sqlite"
	"github.com/evidence-parity/docket/ledger/storetest"
)

const walBound = 256 << 10

// appendMany appends n events from 8 concurrent writers, each to its own
// stream, and fails the test on any error.
func appendMany(t *testing.T, s *sqlite.Store, tag string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := range n / 8 {
				if _, err := s.Append(context.Background(), fmt.Sprintf("%s-%d", tag, w), ledger.Any, storetest.Event("Step", "n", i, "pad", string(make([]byte, 300)))); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func walSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// TestWALStaysBounded: under appends that never pause, the passive WAL
// checkpoints never catch up, and the write-ahead log would grow for as
// long as the load lasts; the writer restarts it once it passes
// MaxWALSize, and cuts the file back. A reader that keeps a snapshot open
// (another process, say) postpones the restart without failing or losing
// an append; once it leaves, the WAL is bounded again. Every event is in
// the ledger after reopening.
func TestWALStaysBounded(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{MaxWALSize: walBound, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	appendMany(t, s, "a", 4000)
	if st := s.Stats(); st.WALRestarts == 0 {
		t.Fatalf("no WAL restarts after %d commits: %+v", st.Commits, st)
	}
	if size := walSize(t, path); size > walBound+(1<<20) {
		t.Errorf("WAL is %d bytes after the load, bound %d", size, walBound)
	}

	// A reader holding a snapshot: it keeps the checkpoints from copying
	// frames past it (or any, if it reads the database file alone).
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var seen int
	if err := tx.QueryRow(`SELECT COUNT(*) FROM events`).Scan(&seen); err != nil {
		t.Fatal(err)
	}
	appendMany(t, s, "b", 16)
	restarts := s.Stats().WALRestarts
	appendMany(t, s, "c", 4000)
	if got := s.Stats().WALRestarts; got != restarts {
		t.Errorf("%d WAL restarts while a reader held frames of the WAL", got-restarts)
	}
	if size := walSize(t, path); size <= walBound {
		t.Errorf("WAL is %d bytes with a reader holding it, want it past the bound %d", size, walBound)
	}
	var still int
	if err := tx.QueryRow(`SELECT COUNT(*) FROM events`).Scan(&still); err != nil || still != seen {
		t.Fatalf("the reader's snapshot: %d events (%v), want %d", still, err, seen)
	}
	tx.Rollback()

	// Once the passive checkpoints have caught up again (and the WAL has
	// doubled, or a while has passed, if a restart waited for the reader
	// in vain), the restart succeeds and the WAL is cut back.
	total := 4000 + 16 + 4000
	for round := 0; s.Stats().WALRestarts == restarts; round++ {
		if round == 50 {
			t.Fatalf("no WAL restart after the reader left; WAL %d bytes", walSize(t, path))
		}
		appendMany(t, s, "d", 1000)
		total += 1000
	}
	appendMany(t, s, "e", 1000)
	total += 1000
	if size := walSize(t, path); size > walBound+(1<<20) {
		t.Errorf("WAL is %d bytes after the reader left, bound %d", size, walBound)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := sqlite.Open(ctx, path, sqlite.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	n := 0
	for _, err := range ro.ReadAll(ctx, 0) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if want := total; n != want {
		t.Errorf("%d events in the reopened ledger, want %d", n, want)
	}
}
