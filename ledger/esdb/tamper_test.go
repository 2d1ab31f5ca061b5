package esdb_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"

	"github.com/evidence-parity/docket/anchors"
	"github.com/evidence-parity/docket/ledger"
	"github.com/evidence-parity/docket/ledger/esdb"
	"github.com/evidence-parity/docket/ledger/storetest"
)

// signed is a closed ledger of 12 events in three streams, one checkpoint
// after each append, as the tamper cases start from.
type signed struct {
	remote  esdb.Remote
	fp      string
	records []ledger.Record
	notes   [][]byte
	signer  anchors.Signer
}

func newSigner(t *testing.T) (anchors.Signer, string) {
	t.Helper()
	s, err := anchors.OpenFileSigner(filepath.Join(t.TempDir(), "checkpoint.pem"), true)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := anchors.Fingerprint(s.Public())
	if err != nil {
		t.Fatal(err)
	}
	return s, fp
}

func buildSigned(t *testing.T) signed {
	t.Helper()
	ctx := context.Background()
	signer, fp := newSigner(t)
	o := signed{remote: names(t), fp: fp, signer: signer}
	s, err := esdb.Open(ctx, esdb.Config{Remote: o.remote, Path: filepath.Join(t.TempDir(), "index.db"), Signer: signer, CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		recs, err := s.Append(ctx, fmt.Sprintf("change-%d", i%3), ledger.Any, storetest.Event("Step", "n", i))
		if err != nil {
			t.Fatal(err)
		}
		o.records = append(o.records, recs...)
		if _, err := s.Checkpoint(ctx); err != nil {
			t.Fatal(err)
		}
		n, _, err := s.LatestCheckpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		o.notes = append(o.notes, n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return o
}

// client is a plain KurrentDB client, as an operator with access to
// EventStoreDB would use to tamper.
func client(t *testing.T) *kurrentdb.Client {
	t.Helper()
	cfg, err := kurrentdb.ParseConnectionString(shared.url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = kurrentdb.NoopLogging()
	c, err := kurrentdb.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func verify(t *testing.T, r esdb.Remote, fp string, trusted [][]byte) (ledger.Report, error) {
	t.Helper()
	l, err := esdb.Dial(r)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Verify(context.Background(), []string{fp}, trusted, false)
}

// reappend writes canonical bytes as new events of an EventStoreDB stream,
// keeping their ledger ids: what an operator rewriting history would do.
func reappend(t *testing.T, c *kurrentdb.Client, stream string, canon ...[]byte) {
	t.Helper()
	var evs []kurrentdb.EventData
	for _, b := range canon {
		env, err := ledger.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, kurrentdb.EventData{EventID: uuid.New(), EventType: env.Type, ContentType: kurrentdb.ContentTypeJson, Data: b})
	}
	if _, err := c.AppendToStream(context.Background(), stream, kurrentdb.AppendToStreamOptions{}, evs...); err != nil {
		t.Fatal(err)
	}
}

// rewrite soft-deletes change-1 and re-appends its events' canonical bytes
// as collect arranges them (altered, reordered).
func rewrite(collect func(b []byte, canon [][]byte) [][]byte) func(*testing.T, signed, *kurrentdb.Client) {
	return func(t *testing.T, o signed, c *kurrentdb.Client) {
		if _, err := c.DeleteStream(context.Background(), o.remote.Prefix+"change-1", kurrentdb.DeleteStreamOptions{}); err != nil {
			t.Fatal(err)
		}
		var canon [][]byte
		for _, r := range o.records {
			if r.Event.Stream == "change-1" {
				canon = collect(r.Canonical, canon)
			}
		}
		reappend(t, c, o.remote.Prefix+"change-1", canon...)
	}
}

func TestVerifyIntact(t *testing.T) {
	o := buildSigned(t)
	rep, err := verify(t, o.remote, o.fp, o.notes[5:6])
	if err != nil {
		t.Fatalf("intact ledger: %v", err)
	}
	if rep.Events != 12 || rep.Checkpoints != 12 || rep.Latest.Size != 12 {
		t.Errorf("report %+v, want 12 events, 12 checkpoints, latest size 12", rep)
	}
}

func TestVerifyCatchesTampering(t *testing.T) {
	ctx := context.Background()
	// Positions of change-1's events: 1, 4, 7, 10 (revisions 0..3).
	cases := []struct {
		name     string
		scavenge bool // then run a scavenge (the stand-in's; a real server's needs its operations API)
		edit     func(t *testing.T, o signed, c *kurrentdb.Client)
		position int64
		reason   []string
	}{
		{
			name: "stream soft-deleted",
			edit: func(t *testing.T, o signed, c *kurrentdb.Client) {
				if _, err := c.DeleteStream(ctx, o.remote.Prefix+"change-1", kurrentdb.DeleteStreamOptions{}); err != nil {
					t.Fatal(err)
				}
			},
			position: 1, reason: []string{"event missing", "change-1 revision 0", "deleted"},
		},
		{
			name: "stream tombstoned",
			edit: func(t *testing.T, o signed, c *kurrentdb.Client) {
				if _, err := c.TombstoneStream(ctx, o.remote.Prefix+"change-1", kurrentdb.TombstoneStreamOptions{}); err != nil {
					t.Fatal(err)
				}
			},
			position: 1, reason: []string{"event missing", "change-1 revision 0", "tombstoned"},
		},
		{
			name: "stream truncated with $tb",
			edit: func(t *testing.T, o signed, c *kurrentdb.Client) {
				var meta kurrentdb.StreamMetadata
				meta.SetTruncateBefore(2)
				if _, err := c.SetStreamMetadata(ctx, o.remote.Prefix+"change-1", kurrentdb.AppendToStreamOptions{}, meta); err != nil {
					t.Fatal(err)
				}
			},
			position: 1, reason: []string{"event missing", "change-1 revision 0", "truncate-before"},
		},
		{
			name: "event altered: stream deleted and re-appended with different data",
			edit: rewrite(func(b []byte, canon [][]byte) [][]byte {
				return append(canon, bytes.Replace(b, []byte(`"Step"`), []byte(`"Stop"`), 1))
			}),
			position: 1, reason: []string{"event missing", "change-1 revision 0"},
		},
		{
			name:     "event altered, then scavenged",
			scavenge: true,
			edit: rewrite(func(b []byte, canon [][]byte) [][]byte {
				return append(canon, bytes.Replace(b, []byte(`"Step"`), []byte(`"Stop"`), 1))
			}),
			position: 1, reason: []string{"do not match the signed checkpoint"},
		},
		{
			name:     "stream reordered: deleted and its events re-appended in another order",
			edit:     rewrite(func(b []byte, canon [][]byte) [][]byte { return append([][]byte{b}, canon...) }),
			position: 1, reason: []string{"event missing", "change-1 revision 0"},
		},
		{
			name:     "stream reordered, then scavenged",
			scavenge: true,
			edit:     rewrite(func(b []byte, canon [][]byte) [][]byte { return append([][]byte{b}, canon...) }),
			position: 1, reason: []string{"do not match the signed checkpoint"},
		},
		{
			name: "event forged into a Docket stream after the last checkpoint",
			edit: func(t *testing.T, o signed, c *kurrentdb.Client) {
				forged := []byte(`{"actor":{"id":"mallory","kind":"human"},"data":{},"id":"forged-1","revision":4,"stream":"change-1","time":"2026-01-01T00:00:00Z","type":"PlanApproved"}`)
				reappend(t, c, o.remote.Prefix+"change-1", forged)
			},
			position: 12, reason: []string{"does not derive from the envelope's id"},
		},
		{
			name: "another application's event under Docket's prefix",
			edit: func(t *testing.T, o signed, c *kurrentdb.Client) {
				if _, err := c.AppendToStream(ctx, o.remote.Prefix+"metrics", kurrentdb.AppendToStreamOptions{},
					kurrentdb.EventData{EventID: uuid.New(), EventType: "Tick", ContentType: kurrentdb.ContentTypeBinary, Data: []byte("\x08\x96\x01 binary")}); err != nil {
					t.Fatal(err)
				}
			},
			position: 12, reason: []string{"foreign event", "metrics", "not a ledger envelope"},
		},
		{
			name: "a JSON object that is no envelope, in a Docket stream",
			edit: func(t *testing.T, o signed, c *kurrentdb.Client) {
				if _, err := c.AppendToStream(ctx, o.remote.Prefix+"change-1", kurrentdb.AppendToStreamOptions{},
					kurrentdb.EventData{EventID: uuid.New(), EventType: "Step", ContentType: kurrentdb.ContentTypeJson, Data: []byte(`{"note":"hi"}`)}); err != nil {
					t.Fatal(err)
				}
			},
			position: 12, reason: []string{"foreign event", "change-1", "canonical form"},
		},
		{
			name: "checkpoint stream truncated with $tb",
			edit: func(t *testing.T, o signed, c *kurrentdb.Client) {
				var meta kurrentdb.StreamMetadata
				meta.SetTruncateBefore(8)
				if _, err := c.SetStreamMetadata(ctx, o.remote.CheckpointStream, kurrentdb.AppendToStreamOptions{}, meta); err != nil {
					t.Fatal(err)
				}
			},
			position: -1, reason: []string{"not LedgerCreated at 0"},
		},
		{
			name: "checkpoint stream deleted",
			edit: func(t *testing.T, o signed, c *kurrentdb.Client) {
				if _, err := c.DeleteStream(ctx, o.remote.CheckpointStream, kurrentdb.DeleteStreamOptions{}); err != nil {
					t.Fatal(err)
				}
			},
			position: -1, reason: []string{"no Docket ledger"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.scavenge && shared.standIn == nil {
				t.Skip("DOCKET_ESDB_URL points at a real server: scavenging it needs its operations API, which these tests do not drive; CI runs this case against the stand-in")
			}
			o := buildSigned(t)
			tc.edit(t, o, client(t))
			if tc.scavenge {
				shared.standIn.Scavenge()
			}
			_, err := verify(t, o.remote, o.fp, nil)
			var f *ledger.Failure
			if !errors.As(err, &f) {
				t.Fatalf("verify: got %v, want a *ledger.Failure", err)
			}
			if f.Position != tc.position {
				t.Errorf("got %q (position %d), want position %d", err, f.Position, tc.position)
			}
			for _, want := range tc.reason {
				if !strings.Contains(f.Reason, want) {
					t.Errorf("got %q, want a reason with %q", f.Reason, want)
				}
			}
			if strings.Contains(f.Reason, "event missing") && !strings.Contains(f.Reason, o.records[f.Position].Event.ID) {
				t.Errorf("got %q, want it to name the missing event's id %s", f.Reason, o.records[f.Position].Event.ID)
			}
		})
	}
}

// TestCheckpointsNeverFork: two nodes sign the same ledger; every write to
// the checkpoint stream carries an exact expected revision, so racing
// nodes get WrongRevision instead of forking it.
func TestCheckpointsNeverFork(t *testing.T) {
	ctx := context.Background()
	signer, fp := newSigner(t)
	r := names(t)
	a := openStore(t, esdb.Config{Remote: r, Signer: signer, CheckpointInterval: time.Hour})
	b := openStore(t, esdb.Config{Remote: r, Signer: signer, CheckpointInterval: time.Hour})
	if a.LedgerID() != b.LedgerID() {
		t.Fatalf("two nodes on one EventStoreDB: ledger ids %s and %s", a.LedgerID(), b.LedgerID())
	}
	wrong := 0
	for i := range 20 {
		if _, err := a.Append(ctx, "change-x", ledger.Any, storetest.Event("Step", "n", i)); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j, s := range []*esdb.Store{a, b} {
			wg.Go(func() { _, errs[j] = s.Checkpoint(ctx) })
		}
		wg.Wait()
		for _, err := range errs {
			switch {
			case err == nil:
			case errors.Is(err, ledger.ErrWrongRevision):
				wrong++
			default:
				t.Fatalf("round %d: %v", i, err)
			}
		}
	}
	notes, err := a.Checkpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	storetest.CheckRecentCheckpoints(t, notes, b.RecentCheckpoints)
	var last uint64
	for _, n := range notes {
		cp, err := ledger.CheckpointBody(n)
		if err != nil {
			t.Fatal(err)
		}
		if cp.Size <= last {
			t.Fatalf("checkpoint sizes %d then %d: the sequence forked", last, cp.Size)
		}
		last = cp.Size
	}
	if last != 20 {
		t.Fatalf("latest checkpoint size %d, want 20", last)
	}
	t.Logf("%d checkpoints; %d signing attempts lost a race with WrongRevision", len(notes), wrong)
	if _, err := verify(t, r, fp, nil); err != nil {
		t.Fatalf("verify: %v", err)
	}
}

// TestRecentCheckpointsOfABrokenStream: with the checkpoint stream
// deleted, or its start truncated away under a read that reaches it, the
// latest checkpoints are a ledger failure, as all of them are, not what
// is left.
func TestRecentCheckpointsOfABrokenStream(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		n      int
		reason string
		edit   func(c *kurrentdb.Client, stream string) error
	}{
		{"deleted", 2, "missing or was deleted", func(c *kurrentdb.Client, stream string) error {
			_, err := c.DeleteStream(ctx, stream, kurrentdb.DeleteStreamOptions{})
			return err
		}},
		{"truncated with $tb", 100, "begins at revision 8", func(c *kurrentdb.Client, stream string) error {
			var meta kurrentdb.StreamMetadata
			meta.SetTruncateBefore(8)
			_, err := c.SetStreamMetadata(ctx, stream, kurrentdb.AppendToStreamOptions{}, meta)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := buildSigned(t)
			if err := tc.edit(client(t), o.remote.CheckpointStream); err != nil {
				t.Fatal(err)
			}
			l, err := esdb.Dial(o.remote)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			var f *ledger.Failure
			if _, err := l.RecentCheckpoints(ctx, tc.n); !errors.As(err, &f) || !strings.Contains(f.Reason, tc.reason) {
				t.Fatalf("RecentCheckpoints(%d): %v, want a ledger failure with %q", tc.n, err, tc.reason)
			}
		})
	}
}

// TestIndexRebuilds: a node with an empty local index rebuilds the same
// tree from EventStoreDB.
func TestIndexRebuilds(t *testing.T) {
	ctx := context.Background()
	r := names(t)
	a := openStore(t, esdb.Config{Remote: r})
	for i := range 30 {
		if _, err := a.Append(ctx, fmt.Sprintf("s-%d", i%4), ledger.Any, storetest.Event("E", "i", i)); err != nil {
			t.Fatal(err)
		}
	}
	b := openStore(t, esdb.Config{Remote: r})
	var got []ledger.Record
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for rec, err := range b.Subscribe(sctx, 0) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rec)
		if len(got) == 30 {
			break
		}
	}
	sa, ra, _ := a.Head(ctx)
	sb, rb, _ := b.Head(ctx)
	if sa != sb || !bytes.Equal(ra, rb) {
		t.Fatalf("heads differ: %d %x vs %d %x", sa, ra, sb, rb)
	}
}

// TestForeignEventsAreNeverSigned: events under the prefix that are not the
// ledger's (another application's, a second ledger's whose prefix nests
// inside this one's) stay out of a running node's tree, so no checkpoint
// covers them, and reading the ledger goes on past them.
func TestForeignEventsAreNeverSigned(t *testing.T) {
	ctx := context.Background()
	signer, _ := newSigner(t)
	r := names(t)
	s := openStore(t, esdb.Config{Remote: r, Signer: signer, CheckpointInterval: time.Hour})
	if _, err := s.Append(ctx, "change-1", ledger.Any, storetest.Event("A")); err != nil {
		t.Fatal(err)
	}
	c := client(t)
	if _, err := c.AppendToStream(ctx, r.Prefix+"metrics", kurrentdb.AppendToStreamOptions{},
		kurrentdb.EventData{EventID: uuid.New(), EventType: "Tick", ContentType: kurrentdb.ContentTypeBinary, Data: []byte("\x08\x96\x01")}); err != nil {
		t.Fatal(err)
	}
	nested := r
	nested.Prefix, nested.CheckpointStream = r.Prefix+"staging-", r.CheckpointStream+".staging"
	inner := openStore(t, esdb.Config{Remote: nested})
	if _, err := inner.Append(ctx, "change-1", ledger.Any, storetest.Event("Inner")); err != nil {
		t.Fatal(err)
	}
	recs, err := s.Append(ctx, "change-1", ledger.Any, storetest.Event("B"))
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].Position != 1 {
		t.Fatalf("B at position %d, want 1: foreign events took positions", recs[0].Position)
	}
	cp, err := s.Checkpoint(ctx)
	if err != nil || cp.Size != 2 {
		t.Fatalf("checkpoint: size %d, %v; want 2", cp.Size, err)
	}
	var n int
	for rec, err := range s.ReadAll(ctx, 0) {
		if err != nil {
			t.Fatal(err)
		}
		if rec.Event.Type != []string{"A", "B"}[n] {
			t.Fatalf("position %d: %s", n, rec.Event.Type)
		}
		n++
	}
	if n != 2 || s.Foreign() != 2 {
		t.Fatalf("read %d records, %d foreign; want 2 and 2", n, s.Foreign())
	}
}

