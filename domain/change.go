package domain

import (
	"slices"
	"strings"
	"time"
)

// Policy holds the tunable rules; DefaultPolicy documents the defaults.
type Policy struct {
	// CredentialTTL is a session credential's lifetime (default 8h).
	CredentialTTL time.Duration
	// EmergencyWindow is how long an emergency change may run before its
	// approval is overdue (default 24h).
	EmergencyWindow time.Duration
	// ReviewBytesPerSecond is the fastest believable reading rate: an
	// approval quicker than plan size / rate is flagged as rubber-stamp
	// risk (default 20 bytes/s, about 200 words a minute).
	ReviewBytesPerSecond float64
}

// DefaultPolicy is the policy with every default.
var DefaultPolicy = Policy{CredentialTTL: 8 * time.Hour, EmergencyWindow: 24 * time.Hour, ReviewBytesPerSecond: 20}

// Review holds the review-depth facts of one decision on a plan.
type Review struct {
	PlanSize       int     `json:"planSize"`
	DwellSeconds   float64 `json:"dwellSeconds"`
	Viewed         bool    `json:"viewed"`
	CommentPresent bool    `json:"commentPresent"`
	// MinSeconds is the reading time the plan's size calls for.
	MinSeconds  float64 `json:"minSeconds"`
	RubberStamp bool    `json:"rubberStamp"`
}

// Stage is a verification gate.
type Stage string

// The two gates.
const (
	StageIssuance  Stage = "issuance"
	StagePromotion Stage = "promotion"
)

// Check is one verification check with its result.
type Check struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	Detail string `json:"detail"`
}

// ResourceUse is one resource an action touches and how.
type ResourceUse struct {
	Resource string `json:"resource"`
	Verb     Verb   `json:"verb"`
}

// ExceptionKind says why an exception was opened.
type ExceptionKind string

// Exception kinds.
const (
	ExceptionDeviation        ExceptionKind = "deviation"
	ExceptionEmergencyOverdue ExceptionKind = "emergency-overdue"
	ExceptionScanFindings     ExceptionKind = "scan-findings"
)

// Disposition is how an exception was resolved.
type Disposition string

// Dispositions.
const (
	DispositionAccepted   Disposition = "accepted"   // the risk is accepted, with justification
	DispositionRemediated Disposition = "remediated" // the deviation was undone or fixed
	DispositionRolledBack Disposition = "rolled-back"
)

// EvidenceKind is what an evidence file shows.
type EvidenceKind string

// Evidence kinds.
const (
	EvidenceTest  EvidenceKind = "test"
	EvidenceScan  EvidenceKind = "scan"
	EvidenceOther EvidenceKind = "other"
)

// EvidenceSummary is what was parsed from an evidence file.
type EvidenceSummary struct {
	TestsPassed  int `json:"testsPassed,omitempty"`
	TestsFailed  int `json:"testsFailed,omitempty"`
	TestsSkipped int `json:"testsSkipped,omitempty"`
	Critical     int `json:"critical,omitempty"`
	High         int `json:"high,omitempty"`
	Medium       int `json:"medium,omitempty"`
	Low          int `json:"low,omitempty"`
}

// Session is one agent session of a change.
type Session struct {
	ID           string
	Agent        string
	CredentialID string
	Hash         string
	PlanHash     string
	IssuedAt     time.Time
	ExpiresAt    time.Time
	Revoked      bool
	Ended        bool
	Actions      int
}

// Exception is an open or resolved exception of a change.
type Exception struct {
	ID          string
	Kind        ExceptionKind
	Session     string
	Reason      string
	Resolved    bool
	Disposition Disposition
}

// Change is a change's state, folded from its stream.
type Change struct {
	ID          string
	Version     int
	Plan        Plan
	PlanHash    string
	RequestedBy string
	Agent       string
	SubmittedAt time.Time
	// FirstSubmittedAt is when the first version was filed: an emergency
	// change's approval is due a window after it, whatever revisions follow.
	FirstSubmittedAt time.Time
	// Views is the first time each approver opened the current plan.
	Views      map[string]time.Time
	Approval   *PlanApproved // for the current plan hash
	Rejection  *PlanRejected // for the current plan hash
	Sessions   map[string]*Session
	Exceptions map[string]*Exception
	// OutOfScope counts actions recorded out of scope.
	OutOfScope int
	Evidence   []EvidenceAttached
	Promoted   bool
	RolledBack bool
}

// Exists reports whether a plan was ever submitted.
func (c *Change) Exists() bool { return c.ID != "" }

