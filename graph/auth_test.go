package graph

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/evidence-parity/docket/domain"
)

// stubAuth stands in for the clerk: this test is about which requests the
// boundary authenticates, not about tokens.
type stubAuth struct{ calls int }

func (a *stubAuth) Authenticate(context.Context, string) (domain.Actor, error) {
	a.calls++
	return domain.Actor{Kind: domain.ActorHuman, ID: "bob"}, nil
}

// The boundary authenticates plain requests once, and leaves every
// websocket upgrade (any Upgrade header, as gqlgen's transport accepts
// "websocket, h2c" too) to the operations, which authenticate one by one.
func TestAuthenticateRequestLeavesUpgradesToTheOperations(t *testing.T) {
	auth := &stubAuth{}
	r := &Resolver{Auth: auth}
	for _, tc := range []struct {
		upgrade string
		stored  bool
	}{{"", true}, {"websocket", false}, {"WebSocket", false}, {"websocket, h2c", false}} {
		req := httptest.NewRequest("GET", "/graphql", nil)
		req.Header.Set("Authorization", "Bearer dkt_tok_bob.x")
		if tc.upgrade != "" {
			req.Header.Set("Upgrade", tc.upgrade)
		}
		key, ok := RateKey(r.AuthenticateRequest(req).Context())
		if ok != tc.stored || (ok && key != "principal:bob") {
			t.Errorf("Upgrade %q: rate key %q, %v; want an outcome stored: %v", tc.upgrade, key, ok, tc.stored)
		}
	}
	if auth.calls != 1 {
		t.Errorf("%d authentications, want 1 (the plain request)", auth.calls)
	}
}
