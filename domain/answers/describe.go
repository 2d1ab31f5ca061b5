package answers

import (
	"fmt"
	"strings"
	"time"

	"github.com/evidence-parity/docket/domain"
)

// Description is one event in words, as the portal's change timeline and
// the evidence binder print it.
type Description struct {
	// Summary is one line; Lines are details (verdicts, checks).
	Summary string
	Lines   []string
	// Bad marks deviations, refusals, failed gates and revocations.
	Bad bool
	// Evidence is the SHA-256 of the evidence file an EvidenceAttached
	// event attached.
	Evidence string
}

// Describe puts a domain event into words.
func Describe(ev domain.Event) Description {
	var e Description
	switch x := ev.(type) {
	case domain.PlanSubmitted:
		e.Summary = fmt.Sprintf("plan v%d submitted for %s by agent %s (hash %s)", x.Version, x.RequestedBy, x.Agent, short(x.PlanHash))
	case domain.PlanViewed:
		e.Summary = fmt.Sprintf("%s opened plan %s", x.Approver, short(x.PlanHash))
	case domain.PlanApproved:
		e.Summary = fmt.Sprintf("%s approved plan %s (authenticated by %s) after %.0f s", x.Approver, short(x.PlanHash), x.AuthMethod, x.Review.DwellSeconds)
		if x.Comment != "" {
			e.Lines = append(e.Lines, "comment: "+x.Comment)
		}
		if x.Review.RubberStamp {
			e.Lines, e.Bad = append(e.Lines, fmt.Sprintf("rubber-stamp risk: decided in %.0f s, the plan's size calls for %.0f s", x.Review.DwellSeconds, x.Review.MinSeconds)), true
		}
	case domain.PlanRejected:
		e.Summary, e.Bad = fmt.Sprintf("%s rejected plan %s", x.Approver, short(x.PlanHash)), true
		if x.Comment != "" {
			e.Lines = append(e.Lines, "comment: "+x.Comment)
		}
	case domain.VerificationRecorded:
		result := "passed"
		if !x.Passed {
			result, e.Bad = "FAILED", true
		}
		e.Summary = fmt.Sprintf("%s gate %s", x.Stage, result)
		e.Lines = checkLines(x.Checks)
	case domain.CredentialIssued:
		e.Summary = fmt.Sprintf("credential %s issued to %s for session %s, bound to plan %s, expires %s", x.CredentialID, x.Agent, x.Session, short(x.PlanHash), x.ExpiresAt.UTC().Format(time.RFC3339))
	case domain.ActionRecorded:
		e.Summary = fmt.Sprintf("%s: %s", x.Kind, uses(x.Uses))
		if x.Command != "" {
			e.Lines = append(e.Lines, "command: "+x.Command)
		}
		e.Lines = append(e.Lines, VerdictLines(x.Verdicts)...)
		e.Bad = !x.InScope
	case domain.ActionRefused:
		e.Summary, e.Bad = fmt.Sprintf("action refused (%s): %s", x.Reason, uses(x.Uses)), true
	case domain.DeviationDetected:
		e.Summary, e.Bad = "deviation detected in session "+x.Session, true
		e.Lines = VerdictLines(x.Verdicts)
	case domain.CredentialRevoked:
		e.Summary, e.Bad = fmt.Sprintf("credential %s revoked: %s", x.CredentialID, x.Reason), true
	case domain.ExceptionOpened:
		e.Summary, e.Bad = fmt.Sprintf("exception %s opened (%s): %s", x.Exception, x.Kind, x.Reason), true
	case domain.ExceptionResolved:
		e.Summary = fmt.Sprintf("exception %s resolved by %s: %s", x.Exception, x.By, x.Disposition)
		e.Lines = []string{"justification: " + x.Justification}
	case domain.EvidenceAttached:
		e.Summary = fmt.Sprintf("%s evidence (%s) attached: %s", x.Kind, x.Format, evidenceSummary(x.Summary))
		e.Evidence = x.SHA256
	case domain.ChangePromoted:
		e.Summary = "promoted (plan " + short(x.PlanHash) + ")"
	case domain.ChangeRolledBack:
		e.Summary, e.Bad = fmt.Sprintf("rolled back by %s: %s", x.By, x.Reason), true
	case domain.SessionEnded:
		e.Summary = "session " + x.Session + " ended"
	default:
		e.Summary = ev.EventType()
	}
	return e
}

func uses(us []domain.ResourceUse) string {
	s := make([]string, len(us))
	for i, u := range us {
		s[i] = string(u.Verb) + " " + u.Resource
	}
	return strings.Join(s, ", ")
}

// VerdictLines puts scope verdicts into words, one line each.
func VerdictLines(vs []domain.Verdict) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = fmt.Sprintf("%s %s: %s", v.Verb, v.Resource, verdictText(v))
	}
	return out
}

func verdictText(v domain.Verdict) string {
	if v.Allowed {
		return fmt.Sprintf("in scope (plan rule %d)", v.Rule+1)
	}
	return "OUT OF SCOPE: " + v.Reason
}

func checkLines(cs []domain.Check) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		mark := "pass"
		if !c.Passed {
			mark = "FAIL"
		}
		out[i] = fmt.Sprintf("%s — %s: %s", c.Name, mark, c.Detail)
	}
	return out
}

func evidenceSummary(s domain.EvidenceSummary) string {
	var parts []string
	if n := s.TestsPassed + s.TestsFailed + s.TestsSkipped; n > 0 {
		parts = append(parts, fmt.Sprintf("%d tests: %d passed, %d failed, %d skipped", n, s.TestsPassed, s.TestsFailed, s.TestsSkipped))
	}
	if n := s.Critical + s.High + s.Medium + s.Low; n > 0 {
		parts = append(parts, fmt.Sprintf("%d findings: %d critical, %d high, %d medium, %d low", n, s.Critical, s.High, s.Medium, s.Low))
	}
	if len(parts) == 0 {
		return "no tests and no findings"
	}
	return strings.Join(parts, "; ")
}
