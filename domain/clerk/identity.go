package clerk

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/evidence-parity/docket/domain"
)

// admin requires an admin, or the local operator.
func admin(a domain.Actor) error {
	if a == System {
		return nil
	}
	if a.Kind != domain.ActorHuman || a.Principal == nil || !a.Principal.Roles[domain.RoleAdmin] {
		return fmt.Errorf("%w: only an admin manages identities", domain.ErrForbidden)
	}
	return nil
}

// RegisterPrincipal adds a human.
func (k *Clerk) RegisterPrincipal(ctx context.Context, by domain.Actor, id, name, email string) error {
	if err := admin(by); err != nil {
		return err
	}
	if err := checkPrincipalID(id); err != nil {
		return err
	}
	_, err := update[domain.Principal](ctx, k, domain.PrincipalStream(id), "", ledgerActor(by), func(p *domain.Principal, _ time.Time) ([]domain.Event, error) {
		if p.ID != "" {
			return nil, fmt.Errorf("%w: principal %s exists", domain.ErrConflict, id)
		}
		return []domain.Event{domain.PrincipalRegistered{Principal: id, Name: name, Email: email, By: by.ID}}, nil
	})
	return err
}

// GrantRole grants a role; an approver's authority is the scope they may
// approve.
func (k *Clerk) GrantRole(ctx context.Context, by domain.Actor, id string, role domain.Role, authority domain.Scope) error {
	if err := admin(by); err != nil {
		return err
	}
	authority, err := roleAuthority(role, authority)
	if err != nil {
		return err
	}
	_, err = update[domain.Principal](ctx, k, domain.PrincipalStream(id), "", ledgerActor(by), func(p *domain.Principal, _ time.Time) ([]domain.Event, error) {
		if p.ID == "" {
			return nil, fmt.Errorf("%w: no principal %s", domain.ErrNotFound, id)
		}
		return []domain.Event{domain.RoleGranted{Principal: id, Role: role, Authority: authority, By: by.ID}}, nil
	})
	return err
}

// roleAuthority checks a role and the authority granted with it, and
// returns the authority as a RoleGranted event holds it (see updateEvents).
func roleAuthority(role domain.Role, authority domain.Scope) (domain.Scope, error) {
	authority = omitEmpty(authority.Clone())
	if !domain.ValidRole(role) {
		return nil, fmt.Errorf("%w: unknown role %q: requester, approver, auditor or admin", domain.ErrInvalidInput, role)
	}
	if role == domain.RoleApprover {
		if err := authority.Validate(); err != nil {
			return nil, fmt.Errorf("%w: approver authority: %v", domain.ErrInvalidInput, err)
		}
	} else if len(authority) > 0 {
		return nil, fmt.Errorf("%w: only approvers have authority", domain.ErrInvalidInput)
	}
	return authority, nil
}

// RevokeRole takes a role back (an approver's authority with it).
func (k *Clerk) RevokeRole(ctx context.Context, by domain.Actor, id string, role domain.Role) error {
	if err := admin(by); err != nil {
		return err
	}
	_, err := update[domain.Principal](ctx, k, domain.PrincipalStream(id), "", ledgerActor(by), func(p *domain.Principal, _ time.Time) ([]domain.Event, error) {
		if p.ID == "" {
			return nil, fmt.Errorf("%w: no principal %s", domain.ErrNotFound, id)
		}
		if !p.Roles[role] {
			return nil, fmt.Errorf("%w: principal %s does not hold the role %q", domain.ErrNotFound, id, role)
		}
		return []domain.Event{domain.RoleRevoked{Principal: id, Role: role, By: by.ID}}, nil
	})
	return err
}

// Enrolment is a new principal: who, their roles, and an approver's
// authority.
type Enrolment struct {
	ID, Name, Email string
	Roles           []domain.Role
	Authority       domain.Scope // approvers only
}

