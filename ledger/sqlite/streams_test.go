package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/evidence-parity/docket/ledger"
	"github.com/evidence-parity/docket/ledger/sqlite"
	"github.com/evidence-parity/docket/ledger/storetest"
)

// indexState reads, from the file as another process would, how many
// events the stream index covers (its watermark) and holds rows for.
func indexState(t *testing.T, path string) (watermark, rows int64) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`SELECT COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'streams_indexed'), 0), (SELECT COUNT(*) FROM streams)`).Scan(&watermark, &rows); err != nil {
		t.Fatal(err)
	}
	return watermark, rows
}

// appendRoundRobin appends n single-event appends to streams s-0..s-k-1 in
// turn, each at the revision it must have, and returns how many each got.
func appendRoundRobin(t *testing.T, s *sqlite.Store, k, n int, counts map[string]int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		stream := fmt.Sprintf("s-%d", i%k)
		exp := ledger.NoStream
		if c := counts[stream]; c > 0 {
			exp = ledger.Exact(uint64(c - 1))
		}
		if _, err := s.Append(ctx, stream, exp, storetest.Event("E", "i", i)); err != nil {
			t.Fatalf("append %d to %s: %v", i, stream, err)
		}
		counts[stream]++
	}
}

// checkStreams reads every stream from several revisions and checks it
// holds exactly its events, in revision order.
func checkStreams(t *testing.T, s *sqlite.Store, counts map[string]int) {
	t.Helper()
	ctx := context.Background()
	for stream, n := range counts {
		for _, from := range []int{0, n / 2, n - 1, n} {
			recs, err := s.ReadStream(ctx, stream, uint64(from))
			if err != nil {
				t.Fatalf("ReadStream(%s, %d): %v", stream, from, err)
			}
			if len(recs) != n-from {
				t.Fatalf("ReadStream(%s, %d) = %d records, want %d", stream, from, len(recs), n-from)
			}
			for i, r := range recs {
				if r.Event.Stream != stream || r.Event.Revision != uint64(from+i) {
					t.Fatalf("ReadStream(%s, %d)[%d] = %s revision %d", stream, from, i, r.Event.Stream, r.Event.Revision)
				}
			}
		}
	}
}

