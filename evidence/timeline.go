package evidence

import (
	"fmt"
	"strings"
	"time"

	"github.com/evidence-parity/docket/domain"
	"github.com/evidence-parity/docket/domain/answers"
	"github.com/evidence-parity/docket/ledger"
)

// changeDoc is one change of a binder as the PDF presents it: the events
// decoded from the bundle and the view recomputed from them. The answers
// the PDF prints are the bundle's stated ones; the view supplies the facts
// around them (plan, sessions, exceptions) and the attributes' details.
type changeDoc struct {
	Change
	recs    []answers.Decoded
	entries []entry
	view    *answers.ChangeView
	// err says why the events could not be decoded or folded, if they
	// could not; the PDF then prints the stated answers alone.
	err error
	// differs lists where the stated answers differ from the recomputed
	// ones (only for a bundle that would fail verification).
	differs []string
	// positions maps event ids to log positions, for citations.
	positions map[string]uint64
}

// decodeChange decodes a bundled change's events and recomputes its view.
func decodeChange(c Change) *changeDoc {
	d := &changeDoc{Change: c, positions: map[string]uint64{}}
	recs := make([]ledger.Record, 0, len(c.Events))
	for _, e := range c.Events {
		ev, err := ledger.Decode(e.Canonical)
		if err != nil {
			d.err = fmt.Errorf("event at position %d does not decode: %w", e.Position, err)
			return d
		}
		recs = append(recs, ledger.Record{Position: e.Position, Event: ev, Canonical: e.Canonical})
		d.positions[ev.ID] = e.Position
	}
	d.recs = answers.Decode(recs)
	for _, r := range d.recs {
		d.entries = append(d.entries, entryOf(r))
	}
	v, err := answers.BuildDecoded(d.recs)
	if err != nil {
		d.err = err
		return d
	}
	d.view = v
	d.differs = diffStated(c.Stated, StatedOf(v))
	return d
}

// eventsOf returns the change's domain events of type T, in log order.
func eventsOf[T domain.Event](d *changeDoc) []T {
	var out []T
	for _, r := range d.recs {
		if e, ok := r.Domain.(T); ok {
			out = append(out, e)
		}
	}
	return out
}

// entry is one event of a change's timeline.
type entry struct {
	Position uint64
	Type     string
	Time     time.Time
	Actor    string
	// Summary is one line; Lines are details (verdicts, checks).
	Summary string
	Lines   []string
	// Bad marks deviations, refusals, failed gates and revocations.
	Bad bool
}

func entryOf(r answers.Decoded) entry {
	x := r.Event
	e := entry{Position: r.Position, Type: x.Type, Time: x.Time, Actor: x.Actor.Kind + ":" + x.Actor.ID}
	if r.Err != nil {
		e.Summary, e.Bad = "undecodable event: "+r.Err.Error(), true
		return e
	}
	describe(&e, r.Domain)
	return e
}

// describe writes an event's one-line summary and details, in the words
// the portal's change timeline uses (portal/change.go).
func describe(e *entry, ev domain.Event) {
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
		e.Lines = append(e.Lines, verdictLines(x.Verdicts)...)
		e.Bad = !x.InScope
	case domain.ActionRefused:
		e.Summary, e.Bad = fmt.Sprintf("action refused (%s): %s", x.Reason, uses(x.Uses)), true
	case domain.DeviationDetected:
		e.Summary, e.Bad = "deviation detected in session "+x.Session, true
		e.Lines = verdictLines(x.Verdicts)
	case domain.CredentialRevoked:
		e.Summary, e.Bad = fmt.Sprintf("credential %s revoked: %s", x.CredentialID, x.Reason), true
	case domain.ExceptionOpened:
		e.Summary, e.Bad = fmt.Sprintf("exception %s opened (%s): %s", x.Exception, x.Kind, x.Reason), true
	case domain.ExceptionResolved:
		e.Summary = fmt.Sprintf("exception %s resolved by %s: %s", x.Exception, x.By, x.Disposition)
		e.Lines = []string{"justification: " + x.Justification}
	case domain.EvidenceAttached:
		e.Summary = fmt.Sprintf("%s evidence (%s) attached: %s", x.Kind, x.Format, evidenceSummary(x.Summary))
		e.Lines = []string{"sha256 " + x.SHA256}
	case domain.ChangePromoted:
		e.Summary = "promoted (plan " + short(x.PlanHash) + ")"
	case domain.ChangeRolledBack:
		e.Summary, e.Bad = fmt.Sprintf("rolled back by %s: %s", x.By, x.Reason), true
	case domain.SessionEnded:
		e.Summary = "session " + x.Session + " ended"
	default:
		e.Summary = ev.EventType()
	}
}

func uses(us []domain.ResourceUse) string {
	s := make([]string, len(us))
	for i, u := range us {
		s[i] = string(u.Verb) + " " + u.Resource
	}
	return strings.Join(s, ", ")
}

func verdictLines(vs []domain.Verdict) []string {
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

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
