package test

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

func TestCLI(t *testing.T) {
	bin := buildDocket(t)
	data := t.TempDir()

	demo := run(t, bin, "demo", "--data", data)
	if !regexp.MustCompile(`verified: \d+ events`).MatchString(demo) || !regexp.MustCompile(`deviation revoked and resolved +2`).MatchString(demo) {
		t.Fatalf("demo printed:\n%s", demo)
	}
	fp := strings.TrimSpace(run(t, bin, "keys", "show", "--fingerprint", "--data", data))
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(fp) {
		t.Fatalf("keys show --fingerprint printed %q", fp)
	}
	if pem := run(t, bin, "keys", "show", "--data", data); !strings.Contains(pem, "-----BEGIN PUBLIC KEY-----") || !strings.Contains(pem, fp) {
		t.Fatalf("keys show printed:\n%s", pem)
	}
	st, err := os.Stat(filepath.Join(data, "keys", "checkpoint.pem"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
	if out := run(t, bin, "keys", "init", "--data", data); !strings.Contains(out, "kept existing") {
		t.Errorf("keys init over an existing key printed %q", out)
	}

	saved := filepath.Join(t.TempDir(), "seen.checkpoint")
	out := run(t, bin, "verify", "ledger", "--data", data, "--fingerprint", fp, "--save-checkpoint", saved)
	if !regexp.MustCompile(`^ok: \d+ events, \d+ checkpoints`).MatchString(out) || !strings.Contains(out, fp) {
		t.Fatalf("verify printed %q", out)
	}
	if again := run(t, bin, "demo", "--data", data); !strings.Contains(again, "nothing to do") {
		t.Fatalf("a second demo run printed %q, want it to change nothing", again)
	}
	run(t, bin, "principals", "add", "zoe", "--data", data, "--role", "auditor") // the ledger grows
	run(t, bin, "verify", "ledger", "--data", data, "--since-checkpoint", saved)
	creds, err := os.ReadFile(filepath.Join(data, "demo-credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	// Without its credentials file the demo data is not recognised, and
	// the demo refuses a ledger that holds anything.
	moved := filepath.Join(t.TempDir(), "creds.json")
	if err := os.Rename(filepath.Join(data, "demo-credentials.json"), moved); err != nil {
		t.Fatal(err)
	}
	before := run(t, bin, "verify", "ledger", "--data", data)
	if code, _, stderr := runCode(t, bin, "demo", "--data", data); code != 1 || !strings.Contains(stderr, "seeds only an empty ledger") {
		t.Fatalf("demo on a ledger without its credentials file: exit %d, %q", code, stderr)
	}
	if after := run(t, bin, "verify", "ledger", "--data", data); eventCount(t, after) != eventCount(t, before) {
		t.Fatalf("the refused demo wrote: %q, then %q", before, after)
	}
	// Nor does it make a key for a ledger it refuses (one signed by KMS,
	// say, has no local key).
	key := filepath.Join(data, "keys", "checkpoint.pem")
	if err := os.Rename(key, key+".kept"); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCode(t, bin, "demo", "--data", data); code != 1 || !strings.Contains(stderr, "seeds only an empty ledger") {
		t.Fatalf("demo on a ledger without a local key: exit %d, %q", code, stderr)
	}
	if _, err := os.Stat(key); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the refused demo left a key behind: %v", err)
	}
	if err := os.Rename(key+".kept", key); err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{"admin", "auditor", "approver", "requester", "agent"} {
		if !strings.Contains(string(creds), `"`+role+`": "dkt_`) {
			t.Errorf("demo-credentials.json has no %s credential:\n%s", role, creds)
		}
	}

	t.Run("usage errors exit 2", func(t *testing.T) {
		for _, args := range [][]string{
			{"verify", "ledger", "--no-such-flag"},
			{"verify", "ledger", "--data", t.TempDir(), "--fingerprint", fp},
			{"verify", "ledger", "--data", data, "--since-checkpoint", "/nonexistent"},
			{"verify", "ledger", "--data", data, "--since-checkpoint", "/etc/hostname"},
			{"verify", "ledger", "--data", data, "--fingerprint", "zz"},
			{"verify", "ledger", "extra-arg", "--data", data},
			{"verify"},
			{"no-such-command"},
			{"bench", "append", "--events", "0", "--data", t.TempDir()},
		} {
			if code, _, stderr := runCode(t, bin, args...); code != 2 || stderr == "" {
				t.Errorf("docket %v: exit %d, stderr %q; want exit 2 with a message", args, code, stderr)
			}
		}
	})

	t.Run("wrong fingerprint exits 1", func(t *testing.T) {
		code, _, stderr := runCode(t, bin, "verify", "ledger", "--data", data, "--fingerprint", strings.Repeat("ab", 32))
		if code != 1 || !strings.Contains(stderr, "FAILED") {
			t.Fatalf("exit %d, stderr %q; want 1 and FAILED", code, stderr)
		}
	})

	t.Run("tampered ledger exits 1 naming the position", func(t *testing.T) {
		db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "ledger.db"))
		if err != nil {
			t.Fatal(err)
		}
		// The approved plan's objective, rewritten after the fact.
		var pos int
		if err := db.QueryRow(`SELECT MIN(position) FROM events WHERE CAST(canonical AS TEXT) LIKE '%Fix rounding%'`).Scan(&pos); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`UPDATE events SET canonical = CAST(REPLACE(CAST(canonical AS TEXT), 'Fix rounding', 'Fix roundinG') AS BLOB) WHERE position = ?`, pos); err != nil {
			t.Fatal(err)
		}
		db.Close()
		code, stdout, stderr := runCode(t, bin, "verify", "ledger", "--data", data, "--fingerprint", fp)
		if want := fmt.Sprintf("position %d: event altered", pos); code != 1 || !strings.Contains(stderr, want) {
			t.Fatalf("exit %d, stdout %q, stderr %q; want 1 and %q", code, stdout, stderr, want)
		}
	})
}

