package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"mvdan.cc/sh/v3/syntax"
)

// hookSettings is where each agent reads its hooks in a repository, and
// the events Docket hooks into. All three use the same shape:
// {"hooks": {EVENT: [{"matcher": "*", "hooks": [{"type": "command", "command": …}]}]}}.
var hookSettings = map[string]struct {
	file        string
	pre, post   string
	commandName string
}{
	"claude-code": {filepath.Join(".claude", "settings.json"), "PreToolUse", "PostToolUse", "claude-code"},
	"gemini":      {filepath.Join(".gemini", "settings.json"), "BeforeTool", "AfterTool", "gemini"},
	"codex":       {filepath.Join(".codex", "hooks.json"), "PreToolUse", "PostToolUse", "codex"},
}

func newHookInstallCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "install claude-code|gemini|codex [--dry-run]",
		Short: "Merge Docket's hooks into the agent's settings in this repository, keeping what is there",
		Args:  cobra.ExactArgs(1),
	}
	dry := c.Flags().Bool("dry-run", false, "print the change as a diff and write nothing")
	dir := c.Flags().String("repo", ".", "the repository")
	bin := c.Flags().String("command", "docket-hook", "the hook program the agent runs, written into the settings by its absolute path: docket-hook (starts in milliseconds) or docket")
	c.RunE = func(c *cobra.Command, args []string) error {
		hs, ok := hookSettings[args[0]]
		if !ok {
			return usageErr("unknown agent %q: claude-code, gemini or codex", args[0])
		}
		path := filepath.Join(*dir, hs.file)
		before, err := os.ReadFile(path)
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		prog, err := hookProgram(*bin)
		if err != nil {
			return err
		}
		command := prog + " " + hs.commandName
		if filepath.Base(*bin) == "docket" {
			command = prog + " hook " + hs.commandName
		}
		after, notes, err := mergeHooks(before, hs.pre, hs.post, command)
		if err != nil {
			return usageErr("%s: %v", path, err)
		}
		for _, n := range notes {
			fmt.Fprintf(c.ErrOrStderr(), "%s: %s\n", path, n)
		}
		if bytes.Equal(before, after) {
			fmt.Fprintf(c.OutOrStdout(), "%s already has Docket's hooks\n", path)
			return nil
		}
		if *dry {
			fmt.Fprint(c.OutOrStdout(), lineDiff(path, string(before), string(after)))
			return nil
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, after, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(c.OutOrStdout(), "hooks installed in %s\n", path)
		return nil
	}
	return c
}

// hookProgram is the absolute path of the hook program, written shell-quoted
// into the settings: an agent runs hooks with its own PATH, where a bare
// name may be missing (every call would then fail) or name another
// program. A name is looked up on PATH, then beside this docket binary
// (make build puts both in bin/).
func hookProgram(name string) (string, error) {
	path := name
	if !strings.ContainsRune(name, filepath.Separator) {
		found, err := exec.LookPath(name)
		if err != nil {
			if self, serr := os.Executable(); serr == nil {
				if st, serr := os.Stat(filepath.Join(filepath.Dir(self), name)); serr == nil && !st.IsDir() {
					found, err = filepath.Join(filepath.Dir(self), name), nil
				}
			}
		}
		if err != nil {
			return "", usageErr("%s is neither on PATH nor beside %s: build it (make build puts it in bin/) or name it with --command /path/to/%s", name, os.Args[0], name)
		}
		path = found
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if st, err := os.Stat(abs); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return "", usageErr("%s is not an executable program", abs)
	}
	return syntax.Quote(abs, syntax.LangPOSIX)
}

// mergeHooks adds a command hook for pre and post events to a settings
// document, keeping every other key and hook where it was; it changes
// nothing when a hook for all tools already runs the command.
func mergeHooks(doc []byte, pre, post, command string) (out []byte, notes []string, err error) {
	var settings jsonObject
	if len(bytes.TrimSpace(doc)) > 0 {
		if err := json.Unmarshal(doc, &settings); err != nil {
			return nil, nil, fmt.Errorf("not a JSON object: %v", err)
		}
	}
	var hooks jsonObject
	if raw, ok := settings.get("hooks"); ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &hooks); err != nil {
			return nil, nil, fmt.Errorf(`"hooks": %v`, err)
		}
	}
	changed := false
	for _, event := range []string{pre, post} {
		var list []json.RawMessage
		if raw, ok := hooks.get(event); ok && string(raw) != "null" {
			if err := json.Unmarshal(raw, &list); err != nil {
				return nil, nil, fmt.Errorf(`"hooks.%s" is not a list`, event)
			}
		}
		if has, other := hasCommand(list, command); has {
			if other != "" {
				notes = append(notes, fmt.Sprintf("%s already runs Docket's hook as %q; left as it is", event, other))
			}
			continue
		}
		entry, err := marshal(hookEntry{Matcher: "*", Hooks: []commandHook{{Type: "command", Command: command}}})
		if err != nil {
			return nil, nil, err
		}
		list = append(list, entry)
		raw, err := marshal(list)
		if err != nil {
			return nil, nil, err
		}
		hooks.set(event, raw)
		changed = true
	}
	if !changed {
		return doc, notes, nil
	}
	raw, err := marshal(hooks)
	if err != nil {
		return nil, nil, err
	}
	settings.set("hooks", raw)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indentOf(doc))
	if err := enc.Encode(settings); err != nil {
		return nil, nil, err
	}
	out = buf.Bytes()
	if bytes.Contains(doc, []byte("\r\n")) {
		out = bytes.ReplaceAll(out, []byte("\n"), []byte("\r\n"))
	}
	return out, notes, nil
}

