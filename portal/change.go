package portal

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/evidence-parity/docket/domain"
	"github.com/evidence-parity/docket/domain/answers"
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
			dd := answers.Describe(ev)
			e.Summary, e.Lines, e.Bad, e.Evidence = dd.Summary, dd.Lines, dd.Bad, dd.Evidence
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
