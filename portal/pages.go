package portal

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/evidence-parity/docket/domain"
	"github.com/evidence-parity/docket/ledger"
	"github.com/evidence-parity/docket/projections"
)

const day = "2006-01-02"

// period is a half-open interval of days [From, To) read from the query
// string; the default is the last 90 days up to and including today.
type period struct {
	From, To time.Time
}

func (pd period) FromS() string { return pd.From.Format(day) }

// ToS is the period's last day, as the form shows it (To is exclusive).
func (pd period) ToS() string { return pd.To.AddDate(0, 0, -1).Format(day) }

// Query is the period as query parameters.
func (pd period) Query() string {
	return "from=" + pd.FromS() + "&to=" + pd.ToS()
}

// errBadQuery is a malformed query string: the page answers 400 with the
// reason.
type errBadQuery struct{ msg string }

func (e errBadQuery) Error() string { return e.msg }

func (p *Portal) periodOf(q url.Values) (period, error) {
	today := p.cfg.Now().UTC().Truncate(24 * time.Hour)
	pd := period{From: today.AddDate(0, 0, -90), To: today.AddDate(0, 0, 1)}
	if s := q.Get("from"); s != "" {
		t, err := time.Parse(day, s)
		if err != nil {
			return pd, errBadQuery{fmt.Sprintf("from=%q is not a date (YYYY-MM-DD).", s)}
		}
		pd.From = t
	}
	if s := q.Get("to"); s != "" {
		t, err := time.Parse(day, s)
		if err != nil {
			return pd, errBadQuery{fmt.Sprintf("to=%q is not a date (YYYY-MM-DD).", s)}
		}
		pd.To = t.AddDate(0, 0, 1) // the form's "to" is the last day included
	}
	if !pd.From.Before(pd.To) {
		return pd, errBadQuery{"The period's start must not be after its end."}
	}
	return pd, nil
}

func (p *Portal) badQuery(w http.ResponseWriter, r *http.Request, err error) bool {
	var bq errBadQuery
	if errors.As(err, &bq) {
		p.fail(w, r, viewerOf(r), http.StatusBadRequest, bq.msg)
		return true
	}
	return false
}

// integrity is the banner every auditor page carries.
type integrity struct {
	Size        uint64
	SignedAt    time.Time
	Fingerprint string
	Verified    bool
	Problem     string
	Anchor      any
}

// latest reads and verifies the latest signed checkpoint.
func (p *Portal) latest(r *http.Request) (ledger.Checkpoint, []byte, error) {
	n, found, err := p.cfg.Ledger.LatestCheckpoint(r.Context())
	if err != nil {
		return ledger.Checkpoint{}, nil, err
	}
	if !found {
		return ledger.Checkpoint{}, nil, errNoCheckpoint
	}
	cp, err := ledger.OpenCheckpoint(n, p.cfg.Verifiers)
	if err != nil {
		return ledger.Checkpoint{}, n, fmt.Errorf("the latest checkpoint does not verify with the pinned key: %w", err)
	}
	return cp, n, nil
}

var errNoCheckpoint = errors.New("no checkpoint signed yet")

type signedAt interface {
	CheckpointSignedAt(context.Context, uint64) (time.Time, error)
}

func (p *Portal) integrity(r *http.Request) integrity {
	in := integrity{Fingerprint: p.cfg.Fingerprint}
	cp, _, err := p.latest(r)
	switch {
	case errors.Is(err, errNoCheckpoint):
		in.Problem = "No checkpoint has been signed yet."
	case err != nil:
		in.Problem = err.Error()
	default:
		in.Size, in.Verified = cp.Size, true
		if s, ok := p.cfg.Ledger.(signedAt); ok {
			in.SignedAt, _ = s.CheckpointSignedAt(r.Context(), cp.Size)
		}
	}
	if a := p.anchorStatus(); a != nil {
		in.Anchor = a
	}
	return in
}

