package test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestAuthorizationMatrix calls every mutation, with a well-formed input,
// as every kind of caller, and checks who is refused with FORBIDDEN.
// "Allowed" means the call got past authorization: it may still fail on
// the change's state (CONFLICT, with reason GATE_FAILED for a refused gate,
// NOT_FOUND for the matrix's made-up ids, …), never with FORBIDDEN, and
// never INTERNAL.
func TestAuthorizationMatrix(t *testing.T) {
	bin := buildDocket(t)
	data := t.TempDir()
	callers := map[string]string{
		"admin":     secret(t, run(t, bin, "principals", "add", "ada", "--data", data, "--role", "admin")),
		"requester": secret(t, run(t, bin, "principals", "add", "alice", "--data", data, "--role", "requester")),
		"approver": secret(t, run(t, bin, "principals", "add", "bob", "--data", data, "--role", "approver",
			"--authority", "file:github.com/acme/**=read,write", "--authority", "cmd:**=exec")),
		"auditor": secret(t, run(t, bin, "principals", "add", "carol", "--data", data, "--role", "auditor")),
		"agent":   secret(t, run(t, bin, "agents", "add", "claude-ci", "--data", data, "--owner", "alice")),
	}
	s := startServer(t, bin, data)
	d := mustData(t)(s.gql(t, callers["agent"], `mutation { submitPlan(input: {requestedBy: "alice", plan: {objective: "o", method: "m", scope: [{resource: "file:github.com/acme/api/**", verbs: ["write"]}], testApproach: "t", backoutPath: "b", environment: "production"}}) { changeId planHash } }`, nil))
	sub := d["submitPlan"].(map[string]any)
	id, hash := sub["changeId"].(string), sub["planHash"].(string)
	mustData(t)(s.gql(t, callers["approver"], fmt.Sprintf(`mutation { approvePlan(input: {changeId: %q, planHash: %q}) { status } }`, id, hash), nil))
	d = mustData(t)(s.gql(t, callers["agent"], fmt.Sprintf(`mutation { requestSession(input: {changeId: %q}) { credential } }`, id), nil))
	callers["session"] = d["requestSession"].(map[string]any)["credential"].(string)

	ref := fmt.Sprintf(`changeId: %q`, id)
	type row struct {
		op      string   // the mutation, NAME standing for the caller's name
		allowed []string // who may call it
	}
	mutations := []row{
		{`registerPrincipal(input: {id: "p-NAME", name: "n", roles: ["auditor"]}) { principalId }`, []string{"admin"}},
		{`registerAgent(input: {id: "a-NAME", name: "n", owner: "alice"}) { agentId }`, []string{"admin"}},
		{`submitPlan(input: {requestedBy: "alice", plan: {objective: "o", method: "m", scope: [{resource: "file:github.com/acme/web/**", verbs: ["write"]}], testApproach: "t", backoutPath: "b", environment: "staging"}}) { changeId }`, []string{"agent"}},
		{`viewPlan(input: {` + ref + `}) { id }`, []string{"admin", "requester", "approver", "auditor"}},
		{`approvePlan(input: {` + ref + `, planHash: "` + hash + `"}) { id }`, []string{"approver"}},
		{`rejectPlan(input: {` + ref + `, planHash: "` + hash + `", comment: "no"}) { id }`, []string{"approver"}},
		{`requestSession(input: {` + ref + `}) { sessionId }`, []string{"agent"}},
		{`recordAction(input: {kind: "edit", uses: [{resource: "file:github.com/acme/api/x.go", verb: "write"}]}) { inScope }`, []string{"session"}},
		{`attachEvidence(input: {kind: "other", format: "txt", content: "notes"}) { summary { testsPassed } }`, []string{"session"}},
		{`requestPromotion(input: {` + ref + `}) { id }`, []string{"admin", "approver", "agent"}},
		{`recordRollback(input: {` + ref + `, reason: "r"}) { id }`, []string{"admin", "requester", "approver"}},
		{`declareFreeze(input: {environment: "staging", reason: "r"}) { freezeId }`, []string{"admin", "approver"}},
		{`liftFreeze(input: {freezeId: "frz-none"})`, []string{"admin", "approver"}},
		{`resolveException(input: {` + ref + `, exceptionId: "exc-none", disposition: "accepted", justification: "j"}) { id }`, []string{"approver"}},
		{`grantRole(input: {principalId: "carol", role: "requester"})`, []string{"admin"}},
		{`revokeRole(input: {principalId: "carol", role: "requester"})`, []string{"admin"}},
		{`issueToken(input: {principalId: "carol"}) { tokenId }`, []string{"admin"}},
		{`revokeToken(input: {principalId: "carol", tokenId: "tok-none"})`, []string{"admin"}},
		{`issueAgentKey(input: {agentId: "claude-ci"}) { keyId }`, []string{"admin"}},
		{`retireAgent(input: {agentId: "a-admin"})`, []string{"admin"}},
		{`endSession(input: {})`, []string{"session"}},
	}
	// The matrix covers every mutation the schema has.
	d = mustData(t)(s.gql(t, callers["admin"], `{ __schema { mutationType { fields { name } } } }`, nil))
	for _, f := range d["__schema"].(map[string]any)["mutationType"].(map[string]any)["fields"].([]any) {
		name := f.(map[string]any)["name"].(string)
		if !slices.ContainsFunc(mutations, func(m row) bool { return strings.HasPrefix(m.op, name+"(") }) {
			t.Errorf("mutation %s is not in the matrix", name)
		}
	}
	for _, m := range mutations {
		for name, token := range callers {
			allowed := false
			for _, a := range m.allowed {
				allowed = allowed || a == name
			}
			op := "mutation { " + strings.ReplaceAll(m.op, "NAME", name) + " }"
			_, errs := s.gql(t, token, op, nil)
			code := errCode(errs)
			switch {
			case allowed && (code == "FORBIDDEN" || code == "UNAUTHENTICATED" || code == "INTERNAL"):
				t.Errorf("%s calling %.40s…: refused with %s %v", name, m.op, code, errs)
			case !allowed && code != "FORBIDDEN":
				t.Errorf("%s calling %.40s…: got %q %v, want FORBIDDEN", name, m.op, code, errs)
			}
		}
	}
	if _, errs := s.gql(t, "", `mutation { endSession(input: {}) }`, nil); errCode(errs) != "UNAUTHENTICATED" {
		t.Errorf("anonymous: %v", errs)
	}
}
