package test

import (
	"reflect"
	"strings"
	"syscall"
	"testing"
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
	rebuilt := all(startServer(t, bin, data))
	if !reflect.DeepEqual(live, rebuilt) {
		for i := range live {
			if i < len(rebuilt) && !reflect.DeepEqual(live[i], rebuilt[i]) {
				t.Fatalf("change %d differs after the rebuild:\nlive    %v\nrebuilt %v", i, live[i], rebuilt[i])
			}
		}
		t.Fatalf("%d changes live, %d rebuilt", len(live), len(rebuilt))
	}
}
