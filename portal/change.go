package portal

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/evidence-parity/docket/domain"
	"github.com/evidence-parity/docket/ledger"
	"github.com/evidence-parity/docket/projections"
)

// entry is one event of a change's timeline.
type entry struct {
	ID       string
	Position uint64
	Type     string
	Time     time.Time
	Actor    string
	// Summary is one line; Lines are details (verdicts, checks).
	Summary string
	Lines   []string
	// Bad marks deviations, refusals, failed gates and revocations.
	Bad bool
	// Evidence is the SHA-256 of an attached evidence file (download).
	Evidence string
	// Proved: an inclusion proof from the event's leaf to the latest
	// checkpoint's root was fetched and checked.
	Proved bool
	Proof  string
}

// timeline decodes a change's records into entries, and checks each
// event's inclusion proof against the latest signed checkpoint.
func (p *Portal) timeline(r *http.Request, recs []ledger.Record) ([]entry, integrity, error) {
	in := p.integrity(r)
	cp, _, cpErr := p.latest(r)
	out := make([]entry, 0, len(recs))
	for _, rec := range recs {
		x := rec.Event
		e := entry{ID: x.ID, Position: rec.Position, Type: x.Type, Time: x.Time, Actor: string(x.Actor.Kind) + ":" + x.Actor.ID}
		ev, err := domain.Decode(x.Type, x.Data)
		if err != nil {
			e.Summary, e.Bad = "undecodable event: "+err.Error(), true
		} else {
			describe(&e, ev)
		}
		switch {
		case cpErr != nil:
			e.Proof = "not checked: " + cpErr.Error()
		case rec.Position >= cp.Size:
			e.Proof = fmt.Sprintf("newer than the latest checkpoint (size %d); checkpoints follow within a second", cp.Size)
		default:
			hashes, err := p.cfg.Ledger.InclusionProof(r.Context(), rec.Position, cp.Size)
			if err != nil {
				return nil, in, err
			}
			if err := ledger.VerifyInclusion(rec.Position, cp.Size, rec.LeafHash(), hashes, cp.Root); err != nil {
				e.Proof, e.Bad = "inclusion proof FAILED: "+err.Error(), true
			} else {
				e.Proved, e.Proof = true, fmt.Sprintf("included in checkpoint %d (%d proof hashes)", cp.Size, len(hashes))
			}
		}
		out = append(out, e)
	}
	return out, in, nil
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

// describe writes an event's one-line summary and details.
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
		e.Summary = fmt.Sprintf("%s evidence (%s) attached: %s", x.Kind, x.Format, summary(x.Summary))
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
}

func summary(s domain.EvidenceSummary) string {
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

func (p *Portal) loadChange(w http.ResponseWriter, r *http.Request) (*projections.ChangeView, []ledger.Record, bool) {
	id := r.PathValue("id")
	if id == "" || len(id) > 200 {
		p.fail(w, r, viewerOf(r), http.StatusNotFound, "No such change.")
		return nil, nil, false
	}
	v, err := p.cfg.Projections.Change(r.Context(), id)
	if err != nil && !errors.Is(err, domain.ErrNotFound) {
		p.internal(w, r, err)
		return nil, nil, false
	}
	if v == nil {
		p.fail(w, r, viewerOf(r), http.StatusNotFound, fmt.Sprintf("No change %q.", id))
		return nil, nil, false
	}
	recs, err := p.cfg.Ledger.ReadStream(r.Context(), domain.ChangeStream(id), 0)
	if err != nil {
		p.internal(w, r, err)
		return nil, nil, false
	}
	return v, recs, true
}

func (p *Portal) change(w http.ResponseWriter, r *http.Request) {
	v, recs, ok := p.loadChange(w, r)
	if !ok {
		return
	}
	tl, in, err := p.timeline(r, recs)
	if err != nil {
		p.internal(w, r, err)
		return
	}
	proved := 0
	for _, e := range tl {
		if e.Proved {
			proved++
		}
	}
	p.render(w, r, http.StatusOK, "change", viewerOf(r), map[string]any{
		"View": v, "Timeline": tl, "Integrity": in, "Proved": proved, "Events": len(tl),
	})
}

// review is the approver's plan review: opening it records PlanViewed the
// first time (the dwell time runs from there).
func (p *Portal) review(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	id := r.PathValue("id")
	c, err := p.cfg.Clerk.ViewPlan(r.Context(), v.Actor, id)
	if err != nil {
		p.domainError(w, r, err)
		return
	}
	view, err := p.cfg.Projections.Change(r.Context(), id)
	if err != nil {
		p.internal(w, r, err)
		return
	}
	p.render(w, r, http.StatusOK, "review", v, map[string]any{"Change": c, "View": view, "Plan": c.Plan, "PlanHash": c.PlanHash, "ID": id})
}

// decide takes an approver's approval or rejection of the plan hash the
// review page showed.
func (p *Portal) decide(approve bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v := viewerOf(r)
		id, hash, comment := r.PathValue("id"), r.PostForm.Get("planHash"), strings.TrimSpace(r.PostForm.Get("comment"))
		if len(comment) > 4000 {
			p.fail(w, r, v, http.StatusBadRequest, "The comment is longer than 4,000 characters.")
			return
		}
		var err error
		if approve {
			err = p.cfg.Clerk.Approve(r.Context(), v.Actor, id, hash, comment)
		} else {
			err = p.cfg.Clerk.Reject(r.Context(), v.Actor, id, hash, comment)
		}
		if err != nil {
			p.domainError(w, r, err)
			return
		}
		verb := "approved"
		if !approve {
			verb = "rejected"
		}
		p.readYourWrites(r)
		http.Redirect(w, r, "/queue?done="+url.QueryEscape(verb+" "+id), http.StatusSeeOther)
	}
}

// domainError maps the domain's sentinel errors to pages.
func (p *Portal) domainError(w http.ResponseWriter, r *http.Request, err error) {
	v := viewerOf(r)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		p.fail(w, r, v, http.StatusNotFound, err.Error())
	case errors.Is(err, domain.ErrForbidden), errors.Is(err, domain.ErrUnauthenticated):
		p.fail(w, r, v, http.StatusForbidden, err.Error())
	case errors.Is(err, domain.ErrInvalidInput):
		p.fail(w, r, v, http.StatusBadRequest, err.Error())
	case errors.Is(err, domain.ErrConflict):
		p.fail(w, r, v, http.StatusConflict, err.Error())
	default:
		p.internal(w, r, err)
	}
}

// readYourWrites waits, briefly, for the read models to reach the ledger's
// head, so the page after a decision shows it. The read models follow the
// ledger within milliseconds; past two seconds the page shows what they
// have.
func (p *Portal) readYourWrites(r *http.Request) {
	head, _, err := p.cfg.Ledger.Head(r.Context())
	if err != nil {
		return
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if pos, err := p.cfg.Projections.Position(r.Context()); err != nil || pos >= head {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
