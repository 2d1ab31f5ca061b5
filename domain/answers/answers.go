// Package answers computes the change view: the five CC8.1 answers for one
// change, each with attribute-level results that cite the events proving
// them, folded from the change stream's records alone. It is pure (no I/O):
// the read models (projections) keep its result, and offline verification
// of an evidence binder (evidence) recomputes it from the signed events.
package answers

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/evidence-parity/docket/domain"
	"github.com/evidence-parity/docket/ledger"
)

// Results of an attribute.
const (
	Pass      = "pass"
	Fail      = "fail"
	Exception = "exception" // failed, but handled by a resolved exception
	Pending   = "pending"   // not decided yet (the change is not promoted)
)

// Attribute is one checked fact behind an answer.
type Attribute struct {
	Name   string   `json:"name"`
	Result string   `json:"result"`
	Detail string   `json:"detail"`
	Events []string `json:"events,omitempty"` // ids of the events that prove it
}

// Answer is one of the five CC8.1 answers.
type Answer struct {
	Question   string      `json:"question"`
	Answer     string      `json:"answer"`
	Result     string      `json:"result"` // the worst of its attributes
	Attributes []Attribute `json:"attributes"`
}

// ChangeView is everything the portal, the API and the binder show about a
// change, computed from its stream alone.
type ChangeView struct {
	ID          string          `json:"id"`
	Status      string          `json:"status"`
	Version     int             `json:"version"`
	PlanHash    string          `json:"planHash"`
	Plan        domain.Plan     `json:"plan"`
	Agent       string          `json:"agent"`
	RequestedBy string          `json:"requestedBy"`
	Approver    string          `json:"approver,omitempty"`
	SubmittedAt time.Time       `json:"submittedAt"`
	ApprovedAt  *time.Time      `json:"approvedAt,omitempty"`
	PromotedAt  *time.Time      `json:"promotedAt,omitempty"`
	Review      *domain.Review  `json:"review,omitempty"`
	Sessions    []SessionView   `json:"sessions"`
	Actions     int             `json:"actions"`
	OutOfScope  int             `json:"outOfScope"`
	Exceptions  []ExceptionView `json:"exceptions"`
	Unresolved  int             `json:"unresolved"`
	Answers     []Answer        `json:"answers"`
	// Position is the log position of the change's last event.
	Position uint64 `json:"position"`
}

// SessionView is one agent session of a change and its credential.
type SessionView struct {
	ID           string    `json:"id"`
	Agent        string    `json:"agent"`
	CredentialID string    `json:"credentialId"`
	PlanHash     string    `json:"planHash"`
	IssuedAt     time.Time `json:"issuedAt"`
	ExpiresAt    time.Time `json:"expiresAt"`
	Revoked      bool      `json:"revoked"`
	Ended        bool      `json:"ended"`
	Actions      int       `json:"actions"`
}

// ExceptionView is one exception of a change.
type ExceptionView struct {
	ID          string `json:"id"`
	Kind        string `json:"kind"`
	Session     string `json:"session,omitempty"`
	Reason      string `json:"reason"`
	Resolved    bool   `json:"resolved"`
	Disposition string `json:"disposition,omitempty"`
}

// facts collects, while folding, the events that prove each fact.
type facts struct {
	submitted, approved, firstAction, promoted, issuance, promotion string
	approvalTime, firstActionTime                                   time.Time
	actions                                                         int
	outOfScope                                                      []string
	resolved                                                        map[string]string // exception id → resolving event id
	opened                                                          map[string]string
	evidence                                                        map[domain.EvidenceKind]string
	issuanceChecks, promotionChecks                                 []domain.Check
	promotedAt                                                      time.Time
	frozenOut                                                       []string // issuances refused for a freeze
}

// Decoded is a record with its domain event decoded (Err if that failed).
type Decoded struct {
	ledger.Record
	Domain domain.Event
	Err    error
}

// Decode decodes the domain events of records.
func Decode(recs []ledger.Record) []Decoded {
	out := make([]Decoded, len(recs))
	for i, r := range recs {
		out[i].Record = r
		out[i].Domain, out[i].Err = domain.Decode(r.Event.Type, r.Event.Data)
	}
	return out
}

