package portal_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/evidence-parity/docket/domain"
	"github.com/evidence-parity/docket/domain/clerk"
	"github.com/evidence-parity/docket/domain/clerk/clerktest"
	"github.com/evidence-parity/docket/portal"
	"github.com/evidence-parity/docket/projections"
)

// site is a portal over a real SQLite ledger and read models, served on
// 127.0.0.1, with tokens for an auditor (carol), an approver (bob) and a
// requester (alice).
type site struct {
	w                    *clerktest.World
	proj                 *projections.Projector
	srv                  *httptest.Server
	carol, bob, alice    string
	tokenIDs             map[string]string // principal → the id of the token above
	promoted, with, open string            // change ids: clean, deviated, awaiting approval
}

func newSite(t *testing.T, withChanges bool) *site {
	t.Helper()
	ctx := context.Background()
	w := clerktest.NewWorld(t)
	k := w.Clerk
	if err := k.RegisterPrincipal(ctx, clerk.System, "carol", "Carol", "carol@acme.example"); err != nil {
		t.Fatal(err)
	}
	if err := k.GrantRole(ctx, clerk.System, "carol", domain.RoleAuditor, nil); err != nil {
		t.Fatal(err)
	}
	s := &site{w: w, tokenIDs: map[string]string{}}
	var err error
	for id, dst := range map[string]*string{"carol": &s.carol, "bob": &s.bob, "alice": &s.alice} {
		var tokenID string
		if tokenID, *dst, err = k.IssueToken(ctx, clerk.System, id); err != nil {
			t.Fatal(err)
		}
		s.tokenIDs[id] = tokenID
	}
	if withChanges {
		s.promoted, s.with, s.open = story(t, w)
	}
	if _, err := w.Store.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if s.proj, err = projections.Open(ctx, filepath.Join(t.TempDir(), "p.db"), w.Store, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.proj.Close() })
	if err := s.proj.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	vs, err := w.Store.Verifiers(ctx, w.FP)
	if err != nil {
		t.Fatal(err)
	}
	p, err := portal.New(portal.Config{Projections: s.proj, Ledger: w.Store, Clerk: k, Verifiers: vs, Fingerprint: w.FP, Now: w.Now})
	if err != nil {
		t.Fatal(err)
	}
	// The read models follow the ledger live, as under docket serve.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.proj.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	s.srv = httptest.NewServer(p)
	t.Cleanup(s.srv.Close)
	return s
}

// story records a clean promoted change, a promoted change with a resolved
// deviation, and a plan awaiting approval.
func story(t *testing.T, w *clerktest.World) (clean, deviated, open string) {
	t.Helper()
	ctx := context.Background()
	k := w.Clerk
	clean, deviated = w.Promoted(t, false), w.Promoted(t, true)
	open, _, err := k.SubmitPlan(ctx, w.Agent, "", "alice", clerktest.Plan())
	if err != nil {
		t.Fatal(err)
	}
	return clean, deviated, open
}

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	t *testing.T
	c *http.Client
	s *site
}

