package test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/evidence-parity/docket/projections"
)

// chrome starts headless Debian Chromium (scripts/install-chromium.sh) for
// one test, with a fresh profile and no background networking, and saves a
// screenshot to the test's artifact directory when the test fails.
func chrome(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium not installed: run scripts/install-chromium.sh")
		}
		t.Skip("chromium not installed: run scripts/install-chromium.sh")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
		chromedp.WindowSize(1280, 1000))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() {
		if t.Failed() {
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if png, err := chromedp.Run(sctx, chromedp.FullScreenshot(80)); err == nil {
				p := filepath.Join(t.ArtifactDir(), "failure.png")
				os.WriteFile(p, png, 0o644)
				t.Logf("screenshot: %s", p)
			}
			cancel()
		}
		cancelT()
		cancelC()
		cancelA()
	})
	return ctx
}

func TestPortalInChromium(t *testing.T) {
	bin := buildDocket(t)
	data := t.TempDir()
	run(t, bin, "demo", "--data", data)
	creds := demoCredentials(t, data)
	srv := startCmd(t, exec.Command(bin, "serve", "--data", data, "--listen", "127.0.0.1:0", "--anchor-interval", "0"))
	ctx := chrome(t)

	signIn := func(token string) {
		t.Helper()
		if err := chromedp.Do(ctx,
			chromedp.Navigate(srv.url+"/login"),
			chromedp.WaitVisible(chromedp.CSS(`#token`)),
			chromedp.SendKeys(chromedp.CSS(`#token`), token),
			chromedp.Submit(chromedp.CSS(`#token`)),
			chromedp.WaitVisible(chromedp.CSS(`form.who`)), // only signed-in pages have it
		); err != nil {
			t.Fatal(err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		return s
	}

	// The auditor signs in and reads the overview.
	signIn(creds["auditor"])
	if h := text("main h1"); h != "Overview" {
		t.Fatalf("after sign-in: %q", h)
	}
	counts := text(".counts")
	if !regexp.MustCompile(`Promoted\s+\d+`).MatchString(counts) || !strings.Contains(text(".integrity"), "Latest checkpoint") {
		t.Fatalf("overview: %q", counts)
	}

	// A sample with a fixed seed equals the Go function's and the API's.
	today := time.Now().UTC().Format("2006-01-02")
	from := time.Now().UTC().AddDate(0, 0, -120).Format("2006-01-02")
	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.url+"/sample?from="+from+"&to="+today+"&size=7&seed=audit-2026"),
		chromedp.WaitVisible(chromedp.CSS(`table.changes`)),
	); err != nil {
		t.Fatal(err)
	}
	hrefs, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('table.changes tbody tr td:first-child a')].map(a => a.getAttribute('href'))`))
	if err != nil {
		t.Fatal(err)
	}
	var portalSample []string
	for _, h := range hrefs {
		portalSample = append(portalSample, strings.TrimPrefix(h, "/changes/"))
	}
	fromT, _ := time.Parse("2006-01-02", from)
	toT, _ := time.Parse("2006-01-02", today)
	vars := map[string]any{"from": fromT.Format(time.RFC3339), "to": toT.AddDate(0, 0, 1).Format(time.RFC3339)}
	d, errs := srv.gql(t, creds["auditor"], `query($from: Time!, $to: Time!) { sample(from: $from, to: $to, size: 7, seed: "audit-2026") { populationSize changes { id } } }`, vars)
	if errs != nil {
		t.Fatal(errs)
	}
	var apiSample []string
	for _, c := range d["sample"].(map[string]any)["changes"].([]any) {
		apiSample = append(apiSample, c.(map[string]any)["id"].(string))
	}
	population := allPromoted(t, srv, creds["auditor"], vars)
	if len(population) != int(d["sample"].(map[string]any)["populationSize"].(float64)) {
		t.Fatalf("population %d, the API says %v", len(population), d["sample"])
	}
	goSample := projections.Sample(population, "audit-2026", 7)
	if len(portalSample) != 7 || !slices.Equal(portalSample, goSample) || !slices.Equal(apiSample, goSample) {
		t.Fatalf("samples differ:\nportal %v\napi    %v\ngo     %v", portalSample, apiSample, goSample)
	}

	// A change with a deviation: its answers say what happened.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.url+"/changes?from="+from+"&to="+today+"&deviation=yes"),
		chromedp.WaitVisible(chromedp.CSS(`table.changes`)),
		chromedp.Click(chromedp.CSS(`table.changes tbody tr td:first-child a`)),
		chromedp.WaitVisible(chromedp.CSS(`#answers-h`)),
	); err != nil {
		t.Fatal(err)
	}
	answers := text(`section[aria-labelledby="answers-h"]`)
	for _, want := range []string{"Who authorized the change?", "What was the plan?", "Who implemented it?", "Was it tested?", "What is the backout path?"} {
		if !strings.Contains(answers, want) {
			t.Fatalf("answers lack %q:\n%s", want, answers)
		}
	}
	if tl := text(`ol.timeline`); !strings.Contains(tl, "OUT OF SCOPE") || !strings.Contains(tl, "credential") {
		t.Fatalf("timeline lacks the deviation:\n%s", tl)
	}
	proved := text(`section[aria-labelledby="timeline-h"] > p`)
	if m := regexp.MustCompile(`(\d+) of (\d+) events`).FindStringSubmatch(proved); m == nil || m[1] != m[2] {
		t.Fatalf("inclusion proofs: %q", proved)
	}

	// No mutating control is shown to the auditor, and a forged POST from
	// the page is refused.
	controls, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('form[action*="approve"], form[action*="reject"], button[formaction]').length`))
	if err != nil {
		t.Fatal(err)
	}
	status, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch(location.pathname + '/approve', {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: 'planHash=x'}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if controls != 0 || status != http.StatusForbidden {
		t.Fatalf("auditor: %d mutating controls; forged POST answered %d", controls, status)
	}

	// An approver signs in, opens a new plan, approves it; it leaves the
	// queue.
	d, errs = srv.gql(t, creds["agent"], `mutation { submitPlan(input: {requestedBy: "alice", plan: {objective: "Browser-approved change", method: "small edit", scope: [{resource: "file:github.com/acme/api/src/billing/**", verbs: ["read","write"]}], testApproach: "go test ./...", backoutPath: "git revert", environment: "production"}}) { changeId } }`, nil)
	if errs != nil {
		t.Fatal(errs)
	}
	id := d["submitPlan"].(map[string]any)["changeId"].(string)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.url+"/"), chromedp.WaitVisible(chromedp.CSS(`form.who button`)), chromedp.Click(chromedp.CSS(`form.who button`)), chromedp.WaitVisible(chromedp.CSS(`#token`))); err != nil {
		t.Fatal(err)
	}
	signIn(creds["approver"])
	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.url+"/queue"),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/review/`+id+`"]`)),
		chromedp.Click(chromedp.CSS(`a[href="/review/`+id+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#comment`)),
		chromedp.SendKeys(chromedp.CSS(`#comment`), "Read the plan; scope and backout are right."),
		chromedp.Click(chromedp.CSS(`button[formaction$="/approve"]`)),
		chromedp.WaitVisible(chromedp.CSS(`p[role="status"]`)),
	); err != nil {
		t.Fatal(err)
	}
	if queued, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('a[href="/review/`+id+`"]').length`)); err != nil || queued != 0 {
		t.Fatalf("the approved change is still queued (%v)", err)
	}
	if !strings.Contains(text(`p[role="status"]`), "approved "+id) {
		t.Fatalf("status line: %q", text(`p[role="status"]`))
	}
	d, _ = srv.gql(t, creds["auditor"], `query($id: ID!) { change(id: $id) { status } }`, map[string]any{"id": id})
	if st := d["change"].(map[string]any)["status"]; st != "approved" {
		t.Fatalf("status after approval: %v", st)
	}
}

// allPromoted lists every change promoted in the period through the API.
func allPromoted(t *testing.T, srv *server, token string, vars map[string]any) []string {
	t.Helper()
	var ids []string
	after := ""
	for {
		v := map[string]any{"from": vars["from"], "to": vars["to"]}
		q := `query($from: Time!, $to: Time!) { changes(first: 100, filter: {promotedFrom: $from, promotedTo: $to}) { edges { node { id } } pageInfo { hasNextPage endCursor } } }`
		if after != "" {
			v["after"] = after
			q = `query($from: Time!, $to: Time!, $after: String) { changes(first: 100, after: $after, filter: {promotedFrom: $from, promotedTo: $to}) { edges { node { id } } pageInfo { hasNextPage endCursor } } }`
		}
		d, errs := srv.gql(t, token, q, v)
		if errs != nil {
			t.Fatal(errs)
		}
		c := d["changes"].(map[string]any)
		for _, e := range c["edges"].([]any) {
			ids = append(ids, e.(map[string]any)["node"].(map[string]any)["id"].(string))
		}
		pi := c["pageInfo"].(map[string]any)
		if pi["hasNextPage"] != true {
			return ids
		}
		after = pi["endCursor"].(string)
	}
}
