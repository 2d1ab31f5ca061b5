package test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket/wsjson"

	"github.com/evidence-parity/docket/ledger"
	"github.com/evidence-parity/docket/ledger/sqlite"
)

// server is a running `docket serve` on a free loopback port.
type server struct {
	url string
	cmd *exec.Cmd
}

func startServer(t *testing.T, bin, data string) *server {
	t.Helper()
	return startCmd(t, exec.Command(bin, "serve", "--data", data, "--listen", "127.0.0.1:0"))
}

// startCmd starts a `docket serve` command and waits for its address.
func startCmd(t *testing.T, cmd *exec.Cmd) *server {
	t.Helper()
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		t.Fatalf("serve printed nothing: %v", err)
	}
	m := regexp.MustCompile(`http://(127\.0\.0\.1:\d+)`).FindStringSubmatch(line)
	if m == nil {
		cmd.Process.Kill()
		t.Fatalf("serve printed %q", line)
	}
	s := &server{url: "http://" + m[1], cmd: cmd}
	t.Cleanup(func() { s.cmd.Process.Kill(); s.cmd.Wait() })
	return s
}

// gql posts a GraphQL operation and decodes the response.
func (s *server) gql(t *testing.T, token, query string, vars map[string]any) (map[string]any, []map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest("POST", s.url+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Data   map[string]any   `json:"data"`
		Errors []map[string]any `json:"errors"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("response %d %q: %v", resp.StatusCode, raw, err)
	}
	return out.Data, out.Errors
}

func errCode(errs []map[string]any) string {
	if len(errs) == 0 {
		return ""
	}
	ext, _ := errs[0]["extensions"].(map[string]any)
	c, _ := ext["code"].(string)
	return c
}

func secret(t *testing.T, out string) string {
	t.Helper()
	m := regexp.MustCompile(`dkt_(tok|agent)_\S+`).FindString(out)
	if m == "" {
		t.Fatalf("no secret in %q", out)
	}
	return m
}

func TestServerLifecycleOverHTTP(t *testing.T) {
	bin := buildDocket(t)
	data := t.TempDir()
	alice := secret(t, run(t, bin, "principals", "add", "alice", "--data", data, "--role", "requester"))
	bob := secret(t, run(t, bin, "principals", "add", "bob", "--data", data, "--role", "approver",
		"--authority", "file:github.com/acme/**=read,write", "--authority", "cmd:**=exec"))
	carol := secret(t, run(t, bin, "principals", "add", "carol", "--data", data, "--role", "auditor"))
	agent := secret(t, run(t, bin, "agents", "add", "claude-ci", "--data", data, "--owner", "alice"))
	_ = alice
	s := startServer(t, bin, data)

	// Anonymous callers are refused before their query is parsed, so
	// not even a validation error's suggestions tell them of the schema.
	for _, q := range []string{`{ me { id } }`, `{ mee { id } }`, `{ chnges { totalCount } }`, `mutation { submitPlan(`} {
		if _, errs := s.gql(t, "", q, nil); errCode(errs) != "UNAUTHENTICATED" || strings.Contains(fmt.Sprint(errs), "Did you mean") {
			t.Fatalf("anonymous %s: %v, want UNAUTHENTICATED and nothing else", q, errs)
		}
	}
	if _, errs := s.gql(t, "dkt_tok_bob.forged-forged-forged", `{ me { id } }`, nil); errCode(errs) != "UNAUTHENTICATED" {
		t.Fatalf("forged token: %v", errs)
	}
	d := mustData(t)(s.gql(t, agent, `mutation($p: PlanInput!) { submitPlan(input: {requestedBy: "alice", plan: $p}) { changeId planHash } }`, map[string]any{
		"p": map[string]any{
			"objective": "Fix rounding in invoice totals", "method": "decimal arithmetic",
			"scope":        []map[string]any{{"resource": "file:github.com/acme/api/src/billing/**", "verbs": []string{"read", "write"}}, {"resource": "cmd:go test *", "verbs": []string{"exec"}}},
			"testApproach": "go test ./...", "backoutPath": "git revert", "environment": "production",
		},
	}))
	sub := d["submitPlan"].(map[string]any)
	id, hash := sub["changeId"].(string), sub["planHash"].(string)
	ref := map[string]any{"id": id, "hash": hash}

	const approve = `mutation($id: ID!, $hash: String!) { approvePlan(input: {changeId: $id, planHash: $hash, comment: "ok"}) { status approver } }`
	for who, tok := range map[string]string{"auditor": carol, "agent": agent} {
		if _, errs := s.gql(t, tok, approve, ref); errCode(errs) != "FORBIDDEN" {
			t.Fatalf("%s approving: %v, want FORBIDDEN", who, errs)
		}
	}
	mustData(t)(s.gql(t, bob, `mutation($id: ID!) { viewPlan(input: {changeId: $id}) { id } }`, ref))
	d = mustData(t)(s.gql(t, bob, approve, ref))
	if got := d["approvePlan"].(map[string]any); got["status"] != "approved" || got["approver"] != "bob" {
		t.Fatalf("approvePlan returned %v", got)
	}
	d = mustData(t)(s.gql(t, agent, `mutation($id: ID!) { requestSession(input: {changeId: $id}) { sessionId credential expiresAt } }`, ref))
	cred := d["requestSession"].(map[string]any)["credential"].(string)

	d = mustData(t)(s.gql(t, cred, `mutation { recordAction(input: {kind: "edit", uses: [{resource: "file:github.com/acme/api/src/billing/total.go", verb: "write"}]}) { inScope verdicts { reason } } }`, nil))
	if d["recordAction"].(map[string]any)["inScope"] != true {
		t.Fatalf("in-scope action: %v", d)
	}
	if _, errs := s.gql(t, bob, `mutation { recordAction(input: {kind: "edit", uses: [{resource: "file:x/y", verb: "write"}]}) { inScope } }`, nil); errCode(errs) != "FORBIDDEN" {
		t.Fatalf("an approver token recording an action: %v", errs)
	}
	for kind, file := range map[string]string{"test": "gotestsum-passing.xml", "scan": "gosec-clean.sarif"} {
		content, err := os.ReadFile(filepath.Join("..", "domain", "report", "testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		format := map[string]string{"test": "junit", "scan": "sarif"}[kind]
		mustData(t)(s.gql(t, cred, `mutation($k: String!, $f: String!, $c: String!) { attachEvidence(input: {kind: $k, format: $f, content: $c}) { summary { testsPassed high } } }`,
			map[string]any{"k": kind, "f": format, "c": string(content)}))
	}
	mustData(t)(s.gql(t, cred, `mutation { endSession(input: {}) }`, nil))
	if _, errs := s.gql(t, cred, `mutation { recordAction(input: {kind: "edit", uses: [{resource: "file:github.com/acme/api/src/billing/total.go", verb: "write"}]}) { inScope } }`, nil); errCode(errs) != "UNAUTHENTICATED" {
		t.Fatalf("action after endSession: %v", errs)
	}
	d = mustData(t)(s.gql(t, agent, `mutation($id: ID!) { requestPromotion(input: {changeId: $id}) { status answers { question result attributes { name result } } } }`, ref))
	ch := d["requestPromotion"].(map[string]any)
	if ch["status"] != "promoted" {
		t.Fatalf("promotion: %v", ch)
	}
	// Everything holds but the review: bob approved within a second of
	// opening the plan, which is flagged as rubber-stamp risk.
	for _, a := range ch["answers"].([]any) {
		for _, at := range a.(map[string]any)["attributes"].([]any) {
			at := at.(map[string]any)
			if want := map[bool]string{true: "fail", false: "pass"}[at["name"] == "review_depth"]; at["result"] != want {
				t.Errorf("attribute %v, want %s", at, want)
			}
		}
	}
	d = mustData(t)(s.gql(t, carol, `query($id: ID!) { change(id: $id) { sessions { agent ended revoked actions } exceptions { id } } }`, ref))
	if c := d["change"].(map[string]any); len(c["exceptions"].([]any)) != 0 || len(c["sessions"].([]any)) != 1 ||
		c["sessions"].([]any)[0].(map[string]any)["ended"] != true || c["sessions"].([]any)[0].(map[string]any)["actions"].(float64) != 1 {
		t.Fatalf("change sessions and exceptions: %v", c)
	}
	// The list comes from the projections, which follow the ledger.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		d = mustData(t)(s.gql(t, carol, `{ changes(first: 10, filter: {status: "promoted"}) { totalCount edges { node { id } } } agents { id owner } }`, nil))
		if c := d["changes"].(map[string]any); c["totalCount"].(float64) == 1 {
			if a := d["agents"].([]any); len(a) != 1 || a[0].(map[string]any)["owner"] != "alice" {
				t.Fatalf("agents: %v", a)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("changes: %v", d)
		}
	}

	// Every event the answers cite has an inclusion proof in the latest
	// signed checkpoint; check one with the ledger package alone.
	verified(t, bin, data)
	d = mustData(t)(s.gql(t, carol, `query($id: ID!) { change(id: $id) { answers { attributes { events } } } }`, ref))
	eventID := d["change"].(map[string]any)["answers"].([]any)[0].(map[string]any)["attributes"].([]any)[0].(map[string]any)["events"].([]any)[0].(string)
	// The server signs within a second of the write; until then the event
	// has no proof yet.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		d, errs := s.gql(t, carol, `query($e: ID!) { proof(eventId: $e) { position canonical leafHash hashes checkpoint { size root note } } }`, map[string]any{"e": eventID})
		if len(errs) == 0 {
			checkProof(t, data, d["proof"].(map[string]any))
			break
		}
		if errCode(errs) != "NOT_FOUND" || time.Now().After(deadline) {
			t.Fatalf("proof: %v", errs)
		}
	}

	// The latest checkpoints, latest first; the newest covers the event.
	d = mustData(t)(s.gql(t, carol, `{ checkpoints(last: 2) { size root note } }`, nil))
	cps := d["checkpoints"].([]any)
	if len(cps) == 0 || len(cps) > 2 || (len(cps) == 2 && cps[0].(map[string]any)["size"].(float64) <= cps[1].(map[string]any)["size"].(float64)) {
		t.Fatalf("checkpoints(last: 2): %v", cps)
	}
	if _, errs := s.gql(t, carol, `{ checkpoints(last: 0) { size } }`, nil); errCode(errs) != "INVALID_INPUT" {
		t.Fatalf("checkpoints(last: 0): %v", errs)
	}

	d = mustData(t)(s.gql(t, bob, `mutation { declareFreeze(input: {environment: "production", reason: "quarter close"}) { freezeId } }`, nil))
	frz := d["declareFreeze"].(map[string]any)["freezeId"].(string)
	// During the freeze an approved change gets no session: FROZEN, and
	// the refusal is on its record.
	d = mustData(t)(s.gql(t, agent, `mutation { submitPlan(input: {requestedBy: "alice", plan: {objective: "o", method: "m", scope: [{resource: "file:github.com/acme/api/**", verbs: ["write"]}], testApproach: "t", backoutPath: "b", environment: "production"}}) { changeId planHash } }`, nil))
	frozen := map[string]any{"id": d["submitPlan"].(map[string]any)["changeId"], "hash": d["submitPlan"].(map[string]any)["planHash"]}
	mustData(t)(s.gql(t, bob, `mutation($id: ID!, $hash: String!) { approvePlan(input: {changeId: $id, planHash: $hash, comment: "ok"}) { status } }`, frozen))
	if _, errs := s.gql(t, agent, `mutation($id: ID!) { requestSession(input: {changeId: $id}) { sessionId } }`, frozen); errCode(errs) != "FROZEN" {
		t.Fatalf("a session during a freeze: %v, want FROZEN", errs)
	}
	d = mustData(t)(s.gql(t, carol, `query($id: ID!) { change(id: $id) { answers { attributes { name result detail events } } } }`, frozen))
	authorized := d["change"].(map[string]any)["answers"].([]any)[0].(map[string]any)["attributes"].([]any)
	if last := authorized[len(authorized)-1].(map[string]any); last["name"] != "no_freeze_at_issuance" || last["result"] != "pending" ||
		last["detail"] != "1 request(s) refused during a freeze; no session issued since" || len(last["events"].([]any)) != 1 {
		t.Errorf("the freeze check while no session is issued: %v", last)
	}
	d = mustData(t)(s.gql(t, carol, `{ freezes { id environment scope by } principals { id roles authority { resource } } }`, nil))
	if f := d["freezes"].([]any); len(f) != 1 || f[0].(map[string]any)["id"] != frz || f[0].(map[string]any)["by"] != "bob" {
		t.Fatalf("freezes: %v", f)
	}
	mustData(t)(s.gql(t, bob, `mutation($f: ID!) { liftFreeze(input: {freezeId: $f}) }`, map[string]any{"f": frz}))
	// Lifted, the session is issued; the answers show the freeze check
	// passed and cite the refused request, and the approver's authority
	// as the approval recorded it.
	mustData(t)(s.gql(t, agent, `mutation($id: ID!) { requestSession(input: {changeId: $id}) { sessionId } }`, frozen))
	d = mustData(t)(s.gql(t, carol, `query($id: ID!) { change(id: $id) { answers { attributes { name result detail events } } } }`, frozen))
	attrs := map[string]map[string]any{}
	for _, a := range d["change"].(map[string]any)["answers"].([]any) {
		for _, at := range a.(map[string]any)["attributes"].([]any) {
			attrs[at.(map[string]any)["name"].(string)] = at.(map[string]any)
		}
	}
	if f := attrs["no_freeze_at_issuance"]; f["result"] != "pass" || !strings.Contains(f["detail"].(string), "1 earlier request(s) refused during a freeze") || len(f["events"].([]any)) != 2 {
		t.Errorf("no_freeze_at_issuance: %v", f)
	}
	if a := attrs["approver_authority"]; a["result"] != "pass" || !strings.Contains(a["detail"].(string), "bob's authority (2 rule(s)) covers every rule") {
		t.Errorf("approver_authority: %v", a)
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		d = mustData(t)(s.gql(t, carol, `{ principals { id roles authority { resource } } }`, nil))
		if len(d["principals"].([]any)) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("principals: %v", d)
		}
	}

	// Bad input loses nothing and says why.
	before := verified(t, bin, data)
	const plan = `"p": {"objective": "o", "method": "m", "scope": [{"resource": "file:github.com/acme/api/**", "verbs": ["write"]}], "testApproach": "t", "backoutPath": "b", "environment": "staging"}`
	for name, body := range map[string]string{
		"malformed JSON": `{"query": "mutation { submitPlan(`,
		"unknown field":  `{"query": "mutation { approvePlan(input: {changeId: \"x\", planHash: \"y\", bogus: 1}) { id } }"}`,
		"invalid UTF-8":  "{\"query\": \"{ me { id \xff } }\"}",
		// Well-formed GraphQL whose text carries a byte that is not UTF-8:
		// decoded, it would be stored as U+FFFD.
		"invalid UTF-8 in a variable": `{"query": "mutation($p: PlanInput!) { submitPlan(input: {requestedBy: \"alice\", plan: $p}) { changeId } }", "variables": {` +
			strings.Replace(plan, `"objective": "o"`, "\"objective\": \"bad \xfe\xff here\"", 1) + `}}`,
		"invalid UTF-8 in a literal": "{\"query\": \"mutation { declareFreeze(input: {environment: \\\"production\\\", reason: \\\"bad \xff\\\"}) { freezeId } }\"}",
	} {
		req, _ := http.NewRequest("POST", s.url+"/graphql", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+map[bool]string{true: agent, false: bob}[strings.Contains(body, "submitPlan(input")])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(raw), `"code":"INVALID_INPUT"`) {
			t.Errorf("%s: %d %s, want INVALID_INPUT", name, resp.StatusCode, raw)
		}
		if strings.Contains(string(raw), "submitPlan(") || strings.Contains(string(raw), "declareFreeze(") {
			t.Errorf("%s: the answer echoes the request: %s", name, raw)
		}
	}
	deep := "{ __schema { types { fields { type " + strings.Repeat("{ ofType ", 46) + "{ name }" + strings.Repeat(" }", 46) + " } } } }"
	var aliases strings.Builder
	aliases.WriteString("{")
	for i := range 1000 {
		fmt.Fprintf(&aliases, " a%d: me { id }", i)
	}
	aliases.WriteString(" }")
	for name, q := range map[string]string{
		"nested 50 deep": deep,
		"1,000 aliases":  aliases.String(),
		"syntax error":   "mutation { approvePlan(",
		"unknown field":  `mutation { approvePlan(input: {changeId: "x", planHash: "y", bogus: 1}) { id } }`,
		"wrong type":     `mutation { approvePlan(input: {changeId: "x", planHash: 5}) { id } }`,
	} {
		if _, errs := s.gql(t, bob, q, nil); errCode(errs) != "INVALID_INPUT" {
			t.Errorf("%s: %v, want INVALID_INPUT", name, errs)
		}
	}
	// A forged session credential (this session's ids, another secret) or
	// principal token is refused before any operation, introspection
	// included; a session credential that has ended is still the
	// session's, so it reaches the command, which refuses it (above).
	forged := cred[:len(cred)-6] + map[bool]string{true: "AAAAAA", false: "BBBBBB"}[!strings.HasSuffix(cred, "AAAAAA")]
	for name, tok := range map[string]string{"forged session credential": forged, "junk session credential": "dkt_sess_x", "forged token": "dkt_tok_bob.forged-forged-forged"} {
		for _, q := range []string{
			`{ __schema { queryType { name } } }`, `{ __typename }`, `{ changes(first: 1) { totalCount } }`,
			`mutation { recordAction(input: {kind: "edit", uses: [{resource: "file:github.com/acme/api/src/billing/total.go", verb: "write"}]}) { inScope } }`,
			`mutation { declareFreeze(input: {environment: "production", reason: "r"}) { freezeId } }`,
		} {
			if _, errs := s.gql(t, tok, q, nil); errCode(errs) != "UNAUTHENTICATED" {
				t.Errorf("%s, %s: %v, want UNAUTHENTICATED", name, q, errs)
			}
		}
	}
	// A mutation over GET is refused with a code, as every error is.
	req, _ := http.NewRequest("GET", s.url+"/graphql?query="+url.QueryEscape(`mutation { declareFreeze(input: {environment: "production", reason: "r"}) { freezeId } }`), nil)
	req.Header.Set("Authorization", "Bearer "+bob)
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(string(raw), `"code":"INVALID_INPUT"`) {
			t.Errorf("a mutation over GET: %d %s, want 405 with INVALID_INPUT", resp.StatusCode, raw)
		}
	}
	// Over the cost limit: each list at the most its resolver takes (500
	// changes, exceptions or sessions, 1,000 sampled), twice where one is
	// not enough, with enough of each item: the costs multiply by the
	// list's size, or these would pass.
	for _, q := range []string{
		`{ a: changes(first: 500) { edges { node { id answers { attributes { name events } } } } } b: changes(first: 500) { edges { node { id answers { attributes { name events } } } } } }`,
		`{ sample(from: "2026-01-01T00:00:00Z", to: "2027-01-01T00:00:00Z", size: 1000, seed: "s") { changes { answers { attributes { name events } } } } }`,
		`{ a: exceptions(first: 500) { changeId exception { id kind session reason resolved disposition } } b: exceptions(first: 500) { changeId exception { id kind session reason resolved disposition } } }`,
		`{ a: sessions(first: 500) { changeId session { id agent credentialId planHash } } b: sessions(first: 500) { changeId session { id agent credentialId planHash } } }`,
		`{ a: checkpoints(last: 1000) { size root note } b: checkpoints(last: 1000) { size root note } }`,
	} {
		if _, errs := s.gql(t, carol, q, nil); errCode(errs) != "INVALID_INPUT" || !strings.Contains(fmt.Sprint(errs), "complexity") {
			t.Errorf("over the cost limit, %s: %v, want INVALID_INPUT for its complexity", q, errs)
		}
	}
	// 10 MiB, with its length announced and chunked (the limit is found
	// while reading).
	big := bytes.Repeat([]byte("x"), 10<<20)
	for name, body := range map[string]io.Reader{"with Content-Length": bytes.NewReader(big), "chunked": io.MultiReader(bytes.NewReader(big))} {
		req, _ := http.NewRequest("POST", s.url+"/graphql", body)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+bob)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(raw), `"code":"INVALID_INPUT"`) {
			t.Errorf("10 MiB body %s: %d %.200s, want 413 with INVALID_INPUT", name, resp.StatusCode, raw)
		}
	}

	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready", "/metrics": "docket_ledger_events "} {
		resp, err := http.Get(s.url + path)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(raw), want) {
			t.Errorf("GET %s: %d, want 200 with %q", path, resp.StatusCode, want)
		}
	}
	// The ledger's fsyncs, which made this test's appends durable, and
	// their time: the disk's share of an append's latency.
	m := metrics(t, s.url)
	for _, re := range []string{`(?m)^docket_ledger_fsyncs_total [1-9]`, `(?m)^docket_ledger_fsync_seconds_total [0-9.]+(e-\d+)?$`} {
		if !regexp.MustCompile(re).MatchString(m) {
			t.Errorf("/metrics has no line matching %s", re)
		}
	}

	// Graceful stop, then the ledger verifies offline.
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("serve exited with %v after SIGTERM", err)
	}
	if after := verified(t, bin, data); eventCount(t, after) != eventCount(t, before) {
		t.Fatalf("verify before %q, after %q: bad input must write nothing", before, after)
	}
}

