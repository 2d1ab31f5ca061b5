package main

import (
	"strings"
	"testing"
)

// A Docket hook under a narrower matcher checks only some tools' calls, so
// install still adds one for all tools; one for all tools is enough.
func TestMergeHooksMatcherScope(t *testing.T) {
	narrow := `{"hooks":{"PreToolUse":[{"matcher":"Bash","hooks":[{"type":"command","command":"/bin/docket-hook claude-code"}]}],` +
		`"PostToolUse":[{"matcher":"*","hooks":[{"type":"command","command":"/bin/docket-hook claude-code"}]}]}}`
	out, err := mergeHooks([]byte(narrow), "PreToolUse", "PostToolUse", "/bin/docket-hook claude-code")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(out), `"matcher": "*"`); n != 2 {
		t.Fatalf("want a catch-all PreToolUse hook added and PostToolUse's kept (2 catch-alls), got %d:\n%s", n, out)
	}
	again, _ := mergeHooks(out, "PreToolUse", "PostToolUse", "/bin/docket-hook claude-code")
	if string(again) != string(out) {
		t.Fatal("a second merge changed the settings")
	}
	for _, bad := range []string{`[1]`, `{"hooks":[]}`, `{"hooks":{"PreToolUse":{}}}`, `{"a":`} {
		if _, err := mergeHooks([]byte(bad), "PreToolUse", "PostToolUse", "x"); err == nil {
			t.Errorf("%s: merged, want an error", bad)
		}
	}
	// A file indented with tabs keeps its tabs.
	out, _ = mergeHooks([]byte("{\n\t\"model\": \"x\"\n}\n"), "PreToolUse", "PostToolUse", "x")
	if !strings.HasPrefix(string(out), "{\n\t\"model\": \"x\",\n\t\"hooks\"") {
		t.Fatalf("tabs:\n%s", out)
	}
}
