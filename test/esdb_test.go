package test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"

	"github.com/evidence-parity/docket/ledger/esdb/esdbtest"
)

// esdbURL is the EventStoreDB the test uses: a real one at DOCKET_ESDB_URL,
// else the protocol-level stand-in (ledger/esdb/esdbtest) in this process.
func esdbURL(t *testing.T) string {
	t.Helper()
	if url := os.Getenv("DOCKET_ESDB_URL"); url != "" {
		return url
	}
	s, err := esdbtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s.URL()
}

// TestESDBServeAndVerify runs the docket binary on EventStoreDB: demo
// records a ledger there, a second node (serve, with its own empty --data
// and the same key) rebuilds the tree from EventStoreDB and records more,
// verify re-reads it from EventStoreDB, the read models rebuild and a
// binder exported from it verifies offline; then an operator deletes a
// stream and verify fails, naming the event.
func TestESDBServeAndVerify(t *testing.T) {
	bin := buildDocket(t)
	url := esdbURL(t)
	prefix := fmt.Sprintf("dkte2e%d-", time.Now().UnixNano()) // not under the default docket-: prefixes must not nest
	node1, node2 := t.TempDir(), t.TempDir()
	on := []string{"--esdb", url, "--esdb-prefix", prefix}

	demo := run(t, bin, append([]string{"demo", "--data", node1}, on...)...)
	m := regexp.MustCompile(`verified: (\d+) events`).FindStringSubmatch(demo)
	if m == nil {
		t.Fatalf("demo printed:\n%s", demo)
	}
	fp := strings.TrimSpace(run(t, bin, "keys", "show", "--fingerprint", "--data", node1))
	creds := demoCredentials(t, node1)
	// The second node signs with the same key (in production: the same KMS key).
	key, err := os.ReadFile(filepath.Join(node1, "keys", "checkpoint.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(node2, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(node2, "keys", "checkpoint.pem"), key, 0o600); err != nil {
		t.Fatal(err)
	}

	srv := startCmd(t, exec.Command(bin, append([]string{"serve", "--data", node2, "--listen", "127.0.0.1:0", "--anchor-interval", "0"}, on...)...))
	waitFor(t, "the second node to index the demo's events", func() bool {
		return strings.Contains(metrics(t, srv.url), "docket_ledger_events "+m[1]+"\n")
	})
	d := mustData(t)(srv.gql(t, creds["admin"], `mutation { registerAgent(input: {id: "e2e-agent", name: "E2E", owner: "alice"}) { agentId } }`, nil))
	if d["registerAgent"].(map[string]any)["agentId"] != "e2e-agent" {
		t.Fatalf("registerAgent: %v", d)
	}
	waitFor(t, "a checkpoint covering the new event", func() bool {
		code, _, _ := runCode(t, bin, append([]string{"verify", "ledger", "--fingerprint", fp}, on...)...)
		return code == 0
	})
	srv.cmd.Process.Signal(os.Interrupt)
	srv.cmd.Wait()

	verified := run(t, bin, append([]string{"verify", "ledger", "--fingerprint", fp}, on...)...)
	if !regexp.MustCompile(`^ok: \d+ events, \d+ checkpoints`).MatchString(verified) {
		t.Fatalf("verify printed %q", verified)
	}

	// The read models rebuild from the node's index, and a binder exported
	// from EventStoreDB verifies offline, from a fresh directory.
	rebuilt := run(t, bin, append([]string{"projections", "rebuild", "--data", node2}, on...)...)
	if !strings.HasPrefix(rebuilt, "rebuilt ") {
		t.Fatalf("projections rebuild printed %q", rebuilt)
	}
	out := t.TempDir()
	pdf, bundle := filepath.Join(out, "binder.pdf"), filepath.Join(out, "bundle.json")
	exported := run(t, bin, append([]string{"export", "binder", "--data", node2, "--from", time.Now().AddDate(0, 0, -100).Format("2006-01-02"),
		"--to", time.Now().Format("2006-01-02"), "--sample", "4", "--seed", "e2e", "-o", pdf, "--bundle", bundle}, on...)...)
	if !strings.HasPrefix(exported, "binder of 4 change(s)") {
		t.Fatalf("export binder printed %q", exported)
	}
	fresh := exec.Command(bin, "verify", "binder", "binder.pdf", "--fingerprint", fp)
	fresh.Dir = out
	if got, err := fresh.CombinedOutput(); err != nil || strings.Count(string(got), "ok      change ") != 4 {
		t.Fatalf("verify binder: %v\n%s", err, got)
	}

	// An operator soft-deletes the new agent's stream in EventStoreDB.
	cfg, err := kurrentdb.ParseConnectionString(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = kurrentdb.NoopLogging()
	c, err := kurrentdb.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.DeleteStream(context.Background(), prefix+"agent-e2e-agent", kurrentdb.DeleteStreamOptions{}); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCode(t, bin, append([]string{"verify", "ledger", "--fingerprint", fp}, on...)...)
	if code != 1 || !strings.Contains(stderr, "FAILED") || !strings.Contains(stderr, "event missing") || !strings.Contains(stderr, "agent-e2e-agent revision 0") {
		t.Fatalf("verify after the delete: exit %d\nstdout %s\nstderr %s\nwant exit 1 naming agent-e2e-agent revision 0", code, stdout, stderr)
	}
	t.Logf("verify after the delete: %s", stderr)
}

func metrics(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
