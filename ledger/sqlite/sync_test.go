package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evidence-parity/docket/ledger"
	"github.com/evidence-parity/docket/ledger/sqlite"
	"github.com/evidence-parity/docket/ledger/storetest"
)

// countRows counts the events the database file holds, as another
// connection sees them.
func countRows(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A batch the writer committed is neither answered nor seen by the store's
// readers until the WAL's fsync made it durable.
func TestCommittedIsPublishedOnlyOnceDurable(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.open(t, sqlite.Options{})
	if _, err := s.Append(ctx, "s", ledger.NoStream, storetest.Event("E")); err != nil {
		t.Fatal(err)
	}
	settle(t, s)
	hold, release := make(chan struct{}), make(chan struct{})
	s.BeforeSyncForTest(func() {
		hold <- struct{}{}
		<-release
	})
	appended := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, "s", ledger.Exact(0), storetest.Event("E", "id", "second"))
		appended <- err
	}()
	<-hold // committed, its fsync not yet begun
	if n := countRows(t, f.db); n != 2 {
		t.Fatalf("the file holds %d events, want the committed 2", n)
	}
	select {
	case err := <-appended:
		t.Fatalf("Append returned (%v) before its batch was durable", err)
	default:
	}
	if size, _, _ := s.Head(ctx); size != 1 {
		t.Errorf("Head = %d before the fsync, want 1", size)
	}
	if recs, err := s.ReadStream(ctx, "s", 0); err != nil || len(recs) != 1 {
		t.Errorf("ReadStream before the fsync = %d records, %v; want 1", len(recs), err)
	}
	if got := readAll(t, s, 0); len(got) != 1 {
		t.Errorf("ReadAll before the fsync = %d records, want 1", len(got))
	}
	close(release)
	if err := <-appended; err != nil {
		t.Fatal(err)
	}
	if size, _, _ := s.Head(ctx); size != 2 {
		t.Errorf("Head = %d after the fsync, want 2", size)
	}
	if recs, err := s.ReadStream(ctx, "s", 0); err != nil || len(recs) != 2 {
		t.Errorf("ReadStream after the fsync = %d records, %v; want 2", len(recs), err)
	}
	s.BeforeSyncForTest(nil)
}

// A failed fsync fails its appends and every later one as of unknown
// outcome, publishes nothing, and once known stops all writing (a flush of
// the stream index running alongside the fsync may have indexed the
// batch); after a restart the append, which SQLite did write, is
// recognised when retried.
func TestFailedSyncStopsAppends(t *testing.T) {
	ctx := context.Background()
	f, s := indexedAfterEveryBatch(t)
	synced := s.Stats().Syncs
	s.BreakSyncForTest()
	ev := storetest.Event("E")
	ev.ID = "written-not-synced"
	_, err := s.Append(ctx, "s", ledger.Exact(0), ev)
	if err == nil || !strings.Contains(err.Error(), "whether it is kept is unknown") {
		t.Fatalf("append with a failing fsync: %v, want its outcome reported unknown", err)
	}
	for range 2 {
		if _, err := s.Append(ctx, "t", ledger.Any, storetest.Event("E")); err == nil || !strings.Contains(err.Error(), "stops taking appends") {
			t.Fatalf("append after a failed fsync: %v, want refused", err)
		}
	}
	if size, _, _ := s.Head(ctx); size != 1 {
		t.Errorf("Head = %d, want 1: nothing after the failure is published", size)
	}
	if n := s.Stats().Syncs; n != synced {
		t.Errorf("Stats.Syncs went from %d to %d: a failed fsync counted as one that made a batch durable", synced, n)
	}
	if _, err := s.Lookup(ctx, ev.ID); !errors.Is(err, ledger.ErrNoEvent) {
		t.Errorf("Lookup of the unsynced event = %v, want not found", err)
	}
	// The writer indexes after every batch, without waiting for its
	// fsync: the index may cover the written event (the WAL keeps its
	// frames only with the event's), never anything after it.
	if w, _ := indexState(t, f.db); w != 1 && w != 2 {
		t.Errorf("the stream index covers %d events after the failure, want the 1 before it or the 2 written", w)
	}
	s.Close()

	s = f.open(t, sqlite.Options{})
	recs, err := s.Append(ctx, "s", ledger.Exact(0), ev)
	if err != nil || len(recs) != 1 || recs[0].Position != 1 {
		t.Fatalf("the retry after a restart: %+v, %v; want the written event recognised at position 1", recs, err)
	}
}

