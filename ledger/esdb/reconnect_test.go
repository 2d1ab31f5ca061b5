package esdb_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/evidence-parity/docket/ledger"
	"github.com/evidence-parity/docket/ledger/esdb"
	"github.com/evidence-parity/docket/ledger/storetest"
)

// TestSubscribeSurvivesServerLoss: the node's subscription to $all is
// dropped (as at a leader change) and later the server goes away and
// comes back on the same address, long enough for the client to give up
// on it; Subscribe still yields every position once, in order.
func TestSubscribeSurvivesServerLoss(t *testing.T) {
	if shared.standIn == nil {
		t.Skip("DOCKET_ESDB_URL points at a real server, which this test cannot stop, restart or make drop its subscriptions; CI runs it against the stand-in")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := openStore(t, esdb.Config{Remote: names(t)})
	const rounds, each = 3, 40
	got := make(chan uint64, rounds*each)
	go func() {
		for r, err := range s.Subscribe(ctx, 0) {
			if err != nil {
				return
			}
			got <- r.Position
		}
	}()
	appendSome := func(round int) {
		t.Helper()
		for i := range each {
			if _, err := s.Append(ctx, fmt.Sprintf("r%d", i%3), ledger.Any, storetest.Event("E", "round", round, "i", i)); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
	appendSome(0)
	shared.standIn.DropSubscriptions()
	appendSome(1)
	shared.standIn.Stop()
	time.Sleep(1500 * time.Millisecond) // the client's discovery gives up after about a second
	if err := shared.standIn.Restart(); err != nil {
		t.Fatal(err)
	}
	appendSome(2)
	for want := uint64(0); want < rounds*each; want++ {
		select {
		case p := <-got:
			if p != want {
				t.Fatalf("subscription yielded position %d, want %d (gap or repeat)", p, want)
			}
		case <-ctx.Done():
			t.Fatalf("subscription stalled before position %d", want)
		}
	}
	select {
	case p := <-got:
		t.Fatalf("subscription yielded position %d beyond the %d events", p, rounds*each)
	case <-time.After(100 * time.Millisecond):
	}
	if size, _, _ := s.Head(ctx); size != rounds*each {
		t.Fatalf("tree size %d, want %d", size, rounds*each)
	}
}
