package ots_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidence-parity/docket/anchors/ots"
	"github.com/evidence-parity/docket/anchors/ots/otstest"
)

// The calendars here are otstest.Calendar: stand-ins, on 127.0.0.1, for the
// public OpenTimestamps calendars and Bitcoin, which these machines cannot
// reach.

func TestStampPendingUpgradeComplete(t *testing.T) {
	ctx := context.Background()
	chain := &otstest.Chain{}
	alice, bob := otstest.NewCalendar(t, chain), otstest.NewCalendar(t, chain)
	cals := []string{alice.URL, bob.URL}
	c := &ots.Client{AllowHTTP: true}
	digest := sha256.Sum256([]byte("checkpoint note"))

	f, failed := c.Stamp(ctx, digest, cals)
	if len(failed) != 0 {
		t.Fatalf("stamp: %v", failed)
	}
	rep, err := ots.Verify(ctx, f, digest[:], nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Pending) != 2 || rep.Err() == nil {
		t.Fatalf("want pending at two calendars, got %+v", rep)
	}
	// A second stamp of the same digest commits to a different nonce.
	g, _ := c.Stamp(ctx, digest, cals)
	if f.Timestamp.Branches[0].Op.Equal(g.Timestamp.Branches[0].Op) {
		t.Fatal("two submissions used the same nonce")
	}

	// Before the calendars anchor, an upgrade finds nothing new.
	if res := c.Upgrade(ctx, f.Timestamp, cals); len(res.Pending) != 2 || len(res.Upgraded) != 0 {
		t.Fatalf("upgrade before mining: %+v", res)
	}
	if _, err := alice.Mine(); err != nil {
		t.Fatal(err)
	}
	res := c.Upgrade(ctx, f.Timestamp, cals)
	if len(res.Upgraded) != 1 || len(res.Pending) != 1 || len(res.Errors) != 0 {
		t.Fatalf("upgrade after alice mined: %+v", res)
	}
	if !f.Timestamp.Complete() {
		t.Fatal("not complete after an upgrade")
	}

	headers := chain.ParsedHeaders()
	// Through the file format and back, as it is stored.
	raw, err := f.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ots.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	rep, err = ots.Verify(ctx, back, digest[:], headers)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	if rep.Verified[0].Height != otstest.StartHeight {
		t.Fatalf("height %d", rep.Verified[0].Height)
	}
	// bob mines later; both attestations then verify on the shared chain.
	if _, err := bob.Mine(); err != nil {
		t.Fatal(err)
	}
	c.Upgrade(ctx, f.Timestamp, cals)
	headers = chain.ParsedHeaders()
	if rep, _ = ots.Verify(ctx, f, digest[:], headers); len(rep.Verified) != 2 {
		t.Fatalf("want two verified attestations, got %+v", rep)
	}
}

func TestCalendarFailures(t *testing.T) {
	ctx := context.Background()
	up, down := otstest.NewCalendar(t, nil), otstest.NewCalendar(t, nil)
	down.SetDown(true)
	c := &ots.Client{AllowHTTP: true}
	digest := sha256.Sum256([]byte("x"))

	f, failed := c.Stamp(ctx, digest, []string{up.URL, down.URL})
	if len(failed) != 1 || failed[down.URL] == nil {
		t.Fatalf("want the down calendar to fail, got %v", failed)
	}
	if rep, _ := ots.Verify(ctx, f, digest[:], nil); len(rep.Pending) != 1 {
		t.Fatalf("the answering calendar's proof is kept: %+v", rep)
	}
	// Retrying the failed calendar later on the same commitment adds it.
	down.SetDown(false)
	commitment := f.Timestamp.Branches[0].Next.Branches[0].Next
	if failed := c.SubmitAll(ctx, commitment, []string{down.URL}); len(failed) != 0 {
		t.Fatal(failed)
	}
	if rep, _ := ots.Verify(ctx, f, digest[:], nil); len(rep.Pending) != 2 {
		t.Fatalf("after retry: %+v", rep)
	}

	t.Run("https only unless allowed", func(t *testing.T) {
		strict := &ots.Client{}
		_, failed := strict.Stamp(ctx, digest, []string{up.URL})
		if err := failed[up.URL]; err == nil || !strings.Contains(err.Error(), "only https") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("calendars not allowed are not asked", func(t *testing.T) {
		n := up.Requests()
		res := c.Upgrade(ctx, f.Timestamp, []string{up.URL})
		if res.Errors[down.URL] == nil || up.Requests() != n+1 {
			t.Fatalf("got %+v", res)
		}
	})
	t.Run("oversized and garbage answers", func(t *testing.T) {
		big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write(make([]byte, ots.DefaultMaxResponse+1))
		}))
		defer big.Close()
		garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte{0xff, 0xff})
		}))
		defer garbage.Close()
		_, failed := c.Stamp(ctx, digest, []string{big.URL, garbage.URL})
		if err := failed[big.URL]; err == nil || !strings.Contains(err.Error(), "exceeds") {
			t.Fatalf("oversized: %v", err)
		}
		if err := failed[garbage.URL]; !errors.Is(err, ots.ErrInvalid) {
			t.Fatalf("garbage: %v", err)
		}
	})
}

