package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/evidence-parity/docket/ledger"
	"github.com/evidence-parity/docket/ledger/sqlite"
	"github.com/evidence-parity/docket/ledger/storetest"
)

// A writable store serves followers of the log from the events it last
// committed, kept in memory; what they read must be what the database
// holds, record for record, whether a reader starts inside that tail,
// before it (more than its size behind), or at its end, and while appends
// go on.
func TestFollowersReadWhatTheDatabaseHolds(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// A follower from the start, reading as the events are committed.
	const total = 10_000
	followed := make(chan []ledger.Record, 1)
	// Bounded, so a follower that loses its place fails the test rather
	// than waiting for events that never come.
	subCtx, stop := context.WithTimeout(ctx, time.Minute)
	defer stop()
	go func() {
		var got []ledger.Record
		for r, err := range s.Subscribe(subCtx, 0) {
			if err != nil {
				break
			}
			got = append(got, r)
			if len(got) == total {
				break
			}
		}
		followed <- got
	}()

	// Concurrent appenders, so batches of several appends commit together.
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			stream := fmt.Sprintf("s%d", w)
			for i := range total / 8 / 5 {
				events := make([]ledger.Event, 5)
				for j := range events {
					events[j] = storetest.Event("E")
				}
				expected := ledger.NoStream
				if i > 0 {
					expected = ledger.Exact(uint64(i*5) - 1)
				}
				if _, err := s.Append(ctx, stream, expected, events...); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()

	ro, err := sqlite.Open(ctx, path, sqlite.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	stored := readAll(t, ro, 0)
	if len(stored) != total {
		t.Fatalf("the database holds %d events, want %d", len(stored), total)
	}
	if got := <-followed; !reflect.DeepEqual(got, stored) {
		t.Fatalf("the follower read %d records that differ from the database's", len(got))
	}
	for _, from := range []uint64{0, 1, total - 4096 - 1, total - 4096, total - 100, total - 1, total} {
		if got := readAll(t, s, from); len(got)+len(stored[from:]) > 0 && !reflect.DeepEqual(got, stored[from:]) {
			t.Errorf("ReadAll from %d: %d records that differ from the database's %d", from, len(got), total-from)
		}
	}
}

// After Close, a read fails as a read of the closed database does, even
// where the tail could have answered.
func TestReadAfterCloseFails(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ledger.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "a", ledger.NoStream, storetest.Event("E"), storetest.Event("E")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, from := range []uint64{1, 2} {
		failed := false
		for _, err := range s.ReadAll(ctx, from) {
			failed = failed || err != nil
		}
		if !failed {
			t.Errorf("ReadAll from %d after Close did not fail", from)
		}
	}
}

func readAll(t *testing.T, s *sqlite.Store, from uint64) []ledger.Record {
	t.Helper()
	var out []ledger.Record
	for r, err := range s.ReadAll(context.Background(), from) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}