// BuildChangeView folds a change stream's records into its view. The
// approver's authority is checked against the authority the approval
// records, with domain.Scope's own matching (the domain refused any
// approval it did not cover; a binder's verifier recomputes the result
// with the same matching, so a change to it is a change to the answers).
func BuildChangeView(recs []ledger.Record) (*ChangeView, error) {
	return BuildDecoded(Decode(recs))
}

// BuildDecoded is BuildChangeView over records decoded already.
func BuildDecoded(recs []Decoded) (*ChangeView, error) {
	b := NewBuilder()
	for _, d := range recs {
		b.Add(d)
	}
	return b.View()
}

// Builder folds a change stream's records one at a time, so a view can be
// taken after each batch without folding the stream again from its start:
// View after Add of a stream's first n records is BuildDecoded of them.
type Builder struct {
	c    domain.Change
	f    facts
	last uint64
	err  error // the first record that could not be decoded
}

// NewBuilder returns a Builder of an empty stream.
func NewBuilder() *Builder {
	return &Builder{f: facts{resolved: map[string]string{}, opened: map[string]string{}, evidence: map[domain.EvidenceKind]string{}}}
}

// Add folds the stream's next record. After a record that failed to
// decode, the view is that failure, whatever follows.
func (b *Builder) Add(d Decoded) {
	if b.err != nil {
		return
	}
	r, e := d.Record, d.Domain
	if d.Err != nil {
		b.err = fmt.Errorf("position %d: %w", r.Position, d.Err)
		return
	}
	c, f := &b.c, &b.f
	c.Apply(e)
	b.last = r.Position
	id := r.Event.ID
	switch e := e.(type) {
	case domain.PlanSubmitted:
		f.submitted, f.approved, f.approvalTime = id, "", time.Time{}
	case domain.PlanApproved:
		if e.PlanHash == c.PlanHash {
			f.approved, f.approvalTime = id, e.At
		}
	case domain.ActionRecorded:
		if f.firstAction == "" {
			f.firstAction, f.firstActionTime = id, e.At
		}
		f.actions++
		if !e.InScope {
			f.outOfScope = append(f.outOfScope, id)
		}
	case domain.ExceptionOpened:
		f.opened[e.Exception] = id
	case domain.ExceptionResolved:
		f.resolved[e.Exception] = id
	case domain.EvidenceAttached:
		f.evidence[e.Kind] = id
	case domain.VerificationRecorded:
		if e.Stage == domain.StageIssuance && e.Passed {
			f.issuance, f.issuanceChecks = id, e.Checks
		}
		if ch, ok := checkOf(e.Checks, "no_freeze"); ok && e.Stage == domain.StageIssuance && !ch.Passed {
			f.frozenOut = append(f.frozenOut, id)
		}
		if e.Stage == domain.StagePromotion {
			f.promotion, f.promotionChecks = id, e.Checks
		}
	case domain.ChangePromoted:
		f.promoted, f.promotedAt = id, e.At
	}
}

// View returns the view of the records added so far. It changes nothing:
// more records may be added after it.
func (b *Builder) View() (*ChangeView, error) {
	if b.err != nil {
		return nil, b.err
	}
	c, f, last := &b.c, &b.f, b.last
	if !c.Exists() {
		return nil, fmt.Errorf("%w: the stream has no plan", domain.ErrNotFound)
	}
	v := &ChangeView{ID: c.ID, Status: c.Status(), Version: c.Version, PlanHash: c.PlanHash, Plan: c.Plan, Agent: c.Agent,
		RequestedBy: c.RequestedBy, SubmittedAt: c.SubmittedAt, Actions: f.actions,
		OutOfScope: len(f.outOfScope), Position: last, Sessions: []SessionView{}, Exceptions: []ExceptionView{}}
	for _, s := range c.Sessions {
		v.Sessions = append(v.Sessions, SessionView{ID: s.ID, Agent: s.Agent, CredentialID: s.CredentialID, PlanHash: s.PlanHash,
			IssuedAt: s.IssuedAt, ExpiresAt: s.ExpiresAt, Revoked: s.Revoked, Ended: s.Ended, Actions: s.Actions})
	}
	slices.SortFunc(v.Sessions, func(a, b SessionView) int { return strings.Compare(a.ID, b.ID) })
	for _, x := range c.Exceptions {
		if !x.Resolved {
			v.Unresolved++
		}
		v.Exceptions = append(v.Exceptions, ExceptionView{ID: x.ID, Kind: string(x.Kind), Session: x.Session, Reason: x.Reason,
			Resolved: x.Resolved, Disposition: string(x.Disposition)})
	}
	slices.SortFunc(v.Exceptions, func(a, b ExceptionView) int { return strings.Compare(a.ID, b.ID) })
	if c.Approval != nil {
		v.Approver = c.Approval.Approver
		t := c.Approval.At
		v.ApprovedAt = &t
		rv := c.Approval.Review
		v.Review = &rv
	}
	if c.Promoted {
		t := f.promotedAt
		v.PromotedAt = &t
	}
	v.Answers = answers(c, f)
	return v, nil
}

