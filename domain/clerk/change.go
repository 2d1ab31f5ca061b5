package clerk

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/evidence-parity/docket/domain"
	"github.com/evidence-parity/docket/domain/report"
	"github.com/evidence-parity/docket/ledger"
)

// Change returns a change's state.
func (k *Clerk) Change(ctx context.Context, id string) (*domain.Change, error) {
	c, _, err := load[domain.Change](ctx, k, domain.ChangeStream(id))
	if err != nil {
		return nil, err
	}
	if !c.Exists() {
		return nil, fmt.Errorf("%w: no change %s", domain.ErrNotFound, id)
	}
	return c, nil
}

func (k *Clerk) agentOf(ctx context.Context, a domain.Actor) (*domain.Agent, error) {
	if a.Kind != domain.ActorAgent || a.AuthMethod == "" {
		return nil, fmt.Errorf("%w: only an authenticated agent may do this", domain.ErrForbidden)
	}
	ag, _, err := load[domain.Agent](ctx, k, domain.AgentStream(a.ID))
	return ag, err
}

// SubmitPlan files a plan for a new change (changeID empty) or revises an
// existing one, on behalf of the human who requested it. It returns the
// change id and the plan hash.
func (k *Clerk) SubmitPlan(ctx context.Context, by domain.Actor, changeID, requestedBy string, p domain.Plan) (string, string, error) {
	p.Scope = p.Scope.Clone() // see updateEvents
	agent, err := k.agentOf(ctx, by)
	if err != nil {
		return "", "", err
	}
	requester, _, err := load[domain.Principal](ctx, k, domain.PrincipalStream(requestedBy))
	if err != nil {
		return "", "", err
	}
	if changeID == "" {
		changeID = newID("chg-")
	} else if err := checkID("change", changeID); err != nil {
		return "", "", err
	}
	var hash string
	_, err = update[domain.Change](ctx, k, domain.ChangeStream(changeID), changeID, ledgerActor(by), func(c *domain.Change, now time.Time) ([]domain.Event, error) {
		events, err := domain.SubmitPlan(c, changeID, agent, requester, p, now)
		if err == nil {
			hash = events[0].(domain.PlanSubmitted).PlanHash
		}
		return events, err
	})
	if err != nil {
		return "", "", err
	}
	return changeID, hash, nil
}

// ViewPlan records an approver opening a plan (the first time) and
// returns the change.
func (k *Clerk) ViewPlan(ctx context.Context, by domain.Actor, changeID string) (*domain.Change, error) {
	_, err := update[domain.Change](ctx, k, domain.ChangeStream(changeID), changeID, ledgerActor(by), func(c *domain.Change, now time.Time) ([]domain.Event, error) {
		return domain.ViewPlan(c, by, now)
	})
	if err != nil {
		return nil, err
	}
	return k.Change(ctx, changeID)
}

// Approve approves the plan hash the approver reviewed.
func (k *Clerk) Approve(ctx context.Context, by domain.Actor, changeID, planHash, comment string) error {
	_, err := update[domain.Change](ctx, k, domain.ChangeStream(changeID), changeID, ledgerActor(by), func(c *domain.Change, now time.Time) ([]domain.Event, error) {
		// An emergency change approved after its window: the overdue
		// exception opens with the approval, if nothing opened it before.
		late := domain.CheckEmergency(c, newID("exc-"), now, k.policy)
		events, err := domain.Approve(c, by, planHash, comment, now, k.policy)
		if err != nil {
			return events, err
		}
		return append(late, events...), nil
	})
	return err
}

// Reject rejects the plan hash the approver reviewed.
func (k *Clerk) Reject(ctx context.Context, by domain.Actor, changeID, planHash, comment string) error {
	_, err := update[domain.Change](ctx, k, domain.ChangeStream(changeID), changeID, ledgerActor(by), func(c *domain.Change, now time.Time) ([]domain.Event, error) {
		return domain.Reject(c, by, planHash, comment, now, k.policy)
	})
	return err
}

// Session is an issued session credential. Credential is shown once.
type Session struct {
	ID         string
	Credential string
	ExpiresAt  time.Time
}

