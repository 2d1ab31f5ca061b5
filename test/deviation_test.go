package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestDeviationPathOverHTTP drives a change through a deviation over HTTP:
// an out-of-scope action revokes the session credential and opens an
// exception, which blocks promotion until an approver resolves it; the
// agent then works under a new session and the change is promoted with the
// deviation on its record.
func TestDeviationPathOverHTTP(t *testing.T) {
	bin := buildDocket(t)
	data := t.TempDir()
	run(t, bin, "principals", "add", "alice", "--data", data, "--role", "requester")
	bob := secret(t, run(t, bin, "principals", "add", "bob", "--data", data, "--role", "approver", "--authority", "file:github.com/acme/**=read,write"))
	carol := secret(t, run(t, bin, "principals", "add", "carol", "--data", data, "--role", "auditor"))
	agent := secret(t, run(t, bin, "agents", "add", "claude-ci", "--data", data, "--owner", "alice"))
	s := startServer(t, bin, data)

	d := mustData(t)(s.gql(t, agent, `mutation { submitPlan(input: {requestedBy: "alice", plan: {objective: "Fix rounding", method: "decimal arithmetic", scope: [{resource: "file:github.com/acme/api/src/billing/**", verbs: ["read", "write"]}], testApproach: "go test ./...", backoutPath: "git revert", environment: "production"}}) { changeId planHash } }`, nil))
	sub := d["submitPlan"].(map[string]any)
	ref := map[string]any{"id": sub["changeId"], "hash": sub["planHash"]}
	// Not approved yet: no approver, null rather than "".
	d = mustData(t)(s.gql(t, carol, `query($id: ID!) { change(id: $id) { status approver } }`, ref))
	if c := d["change"].(map[string]any); c["status"] != "submitted" || c["approver"] != nil {
		t.Fatalf("before approval: %v", c)
	}
	mustData(t)(s.gql(t, bob, `mutation($id: ID!) { viewPlan(input: {changeId: $id}) { id } }`, ref))
	mustData(t)(s.gql(t, bob, `mutation($id: ID!, $hash: String!) { approvePlan(input: {changeId: $id, planHash: $hash}) { status } }`, ref))
	session := func() (string, string) {
		d := mustData(t)(s.gql(t, agent, `mutation($id: ID!) { requestSession(input: {changeId: $id}) { sessionId credential } }`, ref))
		p := d["requestSession"].(map[string]any)
		return p["sessionId"].(string), p["credential"].(string)
	}
	action := func(cred, resource string) (map[string]any, []map[string]any) {
		return s.gql(t, cred, `mutation($r: String!) { recordAction(input: {kind: "edit", uses: [{resource: $r, verb: "write"}]}) { inScope } }`, map[string]any{"r": resource})
	}

	first, cred := session()
	mustData(t)(action(cred, "file:github.com/acme/api/src/billing/total.go"))
	if _, errs := action(cred, "file:github.com/acme/api/deploy/prod.yaml"); errCode(errs) != "OUT_OF_SCOPE" {
		t.Fatalf("out-of-scope action: %v, want OUT_OF_SCOPE", errs)
	}
	// The revoked credential is still the session's: it passes the
	// boundary, and the command refuses it with a record of the attempt.
	before := eventCount(t, verified(t, bin, data))
	if _, errs := action(cred, "file:github.com/acme/api/src/billing/total.go"); errCode(errs) != "UNAUTHENTICATED" {
		t.Fatalf("action with the revoked credential: %v, want UNAUTHENTICATED", errs)
	}
	if after := eventCount(t, verified(t, bin, data)); after != before+1 {
		t.Fatalf("%d events before the revoked credential's attempt, %d after: want its refusal recorded", before, after)
	}

	// The read models show the revoked session and the open exception.
	var exc string
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		d = mustData(t)(s.gql(t, carol, `query($id: ID!) { exceptions(open: true) { changeId exception { id kind session resolved } } sessions(changeId: $id) { changeId session { id revoked actions } } live: sessions(live: true) { session { id } } }`, ref))
		if x := d["exceptions"].([]any); len(x) == 1 {
			e := x[0].(map[string]any)["exception"].(map[string]any)
			if e["session"] != first || e["resolved"] != false {
				t.Fatalf("exception: %v", e)
			}
			exc = e["id"].(string)
			ss := d["sessions"].([]any)
			if len(ss) != 1 || ss[0].(map[string]any)["session"].(map[string]any)["revoked"] != true || len(d["live"].([]any)) != 0 {
				t.Fatalf("sessions: %v, live: %v", ss, d["live"])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("exceptions: %v", d)
		}
	}

	// An open exception blocks promotion; the refused gate is on record.
	if _, errs := s.gql(t, agent, `mutation($id: ID!) { requestPromotion(input: {changeId: $id}) { status } }`, ref); errCode(errs) != "CONFLICT" || errs[0]["extensions"].(map[string]any)["reason"] != "GATE_FAILED" {
		t.Fatalf("promotion with an open exception: %v, want CONFLICT (GATE_FAILED)", errs)
	}
	// Only an approver resolves it.
	resolve := `mutation($id: ID!, $x: ID!) { resolveException(input: {changeId: $id, exceptionId: $x, disposition: "remediated", justification: "reverted the deploy file"}) { unresolved exceptions { id resolved disposition } } }`
	args := map[string]any{"id": ref["id"], "x": exc}
	for who, tok := range map[string]string{"auditor": carol, "agent": agent} {
		if _, errs := s.gql(t, tok, resolve, args); errCode(errs) != "FORBIDDEN" {
			t.Fatalf("%s resolving: %v, want FORBIDDEN", who, errs)
		}
	}
	d = mustData(t)(s.gql(t, bob, resolve, args))
	if c := d["resolveException"].(map[string]any); c["unresolved"].(float64) != 0 || c["exceptions"].([]any)[0].(map[string]any)["disposition"] != "remediated" {
		t.Fatalf("resolved: %v", c)
	}

	// A new session carries the work to promotion; a credential ends only
	// its own session.
	second, cred2 := session()
	mustData(t)(action(cred2, "file:github.com/acme/api/src/billing/total.go"))
	for kind, file := range map[string]string{"test": "gotestsum-passing.xml", "scan": "gosec-clean.sarif"} {
		content, err := os.ReadFile(filepath.Join("..", "domain", "report", "testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		mustData(t)(s.gql(t, cred2, `mutation($k: String!, $f: String!, $c: String!) { attachEvidence(input: {kind: $k, format: $f, content: $c}) { summary { high } } }`,
			map[string]any{"k": kind, "f": map[string]string{"test": "junit", "scan": "sarif"}[kind], "c": string(content)}))
	}
	if _, errs := s.gql(t, cred2, `mutation($s: ID!) { endSession(input: {sessionId: $s}) }`, map[string]any{"s": first}); errCode(errs) != "FORBIDDEN" {
		t.Fatalf("ending another session: %v, want FORBIDDEN", errs)
	}
	mustData(t)(s.gql(t, cred2, `mutation($s: ID!) { endSession(input: {sessionId: $s}) }`, map[string]any{"s": second}))
	d = mustData(t)(s.gql(t, agent, `mutation($id: ID!) { requestPromotion(input: {changeId: $id}) { status outOfScope answers { attributes { name result } } } }`, ref))
	c := d["requestPromotion"].(map[string]any)
	if c["status"] != "promoted" || c["outOfScope"].(float64) != 1 {
		t.Fatalf("promotion: %v", c)
	}
	results := map[string]string{}
	for _, a := range c["answers"].([]any) {
		for _, at := range a.(map[string]any)["attributes"].([]any) {
			at := at.(map[string]any)
			results[at["name"].(string)] = at["result"].(string)
		}
	}
	if results["every_action_in_scope"] != "exception" || results["tests_passed"] != "pass" || results["scan_clean"] != "pass" {
		t.Fatalf("attributes %v: the deviation stays on the record as a resolved exception", results)
	}
	// The agent's sessions, newest first.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		d = mustData(t)(s.gql(t, carol, `{ mine: sessions(agent: "claude-ci") { session { id ended revoked } } other: sessions(agent: "someone-else") { session { id } } }`, nil))
		if ss := d["mine"].([]any); len(ss) == 2 && ss[0].(map[string]any)["session"].(map[string]any)["ended"] == true {
			if ss[0].(map[string]any)["session"].(map[string]any)["id"] != second || ss[1].(map[string]any)["session"].(map[string]any)["id"] != first || len(d["other"].([]any)) != 0 {
				t.Fatalf("sessions by agent: %v", d)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sessions by agent: %v", d)
		}
	}
}

