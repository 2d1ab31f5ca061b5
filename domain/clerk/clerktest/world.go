// Package clerktest builds, for tests, a clerk over a real SQLite ledger
// with principals, an agent and a clock the test moves.
package clerktest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evidence-parity/docket/anchors"
	"github.com/evidence-parity/docket/domain"
	"github.com/evidence-parity/docket/domain/clerk"
	"github.com/evidence-parity/docket/ledger/sqlite"
)

// World is a clerk over a real SQLite ledger with people, an agent and a
// clock the test moves.
type World struct {
	Store   *sqlite.Store
	FP      string // the signing key's fingerprint
	Clerk   *clerk.Clerk
	clock   atomic.Int64
	Admin   domain.Actor
	Alice   domain.Actor // requester
	Bob     domain.Actor // approver of file:github.com/acme/** and cmd:**
	Agent   domain.Actor // claude-ci, owned by alice
	AgentID string
}

// Advance moves the clock.
func (w *World) Advance(d time.Duration) { w.clock.Add(int64(d)) }

// Now reads the clock.
func (w *World) Now() time.Time { return time.Unix(0, w.clock.Load()).UTC() }

// NewWorld builds a world in a temporary directory.
func NewWorld(t testing.TB) *World {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	signer, err := anchors.OpenFileSigner(filepath.Join(dir, "key.pem"), true)
	if err != nil {
		t.Fatal(err)
	}
	w := &World{AgentID: "claude-ci"}
	w.FP, _ = anchors.Fingerprint(signer.Public())
	w.clock.Store(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, w.clock.Load()).UTC() }
	if w.Store, err = sqlite.Open(ctx, filepath.Join(dir, "ledger.db"), sqlite.Options{Signer: signer, Now: now}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Store.Close() })
	w.Clerk = clerk.New(w.Store, clerk.Config{Now: now})
	k := w.Clerk
	sys := clerk.System
	for _, p := range []struct {
		id   string
		role domain.Role
		auth domain.Scope
	}{
		{"ada", domain.RoleAdmin, nil},
		{"alice", domain.RoleRequester, nil},
		{"bob", domain.RoleApprover, domain.Scope{{Resource: "file:github.com/acme/**", Verbs: []domain.Verb{domain.Read, domain.Write}}, {Resource: "cmd:**", Verbs: []domain.Verb{domain.Exec}}}},
	} {
		if err := k.RegisterPrincipal(ctx, sys, p.id, p.id, p.id+"@acme.example"); err != nil {
			t.Fatal(err)
		}
		if err := k.GrantRole(ctx, sys, p.id, p.role, p.auth); err != nil {
			t.Fatal(err)
		}
	}
	login := func(id string) domain.Actor {
		_, tok, err := k.IssueToken(ctx, sys, id)
		if err != nil {
			t.Fatal(err)
		}
		a, err := k.Authenticate(ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	w.Admin, w.Alice, w.Bob = login("ada"), login("alice"), login("bob")
	if err := k.RegisterAgent(ctx, w.Admin, w.AgentID, "Claude Code in CI", "alice", "claude-code"); err != nil {
		t.Fatal(err)
	}
	_, key, err := k.IssueAgentKey(ctx, w.Admin, w.AgentID)
	if err != nil {
		t.Fatal(err)
	}
	if w.Agent, err = k.Authenticate(ctx, key); err != nil {
		t.Fatal(err)
	}
	return w
}

// Plan is a complete plan inside bob's authority.
func Plan() domain.Plan {
	return domain.Plan{
		Objective: "Fix rounding in invoice totals", Method: "Use decimal arithmetic in billing.Total",
		Scope: domain.Scope{
			{Resource: "file:github.com/acme/api/src/billing/**", Verbs: []domain.Verb{domain.Read, domain.Write}},
			{Resource: "cmd:go test *", Verbs: []domain.Verb{domain.Exec}},
		},
		TestApproach: "go test ./... with new table tests", BackoutPath: "git revert the merge commit; redeploy the previous tag", Environment: "production",
	}
}

// Fixture reads a report produced by a real tool (domain/report/testdata).
func Fixture(t testing.TB, name string) []byte {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "report", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Verify signs a checkpoint and verifies the whole ledger, as
// `docket verify ledger` does.
func (w *World) Verify(t testing.TB) {
	t.Helper()
	if _, err := w.Store.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	rep, err := w.Store.Verify(context.Background(), []string{w.FP}, nil)
	if err != nil {
		t.Fatalf("verify ledger: %v", err)
	}
	t.Logf("ledger verified: %d events, %d checkpoints", rep.Events, rep.Checkpoints)
}

// Attach attaches a test report and a scan report from domain/report/testdata
// under a session credential.
func (w *World) Attach(t testing.TB, credential, tests, scan string) {
	t.Helper()
	ctx := context.Background()
	if _, err := w.Clerk.AttachEvidence(ctx, credential, domain.EvidenceTest, "junit", Fixture(t, tests)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Clerk.AttachEvidence(ctx, credential, domain.EvidenceScan, "sarif", Fixture(t, scan)); err != nil {
		t.Fatal(err)
	}
}

// Approved submits Plan(), has bob approve it after a ten-minute review,
// and starts a session. It returns the change id, its plan hash and the
// session.
func (w *World) Approved(t testing.TB) (string, string, clerk.Session) {
	t.Helper()
	ctx := context.Background()
	id, hash, err := w.Clerk.SubmitPlan(ctx, w.Agent, "", "alice", Plan())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Clerk.ViewPlan(ctx, w.Bob, id); err != nil {
		t.Fatal(err)
	}
	w.Advance(10 * time.Minute)
	if err := w.Clerk.Approve(ctx, w.Bob, id, hash, ""); err != nil {
		t.Fatal(err)
	}
	ses, err := w.Clerk.RequestSession(ctx, w.Agent, id)
	if err != nil {
		t.Fatal(err)
	}
	return id, hash, ses
}

// Promoted takes one change through its whole life: Plan() submitted, bob
// viewing it and approving it with "ok" after fifteen minutes, a session
// editing src/billing/total.go, passing tests and a clean scan attached,
// promotion. With stray the session also reads a secret out of scope; bob
// resolves the exception and a second session finishes the work. It
// returns the change id.
func (w *World) Promoted(t testing.TB, stray bool) string {
	t.Helper()
	ctx := context.Background()
	k := w.Clerk
	id, hash, err := k.SubmitPlan(ctx, w.Agent, "", "alice", Plan())
	if err != nil {
		t.Fatal(err)
	}
	k.ViewPlan(ctx, w.Bob, id)
	w.Advance(15 * time.Minute)
	if err := k.Approve(ctx, w.Bob, id, hash, "ok"); err != nil {
		t.Fatal(err)
	}
	ses, err := k.RequestSession(ctx, w.Agent, id)
	if err != nil {
		t.Fatal(err)
	}
	cred := ses.Credential
	if _, err := k.RecordAction(ctx, cred, "edit", []domain.ResourceUse{{Resource: "file:github.com/acme/api/src/billing/total.go", Verb: domain.Write}}, "", ""); err != nil {
		t.Fatal(err)
	}
	if stray {
		if _, err := k.RecordAction(ctx, cred, "read", []domain.ResourceUse{{Resource: "env:AWS_SECRET_ACCESS_KEY", Verb: domain.Read}}, "", ""); !errors.Is(err, domain.ErrOutOfScope) {
			t.Fatalf("the stray read: got %v, want ErrOutOfScope", err)
		}
		c, err := k.Change(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for xid := range c.Exceptions {
			if err := k.ResolveException(ctx, w.Bob, id, xid, domain.DispositionRemediated, "key rotated"); err != nil {
				t.Fatal(err)
			}
		}
		s2, err := k.RequestSession(ctx, w.Agent, id)
		if err != nil {
			t.Fatal(err)
		}
		cred = s2.Credential
	}
	w.Attach(t, cred, "gotestsum-passing.xml", "gosec-clean.sarif")
	if err := k.RequestPromotion(ctx, w.Agent, id); err != nil {
		t.Fatal(err)
	}
	return id
}