// Stats counts the fsyncs that made batches durable and the time spent in
// them, the disk's part of an append's latency (docket bench graphql and
// /metrics report it).
func TestStatsCountTheFsyncs(t *testing.T) {
	ctx := context.Background()
	s := newFixture(t).open(t, sqlite.Options{})
	if _, err := s.Append(ctx, "s", ledger.Any, storetest.Event("E")); err != nil {
		t.Fatal(err)
	}
	settle(t, s)
	before := s.Stats()
	const held = 30 * time.Millisecond
	s.BeforeSyncForTest(func() { time.Sleep(held) }) // a slow disk
	for range 3 {
		if _, err := s.Append(ctx, "s", ledger.Any, storetest.Event("E")); err != nil {
			t.Fatal(err)
		}
	}
	s.BeforeSyncForTest(nil)
	after := s.Stats()
	// Each append waited for its own batch: three batches, three fsyncs.
	if n := after.Syncs - before.Syncs; n != 3 {
		t.Errorf("Syncs grew by %d over three appends made one after another, want 3", n)
	}
	if d := after.SyncTime - before.SyncTime; d < 3*held {
		t.Errorf("SyncTime grew by %v, want at least the %v the three fsyncs were held", d, 3*held)
	}
	if after.Commits-before.Commits != 3 {
		t.Errorf("Commits grew by %d, want 3", after.Commits-before.Commits)
	}
}

// The stream index is flushed while the batch before it waits for its
// fsync, so the flush never holds up the appends behind it; an append to a
// stream whose latest batch is indexed but not yet durable (the published
// head one behind) still gets the next revision.
func TestFlushWhileAnFsyncIsUnderWay(t *testing.T) {
	ctx := context.Background()
	f, s := indexedAfterEveryBatch(t)
	hold := make(chan struct{})
	release := sync.OnceFunc(func() { close(hold) })
	defer release() // a failed test must not leave the store stuck in an fsync
	s.BeforeSyncForTest(func() { <-hold })
	var appends sync.WaitGroup
	appendAt := func(rev uint64) {
		appends.Go(func() {
			if _, err := s.Append(ctx, "s", ledger.Exact(rev), storetest.Event("E")); err != nil {
				t.Errorf("append at revision %d: %v", rev, err)
			}
		})
	}
	appendAt(0)
	// Its batch is committed and its fsync held: the index covers it all
	// the same.
	waitFor(t, "the index to cover the event whose fsync is held", func() bool {
		w, _ := indexState(t, f.db)
		return w == 2
	})
	appendAt(1)
	waitFor(t, "the next append to commit", func() bool { return countRows(t, f.db) == 3 })
	release()
	appends.Wait()
	recs, err := s.ReadStream(ctx, "s", 0)
	if err != nil || len(recs) != 3 {
		t.Fatalf("ReadStream = %d records, %v; want 3", len(recs), err)
	}
	for i, r := range recs {
		if r.Event.Revision != uint64(i) || r.Position != uint64(i) {
			t.Errorf("record %d at revision %d, position %d", i, r.Event.Revision, r.Position)
		}
	}
}

// waitFor polls cond until it holds; after 30 s (a hang, not a slow
// machine) the test fails, naming what it waited for, with every
// goroutine's stack to show where the store is stuck.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			var stacks strings.Builder
			pprof.Lookup("goroutine").WriteTo(&stacks, 2)
			t.Fatalf("waited 30 s for %s; goroutines:\n%s", what, stacks.String())
		}
	}
}

// indexedAfterEveryBatch opens a new ledger whose writer indexes the
// streams after every batch, with one event in stream "s".
func indexedAfterEveryBatch(t *testing.T) (*fixture, *sqlite.Store) {
	t.Helper()
	sqlite.SetStreamsFlushForTest(t, 1, time.Hour)
	f := newFixture(t)
	s := f.open(t, sqlite.Options{})
	if _, err := s.Append(context.Background(), "s", ledger.NoStream, storetest.Event("E")); err != nil {
		t.Fatal(err)
	}
	settle(t, s)
	return f, s
}

// settle leaves the store's background checkpointer nothing to do for the
// test's duration. It signs once as it starts, and that signing may come
// after a test's first append: its checkpoint would then be a batch of its
// own, committed and fsynced among the test's (a held fsync would hold it,
// or it the test's). A checkpoint signed here, under the checkpointer's
// lock, leaves it nothing to sign until its hour-long interval ends
// (fixture.open).
func settle(t *testing.T, s *sqlite.Store) {
	t.Helper()
	if _, err := s.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
}