// Enrol registers a principal with their roles and a first API token in
// one append, so an enrolment refused for any reason (an unknown role, an
// approver without authority, an id taken) writes nothing. It returns the
// token's id and the token, shown this once.
func (k *Clerk) Enrol(ctx context.Context, by domain.Actor, e Enrolment) (tokenID, token string, err error) {
	if err := admin(by); err != nil {
		return "", "", err
	}
	if err := checkPrincipalID(e.ID); err != nil {
		return "", "", err
	}
	if len(e.Roles) == 0 {
		return "", "", fmt.Errorf("%w: a principal needs at least one role", domain.ErrInvalidInput)
	}
	if len(e.Authority) > 0 && !slices.Contains(e.Roles, domain.RoleApprover) {
		return "", "", fmt.Errorf("%w: only approvers have authority", domain.ErrInvalidInput)
	}
	events := []domain.Event{domain.PrincipalRegistered{Principal: e.ID, Name: e.Name, Email: e.Email, By: by.ID}}
	granted := map[domain.Role]bool{}
	for _, r := range e.Roles {
		var a domain.Scope
		if r == domain.RoleApprover {
			a = e.Authority
		}
		a, err := roleAuthority(r, a)
		if err != nil {
			return "", "", err
		}
		if !granted[r] {
			granted[r] = true
			events = append(events, domain.RoleGranted{Principal: e.ID, Role: r, Authority: a, By: by.ID})
		}
	}
	token, hash, err := k.secret(domain.PrefixToken, e.ID)
	if err != nil {
		return "", "", err
	}
	tokenID = newID("tok-")
	events = append(events, domain.TokenIssued{Principal: e.ID, TokenID: tokenID, Hash: hash})
	_, err = update[domain.Principal](ctx, k, domain.PrincipalStream(e.ID), "", ledgerActor(by), func(p *domain.Principal, _ time.Time) ([]domain.Event, error) {
		if p.ID != "" {
			return nil, fmt.Errorf("%w: principal %s exists", domain.ErrConflict, e.ID)
		}
		return events, nil
	})
	if err != nil {
		return "", "", err
	}
	return tokenID, token, nil
}

// IssueToken issues an API token for a principal and returns its id and
// the token: shown this once and stored only as a hash.
func (k *Clerk) IssueToken(ctx context.Context, by domain.Actor, id string) (tokenID, token string, err error) {
	if err := admin(by); err != nil {
		return "", "", err
	}
	secret, hash, err := k.secret(domain.PrefixToken, id)
	if err != nil {
		return "", "", err
	}
	tokenID = newID("tok-")
	_, err = update[domain.Principal](ctx, k, domain.PrincipalStream(id), "", ledgerActor(by), func(p *domain.Principal, _ time.Time) ([]domain.Event, error) {
		if p.ID == "" {
			return nil, fmt.Errorf("%w: no principal %s", domain.ErrNotFound, id)
		}
		return []domain.Event{domain.TokenIssued{Principal: id, TokenID: tokenID, Hash: hash}}, nil
	})
	if err != nil {
		return "", "", err
	}
	return tokenID, secret, nil
}

// RevokeToken revokes one of a principal's API tokens: from its event on,
// the token authenticates nothing (a portal sign-in made with it included).
func (k *Clerk) RevokeToken(ctx context.Context, by domain.Actor, id, tokenID string) error {
	if err := admin(by); err != nil {
		return err
	}
	_, err := update[domain.Principal](ctx, k, domain.PrincipalStream(id), "", ledgerActor(by), func(p *domain.Principal, _ time.Time) ([]domain.Event, error) {
		if p.ID == "" {
			return nil, fmt.Errorf("%w: no principal %s", domain.ErrNotFound, id)
		}
		if _, ok := p.Tokens[tokenID]; !ok {
			return nil, fmt.Errorf("%w: principal %s has no live token %s", domain.ErrNotFound, id, tokenID)
		}
		return []domain.Event{domain.TokenRevoked{Principal: id, TokenID: tokenID}}, nil
	})
	return err
}

// RegisterAgent adds an agent to the inventory with its owner.
func (k *Clerk) RegisterAgent(ctx context.Context, by domain.Actor, id, name, owner, harness string) error {
	_, _, err := k.registerAgent(ctx, by, id, name, owner, harness, false)
	return err
}

// EnrolAgent adds an agent to the inventory with a first key in one
// append, so a refused registration writes nothing. It returns the key's
// id and the key, shown this once.
func (k *Clerk) EnrolAgent(ctx context.Context, by domain.Actor, id, name, owner, harness string) (keyID, key string, err error) {
	return k.registerAgent(ctx, by, id, name, owner, harness, true)
}