func TestIdentityCLI(t *testing.T) {
	bin := buildDocket(t)
	data := t.TempDir()
	out := run(t, bin, "principals", "add", "bob", "--data", data, "--name", "Bob", "--role", "approver", "--authority", "file:github.com/acme/**=read,write")
	tokenLine := regexp.MustCompile(`token (tok-[0-9a-f-]{36}) \(shown once, stored only as a hash\): dkt_tok_bob\.[A-Za-z0-9_-]{43}\n`)
	m := tokenLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("principals add printed %q", out)
	}
	first := m[1]
	out = run(t, bin, "agents", "add", "claude-ci", "--data", data, "--owner", "bob", "--harness", "claude-code")
	if !strings.Contains(out, "dkt_agent_claude-ci.") {
		t.Fatalf("agents add printed %q", out)
	}
	for _, args := range [][]string{
		{"principals", "add", "eve", "--data", data, "--role", "wizard"},
		{"principals", "add", "eve", "--data", data, "--role", "approver"}, // no authority
		{"principals", "add", "bob", "--data", data, "--role", "auditor"},  // exists
		{"agents", "add", "rogue", "--data", data, "--owner", "nobody"},
		{"agents", "add", "rogue", "--data", data},
	} {
		if code, _, stderr := runCode(t, bin, args...); code != 2 || stderr == "" {
			t.Errorf("docket %v: exit %d %q, want 2 with a message", args, code, stderr)
		}
	}
	// A second token; the first revoked, once.
	if out = run(t, bin, "principals", "token", "bob", "--data", data); !tokenLine.MatchString(out) {
		t.Fatalf("principals token printed %q", out)
	}
	if out = run(t, bin, "principals", "revoke-token", "bob", first, "--data", data); out != "token "+first+" of bob revoked\n" {
		t.Fatalf("principals revoke-token printed %q", out)
	}
	if code, _, stderr := runCode(t, bin, "principals", "revoke-token", "bob", first, "--data", data); code != 2 || !strings.Contains(stderr, "no live token") {
		t.Errorf("revoking a revoked token: exit %d %q, want 2 naming it", code, stderr)
	}
	// Refusals wrote nothing; the ledger verifies.
	out = run(t, bin, "verify", "ledger", "--data", data)
	if !strings.HasPrefix(out, "ok: 7 events") {
		t.Fatalf("verify printed %q, want 7 events (principal, role, token, agent, key, token, revocation) and nothing from the refusals", out)
	}
}