// The stream index is written in bulk: a stream reads the same whether its
// events are indexed or still in the unindexed tail, from the writing store
// and from a read-only one in another connection pool. (A flush goes in
// transactions of 100 events here.)
func TestStreamIndexFlushesInBulk(t *testing.T) {
	sqlite.SetStreamsFlushForTest(t, 1024, time.Hour)
	sqlite.SetStreamsIndexChunkForTest(t, 100)
	f := newFixture(t)
	s := f.open(t, sqlite.Options{})
	counts := map[string]int{}
	appendRoundRobin(t, s, 7, 1500, counts)
	if w, rows := indexState(t, f.db); w != 1024 || rows != 1024 {
		t.Fatalf("after 1,500 appends the index covers %d events with %d rows; want the first 1,024", w, rows)
	}
	checkStreams(t, s, counts)
	ro := f.open(t, sqlite.Options{ReadOnly: true})
	checkStreams(t, ro, counts)

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if w, rows := indexState(t, f.db); w != 1500 || rows != 1500 {
		t.Fatalf("after Close the index covers %d events with %d rows; want all 1,500", w, rows)
	}
	rep, err := ro.Verify(context.Background(), []string{f.fp}, nil)
	if err != nil || rep.Events != 1500 {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
}

// With no append coming, the tail is indexed once its oldest event has
// waited long enough.
func TestStreamIndexFlushesWhenIdle(t *testing.T) {
	sqlite.SetStreamsFlushForTest(t, 1024, 50*time.Millisecond)
	f := newFixture(t)
	s := f.open(t, sqlite.Options{})
	counts := map[string]int{}
	appendRoundRobin(t, s, 3, 10, counts)
	waitFor(t, "a flush of the 10 events", func() bool {
		w, _ := indexState(t, f.db)
		return w == 10
	})
	checkStreams(t, s, counts)
}

// A crash loses no stream: the next writable open indexes the tail before
// any append, and revisions continue where they stood.
func TestStreamIndexAfterCrash(t *testing.T) {
	sqlite.SetStreamsFlushForTest(t, 1024, time.Hour)
	f := newFixture(t)
	s := f.open(t, sqlite.Options{})
	counts := map[string]int{}
	appendRoundRobin(t, s, 5, 300, counts)
	s.CrashForTest()
	if w, _ := indexState(t, f.db); w != 0 {
		t.Fatalf("300 appends then a crash: the index covers %d events, want none (the test needs an unindexed tail)", w)
	}
	ro := f.open(t, sqlite.Options{ReadOnly: true})
	checkStreams(t, ro, counts) // the tail, scanned

	s = f.open(t, sqlite.Options{})
	if w, rows := indexState(t, f.db); w != 300 || rows != 300 {
		t.Fatalf("reopened after a crash: the index covers %d events with %d rows, want 300", w, rows)
	}
	checkStreams(t, s, counts)
	if _, err := s.Append(context.Background(), "s-0", ledger.Exact(uint64(counts["s-0"]-2)), storetest.Event("E")); err == nil {
		t.Fatal("an append at a stale revision after the crash was accepted")
	}
	appendRoundRobin(t, s, 5, 10, counts)
	checkStreams(t, s, counts)
}

// A ledger written before the stream index opens read-only by its own
// (stream, revision) index and is indexed at its first writable open (in
// transactions of 7 events here).
func TestStreamIndexForOlderLedger(t *testing.T) {
	sqlite.SetStreamsIndexChunkForTest(t, 7)
	f := newFixture(t)
	s := f.open(t, sqlite.Options{})
	counts := map[string]int{}
	appendRoundRobin(t, s, 3, 40, counts)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	tamper(t, f.db, func(db execer) {
		exec(t, db, `DROP TABLE streams`)
		exec(t, db, `DELETE FROM meta WHERE key = 'streams_indexed'`)
	})
	ro := f.open(t, sqlite.Options{ReadOnly: true})
	checkStreams(t, ro, counts)
	if rep, err := ro.Verify(context.Background(), []string{f.fp}, nil); err != nil || rep.Events != 40 {
		t.Fatalf("verify the older ledger: %+v, %v", rep, err)
	}
	s = f.open(t, sqlite.Options{})
	if w, rows := indexState(t, f.db); w != 40 || rows != 40 {
		t.Fatalf("first writable open: the index covers %d events with %d rows, want 40", w, rows)
	}
	appendRoundRobin(t, s, 3, 6, counts)
	checkStreams(t, s, counts)
}

// The writer takes revisions from the stream index, so a writable open
// rebuilds an index that is not as the writer left it rather than trust
// it: rows deleted to hide a stream's tail (the writer would reuse its
// revisions), a watermark lowered or raised. It is rebuilt in transactions
// of 7 events here.
func TestStreamIndexRebuiltWhenAltered(t *testing.T) {
	sqlite.SetStreamsIndexChunkForTest(t, 7)
	for _, tc := range []struct{ name, sql string }{
		{"a stream's last rows deleted", `DELETE FROM streams WHERE stream = 's-0' AND revision >= 5`},
		{"watermark lowered", `UPDATE meta SET value = '10' WHERE key = 'streams_indexed'`},
		{"watermark raised, a row forged below 0", `UPDATE meta SET value = '31' WHERE key = 'streams_indexed'; INSERT INTO streams VALUES (-1, 's-0', 1000)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			s := f.open(t, sqlite.Options{})
			counts := map[string]int{}
			appendRoundRobin(t, s, 3, 30, counts)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			tamper(t, f.db, func(db execer) { exec(t, db, tc.sql) })
			s = f.open(t, sqlite.Options{})
			if w, rows := indexState(t, f.db); w != 30 || rows != 30 {
				t.Fatalf("reopened: the index covers %d events with %d rows, want 30", w, rows)
			}
			if _, err := s.Append(context.Background(), "s-0", ledger.Exact(4), storetest.Event("E")); !errors.Is(err, ledger.ErrWrongRevision) {
				t.Fatalf("append to s-0 at revision 4 of 9: %v, want ErrWrongRevision", err)
			}
			appendRoundRobin(t, s, 3, 3, counts)
			checkStreams(t, s, counts)
		})
	}
}
