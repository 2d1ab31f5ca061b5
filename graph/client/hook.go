package client

// The hooks put Docket in front of an agent's tool calls: each call is
// mapped to resources and verbs, recorded under the session credential
// BEFORE it runs, and allowed only when the server finds it in scope. They
// fail closed: whatever goes wrong (no credential, server down or slow,
// input that does not parse, a path outside the repository) the answer is
// deny, written as the agent expects it, with exit status 0 — an agent such
// as Claude Code treats a failing hook as non-blocking. This code runs in
// both `docket hook …` and the small `docket-hook` binary, which starts in
// a few milliseconds: a hook runs before every tool call.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"mvdan.cc/sh/v3/syntax"
)

// hookInput is the JSON an agent writes on stdin. Claude Code and Codex
// (PreToolUse/PostToolUse) and Gemini CLI (BeforeTool/AfterTool) share
// these fields.
type hookInput struct {
	SessionID      string          `json:"session_id"`
	TranscriptPath string          `json:"transcript_path"`
	Cwd            string          `json:"cwd"`
	HookEventName  string          `json:"hook_event_name"`
	ToolName       string          `json:"tool_name"`
	ToolInput      json.RawMessage `json:"tool_input"`
	ToolUseID      string          `json:"tool_use_id"`
	ToolResponse   json.RawMessage `json:"tool_response"`
}

// use is one resource and verb a tool call touches.
type use struct {
	Resource string `json:"resource"`
	Verb     string `json:"verb"`
}

// HookDialect is how one agent names its events and wants its answer.
type HookDialect struct {
	Name        string
	pre, post   string
	answer      func(allow bool, reason string) any
	mapToolCall func(in hookInput, repo repoInfo) (kind string, uses []use, command string, err error)
}

// Dialects are the agents the hooks speak to, by name.
var Dialects = map[string]HookDialect{
	"claude-code": {Name: "claude-code", pre: "PreToolUse", post: "PostToolUse", answer: preToolUseAnswer, mapToolCall: mapClaudeCode},
	"codex":       {Name: "codex", pre: "PreToolUse", post: "PostToolUse", answer: codexAnswer, mapToolCall: mapCodex},
	"gemini":      {Name: "gemini", pre: "BeforeTool", post: "AfterTool", answer: geminiAnswer, mapToolCall: mapGemini},
}

// preToolUseAnswer is Claude Code's PreToolUse decision
// (https://code.claude.com/docs/en/hooks#pretooluse-decision-control).
func preToolUseAnswer(allow bool, reason string) any {
	d := "deny"
	if allow {
		d = "allow"
	}
	return map[string]any{"hookSpecificOutput": map[string]any{
		"hookEventName": "PreToolUse", "permissionDecision": d, "permissionDecisionReason": reason}}
}

// codexAnswer is Codex's PreToolUse decision
// (https://developers.openai.com/codex/hooks#pretooluse): a deny is
// hookSpecificOutput.permissionDecision "deny" with its reason, as for
// Claude Code. Codex accepts "allow" only together with a rewritten
// updatedInput, so an allowed call gets an empty answer, which lets it run.
func codexAnswer(allow bool, reason string) any {
	if allow {
		return map[string]any{}
	}
	return preToolUseAnswer(false, reason)
}

// geminiAnswer is Gemini CLI's BeforeTool decision
// (https://geminicli.com/docs/hooks/reference#beforetool): decision
// "allow" or "deny", and the reason, which a deny sends to the model.
func geminiAnswer(allow bool, reason string) any {
	d := "deny"
	if allow {
		d = "allow"
	}
	return map[string]any{"decision": d, "reason": reason}
}

// repoInfo is the git repository a tool call runs in.
type repoInfo struct {
	root string // absolute, symlinks resolved
	uri  string // github.com/acme/api
}

// resolveRepo finds the repository of dir and its URI from the origin
// remote (https, ssh and scp-like forms). It reads .git/config itself when
// it can (no git process on every tool call) and asks git otherwise
// (worktrees, submodules).
func resolveRepo(ctx context.Context, dir string) (repoInfo, error) {
	if r, ok := readRepo(dir); ok {
		return r, nil
	}
	root, err := RepoRoot(ctx, dir)
	if err != nil {
		return repoInfo{}, err
	}
	remote, err := exec.CommandContext(ctx, "git", "-C", dir, "remote", "get-url", "origin").Output()
	if err != nil {
		return repoInfo{}, fmt.Errorf("the repository at %s has no origin remote to name it", root)
	}
	uri, err := repoURI(strings.TrimSpace(string(remote)))
	if err != nil {
		return repoInfo{}, err
	}
	return repoInfo{root: root, uri: uri}, nil
}