// TestOverdueEmergencyGetsItsException: an emergency change left without
// an approval past its window (3 s here) gets its overdue exception from
// the server, with nothing else touching it; an ordinary change gets none.
func TestOverdueEmergencyGetsItsException(t *testing.T) {
	bin := buildDocket(t)
	data := t.TempDir()
	run(t, bin, "principals", "add", "alice", "--data", data, "--role", "requester")
	carol := secret(t, run(t, bin, "principals", "add", "carol", "--data", data, "--role", "auditor"))
	agent := secret(t, run(t, bin, "agents", "add", "claude-ci", "--data", data, "--owner", "alice"))
	s := startCmd(t, exec.Command(bin, "serve", "--data", data, "--listen", "127.0.0.1:0", "--emergency-window", "3s"))
	submit := func(emergency bool) string {
		d := mustData(t)(s.gql(t, agent, `mutation($e: Boolean) { submitPlan(input: {requestedBy: "alice", plan: {objective: "o", method: "m", scope: [{resource: "file:github.com/acme/api/**", verbs: ["write"]}], testApproach: "t", backoutPath: "b", environment: "production", emergency: $e}}) { changeId } }`, map[string]any{"e": emergency}))
		return d["submitPlan"].(map[string]any)["changeId"].(string)
	}
	urgent, ordinary := submit(true), submit(false)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		d := mustData(t)(s.gql(t, carol, `{ exceptions(open: true) { changeId exception { kind reason } } }`, nil))
		if x := d["exceptions"].([]any); len(x) > 0 {
			e := x[0].(map[string]any)
			if len(x) != 1 || e["changeId"] != urgent || e["exception"].(map[string]any)["kind"] != "emergency-overdue" {
				t.Fatalf("exceptions: %v; want one, emergency-overdue, on %s and none on %s", x, urgent, ordinary)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no overdue exception 30 s after a 3 s emergency window")
		}
	}
}
