package projections

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/evidence-parity/docket/domain"
	"github.com/evidence-parity/docket/domain/answers"
	"github.com/evidence-parity/docket/ledger"
)

// Projector keeps the read models in a SQLite file up to date with a log.
//
// It folds the log in batches: every stream a batch touched is re-read up
// to the batch's last position and its view rewritten, and the position
// after the batch is stored in the same transaction. A view is a function
// of its stream up to a position, so replaying a batch rewrites the same
// rows (idempotent), and a rebuild from position 0 ends in the same rows
// as live projection.
type Projector struct {
	log    ledger.Store
	db     *sql.DB
	logger *slog.Logger
	// streams caches the folds of recently projected streams, so a batch
	// folds only its own records into each view (a stream is read from the
	// store only when first seen mid-way, or after eviction) and memory
	// holds a fold per stream, not its records.
	streams map[string]*fold
}

// fold is a projected stream folded from revision 0 up to next-1.
type fold struct {
	next      uint64 // revision of the stream's next record
	last      uint64 // position of the last record folded
	change    *answers.Builder
	agent     domain.Agent
	principal domain.Principal
}

func newFold(stream string) *fold {
	f := &fold{}
	if strings.HasPrefix(stream, "change-") {
		f.change = answers.NewBuilder()
	}
	return f
}

// add folds the stream's next record (one whose event did not decode
// fails a change view for good, and is skipped by agents and principals).
func (f *fold) add(r decoded) {
	switch {
	case f.change != nil:
		f.change.Add(r)
	case r.Err == nil && strings.HasPrefix(r.Event.Stream, "agent-"):
		f.agent.Apply(r.Domain)
	case r.Err == nil:
		f.principal.Apply(r.Domain)
	}
	f.next, f.last = r.Event.Revision+1, r.Position
}

// decoded is a record with its domain event decoded (for the streams the
// read models fold), or the error decoding it gave.

// projected reports whether a stream feeds a read model.
func projected(stream string) bool {
	return strings.HasPrefix(stream, "change-") || strings.HasPrefix(stream, "agent-") || strings.HasPrefix(stream, "principal-")
}

// decodeAll decodes the records of projected streams.
func decodeAll(recs []ledger.Record) []decoded {
	out := make([]decoded, len(recs))
	for i, r := range recs {
		out[i].Record = r
		if projected(r.Event.Stream) {
			out[i].Domain, out[i].Err = domain.Decode(r.Event.Type, r.Event.Data)
		}
	}
	return out
}

// maxCachedStreams bounds the stream cache; past it the cache starts over.
const maxCachedStreams = 20_000

const schema = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changes (
	id            TEXT PRIMARY KEY,
	status        TEXT NOT NULL,
	agent         TEXT NOT NULL,
	requested_by  TEXT NOT NULL,
	approver      TEXT NOT NULL,
	emergency     INTEGER NOT NULL,
	has_deviation INTEGER NOT NULL,
	submitted_at  TEXT NOT NULL,
	promoted_at   TEXT,
	position      INTEGER NOT NULL,
	view          BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS changes_promoted ON changes (promoted_at);
CREATE INDEX IF NOT EXISTS changes_submitted ON changes (submitted_at);
-- The server's sweep for overdue emergencies (UnapprovedEmergencies) reads
-- only these, however many changes there are.
CREATE INDEX IF NOT EXISTS changes_unapproved_emergencies ON changes (submitted_at) WHERE emergency = 1 AND status = 'submitted';
CREATE TABLE IF NOT EXISTS principals (
	id        TEXT PRIMARY KEY,
	name      TEXT NOT NULL,
	email     TEXT NOT NULL,
	roles     TEXT NOT NULL,
	authority BLOB NOT NULL,
	position  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agents (
	id       TEXT PRIMARY KEY,
	name     TEXT NOT NULL,
	owner    TEXT NOT NULL,
	harness  TEXT NOT NULL,
	retired  INTEGER NOT NULL,
	position INTEGER NOT NULL
) WITHOUT ROWID;
`

// Open opens (creating) the read models at path over log.
func Open(ctx context.Context, path string, log ledger.Store, logger *slog.Logger) (*Projector, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open projections: %w", err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("open projections: %w", err)
	}
	// New read models are of this build's format; read models with
	// anything in them keep the format they were stored in (Current).
	if _, err := db.ExecContext(ctx, `INSERT INTO meta (key, value) SELECT 'format', ? WHERE NOT EXISTS (SELECT 1 FROM meta)`, viewsFormat); err != nil {
		db.Close()
		return nil, fmt.Errorf("open projections: %w", err)
	}
	return &Projector{log: log, db: db, logger: logger, streams: map[string]*fold{}}, nil
}

// viewsFormat numbers how the read models compute what they store (the
// answers' attributes and details). Read models stored in another format
// are not Current: docket serve rebuilds them before it serves, and a
// binder export projects into a scratch copy instead.
//
//	1: before the number was kept
//	2: approver_authority from the authority the approval records; the
//	   freeze check cites the requests a freeze refused (pending while no
//	   session has been issued)
const viewsFormat = 2

// Current reports whether the read models were stored in this build's
// format (Rebuild makes them so).
func (p *Projector) Current(ctx context.Context) (bool, error) {
	var stored int64
	err := p.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'format'`).Scan(&stored)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil // stored before the format was kept
	}
	return stored == viewsFormat, err
}

