package test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket/wsjson"
	"github.com/go-jose/go-jose/v4"
)

// issuer is an OpenID provider on 127.0.0.1: a discovery document and a
// JWKS, and real RS256 ID tokens.
type issuer struct {
	srv *httptest.Server
	key *rsa.PrivateKey

	// For the authorization code flow: who signs in at /auth, and the
	// codes handed out (code → nonce).
	mu    sync.Mutex
	user  string
	codes map[string]string
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is := &issuer{key: key, codes: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": is.srv.URL, "jwks_uri": is.srv.URL + "/jwks", "authorization_endpoint": is.srv.URL + "/auth",
			"token_endpoint": is.srv.URL + "/token", "id_token_signing_alg_values_supported": []string{"RS256"},
			"response_types_supported": []string{"id_token"}, "subject_types_supported": []string{"public"},
		})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	// /auth signs is.user in at once and sends the browser back with a code.
	mux.HandleFunc("/auth", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("client_id") != "docket" || q.Get("response_type") != "code" || q.Get("nonce") == "" {
			http.Error(w, "bad authorization request", http.StatusBadRequest)
			return
		}
		code := fmt.Sprintf("code-%d", time.Now().UnixNano())
		is.mu.Lock()
		is.codes[code] = q.Get("nonce")
		is.mu.Unlock()
		back, _ := url.Parse(q.Get("redirect_uri"))
		v := back.Query()
		v.Set("code", code)
		v.Set("state", q.Get("state"))
		back.RawQuery = v.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	})
	// /token redeems a code once, for the client with its secret.
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		is.mu.Lock()
		nonce, found := is.codes[r.PostForm.Get("code")]
		delete(is.codes, r.PostForm.Get("code"))
		user := is.user
		is.mu.Unlock()
		if id != "docket" || secret != "s3cret" || !found || r.PostForm.Get("grant_type") != "authorization_code" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		now := time.Now()
		idt := is.token(nil, nil, map[string]any{"iss": is.srv.URL, "sub": "u-" + user, "aud": "docket", "email": user, "email_verified": true,
			"nonce": nonce, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 3600, "id_token": idt})
	})
	is.srv = httptest.NewServer(mux) // 127.0.0.1
	t.Cleanup(is.srv.Close)
	return is
}