// hookEntry is one entry of an event's hook list, in the agents' shape.
type hookEntry struct {
	Matcher string        `json:"matcher"`
	Hooks   []commandHook `json:"hooks"`
}

type commandHook struct {
	Type    string `json:"type"`
	Command string `json:"command"`
}

// hasCommand reports whether a hook list runs Docket's hook for every tool
// (a hook under a narrower matcher does not check the other tools' calls).
// A Docket hook for the same agent under another path counts (a second
// would record every call twice); it is returned as other.
func hasCommand(list []json.RawMessage, command string) (has bool, other string) {
	for _, raw := range list {
		var entry hookEntry
		if json.Unmarshal(raw, &entry) != nil || (entry.Matcher != "*" && entry.Matcher != "" && entry.Matcher != ".*") {
			continue
		}
		for _, h := range entry.Hooks {
			if h.Type != "command" {
				continue
			}
			if h.Command == command {
				return true, ""
			}
			if sameDocketHook(h.Command, command) {
				has, other = true, h.Command
			}
		}
	}
	return has, other
}

// sameDocketHook reports whether two hook commands both run Docket's hook
// for the same agent (docket-hook AGENT or docket hook AGENT), whatever the
// program's path.
func sameDocketHook(a, b string) bool {
	key := func(cmd string) string {
		w := strings.Fields(cmd)
		if len(w) == 0 {
			return ""
		}
		prog := filepath.Base(strings.Trim(w[0], `'"`))
		switch {
		case prog == "docket-hook" && len(w) == 2:
			return w[1]
		case prog == "docket" && len(w) == 3 && w[1] == "hook":
			return w[2]
		}
		return ""
	}
	ka := key(a)
	return ka != "" && ka == key(b)
}

// indentOf is the indentation a settings file uses (its first indented
// line's leading white space), two spaces for a new file.
func indentOf(doc []byte) string {
	for _, line := range bytes.Split(doc, []byte("\n"))[1:] {
		trimmed := bytes.TrimLeft(line, " \t")
		if len(trimmed) > 0 && len(trimmed) < len(line) {
			return string(line[:len(line)-len(trimmed)])
		}
	}
	return "  "
}

// marshal is json.Marshal without HTML escaping: settings files are read
// by people, and "&&" in a command should stay "&&".
func marshal(v any) (json.RawMessage, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// jsonObject is a JSON object that keeps its members in their order, so
// merging into a settings file moves nothing that was there.
// (encoding/json decodes objects into maps, which forget the order.)
type jsonObject []jsonMember

type jsonMember struct {
	key   string
	value json.RawMessage
}

func (o jsonObject) get(key string) (json.RawMessage, bool) {
	for _, m := range o {
		if m.key == key {
			return m.value, true
		}
	}
	return nil, false
}

func (o *jsonObject) set(key string, value json.RawMessage) {
	for i, m := range *o {
		if m.key == key {
			(*o)[i].value = value
			return
		}
	}
	*o = append(*o, jsonMember{key, value})
}

func (o *jsonObject) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return fmt.Errorf("not an object")
	}
	*o = (*o)[:0]
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		// Agents keep the last of repeated keys, this merge the first:
		// rather than guess, refuse.
		if _, dup := o.get(t.(string)); dup {
			return fmt.Errorf("the key %q appears twice", t)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return err
		}
		*o = append(*o, jsonMember{t.(string), v})
	}
	_, err := dec.Token()
	return err
}

func (o jsonObject) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, m := range o {
		if i > 0 {
			b = append(b, ',')
		}
		k, err := marshal(m.key)
		if err != nil {
			return nil, err
		}
		b = append(append(append(b, k...), ':'), m.value...)
	}
	return append(b, '}'), nil
}

// lineDiff is a unified-style diff of two small texts (longest common
// subsequence of lines), enough to review a settings change.
func lineDiff(name, a, b string) string {
	x, y := splitLines(a), splitLines(b)
	n, m := len(x), len(y)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", name, name)
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && x[i] == y[j]:
			sb.WriteString(" " + x[i] + "\n")
			i, j = i+1, j+1
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			sb.WriteString("+" + y[j] + "\n")
			j++
		default:
			sb.WriteString("-" + x[i] + "\n")
			i++
		}
	}
	return sb.String()
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}
