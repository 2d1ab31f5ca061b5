package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/evidence-parity/docket/domain"
	"github.com/evidence-parity/docket/domain/clerk"
)

// oidcAuth authenticates OIDC ID tokens (github.com/coreos/go-oidc/v3) and
// hands every other bearer token to the clerk. A verified token's claim
// (email by default) names the principal; the principal must be registered.
type oidcAuth struct {
	verifier *oidc.IDTokenVerifier
	claim    string
	clerk    *clerk.Clerk
}

// newOIDCAuth discovers the issuer (its /.well-known/openid-configuration
// and JWKS) and verifies tokens for the client id (the audience).
func newOIDCAuth(ctx context.Context, issuer, clientID, claim string, k *clerk.Clerk) (*oidcAuth, error) {
	if clientID == "" {
		return nil, usageErr("--oidc-client-id is required with --oidc-issuer")
	}
	p, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc issuer %s: %w", issuer, err)
	}
	return &oidcAuth{verifier: p.Verifier(&oidc.Config{ClientID: clientID}), claim: claim, clerk: k}, nil
}

// Authenticate resolves a bearer token: ID tokens (JWTs) through OIDC,
// Docket's own tokens through the clerk.
func (o *oidcAuth) Authenticate(ctx context.Context, token string) (domain.Actor, error) {
	if strings.HasPrefix(token, "dkt_") || strings.Count(token, ".") != 2 {
		return o.clerk.Authenticate(ctx, token)
	}
	idt, err := o.verifier.Verify(ctx, token)
	if err != nil {
		return domain.Actor{}, fmt.Errorf("%w: ID token: %v", domain.ErrUnauthenticated, err)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return domain.Actor{}, fmt.Errorf("%w: ID token claims: %v", domain.ErrUnauthenticated, err)
	}
	id, _ := claims[o.claim].(string)
	if id == "" {
		return domain.Actor{}, fmt.Errorf("%w: ID token has no %q claim", domain.ErrUnauthenticated, o.claim)
	}
	if v, _ := claims["email_verified"].(bool); o.claim == "email" && !v {
		return domain.Actor{}, fmt.Errorf("%w: ID token email is not verified (email_verified must be true)", domain.ErrUnauthenticated)
	}
	p, err := o.clerk.Principal(ctx, id)
	if err != nil {
		return domain.Actor{}, err
	}
	if p.ID == "" {
		return domain.Actor{}, fmt.Errorf("%w: %s is not a registered principal", domain.ErrUnauthenticated, id)
	}
	return domain.Actor{Kind: domain.ActorHuman, ID: p.ID, AuthMethod: "oidc", Principal: p}, nil
}

// portalOIDC is the portal's sign-in through the provider (authorization
// code flow, via golang.org/x/oauth2), verified as the API verifies bearer
// ID tokens, plus the nonce.
type portalOIDC struct {
	auth   *oidcAuth
	config oauth2.Config
}

// newPortalOIDC configures the code flow for the discovered provider.
func newPortalOIDC(ctx context.Context, issuer, clientID, clientSecret string, auth *oidcAuth) (*portalOIDC, error) {
	p, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc issuer %s: %w", issuer, err)
	}
	return &portalOIDC{auth: auth, config: oauth2.Config{ClientID: clientID, ClientSecret: clientSecret, Endpoint: p.Endpoint(),
		Scopes: []string{oidc.ScopeOpenID, "email", "profile"}}}, nil
}

func (o *portalOIDC) AuthCodeURL(state, nonce, redirectURL string) string {
	c := o.config
	c.RedirectURL = redirectURL
	return c.AuthCodeURL(state, oidc.Nonce(nonce))
}

func (o *portalOIDC) Exchange(ctx context.Context, code, redirectURL string) (string, error) {
	c := o.config
	c.RedirectURL = redirectURL
	tok, err := c.Exchange(ctx, code)
	if err != nil {
		return "", err
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return "", errors.New("the token response has no id_token")
	}
	return raw, nil
}

func (o *portalOIDC) Verify(ctx context.Context, idToken, nonce string) (domain.Actor, error) {
	t, err := o.auth.verifier.Verify(ctx, idToken)
	if err != nil {
		return domain.Actor{}, fmt.Errorf("%w: ID token: %v", domain.ErrUnauthenticated, err)
	}
	if subtle.ConstantTimeCompare([]byte(t.Nonce), []byte(nonce)) != 1 {
		return domain.Actor{}, fmt.Errorf("%w: ID token nonce does not match this sign-in", domain.ErrUnauthenticated)
	}
	return o.auth.Authenticate(ctx, idToken)
}
