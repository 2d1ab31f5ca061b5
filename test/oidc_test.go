package test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// issuer is an OpenID provider on 127.0.0.1: a discovery document and a
// JWKS, and real RS256 ID tokens.
type issuer struct {
	srv *httptest.Server
	key *rsa.PrivateKey
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is := &issuer{key: key}
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
	is.srv = httptest.NewServer(mux) // 127.0.0.1
	t.Cleanup(is.srv.Close)
	return is
}

// token signs an ID token with key (the issuer's unless given).
func (is *issuer) token(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	if key == nil {
		key = is.key
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
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
	}
}