func (s *site) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, s: s, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) get(path string) (int, string, http.Header) {
	b.t.Helper()
	resp, err := b.c.Get(b.s.srv.URL + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

func (b *browser) post(path string, form url.Values) (int, string, http.Header) {
	b.t.Helper()
	resp, err := b.c.PostForm(b.s.srv.URL+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

func (b *browser) login(token string) {
	b.t.Helper()
	code, _, h := b.post("/login", url.Values{"token": {token}})
	if code != http.StatusSeeOther || h.Get("Location") != "/" {
		b.t.Fatalf("login: %d %v", code, h)
	}
}

// csrf reads the CSRF token from a page.
func csrf(t *testing.T, body string) string {
	t.Helper()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no CSRF token on the page")
	}
	return m[1]
}

func period(s *site) string {
	day := s.w.Now().Format("2006-01-02")
	return "from=2026-11-01&to=" + day
}

func TestSignIn(t *testing.T) {
	s := newSite(t, false)
	b := s.browser(t)
	if code, _, h := b.get("/changes?x=1"); code != http.StatusSeeOther || h.Get("Location") != "/login?next=%2Fchanges%3Fx%3D1" {
		t.Fatalf("signed out: %d %v", code, h)
	}
	if code, body, _ := b.post("/login", url.Values{"token": {"dkt_tok_carol.forged"}}); code != http.StatusUnauthorized || !strings.Contains(body, "not a valid principal token") {
		t.Fatalf("forged token: %d", code)
	}
	code, _, h := b.post("/login", url.Values{"token": {s.carol}, "next": {"/agents"}})
	if code != http.StatusSeeOther || h.Get("Location") != "/agents" {
		t.Fatalf("login: %d %v", code, h)
	}
	cookie := h.Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(cookie, want) {
			t.Fatalf("cookie %q lacks %s", cookie, want)
		}
	}
	if strings.Contains(cookie, "Secure") {
		t.Fatal("Secure cookie over plain HTTP would never be sent back")
	}
	// An open redirect is refused.
	b2 := s.browser(t)
	for _, next := range []string{"//evil.example/", "/\t/evil.example", "/\\evil.example", "https://evil.example/"} {
		if _, _, h := b2.post("/login", url.Values{"token": {s.carol}, "next": {next}}); h.Get("Location") != "/" {
			t.Fatalf("next=%q: redirected to %s", next, h.Get("Location"))
		}
	}
	// Signing out ends the session; a forged sign-out is refused.
	_, body, _ := b.get("/")
	if code, _, _ := b.post("/logout", url.Values{"csrf": {"forged"}}); code != http.StatusForbidden {
		t.Fatalf("forged sign-out: %d", code)
	}
	if code, _, _ := b.post("/logout", url.Values{"csrf": {csrf(t, body)}}); code != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", code)
	}
	if code, _, _ := b.get("/"); code != http.StatusSeeOther {
		t.Fatalf("after sign-out: %d", code)
	}
	// A requester has no business here.
	b3 := s.browser(t)
	b3.login(s.alice)
	if code, _, _ := b3.get("/"); code != http.StatusForbidden {
		t.Fatalf("requester: %d", code)
	}
	// Revoking the token a session signed in with ends the session at its
	// next request, though the principal holds another token.
	b4 := s.browser(t)
	b4.login(s.carol)
	if code, _, _ := b4.get("/"); code != http.StatusOK {
		t.Fatalf("signed in: %d", code)
	}
	ctx := context.Background()
	_, other, err := s.w.Clerk.IssueToken(ctx, clerk.System, "carol")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.w.Clerk.RevokeToken(ctx, clerk.System, "carol", s.tokenIDs["carol"]); err != nil {
		t.Fatal(err)
	}
	if code, _, h := b4.get("/"); code != http.StatusSeeOther || h.Get("Location") != "/login" {
		t.Fatalf("after the token's revocation: %d to %q, want 303 to /login", code, h.Get("Location"))
	}
	b5 := s.browser(t)
	b5.login(other)
	if code, _, _ := b5.get("/"); code != http.StatusOK {
		t.Fatalf("signed in with carol's other token: %d", code)
	}
}

func TestPagesEmpty(t *testing.T) {
	s := newSite(t, false)
	b := s.browser(t)
	b.login(s.carol)
	for path, want := range map[string]string{
		"/?" + period(s):                          "None in this period.",
		"/changes?" + period(s):                   "No changes match.",
		"/sample?" + period(s) + "&seed=s&size=5": "A sample of <strong>0</strong> of the <strong>0</strong>",
		"/exceptions":                             "No exceptions.",
		"/agents":                                 "claude-ci",
		"/approvers?" + period(s):                 "No approvals in this period.",
	} {
		t.Run(path, func(t *testing.T) {
			code, body, _ := b.get(path)
			if code != http.StatusOK || !strings.Contains(body, want) {
				t.Fatalf("%d, want 200 with %q:\n%s", code, want, body)
			}
		})
	}
}

func TestPagesNormal(t *testing.T) {
	s := newSite(t, true)
	b := s.browser(t)
	b.login(s.carol)
	for path, wants := range map[string][]string{
		"/?" + period(s):                              {`<dd><a href="/changes?`, ">2</a></dd>", "Latest checkpoint", s.w.FP},
		"/changes?" + period(s):                       {s.promoted, s.with, "<strong>2</strong> change(s)"},
		"/changes?" + period(s) + "&deviation=yes":    {s.with, "<strong>1</strong> change(s)"},
		"/exceptions":                                 {s.with, "remediated"},
		"/approvers?" + period(s):                     {"bob", "<td>2</td>"},
		"/changes/" + s.with:                          {"Who authorized the change?", "OUT OF SCOPE", "exception", "✓ included in checkpoint", "download the report"},
		"/sample?" + period(s) + "&seed=fixed&size=1": {"A sample of <strong>1</strong> of the <strong>2</strong>"},
	} {
		t.Run(path, func(t *testing.T) {
			code, body, _ := b.get(path)
			if code != http.StatusOK {
				t.Fatalf("%d:\n%s", code, body)
			}
			for _, w := range wants {
				if !strings.Contains(body, w) {
					t.Fatalf("page lacks %q:\n%s", w, body)
				}
			}
			if regexp.MustCompile(`/changes/[^"]+/(approve|reject)`).MatchString(body) || strings.Contains(body, "Approval queue") {
				t.Fatal("an auditor is shown an approver's control")
			}
		})
	}
	t.Run("every event of a change is proved", func(t *testing.T) {
		_, body, _ := b.get("/changes/" + s.promoted)
		m := regexp.MustCompile(`<strong>(\d+) of (\d+)</strong> events were checked`).FindStringSubmatch(body)
		if m == nil || m[1] != m[2] {
			t.Fatalf("proofs: %v", m)
		}
	})
	t.Run("csv states the query and the checkpoint", func(t *testing.T) {
		code, body, h := b.get("/changes.csv?" + period(s))
		if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") {
			t.Fatalf("%d %v", code, h)
		}
		lines := strings.Split(strings.TrimSpace(body), "\n")
		if len(lines) != 4 || !strings.Contains(lines[0], "query: from=2026-11-01") || !regexp.MustCompile(`checkpoint size: [1-9]`).MatchString(lines[0]) {
			t.Fatalf("csv:\n%s", body)
		}
	})
	t.Run("sample without a seed redirects to one", func(t *testing.T) {
		code, _, h := b.get("/sample?" + period(s))
		loc, _ := url.Parse(h.Get("Location"))
		if code != http.StatusSeeOther || loc.Query().Get("seed") == "" || loc.Query().Get("size") != "25" {
			t.Fatalf("%d %v", code, h)
		}
		_, first, _ := b.get(loc.String())
		_, again, _ := b.get(loc.String())
		if first != again {
			t.Fatal("the same sample URL showed different samples")
		}
	})
	t.Run("evidence downloads", func(t *testing.T) {
		_, body, _ := b.get("/changes/" + s.promoted)
		m := regexp.MustCompile(`href="/evidence/([0-9a-f]{64})"`).FindStringSubmatch(body)
		if m == nil {
			t.Fatal("no evidence link")
		}
		code, content, h := b.get("/evidence/" + m[1])
		if code != 200 || !strings.Contains(h.Get("Content-Disposition"), "attachment") || !strings.Contains(content, "<testsuite") && !strings.Contains(content, "runs") {
			t.Fatalf("%d %v", code, h)
		}
	})
}

