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
	out, _, err := mergeHooks([]byte(narrow), "PreToolUse", "PostToolUse", "/bin/docket-hook claude-code")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(out), `"matcher": "*"`); n != 2 {
		t.Fatalf("want a catch-all PreToolUse hook added and PostToolUse's kept (2 catch-alls), got %d:\n%s", n, out)
	}
	again, _, _ := mergeHooks(out, "PreToolUse", "PostToolUse", "/bin/docket-hook claude-code")
	if string(again) != string(out) {
		t.Fatal("a second merge changed the settings")
	}
	// Repeated keys are refused: the agents keep the last, so a hook merged
	// into the first would never run.
	for _, bad := range []string{`[1]`, `{"hooks":[]}`, `{"hooks":{"PreToolUse":{}}}`, `{"a":`,
		`{"hooks":{"PreToolUse":[{"matcher":"*","hooks":[{"type":"command","command":"x"}]}]},"hooks":{}}`,
		`{"hooks":{"PreToolUse":[],"PreToolUse":[{"matcher":"Bash","hooks":[]}]}}`} {
		if _, _, err := mergeHooks([]byte(bad), "PreToolUse", "PostToolUse", "x"); err == nil {
			t.Errorf("%s: merged, want an error", bad)
		}
	}
	// A file indented with tabs keeps its tabs.
	out, _, _ = mergeHooks([]byte("{\n\t\"model\": \"x\"\n}\n"), "PreToolUse", "PostToolUse", "x")
	if !strings.HasPrefix(string(out), "{\n\t\"model\": \"x\",\n\t\"hooks\"") {
		t.Fatalf("tabs:\n%s", out)
	}
	// CRLF line endings stay CRLF.
	out, _, _ = mergeHooks([]byte("{\r\n  \"model\": \"x\"\r\n}\r\n"), "PreToolUse", "PostToolUse", "x")
	if strings.Count(string(out), "\n") != strings.Count(string(out), "\r\n") {
		t.Fatalf("line endings:\n%q", out)
	}
	// Docket's hook installed from another path (another machine, an
	// older release's bare name) is not installed twice; a hook of another
	// type is not Docket's.
	old := `{"hooks":{"PreToolUse":[{"matcher":"*","hooks":[{"type":"command","command":"docket-hook claude-code"}]}],` +
		`"PostToolUse":[{"matcher":"*","hooks":[{"type":"http","command":"/usr/local/bin/docket-hook claude-code"}]}]}}`
	out, notes, _ := mergeHooks([]byte(old), "PreToolUse", "PostToolUse", "/usr/local/bin/docket-hook claude-code")
	if strings.Count(string(out), "docket-hook claude-code") != 3 || len(notes) != 1 || !strings.Contains(notes[0], `as "docket-hook claude-code"`) {
		t.Fatalf("another path: %v\n%s", notes, out)
	}
}
