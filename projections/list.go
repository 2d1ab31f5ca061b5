package projections

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/evidence-parity/docket/domain"
)

// Filter selects changes; zero fields select everything.
type Filter struct {
	// PromotedFrom and PromotedTo select changes promoted in [from, to).
	PromotedFrom, PromotedTo *time.Time
	// SubmittedFrom and SubmittedTo select changes submitted in [from,
	// to), promoted or not.
	SubmittedFrom, SubmittedTo *time.Time
	Status, Agent, Approver    string
	HasDeviation, Emergency    *bool
}

// Page is one page of changes, newest first.
type Page struct {
	Views []*ChangeView
	// Cursors[i] points just after Views[i].
	Cursors   []string
	Total     int
	EndCursor string
	HasNext   bool
}

// MaxPage is the largest page List returns.
const MaxPage = 500

// List returns the changes matching f, first at a time after the cursor
// (keyset paging: stable while changes are added): newest submitted first,
// or, when f selects a promotion period (a population), newest promoted
// first, which walks the promotion index and stays fast on millions of
// changes.
func (p *Projector) List(ctx context.Context, f Filter, first int, after string) (Page, error) {
	if first <= 0 || first > MaxPage {
		return Page{}, fmt.Errorf("%w: first must be 1..%d", domain.ErrInvalidInput, MaxPage)
	}
	var where []string
	var args []any
	add := func(cond string, a ...any) { where = append(where, cond); args = append(args, a...) }
	if f.PromotedFrom != nil {
		add("promoted_at >= ?", f.PromotedFrom.UTC().Format(sortableTime))
	}
	if f.PromotedTo != nil {
		add("promoted_at < ?", f.PromotedTo.UTC().Format(sortableTime))
	}
	if f.SubmittedFrom != nil {
		add("submitted_at >= ?", f.SubmittedFrom.UTC().Format(sortableTime))
	}
	if f.SubmittedTo != nil {
		add("submitted_at < ?", f.SubmittedTo.UTC().Format(sortableTime))
	}
	if f.Status != "" {
		add("status = ?", f.Status)
	}
	if f.Agent != "" {
		add("agent = ?", f.Agent)
	}
	if f.Approver != "" {
		add("approver = ?", f.Approver)
	}
	if f.HasDeviation != nil {
		add("has_deviation = ?", *f.HasDeviation)
	}
	if f.Emergency != nil {
		add("emergency = ?", *f.Emergency)
	}
	cond := "1"
	if len(where) > 0 {
		cond = strings.Join(where, " AND ")
	}
	var page Page
	if err := p.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM changes WHERE "+cond, args...).Scan(&page.Total); err != nil {
		return Page{}, err
	}
	order := "submitted_at"
	if f.PromotedFrom != nil || f.PromotedTo != nil {
		order = "promoted_at"
	}
	if after != "" {
		at, id, err := decodeCursor(after)
		if err != nil {
			return Page{}, err
		}
		cond += " AND (" + order + " < ? OR (" + order + " = ? AND id < ?))"
		args = append(args, at, at, id)
	}
	rows, err := p.db.QueryContext(ctx, "SELECT view, "+order+" FROM changes WHERE "+cond+" ORDER BY "+order+" DESC, id DESC LIMIT ?", append(args, first+1)...)
	if err != nil {
		return Page{}, err
	}
	defer rows.Close()
	var last string
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw, &last); err != nil {
			return Page{}, err
		}
		if len(page.Views) == first {
			page.HasNext = true
			break
		}
		var v ChangeView
		if err := json.Unmarshal(raw, &v); err != nil {
			return Page{}, err
		}
		page.Views = append(page.Views, &v)
		page.Cursors = append(page.Cursors, encodeCursor(last, v.ID))
	}
	if n := len(page.Cursors); n > 0 {
		page.EndCursor = page.Cursors[n-1]
	}
	return page, rows.Err()
}

func encodeCursor(at, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(at + "|" + id))
}

func decodeCursor(c string) (string, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	at, id, ok := strings.Cut(string(b), "|")
	if err != nil || !ok {
		return "", "", fmt.Errorf("%w: malformed cursor", domain.ErrInvalidInput)
	}
	return at, id, nil
}

// sortableTime is how times are stored in the read models: fixed width, so
// that text order is time order (RFC3339Nano drops trailing zeros, and
// "…:05Z" sorts after "…:05.1Z").
const sortableTime = "2006-01-02T15:04:05.000000000Z"

// ChangeException is an exception with the change it belongs to.
type ChangeException struct {
	ChangeID  string
	Exception *ExceptionView
}