// TestLiveVerifyOfABusyLedger: verify --live reads $all in pages while a
// writer keeps appending to a stream it has already read; the events it
// meets later are the stream's new ones, never "missing".
func TestLiveVerifyOfABusyLedger(t *testing.T) {
	ctx := context.Background()
	signer, fp := newSigner(t)
	r := names(t)
	s := openStore(t, esdb.Config{Remote: r, Signer: signer, CheckpointInterval: 50 * time.Millisecond})
	batch := make([]ledger.Event, 100)
	for i := range batch {
		batch[i] = storetest.Event("E", "i", i)
	}
	for range 50 { // more than one page of $all
		if _, err := s.Append(ctx, "busy", ledger.Any, batch...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.Append(ctx, "busy", ledger.Any, storetest.Event("E", "live", i)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	defer func() { close(stop); <-done }()
	for i := range 3 {
		l, err := esdb.Dial(r)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := l.Verify(ctx, []string{fp}, nil, true)
		l.Close()
		if err != nil {
			t.Fatalf("live verification %d of an untouched ledger: %v", i, err)
		}
		t.Logf("live verification %d: %d events", i, rep.Events)
	}
}

// TestForgedCheckpointStreamEvents: whoever can write the checkpoint
// stream can put junk there, but cannot stall signing in silence or
// shadow the ledger's key. A CheckpointSigned the node's key did not sign
// stops signing with an error (readiness shows it) rather than a wait for
// a size that never comes; a KeyAdded with junk bytes under the pinned
// fingerprint is passed over.
func TestForgedCheckpointStreamEvents(t *testing.T) {
	ctx := context.Background()
	signer, fp := newSigner(t)
	r := names(t)
	s, err := esdb.Open(ctx, esdb.Config{Remote: r, Path: filepath.Join(t.TempDir(), "index.db"), Signer: signer, CheckpointInterval: time.Hour, IndexWait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "change-1", ledger.Any, storetest.Event("A")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	c := client(t)
	write := func(typ string, v any) {
		t.Helper()
		data, _ := json.Marshal(v)
		if _, err := c.AppendToStream(ctx, r.CheckpointStream, kurrentdb.AppendToStreamOptions{},
			kurrentdb.EventData{EventID: uuid.New(), EventType: typ, ContentType: kurrentdb.ContentTypeJson, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	write("KeyAdded", map[string]any{"fingerprint": fp, "spki": []byte("junk")})
	if _, err := verify(t, r, fp, nil); err != nil {
		t.Fatalf("verify after a junk KeyAdded: %v", err)
	}
	write("CheckpointSigned", map[string]any{"size": 1 << 40, "root": []byte("x"), "note": "junk\n", "signed_at": "now"})
	if _, err := s.Append(ctx, "change-1", ledger.Any, storetest.Event("B")); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := s.Checkpoint(cctx); err == nil || !strings.Contains(err.Error(), "not signed by a key of this ledger") {
		t.Fatalf("signing after a forged checkpoint: %v", err)
	}
	if _, err := verify(t, r, fp, nil); err == nil {
		t.Fatal("verify passed a forged checkpoint")
	}
	// Closing signs a last checkpoint, which fails for the same reason.
	if err := s.Close(); err == nil || !strings.Contains(err.Error(), "not signed by a key of this ledger") {
		t.Fatalf("close: %v", err)
	}
}

// TestKeyRotation: a node signing with a new key builds on the checkpoints
// the old key signed; verification pins both.
func TestKeyRotation(t *testing.T) {
	ctx := context.Background()
	r := names(t)
	oldKey, oldFP := newSigner(t)
	newKey, newFP := newSigner(t)
	a := openStore(t, esdb.Config{Remote: r, Signer: oldKey, CheckpointInterval: time.Hour})
	if _, err := a.Append(ctx, "change-1", ledger.Any, storetest.Event("A")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b := openStore(t, esdb.Config{Remote: r, Signer: newKey, CheckpointInterval: time.Hour})
	if _, err := b.Append(ctx, "change-1", ledger.Any, storetest.Event("B")); err != nil {
		t.Fatal(err)
	}
	if cp, err := b.Checkpoint(ctx); err != nil || cp.Size != 2 {
		t.Fatalf("the new key's first checkpoint: size %d, %v", cp.Size, err)
	}
	l, err := esdb.Dial(r)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Verify(ctx, []string{oldFP, newFP}, nil, false); err != nil {
		t.Fatalf("verify with both keys pinned: %v", err)
	}
}