func attr(name string, ok bool, detail string, events ...string) Attribute {
	a := Attribute{Name: name, Result: Fail, Detail: detail}
	if ok {
		a.Result = Pass
	}
	for _, e := range events {
		if e != "" {
			a.Events = append(a.Events, e)
		}
	}
	return a
}

// approverAuthority checks the plan's scope against the authority the
// approval records. Approvals recorded before the authority was kept with
// them pass on the clerk's check at the time, and say so.
func approverAuthority(a *domain.PlanApproved, plan domain.Scope, approved string) Attribute {
	if a.Authority == nil {
		return attr("approver_authority", true, "checked when approved; this approval does not record the authority", approved)
	}
	if r, ok := a.Authority.Uncovered(plan); ok {
		return attr("approver_authority", false, fmt.Sprintf("%s's authority does not cover %s %v", a.Approver, r.Resource, r.Verbs), approved)
	}
	return attr("approver_authority", true, fmt.Sprintf("%s's authority (%d rule(s)) covers every rule of the plan", a.Approver, len(a.Authority)), approved)
}

// checkOf finds a gate check by name.
func checkOf(checks []domain.Check, name string) (domain.Check, bool) {
	for _, c := range checks {
		if c.Name == name {
			return c, true
		}
	}
	return domain.Check{}, false
}

func answers(c *domain.Change, f *facts) []Answer {
	// 1. Who authorized it?
	var auth []Attribute
	if c.Approval != nil {
		a := c.Approval
		before := f.firstAction == "" || !f.firstActionTime.Before(a.At)
		detail := "approved at " + a.At.UTC().Format(time.RFC3339)
		if f.firstAction != "" {
			detail += ", first action at " + f.firstActionTime.UTC().Format(time.RFC3339)
		}
		auth = append(auth,
			attr("approved_before_first_action", before, detail, f.approved, f.firstAction),
			attr("approver_not_requester", a.Approver != c.RequestedBy, fmt.Sprintf("approver %s, requested by %s", a.Approver, c.RequestedBy), f.approved, f.submitted),
			approverAuthority(a, c.Plan.Scope, f.approved),
			attr("approver_authenticated", a.AuthMethod != "", "authenticated by "+a.AuthMethod, f.approved),
			reviewDepth(a.Review, f.approved),
		)
		if !before && c.Plan.Emergency {
			auth[0].Result, auth[0].Detail = Exception, "emergency change: "+detail
		}
	} else {
		auth = append(auth, attr("approved", false, "no approval of plan "+short(c.PlanHash), f.submitted))
	}
	if ch, ok := checkOf(f.issuanceChecks, "no_freeze"); ok {
		// The gate issues no credential under a freeze, so this passes;
		// requests the freeze refused are cited with it.
		at := attr("no_freeze_at_issuance", ch.Passed, ch.Detail, f.issuance)
		if n := len(f.frozenOut); n > 0 {
			at.Detail += fmt.Sprintf("; %d earlier request(s) refused during a freeze", n)
			at.Events = append(slices.Clone(f.frozenOut), at.Events...)
		}
		auth = append(auth, at)
	} else if n := len(f.frozenOut); n > 0 {
		auth = append(auth, Attribute{Name: "no_freeze_at_issuance", Result: Pending,
			Detail: fmt.Sprintf("%d request(s) refused during a freeze; no session issued since", n), Events: slices.Clone(f.frozenOut)})
	}
	who := "nobody yet"
	if c.Approval != nil {
		who = c.Approval.Approver
	}

	// 2. What was the plan?
	complete := c.Plan.Complete()
	plan := []Attribute{
		attr("plan_complete", complete == nil, errText(complete, "objective, method, scope, test approach and backout path"), f.submitted),
		attr("approval_bound_to_plan_hash", c.Approval != nil && c.Approval.PlanHash == c.PlanHash, "plan "+short(c.PlanHash)+fmt.Sprintf(" version %d", c.Version), f.submitted, f.approved),
	}

	// 3. Who implemented it?
	impl := []Attribute{
		attr("implemented_by_agent_under_session_credential", len(c.Sessions) > 0, fmt.Sprintf("agent %s, %d sessions, %d actions", c.Agent, len(c.Sessions), f.actions), f.firstAction),
	}
	inScope := attr("every_action_in_scope", len(f.outOfScope) == 0, fmt.Sprintf("%d of %d actions out of scope", len(f.outOfScope), f.actions), f.outOfScope...)
	if len(f.outOfScope) > 0 {
		open := 0
		for id, x := range c.Exceptions {
			if x.Kind == domain.ExceptionDeviation {
				inScope.Events = append(inScope.Events, f.opened[id])
				if x.Resolved {
					inScope.Events = append(inScope.Events, f.resolved[id])
				} else {
					open++
				}
			}
		}
		if open == 0 {
			inScope.Result = Exception
			inScope.Detail += "; every deviation's exception resolved"
		} else {
			inScope.Detail += fmt.Sprintf("; %d deviation exceptions unresolved", open)
		}
	}
	impl = append(impl, inScope)

	// 4. Was it tested?
	tested := []Attribute{gateAttr("tests_passed", f, "no test evidence"), gateAttr("scan_clean", f, "no vulnerability scan")}

	// 5. What is the backout path?
	backout := []Attribute{attr("backout_path_present", strings.TrimSpace(c.Plan.BackoutPath) != "", c.Plan.BackoutPath, f.submitted)}

	return []Answer{
		answer("Who authorized the change?", who, auth),
		answer("What was the plan?", c.Plan.Objective, plan),
		answer("Who implemented it?", "agent "+c.Agent+" (requested by "+c.RequestedBy+")", impl),
		answer("Was it tested?", testedSummary(c), tested),
		answer("What is the backout path?", c.Plan.BackoutPath, backout),
	}
}