// Exceptions lists the exceptions of all changes, newest change first, at
// most first of them; open only the unresolved.
func (p *Projector) Exceptions(ctx context.Context, open bool, first int) ([]ChangeException, error) {
	if first <= 0 || first > MaxPage {
		return nil, fmt.Errorf("%w: first must be 1..%d", domain.ErrInvalidInput, MaxPage)
	}
	out := []ChangeException{}
	for v, err := range p.views(ctx, `SELECT view FROM changes WHERE json_array_length(view, '$.exceptions') > 0 ORDER BY submitted_at DESC, id DESC`) {
		if err != nil {
			return nil, err
		}
		for i := range v.Exceptions {
			if x := &v.Exceptions[i]; (!open || !x.Resolved) && len(out) < first {
				out = append(out, ChangeException{ChangeID: v.ID, Exception: x})
			}
		}
		if len(out) == first {
			break
		}
	}
	return out, nil
}

// views runs a query whose one column is a change view and yields the
// views in its order, until the caller stops.
func (p *Projector) views(ctx context.Context, query string, args ...any) iter.Seq2[*ChangeView, error] {
	return func(yield func(*ChangeView, error) bool) {
		rows, err := p.db.QueryContext(ctx, query, args...)
		if err != nil {
			yield(nil, err)
			return
		}
		defer rows.Close()
		for rows.Next() {
			var raw []byte
			if err := rows.Scan(&raw); err != nil {
				yield(nil, err)
				return
			}
			v := new(ChangeView)
			if err := json.Unmarshal(raw, v); err != nil {
				yield(nil, err)
				return
			}
			if !yield(v, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(nil, err)
		}
	}
}

// ChangeSession is a session with the change it belongs to.
type ChangeSession struct {
	ChangeID string
	Session  *SessionView
}

// SessionFilter narrows Sessions: to one change, to one agent's, to the
// live ones (not revoked, ended or expired at Now, on a change still open
// whose plan has not been revised since).
type SessionFilter struct {
	ChangeID, Agent string
	Live            bool
	Now             time.Time
}

// live reports whether a session's credential may still act at now, as
// the clerk decides it (domain.CheckSession) short of the agent's
// retirement, which the change view does not hold.
func live(c *ChangeView, s *SessionView, now time.Time) bool {
	closed := c.Status == "promoted" || c.Status == "rolled-back"
	return !s.Revoked && !s.Ended && now.Before(s.ExpiresAt) && s.PlanHash == c.PlanHash && !closed
}

// Sessions lists the sessions of all changes that f admits, newest change
// first and, within a change, newest issued first; at most first of them.
func (p *Projector) Sessions(ctx context.Context, f SessionFilter, first int) ([]ChangeSession, error) {
	if first <= 0 || first > MaxPage {
		return nil, fmt.Errorf("%w: first must be 1..%d", domain.ErrInvalidInput, MaxPage)
	}
	q := `SELECT view FROM changes WHERE json_array_length(view, '$.sessions') > 0`
	var args []any
	if f.ChangeID != "" {
		q += ` AND id = ?`
		args = append(args, f.ChangeID)
	}
	if f.Agent != "" {
		q += ` AND agent = ?`
		args = append(args, f.Agent)
	}
	out := []ChangeSession{}
	for v, err := range p.views(ctx, q+` ORDER BY submitted_at DESC, id DESC`, args...) {
		if err != nil {
			return nil, err
		}
		slices.SortStableFunc(v.Sessions, func(a, b SessionView) int { return b.IssuedAt.Compare(a.IssuedAt) })
		for i := range v.Sessions {
			if s := &v.Sessions[i]; (!f.Live || live(v, s, f.Now)) && len(out) < first {
				out = append(out, ChangeSession{ChangeID: v.ID, Session: s})
			}
		}
		if len(out) == first {
			break
		}
	}
	return out, nil
}

// UnapprovedEmergencies lists the emergency changes submitted before the
// given time that are neither approved nor rejected and have no overdue
// exception yet: those whose approval may be overdue. It reads them by a
// partial index, so the sweep that asks every minute stays cheap on
// millions of changes.
func (p *Projector) UnapprovedEmergencies(ctx context.Context, before time.Time) ([]string, error) {
	var ids []string
	for v, err := range p.views(ctx, `SELECT view FROM changes WHERE emergency = 1 AND status = 'submitted' AND submitted_at < ? ORDER BY submitted_at`, before.UTC().Format(sortableTime)) {
		if err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(v.Exceptions, func(x ExceptionView) bool { return x.Kind == string(domain.ExceptionEmergencyOverdue) }) {
			ids = append(ids, v.ID)
		}
	}
	return ids, nil
}