func (p *Portal) overview(w http.ResponseWriter, r *http.Request) {
	pd, err := p.periodOf(r.URL.Query())
	if p.badQuery(w, r, err) {
		return
	}
	sum, err := p.cfg.Projections.Summarize(r.Context(), pd.From, pd.To)
	if err != nil {
		p.internal(w, r, err)
		return
	}
	p.render(w, r, http.StatusOK, "overview", viewerOf(r), map[string]any{"Period": pd, "Summary": sum, "Integrity": p.integrity(r)})
}

// filterOf reads the population filters.
func filterOf(q url.Values, pd period) (projections.Filter, error) {
	f := projections.Filter{PromotedFrom: &pd.From, PromotedTo: &pd.To, Status: q.Get("status"), Agent: q.Get("agent"), Approver: q.Get("approver")}
	switch q.Get("status") {
	case "", "promoted", "rolled-back":
	default:
		return f, errBadQuery{fmt.Sprintf("status=%q: the population holds promoted and rolled-back changes.", q.Get("status"))}
	}
	for name, dst := range map[string]**bool{"deviation": &f.HasDeviation, "emergency": &f.Emergency} {
		switch q.Get(name) {
		case "":
		case "yes":
			t := true
			*dst = &t
		case "no":
			f := false
			*dst = &f
		default:
			return f, errBadQuery{fmt.Sprintf("%s=%q: use yes or no.", name, q.Get(name))}
		}
	}
	return f, nil
}

const pageSize = 50

func (p *Portal) population(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pd, err := p.periodOf(q)
	if p.badQuery(w, r, err) {
		return
	}
	f, err := filterOf(q, pd)
	if p.badQuery(w, r, err) {
		return
	}
	pg, err := p.cfg.Projections.List(r.Context(), f, pageSize, q.Get("after"))
	if errors.Is(err, domain.ErrInvalidInput) {
		p.fail(w, r, viewerOf(r), http.StatusBadRequest, "The page cursor is not valid; start from the first page.")
		return
	}
	if err != nil {
		p.internal(w, r, err)
		return
	}
	p.render(w, r, http.StatusOK, "population", viewerOf(r), map[string]any{
		"Period": pd, "Page": pg, "Q": q, "Filters": filterQuery(q), "Next": nextURL(r.URL, pg.EndCursor),
	})
}

// filterQuery is the query string of the filters and period, without paging.
func filterQuery(q url.Values) string {
	c := url.Values{}
	for _, k := range []string{"from", "to", "status", "agent", "approver", "deviation", "emergency"} {
		if v := q.Get(k); v != "" {
			c.Set(k, v)
		}
	}
	return c.Encode()
}

func nextURL(u *url.URL, cursor string) string {
	q := u.Query()
	q.Set("after", cursor)
	return u.Path + "?" + q.Encode()
}