// token signs an ID token with key (the issuer's unless given).
func (is *issuer) token(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	if t != nil {
		t.Helper()
	}
	if key == nil {
		key = is.key
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		panic(err)
	}
	payload, _ := json.Marshal(claims)
	obj, err := signer.Sign(payload)
	if err != nil {
		panic(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		panic(err)
	}
	return s
}

func TestOIDCIDTokens(t *testing.T) {
	bin := buildDocket(t)
	data := t.TempDir()
	run(t, bin, "principals", "add", "bob@acme.example", "--data", data, "--role", "approver", "--authority", "file:**=write")
	is := newIssuer(t)
	cmd := exec.Command(bin, "serve", "--data", data, "--listen", "127.0.0.1:0", "--oidc-issuer", is.srv.URL, "--oidc-client-id", "docket")
	s := startCmd(t, cmd)

	now := time.Now()
	claims := func(mod func(map[string]any)) map[string]any {
		c := map[string]any{"iss": is.srv.URL, "sub": "u-1", "aud": "docket", "email": "bob@acme.example", "email_verified": true,
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		if mod != nil {
			mod(c)
		}
		return c
	}
	d := mustData(t)(s.gql(t, is.token(t, nil, claims(nil)), `{ me { kind id roles } }`, nil))
	if me := d["me"].(map[string]any); me["id"] != "bob@acme.example" || me["kind"] != "human" {
		t.Fatalf("me = %v", me)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	before := verified(t, bin, data)
	for name, tok := range map[string]string{
		"expired":         is.token(t, nil, claims(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix(); c["iat"] = now.Add(-time.Hour).Unix() })),
		"wrong audience":  is.token(t, nil, claims(func(c map[string]any) { c["aud"] = "someone-else" })),
		"wrong issuer":    is.token(t, nil, claims(func(c map[string]any) { c["iss"] = "https://evil.example" })),
		"another key":     is.token(t, other, claims(nil)),
		"unknown person":  is.token(t, nil, claims(func(c map[string]any) { c["email"] = "mallory@acme.example" })),
		"unverified mail": is.token(t, nil, claims(func(c map[string]any) { c["email_verified"] = false })),
		"not a JWT":       "a.b.c",
	} {
		if _, errs := s.gql(t, tok, `{ me { id } }`, nil); errCode(errs) != "UNAUTHENTICATED" {
			t.Errorf("%s: %v, want UNAUTHENTICATED", name, errs)
		}
		// bob may declare a freeze, but not with a bad token.
		if _, errs := s.gql(t, tok, `mutation { declareFreeze(input: {environment: "production", reason: "r"}) { freezeId } }`, nil); errCode(errs) != "UNAUTHENTICATED" {
			t.Errorf("%s declaring a freeze: %v, want UNAUTHENTICATED", name, errs)
		}
	}
	if after := verified(t, bin, data); eventCount(t, after) != eventCount(t, before) {
		t.Fatalf("verify before %q, after %q: refused tokens must write nothing", before, after)
	}
}

// TestPortalOIDCSignIn signs in to the portal through the provider with the
// authorization code flow, as a browser would (cookies, redirects).
func TestPortalOIDCSignIn(t *testing.T) {
	bin := buildDocket(t)
	data := t.TempDir()
	run(t, bin, "principals", "add", "carol@acme.example", "--data", data, "--role", "auditor")
	is := newIssuer(t)
	s := startCmd(t, exec.Command(bin, "serve", "--data", data, "--listen", "127.0.0.1:0", "--anchor-interval", "0",
		"--oidc-issuer", is.srv.URL, "--oidc-client-id", "docket", "--oidc-client-secret", "s3cret"))
	browse := func(user string) (*http.Client, int, string) {
		is.mu.Lock()
		is.user = user
		is.mu.Unlock()
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar}
		resp, err := c.Get(s.url + "/login/oidc?next=" + url.QueryEscape("/agents?from=2026-01-01&to=2026-12-31"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return c, resp.StatusCode, string(b)
	}
	c, code, body := browse("carol@acme.example")
	// The page moves on to where the sign-in began, query string included.
	if code != 200 || !strings.Contains(body, `url=/agents?from=2026-01-01&amp;to=2026-12-31"`) {
		t.Fatalf("callback: %d\n%s", code, body)
	}
	resp, err := c.Get(s.url + "/agents")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "carol@acme.example (auditor)") {
		t.Fatalf("signed-in page: %d\n%s", resp.StatusCode, page)
	}
	// Someone the provider knows but Docket does not is refused.
	if _, code, body := browse("mallory@acme.example"); code != http.StatusUnauthorized || !strings.Contains(body, "registered principal") {
		t.Fatalf("unknown person: %d", code)
	}
	// A callback that did not start in this browser is refused.
	resp, err = http.Get(s.url + "/login/oidc/callback?code=x&state=forged")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged callback: %d", resp.StatusCode)
	}
	// The sign-in page offers the provider.
	resp, _ = http.Get(s.url + "/login")
	lp, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(lp), `href="/login/oidc`) {
		t.Fatal("the sign-in page does not offer the identity provider")
	}
}

// TestWebsocketOperationsAuthenticatedOneByOne opens a websocket with an ID
// token about to expire (sent on the upgrade request): an operation runs
// while the token is valid, and the same operation on the same connection
// is refused once it has expired.
func TestWebsocketOperationsAuthenticatedOneByOne(t *testing.T) {
	bin := buildDocket(t)
	data := t.TempDir()
	run(t, bin, "principals", "add", "bob@acme.example", "--data", data, "--role", "auditor")
	is := newIssuer(t)
	s := startCmd(t, exec.Command(bin, "serve", "--data", data, "--listen", "127.0.0.1:0", "--oidc-issuer", is.srv.URL, "--oidc-client-id", "docket"))
	exp := time.Now().Add(3 * time.Second).Truncate(time.Second) // JWT times are whole seconds
	tok := is.token(t, nil, map[string]any{"iss": is.srv.URL, "sub": "u-1", "aud": "docket", "email": "bob@acme.example", "email_verified": true,
		"iat": time.Now().Unix(), "exp": exp.Unix()})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn := s.dialWS(ctx, t, http.Header{"Authorization": {"Bearer " + tok}})
	wsjson.Write(ctx, conn, map[string]any{"type": "connection_init"})
	me := func(id string) string {
		wsjson.Write(ctx, conn, map[string]any{"id": id, "type": "subscribe", "payload": map[string]any{"query": `{ me { id } }`}})
		for {
			var m map[string]any
			if err := wsjson.Read(ctx, conn, &m); err != nil {
				t.Fatal(err)
			}
			if m["id"] == id && m["type"] != "complete" {
				raw, _ := json.Marshal(m["payload"])
				return string(raw)
			}
		}
	}
	if time.Now().After(exp) {
		t.Fatal("the token expired before the first operation; the machine is too slow for this test's 2–3 s")
	}
	if got := me("1"); !strings.Contains(got, `"id":"bob@acme.example"`) {
		t.Fatalf("with a valid token: %s", got)
	}
	time.Sleep(time.Until(exp) + time.Second)
	if got := me("2"); !strings.Contains(got, "UNAUTHENTICATED") {
		t.Fatalf("after the token expired: %s", got)
	}
}