func TestPagesErrors(t *testing.T) {
	s := newSite(t, true)
	b := s.browser(t)
	b.login(s.carol)
	for path, want := range map[string]int{
		"/changes?from=2026-13-45":                     400,
		"/?from=yesterday":                             400,
		"/approvers?to=2026-02-30":                     400,
		"/sample?from=2026-11-09&to=2026-11-01&seed=x": 400,
		"/sample/binder.pdf?" + period(s):              400,
		"/changes.csv?deviation=perhaps":               400,
		"/changes?from=2026-11-10&to=2026-11-01":       400,
		"/changes?" + period(s) + "&deviation=maybe":   400,
		"/changes?" + period(s) + "&status=submitted":  400,
		"/changes?" + period(s) + "&after=%%%":         400,
		"/sample?" + period(s) + "&size=0&seed=x":      400,
		"/sample?" + period(s) + "&size=many&seed=x":   400,
		"/exceptions?open=perhaps":                     400,
		"/changes/chg-does-not-exist":                  404,
		"/evidence/abc":                                400,
		"/evidence/" + strings.Repeat("0", 64):         404,
		"/no/such/page":                                404,
		"/queue":                                       403,
		"/review/" + s.open:                            403,
	} {
		t.Run(path, func(t *testing.T) {
			code, body, _ := b.get(path)
			if code != want || !strings.Contains(body, "<h1>") {
				t.Fatalf("%d, want %d:\n%s", code, want, body)
			}
		})
	}
}

