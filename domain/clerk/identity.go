package clerk

import (
	"context"
	"fmt"
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
	authority = omitEmpty(authority.Clone()) // see updateEvents
	if err := admin(by); err != nil {
		return err
	}
	if !domain.ValidRole(role) {
		return fmt.Errorf("%w: unknown role %q", domain.ErrInvalidInput, role)
	}
	if role == domain.RoleApprover {
		if err := authority.Validate(); err != nil {
			return fmt.Errorf("%w: approver authority: %v", domain.ErrInvalidInput, err)
		}
	} else if len(authority) > 0 {
		return fmt.Errorf("%w: only approvers have authority", domain.ErrInvalidInput)
	}
	_, err := update[domain.Principal](ctx, k, domain.PrincipalStream(id), "", ledgerActor(by), func(p *domain.Principal, _ time.Time) ([]domain.Event, error) {
		if p.ID == "" {
			return nil, fmt.Errorf("%w: no principal %s", domain.ErrNotFound, id)
		}
		return []domain.Event{domain.RoleGranted{Principal: id, Role: role, Authority: authority, By: by.ID}}, nil
	})
	return err
}

// IssueToken issues an API token for a principal and returns it: it is
// shown this once and stored only as a hash.
func (k *Clerk) IssueToken(ctx context.Context, by domain.Actor, id string) (string, error) {
	if err := admin(by); err != nil {
		return "", err
	}
	secret, hash, err := k.secret(domain.PrefixToken, id)
	if err != nil {
		return "", err
	}
	_, err = update[domain.Principal](ctx, k, domain.PrincipalStream(id), "", ledgerActor(by), func(p *domain.Principal, _ time.Time) ([]domain.Event, error) {
		if p.ID == "" {
			return nil, fmt.Errorf("%w: no principal %s", domain.ErrNotFound, id)
		}
		return []domain.Event{domain.TokenIssued{Principal: id, TokenID: newID("tok-"), Hash: hash}}, nil
	})
	if err != nil {
		return "", err
	}
	return secret, nil
}

// RegisterAgent adds an agent to the inventory with its owner.
func (k *Clerk) RegisterAgent(ctx context.Context, by domain.Actor, id, name, owner, harness string) error {
	if err := admin(by); err != nil {
		return err
	}
	if err := checkID("agent", id); err != nil {
		return err
	}
	o, _, err := load[domain.Principal](ctx, k, domain.PrincipalStream(owner))
	if err != nil {
		return err
	}
	if o.ID == "" {
		return fmt.Errorf("%w: owner %s is not a principal", domain.ErrInvalidInput, owner)
	}
	_, err = update[domain.Agent](ctx, k, domain.AgentStream(id), "", ledgerActor(by), func(a *domain.Agent, _ time.Time) ([]domain.Event, error) {
		if a.ID != "" {
			return nil, fmt.Errorf("%w: agent %s exists", domain.ErrConflict, id)
		}
		return []domain.Event{domain.AgentRegistered{Agent: id, Name: name, Owner: owner, Harness: harness, By: by.ID}}, nil
	})
	return err
}

// IssueAgentKey issues a key an agent uses to submit plans and request
// sessions; shown once, stored as a hash.
func (k *Clerk) IssueAgentKey(ctx context.Context, by domain.Actor, id string) (string, error) {
	if err := admin(by); err != nil {
		return "", err
	}
	secret, hash, err := k.secret(domain.PrefixAgentKey, id)
	if err != nil {
		return "", err
	}
	_, err = update[domain.Agent](ctx, k, domain.AgentStream(id), "", ledgerActor(by), func(a *domain.Agent, _ time.Time) ([]domain.Event, error) {
		if a.ID == "" {
			return nil, fmt.Errorf("%w: no agent %s", domain.ErrNotFound, id)
		}
		if a.Retired {
			return nil, fmt.Errorf("%w: agent %s is retired", domain.ErrForbidden, id)
		}
		return []domain.Event{domain.AgentKeyIssued{Agent: id, KeyID: newID("key-"), Hash: hash}}, nil
	})
	if err != nil {
		return "", err
	}
	return secret, nil
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
		if _, ok := p.MatchToken(secret); ok {
			return domain.Actor{Kind: domain.ActorHuman, ID: p.ID, AuthMethod: "token", Principal: p}, nil
		}
	}
	if ref, ok := domain.SecretRef(domain.PrefixAgentKey, secret); ok {
		a, _, err := load[domain.Agent](ctx, k, domain.AgentStream(ref))
		if err != nil {
			return domain.Actor{}, err
		}
		if _, ok := a.MatchKey(secret); ok {
			return domain.Actor{Kind: domain.ActorAgent, ID: a.ID, AuthMethod: "agent-key"}, nil
		}
	}
	return domain.Actor{}, fmt.Errorf("%w: unknown, revoked or malformed token", domain.ErrUnauthenticated)
}

// Principal returns a principal's state.
func (k *Clerk) Principal(ctx context.Context, id string) (*domain.Principal, error) {
	p, _, err := load[domain.Principal](ctx, k, domain.PrincipalStream(id))
	return p, err
}
