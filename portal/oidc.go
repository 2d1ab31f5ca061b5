package portal

import (
	"context"
	"crypto/subtle"
	"html/template"
	"net/http"
	"time"

	"github.com/evidence-parity/docket/domain"
)

// OIDC is the identity provider the portal signs people in with, through
// the OpenID Connect authorization code flow (OIDC Core 1.0 §3.1).
type OIDC interface {
	// AuthCodeURL is the provider's authorization URL for this sign-in.
	AuthCodeURL(state, nonce, redirectURL string) string
	// Exchange trades the code at the token endpoint for the raw ID token.
	Exchange(ctx context.Context, code, redirectURL string) (idToken string, err error)
	// Verify checks the ID token (signature, issuer, audience, expiry) and
	// its nonce, and returns the registered principal it names. It MUST
	// fail for a token without the nonce given.
	Verify(ctx context.Context, idToken, nonce string) (domain.Actor, error)
}

// pendingSignIn is an OIDC sign-in between the redirect to the provider and
// its return.
type pendingSignIn struct {
	nonce, next string
	expires     time.Time
}

const stateCookie = "docket_oidc_state"

// redirectURL is where the provider sends the browser back to.
func redirectURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/login/oidc/callback"
}

// oidcStart sends the browser to the provider with a fresh state (bound to
// this browser by a cookie, against login CSRF) and nonce (bound to the ID
// token, against replay).
func (p *Portal) oidcStart(w http.ResponseWriter, r *http.Request) {
	state, nonce := randomToken(), randomToken()
	p.mu.Lock()
	now := p.cfg.Now()
	for s, ps := range p.pending {
		if now.After(ps.expires) {
			delete(p.pending, s)
		}
	}
	if len(p.pending) > 10_000 {
		p.mu.Unlock()
		p.fail(w, r, nil, http.StatusServiceUnavailable, "Too many sign-ins in progress; try again in a few minutes.")
		return
	}
	p.pending[state] = &pendingSignIn{nonce: nonce, next: safeNext(r.URL.Query().Get("next")), expires: now.Add(10 * time.Minute)}
	p.mu.Unlock()
	// Lax: the provider's redirect back is a cross-site top-level GET.
	http.SetCookie(w, &http.Cookie{Name: stateCookie, Value: state, Path: "/login/oidc", HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode, MaxAge: 600})
	http.Redirect(w, r, p.cfg.OIDC.AuthCodeURL(state, nonce, redirectURL(r)), http.StatusFound)
}

var continuePage = template.Must(template.New("continue").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={{.}}"><title>Signed in · Docket</title>
<link rel="stylesheet" href="/assets/style.css"></head>
<body><main id="main"><h1>Signed in</h1><p><a href="{{.}}">Continue</a></p></main></body></html>`))

// oidcCallback completes the sign-in. It answers with a page that moves on
// by itself rather than a redirect: the session cookie is SameSite=Strict,
// and a browser withholds it along a redirect chain that began at another
// site.
func (p *Portal) oidcCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	refuse := func(msg string) {
		p.render(w, r, http.StatusUnauthorized, "login", nil, map[string]any{"Error": msg, "OIDC": true})
	}
	if e := q.Get("error"); e != "" {
		refuse("The identity provider refused the sign-in: " + e + ".")
		return
	}
	state := q.Get("state")
	c, err := r.Cookie(stateCookie)
	if err != nil || state == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		refuse("This sign-in did not start in this browser (state mismatch). Start again.")
		return
	}
	p.mu.Lock()
	ps := p.pending[state]
	delete(p.pending, state)
	p.mu.Unlock()
	if ps == nil || p.cfg.Now().After(ps.expires) {
		refuse("This sign-in expired. Start again.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: stateCookie, Value: "", Path: "/login/oidc", MaxAge: -1, HttpOnly: true})
	raw, err := p.cfg.OIDC.Exchange(r.Context(), q.Get("code"), redirectURL(r))
	if err != nil {
		p.cfg.Logger.Warn("oidc code exchange", "err", err)
		refuse("The identity provider did not confirm the sign-in.")
		return
	}
	actor, err := p.cfg.OIDC.Verify(r.Context(), raw, ps.nonce)
	if err != nil || actor.Kind != domain.ActorHuman {
		p.cfg.Logger.Warn("oidc sign-in refused", "err", err)
		refuse("The identity provider's answer did not name a registered principal with a verified address.")
		return
	}
	p.startSession(w, r, actor, "")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	continuePage.Execute(w, safeNext(ps.next))
}