func TestApproverFlow(t *testing.T) {
	s := newSite(t, true)
	ctx := context.Background()
	carol := s.browser(t)
	carol.login(s.carol)
	_, page, _ := carol.get("/")

	// An auditor posting an approval, even with a valid CSRF token, is
	// refused, and nothing is written.
	before, _, _ := s.w.Store.Head(ctx)
	if code, _, _ := carol.post("/changes/"+s.open+"/approve", url.Values{"csrf": {csrf(t, page)}, "planHash": {"x"}}); code != http.StatusForbidden {
		t.Fatalf("auditor approve: %d", code)
	}
	if after, _, _ := s.w.Store.Head(ctx); after != before {
		t.Fatal("a refused approval wrote to the ledger")
	}

	bob := s.browser(t)
	bob.login(s.bob)
	_, queue, _ := bob.get("/queue")
	if !strings.Contains(queue, s.open) {
		t.Fatalf("queue lacks %s:\n%s", s.open, queue)
	}
	code, review, _ := bob.get("/review/" + s.open)
	if code != 200 {
		t.Fatalf("review: %d\n%s", code, review)
	}
	c, _ := s.w.Clerk.Change(ctx, s.open)
	if _, ok := c.Views["bob"]; !ok {
		t.Fatal("opening the review did not record PlanViewed")
	}
	hash := regexp.MustCompile(`name="planHash" value="([0-9a-f]+)"`).FindStringSubmatch(review)[1]
	// A forged POST (no CSRF token) is refused.
	if code, _, _ := bob.post("/changes/"+s.open+"/approve", url.Values{"planHash": {hash}}); code != http.StatusForbidden {
		t.Fatalf("forged approve: %d", code)
	}
	s.w.Advance(10 * time.Minute)
	code, _, h := bob.post("/changes/"+s.open+"/approve", url.Values{"csrf": {csrf(t, review)}, "planHash": {hash}, "comment": {"read it all"}})
	if code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/queue?done=") {
		t.Fatalf("approve: %d %v", code, h)
	}
	if c, _ := s.w.Clerk.Change(ctx, s.open); c.Approval == nil || c.Approval.Approver != "bob" || c.Approval.Comment != "read it all" {
		t.Fatalf("approval not recorded: %+v", c.Approval)
	}
	if _, queue, _ = bob.get("/queue"); strings.Contains(queue, s.open) {
		t.Fatal("the approved change is still in the queue")
	}
	// Deciding again is a conflict, said plainly.
	if code, body, _ := bob.post("/changes/"+s.open+"/reject", url.Values{"csrf": {csrf(t, review)}, "planHash": {hash}}); code != http.StatusConflict || !strings.Contains(body, "already") {
		t.Fatalf("second decision: %d", code)
	}
}
