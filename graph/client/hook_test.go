package client

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// gitRepo makes a real git repository with the given origin remote.
func gitRepo(t *testing.T, origin string) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is not installed: the hooks name repositories by their git remote, and every machine here has git")
	}
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	git(t, dir, "init", "-q")
	if origin != "" {
		git(t, dir, "remote", "add", "origin", origin)
	}
	if err := os.MkdirAll(filepath.Join(dir, "src", "billing"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "src", "billing", "total.go"), []byte("package billing\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func git(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

func TestRepoURI(t *testing.T) {
	for _, c := range []struct{ remote, want string }{
		{"https://github.com/acme/api.git", "github.com/acme/api"},
		{"https://github.com/acme/api", "github.com/acme/api"},
		{"https://token@github.com/acme/api.git/", "github.com/acme/api"},
		{"ssh://git@github.com/acme/api.git", "github.com/acme/api"},
		{"ssh://git@gitlab.example.com:2222/platform/billing/api.git", "gitlab.example.com/platform/billing/api"},
		{"git@github.com:acme/api.git", "github.com/acme/api"},
		{"git@github.com:acme/api", "github.com/acme/api"},
	} {
		got, err := repoURI(c.remote)
		if err != nil || got != c.want {
			t.Errorf("repoURI(%q) = %q, %v; want %q", c.remote, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "/srv/git/api.git", "../api", "github.com:acme/api", "https://github.com/"} {
		if got, err := repoURI(bad); err == nil {
			t.Errorf("repoURI(%q) = %q, want an error", bad, got)
		}
	}
}

// TestResolveRepo reads the origin from .git/config, and asks git where
// there is no .git directory (a worktree); both must agree with git.
func TestResolveRepo(t *testing.T) {
	ctx := context.Background()
	for _, origin := range []string{"https://github.com/acme/api.git", "git@github.com:acme/api.git", "ssh://git@github.com/acme/api.git"} {
		dir := gitRepo(t, origin)
		r, err := resolveRepo(ctx, filepath.Join(dir, "src", "billing"))
		if err != nil || r.root != dir || r.uri != "github.com/acme/api" {
			t.Errorf("%s: got %+v, %v; want root %s, github.com/acme/api", origin, r, err, dir)
		}
	}

	dir := gitRepo(t, "https://github.com/acme/api.git")
	git(t, dir, "add", ".")
	git(t, dir, "commit", "-q", "-m", "init")
	wt := filepath.Join(t.TempDir(), "wt")
	git(t, dir, "worktree", "add", "-q", wt)
	wt, _ = filepath.EvalSymlinks(wt)
	if _, ok := readRepo(wt); ok {
		t.Fatal("a worktree's .git file was read as a repository")
	}
	r, err := resolveRepo(ctx, wt)
	if err != nil || r.root != wt || r.uri != "github.com/acme/api" {
		t.Errorf("worktree: got %+v, %v; want root %s", r, err, wt)
	}

	if _, err := resolveRepo(ctx, gitRepo(t, "")); err == nil || !strings.Contains(err.Error(), "no origin remote") {
		t.Errorf("no origin: %v", err)
	}
	if _, err := resolveRepo(ctx, t.TempDir()); err == nil {
		t.Error("a directory outside any repository resolved")
	}
}

func TestFileResource(t *testing.T) {
	dir := gitRepo(t, "https://github.com/acme/api.git")
	repo := repoInfo{root: dir, uri: "github.com/acme/api"}
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "src", "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "src", "billing"), filepath.Join(dir, "billing-link")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, cwd, path, want string }{
		{"absolute", dir, dir + "/src/billing/total.go", "file:github.com/acme/api/src/billing/total.go"},
		{"relative to cwd", dir + "/src", "billing/total.go", "file:github.com/acme/api/src/billing/total.go"},
		{"new file in a new directory", dir, dir + "/src/new/a/b.go", "file:github.com/acme/api/src/new/a/b.go"},
		{"dotdot that stays inside", dir, dir + "/src/billing/../billing/total.go", "file:github.com/acme/api/src/billing/total.go"},
		{"symlink that stays inside", dir, dir + "/billing-link/total.go", "file:github.com/acme/api/src/billing/total.go"},
		{"the root", dir, dir, "file:github.com/acme/api"},
	} {
		got, err := fileResource(repo, c.cwd, c.path)
		if err != nil || got != c.want {
			t.Errorf("%s: got %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	for _, c := range []struct{ name, path string }{
		{"dotdot", dir + "/src/../../etc/passwd"},
		{"relative dotdot", "../../../etc/passwd"},
		{"symlink out", dir + "/src/link/secret.txt"},
		{"symlink out, new file", dir + "/src/link/new/secret.txt"},
		{"another directory", outside + "/x"},
		{"empty", ""},
	} {
		if got, err := fileResource(repo, dir+"/src", c.path); err == nil {
			t.Errorf("%s: got %q, want a refusal", c.name, got)
		}
	}
}

// TestMapFixtures maps each recorded hook payload in test/testdata/hooks.
func TestMapFixtures(t *testing.T) {
	dir := gitRepo(t, "git@github.com:acme/api.git")
	repo := repoInfo{root: dir, uri: "github.com/acme/api"}
	f := "file:github.com/acme/api/src/billing/total.go"
	for _, c := range []struct {
		agent, fixture, kind, command string
		uses                          []use
	}{
		{"claude-code", "claude-code-edit.json", "edit", "", []use{{f, "write"}}},
		{"claude-code", "claude-code-post-edit.json", "edit", "", []use{{f, "write"}}},
		{"claude-code", "claude-code-write-env.json", "edit", "", []use{{"file:github.com/acme/api/.env", "write"}}},
		{"claude-code", "claude-code-bash.json", "exec", "go test ./...", []use{{"cmd:go test ./...", "exec"}}},
		{"claude-code", "claude-code-webfetch.json", "call", "", []use{{"net:pkg.go.dev", "call"}}},
		{"claude-code", "claude-code-mcp.json", "call", "", []use{{"mcp:github/get_issue", "call"}}},
		{"gemini", "gemini-read-file.json", "read", "", []use{{f, "read"}}},
		{"gemini", "gemini-replace.json", "edit", "", []use{{f, "write"}}},
		{"gemini", "gemini-web-fetch.json", "call", "", []use{{"net:pkg.go.dev", "call"}}},
		{"gemini", "gemini-after-shell.json", "exec", "go test ./...", []use{{"cmd:go test ./...", "exec"}}},
		{"codex", "codex-shell.json", "exec", "go test ./...", []use{{"cmd:go test ./...", "exec"}}},
		{"codex", "codex-shell-legacy.json", "exec", "go test ./...", []use{{"cmd:go test ./...", "exec"}}},
		{"codex", "codex-post-bash.json", "exec", "go test ./...", []use{{"cmd:go test ./...", "exec"}}},
		{"codex", "codex-apply-patch.json", "edit", "", []use{{f, "write"}}},
		{"codex", "codex-mcp.json", "call", "", []use{{"mcp:github/get_issue", "call"}}},
	} {
		t.Run(c.fixture, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("..", "..", "test", "testdata", "hooks", c.fixture))
			if err != nil {
				t.Fatal(err)
			}
			var in hookInput
			if err := json.Unmarshal([]byte(strings.ReplaceAll(string(raw), "CWD", dir)), &in); err != nil {
				t.Fatal(err)
			}
			kind, uses, command, err := Dialects[c.agent].mapToolCall(in, repo)
			if err != nil || kind != c.kind || command != c.command || !reflect.DeepEqual(uses, c.uses) {
				t.Errorf("got %q %v %q, %v; want %q %v %q", kind, uses, command, err, c.kind, c.uses, c.command)
			}
		})
	}
}

func TestMapToolCalls(t *testing.T) {
	dir := gitRepo(t, "https://github.com/acme/api.git")
	repo := repoInfo{root: dir, uri: "github.com/acme/api"}
	call := func(agent, tool, input string) ([]use, error) {
		_, uses, _, err := Dialects[agent].mapToolCall(hookInput{Cwd: dir, ToolName: tool, ToolInput: json.RawMessage(input)}, repo)
		return uses, err
	}
	for _, c := range []struct {
		name, agent, tool, input string
		want                     []use
	}{
		{"MultiEdit", "claude-code", "MultiEdit", `{"file_path":"src/a.go","edits":[]}`, []use{{"file:github.com/acme/api/src/a.go", "write"}}},
		{"NotebookEdit", "claude-code", "NotebookEdit", `{"notebook_path":"` + dir + `/nb.ipynb","new_source":"x"}`, []use{{"file:github.com/acme/api/nb.ipynb", "write"}}},
		{"Read", "claude-code", "Read", `{"file_path":"` + dir + `/go.mod"}`, []use{{"file:github.com/acme/api/go.mod", "read"}}},
		{"gemini write_file", "gemini", "write_file", `{"file_path":"` + dir + `/src/b.go","content":"x"}`, []use{{"file:github.com/acme/api/src/b.go", "write"}}},
		{"gemini read_file, older absolute_path", "gemini", "read_file", `{"absolute_path":"` + dir + `/go.mod"}`, []use{{"file:github.com/acme/api/go.mod", "read"}}},
		{"gemini web_fetch, two hosts", "gemini", "web_fetch", `{"prompt":"Compare https://a.example/x, https://b.example:8443/y and https://a.example/z."}`, []use{{"net:a.example", "call"}, {"net:b.example", "call"}}},
		{"gemini mcp", "gemini", "mcp__jira__create_issue", `{}`, []use{{"mcp:jira/create_issue", "call"}}},
		{"codex patch adds, deletes and moves", "codex", "apply_patch", `{"command":"*** Begin Patch\n*** Add File: src/new.go\n+package src\n*** Delete File: src/old.go\n*** Update File: src/a.go\n*** Move to: src/b.go\n@@\n-x\n+y\n*** End Patch"}`,
			[]use{{"file:github.com/acme/api/src/new.go", "write"}, {"file:github.com/acme/api/src/old.go", "delete"}, {"file:github.com/acme/api/src/a.go", "write"}, {"file:github.com/acme/api/src/b.go", "write"}}},
		// A shell's -c script is the command line; any other argv is
		// recorded whole, each word quoted as a shell would need it.
		{"codex argv through bash -lc", "codex", "shell", `{"command":["bash","-lc","go test ./..."]}`, []use{{"cmd:go test ./...", "exec"}}},
		{"codex argv through /bin/sh -c", "codex", "shell", `{"command":["/bin/sh","-c","make lint"]}`, []use{{"cmd:make lint", "exec"}}},
		{"codex argv of another program's -c", "codex", "shell", `{"command":["python3","-c","import os; os.remove('x')"]}`, []use{{`cmd:python3 -c "import os; os.remove('x')"`, "exec"}}},
		{"codex argv with spaces", "codex", "shell", `{"command":["rm","-rf","a b"]}`, []use{{"cmd:rm -rf 'a b'", "exec"}}},
		{"codex argv of four words", "codex", "shell", `{"command":["bash","-c","ls","extra"]}`, []use{{"cmd:bash -c ls extra", "exec"}}},
		{"codex exec_command cmd", "codex", "exec_command", `{"cmd":"go vet ./..."}`, []use{{"cmd:go vet ./...", "exec"}}},
		{"codex argv through /usr/bin/bash", "codex", "shell", `{"command":["/usr/bin/bash","-c","make"]}`, []use{{"cmd:make", "exec"}}},
		{"codex argv through a program named bash elsewhere", "codex", "shell", `{"command":["/tmp/evil/bash","-c","go test ./..."]}`, []use{{"cmd:/tmp/evil/bash -c 'go test ./...'", "exec"}}},
		{"codex argv through ./bash", "codex", "shell", `{"command":["./bash","-lc","ls"]}`, []use{{"cmd:./bash -lc ls", "exec"}}},
		{"codex exec_command through a system shell", "codex", "exec_command", `{"cmd":"ls","shell":"/bin/zsh"}`, []use{{"cmd:ls", "exec"}}},
		{"codex exec_command through another shell", "codex", "exec_command", `{"cmd":"ls","shell":"/opt/x/zsh"}`, []use{{"cmd:/opt/x/zsh -c ls", "exec"}}},
	} {
		got, err := call(c.agent, c.tool, c.input)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %v, %v; want %v", c.name, got, err, c.want)
		}
	}
	for _, c := range []struct{ name, agent, tool, input string }{
		{"unknown tool", "claude-code", "Teleport", `{}`},
		{"Bash without a command", "claude-code", "Bash", `{}`},
		{"WebFetch without a host", "claude-code", "WebFetch", `{"url":"not a url"}`},
		{"web_fetch without a URL", "gemini", "web_fetch", `{"prompt":"summarize the docs"}`},
		{"patch escaping the repository", "codex", "apply_patch", `{"command":"*** Begin Patch\n*** Add File: ../../etc/cron.d/x\n+x\n*** End Patch"}`},
		{"patch naming no file", "codex", "apply_patch", `{"command":"*** Begin Patch\n*** End Patch"}`},
		{"half an MCP name", "codex", "mcp__github", `{}`},
		{"argv with a number", "codex", "shell", `{"command":["sleep",5]}`},
		{"exec_command naming two commands", "codex", "exec_command", `{"cmd":"rm -rf ~","command":"ls"}`},
		{"exec_command naming two commands, one an argv", "codex", "exec_command", `{"cmd":"rm -rf ~","command":["ls"]}`},
		{"command of another type", "codex", "Bash", `{"command":{"x":1}}`},
		{"argv with a NUL", "codex", "shell", `{"command":["rm","a\u0000b"]}`},
	} {
		if got, err := call(c.agent, c.tool, c.input); err == nil {
			t.Errorf("%s: got %v, want a refusal", c.name, got)
		}
	}
}

func TestAnswers(t *testing.T) {
	js := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	for _, c := range []struct {
		agent string
		allow bool
		want  string
	}{
		{"claude-code", true, `{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"allow","permissionDecisionReason":"r"}}`},
		{"claude-code", false, `{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"deny","permissionDecisionReason":"r"}}`},
		{"codex", true, `{}`},
		{"codex", false, `{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"deny","permissionDecisionReason":"r"}}`},
		{"gemini", true, `{"decision":"allow","reason":"r"}`},
		{"gemini", false, `{"decision":"deny","reason":"r"}`},
	} {
		if got := js(Dialects[c.agent].answer(c.allow, "r")); got != c.want {
			t.Errorf("%s allow=%v: got %s, want %s", c.agent, c.allow, got, c.want)
		}
	}
}

// TestRunHookFailsClosed covers what is decided before the server is
// asked, and a server that cannot be reached; test/hook_test.go runs the
// rest against the real server binary.
func TestRunHookFailsClosed(t *testing.T) {
	dir := gitRepo(t, "https://github.com/acme/api.git")
	edit := `{"cwd":"` + dir + `","hook_event_name":"PreToolUse","tool_name":"Edit","tool_input":{"file_path":"` + dir + `/src/billing/total.go"}}`
	down := HookConfig{URL: "http://127.0.0.1:1", Credential: "dkt_sess_x", Timeout: time.Second}
	for _, c := range []struct {
		name, agent, input string
		cfg                HookConfig
		want               string
	}{
		{"malformed", "claude-code", `{"tool_name":`, down, "not a tool call"},
		{"no tool", "gemini", `{"hook_event_name":"BeforeTool"}`, down, "not a tool call"},
		{"no credential", "codex", edit, HookConfig{URL: "http://127.0.0.1:1", CredentialFile: filepath.Join(dir, "none"), Timeout: time.Second}, "no session credential"},
		{"empty credential file", "claude-code", edit, HookConfig{URL: "http://127.0.0.1:1", CredentialFile: os.DevNull, Timeout: time.Second}, "no session credential"},
		{"server down", "claude-code", edit, down, "could not be asked"},
		{"escape", "gemini", `{"cwd":"` + dir + `","hook_event_name":"BeforeTool","tool_name":"write_file","tool_input":{"file_path":"` + dir + `/../x"}}`, down, "outside the repository"},
		{"server says out of scope", "claude-code", edit, answering(t, `{"data":{"recordAction":{"inScope":false,"verdicts":[{"reason":"no rule matches file:x"}]}}}`), "out of the approved scope: no rule matches file:x"},
		{"server refuses", "gemini", `{"cwd":"` + dir + `","hook_event_name":"BeforeTool","tool_name":"read_file","tool_input":{"file_path":"go.mod"}}`,
			answering(t, `{"errors":[{"message":"session credential is revoked","extensions":{"code":"UNAUTHENTICATED"}}]}`), "the server refused: session credential is revoked (UNAUTHENTICATED)"},
		{"server answers nonsense", "codex", edit, answering(t, `<html>`), "could not be asked"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ans, _ := json.Marshal(RunHook(context.Background(), Dialects[c.agent], c.cfg, strings.NewReader(c.input)))
			if !strings.Contains(string(ans), `"deny"`) || !strings.Contains(string(ans), c.want) {
				t.Errorf("got %s, want deny with %q", ans, c.want)
			}
		})
	}
}

// answering is a GraphQL endpoint on 127.0.0.1 that gives every request
// the same answer: it stands in for answers the real server should never
// give, to show the hook denies on them too.
func answering(t *testing.T, body string) HookConfig {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return HookConfig{URL: srv.URL, Credential: "dkt_sess_x", Timeout: time.Second}
}

// Session start writes the credential where the hooks read it, from any
// folder of the repository: past an empty or broken .git on the way up (as
// git passes them over), in a worktree, and outside any repository.
func TestCredentialPath(t *testing.T) {
	ctx := context.Background()
	repo := gitRepo(t, "https://github.com/acme/api.git")
	sub := filepath.Join(repo, "src", "billing")
	fixture := filepath.Join(repo, "testdata", "fixture")
	vendored := filepath.Join(repo, "vendor", "x")
	for _, d := range []string{sub, filepath.Join(fixture, ".git"), vendored} {
		os.MkdirAll(d, 0o755)
	}
	os.Symlink("/nonexistent", filepath.Join(vendored, ".git"))
	os.WriteFile(filepath.Join(repo, "README"), []byte("x\n"), 0o644)
	git(t, repo, "add", "README")
	git(t, repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "x")
	wt := filepath.Join(t.TempDir(), "wt")
	git(t, repo, "worktree", "add", "-q", wt)
	wt, _ = filepath.EvalSymlinks(wt)
	outside, _ := filepath.EvalSymlinks(t.TempDir())
	cred := filepath.Join(".docket", "credential")
	for _, c := range []struct{ dir, want string }{
		{repo, filepath.Join(repo, cred)},
		{sub, filepath.Join(repo, cred)},
		{fixture, filepath.Join(repo, cred)},
		{vendored, filepath.Join(repo, cred)},
		{wt, filepath.Join(wt, cred)},
	} {
		if got := CredentialPath(ctx, c.dir, cred); got != c.want {
			t.Errorf("CredentialPath(%s) = %s, want %s", c.dir, got, c.want)
		}
		// The hook reads the credential under the root it resolves.
		r, err := resolveRepo(ctx, c.dir)
		if err != nil || credentialIn(r.root, cred) != c.want {
			t.Errorf("the hook in %s reads %s (%v), session start writes %s", c.dir, credentialIn(r.root, cred), err, c.want)
		}
	}
	if got := CredentialPath(ctx, outside, cred); got != filepath.Join(outside, cred) {
		t.Errorf("outside a repository: %s", got)
	}
	if got := CredentialPath(ctx, sub, "/run/secrets/cred"); got != "/run/secrets/cred" {
		t.Errorf("an absolute path moved: %s", got)
	}
}
