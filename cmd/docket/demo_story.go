package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/evidence-parity/docket/domain"
	"github.com/evidence-parity/docket/domain/clerk"
)

// demoJUnit is a JUnit report as gotestsum writes it, with the given counts.
func demoJUnit(pkg string, passed, failed int) string {
	s := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="%d" failures="%d"><testsuite name="%s" tests="%d" failures="%d" skipped="0">`, passed+failed, failed, pkg, passed+failed, failed)
	for i := range passed {
		s += fmt.Sprintf(`<testcase classname="%s" name="TestCase%d"></testcase>`, pkg, i)
	}
	for i := range failed {
		s += fmt.Sprintf(`<testcase classname="%s" name="TestFails%d"><failure message="Failed">assertion failed</failure></testcase>`, pkg, i)
	}
	return s + "</testsuite></testsuites>"
}

// demoSARIF is a gosec-style SARIF log with n MEDIUM findings.
func demoSARIF(medium int) string {
	results := ""
	for i := range medium {
		if i > 0 {
			results += ","
		}
		results += `{"ruleId":"G104","level":"warning","message":{"text":"Errors unhandled"}}`
	}
	return `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"gosec","rules":[{"id":"G104","properties":{"tags":["security","MEDIUM"]}}]}},"results":[` + results + `]}]}`
}

type demoPerson struct {
	id   string
	role domain.Role
	auth domain.Scope
}

var demoPeople = []demoPerson{
	{"ada", domain.RoleAdmin, nil},
	{"alice", domain.RoleRequester, nil},
	{"dan", domain.RoleRequester, nil},
	{"bob", domain.RoleApprover, domain.Scope{
		{Resource: "file:github.com/acme/**", Verbs: []domain.Verb{domain.Read, domain.Write, domain.Delete}},
		{Resource: "cmd:**", Verbs: []domain.Verb{domain.Exec}},
		{Resource: "db:**", Verbs: []domain.Verb{domain.Migrate}},
	}},
	{"erin", domain.RoleApprover, domain.Scope{
		{Resource: "file:github.com/acme/web/**", Verbs: []domain.Verb{domain.Read, domain.Write}},
		{Resource: "file:github.com/acme/api/**", Verbs: []domain.Verb{domain.Read, domain.Write}},
		{Resource: "cmd:**", Verbs: []domain.Verb{domain.Exec}},
	}},
	{"carol", domain.RoleAuditor, nil},
}

var demoWork = []struct {
	repo, dir, objective, method string
}{
	{"api", "src/billing", "Fix rounding in invoice totals", "Use decimal arithmetic in billing.Total and add table tests"},
	{"web", "src/checkout", "Show tax on the checkout page", "Render the tax line from the quote API"},
	{"api", "src/auth", "Rotate session cookie names", "Rename the cookie and accept the old one for a week"},
	{"web", "src/search", "Debounce search requests", "Add a 200 ms debounce to the search box"},
	{"api", "src/reports", "Paginate the usage report", "Keyset pagination on the usage endpoint"},
}

// runDemo records the demo's 90 days and returns a credential per role.
func runDemo(ctx context.Context, out io.Writer, k *clerk.Clerk, clock *demoClock) (map[string]string, error) {
	sys := clerk.System
	for _, p := range demoPeople {
		if err := k.RegisterPrincipal(ctx, sys, p.id, p.id, p.id+"@acme.example"); err != nil && !errors.Is(err, domain.ErrConflict) {
			return nil, err
		}
		if err := k.GrantRole(ctx, sys, p.id, p.role, p.auth); err != nil {
			return nil, err
		}
	}
	tokens := map[string]string{}
	actors := map[string]domain.Actor{}
	for _, p := range demoPeople {
		_, tok, err := k.IssueToken(ctx, sys, p.id)
		if err != nil {
			return nil, err
		}
		if actors[p.id], err = k.Authenticate(ctx, tok); err != nil {
			return nil, err
		}
		tokens[p.id] = tok
	}
	agentIDs := []string{"claude-ci", "gemini-bot", "codex-runner"}
	owners := []string{"alice", "dan", "alice"}
	agents := map[string]domain.Actor{}
	keys := map[string]string{}
	for i, id := range agentIDs {
		if err := k.RegisterAgent(ctx, sys, id, id, owners[i], []string{"claude-code", "gemini", "codex"}[i]); err != nil && !errors.Is(err, domain.ErrConflict) {
			return nil, err
		}
		_, key, err := k.IssueAgentKey(ctx, sys, id)
		if err != nil {
			return nil, err
		}
		if agents[id], err = k.Authenticate(ctx, key); err != nil {
			return nil, err
		}
		keys[id] = key
	}

	const n = 50
	counts := map[string]int{}
	for i := range n {
		w := demoWork[i%len(demoWork)]
		agentID := agentIDs[i%len(agentIDs)]
		agent := agents[agentID]
		requester := []string{"alice", "dan"}[i%2]
		approver := actors[[]string{"bob", "erin"}[i%2]]
		repo := "github.com/acme/" + w.repo
		plan := domain.Plan{
			Objective: w.objective, Method: w.method,
			Scope: domain.Scope{
				{Resource: "file:" + repo + "/" + w.dir + "/**", Verbs: []domain.Verb{domain.Read, domain.Write}},
				{Resource: "cmd:go test *", Verbs: []domain.Verb{domain.Exec}},
			},
			TestApproach: "go test ./... with new cases for the change",
			BackoutPath:  "git revert the merge commit and redeploy the previous tag",
			Environment:  "production", Risk: []string{"low", "medium"}[i%2],
			Emergency: i == 13,
		}
		id, hash, err := k.SubmitPlan(ctx, agent, "", requester, plan)
		if err != nil {
			return nil, fmt.Errorf("change %d: %w", i, err)
		}
		uses := []domain.ResourceUse{
			{Resource: "file:" + repo + "/" + w.dir + "/main.go", Verb: domain.Write},
			{Resource: "cmd:go test ./" + w.dir + "/...", Verb: domain.Exec},
		}
		var ses clerk.Session
		if plan.Emergency {
			// The fix goes in at once under an emergency credential; the
			// approval comes 30 hours later, past the window, and opens
			// the overdue exception.
			if ses, err = k.RequestSession(ctx, agent, id); err != nil {
				return nil, err
			}
			for _, u := range uses {
				clock.advance(time.Minute)
				if _, err := k.RecordAction(ctx, ses.Credential, "tool_call", []domain.ResourceUse{u}, "", "ok"); err != nil {
					return nil, fmt.Errorf("change %d: emergency fix: %w", i, err)
				}
			}
			if err := k.EndSession(ctx, ses.Credential); err != nil {
				return nil, err
			}
			clock.advance(30 * time.Hour)
			counts["emergency approved late"]++
		}
		clock.advance(time.Duration(10+i%50) * time.Minute)
		if _, err := k.ViewPlan(ctx, approver, id); err != nil {
			return nil, err
		}
		if i == 7 || i == 33 {
			clock.advance(4 * time.Second) // a rubber stamp
			counts["rubber-stamp approval"]++
		} else {
			clock.advance(time.Duration(5+i%20) * time.Minute)
		}
		if err := k.Approve(ctx, approver, id, hash, "Scope and backout look right."); err != nil {
			return nil, fmt.Errorf("change %d: %w", i, err)
		}
		if plan.Emergency {
			ses = clerk.Session{} // the follow-up runs under a session of its own
		}
		if i == 21 {
			frz, err := k.DeclareFreeze(ctx, actors["bob"], "production", nil, "quarter-end close")
			if err != nil {
				return nil, err
			}
			if _, err := k.RequestSession(ctx, agent, id); !errors.Is(err, domain.ErrFrozen) {
				return nil, fmt.Errorf("change %d: issuance during a freeze: %v", i, err)
			}
			counts["issuance refused during a freeze"]++
			clock.advance(20 * time.Hour)
			if err := k.LiftFreeze(ctx, actors["bob"], frz); err != nil {
				return nil, err
			}
		}
		if ses.Credential == "" {
			if ses, err = k.RequestSession(ctx, agent, id); err != nil {
				return nil, fmt.Errorf("change %d: %w", i, err)
			}
		}
		clock.advance(3 * time.Minute)
		if i == 5 || i == 30 {
			uses = append(uses, domain.ResourceUse{Resource: "file:" + repo + "/" + w.dir + "/../../deploy/prod.env", Verb: domain.Read})
		}
		for _, u := range uses {
			clock.advance(time.Minute)
			if _, err := k.RecordAction(ctx, ses.Credential, "tool_call", []domain.ResourceUse{u}, "", "ok"); errors.Is(err, domain.ErrOutOfScope) {
				counts["deviation revoked and resolved"]++
				c, err := k.Change(ctx, id)
				if err != nil {
					return nil, err
				}
				for xid := range c.Exceptions {
					clock.advance(2 * time.Hour)
					if err := k.ResolveException(ctx, actors["bob"], id, xid, domain.DispositionRemediated, "The read was denied before it ran; the environment file was not touched."); err != nil {
						return nil, err
					}
				}
				if ses, err = k.RequestSession(ctx, agent, id); err != nil {
					return nil, err
				}
			} else if err != nil {
				return nil, fmt.Errorf("change %d: %w", i, err)
			}
		}
		if i >= n-3 {
			counts["still in progress"]++
			clock.advance(30 * time.Minute)
			continue // the last few are still being worked on
		}
		failing := 0
		if i == 17 {
			failing = 2
		}
		if _, err := k.AttachEvidence(ctx, ses.Credential, domain.EvidenceTest, "junit", []byte(demoJUnit(repo+"/"+w.dir, 12+i%7, failing))); err != nil {
			return nil, err
		}
		if _, err := k.AttachEvidence(ctx, ses.Credential, domain.EvidenceScan, "sarif", []byte(demoSARIF(i%3))); err != nil {
			return nil, err
		}
		if failing > 0 {
			if err := k.RequestPromotion(ctx, agent, id); !errors.Is(err, domain.ErrGateFailed) {
				return nil, fmt.Errorf("change %d: promotion with failing tests: %v", i, err)
			}
			counts["promotion blocked by failing tests, then passed"]++
			clock.advance(40 * time.Minute)
			if _, err := k.AttachEvidence(ctx, ses.Credential, domain.EvidenceTest, "junit", []byte(demoJUnit(repo+"/"+w.dir, 14, 0))); err != nil {
				return nil, err
			}
		}
		if err := k.EndSession(ctx, ses.Credential); err != nil {
			return nil, err
		}
		if plan.Emergency {
			c, _ := k.Change(ctx, id)
			for xid, x := range c.Exceptions {
				if !x.Resolved {
					if err := k.ResolveException(ctx, actors["bob"], id, xid, domain.DispositionAccepted, "Incident bridge approved the fix verbally; recorded late."); err != nil {
						return nil, err
					}
				}
			}
		}
		if err := k.RequestPromotion(ctx, agent, id); err != nil {
			return nil, fmt.Errorf("change %d: %w", i, err)
		}
		counts["promoted"]++
		if i == 40 {
			clock.advance(3 * time.Hour)
			if err := k.RollBack(ctx, actors["erin"], id, "p99 latency doubled after the deploy"); err != nil {
				return nil, err
			}
			counts["rolled back"]++
		}
		clock.advance(time.Duration(30+i%24) * time.Hour)
	}
	fmt.Fprintf(out, "seeded %d changes by %d agents:", n, len(agentIDs))
	for _, k := range []string{"promoted", "rolled back", "still in progress", "deviation revoked and resolved", "rubber-stamp approval", "emergency approved late", "issuance refused during a freeze", "promotion blocked by failing tests, then passed"} {
		fmt.Fprintf(out, "\n  %-50s %d", k, counts[k])
	}
	fmt.Fprintln(out)
	return map[string]string{
		"admin": tokens["ada"], "auditor": tokens["carol"], "approver": tokens["bob"], "requester": tokens["alice"], "agent": keys["claude-ci"],
	}, nil
}
