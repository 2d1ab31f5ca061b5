package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/evidence-parity/docket/anchors"
	"github.com/evidence-parity/docket/ledger"
)

func newDemoCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "demo",
		Short: "Record a demo change in the embedded ledger (SQLite, local key), sign it and verify it",
		Args:  cobra.NoArgs,
	}
	data := dataFlag(c)
	c.RunE = func(c *cobra.Command, _ []string) error {
		ctx := c.Context()
		out := c.OutOrStdout()
		s, err := openWritable(ctx, *data)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "ledger   %s (origin %s)\n", s.Path(), s.Origin())
		fmt.Fprintln(out, "warning: the checkpoint key is a local file, not externally custodied (use KMS in production)")
		change, n, err := recordDemoChange(ctx, s)
		if err != nil {
			s.Close()
			return err
		}
		fmt.Fprintf(out, "recorded demo change %s: %d events\n", change, n)
		if err := s.Close(); err != nil { // signs the final checkpoint
			return err
		}
		signer, err := anchors.OpenFileSigner(keyPath(*data), false)
		if err != nil {
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

// recordDemoChange appends one change's lifecycle as it will be recorded:
// an agent files a plan, a human approves it, the agent works under a
// session credential, the change is tested and promoted.
func recordDemoChange(ctx context.Context, s ledger.Store) (string, int, error) {
	change := "chg-" + uuid.Must(uuid.NewV7()).String()
	session := "ses-" + uuid.Must(uuid.NewV7()).String()
	agent := ledger.Actor{Kind: ledger.ActorAgent, ID: "agent-claude-code-ci"}
	human := ledger.Actor{Kind: ledger.ActorHuman, ID: "alice@acme.example"}
	approver := ledger.Actor{Kind: ledger.ActorHuman, ID: "bob@acme.example"}
	cred := agent
	cred.Credential = "cred-" + session[4:]
	ev := func(typ string, actor ledger.Actor, data map[string]any) ledger.Event {
		raw, _ := json.Marshal(data)
		return ledger.Event{Type: typ, Actor: actor, Correlation: change, Data: raw}
	}
	scope := []map[string]any{{"resource": "file:github.com/acme/api/src/billing/**", "verbs": []string{"read", "write"}}, {"resource": "cmd:go test ./...", "verbs": []string{"exec"}}}
	steps := []struct {
		stream string
		events []ledger.Event
	}{
		{"change-" + change, []ledger.Event{
			ev("PlanSubmitted", agent, map[string]any{"objective": "Fix rounding in invoice totals", "method": "Use decimal arithmetic in billing.Total", "scope": scope,
				"testApproach": "go test ./... including new table tests", "backoutPath": "git revert the merge commit; redeploy previous tag", "environment": "production", "requestedBy": human.ID}),
			ev("PlanViewed", approver, map[string]any{"approver": approver.ID}),
			ev("PlanApproved", approver, map[string]any{"approver": approver.ID, "authenticatedBy": "token", "dwellSeconds": 312}),
			ev("VerificationRecorded", ledger.Actor{Kind: ledger.ActorSystem, ID: "docket"}, map[string]any{"stage": "issuance", "passed": true}),
		}},
		{"session-" + session, []ledger.Event{
			ev("CredentialIssued", ledger.Actor{Kind: ledger.ActorSystem, ID: "docket"}, map[string]any{"session": session, "expires": time.Now().Add(8 * time.Hour).UTC()}),
			ev("ActionRecorded", cred, map[string]any{"resources": []string{"file:github.com/acme/api/src/billing/total.go"}, "verbs": []string{"write"}, "inScope": true}),
			ev("ActionRecorded", cred, map[string]any{"resources": []string{"cmd:go test ./..."}, "verbs": []string{"exec"}, "inScope": true}),
			ev("EvidenceAttached", cred, map[string]any{"kind": "test", "format": "junit", "passed": 148, "failed": 0}),
			ev("SessionEnded", cred, map[string]any{"session": session}),
		}},
		{"change-" + change, []ledger.Event{
			ev("VerificationRecorded", ledger.Actor{Kind: ledger.ActorSystem, ID: "docket"}, map[string]any{"stage": "promotion", "passed": true}),
			ev("ChangePromoted", ledger.Actor{Kind: ledger.ActorSystem, ID: "docket"}, map[string]any{}),
		}},
	}
	n := 0
	for _, st := range steps {
		if _, err := s.Append(ctx, st.stream, ledger.Any, st.events...); err != nil {
			return "", n, err
		}
		n += len(st.events)
	}
	return change, n, nil
}
