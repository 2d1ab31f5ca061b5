package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestAgentPlanExampleInREADME: the plan file the README shows is the one
// the tests submit.
func TestAgentPlanExampleInREADME(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)A plan file \\(YAML.*?```yaml\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README has no plan file example")
	}
	file, err := os.ReadFile(filepath.Join("testdata", "plan.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var inREADME, inTestdata map[string]any
	if err := yaml.Unmarshal(m[1], &inREADME); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(file, &inTestdata); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(inREADME, inTestdata) {
		t.Fatalf("README's plan example:\n%v\ntestdata/plan.yaml:\n%v", inREADME, inTestdata)
	}
}

// TestAgentCLIErrors: usage and input errors exit 2, refusals by the server
// exit 1 and name the server's extensions.code.
func TestAgentCLIErrors(t *testing.T) {
	bin := buildDocket(t)
	data := t.TempDir()
	run(t, bin, "principals", "add", "alice", "--data", data, "--role", "requester")
	bobTok := secret(t, run(t, bin, "principals", "add", "bob", "--data", data, "--role", "approver",
		"--authority", "file:github.com/acme/**=read,write", "--authority", "cmd:**=exec", "--authority", "net:**=call"))
	agentKey := secret(t, run(t, bin, "agents", "add", "claude-ci", "--data", data, "--owner", "alice"))
	srv := startCmd(t, exec.Command(bin, "serve", "--data", data, "--listen", "127.0.0.1:0", "--anchor-interval", "0"))
	dir := t.TempDir()
	env := []string{"DOCKET_URL=" + srv.url, "DOCKET_AGENT_KEY=" + agentKey, "DOCKET_CREDENTIAL=", "DOCKET_CREDENTIAL_FILE="}
	agent := func(env []string, args ...string) (int, string, string) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"agent"}, args...)...)
		cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
		var o, e strings.Builder
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), o.String(), e.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, o.String(), e.String()
	}
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, _ := os.ReadFile(filepath.Join("testdata", "plan.yaml"))
	plan := write("plan.yaml", string(good))

	for _, c := range []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"unknown key", env, []string{"plan", "submit", "--file", write("typo.yaml", string(good)+"backout: oops\n")}, 2, "field backout not found"},
		{"missing parts", env, []string{"plan", "submit", "--file", write("short.yaml", "requestedBy: alice\nobjective: x\n")}, 2, "missing"},
		{"no plan file", env, []string{"plan", "submit", "--file", filepath.Join(dir, "none.yaml")}, 2, "no such file"},
		{"no agent key", []string{"DOCKET_URL=" + srv.url, "DOCKET_AGENT_KEY="}, []string{"plan", "submit", "--file", plan}, 2, "DOCKET_AGENT_KEY"},
		{"wrong agent key", []string{"DOCKET_URL=" + srv.url, "DOCKET_AGENT_KEY=dkt_agent_nope"}, []string{"plan", "submit", "--file", plan}, 1, "UNAUTHENTICATED"},
		{"server down", []string{"DOCKET_URL=http://127.0.0.1:1", "DOCKET_AGENT_KEY=" + agentKey}, []string{"plan", "submit", "--file", plan}, 1, "unreachable"},
		{"session without --change", env, []string{"session", "start"}, 2, "--change"},
		{"no credential", append(env, "DOCKET_CREDENTIAL_FILE="+filepath.Join(dir, "none")), []string{"action", "record", "--kind", "exec", "--use", "cmd:ls=exec"}, 2, "no session credential"},
		{"bad --use", append(env, "DOCKET_CREDENTIAL=dkt_sess_x"), []string{"action", "record", "--kind", "exec", "--use", "cmd:ls"}, 2, "RESOURCE=VERB"},
		{"bad evidence kind", append(env, "DOCKET_CREDENTIAL=dkt_sess_x"), []string{"evidence", "attach", "--kind", "lint", "--format", "junit", plan}, 2, "--kind test|scan"},
		{"dead credential", append(env, "DOCKET_CREDENTIAL=dkt_sess_x"), []string{"action", "record", "--kind", "exec", "--use", "cmd:ls=exec"}, 1, "UNAUTHENTICATED"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := agent(c.env, c.args...)
			if code != c.code || !strings.Contains(errOut, c.want) {
				t.Fatalf("exit %d, stderr %q (stdout %q); want exit %d mentioning %q", code, errOut, out, c.code, c.want)
			}
		})
	}

	code, out, errOut := agent(env, "plan", "submit", "--file", plan)
	m := regexp.MustCompile(`change (\S+)\nplan hash (\S+)`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("plan submit: %d %s %s", code, out, errOut)
	}
	// Before approval the issuance gate refuses, with the server's code.
	if code, _, errOut := agent(env, "session", "start", "--change", m[1]); code != 1 || !regexp.MustCompile(`[A-Z_]{5,}: `).MatchString(errOut) {
		t.Fatalf("session start before approval: exit %d %q", code, errOut)
	}
	srv.gql(t, bobTok, `mutation($id: ID!) { viewPlan(input: {changeId: $id}) { status } }`, map[string]any{"id": m[1]})
	if _, errs := srv.gql(t, bobTok, `mutation($id: ID!, $h: String!) { approvePlan(input: {changeId: $id, planHash: $h}) { status } }`, map[string]any{"id": m[1], "h": m[2]}); errs != nil {
		t.Fatal(errs)
	}
	code, out, errOut = agent(env, "session", "start", "--change", m[1], "--print")
	exp := regexp.MustCompile(`^export DOCKET_CREDENTIAL=(dkt_sess_\S+)\n$`).FindStringSubmatch(out)
	if code != 0 || exp == nil {
		t.Fatalf("session start --print: %d %q %s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, ".docket")); !os.IsNotExist(err) {
		t.Fatal("--print wrote a credential file")
	}
	sess := append(env, "DOCKET_CREDENTIAL="+exp[1])
	if code, out, errOut := agent(sess, "action", "record", "--kind", "exec", "--use", "cmd:go test ./...=exec", "--command", "go test ./..."); code != 0 || !strings.Contains(out, "in scope") {
		t.Fatalf("action record: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := agent(sess, "action", "record", "--kind", "exec", "--use", "cmd:curl evil.example=exec"); code != 1 || !strings.Contains(errOut, "OUT_OF_SCOPE") {
		t.Fatalf("out of scope: exit %d %q", code, errOut)
	}
	// The credential is revoked: the next action is refused.
	if code, _, errOut := agent(sess, "action", "record", "--kind", "exec", "--use", "cmd:go test ./...=exec"); code != 1 || !strings.Contains(errOut, "revoked") {
		t.Fatalf("after the deviation: exit %d %q", code, errOut)
	}
	if code, out, errOut := agent(sess, "session", "end"); code != 0 || !strings.Contains(out, "session ended") {
		t.Fatalf("session end: exit %d %q %q", code, out, errOut)
	}
}