// populationCSV exports every change of the filtered population, stating
// the query and the checkpoint it was drawn at.
func (p *Portal) populationCSV(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pd, err := p.periodOf(q)
	if p.badQuery(w, r, err) {
		return
	}
	f, err := filterOf(q, pd)
	if p.badQuery(w, r, err) {
		return
	}
	cp, _, err := p.latest(r)
	if err != nil && !errors.Is(err, errNoCheckpoint) {
		p.internal(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="population-%s-%s.csv"`, pd.FromS(), pd.ToS()))
	cw := csvWriter{csv.NewWriter(w)}
	cw.Write([]string{"# docket population", "query: " + filterQuery(q), fmt.Sprintf("checkpoint size: %d", cp.Size), "key: " + p.cfg.Fingerprint, "drawn at: " + p.cfg.Now().UTC().Format(time.RFC3339)})
	cw.Write([]string{"id", "status", "agent", "requested_by", "approver", "submitted_at", "promoted_at", "emergency", "out_of_scope_actions", "unresolved_exceptions", "plan_hash", "authorized", "plan", "implemented", "tested", "backout"})
	after := ""
	for {
		pg, err := p.cfg.Projections.List(r.Context(), f, projections.MaxPage, after)
		if err != nil {
			p.cfg.Logger.Error("portal csv", "err", err)
			return
		}
		for _, v := range pg.Views {
			row := []string{v.ID, v.Status, v.Agent, v.RequestedBy, v.Approver, v.SubmittedAt.UTC().Format(time.RFC3339), fmtTime(v.PromotedAt),
				strconv.FormatBool(v.Plan.Emergency), strconv.Itoa(v.OutOfScope), strconv.Itoa(v.Unresolved), v.PlanHash}
			for _, a := range v.Answers {
				row = append(row, a.Result)
			}
			cw.Write(row)
		}
		if !pg.HasNext {
			break
		}
		after = pg.EndCursor
	}
	cw.Flush()
}

// csvWriter writes cells a spreadsheet shows as text (CSV injection,
// OWASP): a cell that begins with = + - @ or a tab or carriage return
// would be read as a formula, so it gets a leading apostrophe; so does
// such a character after a ; , or tab inside a cell, where a spreadsheet
// whose list separator is that character would start a new cell. Names
// and ids in the ledger come from agents and requesters.
type csvWriter struct{ *csv.Writer }

func (cw csvWriter) Write(row []string) error {
	for i, cell := range row {
		row[i] = neutralise(cell)
	}
	return cw.Writer.Write(row)
}

func neutralise(cell string) string {
	const triggers, separators = "=+-@\t\r", ",;\t"
	var b strings.Builder
	for i := 0; i < len(cell); i++ {
		if strings.IndexByte(triggers, cell[i]) >= 0 && (i == 0 || strings.IndexByte(separators, cell[i-1]) >= 0) {
			b.WriteByte('\'')
		}
		b.WriteByte(cell[i])
	}
	return b.String()
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// DefaultSampleSize is the sample size when none is given.
const DefaultSampleSize = 25

func (p *Portal) sample(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pd, err := p.periodOf(q)
	if p.badQuery(w, r, err) {
		return
	}
	size := DefaultSampleSize
	if s := q.Get("size"); s != "" {
		if size, err = strconv.Atoi(s); err != nil || size < 1 || size > 1000 {
			p.fail(w, r, viewerOf(r), http.StatusBadRequest, fmt.Sprintf("size=%q: a sample size is 1 to 1000.", s))
			return
		}
	}
	seed := q.Get("seed")
	if seed == "" {
		// A sample must be reproducible from its URL: draw a seed and
		// send the auditor to the URL that carries it.
		u := url.Values{"from": {pd.FromS()}, "to": {pd.ToS()}, "size": {strconv.Itoa(size)}, "seed": {randomToken()[:16]}}
		http.Redirect(w, r, "/sample?"+u.Encode(), http.StatusSeeOther)
		return
	}
	if len(seed) > 200 {
		p.fail(w, r, viewerOf(r), http.StatusBadRequest, "The seed is longer than 200 characters.")
		return
	}
	pop, err := p.cfg.Projections.Population(r.Context(), pd.From, pd.To)
	if err != nil {
		p.internal(w, r, err)
		return
	}
	views, err := p.cfg.Projections.Changes(r.Context(), projections.Sample(pop, seed, size))
	if err != nil {
		p.internal(w, r, err)
		return
	}
	p.render(w, r, http.StatusOK, "sample", viewerOf(r), map[string]any{
		"Period": pd, "Seed": seed, "Size": size, "PopulationSize": len(pop), "Views": views, "Integrity": p.integrity(r),
	})
}

// binder exports the sample's evidence binder, for the period, size and
// seed of the sample page.
func (p *Portal) binder(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pd, err := p.periodOf(q)
	if p.badQuery(w, r, err) {
		return
	}
	size, err := strconv.Atoi(q.Get("size"))
	if err != nil || size < 1 || size > 1000 || q.Get("seed") == "" || len(q.Get("seed")) > 200 {
		p.fail(w, r, viewerOf(r), http.StatusBadRequest, "A binder needs the sample's size (1 to 1000) and seed.")
		return
	}
	if p.cfg.Binder == nil {
		p.fail(w, r, viewerOf(r), http.StatusNotFound, "Binder export is not configured on this server.")
		return
	}
	// Rendered whole before anything is sent, so a failure is an error
	// page rather than a truncated PDF.
	var buf bytes.Buffer
	if err := p.cfg.Binder(r.Context(), &buf, pd.From, pd.To, size, q.Get("seed")); err != nil {
		p.internal(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/pdf")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="binder-%s-%s-%s.pdf"`, pd.FromS(), pd.ToS(), safeName(q.Get("seed"))))
	w.Write(buf.Bytes())
}

