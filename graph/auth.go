package graph

import (
	"context"
	"fmt"
	"strings"

	"github.com/evidence-parity/docket/domain"
	"github.com/evidence-parity/docket/domain/clerk"
)

// caller is who made a request, as the bearer token says.
type caller struct {
	actor   *domain.Actor // a principal or an agent
	session string        // a session credential, checked where it is used
}

type callerKey struct{}

// Authenticator resolves bearer tokens.
type Authenticator interface {
	Authenticate(ctx context.Context, secret string) (domain.Actor, error)
}

var _ Authenticator = (*clerk.Clerk)(nil)

// authenticate resolves the Authorization header's bearer token into a
// caller. Session credentials are recognised by prefix and checked by the
// commands that take them.
func authenticate(ctx context.Context, a Authenticator, header string) (caller, error) {
	token, ok := strings.CutPrefix(header, "Bearer ")
	token = strings.TrimSpace(token)
	if !ok || token == "" {
		return caller{}, fmt.Errorf("%w: send Authorization: Bearer <token>", domain.ErrUnauthenticated)
	}
	if strings.HasPrefix(token, domain.PrefixSession) {
		return caller{session: token}, nil
	}
	actor, err := a.Authenticate(ctx, token)
	if err != nil {
		return caller{}, err
	}
	return caller{actor: &actor}, nil
}

func callerFrom(ctx context.Context) caller {
	c, _ := ctx.Value(callerKey{}).(caller)
	return c
}

// actor returns the authenticated principal or agent.
func actor(ctx context.Context) (domain.Actor, error) {
	c := callerFrom(ctx)
	if c.actor == nil {
		if c.session != "" {
			return domain.Actor{}, fmt.Errorf("%w: a session credential acts only for its session's actions, evidence and end", domain.ErrForbidden)
		}
		return domain.Actor{}, fmt.Errorf("%w: this operation needs a principal token or an agent key", domain.ErrUnauthenticated)
	}
	return *c.actor, nil
}

// mutator returns the authenticated caller, refusing auditors: auditors
// read, they never mutate.
func mutator(ctx context.Context) (domain.Actor, error) {
	a, err := actor(ctx)
	if err != nil {
		return a, err
	}
	if a.Kind == domain.ActorHuman && a.Principal != nil {
		p := a.Principal
		if !p.Roles[domain.RoleRequester] && !p.Roles[domain.RoleApprover] && !p.Roles[domain.RoleAdmin] {
			return a, fmt.Errorf("%w: auditors cannot change anything", domain.ErrForbidden)
		}
	}
	return a, nil
}

// session returns the session credential the caller presented.
func session(ctx context.Context) (string, error) {
	c := callerFrom(ctx)
	if c.session == "" {
		return "", fmt.Errorf("%w: this operation needs the session credential as the bearer token", domain.ErrForbidden)
	}
	return c.session, nil
}