// repoURI turns a git remote into host/path: https://github.com/acme/api.git,
// ssh://git@github.com/acme/api.git and git@github.com:acme/api.git all
// give github.com/acme/api.
func repoURI(remote string) (string, error) {
	var host, path string
	if u, err := url.Parse(remote); err == nil && u.Host != "" {
		host, path = u.Hostname(), u.Path
	} else if at, rest, ok := strings.Cut(remote, "@"); ok && !strings.Contains(at, "/") {
		host, path, ok = strings.Cut(rest, ":")
		if !ok {
			return "", fmt.Errorf("remote %q: not a git URL", remote)
		}
	} else {
		return "", fmt.Errorf("remote %q: not a git URL", remote)
	}
	path = strings.TrimSuffix(strings.Trim(path, "/"), ".git")
	if host == "" || path == "" {
		return "", fmt.Errorf("remote %q: not a git URL", remote)
	}
	return host + "/" + path, nil
}

// fileResource maps a path the agent gave to file:<repo>/<path>, refusing
// one that leaves the repository, through .. or a symlink.
func fileResource(repo repoInfo, cwd, p string) (string, error) {
	if p == "" {
		return "", errors.New("the tool call names no file")
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(cwd, p)
	}
	p = filepath.Clean(p)
	// Resolve symlinks on the longest part of the path that exists (a
	// file being created does not exist yet).
	existing, rest := p, ""
	for {
		if _, err := os.Lstat(existing); err == nil {
			break
		}
		parent := filepath.Dir(existing)
		if parent == existing {
			break
		}
		rest = filepath.Join(filepath.Base(existing), rest)
		existing = parent
	}
	resolved, err := filepath.EvalSymlinks(existing)
	if err != nil {
		return "", err
	}
	resolved = filepath.Join(resolved, rest)
	rel, err := filepath.Rel(repo.root, resolved)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%s is outside the repository %s", p, repo.root)
	}
	if rel == "." {
		return "file:" + repo.uri, nil
	}
	return "file:" + repo.uri + "/" + filepath.ToSlash(rel), nil
}

func field(raw json.RawMessage, names ...string) string {
	var m map[string]any
	json.Unmarshal(raw, &m)
	for _, n := range names {
		if s, ok := m[n].(string); ok && s != "" {
			return s
		}
	}
	return ""
}

func netResource(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("cannot read a host from %q", raw)
	}
	return "net:" + u.Hostname(), nil
}

// mcpResource maps mcp__server__tool to mcp:server/tool.
func mcpResource(tool string) (string, bool) {
	rest, ok := strings.CutPrefix(tool, "mcp__")
	if !ok {
		return "", false
	}
	server, name, ok := strings.Cut(rest, "__")
	if !ok || server == "" || name == "" {
		return "", false
	}
	return "mcp:" + server + "/" + name, true
}

// mapClaudeCode maps Claude Code's tools; their inputs are listed in
// https://code.claude.com/docs/en/hooks#pretooluse-input.
func mapClaudeCode(in hookInput, repo repoInfo) (string, []use, string, error) {
	switch in.ToolName {
	case "Edit", "Write", "MultiEdit", "NotebookEdit":
		r, err := fileResource(repo, in.Cwd, field(in.ToolInput, "file_path", "notebook_path"))
		return "edit", []use{{r, "write"}}, "", err
	case "Read":
		r, err := fileResource(repo, in.Cwd, field(in.ToolInput, "file_path"))
		return "read", []use{{r, "read"}}, "", err
	case "Bash":
		cmd := field(in.ToolInput, "command")
		if cmd == "" {
			return "", nil, "", errors.New("Bash call without a command")
		}
		return "exec", []use{{"cmd:" + cmd, "exec"}}, cmd, nil
	case "WebFetch":
		r, err := netResource(field(in.ToolInput, "url"))
		return "call", []use{{r, "call"}}, "", err
	}
	if r, ok := mcpResource(in.ToolName); ok {
		return "call", []use{{r, "call"}}, "", nil
	}
	return "", nil, "", fmt.Errorf("tool %q has no mapping to resources; Docket denies what it cannot check", in.ToolName)
}

