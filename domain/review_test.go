package domain

import (
	"errors"
	"testing"
	"time"
)

// An approver whose authority is one directory level (`*`) approves a plan
// asking for every depth (`**`): Covers matches the plan pattern literally,
// and `*` matches the literal segment "**".
func TestAuthorityStarDoesNotCoverDoubleStar(t *testing.T) {
	narrow := principal("dave", RoleApprover)
	narrow.Authority = Scope{{Resource: "file:github.com/acme/api/*", Verbs: []Verb{Read, Write}}}
	p := validPlan()
	p.Scope = Scope{{Resource: "file:github.com/acme/api/**", Verbs: []Verb{Write}}}
	c := &Change{}
	fold(t, c)(SubmitPlan(c, "chg-1", agent, alice, p, t0))
	_, err := Approve(c, human(narrow), c.PlanHash, "", t0.Add(time.Hour), DefaultPolicy)
	if err == nil {
		t.Errorf("approver with authority file:github.com/acme/api/* approved file:github.com/acme/api/** (any depth)")
	}
	// and via braces
	p.Scope = Scope{{Resource: "file:github.com/acme/api/{**}", Verbs: []Verb{Write}}}
	c = &Change{}
	fold(t, c)(SubmitPlan(c, "chg-1", agent, alice, p, t0))
	if _, err := Approve(c, human(narrow), c.PlanHash, "", t0.Add(time.Hour), DefaultPolicy); err == nil {
		t.Errorf("authority .../api/* approved .../api/{**}")
	}
	if !c.Plan.Scope.Check("file:github.com/acme/api/deep/x/y.go", Write).Allowed {
		t.Log("(brace case not broader)")
	}
}

// A freeze on one repo's subtree does not stop a plan whose pattern
// reaches it through a wildcard in an earlier segment.
func TestFreezeOverlapThroughWildcards(t *testing.T) {
	f := Freezes{}
	f.Apply(FreezeDeclared{Freeze: "frz-1", Environment: "production", Scope: []string{"file:github.com/acme/api/**"}, Reason: "audit"})
	p := validPlan()
	p.Scope = Scope{{Resource: "file:github.com/acme/*/src/**", Verbs: []Verb{Write}}}
	if _, ok := f.Covering(p); !ok {
		if p.Scope.Check("file:github.com/acme/api/src/main.go", Write).Allowed {
			t.Errorf("freeze on file:github.com/acme/api/** does not cover plan file:github.com/acme/*/src/** which allows writing acme/api/src/main.go")
		}
	}
}

// Test evidence attached under plan v1 satisfies the promotion gate for a
// revised, separately-approved plan v2.
func TestEvidenceDoesNotSurviveRevision(t *testing.T) {
	c := approvedChange(t, validPlan())
	sec := session(t, c, "s1", t0.Add(12*time.Minute))
	_ = sec
	sha := "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	fold(t, c)(AttachEvidence(c, Evidence{Session: "s1", Kind: EvidenceTest, Format: "junit", SHA256: sha, Summary: EvidenceSummary{TestsPassed: 3}}, t0.Add(13*time.Minute)))
	fold(t, c)(AttachEvidence(c, Evidence{Session: "s1", Kind: EvidenceScan, Format: "sarif", SHA256: sha}, t0.Add(13*time.Minute)))
	rev := validPlan()
	rev.Method = "rewrite everything"
	fold(t, c)(SubmitPlan(c, "chg-1", agent, alice, rev, t0.Add(20*time.Minute)))
	fold(t, c)(Approve(c, human(bob), c.PlanHash, "", t0.Add(40*time.Minute), DefaultPolicy))
	_, err := RequestPromotion(c, t0.Add(41*time.Minute))
	if err == nil {
		t.Errorf("plan v2 promoted on test/scan evidence attached under plan v1")
	} else if !errors.Is(err, ErrGateFailed) {
		t.Fatal(err)
	}
}

// Revising an emergency plan restarts its approval window (SubmittedAt is
// the latest revision), so an agent can run for days without approval and
// no overdue exception is ever opened.
func TestEmergencyWindowNotResetByRevision(t *testing.T) {
	p := validPlan()
	p.Emergency = true
	c := &Change{}
	fold(t, c)(SubmitPlan(c, "chg-1", agent, alice, p, t0))
	for day := 1; day <= 3; day++ {
		p.Method = p.Method + "."
		fold(t, c)(SubmitPlan(c, "chg-1", agent, alice, p, t0.Add(time.Duration(day)*23*time.Hour)))
	}
	now := t0.Add(70 * time.Hour)
	if ev := CheckEmergency(c, "exc-x", now, DefaultPolicy); len(ev) == 0 {
		if _, err := RequestSession(c, agent, Freezes{}, SessionRequest{Session: "s9", CredentialID: "c9", Hash: "h"}, now, DefaultPolicy); err == nil {
			t.Errorf("emergency change first filed 70h ago, never approved: no overdue exception and issuance passes")
		}
	}
}
