package esdb

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"

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

// A node whose EventStoreDB was restored from an older backup (same ledger,
// fewer events) refuses to start on its local index, which runs past the
// restored log's end, rather than signing events EventStoreDB lost.
func TestRestoredFromAnOlderBackup(t *testing.T) {
	ctx := context.Background()
	a := standIn(t)
	path := filepath.Join(t.TempDir(), "i.db")
	s, err := Open(ctx, Config{Remote: Remote{URL: a.URL()}, Path: path})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := s.Append(ctx, "change-1", ledger.Any, storetest.Event("E", "i", i)); err != nil {
			t.Fatal(err)
		}
	}
	// copy writes the checkpoint stream and change-1's first n events into
	// a fresh server, after pad events of another application.
	copyTo := func(n, pad int) *esdbtest.Server {
		b := standIn(t)
		restored, err := Dial(Remote{URL: b.URL()})
		if err != nil {
			t.Fatal(err)
		}
		defer restored.Close()
		write := func(name string, data []kurrentdb.EventData) {
			if err := restored.do(ctx, func(c *kurrentdb.Client) error {
				_, err := c.AppendToStream(ctx, name, kurrentdb.AppendToStreamOptions{}, data...)
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
		for range pad {
			write("other-app", []kurrentdb.EventData{{EventType: "Tick", ContentType: kurrentdb.ContentTypeJson, Data: []byte(`{}`)}})
		}
		for _, st := range []struct {
			name string
			n    int
		}{{s.cpStream, 1 << 20}, {s.esdbStream("change-1"), n}} {
			evs, _, err := s.readStream(ctx, st.name, 0, false, 0)
			if err != nil {
				t.Fatal(err)
			}
			var data []kurrentdb.EventData
			for _, e := range evs[:min(st.n, len(evs))] {
				data = append(data, kurrentdb.EventData{EventID: e.EventID, EventType: e.EventType, ContentType: kurrentdb.ContentTypeJson, Data: e.Data})
			}
			write(st.name, data)
		}
		return b
	}
	older, moved := copyTo(5, 0), copyTo(10, 7)
	s.Close()
	for name, srv := range map[string]*esdbtest.Server{"an older backup": older, "the whole log at other positions": moved} {
		if s2, err := Open(ctx, Config{Remote: Remote{URL: srv.URL()}, Path: path, IndexWait: time.Second}); err == nil {
			s2.Close()
			t.Fatalf("%s: the node started on an index that does not match it", name)
		} else if !strings.Contains(err.Error(), "no longer holds") {
			t.Fatalf("%s: got %v, want it to say EventStoreDB no longer holds the index's last event as indexed", name, err)
		}
	}
	// On the original server it starts.
	s3, err := Open(ctx, Config{Remote: Remote{URL: a.URL()}, Path: path})
	if err != nil {
		t.Fatal(err)
	}
	s3.Close()
}

// Different ledger ids never share an EventStoreDB id.
func TestEventIDsAreDistinct(t *testing.T) {
	lower := "0190e0d6-0000-7000-8000-00000000000a"
	ids := []string{lower, strings.ToUpper(lower), "{" + lower + "}", "urn:uuid:" + lower, "evt-1"}
	seen := map[string]string{}
	for _, id := range ids {
		e := EventID(id).String()
		if other, dup := seen[e]; dup {
			t.Fatalf("%q and %q map to one EventStoreDB id %s", other, id, e)
		}
		seen[e] = id
	}
	if EventID(lower).String() != lower {
		t.Fatal("a canonical UUID is not its own EventStoreDB id")
	}
}
