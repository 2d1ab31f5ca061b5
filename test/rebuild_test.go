package test

import (
	"database/sql"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemoStoryAndRebuild reads every change of the demo ledger from the
// live read models, as an auditor would, checks the demo's story is in
// the answers, then rebuilds the read models from zero with `docket
// projections rebuild` and checks a new server gives the same answers,
// field for field.
func TestDemoStoryAndRebuild(t *testing.T) {
	bin := buildDocket(t)
	data := t.TempDir()
	run(t, bin, "demo", "--data", data)
	auditor := demoCredentials(t, data)["auditor"]
	const node = `id status version planHash agent requestedBy approver submittedAt approvedAt promotedAt actions outOfScope unresolved
		plan { objective emergency } review { dwellSeconds rubberStamp } sessions { id revoked ended actions } exceptions { id kind resolved disposition }
		answers { question answer result attributes { name result detail events } }`
	all := func(s *server) []any {
		t.Helper()
		var out []any
		for after := any(nil); ; {
			d := mustData(t)(s.gql(t, auditor, `query($after: String) { changes(first: 10, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { node { `+node+` } } } }`, map[string]any{"after": after}))
			c := d["changes"].(map[string]any)
			for _, e := range c["edges"].([]any) {
				out = append(out, e.(map[string]any)["node"])
			}
			if p := c["pageInfo"].(map[string]any); p["hasNextPage"] != true {
				if total := int(c["totalCount"].(float64)); total != len(out) {
					t.Fatalf("paged through %d changes of %d", len(out), total)
				}
				return out
			}
			after = c["pageInfo"].(map[string]any)["endCursor"]
		}
	}
	s := startServer(t, bin, data)
	var live []any
	waitFor(t, "the read models to hold the demo's 50 changes", func() bool { live = all(s); return len(live) == 50 })

	// The story: two rubber stamps, an emergency approved late with its
	// overdue exception, two deviations revoked and resolved, an issuance
	// refused during a freeze, one change rolled back, three still in progress.
	count := map[string]int{}
	for _, n := range live {
		c := n.(map[string]any)
		count["status "+c["status"].(string)]++
		attrs := map[string]map[string]any{}
		for _, a := range c["answers"].([]any) {
			for _, at := range a.(map[string]any)["attributes"].([]any) {
				attrs[at.(map[string]any)["name"].(string)] = at.(map[string]any)
			}
		}
		if attrs["review_depth"]["result"] == "fail" && c["review"].(map[string]any)["rubberStamp"] == true {
			count["rubber stamp"]++
		}
		kinds := map[string]bool{}
		for _, x := range c["exceptions"].([]any) {
			x := x.(map[string]any)
			kinds[x["kind"].(string)] = true
			if x["resolved"] != true && c["status"] == "promoted" {
				t.Errorf("change %s promoted with exception %v open", c["id"], x)
			}
		}
		if attrs["approved_before_first_action"]["result"] == "exception" && c["plan"].(map[string]any)["emergency"] == true && kinds["emergency-overdue"] {
			count["emergency approved late"]++
		}
		revoked := false
		for _, ses := range c["sessions"].([]any) {
			revoked = revoked || ses.(map[string]any)["revoked"] == true
		}
		if attrs["every_action_in_scope"]["result"] == "exception" && kinds["deviation"] && revoked {
			count["deviation revoked and resolved"]++
		}
		if f := attrs["no_freeze_at_issuance"]; f != nil && strings.Contains(f["detail"].(string), "refused during a freeze") {
			count["issuance refused during a freeze"]++
		}
		if c["status"] == "promoted" {
			for name, at := range attrs {
				if name != "review_depth" && name != "approved_before_first_action" && name != "every_action_in_scope" && at["result"] != "pass" {
					t.Errorf("promoted change %s: %s %v", c["id"], name, at)
				}
			}
		}
	}
	want := map[string]int{"status promoted": 46, "status rolled-back": 1, "status approved": 3, "rubber stamp": 2, "emergency approved late": 1,
		"deviation revoked and resolved": 2, "issuance refused during a freeze": 1}
	if !reflect.DeepEqual(count, want) {
		t.Errorf("the demo's story: %v, want %v", count, want)
	}

	// Rebuilt from zero with the server stopped, the read models answer
	// the same.
	s.cmd.Process.Signal(syscall.SIGTERM)
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("serve exited with %v", err)
	}
	if out := run(t, bin, "projections", "rebuild", "--data", data); !strings.HasPrefix(out, "rebuilt") {
		t.Fatalf("projections rebuild printed %q", out)
	}
	s = startServer(t, bin, data)
	same(t, live, all(s), "after docket projections rebuild")

	// Read models an older build stored (no format recorded, views that
	// say something else): an export leaves them to the server, which
	// rebuilds them before it answers anything.
	s.cmd.Process.Signal(syscall.SIGTERM)
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("serve exited with %v", err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "projections.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM meta WHERE key = 'format'; UPDATE changes SET view = '{}'`); err != nil {
		t.Fatal(err)
	}
	run(t, bin, "export", "binder", "--data", data, "--from", time.Now().AddDate(0, 0, -100).Format("2006-01-02"),
		"--to", time.Now().AddDate(0, 0, 1).Format("2006-01-02"), "--sample", "3", "--seed", "s", "-o", filepath.Join(t.TempDir(), "b.pdf"))
	var formats int
	if err := db.QueryRow(`SELECT COUNT(*) FROM meta WHERE key = 'format'`).Scan(&formats); err != nil || formats != 0 {
		t.Fatalf("the export changed the server's read models (%d format rows, %v)", formats, err)
	}
	db.Close()
	same(t, live, all(startServer(t, bin, data)), "served from read models an older build stored")
}

// same fails the test where two lists of changes differ.
func same(t *testing.T, want, got []any, when string) {
	t.Helper()
	if reflect.DeepEqual(want, got) {
		return
	}
	for i := range want {
		if i < len(got) && !reflect.DeepEqual(want[i], got[i]) {
			t.Fatalf("%s, change %d differs:\nwant %v\ngot  %v", when, i, want[i], got[i])
		}
	}
	t.Fatalf("%s: %d changes, want %d", when, len(got), len(want))
}
