package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/evidence-parity/docket/anchors"
	"github.com/evidence-parity/docket/domain"
	"github.com/evidence-parity/docket/domain/clerk"
	"github.com/evidence-parity/docket/ledger/sqlite"
)

func newDemoCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "demo",
		Short: "Record two demo changes in the embedded ledger (SQLite, local key), sign and verify it",
		Long: `Records, through the same service the API uses, two changes by an AI agent:
one that goes from plan to promotion, and one whose agent strays out of scope,
is revoked, and is promoted after an approver resolves the exception. Then it
signs a checkpoint and verifies the whole ledger. Run it again to add two more.`,
		Args: cobra.NoArgs,
	}
	data := dataFlag(c)
	c.RunE = func(c *cobra.Command, _ []string) error {
		ctx := c.Context()
		out := c.OutOrStdout()
		signer, err := anchors.OpenFileSigner(keyPath(*data), true)
		if err != nil {
			return err
		}
		// The demo's story takes an afternoon: its clock starts three
		// hours ago and moves on with each step.
		clock := &demoClock{t: time.Now().UTC().Add(-3 * time.Hour)}
		s, err := sqlite.Open(ctx, ledgerPath(*data), sqlite.Options{Signer: signer, Now: clock.now})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "ledger   %s (origin %s)\n", s.Path(), s.Origin())
		fmt.Fprintln(out, "warning: the checkpoint key is a local file, not externally custodied (use KMS in production)")
		if err := runDemo(ctx, out, clerk.New(s, clerk.Config{Now: clock.now}), clock); err != nil {
			s.Close()
			return err
		}
		if err := s.Close(); err != nil { // signs the final checkpoint
			return err
		}
		fp, err := anchors.Fingerprint(signer.Public())
		if err != nil {
			return err
		}
		note, err := latestCheckpoint(ctx, *data)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "signed checkpoint:\n%s", note)
		rep, err := verifyLedger(ctx, *data, []string{fp}, nil)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "verified: %d events, %d checkpoints, key fingerprint %s\n", rep.Events, rep.Checkpoints, fp)
		fmt.Fprintf(out, "check it yourself: docket verify ledger --data %s --fingerprint %s\n", *data, fp)
		return nil
	}
	return c
}

type demoClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *demoClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