func (k *Clerk) registerAgent(ctx context.Context, by domain.Actor, id, name, owner, harness string, withKey bool) (keyID, key string, err error) {
	if err := admin(by); err != nil {
		return "", "", err
	}
	if err := checkID("agent", id); err != nil {
		return "", "", err
	}
	o, _, err := load[domain.Principal](ctx, k, domain.PrincipalStream(owner))
	if err != nil {
		return "", "", err
	}
	if o.ID == "" {
		return "", "", fmt.Errorf("%w: owner %s is not a principal", domain.ErrInvalidInput, owner)
	}
	events := []domain.Event{domain.AgentRegistered{Agent: id, Name: name, Owner: owner, Harness: harness, By: by.ID}}
	if withKey {
		secret, hash, err := k.secret(domain.PrefixAgentKey, id)
		if err != nil {
			return "", "", err
		}
		keyID, key = newID("key-"), secret
		events = append(events, domain.AgentKeyIssued{Agent: id, KeyID: keyID, Hash: hash})
	}
	_, err = update[domain.Agent](ctx, k, domain.AgentStream(id), "", ledgerActor(by), func(a *domain.Agent, _ time.Time) ([]domain.Event, error) {
		if a.ID != "" {
			return nil, fmt.Errorf("%w: agent %s exists", domain.ErrConflict, id)
		}
		return events, nil
	})
	if err != nil {
		return "", "", err
	}
	return keyID, key, nil
}

// IssueAgentKey issues a key an agent uses to submit plans and request
// sessions, and returns its id and the key: shown once, stored as a hash.
func (k *Clerk) IssueAgentKey(ctx context.Context, by domain.Actor, id string) (keyID, key string, err error) {
	if err := admin(by); err != nil {
		return "", "", err
	}
	secret, hash, err := k.secret(domain.PrefixAgentKey, id)
	if err != nil {
		return "", "", err
	}
	keyID = newID("key-")
	_, err = update[domain.Agent](ctx, k, domain.AgentStream(id), "", ledgerActor(by), func(a *domain.Agent, _ time.Time) ([]domain.Event, error) {
		if a.ID == "" {
			return nil, fmt.Errorf("%w: no agent %s", domain.ErrNotFound, id)
		}
		if a.Retired {
			return nil, fmt.Errorf("%w: agent %s is retired", domain.ErrConflict, id)
		}
		return []domain.Event{domain.AgentKeyIssued{Agent: id, KeyID: keyID, Hash: hash}}, nil
	})
	if err != nil {
		return "", "", err
	}
	return keyID, secret, nil
}

// RetireAgent retires an agent; its keys stop working.
func (k *Clerk) RetireAgent(ctx context.Context, by domain.Actor, id string) error {
	if err := admin(by); err != nil {
		return err
	}
	_, err := update[domain.Agent](ctx, k, domain.AgentStream(id), "", ledgerActor(by), func(a *domain.Agent, _ time.Time) ([]domain.Event, error) {
		if a.ID == "" {
			return nil, fmt.Errorf("%w: no agent %s", domain.ErrNotFound, id)
		}
		if a.Retired {
			return nil, nil
		}
		return []domain.Event{domain.AgentRetired{Agent: id, By: by.ID}}, nil
	})
	return err
}

// Authenticate resolves a principal token or an agent key to an actor.
// Session credentials are checked by the commands that take them.
func (k *Clerk) Authenticate(ctx context.Context, secret string) (domain.Actor, error) {
	if ref, ok := domain.SecretRef(domain.PrefixToken, secret); ok {
		p, _, err := load[domain.Principal](ctx, k, domain.PrincipalStream(ref))
		if err != nil {
			return domain.Actor{}, err
		}
		if id, ok := p.MatchToken(secret); ok {
			return domain.Actor{Kind: domain.ActorHuman, ID: p.ID, AuthMethod: "token", Credential: id, Principal: p}, nil
		}
	}
	if ref, ok := domain.SecretRef(domain.PrefixAgentKey, secret); ok {
		a, _, err := load[domain.Agent](ctx, k, domain.AgentStream(ref))
		if err != nil {
			return domain.Actor{}, err
		}
		if id, ok := a.MatchKey(secret); ok {
			return domain.Actor{Kind: domain.ActorAgent, ID: a.ID, AuthMethod: "agent-key", Credential: id}, nil
		}
	}
	return domain.Actor{}, fmt.Errorf("%w: unknown, revoked or malformed token", domain.ErrUnauthenticated)
}

// Principal returns a principal's state.
func (k *Clerk) Principal(ctx context.Context, id string) (*domain.Principal, error) {
	p, _, err := load[domain.Principal](ctx, k, domain.PrincipalStream(id))
	return p, err
}

// Agent returns an agent's state.
func (k *Clerk) Agent(ctx context.Context, id string) (*domain.Agent, error) {
	a, _, err := load[domain.Agent](ctx, k, domain.AgentStream(id))
	return a, err
}