// demoCredentials reads the token of each demo role that `docket demo`
// wrote in data.
func demoCredentials(t *testing.T, data string) map[string]string {
	t.Helper()
	var creds map[string]string
	raw, err := os.ReadFile(filepath.Join(data, "demo-credentials.json"))
	if err == nil {
		err = json.Unmarshal(raw, &creds)
	}
	if err != nil {
		t.Fatalf("demo credentials: %v", err)
	}
	return creds
}

// eventCount reads the ledger's size from `docket verify ledger`'s summary.
func eventCount(t *testing.T, summary string) int {
	t.Helper()
	m := regexp.MustCompile(`^ok: (\d+) events`).FindStringSubmatch(summary)
	if m == nil {
		t.Fatalf("verify ledger said %q", summary)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func mustData(t *testing.T) func(map[string]any, []map[string]any) map[string]any {
	return func(d map[string]any, errs []map[string]any) map[string]any {
		t.Helper()
		if len(errs) > 0 {
			t.Fatalf("graphql errors: %v", errs)
		}
		return d
	}
}

// verified verifies the ledger of a running server (its tail not yet signed
// is counted, not failed) and returns the summary.
func verified(t *testing.T, bin, data string) string {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		code, out, stderr := runCode(t, bin, "verify", "ledger", "--data", data)
		if code == 0 {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("verify ledger: %s %s", out, stderr)
		}
	}
}

// checkProof verifies a proof returned by the API against the ledger's
// pinned key, with the ledger package only.
func checkProof(t *testing.T, data string, p map[string]any) {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(data, "ledger.db"), sqlite.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	keys, _ := s.Keys(context.Background())
	var fps []string
	for fp := range keys {
		fps = append(fps, fp)
	}
	vs, err := s.Verifiers(context.Background(), fps...)
	if err != nil {
		t.Fatal(err)
	}
	cpm := p["checkpoint"].(map[string]any)
	cp, err := ledger.OpenCheckpoint([]byte(cpm["note"].(string)), vs)
	if err != nil {
		t.Fatalf("checkpoint note: %v", err)
	}
	leaf := ledger.LeafHash([]byte(p["canonical"].(string)))
	if hex.EncodeToString(leaf) != p["leafHash"] {
		t.Fatalf("leaf hash %s does not match the canonical bytes", p["leafHash"])
	}
	var path [][]byte
	for _, h := range p["hashes"].([]any) {
		b, _ := base64.StdEncoding.DecodeString(h.(string))
		path = append(path, b)
	}
	if err := ledger.VerifyInclusion(uint64(p["position"].(float64)), cp.Size, leaf, path, cp.Root); err != nil {
		t.Fatalf("inclusion proof: %v", err)
	}
}

// The rate limit counts a principal's requests together, whichever of its
// tokens they carry, and requests without a valid token by address: a
// caller cannot win a fresh allowance with another token, a respaced
// header or junk.
func TestRateLimitPerPrincipal(t *testing.T) {
	bin := buildDocket(t)
	data := t.TempDir()
	bob := secret(t, run(t, bin, "principals", "add", "bob", "--data", data, "--role", "auditor"))
	bob2 := secret(t, run(t, bin, "principals", "token", "bob", "--data", data))
	ada := secret(t, run(t, bin, "principals", "add", "ada", "--data", data, "--role", "auditor"))
	s := startCmd(t, exec.Command(bin, "serve", "--data", data, "--listen", "127.0.0.1:0", "--rate-limit", "2"))
	status := func(header string) int {
		req, _ := http.NewRequest("POST", s.url+"/graphql", strings.NewReader(`{"query":"{ me { id } }"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// At 2/s with a burst of 4, twelve quick requests spread over bob's
	// two tokens and two spellings of the header must meet the limit.
	limited := 0
	for i := range 12 {
		h := []string{"Bearer " + bob, "Bearer " + bob2, "Bearer  " + bob, "Bearer " + bob2 + " "}[i%4]
		if status(h) == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("12 quick requests of one principal over two tokens were never limited")
	}
	if code := status("Bearer " + ada); code != http.StatusOK {
		t.Fatalf("another principal got %d: limits are per principal", code)
	}
	limited = 0
	for i := range 12 {
		if status(fmt.Sprintf("Bearer dkt_tok_junk%d.x", i)) == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("12 quick requests with junk tokens were never limited")
	}
	if code := status("Bearer " + ada); code != http.StatusOK {
		t.Fatalf("ada got %d after the junk: a principal's allowance is its own", code)
	}

	// Operations over a websocket count against the same allowance. (The
	// upgrade counts against the address, whose allowance the junk above
	// spent: let it refill.)
	time.Sleep(2 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn := s.dialWS(ctx, t, nil)
	wsjson.Write(ctx, conn, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + ada}})
	for i := range 12 {
		wsjson.Write(ctx, conn, map[string]any{"id": fmt.Sprint(i), "type": "subscribe", "payload": map[string]any{"query": `{ me { id } }`}})
	}
	limited = 0
	for answered := 0; answered < 12; {
		var m map[string]any
		if err := wsjson.Read(ctx, conn, &m); err != nil {
			t.Fatal(err)
		}
		if m["type"] != "next" {
			continue
		}
		answered++
		if raw, _ := json.Marshal(m["payload"]); strings.Contains(string(raw), `"code":"RATE_LIMITED"`) {
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("12 quick operations over a websocket were never limited")
	}
	// One allowance for both: the websocket spent ada's, so her next
	// request over HTTP is refused too.
	if code := status("Bearer " + ada); code != http.StatusTooManyRequests {
		t.Fatalf("ada's request after her websocket spent her allowance: %d, want 429", code)
	}
	// A junk token does not open a websocket at all.
	junk := s.dialWS(ctx, t, nil)
	wsjson.Write(ctx, junk, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer dkt_tok_junk.x"}})
	for {
		var m map[string]any
		if err := wsjson.Read(ctx, junk, &m); err != nil {
			break
		}
		if m["type"] == "connection_ack" {
			t.Fatal("a websocket opened with a junk token was acknowledged")
		}
	}
}

// TestShutdownFinishesRequestsInFlight sends SIGTERM while a request is
// half sent: the server stops taking connections, reads the rest, answers
// it, records what it asked, and exits cleanly.
func TestShutdownFinishesRequestsInFlight(t *testing.T) {
	bin := buildDocket(t)
	data := t.TempDir()
	bob := secret(t, run(t, bin, "principals", "add", "bob", "--data", data, "--role", "approver", "--authority", "file:**=write"))
	s := startServer(t, bin, data)
	before := eventCount(t, verified(t, bin, data))

	body := `{"query":"mutation { declareFreeze(input: {environment: \"production\", reason: \"in flight at shutdown\"}) { freezeId } }"}`
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s", bob, len(body), body[:20])
	time.Sleep(500 * time.Millisecond) // the server has accepted the connection and read the request's head
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// New connections are refused once the listener is closed.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the server still takes connections 10 s after SIGTERM")
		}
	}
	if _, err := io.WriteString(conn, body[20:]); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the request in flight got no answer: %v", err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), `"freezeId":"frz-`) {
		t.Fatalf("the request in flight: %d %s", resp.StatusCode, raw)
	}
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("serve exited with %v after SIGTERM", err)
	}
	after := eventCount(t, verified(t, bin, data))
	if after != before+1 {
		t.Fatalf("%d events before, %d after: the freeze declared in flight must be recorded", before, after)
	}
	// The read models flushed on the way out: they hold every event.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "projections.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var projected int
	if err := db.QueryRow(`SELECT value FROM meta WHERE key = 'position'`).Scan(&projected); err != nil || projected != after {
		t.Fatalf("the read models hold %d of the %d events after shutdown (%v)", projected, after, err)
	}
}

// TestClientsHangingUpLeaveTheServerRunning drops connections while the
// server is still writing to them (a websocket sent hundreds of operations
// and closed without reading a reply): a write to a socket whose peer left
// raises SIGPIPE, which must not stop the server as standard output's
// reader leaving stops a command.
func TestClientsHangingUpLeaveTheServerRunning(t *testing.T) {
	bin := buildDocket(t)
	data := t.TempDir()
	carol := secret(t, run(t, bin, "principals", "add", "carol", "--data", data, "--role", "auditor"))
	s := startServer(t, bin, data)
	// Requests for a large answer (the schema, ~100 KB), the connection
	// closed as soon as each is sent.
	body := `{"query":"{ __schema { types { name description fields { name description args { name description } type { name ofType { name } } } } } }"}`
	for range 10 {
		conn, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
		if err != nil {
			t.Fatalf("the server stopped after clients hung up: %v", err)
		}
		fmt.Fprintf(conn, "POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s", carol, len(body), body)
		conn.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 5 {
		conn := s.dialWS(ctx, t, nil)
		wsjson.Write(ctx, conn, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer dkt_tok_junk.x"}})
		for i := range 500 {
			wsjson.Write(ctx, conn, map[string]any{"id": fmt.Sprint(i), "type": "subscribe", "payload": map[string]any{"query": `{ me { id } }`}})
		}
		conn.CloseNow()
	}
	time.Sleep(500 * time.Millisecond) // a shutdown would have begun
	resp, err := http.Get(s.url + "/healthz")
	if err != nil {
		t.Fatalf("the server stopped after clients hung up: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz after clients hung up: %d", resp.StatusCode)
	}
}
