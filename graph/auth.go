package graph

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/evidence-parity/docket/domain"
	"github.com/evidence-parity/docket/domain/clerk"
)

// caller is who made a request, as the bearer token says.
type caller struct {
	actor *domain.Actor // a principal or an agent
	// session is a session credential the ledger issued, live or dead:
	// the commands that take it decide whether it may still act.
	session   string
	sessionID string
	// key names whom the request's rate is counted against.
	key string
}

type callerKey struct{}

// Authenticator resolves bearer tokens.
type Authenticator interface {
	Authenticate(ctx context.Context, secret string) (domain.Actor, error)
}

var _ Authenticator = (*clerk.Clerk)(nil)

// authenticate resolves the Authorization header's bearer token into a
// caller: a principal token, an agent key or an OIDC ID token through the
// Authenticator, a session credential through the clerk.
func (r *Resolver) authenticate(ctx context.Context, header string) (caller, error) {
	token, ok := strings.CutPrefix(header, "Bearer ")
	token = strings.TrimSpace(token)
	if !ok || token == "" {
		return caller{}, fmt.Errorf("%w: send Authorization: Bearer <token>", domain.ErrUnauthenticated)
	}
	if strings.HasPrefix(token, domain.PrefixSession) {
		changeID, sessionID, err := r.Clerk.SessionCaller(ctx, token)
		if err != nil {
			return caller{}, err
		}
		return caller{session: token, sessionID: sessionID, key: "session:" + changeID + "." + sessionID}, nil
	}
	auth := r.Auth
	if auth == nil {
		auth = r.Clerk
	}
	actor, err := auth.Authenticate(ctx, token)
	if err != nil {
		return caller{}, err
	}
	kind := "principal:"
	if actor.Kind == domain.ActorAgent {
		kind = "agent:"
	}
	return caller{actor: &actor, key: kind + actor.ID}, nil
}

// authOutcome is the boundary's answer for one HTTP request.
type authOutcome struct {
	caller caller
	err    error
}

type outcomeKey struct{}

// AuthenticateRequest is the HTTP boundary: it resolves a request's bearer
// token once, before the rate limiter and the operations see the request,
// and returns the request with the outcome in its context (RateKey reads
// it; a failure is answered UNAUTHENTICATED by the operation). Requests
// without the header pass as they came, and so do websocket upgrades, whose
// operations are authenticated one by one (the token may come in the
// connection_init payload, and a connection outlives a credential).
func (r *Resolver) AuthenticateRequest(req *http.Request) *http.Request {
	header := req.Header.Get("Authorization")
	if header == "" || req.Header.Get("Upgrade") != "" { // as gqlgen's websocket transport tells upgrades
		return req
	}
	c, err := r.authenticate(req.Context(), header)
	return req.WithContext(context.WithValue(req.Context(), outcomeKey{}, authOutcome{c, err}))
}

// RateKey names whom a request authenticated by AuthenticateRequest is
// counted against: its principal, agent or session. It reports false for a
// request without a valid bearer token.
func RateKey(ctx context.Context) (string, bool) {
	o, ok := ctx.Value(outcomeKey{}).(authOutcome)
	if !ok || o.err != nil {
		return "", false
	}
	return o.caller.key, true
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
	if a := c.actor; a.Kind == domain.ActorHuman && a.Principal != nil && len(a.Principal.Roles) == 0 {
		// Revoking a principal's last role takes everything, reading too.
		return domain.Actor{}, fmt.Errorf("%w: principal %s holds no role", domain.ErrForbidden, a.ID)
	}
	return *c.actor, nil
}

// reauthorize checks again, for an operation that lasts (a subscription),
// that the token it began with still authenticates a caller who may read:
// not revoked, not a retired agent's key, not a principal stripped of
// every role.
func (r *Resolver) reauthorize(ctx context.Context, header string) error {
	c, err := r.authenticate(ctx, header)
	if err != nil {
		return err
	}
	_, err = actor(context.WithValue(ctx, callerKey{}, c))
	return err
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
