package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/evidence-parity/docket/ledger"
	"github.com/evidence-parity/docket/ledger/sqlite"
	"github.com/evidence-parity/docket/ledger/storetest"
)

// ReadStream answers reads past a cached stream head without a query; these
// tests hold it to what the database says.
func TestReadStreamHeads(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "a", ledger.NoStream, storetest.Event("E"), storetest.Event("E")); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Reopened: the head of "a" is learnt from a read, not an append.
	s, err = sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, from := range []uint64{0, 1, 2, 0} {
		recs, err := s.ReadStream(ctx, "a", from)
		if err != nil || len(recs) != int(2-from) {
			t.Fatalf("ReadStream(a, %d) = %d records, %v; want %d", from, len(recs), err, 2-from)
		}
	}
	if _, err := s.Append(ctx, "a", ledger.Exact(1), storetest.Event("E")); err != nil {
		t.Fatal(err)
	}
	if recs, err := s.ReadStream(ctx, "a", 2); err != nil || len(recs) != 1 || recs[0].Event.Revision != 2 {
		t.Fatalf("ReadStream(a, 2) after an append = %+v, %v; want revision 2", recs, err)
	}
	if recs, err := s.ReadStream(ctx, "b", 0); err != nil || len(recs) != 0 {
		t.Fatalf("ReadStream(b, 0) = %d records, %v; want none", len(recs), err)
	}
	if _, err := s.Append(ctx, "b", ledger.NoStream, storetest.Event("E")); err != nil {
		t.Fatal(err)
	}
	if recs, err := s.ReadStream(ctx, "b", 0); err != nil || len(recs) != 1 {
		t.Fatalf("ReadStream(b, 0) after an append = %d records, %v; want 1", len(recs), err)
	}
}

// Every append is visible to a read that starts after it returned, while
// other goroutines read the same streams and learn their heads.
func TestReadStreamHeadsConcurrent(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ledger.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const streams, each = 4, 60
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for r := range 4 {
		readers.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.ReadStream(ctx, fmt.Sprintf("s-%d", (i+r)%streams), uint64(i%3)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var writers sync.WaitGroup
	for w := range streams {
		writers.Go(func() {
			stream := fmt.Sprintf("s-%d", w)
			for i := range each {
				if _, err := s.Append(ctx, stream, ledger.Any, storetest.Event("E")); err != nil {
					t.Error(err)
					return
				}
				recs, err := s.ReadStream(ctx, stream, uint64(i))
				if err != nil || len(recs) != 1 || recs[0].Event.Revision != uint64(i) {
					t.Errorf("%s: ReadStream from %d after its append = %d records, %v; want revision %d", stream, i, len(recs), err, i)
					return
				}
			}
		})
	}
	writers.Wait()
	close(stop)
	readers.Wait()
}