// RequestSession runs the issuance gate for the change's agent and returns
// the session credential when it passes. The gate's record is written
// either way.
func (k *Clerk) RequestSession(ctx context.Context, by domain.Actor, changeID string) (Session, error) {
	agent, err := k.agentOf(ctx, by)
	if err != nil {
		return Session{}, err
	}
	freezes, _, err := load[domain.Freezes](ctx, k, domain.FreezeStream)
	if err != nil {
		return Session{}, err
	}
	sessionID := newID("ses-")
	secret, hash, err := k.secret(domain.PrefixSession, changeID+"."+sessionID)
	if err != nil {
		return Session{}, err
	}
	recs, err := update[domain.Change](ctx, k, domain.ChangeStream(changeID), changeID, ledgerActor(by), func(c *domain.Change, now time.Time) ([]domain.Event, error) {
		overdue := k.overdue(c, now)
		events, err := domain.RequestSession(c, agent, *freezes, domain.SessionRequest{Session: sessionID, CredentialID: newID("cred-"), Hash: hash}, now, k.policy)
		return append(overdue, events...), err
	})
	if err != nil {
		return Session{}, err
	}
	var issued domain.CredentialIssued
	for _, r := range recs {
		if e, err := domain.Decode(r.Event.Type, r.Event.Data); err == nil {
			if ci, ok := e.(domain.CredentialIssued); ok {
				issued = ci
			}
		}
	}
	return Session{ID: sessionID, Credential: secret, ExpiresAt: issued.ExpiresAt}, nil
}

// SessionCaller authenticates a session credential at the API's boundary:
// it returns the change and session of a credential the ledger issued.
// Live or dead alike: the commands that take a credential decide whether
// it may still act (and record the attempts of a dead one). A credential
// that matches no session is unauthenticated.
func (k *Clerk) SessionCaller(ctx context.Context, credential string) (changeID, sessionID string, err error) {
	changeID, sessionID, err = sessionRef(credential)
	if err != nil {
		return "", "", err
	}
	c, _, err := peek[domain.Change](ctx, k, domain.ChangeStream(changeID))
	if err != nil {
		return "", "", err
	}
	if domain.IssuedSession(c, sessionID, credential) == nil {
		return "", "", fmt.Errorf("%w: unknown or forged session credential", domain.ErrUnauthenticated)
	}
	return changeID, sessionID, nil
}

// sessionRef splits a session credential into its change and session.
func sessionRef(secret string) (string, string, error) {
	ref, ok := domain.SecretRef(domain.PrefixSession, secret)
	if !ok {
		return "", "", fmt.Errorf("%w: not a session credential", domain.ErrUnauthenticated)
	}
	change, session, ok := strings.Cut(ref, ".")
	if !ok || checkID("change", change) != nil || checkID("session", session) != nil {
		return "", "", fmt.Errorf("%w: malformed session credential", domain.ErrUnauthenticated)
	}
	return change, session, nil
}

// agentRetired reports whether the agent of a session was retired.
func (k *Clerk) agentRetired(ctx context.Context, c *domain.Change, sessionID string) (bool, error) {
	s := c.Sessions[sessionID]
	if s == nil {
		return false, nil
	}
	a, _, err := load[domain.Agent](ctx, k, domain.AgentStream(s.Agent))
	if err != nil {
		return false, err
	}
	return a.Retired, nil
}

// sessionActor is the ledger actor for events recorded under a session
// credential: the session's agent and the credential's id (never the
// secret). An unknown session gets a placeholder; its commands are refused.
func sessionActor(sessionID string) func(c *domain.Change) ledger.Actor {
	return func(c *domain.Change) ledger.Actor {
		if s := c.Sessions[sessionID]; s != nil {
			return ledger.Actor{Kind: ledger.ActorAgent, ID: s.Agent, Credential: s.CredentialID}
		}
		return ledger.Actor{Kind: ledger.ActorAgent, ID: "unknown-session"}
	}
}

// RecordAction records an action under a session credential, checked
// against the approved scope before it is accepted. It returns the
// verdict record; an out-of-scope action returns an error wrapping
// domain.ErrOutOfScope after revoking the credential and opening an
// exception, all in one append.
func (k *Clerk) RecordAction(ctx context.Context, credential, kind string, uses []domain.ResourceUse, command, outcome string) (domain.ActionRecorded, error) {
	uses = slices.Clone(uses) // see updateEvents
	changeID, sessionID, err := sessionRef(credential)
	if err != nil {
		return domain.ActionRecorded{}, err
	}
	var rec domain.ActionRecorded
	exception := newID("exc-")
	_, events, err := updateEvents[domain.Change](ctx, k, domain.ChangeStream(changeID), changeID, sessionActor(sessionID), func(c *domain.Change, now time.Time) ([]domain.Event, error) {
		retired, err := k.agentRetired(ctx, c, sessionID)
		if err != nil {
			return nil, err
		}
		return domain.RecordAction(c, domain.Action{Session: sessionID, Secret: credential, Kind: kind, Uses: uses, Command: command, Outcome: outcome, Exception: exception, AgentRetired: retired}, now)
	})
	for _, e := range events {
		if a, ok := e.(domain.ActionRecorded); ok {
			rec = a
		}
	}
	return rec, err
}

