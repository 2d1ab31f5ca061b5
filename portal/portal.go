// Package portal is the auditor and approver portal: server-rendered pages
// (html/template, with htmx for partial updates; every page also works
// without JavaScript) over the read models, the ledger and its proofs.
//
// Auditors read everything and change nothing: the population of a period,
// a reproducible sample (projections.Sample, the function the API and the
// binder use), each change's five CC8.1 answers with the events behind
// them, exceptions, the agent inventory, approver metrics, and the
// integrity of what they read (inclusion proofs against the latest signed
// checkpoint, and its anchoring). Approvers also get their queue and the
// plan review page that records PlanViewed and takes their decision. All
// assets are embedded; nothing is loaded from elsewhere.
//
// Sign-in takes a principal API token (POST /login, field "token") and
// keeps a server-side session behind an HttpOnly, SameSite=Strict cookie
// (Secure when served over TLS). Every POST carries a CSRF token bound to
// the session.
package portal

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/evidence-parity/docket/anchors/anchoring"
	"github.com/evidence-parity/docket/domain"
	"github.com/evidence-parity/docket/ledger"
	"github.com/evidence-parity/docket/projections"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Ledger is what the portal reads from the log: a change's records, and
// the proofs that tie them to the latest signed checkpoint.
type Ledger interface {
	ReadStream(ctx context.Context, stream string, from uint64) ([]ledger.Record, error)
	LatestCheckpoint(ctx context.Context) (note []byte, found bool, err error)
	InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error)
	Head(ctx context.Context) (size uint64, root []byte, err error)
}

// Clerk is what the portal asks of the application service: who a token
// belongs to, and the approver's commands. Each MUST record its events in
// the ledger as the GraphQL API does.
type Clerk interface {
	Authenticate(ctx context.Context, secret string) (domain.Actor, error)
	Principal(ctx context.Context, id string) (*domain.Principal, error)
	ViewPlan(ctx context.Context, by domain.Actor, changeID string) (*domain.Change, error)
	Approve(ctx context.Context, by domain.Actor, changeID, planHash, comment string) error
	Reject(ctx context.Context, by domain.Actor, changeID, planHash, comment string) error
	Evidence(ctx context.Context, sha string) (domain.EvidenceStored, error)
}

// Config configures the portal; every field but Now and Logger is
// required.
type Config struct {
	Projections *projections.Projector
	Ledger      Ledger
	Clerk       Clerk
	// Verifiers check the signatures of checkpoint notes (the pinned keys).
	Verifiers note.Verifiers
	// Fingerprint is the checkpoint key's fingerprint, shown to auditors.
	Fingerprint string
	// AnchorsDir holds the anchoring proofs (anchors/anchoring).
	AnchorsDir string
	// OIDC, if set, offers sign-in with the organisation's identity
	// provider beside principal tokens.
	OIDC OIDC
	// Binder, if set, writes the evidence binder (PDF) of a sample: the
	// changes promoted in [from, to) drawn with seed, as the sample page
	// shows them.
	Binder func(ctx context.Context, w io.Writer, from, to time.Time, size int, seed string) error
	// SessionTTL bounds a sign-in (default 8 hours).
	SessionTTL time.Duration
	Now        func() time.Time
	Logger     *slog.Logger
}

// Portal serves the pages.
type Portal struct {
	cfg   Config
	pages map[string]*template.Template
	mux   *http.ServeMux

	mu       sync.Mutex
	sessions map[string]*session
	pending  map[string]*pendingSignIn // OIDC sign-ins by state
}

// session is one sign-in.
type session struct {
	principal string
	// tokenID is the token signed in with; the session ends when it is
	// revoked.
	tokenID string
	method  string
	csrf    string
	expires time.Time
}

// New returns the portal.
func New(cfg Config) (*Portal, error) {
	if cfg.Projections == nil || cfg.Ledger == nil || cfg.Clerk == nil || cfg.Verifiers == nil {
		return nil, errors.New("portal: projections, ledger, clerk and verifier are required")
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 8 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := &Portal{cfg: cfg, sessions: map[string]*session{}, pending: map[string]*pendingSignIn{}, pages: map[string]*template.Template{}}
	if err := p.parseTemplates(); err != nil {
		return nil, err
	}
	p.routes()
	return p, nil
}

func (p *Portal) parseTemplates() error {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return fmt.Errorf("portal: template %s: %w", n, err)
		}
		p.pages[base] = t
	}
	return nil
}

