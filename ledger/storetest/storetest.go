// Package storetest is the contract every ledger.Store must pass. A store's
// own tests call Run with a function that opens a fresh, empty store with
// ledger.DefaultLimits.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gowebpki/jcs"

	"github.com/evidence-parity/docket/ledger"
)

// Open returns a fresh, empty store; the suite closes nothing, so register
// cleanup with t.Cleanup.
type Open func(t *testing.T) ledger.Store

// Run runs the whole contract suite.
func Run(t *testing.T, open Open) {
	t.Run("AppendAndRead", func(t *testing.T) { testAppendAndRead(t, open(t)) })
	t.Run("CanonicalBytes", func(t *testing.T) { testCanonical(t, open(t)) })
	t.Run("ExpectedRevision", func(t *testing.T) { testExpectedRevision(t, open) })
	t.Run("RacingWriters", func(t *testing.T) { testRacingWriters(t, open(t)) })
	t.Run("ConcurrentStreams", func(t *testing.T) { testConcurrentStreams(t, open(t)) })
	t.Run("IdempotentRetry", func(t *testing.T) { testIdempotentRetry(t, open(t)) })
	t.Run("InvalidEvents", func(t *testing.T) { testInvalid(t, open(t)) })
	t.Run("PayloadLimits", func(t *testing.T) { testLimits(t, open(t)) })
	t.Run("Subscribe", func(t *testing.T) { testSubscribe(t, open(t)) })
	t.Run("SubscribeCancel", func(t *testing.T) { testSubscribeCancel(t, open(t)) })
}

// Event returns a valid event of type typ with the given data fields.
func Event(typ string, kv ...any) ledger.Event {
	data := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		data[kv[i].(string)] = kv[i+1]
	}
	raw, err := json.Marshal(data)
	if err != nil {
		panic(err)
	}
	return ledger.Event{Type: typ, Actor: ledger.Actor{Kind: ledger.ActorSystem, ID: "storetest"}, Data: raw}
}

func appendOK(t *testing.T, s ledger.Store, stream string, exp ledger.ExpectedRevision, evs ...ledger.Event) []ledger.Record {
	t.Helper()
	recs, err := s.Append(context.Background(), stream, exp, evs...)
	if err != nil {
		t.Fatalf("append %s (%s): %v", stream, exp, err)
	}
	if len(recs) != len(evs) {
		t.Fatalf("append %s returned %d records, want %d", stream, len(recs), len(evs))
	}
	return recs
}

func readAll(t *testing.T, s ledger.Store, from uint64) []ledger.Record {
	t.Helper()
	var out []ledger.Record
	for r, err := range s.ReadAll(context.Background(), from) {
		if err != nil {
			t.Fatalf("read all: %v", err)
		}
		out = append(out, r)
	}
	return out
}