// mapGemini maps Gemini CLI's tools (https://geminicli.com/docs/tools):
// write_file and replace (file_path), read_file (file_path; absolute_path
// or path in older releases), run_shell_command (command), web_fetch (a
// prompt holding up to 20 URLs: each host is called), and MCP tools, named
// mcp__server__tool as in Claude Code.
func mapGemini(in hookInput, repo repoInfo) (string, []use, string, error) {
	switch in.ToolName {
	case "write_file", "replace":
		r, err := fileResource(repo, in.Cwd, field(in.ToolInput, "file_path", "absolute_path", "path"))
		return "edit", []use{{r, "write"}}, "", err
	case "read_file":
		r, err := fileResource(repo, in.Cwd, field(in.ToolInput, "absolute_path", "file_path", "path"))
		return "read", []use{{r, "read"}}, "", err
	case "run_shell_command":
		cmd := field(in.ToolInput, "command")
		if cmd == "" {
			return "", nil, "", errors.New("run_shell_command without a command")
		}
		return "exec", []use{{"cmd:" + cmd, "exec"}}, cmd, nil
	case "web_fetch":
		uses, err := promptHosts(field(in.ToolInput, "prompt", "url"))
		return "call", uses, "", err
	}
	if r, ok := mcpResource(in.ToolName); ok {
		return "call", []use{{r, "call"}}, "", nil
	}
	return "", nil, "", fmt.Errorf("tool %q has no mapping to resources; Docket denies what it cannot check", in.ToolName)
}

// urlPattern finds the http(s) URLs in a web_fetch prompt.
var urlPattern = regexp.MustCompile(`https?://[^\s"'<>()\[\]{}]+`)

// promptHosts maps every URL in a prompt to a net: call, once per host.
func promptHosts(prompt string) ([]use, error) {
	var uses []use
	seen := map[string]bool{}
	for _, u := range urlPattern.FindAllString(prompt, -1) {
		r, err := netResource(strings.TrimRight(u, ".,;:!?"))
		if err != nil {
			return nil, err
		}
		if !seen[r] {
			seen[r] = true
			uses = append(uses, use{r, "call"})
		}
	}
	if len(uses) == 0 {
		return nil, errors.New("web_fetch names no http(s) URL")
	}
	return uses, nil
}

// mapCodex maps Codex's tools as its hooks name them
// (https://developers.openai.com/codex/hooks#pretooluse): every shell-like
// tool arrives as Bash with tool_input.command, apply_patch carries the
// patch in tool_input.command (each file it adds, updates, deletes or moves
// to is a use), and MCP tools are mcp__server__tool with their arguments.
// The older internal shapes (shell or exec_command with an argv list,
// apply_patch with input) are read too.
func mapCodex(in hookInput, repo repoInfo) (string, []use, string, error) {
	switch in.ToolName {
	case "Bash", "shell", "exec_command":
		cmd, err := codexCommand(in.ToolName, in.ToolInput)
		if err != nil {
			return "", nil, "", err
		}
		return "exec", []use{{"cmd:" + cmd, "exec"}}, cmd, nil
	case "apply_patch":
		patch := field(in.ToolInput, "input", "patch", "command")
		var uses []use
		for _, line := range strings.Split(patch, "\n") {
			for _, prefix := range []string{"*** Add File: ", "*** Update File: ", "*** Delete File: ", "*** Move to: "} {
				if p, ok := strings.CutPrefix(line, prefix); ok {
					r, err := fileResource(repo, in.Cwd, strings.TrimSpace(p))
					if err != nil {
						return "", nil, "", err
					}
					verb := "write"
					if prefix == "*** Delete File: " {
						verb = "delete"
					}
					uses = append(uses, use{r, verb})
				}
			}
		}
		if len(uses) == 0 {
			return "", nil, "", errors.New("apply_patch names no file")
		}
		return "edit", uses, "", nil
	}
	return mapClaudeCode(in, repo)
}

