package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
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
	bin := c.Flags().String("command", "docket-hook", "the hook program the agent runs: docket-hook (starts in milliseconds) or docket")
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
		command := *bin + " " + hs.commandName
		if filepath.Base(*bin) == "docket" {
			command = *bin + " hook " + hs.commandName
		}
		after, err := mergeHooks(before, hs.pre, hs.post, command)
		if err != nil {
			return usageErr("%s: %v", path, err)
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

// mergeHooks adds a command hook for pre and post events to a settings
// document, keeping every other key and hook; it changes nothing when the
// command is there already.
func mergeHooks(doc []byte, pre, post, command string) ([]byte, error) {
	settings := map[string]any{}
	if len(bytes.TrimSpace(doc)) > 0 {
		if err := json.Unmarshal(doc, &settings); err != nil {
			return nil, fmt.Errorf("not JSON: %v", err)
		}
	}
	hooks, _ := settings["hooks"].(map[string]any)
	if hooks == nil {
		if settings["hooks"] != nil {
			return nil, fmt.Errorf(`"hooks" is not an object`)
		}
		hooks = map[string]any{}
	}
	changed := false
	for _, event := range []string{pre, post} {
		list, _ := hooks[event].([]any)
		if hooks[event] != nil && list == nil {
			return nil, fmt.Errorf(`"hooks.%s" is not a list`, event)
		}
		if hasCommand(list, command) {
			continue
		}
		list = append(list, map[string]any{"matcher": "*", "hooks": []any{map[string]any{"type": "command", "command": command}}})
		hooks[event] = list
		changed = true
	}
	if !changed {
		return doc, nil
	}
	settings["hooks"] = hooks
	out, err := json.MarshalIndent(settings, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

func hasCommand(list []any, command string) bool {
	for _, m := range list {
		mm, _ := m.(map[string]any)
		hs, _ := mm["hooks"].([]any)
		for _, h := range hs {
			if hm, _ := h.(map[string]any); hm["command"] == command {
				return true
			}
		}
	}
	return false
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