func testAppendAndRead(t *testing.T, s ledger.Store) {
	ctx := context.Background()
	a := appendOK(t, s, "change-a", ledger.NoStream, Event("PlanSubmitted", "n", 1), Event("PlanViewed", "n", 2))
	b := appendOK(t, s, "change-b", ledger.Any, Event("PlanSubmitted", "n", 3))
	c := appendOK(t, s, "change-a", ledger.Exact(1), Event("PlanApproved", "n", 4))
	got := readAll(t, s, 0)
	want := []struct {
		pos    uint64
		stream string
		rev    uint64
		typ    string
	}{{0, "change-a", 0, "PlanSubmitted"}, {1, "change-a", 1, "PlanViewed"}, {2, "change-b", 0, "PlanSubmitted"}, {3, "change-a", 2, "PlanApproved"}}
	if len(got) != len(want) {
		t.Fatalf("read %d records, want %d", len(got), len(want))
	}
	for i, w := range want {
		r := got[i]
		if r.Position != w.pos || r.Event.Stream != w.stream || r.Event.Revision != w.rev || r.Event.Type != w.typ {
			t.Errorf("record %d = pos %d %s@%d %s, want pos %d %s@%d %s", i, r.Position, r.Event.Stream, r.Event.Revision, r.Event.Type, w.pos, w.stream, w.rev, w.typ)
		}
	}
	returned := append(append(append([]ledger.Record{}, a...), b...), c...)
	for i := range returned {
		if !bytes.Equal(returned[i].Canonical, got[i].Canonical) || returned[i].Position != got[i].Position {
			t.Errorf("record %d: append returned %d %s, read back %d %s", i, returned[i].Position, returned[i].Canonical, got[i].Position, got[i].Canonical)
		}
	}
	if tail := readAll(t, s, 2); len(tail) != 2 || tail[0].Position != 2 {
		t.Errorf("ReadAll(2) = %d records starting at %v, want 2 starting at 2", len(tail), tail)
	}
	stream, err := s.ReadStream(ctx, "change-a", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(stream) != 2 || stream[0].Event.Revision != 1 || stream[1].Event.Revision != 2 {
		t.Errorf("ReadStream(change-a, 1) = %+v, want revisions 1, 2", stream)
	}
	missing, err := s.ReadStream(ctx, "change-none", 0)
	if err != nil || len(missing) != 0 {
		t.Errorf("ReadStream(missing) = %d records, %v; want none, nil", len(missing), err)
	}
	for _, r := range got {
		if _, err := uuid.Parse(r.Event.ID); err != nil {
			t.Errorf("assigned id %q is not a UUID: %v", r.Event.ID, err)
		}
		if r.Event.Time.IsZero() || r.Event.Time.Location() != time.UTC {
			t.Errorf("time %v: want a UTC time assigned", r.Event.Time)
		}
	}
}

// testCanonical checks stored bytes against gowebpki/jcs applied to the
// decoded envelope, independently of how the store produced them.
func testCanonical(t *testing.T, s ledger.Store) {
	e := Event("PlanSubmitted", "objective", "ship \u2028 it \"now\"", "z", 1.5e3, "a", []any{true, nil, "é"}, "nested", map[string]any{"b": 1, "a": "<&>"})
	e.Correlation, e.Causation = "change-x", "0192f5a0-0000-7000-8000-000000000000"
	e.Actor.Credential = "cred-1"
	recs := appendOK(t, s, "change-x", ledger.Any, e)
	appendOK(t, s, "change-x", ledger.Any, Event("A"), Event("B"), Event("C"), Event("D"), Event("E"), Event("F"), Event("G"), Event("H"), Event("I"), Event("J"), Event("K"))
	for _, r := range append(recs, readAll(t, s, 0)...) {
		raw, err := json.Marshal(r.Event)
		if err != nil {
			t.Fatal(err)
		}
		want, err := jcs.Transform(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(r.Canonical, want) {
			t.Errorf("position %d canonical bytes\n got %s\nwant %s", r.Position, r.Canonical, want)
		}
		again, err := jcs.Transform(r.Canonical)
		if err != nil || !bytes.Equal(again, r.Canonical) {
			t.Errorf("position %d: canonical bytes are not a fixed point of JCS", r.Position)
		}
	}
}

func testExpectedRevision(t *testing.T, open Open) {
	cases := []struct {
		name     string
		existing int // events already in the stream
		expected ledger.ExpectedRevision
		ok       bool
	}{
		{"any on new stream", 0, ledger.Any, true},
		{"any on existing", 2, ledger.Any, true},
		{"no stream on new", 0, ledger.NoStream, true},
		{"no stream on existing", 1, ledger.NoStream, false},
		{"exists on new", 0, ledger.StreamExists, false},
		{"exists on existing", 1, ledger.StreamExists, true},
		{"exact matches", 3, ledger.Exact(2), true},
		{"exact behind", 3, ledger.Exact(1), false},
		{"exact ahead", 3, ledger.Exact(3), false},
		{"exact 0 on new", 0, ledger.Exact(0), false},
		{"exact at the largest revision on new", 0, ledger.Exact(math.MaxUint64), false},
		{"exact at the largest revision on existing", 2, ledger.Exact(math.MaxUint64), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			appendOK(t, s, "other", ledger.Any, Event("X"))
			for i := 0; i < tc.existing; i++ {
				appendOK(t, s, "s", ledger.Any, Event("X"))
			}
			before := len(readAll(t, s, 0))
			recs, err := s.Append(context.Background(), "s", tc.expected, Event("Y"), Event("Z"))
			after := len(readAll(t, s, 0))
			if tc.ok {
				if err != nil {
					t.Fatalf("append: %v", err)
				}
				if recs[0].Event.Revision != uint64(tc.existing) || after != before+2 {
					t.Errorf("first revision %d, log %d→%d; want revision %d and 2 more events", recs[0].Event.Revision, before, after, tc.existing)
				}
				return
			}
			if !errors.Is(err, ledger.ErrWrongRevision) {
				t.Fatalf("append: got %v, want ErrWrongRevision", err)
			}
			if after != before {
				t.Errorf("a refused append wrote %d events", after-before)
			}
		})
	}
}

func testRacingWriters(t *testing.T, s ledger.Store) {
	const rounds = 50
	appendOK(t, s, "race", ledger.NoStream, Event("Start"))
	for round := uint64(0); round < rounds; round++ {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for w := range errs {
			wg.Go(func() {
				_, errs[w] = s.Append(context.Background(), "race", ledger.Exact(round), Event("Step", "writer", w))
			})
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, ledger.ErrWrongRevision):
				t.Fatalf("round %d: unexpected error %v", round, err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d writers won, want exactly 1", round, wins)
		}
	}
	recs, err := s.ReadStream(context.Background(), "race", 0)
	if err != nil || len(recs) != rounds+1 {
		t.Fatalf("stream has %d events (%v), want %d", len(recs), err, rounds+1)
	}
}

func testConcurrentStreams(t *testing.T, s ledger.Store) {
	const writers, each = 16, 40
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Go(func() {
			for i := 0; i < each; i++ {
				if _, err := s.Append(context.Background(), fmt.Sprintf("w-%d", w), ledger.Any, Event("E", "i", i)); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	recs := readAll(t, s, 0)
	if len(recs) != writers*each {
		t.Fatalf("log has %d events, want %d", len(recs), writers*each)
	}
	next := map[string]uint64{}
	for i, r := range recs {
		if r.Position != uint64(i) {
			t.Fatalf("record %d has position %d: positions must be gap-free", i, r.Position)
		}
		if r.Event.Revision != next[r.Event.Stream] {
			t.Fatalf("position %d: %s revision %d, want %d", i, r.Event.Stream, r.Event.Revision, next[r.Event.Stream])
		}
		next[r.Event.Stream]++
	}
}

func withIDs(evs ...ledger.Event) []ledger.Event {
	for i := range evs {
		evs[i].ID = uuid.Must(uuid.NewV7()).String()
	}
	return evs
}

func testIdempotentRetry(t *testing.T, s ledger.Store) {
	ctx := context.Background()
	evs := withIDs(Event("A"), Event("B"))
	first := appendOK(t, s, "idem", ledger.NoStream, evs...)
	appendOK(t, s, "other", ledger.Any, Event("C"))
	// The same append again, as a client retries after a lost reply: even
	// its expected revision no longer holds, yet it succeeds without writing.
	again, err := s.Append(ctx, "idem", ledger.NoStream, evs...)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	for i := range first {
		if again[i].Position != first[i].Position || !bytes.Equal(again[i].Canonical, first[i].Canonical) {
			t.Errorf("retry record %d = %d, want the original %d", i, again[i].Position, first[i].Position)
		}
	}
	if n := len(readAll(t, s, 0)); n != 3 {
		t.Fatalf("log has %d events after a retry, want 3", n)
	}
	for _, tc := range []struct {
		name   string
		stream string
		evs    []ledger.Event
	}{
		{"same ids, other stream", "elsewhere", evs},
		{"one id reused after a new one", "idem", append(withIDs(Event("D")), evs[0])},
		{"one id reused before a new one", "idem", append([]ledger.Event{evs[1]}, withIDs(Event("D"))...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Append(ctx, tc.stream, ledger.Any, tc.evs...)
			if !errors.Is(err, ledger.ErrDuplicateEvent) {
				t.Fatalf("got %v, want ErrDuplicateEvent", err)
			}
			if n := len(readAll(t, s, 0)); n != 3 {
				t.Fatalf("log has %d events, want 3: nothing may be written", n)
			}
		})
	}
}

func testInvalid(t *testing.T, s ledger.Store) {
	good := Event("T")
	cases := []struct {
		name   string
		stream string
		mutate func(*ledger.Event)
	}{
		{"empty stream", "", nil},
		{"NUL in stream", "a\x00b", nil},
		{"invalid UTF-8 stream", "a\xffb", nil},
		{"empty type", "s", func(e *ledger.Event) { e.Type = "" }},
		{"invalid JSON data", "s", func(e *ledger.Event) { e.Data = json.RawMessage(`{"a":`) }},
		{"data not an object", "s", func(e *ledger.Event) { e.Data = json.RawMessage(`[1,2]`) }},
		{"no data", "s", func(e *ledger.Event) { e.Data = nil }},
		{"unknown actor kind", "s", func(e *ledger.Event) { e.Actor.Kind = "robot" }},
		{"empty actor id", "s", func(e *ledger.Event) { e.Actor.ID = "" }},
		{"number JCS cannot represent", "s", func(e *ledger.Event) { e.Data = json.RawMessage(`{"n":1e999}`) }},
		{"year 10000", "s", func(e *ledger.Event) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"data nested past MaxDepth", "s", func(e *ledger.Event) {
			n := ledger.MaxDepth
			e.Data = json.RawMessage(`{"a":` + strings.Repeat("[", n) + `"\"]"` + strings.Repeat("]", n) + `}`)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := good
			if tc.mutate != nil {
				tc.mutate(&e)
			}
			// The bad event rides with a good one: the whole append must fail.
			_, err := s.Append(context.Background(), tc.stream, ledger.Any, Event("Fine"), e)
			if !errors.Is(err, ledger.ErrInvalidEvent) {
				t.Fatalf("got %v, want ErrInvalidEvent", err)
			}
			if n := len(readAll(t, s, 0)); n != 0 {
				t.Fatalf("log has %d events, want 0", n)
			}
		})
	}
	if _, err := s.Append(context.Background(), "s", ledger.Any); !errors.Is(err, ledger.ErrInvalidEvent) {
		t.Errorf("append of no events: got %v, want ErrInvalidEvent", err)
	}
}

// Limited is a store whose limits are not ledger.DefaultLimits (a backend
// with a smaller atomic write); the suite tests those.
type Limited interface{ Limits() ledger.Limits }

func limitsOf(s ledger.Store) ledger.Limits {
	if l, ok := s.(Limited); ok {
		return l.Limits()
	}
	return ledger.DefaultLimits
}

func testLimits(t *testing.T, s ledger.Store) {
	limits := limitsOf(s)
	max := limits.MaxData
	pad := func(n int) ledger.Event {
		e := Event("Big")
		e.Data = json.RawMessage(`{"p":"` + strings.Repeat("x", n-len(`{"p":""}`)) + `"}`)
		return e
	}
	recs := appendOK(t, s, "big", ledger.Any, pad(max))
	if got := len(recs[0].Event.Data); got != max {
		t.Fatalf("stored data of %d bytes, want %d", got, max)
	}
	_, err := s.Append(context.Background(), "big", ledger.Any, Event("Fine"), pad(max+1))
	if !errors.Is(err, ledger.ErrTooLarge) {
		t.Fatalf("data of %d bytes: got %v, want ErrTooLarge", max+1, err)
	}
	many := make([]ledger.Event, limits.MaxEvents+1)
	for i := range many {
		many[i] = Event("E")
	}
	if _, err := s.Append(context.Background(), "many", ledger.Any, many...); !errors.Is(err, ledger.ErrTooLarge) {
		t.Fatalf("%d events in one append: got %v, want ErrTooLarge", len(many), err)
	}
	if limits.MaxAppendBytes > 0 {
		// Events each within MaxData but together past MaxAppendBytes.
		n := limits.MaxAppendBytes/max + 2
		heavy := make([]ledger.Event, n)
		for i := range heavy {
			heavy[i] = pad(max)
		}
		if _, err := s.Append(context.Background(), "heavy", ledger.Any, heavy...); !errors.Is(err, ledger.ErrTooLarge) {
			t.Fatalf("%d events of %d bytes in one append: got %v, want ErrTooLarge", n, max, err)
		}
	}
	if n := len(readAll(t, s, 0)); n != 1 {
		t.Fatalf("log has %d events, want 1", n)
	}
	big := readAll(t, s, 0)[0]
	if !bytes.Equal(big.Canonical, recs[0].Canonical) {
		t.Fatalf("the %d-byte event did not read back intact", max)
	}
}

func testSubscribe(t *testing.T, s ledger.Store) {
	const before, during = 1500, 1500 // more than a page either side
	const total = before + during
	batch := func(n int) []ledger.Event {
		evs := make([]ledger.Event, n)
		for i := range evs {
			evs[i] = Event("E", "i", i)
		}
		return evs
	}
	for i := 0; i < before; i += 100 {
		appendOK(t, s, fmt.Sprintf("sub-%d", i%7), ledger.Any, batch(100)...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	starts := []uint64{0, 1, 700, before - 1, before, before + 10, total - 1}
	var wg sync.WaitGroup
	results := make([][]uint64, len(starts))
	for i, from := range starts {
		wg.Go(func() {
			for r, err := range s.Subscribe(ctx, from) {
				if err != nil {
					t.Errorf("subscription from %d: %v", from, err)
					return
				}
				results[i] = append(results[i], r.Position)
				if r.Position == total-1 {
					return
				}
			}
		})
	}
	for i := 0; i < during; {
		n := 1 + i%13
		if i+n > during {
			n = during - i
		}
		appendOK(t, s, fmt.Sprintf("sub-%d", i%5), ledger.Any, batch(n)...)
		i += n
	}
	wg.Wait()
	for i, from := range starts {
		got := results[i]
		if uint64(len(got)) != total-from {
			t.Errorf("subscription from %d saw %d events, want %d", from, len(got), total-from)
			continue
		}
		for j, p := range got {
			if p != from+uint64(j) {
				t.Errorf("subscription from %d: event %d has position %d, want %d (gap or duplicate)", from, j, p, from+uint64(j))
				break
			}
		}
	}
}

func testSubscribeCancel(t *testing.T, s ledger.Store) {
	appendOK(t, s, "c", ledger.Any, Event("A"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		var last error
		n := 0
		for _, err := range s.Subscribe(ctx, 0) {
			if err != nil {
				last = err
				continue
			}
			n++
			if n == 1 {
				cancel()
			}
		}
		done <- last
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled subscription ended with %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("subscription did not end after its context was cancelled")
	}
}

// CheckRecentCheckpoints checks a store's RecentCheckpoints against every
// checkpoint it holds (all, oldest first): the n latest, latest first, for
// n below, at and above the count.
func CheckRecentCheckpoints(t *testing.T, all [][]byte, recent func(ctx context.Context, n int) ([][]byte, error)) {
	t.Helper()
	for _, n := range []int{1, 2, len(all), len(all) + 3} {
		got, err := recent(context.Background(), n)
		if err != nil {
			t.Fatalf("RecentCheckpoints(%d): %v", n, err)
		}
		want := [][]byte{}
		for i := len(all) - 1; i >= 0 && len(want) < n; i-- {
			want = append(want, all[i])
		}
		if len(got) != len(want) {
			t.Fatalf("RecentCheckpoints(%d) of %d: %d notes, want %d", n, len(all), len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("RecentCheckpoints(%d)[%d] = %q, want %q", n, i, got[i], want[i])
			}
		}
	}
}
