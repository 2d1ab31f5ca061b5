package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/evidence-parity/docket/domain"
	"github.com/evidence-parity/docket/domain/clerk"
)

// withClerk opens the ledger at data and runs fn with a clerk over it.
func withClerk(ctx context.Context, data string, fn func(k *clerk.Clerk) error) error {
	s, err := openWritable(ctx, data)
	if err != nil {
		return err
	}
	if err := fn(clerk.New(s, clerk.Config{})); err != nil {
		s.Close()
		return err
	}
	return s.Close()
}

// parseAuthority reads "PATTERN=verb,verb" rules.
func parseAuthority(specs []string) (domain.Scope, error) {
	var s domain.Scope
	for _, spec := range specs {
		pattern, verbs, ok := strings.Cut(spec, "=")
		if !ok {
			return nil, usageErr("--authority %q: want PATTERN=verb,verb (e.g. 'file:github.com/acme/**=read,write')", spec)
		}
		r := domain.Rule{Resource: pattern}
		for _, v := range strings.Split(verbs, ",") {
			r.Verbs = append(r.Verbs, domain.Verb(strings.TrimSpace(v)))
		}
		s = append(s, r)
	}
	return s, nil
}

func newPrincipalsCmd() *cobra.Command {
	pc := &cobra.Command{Use: "principals", Short: "Manage the humans who request, approve and audit changes"}
	add := &cobra.Command{
		Use:   "add ID",
		Short: "Register a principal, grant roles, and print an API token (shown once)",
		Args:  cobra.ExactArgs(1),
	}
	data := dataFlag(add)
	name := add.Flags().String("name", "", "display name")
	email := add.Flags().String("email", "", "email")
	roles := add.Flags().StringSlice("role", nil, "role: requester, approver, auditor or admin (repeatable)")
	authority := add.Flags().StringArray("authority", nil, "approver authority, PATTERN=verb,verb (repeatable)")
	add.RunE = func(c *cobra.Command, args []string) error {
		auth, err := parseAuthority(*authority)
		if err != nil {
			return err
		}
		if len(*roles) == 0 {
			return usageErr("give at least one --role")
		}
		e := clerk.Enrolment{ID: args[0], Name: *name, Email: *email, Authority: auth}
		for _, r := range *roles {
			e.Roles = append(e.Roles, domain.Role(r))
		}
		return withClerk(c.Context(), *data, func(k *clerk.Clerk) error {
			// One append: a refused enrolment writes nothing.
			id, tok, err := k.Enrol(c.Context(), clerk.System, e)
			if err != nil {
				return inputErr(err)
			}
			fmt.Fprintf(c.OutOrStdout(), "principal %s registered\ntoken %s (shown once, stored only as a hash): %s\n", args[0], id, tok)
			return nil
		})
	}
	token := &cobra.Command{Use: "token ID", Short: "Issue another API token for a principal (shown once)", Args: cobra.ExactArgs(1)}
	tdata := dataFlag(token)
	token.RunE = func(c *cobra.Command, args []string) error {
		return withClerk(c.Context(), *tdata, func(k *clerk.Clerk) error {
			id, tok, err := k.IssueToken(c.Context(), clerk.System, args[0])
			if err != nil {
				return inputErr(err)
			}
			fmt.Fprintf(c.OutOrStdout(), "token %s (shown once, stored only as a hash): %s\n", id, tok)
			return nil
		})
	}
	revoke := &cobra.Command{Use: "revoke-token ID TOKEN-ID", Short: "Revoke one of a principal's API tokens (its portal sign-ins end with it)", Args: cobra.ExactArgs(2)}
	vdata := dataFlag(revoke)
	revoke.RunE = func(c *cobra.Command, args []string) error {
		return withClerk(c.Context(), *vdata, func(k *clerk.Clerk) error {
			if err := k.RevokeToken(c.Context(), clerk.System, args[0], args[1]); err != nil {
				return inputErr(err)
			}
			fmt.Fprintf(c.OutOrStdout(), "token %s of %s revoked\n", args[1], args[0])
			return nil
		})
	}
	pc.AddCommand(add, token, revoke)
	return pc
}

func newAgentsCmd() *cobra.Command {
	ac := &cobra.Command{Use: "agents", Short: "Manage the agent inventory"}
	add := &cobra.Command{Use: "add ID", Short: "Register an agent with its owner and print its key (shown once)", Args: cobra.ExactArgs(1)}
	data := dataFlag(add)
	name := add.Flags().String("name", "", "display name")
	owner := add.Flags().String("owner", "", "the principal accountable for the agent (required)")
	harness := add.Flags().String("harness", "", "what runs it: claude-code, gemini, codex, …")
	add.RunE = func(c *cobra.Command, args []string) error {
		if *owner == "" {
			return usageErr("--owner is required")
		}
		return withClerk(c.Context(), *data, func(k *clerk.Clerk) error {
			id, key, err := k.EnrolAgent(c.Context(), clerk.System, args[0], *name, *owner, *harness)
			if err != nil {
				return inputErr(err)
			}
			fmt.Fprintf(c.OutOrStdout(), "agent %s registered (owner %s)\nkey %s (shown once, stored only as a hash): %s\n", args[0], *owner, id, key)
			return nil
		})
	}
	retire := &cobra.Command{Use: "retire ID", Short: "Retire an agent; its keys stop working", Args: cobra.ExactArgs(1)}
	rdata := dataFlag(retire)
	retire.RunE = func(c *cobra.Command, args []string) error {
		return withClerk(c.Context(), *rdata, func(k *clerk.Clerk) error {
			return inputErr(k.RetireAgent(c.Context(), clerk.System, args[0]))
		})
	}
	ac.AddCommand(add, retire)
	return ac
}

// inputErr makes the domain's input-shaped refusals exit 2.
func inputErr(err error) error {
	if err == nil {
		return nil
	}
	for _, cat := range []error{domain.ErrInvalidInput, domain.ErrNotFound, domain.ErrConflict, domain.ErrForbidden} {
		if errors.Is(err, cat) {
			return &exitError{code: 2, err: err}
		}
	}
	return err
}
