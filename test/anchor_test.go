package test

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/evidence-parity/docket/anchors/ots/otstest"
)

// The calendars here are otstest.Calendar: stand-ins on 127.0.0.1 for the
// public OpenTimestamps calendars and Bitcoin, which these machines cannot
// reach. The ledger, the server and the CLI are the real binary.

func readyz(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestServerAnchorsCheckpoints(t *testing.T) {
	bin := buildDocket(t)
	data := t.TempDir()
	run(t, bin, "demo", "--data", data)
	chain := &otstest.Chain{}
	alice, bob := otstest.NewCalendar(t, chain), otstest.NewCalendar(t, chain)
	bob.SetDown(true)
	cal := []string{"--calendar", alice.URL, "--calendar", bob.URL, "--ots-allow-http"}

	srv := startCmd(t, exec.Command(bin, append([]string{"serve", "--data", data, "--listen", "127.0.0.1:0",
		"--anchor-interval", "200ms", "--upgrade-interval", "200ms"}, cal...)...))
	waitFor(t, "an anchor", func() bool {
		_, body := readyz(t, srv.url)
		return strings.Contains(body, "anchoring: checkpoint")
	})
	code, body := readyz(t, srv.url)
	if code != http.StatusOK || !strings.Contains(body, "pending since") || !strings.Contains(body, alice.URL) {
		t.Fatalf("readyz %d:\n%s", code, body)
	}
	status := run(t, bin, "anchor", "status", "--data", data)
	if !strings.Contains(status, "not yet submitted to "+bob.URL) {
		t.Fatalf("status does not show the calendar that is down:\n%s", status)
	}
	// bob comes back: a later round submits to it too.
	bob.SetDown(false)
	waitFor(t, "bob to be submitted to", func() bool {
		return !strings.Contains(run(t, bin, "anchor", "status", "--data", data), "not yet submitted")
	})

	// The calendars anchor; the server's upgrade round completes the proof.
	if _, err := alice.Mine(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the proof to complete", func() bool {
		_, body := readyz(t, srv.url)
		return strings.Contains(body, "in bitcoin block")
	})
	srv.cmd.Process.Signal(os.Interrupt)
	srv.cmd.Wait()

	// An auditor checks the stored proof against the stored note and the
	// block headers, from another directory.
	m := regexp.MustCompile(`checkpoint (\d+): bitcoin block (\d+)`).FindStringSubmatch(run(t, bin, "anchor", "status", "--data", data))
	if m == nil {
		t.Fatalf("status:\n%s", run(t, bin, "anchor", "status", "--data", data))
	}
	proofs, _ := filepath.Glob(filepath.Join(data, "anchors", "checkpoint-*.ots"))
	last := proofs[len(proofs)-1]
	note := strings.TrimSuffix(last, ".ots") + ".note"
	headers := filepath.Join(t.TempDir(), "headers")
	os.WriteFile(headers, []byte(chain.Headers()), 0o644)
	// The stand-in chain's blocks have the lowest difficulty, which real
	// Bitcoin headers never have: by default they are refused.
	if code, _, stderr := runCode(t, bin, "verify", "ots", last, "--file", note, "--bitcoin-headers", headers); code != 1 || !strings.Contains(stderr, "easier than Bitcoin mainnet allows") {
		t.Fatalf("low-difficulty headers accepted by default: exit %d %s", code, stderr)
	}
	out := run(t, bin, "verify", "ots", last, "--file", note, "--bitcoin-headers", headers, "--allow-low-difficulty")
	if !strings.Contains(out, "ok: Bitcoin block "+m[2]) {
		t.Fatalf("verify ots: %s", out)
	}
	// The note is the ledger's latest checkpoint (nothing was appended
	// while serving), signed by the ledger's key.
	if n, _ := os.ReadFile(note); run(t, bin, "checkpoint", "--data", data) != string(n) {
		t.Fatal("the anchored note is not the ledger's latest checkpoint")
	}
	info := run(t, bin, "ots", "info", last)
	if !strings.Contains(info, "verify BitcoinBlockHeaderAttestation("+m[2]+")") || !strings.Contains(info, "verify PendingAttestation('"+alice.URL+"')") {
		t.Fatalf("ots info:\n%s", info)
	}

	// The reference client (npm opentimestamps) reads the proof the server
	// wrote and prints the same tree.
	cli, _ := filepath.Abs("../scripts/ots-reference/node_modules/opentimestamps/ots-cli.js")
	if _, err := os.Stat(cli); err != nil {
		t.Fatalf("reference client missing (make test installs it with scripts/install-ots-reference.sh): %v", err)
	}
	ref, err := exec.Command("node", cli, "info", last).CombinedOutput()
	if err != nil || string(ref) != info+"\n" {
		t.Fatalf("reference client (%v):\n%s\ndocket:\n%s", err, ref, info)
	}

	// Tampering with the note breaks the proof.
	os.WriteFile(note, []byte("forged"), 0o644)
	if code, _, stderr := runCode(t, bin, "verify", "ots", last, "--file", note, "--bitcoin-headers", headers, "--allow-low-difficulty"); code != 1 || !strings.Contains(stderr, "digest mismatch") {
		t.Fatalf("tampered note: exit %d, %s", code, stderr)
	}
}