// Apply folds one event of the change's stream.
func (c *Change) Apply(e Event) {
	switch e := e.(type) {
	case PlanSubmitted:
		if c.Sessions == nil {
			c.Sessions, c.Exceptions = map[string]*Session{}, map[string]*Exception{}
		}
		if c.ID == "" {
			c.FirstSubmittedAt = e.At
		}
		c.ID, c.Version, c.Plan, c.PlanHash = e.Change, e.Version, e.Plan, e.PlanHash
		c.RequestedBy, c.Agent, c.SubmittedAt = e.RequestedBy, e.Agent, e.At
		c.Views, c.Approval, c.Rejection = map[string]time.Time{}, nil, nil
	case PlanViewed:
		if e.PlanHash == c.PlanHash {
			if _, seen := c.Views[e.Approver]; !seen {
				c.Views[e.Approver] = e.At
			}
		}
	case PlanApproved:
		if e.PlanHash == c.PlanHash {
			c.Approval = &e
		}
	case PlanRejected:
		if e.PlanHash == c.PlanHash {
			c.Rejection = &e
		}
	case CredentialIssued:
		c.Sessions[e.Session] = &Session{ID: e.Session, Agent: e.Agent, CredentialID: e.CredentialID, Hash: e.Hash,
			PlanHash: e.PlanHash, IssuedAt: e.IssuedAt, ExpiresAt: e.ExpiresAt}
	case ActionRecorded:
		if s := c.Sessions[e.Session]; s != nil {
			s.Actions++
		}
		if !e.InScope {
			c.OutOfScope++
		}
	case CredentialRevoked:
		if s := c.Sessions[e.Session]; s != nil {
			s.Revoked = true
		}
	case SessionEnded:
		if s := c.Sessions[e.Session]; s != nil {
			s.Ended = true
		}
	case ExceptionOpened:
		c.Exceptions[e.Exception] = &Exception{ID: e.Exception, Kind: e.Kind, Session: e.Session, Reason: e.Reason}
	case ExceptionResolved:
		if x := c.Exceptions[e.Exception]; x != nil {
			x.Resolved, x.Disposition = true, e.Disposition
		}
	case EvidenceAttached:
		c.Evidence = append(c.Evidence, e)
	case ChangePromoted:
		c.Promoted = true
	case ChangeRolledBack:
		c.RolledBack = true
	}
}

// Status is a one-word summary of where the change stands.
func (c *Change) Status() string {
	switch {
	case c.RolledBack:
		return "rolled-back"
	case c.Promoted:
		return "promoted"
	case c.Rejection != nil:
		return "rejected"
	case c.Approval != nil:
		return "approved"
	default:
		return "submitted"
	}
}

// sortedSessions returns the sessions in issue order.
func sortedSessions(c *Change) []*Session {
	out := make([]*Session, 0, len(c.Sessions))
	for _, s := range c.Sessions {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *Session) int {
		if c := a.IssuedAt.Compare(b.IssuedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// latest returns the most recent evidence of a kind for the current plan:
// evidence gathered under an earlier plan does not test a revision.
func (c *Change) latest(kind EvidenceKind) (EvidenceAttached, bool) {
	for i := len(c.Evidence) - 1; i >= 0; i-- {
		if c.Evidence[i].Kind == kind && c.Evidence[i].PlanHash == c.PlanHash {
			return c.Evidence[i], true
		}
	}
	return EvidenceAttached{}, false
}

// Freezes is the set of active change freezes, folded from the freeze
// stream.
type Freezes struct {
	Active map[string]FreezeDeclared
}

// Apply folds one event of the freeze stream.
func (f *Freezes) Apply(e Event) {
	if f.Active == nil {
		f.Active = map[string]FreezeDeclared{}
	}
	switch e := e.(type) {
	case FreezeDeclared:
		f.Active[e.Freeze] = e
	case FreezeLifted:
		delete(f.Active, e.Freeze)
	}
}

// Covering returns a freeze covering the plan: same environment (or a
// freeze on every environment, "*"), and either no scope (all of it) or a
// freeze pattern that overlaps one of the plan's rules.
func (f Freezes) Covering(p Plan) (FreezeDeclared, bool) {
	for _, fr := range f.Active {
		if fr.Environment != "*" && fr.Environment != p.Environment {
			continue
		}
		if len(fr.Scope) == 0 {
			return fr, true
		}
		for _, pat := range fr.Scope {
			fk, fp, _ := strings.Cut(pat, ":")
			for _, r := range p.Scope {
				if rk, rp, _ := strings.Cut(r.Resource, ":"); rk == fk && mayOverlap(rk, rp, fp) {
					return fr, true
				}
			}
		}
	}
	return FreezeDeclared{}, false
}
