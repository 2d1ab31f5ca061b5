// Command docket-hook is `docket hook AGENT` in a binary of its own, small
// enough to start in a few milliseconds: agents run a hook before every
// tool call. `docket hook install` configures agents to call it.
//
//	docket-hook claude-code|gemini|codex
//
// It reads DOCKET_URL, DOCKET_CREDENTIAL, DOCKET_CREDENTIAL_FILE (default
// .docket/credential in the repository) and DOCKET_HOOK_TIMEOUT (default
// 5s), reads the tool call on stdin and writes allow or deny on stdout. It
// always exits 0 with an answer: it fails closed.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/evidence-parity/docket/graph/client"
)

func main() {
	if len(os.Args) < 2 || client.Dialects[os.Args[1]].Name == "" {
		// Without a known agent there is no format to deny in; exit 2,
		// which Claude Code, Gemini CLI and Codex all take as blocking.
		fmt.Fprintln(os.Stderr, "usage: docket-hook claude-code|gemini|codex")
		os.Exit(2)
	}
	d := client.Dialects[os.Args[1]]
	if len(os.Args) > 2 {
		json.NewEncoder(os.Stdout).Encode(client.Deny(d, "the hook is misconfigured (unexpected arguments %q); denied, since the call cannot be checked", os.Args[2:]))
		return
	}
	cfg := client.HookConfig{URL: env("DOCKET_URL", "http://127.0.0.1:8080"), Credential: os.Getenv("DOCKET_CREDENTIAL"),
		CredentialFile: env("DOCKET_CREDENTIAL_FILE", filepath.Join(".docket", "credential")), Timeout: 5 * time.Second}
	if t, err := time.ParseDuration(os.Getenv("DOCKET_HOOK_TIMEOUT")); err == nil && t > 0 {
		cfg.Timeout = t
	}
	json.NewEncoder(os.Stdout).Encode(client.RunHook(context.Background(), d, cfg, os.Stdin))
}

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
