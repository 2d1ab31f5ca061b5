package domain

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Decisions: state + command + clock → events, or a typed error. A
// decision that records a refusal (a failed gate, an out-of-scope action, a
// dead credential) returns both: the events MUST be appended, and the error
// returned to the caller after.

// ActorKind says whether a human or an agent is acting.
type ActorKind string

// Actor kinds.
const (
	ActorHuman ActorKind = "human"
	ActorAgent ActorKind = "agent"
)

// Actor is who issues a command, as the boundary authenticated them.
type Actor struct {
	Kind ActorKind
	ID   string
	// AuthMethod is how they authenticated ("token", "oidc", "agent-key",
	// "session"); empty means not authenticated.
	AuthMethod string
	// Credential is the id of the token or key they authenticated with
	// (never the secret), recorded with what they do; empty for other
	// methods.
	Credential string
	// Principal is the human's folded identity (humans only).
	Principal *Principal
}

func (a Actor) human() (*Principal, error) {
	if a.Kind != ActorHuman || a.Principal == nil {
		return nil, errorf(ErrForbidden, "only a human may do this")
	}
	if a.AuthMethod == "" {
		return nil, ErrUnauthenticated
	}
	return a.Principal, nil
}

// SubmitPlan files a plan, or a revision of one (a new version with a new
// hash). A revision voids the earlier approval (approvals bind to a hash)
// and revokes every live credential issued for the earlier plan.
func SubmitPlan(c *Change, id string, agent *Agent, requester *Principal, p Plan, now time.Time) ([]Event, error) {
	if agent == nil || agent.ID == "" {
		return nil, errorf(ErrNotFound, "no such agent")
	}
	if agent.Retired {
		return nil, errorf(ErrForbidden, "agent %s is retired", agent.ID)
	}
	if requester == nil || requester.ID == "" {
		return nil, errorf(ErrInvalidInput, "a plan needs the human who requested the change")
	}
	if !requester.Roles[RoleRequester] && !requester.Roles[RoleAdmin] {
		return nil, errorf(ErrForbidden, "%s may not request changes", requester.ID)
	}
	if strings.TrimSpace(p.Objective) == "" {
		return nil, errorf(ErrInvalidInput, "a plan needs an objective")
	}
	hash := p.Hash()
	version := 1
	var events []Event
	if c.Exists() {
		if c.Promoted || c.RolledBack {
			return nil, ErrPromoted
		}
		if hash == c.PlanHash {
			return nil, errorf(ErrConflict, "the revision is identical to the current plan")
		}
		if agent.ID != c.Agent {
			return nil, errorf(ErrForbidden, "only the change's agent %s may revise its plan", c.Agent)
		}
		version = c.Version + 1
	}
	events = append(events, PlanSubmitted{Change: id, Version: version, Plan: p, PlanHash: hash, RequestedBy: requester.ID, Agent: agent.ID, At: now})
	if c.Exists() {
		for _, s := range sortedSessions(c) {
			if !s.Revoked && !s.Ended {
				events = append(events, CredentialRevoked{Change: id, Session: s.ID, CredentialID: s.CredentialID, Reason: "plan revised: credentials bind to the plan hash", At: now})
			}
		}
	}
	return events, nil
}

// ViewPlan records an approver opening the plan, the first time only.
func ViewPlan(c *Change, a Actor, now time.Time) ([]Event, error) {
	p, err := a.human()
	if err != nil {
		return nil, err
	}
	if !c.Exists() {
		return nil, errorf(ErrNotFound, "no such change")
	}
	if !p.Roles[RoleApprover] {
		return nil, nil // only approvers' views count for review depth
	}
	if _, seen := c.Views[p.ID]; seen {
		return nil, nil
	}
	return []Event{PlanViewed{Change: c.ID, PlanHash: c.PlanHash, Approver: p.ID, At: now}}, nil
}