// safeName keeps the letters, digits, - and _ of s, for a file name.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return -1
	}, s)
}

func (p *Portal) exceptions(w http.ResponseWriter, r *http.Request) {
	open := r.URL.Query().Get("open")
	if open != "" && open != "yes" {
		p.fail(w, r, viewerOf(r), http.StatusBadRequest, fmt.Sprintf("open=%q: use open=yes or leave it out.", open))
		return
	}
	xs, err := p.cfg.Projections.Exceptions(r.Context(), open == "yes", projections.MaxPage)
	if err != nil {
		p.internal(w, r, err)
		return
	}
	p.render(w, r, http.StatusOK, "exceptions", viewerOf(r), map[string]any{"Exceptions": xs, "Open": open == "yes"})
}

func (p *Portal) agents(w http.ResponseWriter, r *http.Request) {
	as, err := p.cfg.Projections.Agents(r.Context())
	if err != nil {
		p.internal(w, r, err)
		return
	}
	p.render(w, r, http.StatusOK, "agents", viewerOf(r), map[string]any{"Agents": as})
}

func (p *Portal) approvers(w http.ResponseWriter, r *http.Request) {
	pd, err := p.periodOf(r.URL.Query())
	if p.badQuery(w, r, err) {
		return
	}
	stats, err := p.cfg.Projections.Approvers(r.Context(), pd.From, pd.To)
	if err != nil {
		p.internal(w, r, err)
		return
	}
	p.render(w, r, http.StatusOK, "approvers", viewerOf(r), map[string]any{"Period": pd, "Stats": stats})
}

func (p *Portal) queue(w http.ResponseWriter, r *http.Request) {
	qs, err := p.cfg.Projections.Queue(r.Context())
	if err != nil {
		p.internal(w, r, err)
		return
	}
	v := viewerOf(r)
	var mine []*projections.ChangeView
	for _, c := range qs {
		if c.RequestedBy != v.Actor.ID {
			mine = append(mine, c)
		}
	}
	p.render(w, r, http.StatusOK, "queue", v, map[string]any{"Changes": mine, "Done": r.URL.Query().Get("done")})
}

// evidence serves a stored evidence file as a download.
func (p *Portal) evidence(w http.ResponseWriter, r *http.Request) {
	sha := r.PathValue("sha")
	if len(sha) != 64 || strings.Trim(sha, "0123456789abcdef") != "" {
		p.fail(w, r, viewerOf(r), http.StatusBadRequest, "An evidence address is 64 lower-case hex digits.")
		return
	}
	ev, err := p.cfg.Clerk.Evidence(r.Context(), sha)
	if errors.Is(err, domain.ErrNotFound) {
		p.fail(w, r, viewerOf(r), http.StatusNotFound, "No evidence is stored under that address.")
		return
	}
	if err != nil {
		p.internal(w, r, err)
		return
	}
	ext := map[string]string{"junit": "xml", "sarif": "sarif.json"}[ev.Format]
	if ext == "" {
		ext = "bin"
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="evidence-%s.%s"`, sha[:12], ext))
	w.Write(ev.Content)
}