func (c *demoClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const (
	demoJUnit = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites><testsuite name="github.com/acme/api/src/billing" tests="3" failures="0" skipped="0">
<testcase classname="billing" name="TestTotal"/><testcase classname="billing" name="TestTotalRounding"/><testcase classname="billing" name="TestTotalEmpty"/>
</testsuite></testsuites>`
	demoSARIF = `{"version":"2.1.0","$schema":"https://json.schemastore.org/sarif-2.1.0.json","runs":[{"tool":{"driver":{"name":"gosec","rules":[]}},"results":[]}]}`
)

// runDemo records the two demo changes.
func runDemo(ctx context.Context, out io.Writer, k *clerk.Clerk, clock *demoClock) error {
	sys := clerk.System
	people := []struct {
		id   string
		role domain.Role
		auth domain.Scope
	}{
		{"ada", domain.RoleAdmin, nil},
		{"alice", domain.RoleRequester, nil},
		{"bob", domain.RoleApprover, domain.Scope{
			{Resource: "file:github.com/acme/**", Verbs: []domain.Verb{domain.Read, domain.Write, domain.Delete}},
			{Resource: "cmd:**", Verbs: []domain.Verb{domain.Exec}},
		}},
	}
	for _, p := range people {
		err := k.RegisterPrincipal(ctx, sys, p.id, p.id, p.id+"@acme.example")
		if errors.Is(err, domain.ErrConflict) {
			continue // a second run: they exist
		}
		if err != nil {
			return err
		}
		if err := k.GrantRole(ctx, sys, p.id, p.role, p.auth); err != nil {
			return err
		}
	}
	if err := k.RegisterAgent(ctx, sys, "claude-ci", "Claude Code in CI", "alice", "claude-code"); err != nil && !errors.Is(err, domain.ErrConflict) {
		return err
	}
	bobToken, err := k.IssueToken(ctx, sys, "bob")
	if err != nil {
		return err
	}
	bob, err := k.Authenticate(ctx, bobToken)
	if err != nil {
		return err
	}
	key, err := k.IssueAgentKey(ctx, sys, "claude-ci")
	if err != nil {
		return err
	}
	agent, err := k.Authenticate(ctx, key)
	if err != nil {
		return err
	}
	plan := domain.Plan{
		Objective:    "Fix rounding in invoice totals",
		Method:       "Use decimal arithmetic in billing.Total and add table tests",
		Scope:        domain.Scope{{Resource: "file:github.com/acme/api/src/billing/**", Verbs: []domain.Verb{domain.Read, domain.Write}}, {Resource: "cmd:go test *", Verbs: []domain.Verb{domain.Exec}}},
		TestApproach: "go test ./... including new table tests for half-cent cases",
		BackoutPath:  "git revert the merge commit and redeploy the previous tag",
		Environment:  "production",
	}
	for i, strays := range []bool{false, true} {
		id, hash, err := k.SubmitPlan(ctx, agent, "", "alice", plan)
		if err != nil {
			return err
		}
		clock.advance(20 * time.Minute)
		if _, err := k.ViewPlan(ctx, bob, id); err != nil {
			return err
		}
		clock.advance(9 * time.Minute)
		if err := k.Approve(ctx, bob, id, hash, "Scope limited to billing; backout is a revert."); err != nil {
			return err
		}
		ses, err := k.RequestSession(ctx, agent, id)
		if err != nil {
			return err
		}
		clock.advance(5 * time.Minute)
		actions := []domain.ResourceUse{
			{Resource: "file:github.com/acme/api/src/billing/total.go", Verb: domain.Write},
			{Resource: "cmd:go test ./billing/...", Verb: domain.Exec},
		}
		if strays {
			actions = append(actions, domain.ResourceUse{Resource: "file:github.com/acme/api/src/billing/../../deploy/prod.env", Verb: domain.Read})
		}
		for _, a := range actions {
			if _, err := k.RecordAction(ctx, ses.Credential, "tool_call", []domain.ResourceUse{a}, "", "ok"); err != nil {
				if !errors.Is(err, domain.ErrOutOfScope) {
					return err
				}
				fmt.Fprintf(out, "change %d: deviation: %v\n", i+1, err)
			}
		}
		cred := ses.Credential
		if strays {
			// The revoked credential is dead; the agent asks for a new session.
			if ses, err = k.RequestSession(ctx, agent, id); err != nil {
				return err
			}
			cred = ses.Credential
			c, err := k.Change(ctx, id)
			if err != nil {
				return err
			}
			for xid := range c.Exceptions {
				clock.advance(15 * time.Minute)
				if err := k.ResolveException(ctx, bob, id, xid, domain.DispositionRemediated, "The hook denied the read before it ran; the file was not touched."); err != nil {
					return err
				}
			}
		}
		if _, err := k.AttachEvidence(ctx, cred, domain.EvidenceTest, "junit", []byte(demoJUnit)); err != nil {
			return err
		}
		if _, err := k.AttachEvidence(ctx, cred, domain.EvidenceScan, "sarif", []byte(demoSARIF)); err != nil {
			return err
		}
		if err := k.EndSession(ctx, cred); err != nil {
			return err
		}
		if err := k.RequestPromotion(ctx, agent, id); err != nil {
			return err
		}
		c, err := k.Change(ctx, id)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "change %d: %s %s — approved by %s after %.0fs of review, %d sessions, %d exceptions\n",
			i+1, id, c.Status(), c.Approval.Approver, c.Approval.Review.DwellSeconds, len(c.Sessions), len(c.Exceptions))
		clock.advance(30 * time.Minute)
	}
	return nil
}