// reset drops every read model and records the format, in one transaction.
func (p *Projector) reset(ctx context.Context) error {
	clear(p.streams)
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM changes; DELETE FROM agents; DELETE FROM principals; DELETE FROM meta`); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('format', ?)`, viewsFormat); err != nil {
		return err
	}
	return tx.Commit()
}

// Close closes the read models.
func (p *Projector) Close() error { return p.db.Close() }

// Position returns the next log position to project.
func (p *Projector) Position(ctx context.Context) (uint64, error) {
	var pos int64
	err := p.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'position'`).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return uint64(pos), err
}

const batchSize = 2000

// catchUpBatch is the batch size of a catch-up. A change's view is
// written once per batch that touches it (folding is incremental, so a
// batch costs its own records), and the pipeline holds a few batches of
// decoded records at a time, so it bounds the catch-up's memory.
const catchUpBatch = 4096

// CatchUp projects everything in the log now, then returns. Reading,
// decoding and writing the read models run in a pipeline, each stage in its
// own goroutine.
func (p *Projector) CatchUp(ctx context.Context) error {
	from, err := p.Position(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	read := make(chan []ledger.Record, 1)
	readErr := make(chan error, 1)
	go func() {
		defer close(read)
		batch := make([]ledger.Record, 0, catchUpBatch)
		send := func() bool {
			select {
			case read <- batch:
				batch = make([]ledger.Record, 0, catchUpBatch)
				return true
			case <-ctx.Done():
				return false
			}
		}
		for r, err := range p.log.ReadAll(ctx, from) {
			if err != nil {
				readErr <- err
				return
			}
			batch = append(batch, r)
			if len(batch) == catchUpBatch && !send() {
				return
			}
		}
		if len(batch) > 0 {
			send()
		}
	}()
	decodedBatches := make(chan []decoded, 1)
	go func() {
		defer close(decodedBatches)
		for batch := range read {
			select {
			case decodedBatches <- decodeAll(batch):
			case <-ctx.Done():
				return
			}
		}
	}()
	for batch := range decodedBatches {
		if err := p.apply(ctx, batch); err != nil {
			return err
		}
	}
	select {
	case err := <-readErr:
		return err
	default:
		return ctx.Err()
	}
}

// Run projects the log as it grows until ctx is done: catch-up, then live
// through Subscribe, flushing a batch when it is full or the log is idle
// for a moment. It returns ctx's error.
func (p *Projector) Run(ctx context.Context) error {
	from, err := p.Position(ctx)
	if err != nil {
		return err
	}
	recs := make(chan ledger.Record, batchSize)
	errc := make(chan error, 1)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(recs)
		for r, err := range p.log.Subscribe(sctx, from) {
			if err != nil {
				errc <- err
				return
			}
			select {
			case recs <- r:
			case <-sctx.Done(): // the consumer stopped (a failed batch)
				errc <- sctx.Err()
				return
			}
		}
	}()
	var batch []ledger.Record
	idle := time.NewTimer(time.Hour)
	defer idle.Stop()
	for {
		select {
		case r, ok := <-recs:
			if !ok {
				if err := p.apply(context.WithoutCancel(ctx), decodeAll(batch)); err != nil {
					return err
				}
				return <-errc
			}
			batch = append(batch, r)
			if len(batch) < batchSize {
				idle.Reset(20 * time.Millisecond)
				continue
			}
		case <-idle.C:
		}
		if err := p.apply(ctx, decodeAll(batch)); err != nil {
			return err
		}
		batch = batch[:0]
	}
}

// Rebuild drops every read model and projects the log again from 0.
func (p *Projector) Rebuild(ctx context.Context) error {
	if err := p.reset(ctx); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	return p.CatchUp(ctx)
}

// apply folds one batch: rewrites the view of every stream it touched as of
// its last position, and stores the next position, in one transaction.
func (p *Projector) apply(ctx context.Context, batch []decoded) error {
	if len(batch) == 0 {
		return nil
	}
	upTo := batch[len(batch)-1].Position
	if len(p.streams) > maxCachedStreams {
		clear(p.streams)
	}
	// Fold the batch into the cached folds. A stream first seen mid-way,
	// evicted, or folded past this batch (a replay) is folded again from
	// the store up to the batch's end.
	touched, stale := map[string]*fold{}, map[string]bool{}
	for _, r := range batch {
		s := r.Event.Stream
		if !projected(s) || stale[s] {
			continue
		}
		f, ok := p.streams[s]
		switch {
		case ok && f.next == r.Event.Revision:
		case !ok && r.Event.Revision == 0:
			f = newFold(s)
			p.streams[s] = f
		default:
			delete(p.streams, s)
			stale[s] = true
			continue
		}
		f.add(r)
		touched[s] = f
	}
	for s := range stale {
		f, err := p.foldFromStore(ctx, s, upTo)
		if err != nil {
			return err
		}
		p.streams[s], touched[s] = f, f
	}
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	upsert, err := tx.PrepareContext(ctx, upsertChangeSQL)
	if err != nil {
		return err
	}
	defer upsert.Close()
	for stream, f := range touched {
		switch {
		case f.change != nil:
			v, err := f.change.View()
			if errors.Is(err, domain.ErrNotFound) {
				continue // a stream without a plan is not a change
			}
			if err != nil {
				p.logger.Error("change view not built", "stream", stream, "err", err)
				continue
			}
			if err := upsertChange(ctx, upsert, v); err != nil {
				return err
			}
		case strings.HasPrefix(stream, "agent-"):
			a := &f.agent
			if a.ID == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO agents (id, name, owner, harness, retired, position) VALUES (?, ?, ?, ?, ?, ?)`,
				a.ID, a.Name, a.Owner, a.Harness, a.Retired, int64(f.last)); err != nil {
				return err
			}
		default:
			pr := &f.principal
			if pr.ID == "" {
				continue
			}
			var roles []string
			for r := range pr.Roles {
				roles = append(roles, string(r))
			}
			slices.Sort(roles)
			auth, _ := json.Marshal(pr.Authority)
			if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO principals (id, name, email, roles, authority, position) VALUES (?, ?, ?, ?, ?, ?)`,
				pr.ID, pr.Name, pr.Email, strings.Join(roles, ","), auth, int64(f.last)); err != nil {
				return err
			}
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO meta (key, value) VALUES ('position', ?)`, int64(upTo+1)); err != nil {
		return err
	}
	return tx.Commit()
}