// TestBenchGraphQL runs the load generator briefly, as a developer would,
// and opens the profile and trace it writes with Go's own tools.
func TestBenchGraphQL(t *testing.T) {
	if testing.Short() {
		t.Skip("a load test of several seconds; -short skips it, CI runs it")
	}
	bin := buildDocket(t)
	dir := t.TempDir()
	cpu, mem, tr := filepath.Join(dir, "cpu.prof"), filepath.Join(dir, "mem.prof"), filepath.Join(dir, "trace.out")
	// Four clients ask far more than 20/s a session: refused
	// requests are not counted as answered, and the run fails naming them.
	code, stdout, stderr := runCode(t, bin, "bench", "graphql", "--clients", "4", "--warmup", "0", "--duration", "500ms", "--rate-limit", "20")
	if code != 1 || !strings.Contains(stderr, "requests failed, the first with HTTP 429") || !strings.Contains(stdout, "trivial query over HTTP") {
		t.Errorf("bench graphql over the rate limit: exit %d, stdout %q, stderr %q; want 1 naming the 429s", code, stdout, stderr)
	}
	out := run(t, bin, "bench", "graphql", "--clients", "4", "--warmup", "300ms", "--duration", "1s", "--rate-limit", "0", "--cpuprofile", cpu, "--memprofile", mem, "--trace", tr)
	for _, re := range []string{
		`warm-up \(not counted\), recordAction over HTTP, 4 clients: [1-9]\d* ops in [\d.]+m?s = \d+/s, .*, 0 errors`,
		`recordAction over HTTP, 4 clients: [1-9]\d* ops in [\d.]+s = \d+/s, p50 [\d.]+[mµ]?s, p99 [\d.]+[mµ]?s, 0 errors; CPU [\d.]+[mµ]?s/op \(\d+% of a core\), [1-9]\d* allocations \([\d.]+ KiB\)/op`,
		`ledger: [1-9]\d* group commits`,
		`disk: [1-9]\d* fsyncs of the WAL, [\d.]+ ms each on average, in progress \d+% of the time`,
		`trivial query over HTTP, 4 clients: [1-9]\d* ops .*, 0 errors`,
		`throughput ratio recordAction/trivial: [\d.]+`,
		`host: SHA-256 on [1-9]\d* threads at once, [1-9]\d* MB/s each before the measured runs, [1-9]\d* after`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("bench graphql printed no line matching %s:\n%s", re, out)
		}
	}
	t.Run("interrupted", func(t *testing.T) {
		// Ctrl-C ends the run and removes its scratch ledger.
		tmp := t.TempDir()
		cmd := exec.Command(bin, "bench", "graphql", "--clients", "4", "--duration", "1m", "--rate-limit", "0")
		cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		cmd.Process.Signal(os.Interrupt)
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "interrupted") {
			t.Errorf("interrupted bench graphql: %v, stderr %q; want exit 1 saying interrupted", err, stderr.String())
		}
		if left, _ := os.ReadDir(tmp); len(left) > 0 {
			t.Errorf("the interrupted run left %v behind", left)
		}
	})
	t.Run("reader gone", func(t *testing.T) {
		// docket bench graphql | true: the figures are written to a pipe
		// whose reader left, which once killed the run (SIGPIPE) before
		// its scratch ledger was removed.
		tmp := t.TempDir()
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "bench", "graphql", "--clients", "4", "--warmup", "0", "--duration", "2s", "--rate-limit", "0")
		cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
		cmd.Stdout = w
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		r.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("bench graphql with its output's reader gone: %v, want it to finish", err)
		}
		if left, _ := os.ReadDir(tmp); len(left) > 0 {
			t.Errorf("the run whose reader left, left %v behind", left)
		}
	})
	for _, args := range [][]string{
		{"tool", "pprof", "-top", bin, cpu},
		{"tool", "pprof", "-top", "-sample_index=alloc_space", bin, mem},
		{"tool", "trace", "-pprof=syscall", tr},
	} {
		got, err := exec.Command("go", args...).CombinedOutput()
		if err != nil || len(got) == 0 {
			t.Errorf("go %v: %v\n%s", args, err, got)
		}
	}
}