// codexCommand is the command line a Codex shell call runs. Bash carries
// it in command; exec_command runs cmd, through shell when one is named;
// the older shell tool carries an argv in command. A call naming its
// command twice, differently, is refused: what runs must be what is
// recorded.
func codexCommand(tool string, raw json.RawMessage) (string, error) {
	var in struct {
		Command any    `json:"command"`
		Cmd     any    `json:"cmd"`
		Shell   string `json:"shell"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return "", fmt.Errorf("shell call input: %v", err)
	}
	line := func(v any) (string, error) {
		switch v := v.(type) {
		case string:
			return v, nil
		case []any:
			argv := make([]string, len(v))
			for i, p := range v {
				s, ok := p.(string)
				if !ok {
					return "", errors.New("shell call with an argument that is not a string")
				}
				argv[i] = s
			}
			return commandLine(argv)
		case nil:
			return "", nil
		}
		return "", errors.New("shell call whose command is neither a string nor a list")
	}
	cmd, err := line(in.Command)
	if err != nil {
		return "", err
	}
	if tool == "exec_command" {
		c, err := line(in.Cmd)
		if err != nil {
			return "", err
		}
		if cmd != "" && c != cmd {
			return "", fmt.Errorf("exec_command names two commands (cmd %q, command %q)", c, cmd)
		}
		cmd = c
		if in.Shell != "" && cmd != "" {
			if cmd, err = commandLine([]string{in.Shell, "-c", cmd}); err != nil {
				return "", err
			}
		}
	}
	if cmd == "" {
		return "", errors.New("shell call without a command")
	}
	return cmd, nil
}

// shells are the programs whose "-c SCRIPT" runs SCRIPT, by the names a
// PATH lookup or the system directories give them: an argv of
// ["bash", "-lc", "go test ./..."] is the command line "go test ./...",
// while ["./bash", "-c", …] runs whatever ./bash is and is recorded whole.
var shells = map[string]bool{"sh": true, "bash": true, "zsh": true, "dash": true, "ksh": true}

func isShell(prog string) bool {
	dir, name := filepath.Split(prog)
	return shells[name] && (dir == "" || dir == "/bin/" || dir == "/usr/bin/")
}

// commandLine is the command line an argv runs, as scope rules name it:
// a known shell's -c script as it stands, any other argv quoted for a
// POSIX shell, so ["rm", "-rf", "a b"] cannot pass for "rm -rf a b".
func commandLine(argv []string) (string, error) {
	if len(argv) == 3 && isShell(argv[0]) && (argv[1] == "-c" || argv[1] == "-lc") {
		return argv[2], nil
	}
	words := make([]string, len(argv))
	for i, a := range argv {
		q, err := syntax.Quote(a, syntax.LangPOSIX)
		if err != nil {
			return "", fmt.Errorf("argument %d of the command cannot be written as a shell word: %v", i, err)
		}
		words[i] = q
	}
	return strings.Join(words, " "), nil
}

// HookConfig is where the hook finds the server and the credential.
type HookConfig struct {
	URL string
	// Credential is the session credential; when empty it is read from
	// CredentialFile (relative paths are taken from the repository root).
	Credential     string
	CredentialFile string
	Timeout        time.Duration
}

// Deny is d's answer refusing a tool call, for a reason.
func Deny(d HookDialect, format string, args ...any) any {
	return d.answer(false, "Docket: "+fmt.Sprintf(format, args...))
}

// RunHook decides one tool call read from stdin and returns the answer to
// write. It never fails: every problem is a deny.
func RunHook(ctx context.Context, d HookDialect, cfg HookConfig, stdin io.Reader) any {
	timeout := cfg.Timeout
	deny := func(format string, args ...any) any { return Deny(d, format, args...) }
	raw, err := io.ReadAll(io.LimitReader(stdin, 4<<20))
	if err != nil {
		return deny("could not read the tool call: %v", err)
	}
	var in hookInput
	if err := json.Unmarshal(raw, &in); err != nil || in.ToolName == "" {
		return deny("the hook input is not a tool call (%v); denied, since it cannot be checked", errOr(err, "no tool_name"))
	}
	post := in.HookEventName == d.post
	if in.Cwd == "" {
		in.Cwd, _ = os.Getwd()
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	repo, err := resolveRepo(ctx, in.Cwd)
	if err != nil {
		return deny("%v", err)
	}
	// The credential file lives in the repository the agent works in.
	cred := cfg.Credential
	if cred == "" {
		b, err := os.ReadFile(credentialIn(repo.root, cfg.CredentialFile))
		cred = strings.TrimSpace(string(b))
		if err != nil || cred == "" {
			return deny("no session credential: start one with docket agent session start --change ID")
		}
	}
	cl := &Client{URL: cfg.URL, Token: cred, Timeout: timeout}
	kind, uses, command, err := d.mapToolCall(in, repo)
	if err != nil {
		return deny("%v", err)
	}
	var us []map[string]any
	for _, u := range uses {
		us = append(us, map[string]any{"resource": u.Resource, "verb": u.Verb})
	}
	outcome := ""
	if post {
		kind, outcome = kind+" done", string(in.ToolResponse)
		if len(outcome) > 2000 {
			outcome = outcome[:2000]
		}
		if outcome == "" {
			outcome = "completed"
		}
	}
	inScope, reasons, err := cl.RecordAction(ctx, kind, us, command, outcome)
	if post {
		// After the fact there is nothing to allow or deny; a failure to
		// record the outcome is reported on stderr for the agent's log.
		if err != nil {
			fmt.Fprintf(os.Stderr, "docket: outcome not recorded: %v\n", err)
		}
		return map[string]any{}
	}
	var ce *Error
	switch {
	case errors.As(err, &ce) && ce.Code == "OUT_OF_SCOPE":
		return deny("out of the approved scope: %s", ce.Message)
	case errors.As(err, &ce):
		return deny("the server refused: %s (%s)", ce.Message, ce.Code)
	case err != nil:
		return deny("the server could not be asked (%v); denied until it answers", err)
	case !inScope:
		return deny("out of the approved scope: %s", strings.Join(reasons, "; "))
	}
	return d.answer(true, "Docket: recorded, in scope: "+strings.Join(reasons, "; "))
}

func errOr(err error, s string) string {
	if err != nil {
		return err.Error()
	}
	return s
}

// RepoRoot is the top of the git working tree holding dir, as git finds
// it (symlinks resolved): the hooks and session start agree on it.
func RepoRoot(ctx context.Context, dir string) (string, error) {
	if root, ok := findRoot(dir); ok {
		return root, nil
	}
	top, err := exec.CommandContext(ctx, "git", "-C", dir, "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return "", fmt.Errorf("%s is not in a git repository", dir)
	}
	return filepath.EvalSymlinks(strings.TrimSpace(string(top)))
}

// findRoot walks up from dir to the nearest directory whose .git is a git
// directory, checked as git checks it (HEAD, objects, refs), so an empty
// or broken .git on the way is passed over as git passes it over. It
// reports false when it meets a .git file (worktrees, submodules) or no
// repository, and git must be asked.
func findRoot(dir string) (string, bool) {
	d, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", false
	}
	for {
		gd := filepath.Join(d, ".git")
		if st, err := os.Stat(gd); err == nil {
			if !st.IsDir() {
				return "", false
			}
			if isGitDir(gd) {
				return d, true
			}
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", false
		}
		d = parent
	}
}

func isGitDir(gd string) bool {
	for _, name := range []string{"HEAD", "objects", "refs"} {
		if _, err := os.Stat(filepath.Join(gd, name)); err != nil {
			return false
		}
	}
	return true
}

// CredentialPath is where the session credential file is for a command
// run in dir: file itself when absolute, else file under dir's repository
// root (dir itself outside a repository). Session start and the hooks
// agree on it wherever in the repository each runs.
func CredentialPath(ctx context.Context, dir, file string) string {
	root, err := RepoRoot(ctx, dir)
	if err != nil {
		root = dir
	}
	return credentialIn(root, file)
}

func credentialIn(root, file string) string {
	if filepath.IsAbs(file) {
		return file
	}
	return filepath.Join(root, file)
}

// readRepo finds the repository of dir without a git process: its root
// by findRoot and the origin remote from its config.
func readRepo(dir string) (repoInfo, bool) {
	root, ok := findRoot(dir)
	if !ok {
		return repoInfo{}, false
	}
	remote, ok := originURL(filepath.Join(root, ".git", "config"))
	if !ok {
		return repoInfo{}, false
	}
	uri, err := repoURI(remote)
	if err != nil {
		return repoInfo{}, false
	}
	return repoInfo{root: root, uri: uri}, true
}

// originURL reads [remote "origin"] url = … from a git config file.
func originURL(path string) (string, bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			in = line == `[remote "origin"]`
			continue
		}
		if k, v, ok := strings.Cut(line, "="); in && ok && strings.TrimSpace(k) == "url" {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// RecordActionQuery is the operation RecordAction sends, with the action as
// the variable in (a RecordActionInput).
const RecordActionQuery = `mutation($in: RecordActionInput!) { recordAction(input: $in) { inScope verdicts { reason } } }`

// RecordAction records an action under the client's session credential and
// returns whether the server found it in scope, with its verdicts' reasons.
func (c *Client) RecordAction(ctx context.Context, kind string, uses []map[string]any, command, outcome string) (bool, []string, error) {
	var out struct {
		RecordAction struct {
			InScope  bool `json:"inScope"`
			Verdicts []struct {
				Reason string `json:"reason"`
			} `json:"verdicts"`
		} `json:"recordAction"`
	}
	in := map[string]any{"kind": kind, "uses": uses}
	if command != "" {
		in["command"] = command
	}
	if outcome != "" {
		in["outcome"] = outcome
	}
	if err := c.Do(ctx, RecordActionQuery, map[string]any{"in": in}, &out); err != nil {
		return false, nil, err
	}
	var rs []string
	for _, v := range out.RecordAction.Verdicts {
		rs = append(rs, v.Reason)
	}
	return out.RecordAction.InScope, rs, nil
}