// foldFromStore folds a stream's records at positions ≤ upTo, read from
// the store.
func (p *Projector) foldFromStore(ctx context.Context, stream string, upTo uint64) (*fold, error) {
	recs, err := p.log.ReadStream(ctx, stream, 0)
	if err != nil {
		return nil, err
	}
	f := newFold(stream)
	for i, r := range recs {
		if r.Position > upTo {
			break
		}
		if r.Event.Revision != uint64(i) {
			return nil, fmt.Errorf("%s: revision %d at index %d", stream, r.Event.Revision, i)
		}
		f.add(decodeAll(recs[i : i+1])[0])
	}
	return f, nil
}

const upsertChangeSQL = `INSERT OR REPLACE INTO changes (id, status, agent, requested_by, approver, emergency, has_deviation, submitted_at, promoted_at, position, view)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

func upsertChange(ctx context.Context, upsert *sql.Stmt, v *ChangeView) error {
	view, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var promoted any
	if v.PromotedAt != nil {
		promoted = v.PromotedAt.UTC().Format(sortableTime)
	}
	_, err = upsert.ExecContext(ctx, v.ID, v.Status, v.Agent, v.RequestedBy, v.Approver, v.Plan.Emergency, v.OutOfScope > 0,
		v.SubmittedAt.UTC().Format(sortableTime), promoted, int64(v.Position), view)
	return err
}

// Change returns a change's view.
func (p *Projector) Change(ctx context.Context, id string) (*ChangeView, error) {
	var view []byte
	err := p.db.QueryRowContext(ctx, `SELECT view FROM changes WHERE id = ?`, id).Scan(&view)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: no change %s", domain.ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	var v ChangeView
	if err := json.Unmarshal(view, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Dump returns every read-model row, in a fixed order, as text: two
// projections of the same log dump the same.
func (p *Projector) Dump(ctx context.Context) ([]string, error) {
	var out []string
	for _, q := range []string{
		`SELECT id || '|' || status || '|' || agent || '|' || requested_by || '|' || approver || '|' || emergency || '|' || has_deviation || '|' || submitted_at || '|' || COALESCE(promoted_at, '') || '|' || position || '|' || CAST(view AS TEXT) FROM changes ORDER BY id`,
		`SELECT id || '|' || name || '|' || owner || '|' || harness || '|' || retired || '|' || position FROM agents ORDER BY id`,
		`SELECT id || '|' || name || '|' || email || '|' || roles || '|' || CAST(authority AS TEXT) || '|' || position FROM principals ORDER BY id`,
		`SELECT key || '|' || value FROM meta ORDER BY key`,
	} {
		rows, err := p.db.QueryContext(ctx, q)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, s)
		}
		rows.Close()
	}
	return out, nil
}

// Replay projects the log again from position from without clearing the
// read models: applying a batch twice leaves the same rows.
func (p *Projector) Replay(ctx context.Context, from uint64) error {
	if _, err := p.db.ExecContext(ctx, `INSERT OR REPLACE INTO meta (key, value) VALUES ('position', ?)`, int64(from)); err != nil {
		return err
	}
	return p.CatchUp(ctx)
}

// AgentView is an entry of the agent inventory.
type AgentView struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Owner   string `json:"owner"`
	Harness string `json:"harness"`
	Retired bool   `json:"retired"`
}

// Agents returns the agent inventory, by id.
func (p *Projector) Agents(ctx context.Context) ([]*AgentView, error) {
	rows, err := p.db.QueryContext(ctx, `SELECT id, name, owner, harness, retired FROM agents ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*AgentView{}
	for rows.Next() {
		var a AgentView
		if err := rows.Scan(&a.ID, &a.Name, &a.Owner, &a.Harness, &a.Retired); err != nil {
			return nil, err
		}
		out = append(out, &a)
	}
	return out, rows.Err()
}

// PrincipalView is a principal and its roles.
type PrincipalView struct {
	ID        string
	Name      string
	Email     string
	Roles     []string
	Authority domain.Scope
}

// Principals returns every principal, by id.
func (p *Projector) Principals(ctx context.Context) ([]*PrincipalView, error) {
	rows, err := p.db.QueryContext(ctx, `SELECT id, name, email, roles, authority FROM principals ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*PrincipalView{}
	for rows.Next() {
		var v PrincipalView
		var roles string
		var auth []byte
		if err := rows.Scan(&v.ID, &v.Name, &v.Email, &roles, &auth); err != nil {
			return nil, err
		}
		v.Roles = strings.Split(roles, ",")
		if err := json.Unmarshal(auth, &v.Authority); err != nil {
			return nil, err
		}
		out = append(out, &v)
	}
	return out, rows.Err()
}
