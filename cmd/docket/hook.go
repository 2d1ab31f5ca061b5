package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/evidence-parity/docket/graph/client"
)

func newHookCmd() *cobra.Command {
	hook := &cobra.Command{Use: "hook", Short: "Check an agent's tool calls against the approved scope before they run (fail closed)"}
	f := addAgentFlags(hook)
	timeout := hook.PersistentFlags().Duration("timeout", 5*time.Second, "how long to wait for the server before denying")
	for _, name := range []string{"claude-code", "gemini", "codex"} {
		d := client.Dialects[name]
		hook.AddCommand(&cobra.Command{
			Use:   name,
			Short: fmt.Sprintf("The %s hook: reads the tool call on stdin, answers allow or deny on stdout", name),
			Args:  cobra.NoArgs,
			RunE: func(c *cobra.Command, _ []string) error {
				out := client.RunHook(c.Context(), d, client.HookConfig{URL: f.url, Credential: f.credential, CredentialFile: f.credFile, Timeout: *timeout}, c.InOrStdin())
				return json.NewEncoder(c.OutOrStdout()).Encode(out)
			},
		})
	}
	hook.AddCommand(newHookInstallCmd())
	return hook
}