// decideChecks are the rules approval and rejection share.
func decideChecks(c *Change, a Actor, planHash string) (*Principal, error) {
	if a.Kind == ActorAgent {
		return nil, ErrAgentCannotApprove
	}
	p, err := a.human()
	if err != nil {
		return nil, err
	}
	if !p.Roles[RoleApprover] {
		return nil, ErrNotApprover
	}
	if !c.Exists() {
		return nil, errorf(ErrNotFound, "no such change")
	}
	if c.Promoted || c.RolledBack {
		return nil, ErrPromoted
	}
	if planHash != c.PlanHash {
		return nil, ErrStalePlan
	}
	if c.Approval != nil || c.Rejection != nil {
		return nil, ErrAlreadyDecided
	}
	if p.ID == c.RequestedBy {
		return nil, ErrSelfApproval
	}
	return p, nil
}

// review computes the review-depth facts of a decision made now.
func review(c *Change, approver, comment string, now time.Time, pol Policy) (Review, []Event) {
	r := Review{PlanSize: c.Plan.Size(), CommentPresent: strings.TrimSpace(comment) != ""}
	var events []Event
	first, viewed := c.Views[approver]
	if !viewed {
		// Decided without opening the plan through Docket: zero dwell.
		first = now
		events = append(events, PlanViewed{Change: c.ID, PlanHash: c.PlanHash, Approver: approver, At: now})
	}
	r.Viewed = viewed
	r.DwellSeconds = math.Max(0, now.Sub(first).Seconds())
	if pol.ReviewBytesPerSecond > 0 {
		r.MinSeconds = float64(r.PlanSize) / pol.ReviewBytesPerSecond
	}
	r.RubberStamp = r.DwellSeconds < r.MinSeconds
	return r, events
}

// Approve binds an approval to the plan hash the approver reviewed. The
// approver is an authenticated human with the approver role whose
// authority covers every scope rule, and did not request the change.
func Approve(c *Change, a Actor, planHash, comment string, now time.Time, pol Policy) ([]Event, error) {
	p, err := decideChecks(c, a, planHash)
	if err != nil {
		return nil, err
	}
	if r, ok := p.Authority.Uncovered(c.Plan.Scope); ok {
		return nil, fmt.Errorf("%w: %s %s", ErrNoAuthority, r.Resource, joinVerbs(r.Verbs))
	}
	rv, events := review(c, p.ID, comment, now, pol)
	return append(events, PlanApproved{Change: c.ID, PlanHash: planHash, Approver: p.ID, AuthMethod: a.AuthMethod, Comment: comment, At: now, Review: rv,
		Authority: p.Authority.Clone()}), nil
}

// Reject records an approver's rejection of the plan hash.
func Reject(c *Change, a Actor, planHash, comment string, now time.Time, pol Policy) ([]Event, error) {
	p, err := decideChecks(c, a, planHash)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(comment) == "" {
		return nil, errorf(ErrInvalidInput, "a rejection needs a comment")
	}
	rv, events := review(c, p.ID, comment, now, pol)
	return append(events, PlanRejected{Change: c.ID, PlanHash: planHash, Approver: p.ID, AuthMethod: a.AuthMethod, Comment: comment, At: now, Review: rv}), nil
}

// SessionRequest asks for a session credential; the caller generates the
// ids and the secret, and passes only the secret's hash.
type SessionRequest struct {
	Session      string
	CredentialID string
	Hash         string
}

