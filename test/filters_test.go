package test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"
)

// TestChangeFilters checks each filter of `changes` on the demo's ledger
// against the same selection made here from the unfiltered list: the
// filtered page holds exactly the changes whose fields match, newest
// first, and totalCount counts them.
func TestChangeFilters(t *testing.T) {
	bin := buildDocket(t)
	data := t.TempDir()
	run(t, bin, "demo", "--data", data)
	s := startServer(t, bin, data)
	auditor := demoCredentials(t, data)["auditor"]

	type change struct {
		ID, Status, Agent, Approver string
		OutOfScope                  int
		SubmittedAt                 time.Time
		PromotedAt                  *time.Time
		Plan                        struct{ Emergency bool }
	}
	const fields = `id status agent approver outOfScope submittedAt promotedAt plan { emergency }`
	list := func(filter map[string]any) ([]change, int) {
		t.Helper()
		d := mustData(t)(s.gql(t, auditor, `query($f: ChangeFilter) { changes(first: 100, filter: $f) { totalCount edges { node { `+fields+` } } } }`, map[string]any{"f": filter}))
		var out struct {
			TotalCount int
			Edges      []struct{ Node change }
		}
		b, _ := json.Marshal(d["changes"])
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		var cs []change
		for _, e := range out.Edges {
			cs = append(cs, e.Node)
		}
		return cs, out.TotalCount
	}
	// The projections follow the ledger: wait for the demo's 50 changes.
	var all []change
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if all, _ = list(nil); len(all) == 50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d changes listed, want the demo's 50", len(all))
		}
	}
	// The middle of the demo's 90 days.
	mid := all[len(all)/2].SubmittedAt
	from, to := mid.Add(-20*24*time.Hour), mid.Add(20*24*time.Hour)
	in := func(at *time.Time) bool { return at != nil && !at.Before(from) && at.Before(to) }
	for name, tc := range map[string]struct {
		filter map[string]any
		match  func(change) bool
	}{
		"promoted in a period":  {map[string]any{"promotedFrom": from, "promotedTo": to}, func(c change) bool { return in(c.PromotedAt) }},
		"submitted in a period": {map[string]any{"submittedFrom": from, "submittedTo": to}, func(c change) bool { return in(&c.SubmittedAt) }},
		"status":                {map[string]any{"status": "approved"}, func(c change) bool { return c.Status == "approved" }},
		"agent":                 {map[string]any{"agent": "gemini-bot"}, func(c change) bool { return c.Agent == "gemini-bot" }},
		"approver":              {map[string]any{"approver": "erin"}, func(c change) bool { return c.Approver == "erin" }},
		"with a deviation":      {map[string]any{"hasDeviation": true}, func(c change) bool { return c.OutOfScope > 0 }},
		"without a deviation":   {map[string]any{"hasDeviation": false}, func(c change) bool { return c.OutOfScope == 0 }},
		"emergency":             {map[string]any{"emergency": true}, func(c change) bool { return c.Plan.Emergency }},
		"several at once":       {map[string]any{"approver": "bob", "hasDeviation": false, "status": "promoted"}, func(c change) bool { return c.Approver == "bob" && c.OutOfScope == 0 && c.Status == "promoted" }},
	} {
		var want []string
		for _, c := range all {
			if tc.match(c) {
				want = append(want, c.ID)
			}
		}
		got, total := list(tc.filter)
		var ids []string
		for _, c := range got {
			ids = append(ids, c.ID)
		}
		// Newest first: by submission, or for a period's population (a
		// promotion period) by promotion.
		newest := func(a, b change) int { return b.SubmittedAt.Compare(a.SubmittedAt) }
		if _, ok := tc.filter["promotedFrom"]; ok {
			newest = func(a, b change) int { return b.PromotedAt.Compare(*a.PromotedAt) }
		}
		if !slices.IsSortedFunc(got, newest) {
			t.Errorf("%s: not newest first: %v", name, ids)
		}
		slices.Sort(ids)
		slices.Sort(want)
		if len(want) == 0 || total != len(want) || !slices.Equal(ids, want) {
			t.Errorf("%s: %d listed (totalCount %d) %v, want %d: %v", name, len(ids), total, ids, len(want), want)
		}
	}
}