func TestAnchorCLIWithCalendarsDown(t *testing.T) {
	bin := buildDocket(t)
	data := t.TempDir()
	run(t, bin, "demo", "--data", data)
	a, b := otstest.NewCalendar(t, nil), otstest.NewCalendar(t, nil)
	a.SetDown(true)
	b.SetDown(true)
	cal := []string{"--data", data, "--calendar", a.URL, "--calendar", b.URL, "--ots-allow-http"}
	code, _, stderr := runCode(t, bin, append([]string{"anchor", "now"}, cal...)...)
	if code != 1 || !strings.Contains(stderr, "no calendar accepted") {
		t.Fatalf("all calendars down: exit %d %s", code, stderr)
	}
	// The ledger is untouched and verifies.
	run(t, bin, "verify", "ledger", "--data", data)
	if out := run(t, bin, "anchor", "status", "--data", data); !strings.Contains(out, "no checkpoint anchored yet") {
		t.Fatalf("status: %s", out)
	}
	a.SetDown(false)
	b.SetDown(false)
	if out := run(t, bin, append([]string{"anchor", "now"}, cal...)...); !strings.Contains(out, "pending since") {
		t.Fatalf("anchor now: %s", out)
	}
	if out := run(t, bin, append([]string{"anchor", "upgrade"}, cal...)...); !strings.Contains(out, "pending since") {
		t.Fatalf("upgrade before mining: %s", out)
	}
	a.Mine()
	if out := run(t, bin, append([]string{"anchor", "upgrade"}, cal...)...); !strings.Contains(out, "bitcoin block") {
		t.Fatalf("upgrade after mining: %s", out)
	}
	// Only https calendars unless allowed.
	code, _, stderr = runCode(t, bin, "anchor", "now", "--data", data, "--calendar", a.URL, "--calendar", b.URL)
	if code != 2 || !strings.Contains(stderr, "only https") {
		t.Fatalf("http calendar: exit %d %s", code, stderr)
	}
}

func TestVerifyOTSCLI(t *testing.T) {
	bin := buildDocket(t)
	v := "../anchors/ots/testdata/vectors/"
	hdr := v + "bitcoin-block-358391-header.hex"
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"hello world verifies", []string{"hello-world.txt.ots", "--file", v + "hello-world.txt", "--bitcoin-headers", hdr}, 0, "ok: Bitcoin block 358391 (000000000000000003e892881a8cdcdc117c06d444057c98b6f04a9ee75a2319) attests the data existed as of 2015-05-28T15:41:18Z"},
		{"bad stamp", []string{"bad-stamp.txt.ots", "--file", v + "bad-stamp.txt", "--bitcoin-headers", hdr}, 1, "merkle root mismatch"},
		{"pending", []string{"two-calendars.txt.ots", "--file", v + "two-calendars.txt", "--bitcoin-headers", hdr}, 1, "pending at https://alice.btc.calendar.opentimestamps.org, https://bob.btc.calendar.opentimestamps.org"},
		{"no header", []string{"hello-world.txt.ots", "--file", v + "hello-world.txt"}, 1, "header not supplied for block 358391"},
		{"digest mismatch", []string{"hello-world.txt.ots", "--file", v + "bad-stamp.txt", "--bitcoin-headers", hdr}, 1, "digest mismatch"},
		{"by digest", []string{"hello-world.txt.ots", "--digest", "03ba204e50d126e4674c005e04d82e84c21366780af1f43bd54a37816b6ab340", "--bitcoin-headers", hdr}, 0, "ok: Bitcoin block 358391"},
		{"invalid file", []string{"invalid/exceeds-max-msg-length.ots", "--digest", "00"}, 1, "exceeds the limit of 4096"},
		{"neither file nor digest", []string{"hello-world.txt.ots"}, 2, "exactly one of --file and --digest"},
		{"two header sources", []string{"hello-world.txt.ots", "--file", v + "hello-world.txt", "--bitcoin-headers", hdr, "--esplora", "https://example.invalid"}, 2, "give one of"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runCode(t, bin, append([]string{"verify", "ots", v + c.args[0]}, c.args[1:]...)...)
			if code != c.code || !strings.Contains(stdout+stderr, c.want) {
				t.Fatalf("exit %d, want %d with %q:\n%s%s", code, c.code, c.want, stdout, stderr)
			}
		})
	}
	out := run(t, bin, "ots", "info", v+"hello-world.txt.ots")
	if !strings.Contains(out, "verify BitcoinBlockHeaderAttestation(358391)") || !strings.HasPrefix(out, "File sha256 hash: 03ba204e") {
		t.Fatalf("ots info:\n%s", out)
	}
}