// RequestSession is the issuance gate. It always records
// VerificationRecorded(issuance) with every check, and CredentialIssued
// only when all pass.
func RequestSession(c *Change, agent *Agent, freezes Freezes, req SessionRequest, now time.Time, pol Policy) ([]Event, error) {
	if !c.Exists() {
		return nil, errorf(ErrNotFound, "no such change")
	}
	if agent == nil || agent.ID != c.Agent {
		return nil, errorf(ErrForbidden, "only the change's agent %s may request a session", c.Agent)
	}
	if _, dup := c.Sessions[req.Session]; dup {
		return nil, errorf(ErrConflict, "session %s exists", req.Session)
	}
	var checks []Check
	add := func(name string, ok bool, detail string) {
		checks = append(checks, Check{Name: name, Passed: ok, Detail: detail})
	}

	if err := c.Plan.Complete(); err != nil {
		add("plan_complete", false, err.Error())
	} else {
		add("plan_complete", true, "objective, method, scope, test approach and backout path present; scope valid")
	}
	due := c.FirstSubmittedAt.Add(pol.EmergencyWindow)
	switch {
	case c.Approval != nil:
		add("plan_approved", true, fmt.Sprintf("approved by %s for plan %s", c.Approval.Approver, short(c.PlanHash)))
		add("approver_authenticated", c.Approval.AuthMethod != "", "authenticated by "+c.Approval.AuthMethod)
	case c.Rejection != nil:
		add("plan_approved", false, "rejected by "+c.Rejection.Approver)
		add("approver_authenticated", false, "no approval")
	case c.Plan.Emergency && now.Before(due):
		add("plan_approved", true, "emergency change: approval due by "+due.UTC().Format(time.RFC3339))
		add("approver_authenticated", true, "emergency change: checked when the approval is recorded")
	case c.Plan.Emergency:
		add("plan_approved", false, "emergency approval overdue since "+due.UTC().Format(time.RFC3339))
		add("approver_authenticated", false, "no approval")
	default:
		add("plan_approved", false, "plan "+short(c.PlanHash)+" is not approved")
		add("approver_authenticated", false, "no approval")
	}
	frozen := false
	if f, ok := freezes.Covering(c.Plan); ok {
		frozen = true
		add("no_freeze", false, fmt.Sprintf("freeze %s on %s: %s", f.Freeze, f.Environment, f.Reason))
	} else {
		add("no_freeze", true, "no freeze covers environment "+c.Plan.Environment)
	}
	add("agent_active", !agent.Retired, "agent "+agent.ID)
	add("change_open", !c.Promoted && !c.RolledBack, "status "+c.Status())

	passed := true
	for _, ch := range checks {
		passed = passed && ch.Passed
	}
	events := []Event{VerificationRecorded{Change: c.ID, Stage: StageIssuance, Passed: passed, Checks: checks, Session: req.Session, At: now}}
	if !passed {
		cat := ErrGateFailed
		if frozen {
			cat = ErrFrozen
		}
		return events, errorf(cat, "issuance refused: %s", failed(checks))
	}
	expires := now.Add(pol.CredentialTTL)
	if c.Approval == nil && expires.After(due) {
		expires = due // never beyond the emergency window
	}
	return append(events, CredentialIssued{Change: c.ID, Session: req.Session, Agent: agent.ID, CredentialID: req.CredentialID,
		Hash: req.Hash, PlanHash: c.PlanHash, IssuedAt: now, ExpiresAt: expires}), nil
}