// TestReferenceClientReadsDocketProofs writes proofs with Docket (pending,
// then complete) and has the reference JavaScript client print them.
func TestReferenceClientReadsDocketProofs(t *testing.T) {
	cli, _ := filepath.Abs("../../scripts/ots-reference/node_modules/opentimestamps/ots-cli.js")
	if _, err := os.Stat(cli); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("reference client missing: run scripts/install-ots-reference.sh")
		}
		t.Skip("reference OpenTimestamps client not installed: run scripts/install-ots-reference.sh")
	}
	ctx := context.Background()
	chain := &otstest.Chain{}
	a, b := otstest.NewCalendar(t, chain), otstest.NewCalendar(t, chain)
	c := &ots.Client{AllowHTTP: true}
	digest := sha256.Sum256([]byte("docket"))
	f, _ := c.Stamp(ctx, digest, []string{a.URL, b.URL})
	dir := t.TempDir()
	check := func(name string) {
		t.Helper()
		raw, err := f.Serialize()
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		os.WriteFile(path, raw, 0o644)
		out, err := exec.Command("node", cli, "info", path).CombinedOutput()
		if err != nil {
			t.Fatalf("reference: %v\n%s", err, out)
		}
		if got, want := f.Info()+"\n", string(out); got != want {
			t.Fatalf("docket:\n%s\nreference:\n%s", got, want)
		}
	}
	check("pending.ots")
	a.Mine()
	b.Mine()
	c.Upgrade(ctx, f.Timestamp, []string{a.URL, b.URL})
	check("complete.ots")
}

func TestCalendarAllowed(t *testing.T) {
	allowed := []string{"https://*.calendar.opentimestamps.org", "https://ots.btc.catallaxy.com"}
	for uri, want := range map[string]bool{
		"https://alice.btc.calendar.opentimestamps.org":    false, // two labels
		"https://alice.calendar.opentimestamps.org":        true,
		"https://ots.btc.catallaxy.com":                    true,
		"https://ots.btc.catallaxy.com/":                   true,
		"http://alice.calendar.opentimestamps.org":         false,
		"https://evil.example/calendar.opentimestamps.org": false,
		"https://alice.calendar.opentimestamps.org:8443":   false,
		"https://calendar.opentimestamps.org.evil.example": false,
		"https://ots.btc.catallaxy.com.evil.example":       false,
	} {
		if got := ots.CalendarAllowed(uri, allowed); got != want {
			t.Errorf("%s: got %v, want %v", uri, got, want)
		}
	}
	if !ots.CalendarAllowed("https://alice.btc.calendar.opentimestamps.org", []string{"https://*.btc.calendar.opentimestamps.org"}) {
		t.Error("a pattern with a deeper domain")
	}
}

// TestRedirectsAreRefused: an https calendar that redirects (here to an
// http one) is an error, not a way around the https-only rule.
func TestRedirectsAreRefused(t *testing.T) {
	target := otstest.NewCalendar(t, nil)
	redirect := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	c := &ots.Client{HTTP: redirect.Client()}
	_, failed := c.Stamp(context.Background(), sha256.Sum256([]byte("x")), []string{redirect.URL})
	if err := failed[redirect.URL]; err == nil || !strings.Contains(err.Error(), "answered 307") {
		t.Fatalf("got %v", err)
	}
	if target.Requests() != 0 {
		t.Fatal("the redirect was followed")
	}
}
