package test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evidence-parity/docket/anchors/ots/otstest"
)

// TestBinderExportAndVerify exports a binder from a demo ledger anchored
// through stand-in calendars (otstest, on 127.0.0.1: the public calendars
// and Bitcoin cannot be reached here) and verifies it from another
// directory, as an auditor would.
func TestBinderExportAndVerify(t *testing.T) {
	bin := buildDocket(t)
	data := t.TempDir()
	run(t, bin, "demo", "--data", data)
	chain := &otstest.Chain{}
	a, b := otstest.NewCalendar(t, chain), otstest.NewCalendar(t, chain)
	cal := []string{"--data", data, "--calendar", a.URL, "--calendar", b.URL, "--ots-allow-http"}
	run(t, bin, append([]string{"anchor", "now"}, cal...)...)
	a.Mine()
	run(t, bin, append([]string{"anchor", "upgrade"}, cal...)...)
	out := t.TempDir()
	headers := filepath.Join(out, "headers.txt")
	os.WriteFile(headers, []byte(chain.Headers()), 0o644)
	fp := strings.TrimSpace(run(t, bin, "keys", "show", "--fingerprint", "--data", data))

	from := time.Now().UTC().AddDate(0, 0, -120).Format("2006-01-02")
	to := time.Now().UTC().Format("2006-01-02")
	pdf, bundle := filepath.Join(out, "binder.pdf"), filepath.Join(out, "bundle.json")
	msg := run(t, bin, "export", "binder", "--data", data, "--from", from, "--to", to, "--sample", "5", "--seed", "q4-audit",
		"-o", pdf, "--bundle", bundle, "--bitcoin-headers", headers)
	if !strings.Contains(msg, "binder of 5 change(s)") || !strings.Contains(msg, "1 anchor(s)") {
		t.Fatalf("export: %s", msg)
	}

	// The sample is the one the API draws.
	var bd struct {
		Sample struct {
			Selected []string `json:"selected"`
		} `json:"sample"`
	}
	raw, _ := os.ReadFile(bundle)
	json.Unmarshal(raw, &bd)
	srv := startCmd(t, exec.Command(bin, "serve", "--data", data, "--listen", "127.0.0.1:0", "--anchor-interval", "0"))
	creds := demoCredentials(t, data)
	fromT, _ := time.Parse("2006-01-02", from)
	toT, _ := time.Parse("2006-01-02", to)
	d, errs := srv.gql(t, creds["auditor"], `query($from: Time!, $to: Time!) { sample(from: $from, to: $to, size: 5, seed: "q4-audit") { changes { id } } }`,
		map[string]any{"from": fromT.Format(time.RFC3339), "to": toT.AddDate(0, 0, 1).Format(time.RFC3339)})
	if errs != nil {
		t.Fatal(errs)
	}
	var api []string
	for _, c := range d["sample"].(map[string]any)["changes"].([]any) {
		api = append(api, c.(map[string]any)["id"].(string))
	}
	if !slices.Equal(api, bd.Sample.Selected) {
		t.Fatalf("binder sample %v, API sample %v", bd.Sample.Selected, api)
	}

	// The portal's sample page exports the same binder.
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	if resp, err := hc.PostForm(srv.url+"/login", url.Values{"token": {creds["auditor"]}}); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	resp, err := hc.Get(srv.url + "/sample/binder.pdf?from=" + from + "&to=" + to + "&size=5&seed=q4-audit")
	if err != nil {
		t.Fatal(err)
	}
	portalPDF, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pdf" {
		t.Fatalf("portal binder: %d %s", resp.StatusCode, portalPDF)
	}
	pp := filepath.Join(out, "portal.pdf")
	os.WriteFile(pp, portalPDF, 0o644)
	pv := run(t, bin, "verify", "binder", pp, "--fingerprint", fp)
	for _, id := range bd.Sample.Selected {
		if !strings.Contains(pv, "ok      change "+id) {
			t.Fatalf("the portal's binder lacks %s:\n%s", id, pv)
		}
	}

	// An auditor in a fresh directory, with only the PDF, the pinned
	// fingerprint and headers.
	auditor := t.TempDir()
	copyFile(t, pdf, filepath.Join(auditor, "binder.pdf"))
	copyFile(t, headers, filepath.Join(auditor, "headers.txt"))
	// The stand-in chain has the lowest difficulty, hence the flag.
	cmd := exec.Command(bin, "verify", "binder", "binder.pdf", "--fingerprint", fp, "--bitcoin-headers", "headers.txt", "--allow-low-difficulty")
	cmd.Dir = auditor
	res, err := cmd.CombinedOutput()
	if err != nil || strings.Count(string(res), "ok      change ") != 5 || !strings.Contains(string(res), "anchored in Bitcoin block") || !strings.Contains(string(res), "binder verified") {
		t.Fatalf("verify binder (%v):\n%s", err, res)
	}
	run(t, bin, "verify", "binder", bundle, "--fingerprint", fp)

	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no fingerprint", []string{pdf}, 2, "--fingerprint is required"},
		{"another fingerprint", []string{pdf, "--fingerprint", strings.Repeat("ab", 32)}, 1, "not signed by a pinned key"},
		{"not a binder", []string{headers, "--fingerprint", fp}, 1, headers},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runCode(t, bin, append([]string{"verify", "binder"}, c.args...)...)
			if code != c.code || !strings.Contains(stdout+stderr, c.want) {
				t.Fatalf("exit %d, want %d with %q:\n%s%s", code, c.code, c.want, stdout, stderr)
			}
		})
	}
	t.Run("tampered bundle", func(t *testing.T) {
		tampered := strings.Replace(string(raw), `"result": "pass"`, `"result": "fail"`, 1)
		p := filepath.Join(out, "tampered.json")
		os.WriteFile(p, []byte(tampered), 0o644)
		code, stdout, _ := runCode(t, bin, "verify", "binder", p, "--fingerprint", fp)
		if code != 1 || !strings.Contains(stdout, "FAILED  change") {
			t.Fatalf("exit %d:\n%s", code, stdout)
		}
	})
	t.Run("usage", func(t *testing.T) {
		code, _, stderr := runCode(t, bin, "export", "binder", "--data", data, "--from", from, "--to", to, "-o", pdf)
		if code != 2 || !strings.Contains(stderr, "--sample N --seed S or --change ID") {
			t.Fatalf("exit %d %s", code, stderr)
		}
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
