package answers

import (
	"strings"
	"testing"

	"github.com/evidence-parity/docket/domain"
)

// TestApproverAuthority: the attribute is computed from the authority the
// approval records; an approval from before that was kept passes on the
// domain's check at the time, and says so.
func TestApproverAuthority(t *testing.T) {
	plan := domain.Scope{{Resource: "file:github.com/acme/api/**", Verbs: []domain.Verb{domain.Write}}, {Resource: "cmd:go test *", Verbs: []domain.Verb{domain.Exec}}}
	for _, tc := range []struct {
		name      string
		authority domain.Scope
		result    string
		detail    string
	}{
		{"covering", domain.Scope{{Resource: "file:github.com/acme/**", Verbs: []domain.Verb{domain.Read, domain.Write}}, {Resource: "cmd:**", Verbs: []domain.Verb{domain.Exec}}},
			Pass, "bob's authority (2 rule(s)) covers every rule of the plan"},
		{"short of a verb", domain.Scope{{Resource: "file:github.com/acme/**", Verbs: []domain.Verb{domain.Read}}, {Resource: "cmd:**", Verbs: []domain.Verb{domain.Exec}}},
			Fail, "bob's authority does not cover file:github.com/acme/api/** [write]"},
		{"short of a rule", domain.Scope{{Resource: "file:github.com/acme/**", Verbs: []domain.Verb{domain.Write}}},
			Fail, "bob's authority does not cover cmd:go test * [exec]"},
		{"not recorded", nil, Pass, "checked when approved; this approval does not record the authority"},
	} {
		a := approverAuthority(&domain.PlanApproved{Approver: "bob", Authority: tc.authority}, plan, "evt-1")
		if a.Name != "approver_authority" || a.Result != tc.result || !strings.Contains(a.Detail, tc.detail) || len(a.Events) != 1 {
			t.Errorf("%s: %+v, want %s with %q", tc.name, a, tc.result, tc.detail)
		}
	}
}