// AttachEvidence stores a report under a live session credential,
// content-addressed by SHA-256 (stream evidence-<sha256>, written once per
// content), parses it (JUnit for tests, SARIF for scans) and attaches its
// summary to the change. It returns the summary.
func (k *Clerk) AttachEvidence(ctx context.Context, credential string, kind domain.EvidenceKind, format string, content []byte) (domain.EvidenceSummary, error) {
	changeID, sessionID, err := sessionRef(credential)
	if err != nil {
		return domain.EvidenceSummary{}, err
	}
	var summary domain.EvidenceSummary
	switch {
	case kind == domain.EvidenceTest && format == "junit", kind == domain.EvidenceScan && format == "sarif":
		if summary, err = report.Parse(format, content); err != nil {
			return domain.EvidenceSummary{}, err
		}
	case kind == domain.EvidenceOther:
	default:
		return domain.EvidenceSummary{}, fmt.Errorf("%w: %s evidence must be %s", domain.ErrInvalidInput, kind, map[domain.EvidenceKind]string{domain.EvidenceTest: "junit", domain.EvidenceScan: "sarif"}[kind])
	}
	c, _, err := load[domain.Change](ctx, k, domain.ChangeStream(changeID))
	if err != nil {
		return domain.EvidenceSummary{}, err
	}
	// Authenticate before storing anything.
	retired, err := k.agentRetired(ctx, c, sessionID)
	if err != nil {
		return domain.EvidenceSummary{}, err
	}
	if err := domain.CheckSession(c, sessionID, credential, k.now(), retired); err != nil {
		return domain.EvidenceSummary{}, err
	}
	sum := sha256.Sum256(content)
	digest := hex.EncodeToString(sum[:])
	stored := domain.EvidenceStored{SHA256: digest, Format: format, Size: len(content), Content: content}
	if _, err := k.append(ctx, domain.EvidenceStream(digest), ledger.NoStream, sessionActor(sessionID)(c), changeID, []domain.Event{stored}); err != nil && !errors.Is(err, ledger.ErrWrongRevision) {
		return domain.EvidenceSummary{}, fmt.Errorf("store evidence: %w", err)
	}
	exception := newID("exc-")
	_, err = updateAs[domain.Change](ctx, k, domain.ChangeStream(changeID), changeID, sessionActor(sessionID), func(c *domain.Change, now time.Time) ([]domain.Event, error) {
		retired, err := k.agentRetired(ctx, c, sessionID)
		if err != nil {
			return nil, err
		}
		return domain.AttachEvidence(c, domain.Evidence{Session: sessionID, Secret: credential, Kind: kind, Format: format, SHA256: digest, Summary: summary, Exception: exception, AgentRetired: retired}, now)
	})
	return summary, err
}

// Evidence returns a stored evidence file by SHA-256.
func (k *Clerk) Evidence(ctx context.Context, sha string) (domain.EvidenceStored, error) {
	recs, err := k.store.ReadStream(ctx, domain.EvidenceStream(sha), 0)
	if err != nil {
		return domain.EvidenceStored{}, err
	}
	if len(recs) == 0 {
		return domain.EvidenceStored{}, fmt.Errorf("%w: no evidence %s", domain.ErrNotFound, sha)
	}
	e, err := domain.Decode(recs[0].Event.Type, recs[0].Event.Data)
	if err != nil {
		return domain.EvidenceStored{}, err
	}
	stored, ok := e.(domain.EvidenceStored)
	if !ok {
		return domain.EvidenceStored{}, fmt.Errorf("evidence %s: its stream begins with %s, not EvidenceStored", sha, recs[0].Event.Type)
	}
	return stored, nil
}