func reviewDepth(r domain.Review, ev string) Attribute {
	a := attr("review_depth", !r.RubberStamp, fmt.Sprintf("%.0fs from first view to approval for a plan of %d bytes (expected at least %.0fs); comment %v",
		r.DwellSeconds, r.PlanSize, r.MinSeconds, r.CommentPresent), ev)
	if r.RubberStamp {
		a.Detail = "rubber-stamp risk: " + a.Detail
	}
	return a
}

// gateAttr reports a promotion-gate check, or pending before the gate ran.
func gateAttr(name string, f *facts, none string) Attribute {
	ch, ok := checkOf(f.promotionChecks, name)
	if !ok {
		return Attribute{Name: name, Result: Pending, Detail: "promotion not requested yet"}
	}
	kind := domain.EvidenceTest
	if name == "scan_clean" {
		kind = domain.EvidenceScan
	}
	return attr(name, ch.Passed, ch.Detail, f.promotion, f.evidence[kind])
}

func testedSummary(c *domain.Change) string {
	var parts []string
	for i := len(c.Evidence) - 1; i >= 0; i-- {
		e := c.Evidence[i]
		switch {
		case e.Kind == domain.EvidenceTest && !strings.Contains(strings.Join(parts, ""), "tests"):
			parts = append(parts, fmt.Sprintf("tests: %d passed, %d failed", e.Summary.TestsPassed, e.Summary.TestsFailed))
		case e.Kind == domain.EvidenceScan && !strings.Contains(strings.Join(parts, ""), "scan"):
			parts = append(parts, fmt.Sprintf("scan: %d critical, %d high", e.Summary.Critical, e.Summary.High))
		}
	}
	if len(parts) == 0 {
		return "no evidence"
	}
	return strings.Join(parts, "; ")
}

func answer(q, a string, attrs []Attribute) Answer {
	res := Pass
	rank := map[string]int{Pass: 0, Exception: 1, Pending: 2, Fail: 3}
	for _, at := range attrs {
		if rank[at.Result] > rank[res] {
			res = at.Result
		}
	}
	return Answer{Question: q, Answer: a, Result: res, Attributes: attrs}
}

func errText(err error, ok string) string {
	if err != nil {
		return err.Error()
	}
	return ok
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
