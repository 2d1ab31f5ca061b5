package test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket/wsjson"
)

// TestIdentityAdministrationOverHTTP: an admin enrols people and agents,
// issues and revokes tokens, grants and revokes roles and retires an agent
// through the API, on a running server, and each takes effect at once. A
// refused enrolment writes nothing.
func TestIdentityAdministrationOverHTTP(t *testing.T) {
	bin := buildDocket(t)
	data := t.TempDir()
	admin := secret(t, run(t, bin, "principals", "add", "ada", "--data", data, "--role", "admin"))
	s := startServer(t, bin, data)
	ok := mustData(t)

	// Refused enrolments, each for one bad part among good ones: nothing
	// written, and the id stays free.
	before := eventCount(t, verified(t, bin, data))
	for _, in := range []string{
		`{id: "bob", name: "Bob", roles: ["requester", "wizard"]}`,
		`{id: "bob", name: "Bob", roles: ["requester", "approver"]}`, // an approver without authority
		`{id: "bob", name: "Bob", roles: ["auditor"], authority: [{resource: "file:**", verbs: ["write"]}]}`,
		`{id: "bob", name: "Bob", roles: []}`,
		`{id: "b o b", name: "Bob", roles: ["auditor"]}`,
	} {
		_, errs := s.gql(t, admin, `mutation { registerPrincipal(input: `+in+`) { principalId } }`, nil)
		if code := errCode(errs); code != "INVALID_INPUT" {
			t.Errorf("registerPrincipal(%s): %q %v, want INVALID_INPUT", in, code, errs)
		}
	}
	_, errs := s.gql(t, admin, `mutation { registerAgent(input: {id: "claude-ci", name: "c", owner: "nobody"}) { agentId } }`, nil)
	if code := errCode(errs); code != "INVALID_INPUT" {
		t.Errorf("registerAgent with an unknown owner: %q %v, want INVALID_INPUT", code, errs)
	}
	if after := eventCount(t, verified(t, bin, data)); after != before {
		t.Fatalf("refused enrolments wrote %d events", after-before)
	}

	// Bob enrolled as requester and approver, with a second token.
	d := ok(s.gql(t, admin, `mutation { registerPrincipal(input: {id: "bob", name: "Bob", roles: ["requester", "approver"], authority: [{resource: "file:github.com/acme/**", verbs: ["write"]}]}) { principalId tokenId token } }`, nil))
	reg := d["registerPrincipal"].(map[string]any)
	first, firstID := reg["token"].(string), reg["tokenId"].(string)
	d = ok(s.gql(t, admin, `mutation { issueToken(input: {principalId: "bob"}) { tokenId token } }`, nil))
	second := d["issueToken"].(map[string]any)["token"].(string)
	secondID := d["issueToken"].(map[string]any)["tokenId"].(string)
	var bob map[string]any // as the read model has it, once it has caught up
	waitFor(t, "bob among the principals", func() bool {
		d := ok(s.gql(t, admin, `{ principals { id roles tokenIds } }`, nil))
		for _, p := range d["principals"].([]any) {
			if p := p.(map[string]any); p["id"] == "bob" {
				bob = p
			}
		}
		return bob != nil
	})
	if ids := bob["tokenIds"].([]any); len(ids) != 2 || !slices.Contains(ids, any(firstID)) || !slices.Contains(ids, any(secondID)) {
		t.Fatalf("bob's tokenIds %v, want %s and %s", ids, firstID, secondID)
	}
	for _, tok := range []string{first, second} {
		if d := ok(s.gql(t, tok, `{ me { id roles } }`, nil)); d["me"].(map[string]any)["id"] != "bob" {
			t.Fatalf("me: %v", d)
		}
	}

	// The first token revoked: refused at once, the second still works;
	// revoking it again is NOT_FOUND.
	ok(s.gql(t, admin, fmt.Sprintf(`mutation { revokeToken(input: {principalId: "bob", tokenId: %q}) }`, firstID), nil))
	if _, errs := s.gql(t, first, `{ me { id } }`, nil); errCode(errs) != "UNAUTHENTICATED" {
		t.Errorf("a revoked token: %v, want UNAUTHENTICATED", errs)
	}
	ok(s.gql(t, second, `{ me { id } }`, nil))
	if _, errs := s.gql(t, admin, fmt.Sprintf(`mutation { revokeToken(input: {principalId: "bob", tokenId: %q}) }`, firstID), nil); errCode(errs) != "NOT_FOUND" {
		t.Errorf("revoking a revoked token: %v, want NOT_FOUND", errs)
	}

	// An agent files alice's plan; bob's approver role revoked, his
	// approval is FORBIDDEN; granted again, it passes.
	ok(s.gql(t, admin, `mutation { registerPrincipal(input: {id: "alice", name: "Alice", roles: ["requester"]}) { tokenId } }`, nil))
	d = ok(s.gql(t, admin, `mutation { registerAgent(input: {id: "claude-ci", name: "Claude", owner: "alice"}) { agentId keyId key } }`, nil))
	key := d["registerAgent"].(map[string]any)["key"].(string)
	d = ok(s.gql(t, key, `mutation { submitPlan(input: {requestedBy: "alice", plan: {objective: "o", method: "m", scope: [{resource: "file:github.com/acme/api/**", verbs: ["write"]}], testApproach: "t", backoutPath: "b", environment: "production"}}) { changeId planHash } }`, nil))
	sub := d["submitPlan"].(map[string]any)
	approve := fmt.Sprintf(`mutation { approvePlan(input: {changeId: %q, planHash: %q}) { status } }`, sub["changeId"], sub["planHash"])
	ok(s.gql(t, admin, `mutation { revokeRole(input: {principalId: "bob", role: "approver"}) }`, nil))
	if _, errs := s.gql(t, second, approve, nil); errCode(errs) != "FORBIDDEN" {
		t.Errorf("approval by a revoked approver: %v, want FORBIDDEN", errs)
	}
	if _, errs := s.gql(t, admin, `mutation { revokeRole(input: {principalId: "bob", role: "approver"}) }`, nil); errCode(errs) != "NOT_FOUND" {
		t.Errorf("revoking a role not held: %v, want NOT_FOUND", errs)
	}
	ok(s.gql(t, admin, `mutation { grantRole(input: {principalId: "bob", role: "approver", authority: [{resource: "file:github.com/acme/**", verbs: ["write"]}]}) }`, nil))
	ok(s.gql(t, second, approve, nil))
	if _, errs := s.gql(t, admin, `mutation { grantRole(input: {principalId: "carl", role: "auditor"}) }`, nil); errCode(errs) != "NOT_FOUND" {
		t.Errorf("a role for nobody: %v, want NOT_FOUND", errs)
	}

	// Carol, an auditor, follows the ledger's events over a websocket.
	// Her token revoked, her subscription ends at the next event after a
	// second, with nothing written since delivered; her role revoked
	// too, her other token reads nothing.
	d = ok(s.gql(t, admin, `mutation { registerPrincipal(input: {id: "carol", name: "Carol", roles: ["auditor"]}) { tokenId token } }`, nil))
	carol, carolID := d["registerPrincipal"].(map[string]any)["token"].(string), d["registerPrincipal"].(map[string]any)["tokenId"].(string)
	d = ok(s.gql(t, admin, `mutation { issueToken(input: {principalId: "carol"}) { token } }`, nil))
	carol2 := d["issueToken"].(map[string]any)["token"].(string)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn := s.dialWS(ctx, t, nil)
	wsjson.Write(ctx, conn, map[string]any{"type": "connection_init", "payload": map[string]any{"Authorization": "Bearer " + carol}})
	wsjson.Write(ctx, conn, map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": `subscription { events { type stream } }`}})
	time.Sleep(200 * time.Millisecond) // the subscription starts
	ok(s.gql(t, admin, fmt.Sprintf(`mutation { revokeToken(input: {principalId: "carol", tokenId: %q}) }`, carolID), nil))
	time.Sleep(1100 * time.Millisecond)
	ok(s.gql(t, admin, `mutation { registerPrincipal(input: {id: "dora", name: "Dora", roles: ["auditor"]}) { tokenId } }`, nil))
	for {
		var m map[string]any
		if err := wsjson.Read(ctx, conn, &m); err != nil {
			t.Fatalf("the subscription of a revoked token did not end: %v", err)
		}
		if m["type"] == "complete" && m["id"] == "1" {
			break
		}
		if raw, _ := json.Marshal(m); strings.Contains(string(raw), "principal-dora") {
			t.Fatalf("a revoked token's subscription was sent %s", raw)
		}
	}
	ok(s.gql(t, carol2, `{ me { id } }`, nil))
	ok(s.gql(t, admin, `mutation { revokeRole(input: {principalId: "carol", role: "auditor"}) }`, nil))
	for _, q := range []string{`{ me { id } }`, `{ changes(first: 1) { totalCount } }`} {
		if _, errs := s.gql(t, carol2, q, nil); errCode(errs) != "FORBIDDEN" {
			t.Errorf("a principal with no role, %s: %v, want FORBIDDEN", q, errs)
		}
	}

	// A second key for the agent; retired, none of its keys works.
	d = ok(s.gql(t, admin, `mutation { issueAgentKey(input: {agentId: "claude-ci"}) { keyId key } }`, nil))
	key2 := d["issueAgentKey"].(map[string]any)["key"].(string)
	ok(s.gql(t, key2, `{ me { id } }`, nil))
	ok(s.gql(t, admin, `mutation { retireAgent(input: {agentId: "claude-ci"}) }`, nil))
	for _, k := range []string{key, key2} {
		if _, errs := s.gql(t, k, `{ me { id } }`, nil); errCode(errs) != "UNAUTHENTICATED" {
			t.Errorf("a retired agent's key: %v, want UNAUTHENTICATED", errs)
		}
	}
	if _, errs := s.gql(t, admin, `mutation { issueAgentKey(input: {agentId: "claude-ci"}) { keyId } }`, nil); errCode(errs) != "CONFLICT" {
		t.Errorf("a key for a retired agent: %v, want CONFLICT", errs)
	}
	waitFor(t, "the agent retired in the inventory", func() bool {
		d := ok(s.gql(t, admin, `{ agents { id retired keyIds } }`, nil))
		a := d["agents"].([]any)
		return len(a) == 1 && a[0].(map[string]any)["retired"] == true && len(a[0].(map[string]any)["keyIds"].([]any)) == 0
	})
}
