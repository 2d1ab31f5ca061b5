package clerk_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evidence-parity/docket/domain"
	"github.com/evidence-parity/docket/domain/clerk"
	"github.com/evidence-parity/docket/domain/clerk/clerktest"
	"github.com/evidence-parity/docket/ledger"
)

func TestChangeFromPlanToPromotion(t *testing.T) {
	w := clerktest.NewWorld(t)
	ctx := context.Background()
	k := w.Clerk
	id, hash, err := k.SubmitPlan(ctx, w.Agent, "", "alice", clerktest.Plan())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.RequestSession(ctx, w.Agent, id); !errors.Is(err, domain.ErrGateFailed) {
		t.Fatalf("a session before approval: %v", err)
	}
	if _, err := k.ViewPlan(ctx, w.Bob, id); err != nil {
		t.Fatal(err)
	}
	w.Advance(12 * time.Minute)
	if err := k.Approve(ctx, w.Bob, id, hash, "scope is tight, backout is real"); err != nil {
		t.Fatal(err)
	}
	w.Advance(time.Minute)
	ses, err := k.RequestSession(ctx, w.Agent, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []domain.ResourceUse{
		{Resource: "file:github.com/acme/api/src/billing/total.go", Verb: domain.Write},
		{Resource: "cmd:go test ./billing/...", Verb: domain.Exec},
	} {
		rec, err := k.RecordAction(ctx, ses.Credential, "edit", []domain.ResourceUse{u}, "", "ok")
		if err != nil || !rec.InScope {
			t.Fatalf("action %v: in scope %v, %v", u, rec.InScope, err)
		}
	}
	if sum, err := k.AttachEvidence(ctx, ses.Credential, domain.EvidenceTest, "junit", clerktest.Fixture(t, "gotestsum-passing.xml")); err != nil || sum.TestsPassed != 3 {
		t.Fatalf("attach tests: %+v %v", sum, err)
	}
	if _, err := k.AttachEvidence(ctx, ses.Credential, domain.EvidenceScan, "sarif", clerktest.Fixture(t, "gosec-clean.sarif")); err != nil {
		t.Fatal(err)
	}
	if err := k.EndSession(ctx, ses.Credential); err != nil {
		t.Fatal(err)
	}
	if _, err := k.RecordAction(ctx, ses.Credential, "edit", []domain.ResourceUse{{Resource: "file:github.com/acme/api/src/billing/total.go", Verb: domain.Write}}, "", ""); !errors.Is(err, domain.ErrCredentialDead) {
		t.Fatalf("action after the session ended: %v", err)
	}
	if err := k.RequestPromotion(ctx, w.Agent, id); err != nil {
		t.Fatal(err)
	}
	c, err := k.Change(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if c.Status() != "promoted" || c.Approval.Approver != "bob" || c.Approval.Review.RubberStamp || c.OutOfScope != 0 {
		t.Fatalf("change: status %s, approval %+v, out of scope %d", c.Status(), c.Approval, c.OutOfScope)
	}
	// Every record names its actor: the agent acted under its session credential.
	recs, _ := w.Store.ReadStream(ctx, domain.ChangeStream(id), 0)
	var types []string
	for _, r := range recs {
		types = append(types, r.Event.Type)
		if r.Event.Type == "ActionRecorded" && (r.Event.Actor.Kind != ledger.ActorAgent || r.Event.Actor.ID != w.AgentID || r.Event.Actor.Credential == "") {
			t.Errorf("action recorded under %+v, want the agent with its credential id", r.Event.Actor)
		}
		if r.Event.Type == "PlanApproved" && (r.Event.Actor.Kind != ledger.ActorHuman || r.Event.Actor.ID != "bob") {
			t.Errorf("approval recorded under %+v", r.Event.Actor)
		}
	}
	t.Logf("change stream: %v", types)
	w.Verify(t)
}

func TestDeviationToRevocationAndResolvedException(t *testing.T) {
	w := clerktest.NewWorld(t)
	ctx := context.Background()
	k := w.Clerk
	id, hash, err := k.SubmitPlan(ctx, w.Agent, "", "alice", clerktest.Plan())
	if err != nil {
		t.Fatal(err)
	}
	w.Advance(10 * time.Minute)
	if err := k.Approve(ctx, w.Bob, id, hash, ""); err != nil {
		t.Fatal(err)
	}
	ses, err := k.RequestSession(ctx, w.Agent, id)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := k.RecordAction(ctx, ses.Credential, "read", []domain.ResourceUse{{Resource: "file:github.com/acme/api/src/billing/../../../secrets/prod.key", Verb: domain.Read}}, "", "")
	if !errors.Is(err, domain.ErrOutOfScope) || rec.InScope {
		t.Fatalf("out-of-scope action: in scope %v, %v", rec.InScope, err)
	}
	if _, err := k.RecordAction(ctx, ses.Credential, "edit", []domain.ResourceUse{{Resource: "file:github.com/acme/api/src/billing/total.go", Verb: domain.Write}}, "", ""); !errors.Is(err, domain.ErrCredentialDead) {
		t.Fatalf("action after revocation: %v", err)
	}
	c, _ := k.Change(ctx, id)
	var exc string
	for xid := range c.Exceptions {
		exc = xid
	}
	if !c.Sessions[ses.ID].Revoked || exc == "" {
		t.Fatalf("revoked %v, exceptions %v", c.Sessions[ses.ID].Revoked, c.Exceptions)
	}
	// Deviation, revocation and exception landed in the append that
	// recorded the action; the refusal after it is recorded too.
	recs, _ := w.Store.ReadStream(ctx, domain.ChangeStream(id), 0)
	var at = map[string]uint64{}
	for _, r := range recs {
		at[r.Event.Type] = r.Position
	}
	if !(at["DeviationDetected"] == at["ActionRecorded"]+1 && at["CredentialRevoked"] == at["ActionRecorded"]+2 && at["ExceptionOpened"] == at["ActionRecorded"]+3) {
		t.Fatalf("positions %v: want action, deviation, revocation, exception consecutive", at)
	}
	if _, ok := at["ActionRefused"]; !ok {
		t.Fatal("the refused action was not recorded")
	}
	// A new session, tests and scan; promotion waits for the exception.
	ses2, err := k.RequestSession(ctx, w.Agent, id)
	if err != nil {
		t.Fatal(err)
	}
	w.Attach(t, ses2.Credential, "gotestsum-passing.xml", "gosec-clean.sarif")
	if err := k.RequestPromotion(ctx, w.Agent, id); !errors.Is(err, domain.ErrGateFailed) {
		t.Fatalf("promotion with an open deviation: %v", err)
	}
	if err := k.ResolveException(ctx, w.Agent, id, exc, domain.DispositionAccepted, "x"); err == nil {
		t.Fatal("an agent resolved its own exception")
	}
	if err := k.ResolveException(ctx, w.Bob, id, exc, domain.DispositionRemediated, "the key was never read: the hook denied it; rotated anyway"); err != nil {
		t.Fatal(err)
	}
	if err := k.RequestPromotion(ctx, w.Agent, id); err != nil {
		t.Fatalf("promotion after resolution: %v", err)
	}
	w.Verify(t)
}

func TestConcurrentApproveAndRevise(t *testing.T) {
	w := clerktest.NewWorld(t)
	ctx := context.Background()
	k := w.Clerk
	for i := 0; i < 10; i++ {
		id, hash, err := k.SubmitPlan(ctx, w.Agent, "", "alice", clerktest.Plan())
		if err != nil {
			t.Fatal(err)
		}
		revised := clerktest.Plan()
		revised.Method += " and a fix to the tax rounding"
		var wg sync.WaitGroup
		var approveErr, reviseErr error
		wg.Go(func() { approveErr = k.Approve(ctx, w.Bob, id, hash, "") })
		wg.Go(func() { _, _, reviseErr = k.SubmitPlan(ctx, w.Agent, id, "alice", revised) })
		wg.Wait()
		if reviseErr != nil {
			t.Fatal(reviseErr)
		}
		c, _ := k.Change(ctx, id)
		if approveErr != nil && !errors.Is(approveErr, domain.ErrStalePlan) {
			t.Fatalf("approve lost the race with %v, want ErrStalePlan", approveErr)
		}
		// Whichever came first, no approval stands for a plan it did not see.
		if c.Approval != nil {
			t.Fatalf("round %d: approval of %s stands on revised plan %s", i, c.Approval.PlanHash, c.PlanHash)
		}
	}
	w.Verify(t)
}

func TestFreezeRefusesIssuanceAndRecordsIt(t *testing.T) {
	w := clerktest.NewWorld(t)
	ctx := context.Background()
	k := w.Clerk
	id, hash, _ := k.SubmitPlan(ctx, w.Agent, "", "alice", clerktest.Plan())
	w.Advance(10 * time.Minute)
	if err := k.Approve(ctx, w.Bob, id, hash, ""); err != nil {
		t.Fatal(err)
	}
	frz, err := k.DeclareFreeze(ctx, w.Bob, "production", nil, "quarter-end close")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.RequestSession(ctx, w.Agent, id); !errors.Is(err, domain.ErrFrozen) {
		t.Fatalf("issuance during a freeze: %v", err)
	}
	if err := k.LiftFreeze(ctx, w.Bob, frz); err != nil {
		t.Fatal(err)
	}
	if _, err := k.RequestSession(ctx, w.Agent, id); err != nil {
		t.Fatalf("issuance after the freeze: %v", err)
	}
	recs, _ := w.Store.ReadStream(ctx, domain.ChangeStream(id), 0)
	n := 0
	for _, r := range recs {
		if r.Event.Type == "VerificationRecorded" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d issuance records, want 2 (the refusal and the pass)", n)
	}
	if _, err := k.DeclareFreeze(ctx, w.Agent, "production", nil, "x"); !errors.Is(err, domain.ErrForbidden) {
		t.Fatalf("an agent declared a freeze: %v", err)
	}
}

func TestTokensAndKeys(t *testing.T) {
	w := clerktest.NewWorld(t)
	ctx := context.Background()
	for _, bad := range []string{"", "dkt_tok_bob.", "dkt_tok_bob.AAAA", "dkt_tok_nobody.AAAA", "dkt_agent_claude-ci.AAAA", "Bearer x"} {
		if _, err := w.Clerk.Authenticate(ctx, bad); !errors.Is(err, domain.ErrUnauthenticated) {
			t.Errorf("Authenticate(%q) = %v, want ErrUnauthenticated", bad, err)
		}
	}
	if err := w.Clerk.RegisterPrincipal(ctx, w.Alice, "eve", "eve", ""); !errors.Is(err, domain.ErrForbidden) {
		t.Errorf("a requester registered a principal: %v", err)
	}
	if err := w.Clerk.RetireAgent(ctx, w.Admin, w.AgentID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.Clerk.SubmitPlan(ctx, w.Agent, "", "alice", clerktest.Plan()); err == nil {
		t.Error("a retired agent submitted a plan")
	}
	// Tokens are stored only as hashes: no secret appears in the ledger.
	for r, err := range w.Store.ReadAll(ctx, 0) {
		if err != nil {
			t.Fatal(err)
		}
		if containsSecret(string(r.Canonical)) {
			t.Fatalf("position %d stores a secret: %s", r.Position, r.Canonical)
		}
	}
}

func containsSecret(s string) bool {
	for _, p := range []string{domain.PrefixToken, domain.PrefixAgentKey, domain.PrefixSession} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

func TestEvidenceGatesPromotion(t *testing.T) {
	w := clerktest.NewWorld(t)
	ctx := context.Background()
	k := w.Clerk
	id, _, ses := w.Approved(t)
	w.Attach(t, ses.Credential, "gotestsum-failing.xml", "gosec-findings.sarif")
	err := k.RequestPromotion(ctx, w.Agent, id)
	if !errors.Is(err, domain.ErrGateFailed) || !strings.Contains(err.Error(), "tests_passed") || !strings.Contains(err.Error(), "scan_clean") {
		t.Fatalf("promotion with a failing test and a high finding: %v", err)
	}
	// Fix the test; accept the finding with a justification.
	if _, err := k.AttachEvidence(ctx, ses.Credential, domain.EvidenceTest, "junit", clerktest.Fixture(t, "gotestsum-passing.xml")); err != nil {
		t.Fatal(err)
	}
	c, _ := k.Change(ctx, id)
	for xid, x := range c.Exceptions {
		if x.Kind != domain.ExceptionScanFindings {
			t.Fatalf("unexpected exception %+v", x)
		}
		if err := k.ResolveException(ctx, w.Bob, id, xid, domain.DispositionAccepted, "InsecureSkipVerify is only used against the local test double"); err != nil {
			t.Fatal(err)
		}
	}
	if err := k.RequestPromotion(ctx, w.Agent, id); err != nil {
		t.Fatalf("promotion after the fix and the acceptance: %v", err)
	}
	// The report itself is stored, content-addressed, byte for byte.
	c, _ = k.Change(ctx, id)
	stored, err := k.Evidence(ctx, c.Evidence[1].SHA256)
	if err != nil || string(stored.Content) != string(clerktest.Fixture(t, "gosec-findings.sarif")) {
		t.Fatalf("stored evidence: %v", err)
	}
	if _, err := k.AttachEvidence(ctx, ses.Credential, domain.EvidenceScan, "sarif", []byte("<html>")); !errors.Is(err, domain.ErrInvalidInput) {
		t.Fatalf("a malformed report: %v", err)
	}
	w.Verify(t)
}

// submitEmergency submits an emergency change and returns its id and plan
// hash.
func submitEmergency(t *testing.T, w *clerktest.World) (string, string) {
	t.Helper()
	p := clerktest.Plan()
	p.Emergency = true
	id, hash, err := w.Clerk.SubmitPlan(context.Background(), w.Agent, "", "alice", p)
	if err != nil {
		t.Fatal(err)
	}
	return id, hash
}

func TestEmergencyChange(t *testing.T) {
	w := clerktest.NewWorld(t)
	ctx := context.Background()
	k := w.Clerk
	id, hash := submitEmergency(t, w)
	ses, err := k.RequestSession(ctx, w.Agent, id)
	if err != nil {
		t.Fatalf("an emergency change gets a credential before approval: %v", err)
	}
	if ses.ExpiresAt.After(time.Unix(0, w.Now().UnixNano()).Add(24 * time.Hour)) {
		t.Fatalf("credential outlives the emergency window: %v", ses.ExpiresAt)
	}
	w.Attach(t, ses.Credential, "gotestsum-passing.xml", "gosec-clean.sarif")
	w.Advance(25 * time.Hour)
	// Overdue: the gate opens an exception and refuses.
	if err := k.RequestPromotion(ctx, w.Agent, id); !errors.Is(err, domain.ErrGateFailed) {
		t.Fatalf("promotion of an overdue emergency: %v", err)
	}
	c, _ := k.Change(ctx, id)
	var overdue string
	for xid, x := range c.Exceptions {
		if x.Kind == domain.ExceptionEmergencyOverdue {
			overdue = xid
		}
	}
	if overdue == "" {
		t.Fatal("no overdue exception was opened")
	}
	if err := k.Approve(ctx, w.Bob, id, hash, "approved after the incident"); err != nil {
		t.Fatal(err)
	}
	if err := k.ResolveException(ctx, w.Bob, id, overdue, domain.DispositionAccepted, "incident bridge approved verbally; recorded late"); err != nil {
		t.Fatal(err)
	}
	if err := k.RequestPromotion(ctx, w.Agent, id); err != nil {
		t.Fatalf("promotion after late approval and resolution: %v", err)
	}
	w.Verify(t)
}

// An emergency change approved after its window, with nothing having
// opened the overdue exception before, gets it with the approval; one
// approved in time gets none.
func TestEmergencyApprovedLate(t *testing.T) {
	for _, tc := range []struct {
		after   time.Duration
		overdue bool
	}{{2 * time.Hour, false}, {30 * time.Hour, true}} {
		w := clerktest.NewWorld(t)
		ctx := context.Background()
		k := w.Clerk
		id, hash := submitEmergency(t, w)
		w.Advance(tc.after)
		if err := k.Approve(ctx, w.Bob, id, hash, "approved after the incident"); err != nil {
			t.Fatal(err)
		}
		c, _ := k.Change(ctx, id)
		var open int
		for _, x := range c.Exceptions {
			if x.Kind == domain.ExceptionEmergencyOverdue && !x.Resolved {
				open++
			}
		}
		if want := map[bool]int{true: 1, false: 0}[tc.overdue]; open != want || c.Approval == nil {
			t.Fatalf("approved %v after submission: %d overdue exceptions, approval %v; want %d and the approval", tc.after, open, c.Approval, want)
		}
		w.Verify(t)
	}
}

func TestRetiringAnAgentKillsItsSessions(t *testing.T) {
	w := clerktest.NewWorld(t)
	ctx := context.Background()
	_, _, ses := w.Approved(t)
	if err := w.Clerk.RetireAgent(ctx, w.Admin, w.AgentID); err != nil {
		t.Fatal(err)
	}
	_, err := w.Clerk.RecordAction(ctx, ses.Credential, "edit", []domain.ResourceUse{{Resource: "file:github.com/acme/api/src/billing/total.go", Verb: domain.Write}}, "", "")
	if !errors.Is(err, domain.ErrCredentialDead) || !strings.Contains(err.Error(), "retired") {
		t.Fatalf("action by a retired agent's session: %v", err)
	}
}

// The clerk caches each stream's state by applying the events it decided
// to the state it decided on; that must be exactly the state folded from
// the events as stored, whatever the clock (the tests' plain UTC clock, or
// the wall clock with its monotonic reading, in any zone), and it would not
// be if a decider changed the state it was given.
func TestCachedStateIsTheStoredState(t *testing.T) {
	w := clerktest.NewWorld(t)
	ctx := context.Background()
	w.Promoted(t, true)

	// The caller changes its slices after each command.
	plan := clerktest.Plan()
	id, hash, err := w.Clerk.SubmitPlan(ctx, w.Agent, "", "alice", plan)
	if err != nil {
		t.Fatal(err)
	}
	plan.Scope[0].Resource, plan.Scope[0].Verbs[0] = "file:**", domain.Exec
	if err := w.Clerk.Approve(ctx, w.Bob, id, hash, ""); err != nil {
		t.Fatal(err)
	}
	ses, err := w.Clerk.RequestSession(ctx, w.Agent, id)
	if err != nil {
		t.Fatal(err)
	}
	uses := []domain.ResourceUse{{Resource: "file:github.com/acme/api/src/billing/total.go", Verb: domain.Write}}
	if _, err := w.Clerk.RecordAction(ctx, ses.Credential, "edit", uses, "", ""); err != nil {
		t.Fatal(err)
	}
	uses[0].Resource = "file:elsewhere"
	if err := w.Clerk.RegisterPrincipal(ctx, clerk.System, "carol", "carol", ""); err != nil {
		t.Fatal(err)
	}
	// Empty slices that the events omit.
	if err := w.Clerk.GrantRole(ctx, clerk.System, "carol", domain.RoleAuditor, domain.Scope{}); err != nil {
		t.Fatal(err)
	}

	// An emergency change whose approval is overdue: the promotion
	// request opens the exception, applying it inside the decision.
	emergency := clerktest.Plan()
	emergency.Emergency = true
	eid, _, err := w.Clerk.SubmitPlan(ctx, w.Agent, "", "alice", emergency)
	if err != nil {
		t.Fatal(err)
	}
	w.Advance(25 * time.Hour)
	if err := w.Clerk.RequestPromotion(ctx, w.Agent, eid); err == nil {
		t.Fatal("an unapproved emergency change was promoted")
	}
	if c, err := w.Clerk.Change(ctx, eid); err != nil || len(c.Exceptions) != 1 {
		t.Fatalf("overdue emergency: %d exceptions, %v", len(c.Exceptions), err)
	}
	zoned := clerk.New(w.Store, clerk.Config{Now: func() time.Time { return time.Now().In(time.FixedZone("east", 5*3600+30*60)) }})
	wall := clerk.New(w.Store, clerk.Config{})
	for _, k := range []*clerk.Clerk{zoned, wall} {
		id, hash, err := k.SubmitPlan(ctx, w.Agent, "", "alice", clerktest.Plan())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.ViewPlan(ctx, w.Bob, id); err != nil {
			t.Fatal(err)
		}
		if err := k.Approve(ctx, w.Bob, id, hash, "fine"); err != nil {
			t.Fatal(err)
		}
		ses, err := k.RequestSession(ctx, w.Agent, id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := k.RecordAction(ctx, ses.Credential, "edit", []domain.ResourceUse{{Resource: "file:github.com/acme/api/src/billing/total.go", Verb: domain.Write}}, "go fmt", "ok"); err != nil {
			t.Fatal(err)
		}
		if _, err := k.RecordAction(ctx, ses.Credential, "read", []domain.ResourceUse{{Resource: "env:AWS_SECRET_ACCESS_KEY", Verb: domain.Read}}, "", ""); !errors.Is(err, domain.ErrOutOfScope) {
			t.Fatalf("out of scope: %v", err)
		}
	}
	if _, err := w.Clerk.DeclareFreeze(ctx, w.Admin, "production", []string{"file:**"}, "quarter close"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Clerk.DeclareFreeze(ctx, w.Admin, "staging", []string{}, "load test"); err != nil {
		t.Fatal(err)
	}
	if err := w.Clerk.RetireAgent(ctx, w.Admin, w.AgentID); err != nil {
		t.Fatal(err)
	}

	for _, k := range []*clerk.Clerk{w.Clerk, zoned, wall} {
		cached := clerk.CachedStates(k)
		if len(cached) < 3 {
			t.Fatalf("%d streams cached", len(cached))
		}
		for stream, c := range cached {
			stored, err := clerk.FoldStored(ctx, k, stream, c)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.State, stored) {
				t.Errorf("%s: cached\n%#v\nfolded from the ledger\n%#v", stream, c.State, stored)
			}
		}
	}
}

// An evidence stream whose first record is not the stored report (only a
// process writing to the ledger by other means could make one) is an
// error, not a crash.
func TestEvidenceStreamOfAnotherType(t *testing.T) {
	w := clerktest.NewWorld(t)
	ctx := context.Background()
	sha := strings.Repeat("ab", 32)
	if _, err := w.Store.Append(ctx, domain.EvidenceStream(sha), ledger.NoStream, ledger.Event{
		Type: "FreezeLifted", Actor: ledger.Actor{Kind: ledger.ActorHuman, ID: "admin"}, Data: []byte(`{"freeze":"frz-1","by":"admin"}`),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Clerk.Evidence(ctx, sha); err == nil || !strings.Contains(err.Error(), "begins with FreezeLifted") {
		t.Fatalf("Evidence = %v, want an error naming the record's type", err)
	}
}

// TestEnrolmentIsOneAppend: an enrolment refused for any part writes
// nothing; one accepted writes the principal, each role once and a token
// that authenticates; tokens and roles revoked take effect at once.
func TestEnrolmentIsOneAppend(t *testing.T) {
	w := clerktest.NewWorld(t)
	ctx := context.Background()
	k := w.Clerk
	head := func() uint64 { n, _, _ := w.Store.Head(ctx); return n }
	before := head()
	authority := domain.Scope{{Resource: "file:**", Verbs: []domain.Verb{domain.Write}}}
	for name, e := range map[string]clerk.Enrolment{
		"unknown role":               {ID: "eve", Roles: []domain.Role{domain.RoleRequester, "wizard"}},
		"approver without authority": {ID: "eve", Roles: []domain.Role{domain.RoleRequester, domain.RoleApprover}},
		"authority without approver": {ID: "eve", Roles: []domain.Role{domain.RoleAuditor}, Authority: authority},
		"no role":                    {ID: "eve"},
		"bad id":                     {ID: "e v e", Roles: []domain.Role{domain.RoleAuditor}},
		"id taken":                   {ID: "bob", Roles: []domain.Role{domain.RoleAuditor}},
	} {
		if _, _, err := k.Enrol(ctx, w.Admin, e); err == nil {
			t.Errorf("%s: enrolled", name)
		}
	}
	if _, _, err := k.Enrol(ctx, w.Alice, clerk.Enrolment{ID: "eve", Roles: []domain.Role{domain.RoleAuditor}}); !errors.Is(err, domain.ErrForbidden) {
		t.Errorf("a requester enrolled someone: %v", err)
	}
	if _, _, err := k.EnrolAgent(ctx, w.Admin, "rogue", "r", "nobody", ""); !errors.Is(err, domain.ErrInvalidInput) {
		t.Errorf("an agent with no owner: %v", err)
	}
	if got := head(); got != before {
		t.Fatalf("refused enrolments wrote %d events", got-before)
	}

	tokenID, token, err := k.Enrol(ctx, w.Admin, clerk.Enrolment{ID: "eve", Name: "Eve",
		Roles: []domain.Role{domain.RoleApprover, domain.RoleAuditor, domain.RoleApprover}, Authority: authority})
	if err != nil {
		t.Fatal(err)
	}
	if got := head(); got != before+4 { // registered, two roles, a token
		t.Fatalf("an enrolment wrote %d events, want 4", got-before)
	}
	a, err := k.Authenticate(ctx, token)
	if err != nil || a.ID != "eve" || !a.Principal.Roles[domain.RoleApprover] || !a.Principal.Roles[domain.RoleAuditor] ||
		!reflect.DeepEqual(a.Principal.Authority, authority) || a.Principal.Tokens[tokenID] == "" {
		t.Fatalf("eve authenticates as %+v (%v)", a, err)
	}
	if err := k.RevokeRole(ctx, w.Admin, "eve", domain.RoleApprover); err != nil {
		t.Fatal(err)
	}
	if err := k.RevokeRole(ctx, w.Admin, "eve", domain.RoleApprover); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("a role revoked twice: %v", err)
	}
	if err := k.RevokeToken(ctx, w.Admin, "eve", tokenID); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Authenticate(ctx, token); !errors.Is(err, domain.ErrUnauthenticated) {
		t.Errorf("a revoked token: %v", err)
	}
	p, _ := k.Principal(ctx, "eve")
	if p.Roles[domain.RoleApprover] || p.Authority != nil || !p.Roles[domain.RoleAuditor] {
		t.Errorf("eve after the revocations: %+v", p)
	}

	keyID, key, err := k.EnrolAgent(ctx, w.Admin, "gemini-ci", "Gemini", "alice", "gemini")
	if err != nil {
		t.Fatal(err)
	}
	if a, err := k.Authenticate(ctx, key); err != nil || a.ID != "gemini-ci" {
		t.Fatalf("the new agent's key: %+v %v", a, err)
	}
	if ag, _ := k.Agent(ctx, "gemini-ci"); ag.Keys[keyID] == "" {
		t.Errorf("key %s is not the agent's: %+v", keyID, ag)
	}
}

// TestRecordsNameTheCredential: what a principal or an agent does is
// recorded with the id of the token or key they used (never the secret),
// so an approval made with a token an admin issued is told apart from one
// made with the approver's own.
func TestRecordsNameTheCredential(t *testing.T) {
	w := clerktest.NewWorld(t)
	ctx := context.Background()
	id, hash, err := w.Clerk.SubmitPlan(ctx, w.Agent, "", "alice", clerktest.Plan())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Clerk.Approve(ctx, w.Bob, id, hash, "ok"); err != nil {
		t.Fatal(err)
	}
	recs, err := w.Store.ReadStream(ctx, domain.ChangeStream(id), 0)
	if err != nil {
		t.Fatal(err)
	}
	submitted, approved := recs[0].Event.Actor, recs[len(recs)-1].Event.Actor
	if submitted.ID != w.AgentID || submitted.Credential == "" || submitted.Credential != w.Agent.Credential || !strings.HasPrefix(submitted.Credential, "key-") {
		t.Errorf("the plan was recorded as submitted by %+v, want the agent with its key's id %s", submitted, w.Agent.Credential)
	}
	if approved.ID != "bob" || approved.Credential != w.Bob.Credential || !strings.HasPrefix(approved.Credential, "tok-") {
		t.Errorf("the approval was recorded as by %+v, want bob with his token's id %s", approved, w.Bob.Credential)
	}
}
