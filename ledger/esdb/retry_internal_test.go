package esdb

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/evidence-parity/docket/ledger"
	"github.com/evidence-parity/docket/ledger/esdb/esdbtest"
	"github.com/evidence-parity/docket/ledger/storetest"
)

// standIn is a fresh EventStoreDB stand-in (esdbtest) for the tests that
// need the store's insides.
func standIn(t *testing.T) *esdbtest.Server {
	t.Helper()
	srv, err := esdbtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

// A retried Any append whose first attempt reached EventStoreDB but not
// yet this node's index (a follower resubscribing after a leader change)
// writes nothing the second time.
func TestRetryWhileTheIndexLagsWritesOnce(t *testing.T) {
	srv := standIn(t)
	ctx := context.Background()
	s, err := Open(ctx, Config{Remote: Remote{URL: srv.URL()}, Path: filepath.Join(t.TempDir(), "i.db"), IndexWait: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Append(ctx, "change-1", ledger.Any, storetest.Event("Seed")); err != nil {
		t.Fatal(err)
	}
	s.stopFollow() // the index stops here
	<-s.followDone
	ev := storetest.Event("ActionRecorded", "n", 1)
	ev.ID = "0190e0d6-0000-7000-8000-000000000001"
	for attempt := range 2 {
		if _, err := s.Append(ctx, "change-1", ledger.Any, ev); err == nil {
			t.Fatalf("attempt %d succeeded with the index stopped", attempt)
		}
	}
	evs, _, err := s.readStream(ctx, s.esdbStream("change-1"), 0, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if e.EventID == EventID(ev.ID) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("the event is in EventStoreDB %d times after a retry, want once", n)
	}
}

// One id appended to two streams at once on one node: one append wins,
// the other gets ErrDuplicateEvent.
func TestOneIDTwoStreamsAtOnce(t *testing.T) {
	srv := standIn(t)
	ctx := context.Background()
	s, err := Open(ctx, Config{Remote: Remote{URL: srv.URL()}, Path: filepath.Join(t.TempDir(), "i.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 30 {
		ev := storetest.Event("E", "i", i)
		ev.ID = fmt.Sprintf("0190e0d6-0000-7000-8000-%012d", i)
		errs := make(chan error, 2)
		for _, st := range []string{"a", "b"} {
			go func() { _, err := s.Append(ctx, st, ledger.Any, ev); errs <- err }()
		}
		e1, e2 := <-errs, <-errs
		if (e1 == nil) == (e2 == nil) || !errors.Is(errors.Join(e1, e2), ledger.ErrDuplicateEvent) {
			t.Fatalf("id %s: %v / %v; want one success and one ErrDuplicateEvent", ev.ID, e1, e2)
		}
	}
}
