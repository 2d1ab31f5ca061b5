package main

import (
	"encoding/json"
	"fmt"
	"os"
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
		// Whatever is wrong with the invocation itself (a bad flag, a stray
		// argument), the agent still gets a deny in its format and exit 0:
		// an agent may treat a failing hook as non-blocking.
		refuse := func(c *cobra.Command, err error) error {
			c.SilenceUsage, c.SilenceErrors = true, true
			return json.NewEncoder(c.OutOrStdout()).Encode(client.Deny(d, "the hook is misconfigured (%v); denied, since the call cannot be checked", err))
		}
		cmd := &cobra.Command{
			Use:   name,
			Short: fmt.Sprintf("The %s hook: reads the tool call on stdin, answers allow or deny on stdout", name),
			Args:  cobra.ArbitraryArgs,
			RunE: func(c *cobra.Command, args []string) error {
				if len(args) > 0 {
					return refuse(c, fmt.Errorf("unexpected arguments %q", args))
				}
				out := client.RunHook(c.Context(), d, client.HookConfig{URL: f.url, Credential: f.credential, CredentialFile: f.credFile, Timeout: *timeout}, c.InOrStdin())
				return json.NewEncoder(c.OutOrStdout()).Encode(out)
			},
		}
		cmd.SetFlagErrorFunc(refuse)
		// --help shows the usage on stderr, for a person; the agent still
		// reads a deny on stdout.
		cmd.SetHelpFunc(func(c *cobra.Command, _ []string) {
			c.SetOut(c.ErrOrStderr())
			c.Usage()
			json.NewEncoder(os.Stdout).Encode(client.Deny(d, "the hook was asked for help, not a decision; denied"))
		})
		hook.AddCommand(cmd)
	}
	hook.AddCommand(newHookInstallCmd())
	return hook
}