func failed(checks []Check) string {
	var out []string
	for _, c := range checks {
		if !c.Passed {
			out = append(out, c.Name+" ("+c.Detail+")")
		}
	}
	return strings.Join(out, "; ")
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// Action is an action an agent reports before it runs.
type Action struct {
	Session string
	Secret  string // the session credential as presented
	Kind    string // e.g. "edit", "bash", "web_fetch"
	Uses    []ResourceUse
	Command string
	Outcome string
	// Exception is the id to give the exception a deviation opens.
	Exception string
	// AgentRetired says the session's agent was retired: its credentials
	// die with it.
	AgentRetired bool
}

// CheckSession reports whether a session credential is live for the
// change, without deciding anything; callers use it to refuse work (such
// as storing an evidence file) before the decision that records it.
func CheckSession(c *Change, session, secret string, now time.Time, agentRetired bool) error {
	if !c.Exists() {
		return ErrCredentialDead
	}
	if _, why, err := liveSession(c, session, secret, now, agentRetired); err != nil {
		if why == "" {
			return err
		}
		return fmt.Errorf("%w: %s", err, why)
	}
	return nil
}

// IssuedSession returns the session of c that a credential's secret was
// issued for, live or dead, or nil if it matches none (unknown or forged).
func IssuedSession(c *Change, session, secret string) *Session {
	s := c.Sessions[session]
	if s == nil || !SecretMatches(secret, s.Hash) {
		return nil
	}
	return s
}

// liveSession authenticates a session credential against the change. A
// secret that matches no session is refused without a record (it proves
// nothing); a real credential that is dead is refused with ActionRefused.
func liveSession(c *Change, session, secret string, now time.Time, agentRetired bool) (*Session, string, error) {
	s := IssuedSession(c, session, secret)
	if s == nil {
		return nil, "", ErrCredentialDead
	}
	switch {
	case agentRetired:
		return s, "agent " + s.Agent + " is retired", ErrCredentialDead
	case s.Revoked:
		return s, "credential revoked", ErrCredentialDead
	case s.Ended:
		return s, "session ended", ErrCredentialDead
	case !now.Before(s.ExpiresAt):
		return s, "credential expired at " + s.ExpiresAt.UTC().Format(time.RFC3339), ErrCredentialDead
	case s.PlanHash != c.PlanHash:
		return s, "the plan was revised after the credential was issued", ErrCredentialDead
	case c.Promoted || c.RolledBack:
		return s, "the change is closed (" + c.Status() + ")", ErrCredentialDead
	}
	return s, "", nil
}

// RecordAction checks an action against the approved scope before it is
// accepted. In scope: ActionRecorded. Out of scope: ActionRecorded,
// DeviationDetected, CredentialRevoked and ExceptionOpened, to be appended
// together, and an error wrapping ErrOutOfScope.
func RecordAction(c *Change, a Action, now time.Time) ([]Event, error) {
	if !c.Exists() {
		return nil, ErrCredentialDead
	}
	s, why, err := liveSession(c, a.Session, a.Secret, now, a.AgentRetired)
	if err != nil {
		if s == nil {
			return nil, err
		}
		return []Event{ActionRefused{Change: c.ID, Session: s.ID, CredentialID: s.CredentialID, Uses: a.Uses, Reason: why, At: now}},
			fmt.Errorf("%w: %s", err, why)
	}
	if len(a.Uses) == 0 {
		return nil, errorf(ErrInvalidInput, "an action names at least one resource")
	}
	inScope := true
	verdicts := make([]Verdict, len(a.Uses))
	var reasons []string
	for i, u := range a.Uses {
		verdicts[i] = c.Plan.Scope.Check(u.Resource, u.Verb)
		if !verdicts[i].Allowed {
			inScope = false
			reasons = append(reasons, fmt.Sprintf("%s %s: %s", u.Verb, u.Resource, verdicts[i].Reason))
		}
	}
	rec := ActionRecorded{Change: c.ID, Session: s.ID, CredentialID: s.CredentialID, Kind: a.Kind, Uses: a.Uses,
		Command: a.Command, Outcome: a.Outcome, InScope: inScope, Verdicts: verdicts, At: now}
	if inScope {
		return []Event{rec}, nil
	}
	reason := strings.Join(reasons, "; ")
	return []Event{
		rec,
		DeviationDetected{Change: c.ID, Session: s.ID, Verdicts: verdicts, At: now},
		CredentialRevoked{Change: c.ID, Session: s.ID, CredentialID: s.CredentialID, Reason: "out-of-scope action: " + reason, At: now},
		ExceptionOpened{Change: c.ID, Exception: a.Exception, Kind: ExceptionDeviation, Session: s.ID, Reason: reason, At: now},
	}, errorf(ErrOutOfScope, "%s; the session credential is revoked and exception %s is open", reason, a.Exception)
}

// Evidence is a parsed evidence file to attach.
type Evidence struct {
	Session string
	Secret  string // a live session credential, when attached from a session
	Kind    EvidenceKind
	Format  string
	SHA256  string
	Summary EvidenceSummary
	// Exception is the id to give the exception a scan with high or
	// critical findings opens.
	Exception string
	// AgentRetired says the session's agent was retired.
	AgentRetired bool
}

// AttachEvidence records test or scan evidence. A scan with high or
// critical findings opens an exception that must be resolved (accepted
// with justification, or remediated by a later clean scan) before
// promotion.
func AttachEvidence(c *Change, e Evidence, now time.Time) ([]Event, error) {
	if !c.Exists() {
		return nil, errorf(ErrNotFound, "no such change")
	}
	if c.Promoted || c.RolledBack {
		return nil, ErrPromoted
	}
	if e.Secret != "" {
		if _, why, err := liveSession(c, e.Session, e.Secret, now, e.AgentRetired); err != nil {
			return nil, fmt.Errorf("%w: %s", err, why)
		}
	}
	if len(e.SHA256) != 64 {
		return nil, errorf(ErrInvalidInput, "evidence needs its SHA-256")
	}
	switch e.Kind {
	case EvidenceTest, EvidenceScan, EvidenceOther:
	default:
		return nil, errorf(ErrInvalidInput, "evidence kind %q is not test, scan or other", e.Kind)
	}
	events := []Event{EvidenceAttached{Change: c.ID, PlanHash: c.PlanHash, Session: e.Session, Kind: e.Kind, Format: e.Format, SHA256: e.SHA256, Summary: e.Summary, At: now}}
	if e.Kind == EvidenceScan && e.Summary.Critical+e.Summary.High > 0 {
		events = append(events, ExceptionOpened{Change: c.ID, Exception: e.Exception, Kind: ExceptionScanFindings, Session: e.Session,
			Reason: fmt.Sprintf("scan %s: %d critical and %d high findings", short(e.SHA256), e.Summary.Critical, e.Summary.High), At: now})
	}
	return events, nil
}

// ResolveException records how an exception was handled. The resolver is
// an authenticated approver who did not request the change.
func ResolveException(c *Change, a Actor, id string, d Disposition, justification string, now time.Time) ([]Event, error) {
	p, err := a.human()
	if err != nil {
		return nil, err
	}
	if !p.Roles[RoleApprover] {
		return nil, ErrNotApprover
	}
	if p.ID == c.RequestedBy {
		return nil, ErrSelfApproval
	}
	x := c.Exceptions[id]
	if x == nil {
		return nil, errorf(ErrNotFound, "no exception %s on this change", id)
	}
	if x.Resolved {
		return nil, errorf(ErrConflict, "exception %s is already resolved", id)
	}
	switch d {
	case DispositionAccepted, DispositionRemediated, DispositionRolledBack:
	default:
		return nil, errorf(ErrInvalidInput, "disposition %q is not accepted, remediated or rolled-back", d)
	}
	if strings.TrimSpace(justification) == "" {
		return nil, errorf(ErrInvalidInput, "a resolution needs a justification")
	}
	return []Event{ExceptionResolved{Change: c.ID, Exception: id, Disposition: d, Justification: justification, By: p.ID, At: now}}, nil
}

// RequestPromotion is the promotion gate. It always records
// VerificationRecorded(promotion), and ChangePromoted only when it passes.
func RequestPromotion(c *Change, now time.Time) ([]Event, error) {
	if !c.Exists() {
		return nil, errorf(ErrNotFound, "no such change")
	}
	if c.Promoted || c.RolledBack {
		return nil, ErrPromoted
	}
	var checks []Check
	add := func(name string, ok bool, detail string) {
		checks = append(checks, Check{Name: name, Passed: ok, Detail: detail})
	}

	if c.Approval != nil {
		add("plan_approved", true, "approved by "+c.Approval.Approver)
	} else if c.Plan.Emergency {
		add("plan_approved", false, "emergency change without its approval")
	} else {
		add("plan_approved", false, "plan "+short(c.PlanHash)+" is not approved")
	}
	if t, ok := c.latest(EvidenceTest); !ok {
		add("tests_passed", false, "no test evidence")
	} else {
		add("tests_passed", t.Summary.TestsFailed == 0 && t.Summary.TestsPassed > 0,
			fmt.Sprintf("%d passed, %d failed, %d skipped (%s)", t.Summary.TestsPassed, t.Summary.TestsFailed, t.Summary.TestsSkipped, short(t.SHA256)))
	}
	if s, ok := c.latest(EvidenceScan); !ok {
		add("scan_clean", false, "no vulnerability scan")
	} else {
		open := c.open(ExceptionScanFindings)
		clean := s.Summary.Critical+s.Summary.High == 0 || (open == 0 && c.resolved(ExceptionScanFindings, DispositionAccepted))
		add("scan_clean", clean && open == 0, fmt.Sprintf("%d critical, %d high; %d scan exceptions open (%s)", s.Summary.Critical, s.Summary.High, open, short(s.SHA256)))
	}
	dev := c.open(ExceptionDeviation)
	add("scope_conformance", dev == 0, fmt.Sprintf("%d out-of-scope actions, %d deviation exceptions unresolved", c.OutOfScope, dev))
	other := c.open(ExceptionEmergencyOverdue)
	add("exceptions_resolved", other == 0, fmt.Sprintf("%d overdue-approval exceptions unresolved", other))

	passed := true
	for _, ch := range checks {
		passed = passed && ch.Passed
	}
	events := []Event{VerificationRecorded{Change: c.ID, Stage: StagePromotion, Passed: passed, Checks: checks, At: now}}
	if !passed {
		return events, errorf(ErrGateFailed, "promotion refused: %s", failed(checks))
	}
	return append(events, ChangePromoted{Change: c.ID, PlanHash: c.PlanHash, At: now}), nil
}

func (c *Change) open(kind ExceptionKind) int {
	n := 0
	for _, x := range c.Exceptions {
		if x.Kind == kind && !x.Resolved {
			n++
		}
	}
	return n
}

func (c *Change) resolved(kind ExceptionKind, d Disposition) bool {
	for _, x := range c.Exceptions {
		if x.Kind == kind && x.Resolved && x.Disposition == d {
			return true
		}
	}
	return false
}

// EndSession ends a session: its credential is dead from now on.
func EndSession(c *Change, session, secret string, now time.Time) ([]Event, error) {
	s := c.Sessions[session]
	if s == nil || !SecretMatches(secret, s.Hash) {
		return nil, ErrCredentialDead
	}
	if s.Ended {
		return nil, nil
	}
	return []Event{SessionEnded{Change: c.ID, Session: session, At: now}}, nil
}

// RollBack records that a promoted change was rolled back.
func RollBack(c *Change, a Actor, reason string, now time.Time) ([]Event, error) {
	p, err := a.human()
	if err != nil {
		return nil, err
	}
	if !c.Promoted || c.RolledBack {
		return nil, errorf(ErrConflict, "only a promoted change can be rolled back (status %s)", c.Status())
	}
	if strings.TrimSpace(reason) == "" {
		return nil, errorf(ErrInvalidInput, "a rollback needs a reason")
	}
	return []Event{ChangeRolledBack{Change: c.ID, Reason: reason, By: p.ID, At: now}}, nil
}

// CheckEmergency opens an exception once an emergency change's approval is
// overdue.
func CheckEmergency(c *Change, exception string, now time.Time, pol Policy) []Event {
	if !c.Exists() || !c.Plan.Emergency || c.Approval != nil || c.Promoted || c.RolledBack {
		return nil
	}
	due := c.FirstSubmittedAt.Add(pol.EmergencyWindow)
	if now.Before(due) {
		return nil
	}
	for _, x := range c.Exceptions {
		if x.Kind == ExceptionEmergencyOverdue {
			return nil
		}
	}
	return []Event{ExceptionOpened{Change: c.ID, Exception: exception, Kind: ExceptionEmergencyOverdue,
		Reason: "emergency approval overdue since " + due.UTC().Format(time.RFC3339), At: now}}
}

// DeclareFreeze declares a change freeze on an environment ("*" for all),
// optionally limited to resource patterns.
func DeclareFreeze(f Freezes, a Actor, id, environment string, scope []string, reason string, now time.Time) ([]Event, error) {
	p, err := a.human()
	if err != nil {
		return nil, err
	}
	if !p.Roles[RoleAdmin] && !p.Roles[RoleApprover] {
		return nil, errorf(ErrForbidden, "only approvers and admins declare freezes")
	}
	if strings.TrimSpace(environment) == "" || strings.TrimSpace(reason) == "" {
		return nil, errorf(ErrInvalidInput, "a freeze needs an environment and a reason")
	}
	for _, pat := range scope {
		if err := (Rule{Resource: pat, Verbs: []Verb{Read}}).validate(); err != nil {
			return nil, errorf(ErrInvalidInput, "freeze scope %s: %v", pat, err)
		}
	}
	if _, dup := f.Active[id]; dup {
		return nil, errorf(ErrConflict, "freeze %s exists", id)
	}
	return []Event{FreezeDeclared{Freeze: id, Environment: environment, Scope: scope, Reason: reason, By: p.ID, At: now}}, nil
}

// LiftFreeze lifts an active freeze.
func LiftFreeze(f Freezes, a Actor, id string, now time.Time) ([]Event, error) {
	p, err := a.human()
	if err != nil {
		return nil, err
	}
	if !p.Roles[RoleAdmin] && !p.Roles[RoleApprover] {
		return nil, errorf(ErrForbidden, "only approvers and admins lift freezes")
	}
	if _, ok := f.Active[id]; !ok {
		return nil, errorf(ErrNotFound, "no active freeze %s", id)
	}
	return []Event{FreezeLifted{Freeze: id, By: p.ID, At: now}}, nil
}