func (p *Portal) routes() {
	m := http.NewServeMux()
	assets, _ := fs.Sub(assetFS, "assets")
	m.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(assets)))
	m.HandleFunc("GET /login", p.loginPage)
	m.HandleFunc("POST /login", p.login)
	if p.cfg.OIDC != nil {
		m.HandleFunc("GET /login/oidc", p.oidcStart)
		m.HandleFunc("GET /login/oidc/callback", p.oidcCallback)
	}
	m.HandleFunc("POST /logout", p.auth(p.logout))
	m.HandleFunc("GET /{$}", p.auth(p.overview))
	m.HandleFunc("GET /changes", p.auth(p.population))
	m.HandleFunc("GET /changes.csv", p.auth(p.populationCSV))
	m.HandleFunc("GET /sample", p.auth(p.sample))
	m.HandleFunc("GET /sample/binder.pdf", p.auth(p.binder))
	m.HandleFunc("GET /changes/{id}", p.auth(p.change))
	m.HandleFunc("GET /evidence/{sha}", p.auth(p.evidence))
	m.HandleFunc("GET /exceptions", p.auth(p.exceptions))
	m.HandleFunc("GET /agents", p.auth(p.agents))
	m.HandleFunc("GET /approvers", p.auth(p.approvers))
	m.HandleFunc("GET /queue", p.auth(p.approverOnly(p.queue)))
	m.HandleFunc("GET /review/{id}", p.auth(p.approverOnly(p.review)))
	m.HandleFunc("POST /changes/{id}/approve", p.auth(p.approverOnly(p.decide(true))))
	m.HandleFunc("POST /changes/{id}/reject", p.auth(p.approverOnly(p.decide(false))))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		p.fail(w, r, nil, http.StatusNotFound, "No such page.")
	})
	p.mux = m
}

// ServeHTTP serves the portal with the headers every page carries: no
// caching of evidence pages, no framing, no content-type sniffing, and a
// content security policy that allows only the portal's own assets.
func (p *Portal) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	if !strings.HasPrefix(r.URL.Path, "/assets/") {
		h.Set("Cache-Control", "no-store")
	}
	// r.URL.Query() drops what it cannot parse; a page must not silently
	// show something other than what was asked for.
	if _, err := url.ParseQuery(r.URL.RawQuery); err != nil {
		p.fail(w, r, nil, http.StatusBadRequest, "The query string is malformed: "+err.Error())
		return
	}
	p.mux.ServeHTTP(w, r)
}

const cookieName = "docket_session"

// viewer is the signed-in principal as the handlers see them.
type viewer struct {
	Actor    domain.Actor
	CSRF     string
	Approver bool
	Auditor  bool
}

type ctxKey struct{}

func viewerOf(r *http.Request) *viewer { v, _ := r.Context().Value(ctxKey{}).(*viewer); return v }

// auth admits a request with a live session of a principal who may use the
// portal (auditor, approver or admin), re-reading the principal each time
// so a revoked token or role takes effect at once; others are sent to sign
// in (GET) or refused (POST).
func (p *Portal) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := p.sessionOf(r)
		if s == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			p.fail(w, r, nil, http.StatusForbidden, "Sign in first.")
			return
		}
		pr, err := p.cfg.Clerk.Principal(r.Context(), s.principal)
		if err != nil || pr == nil || pr.ID == "" || (s.tokenID != "" && pr.Tokens[s.tokenID] == "") {
			p.endSession(r)
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		v := &viewer{
			Actor:    domain.Actor{Kind: domain.ActorHuman, ID: pr.ID, AuthMethod: s.method, Credential: s.tokenID, Principal: pr},
			CSRF:     s.csrf,
			Approver: pr.Roles[domain.RoleApprover],
			Auditor:  pr.Roles[domain.RoleAuditor] || pr.Roles[domain.RoleAdmin],
		}
		if !v.Approver && !v.Auditor {
			p.fail(w, r, v, http.StatusForbidden, "The portal is for auditors and approvers; your roles give you neither.")
			return
		}
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil {
				p.fail(w, r, v, http.StatusBadRequest, "The form could not be read.")
				return
			}
			if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(s.csrf)) != 1 {
				p.fail(w, r, v, http.StatusForbidden, "This form has expired or did not come from the portal (CSRF check failed). Reload the page and try again.")
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, v)))
	}
}

// approverOnly admits approvers; auditors and everyone else get 403.
func (p *Portal) approverOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if v := viewerOf(r); !v.Approver {
			p.fail(w, r, v, http.StatusForbidden, "Only approvers may review and decide plans.")
			return
		}
		h(w, r)
	}
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (p *Portal) sessionOf(r *http.Request) *session {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.sessions[c.Value]
	if s == nil {
		return nil
	}
	if p.cfg.Now().After(s.expires) {
		delete(p.sessions, c.Value)
		return nil
	}
	return s
}

