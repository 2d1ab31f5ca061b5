package anchoring_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidence-parity/docket/anchors"
	"github.com/evidence-parity/docket/anchors/anchoring"
	"github.com/evidence-parity/docket/anchors/ots"
	"github.com/evidence-parity/docket/anchors/ots/otstest"
	"github.com/evidence-parity/docket/ledger"
	"github.com/evidence-parity/docket/ledger/sqlite"
	"github.com/evidence-parity/docket/ledger/storetest"
)

// The calendars are otstest.Calendar: stand-ins on 127.0.0.1 for the public
// OpenTimestamps calendars and Bitcoin, which these machines cannot reach.
// The ledger is a real SQLite file with a local key.

func openLedger(t *testing.T) *sqlite.Store {
	t.Helper()
	dir := t.TempDir()
	signer, err := anchors.OpenFileSigner(filepath.Join(dir, "key.pem"), true)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sqlite.Open(context.Background(), filepath.Join(dir, "ledger.db"), sqlite.Options{Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func grow(t *testing.T, s *sqlite.Store, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		if _, err := s.Append(ctx, "tick", ledger.Any, storetest.Event("Tick", "i", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestAnchoringRounds(t *testing.T) {
	ctx := context.Background()
	s := openLedger(t)
	chain := &otstest.Chain{}
	alice, bob := otstest.NewCalendar(t, chain), otstest.NewCalendar(t, chain)
	dir := t.TempDir()
	a, err := anchoring.New(s, anchoring.Config{Dir: dir, Calendars: []string{alice.URL, bob.URL}, Client: &ots.Client{AllowHTTP: true}})
	if err != nil {
		t.Fatal(err)
	}

	if _, err := a.AnchorNow(ctx); !errors.Is(err, anchoring.ErrNoCheckpoint) {
		t.Fatalf("empty ledger: got %v", err)
	}
	if a.Err() != nil {
		t.Fatalf("nothing to anchor is not a failure: %v", a.Err())
	}

	grow(t, s, 3)
	bob.SetDown(true)
	anc, err := a.AnchorNow(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if anc.Size != 3 || len(anc.Calendars) != 1 || anc.Missing[bob.URL] == "" {
		t.Fatalf("with bob down: %+v", anc)
	}
	// bob returns: the next round adds it on the same commitment.
	bob.SetDown(false)
	if anc, err = a.AnchorNow(ctx); err != nil || len(anc.Calendars) != 2 || len(anc.Missing) != 0 {
		t.Fatalf("retry: %+v %v", anc, err)
	}
	// Nothing grew: a round submits nothing.
	n := alice.Requests()
	if _, err := a.AnchorNow(ctx); err != nil || alice.Requests() != n {
		t.Fatalf("round without growth submitted (%v)", err)
	}

	// Both calendars down: the round fails, the ledger keeps working.
	grow(t, s, 2)
	alice.SetDown(true)
	bob.SetDown(true)
	if _, err := a.AnchorNow(ctx); err == nil || !strings.Contains(err.Error(), "no calendar accepted") {
		t.Fatalf("all down: got %v", err)
	}
	if a.Err() == nil {
		t.Fatal("the failure is not visible")
	}
	grow(t, s, 1)
	alice.SetDown(false)
	bob.SetDown(false)
	if anc, err = a.AnchorNow(ctx); err != nil || anc.Size != 6 {
		t.Fatalf("after the outage: %+v %v", anc, err)
	}

	// Pending until the calendars anchor; then complete.
	ups, err := a.Upgrade(ctx)
	if err != nil || len(ups) != 2 || ups[0].Complete() {
		t.Fatalf("upgrade before mining: %+v %v", ups, err)
	}
	alice.Mine()
	if ups, err = a.Upgrade(ctx); err != nil || !ups[0].Complete() || !ups[1].Complete() {
		t.Fatalf("upgrade after mining: %+v %v", ups, err)
	}
	if ups, _ = a.Upgrade(ctx); len(ups) != 0 {
		t.Fatalf("complete anchors are upgraded again: %+v", ups)
	}

	// Each stored proof verifies against the stored note and the mined
	// headers, as an auditor would check it.
	headers := chain.ParsedHeaders()
	all, _ := a.Status()
	if len(all) != 2 {
		t.Fatalf("status: %+v", all)
	}
	notes, _ := s.Checkpoints(ctx)
	for _, anc := range all {
		note, proof, err := anchoring.Proof(dir, anc.Size)
		if err != nil {
			t.Fatal(err)
		}
		if !containsNote(notes, note) {
			t.Fatalf("stored note of %d is not a ledger checkpoint", anc.Size)
		}
		digest := sha256.Sum256(note)
		rep, err := ots.Verify(ctx, proof, digest[:], headers)
		if err != nil || rep.Err() != nil {
			t.Fatalf("checkpoint %d: %v %v", anc.Size, err, rep.Err())
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp") {
			t.Fatalf("temporary file left: %s", e.Name())
		}
	}
}

func containsNote(notes [][]byte, n []byte) bool {
	for _, x := range notes {
		if string(x) == string(n) {
			return true
		}
	}
	return false
}

func TestConfigRefused(t *testing.T) {
	s := openLedger(t)
	for name, cfg := range map[string]anchoring.Config{
		"one calendar":  {Dir: t.TempDir(), Calendars: []string{"https://a.example"}},
		"http calendar": {Dir: t.TempDir(), Calendars: []string{"https://a.example", "http://b.example"}},
		"no dir":        {Calendars: []string{"https://a.example", "https://b.example"}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := anchoring.New(s, cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// TestUpgradeFromTheCalendarBehindAPool: submissions go to a pool, whose
// pending attestations name the calendar behind it; upgrades come from that
// calendar, allowed by the upgrade list, not the submission list.
func TestUpgradeFromTheCalendarBehindAPool(t *testing.T) {
	ctx := context.Background()
	s := openLedger(t)
	grow(t, s, 2)
	chain := &otstest.Chain{}
	alice, bob := otstest.NewCalendar(t, chain), otstest.NewCalendar(t, chain)
	target, _ := url.Parse(alice.URL)
	pool := httptest.NewServer(httputil.NewSingleHostReverseProxy(target))
	defer pool.Close()
	a, err := anchoring.New(s, anchoring.Config{Dir: t.TempDir(), Calendars: []string{pool.URL, bob.URL},
		UpgradeCalendars: []string{alice.URL}, Client: &ots.Client{AllowHTTP: true}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.AnchorNow(ctx); err != nil {
		t.Fatal(err)
	}
	alice.Mine()
	ups, err := a.Upgrade(ctx)
	if err != nil || len(ups) != 1 || !ups[0].Complete() {
		t.Fatalf("upgrade: %+v %v", ups, err)
	}
}