// EndSession ends the session of a credential; the credential is dead
// from then on.
func (k *Clerk) EndSession(ctx context.Context, credential string) error {
	changeID, sessionID, err := sessionRef(credential)
	if err != nil {
		return err
	}
	_, err = updateAs[domain.Change](ctx, k, domain.ChangeStream(changeID), changeID, sessionActor(sessionID), func(c *domain.Change, now time.Time) ([]domain.Event, error) {
		return domain.EndSession(c, sessionID, credential, now)
	})
	return err
}

// ResolveException records an approver's disposition of an exception.
func (k *Clerk) ResolveException(ctx context.Context, by domain.Actor, changeID, exceptionID string, d domain.Disposition, justification string) error {
	_, err := update[domain.Change](ctx, k, domain.ChangeStream(changeID), changeID, ledgerActor(by), func(c *domain.Change, now time.Time) ([]domain.Event, error) {
		return domain.ResolveException(c, by, exceptionID, d, justification, now)
	})
	return err
}

// RequestPromotion runs the promotion gate, asked by the change's agent or
// an approver or admin. The gate's record is written either way.
func (k *Clerk) RequestPromotion(ctx context.Context, by domain.Actor, changeID string) error {
	_, err := update[domain.Change](ctx, k, domain.ChangeStream(changeID), changeID, ledgerActor(by), func(c *domain.Change, now time.Time) ([]domain.Event, error) {
		switch {
		case by.Kind == domain.ActorAgent && by.AuthMethod != "" && by.ID == c.Agent:
		case by.Kind == domain.ActorHuman && by.Principal != nil && (by.Principal.Roles[domain.RoleApprover] || by.Principal.Roles[domain.RoleAdmin]):
		default:
			return nil, fmt.Errorf("%w: only the change's agent, an approver or an admin may request promotion", domain.ErrForbidden)
		}
		overdue := k.overdue(c, now)
		events, err := domain.RequestPromotion(c, now)
		return append(overdue, events...), err
	})
	return err
}

// RollBack records the rollback of a promoted change.
func (k *Clerk) RollBack(ctx context.Context, by domain.Actor, changeID, reason string) error {
	_, err := update[domain.Change](ctx, k, domain.ChangeStream(changeID), changeID, ledgerActor(by), func(c *domain.Change, now time.Time) ([]domain.Event, error) {
		return domain.RollBack(c, by, reason, now)
	})
	return err
}

// overdue opens the overdue-emergency exception, if due, and applies it to c
// so the gate that follows sees it.
func (k *Clerk) overdue(c *domain.Change, now time.Time) []domain.Event {
	events := domain.CheckEmergency(c, newID("exc-"), now, k.policy)
	for _, e := range events {
		c.Apply(e)
	}
	return events
}

// CheckEmergency opens an exception if the change is an emergency whose
// approval is overdue.
func (k *Clerk) CheckEmergency(ctx context.Context, changeID string) error {
	_, err := update[domain.Change](ctx, k, domain.ChangeStream(changeID), changeID, ledgerActor(System), func(c *domain.Change, now time.Time) ([]domain.Event, error) {
		return domain.CheckEmergency(c, newID("exc-"), now, k.policy), nil
	})
	return err
}

// DeclareFreeze declares a change freeze and returns its id.
func (k *Clerk) DeclareFreeze(ctx context.Context, by domain.Actor, environment string, scope []string, reason string) (string, error) {
	scope = omitEmpty(slices.Clone(scope)) // see updateEvents
	id := newID("frz-")
	_, err := update[domain.Freezes](ctx, k, domain.FreezeStream, "", ledgerActor(by), func(f *domain.Freezes, now time.Time) ([]domain.Event, error) {
		return domain.DeclareFreeze(*f, by, id, environment, scope, reason, now)
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

// LiftFreeze lifts a freeze.
func (k *Clerk) LiftFreeze(ctx context.Context, by domain.Actor, id string) error {
	_, err := update[domain.Freezes](ctx, k, domain.FreezeStream, "", ledgerActor(by), func(f *domain.Freezes, now time.Time) ([]domain.Event, error) {
		return domain.LiftFreeze(*f, by, id, now)
	})
	return err
}

// Freezes returns the freezes in force.
func (k *Clerk) Freezes(ctx context.Context) (*domain.Freezes, error) {
	f, _, err := load[domain.Freezes](ctx, k, domain.FreezeStream)
	return f, err
}