func (p *Portal) endSession(r *http.Request) {
	if c, err := r.Cookie(cookieName); err == nil {
		p.mu.Lock()
		delete(p.sessions, c.Value)
		p.mu.Unlock()
	}
}

func (p *Portal) loginPage(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusOK, "login", nil, map[string]any{"Next": safeNext(r.URL.Query().Get("next")), "OIDC": p.cfg.OIDC != nil})
}

// safeNext keeps a post-login redirect on this site: an absolute path with
// no scheme, host or control characters (browsers drop tabs and newlines
// from URLs, so "/\t/evil.example" would leave the site), else "/".
func safeNext(next string) string {
	for i := 0; i < len(next); i++ {
		if next[i] < 0x20 || next[i] == 0x7f || next[i] == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.User != nil || u.Host != "" || u.Opaque != "" ||
		!strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return "/"
	}
	return next
}

func (p *Portal) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		p.render(w, r, http.StatusBadRequest, "login", nil, map[string]any{"Error": "The form could not be read.", "OIDC": p.cfg.OIDC != nil})
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	actor, err := p.cfg.Clerk.Authenticate(r.Context(), strings.TrimSpace(r.PostForm.Get("token")))
	if err != nil || actor.Kind != domain.ActorHuman || actor.Principal == nil {
		p.render(w, r, http.StatusUnauthorized, "login", nil, map[string]any{"Error": "That token is not a valid principal token.", "Next": next, "OIDC": p.cfg.OIDC != nil})
		return
	}
	tokenID, _ := actor.Principal.MatchToken(strings.TrimSpace(r.PostForm.Get("token")))
	p.startSession(w, r, actor, tokenID)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// startSession signs actor in: a fresh session id (never one the browser
// brought) behind the session cookie.
func (p *Portal) startSession(w http.ResponseWriter, r *http.Request, actor domain.Actor, tokenID string) {
	p.endSession(r)
	id := randomToken()
	p.mu.Lock()
	p.sessions[id] = &session{principal: actor.ID, tokenID: tokenID, method: actor.AuthMethod, csrf: randomToken(), expires: p.cfg.Now().Add(p.cfg.SessionTTL)}
	p.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/", HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, MaxAge: int(p.cfg.SessionTTL.Seconds())})
}

func (p *Portal) logout(w http.ResponseWriter, r *http.Request) {
	p.endSession(r)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// page is what every template receives.
type page struct {
	Title  string
	Viewer *viewer
	Data   any
	// Partial is true for htmx requests, which get the page's main content
	// only.
	Partial bool
}

func (p *Portal) render(w http.ResponseWriter, r *http.Request, status int, name string, v *viewer, data any) {
	t, ok := p.pages[name]
	if !ok {
		http.Error(w, "no such template", http.StatusInternalServerError)
		return
	}
	pg := page{Title: titles[name], Viewer: v, Data: data, Partial: r.Header.Get("HX-Request") == "true" && r.Header.Get("HX-Target") == "main"}
	var b strings.Builder
	if err := t.Execute(&b, pg); err != nil {
		p.cfg.Logger.Error("portal template", "page", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprint(w, b.String())
}

// fail renders an error page; err (if any) is logged, not shown.
func (p *Portal) fail(w http.ResponseWriter, r *http.Request, v *viewer, status int, msg string) {
	p.render(w, r, status, "error", v, map[string]any{"Status": status, "StatusText": http.StatusText(status), "Message": msg})
}

func (p *Portal) internal(w http.ResponseWriter, r *http.Request, err error) {
	p.cfg.Logger.Error("portal", "path", r.URL.Path, "err", err)
	p.fail(w, r, viewerOf(r), http.StatusInternalServerError, "Something went wrong on our side; it has been logged.")
}

var titles = map[string]string{
	"login": "Sign in", "overview": "Overview", "population": "Population", "sample": "Sample",
	"change": "Change", "exceptions": "Exceptions", "agents": "Agent inventory", "approvers": "Approver metrics",
	"queue": "Approval queue", "review": "Plan review", "error": "Error",
}

// anchorStatus is the latest complete anchor, else the latest pending one,
// for the integrity banner.
func (p *Portal) anchorStatus() *anchoring.Anchor {
	if p.cfg.AnchorsDir == "" {
		return nil
	}
	last, complete, err := anchoring.Latest(p.cfg.AnchorsDir)
	if err != nil {
		p.cfg.Logger.Error("portal: anchors", "err", err)
		return nil
	}
	if complete != nil {
		return complete
	}
	return last
}
