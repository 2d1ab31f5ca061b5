package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/compact"

	"github.com/evidence-parity/docket/ledger"
)

type requestKind uint8

const (
	kindAppend     requestKind = iota
	kindCheckpoint             // store a signed checkpoint
	kindBarrier                // commit everything queued before it
)

// request is one unit of work for the writer goroutine.
type request struct {
	kind     requestKind
	stream   string
	expected ledger.ExpectedRevision
	events   []ledger.Prepared
	cp       ledger.Checkpoint
	note     []byte
	done     chan result
}

type result struct {
	records []ledger.Record
	err     error
}

type writeStmts struct {
	findID, lastRev, readRange, insertEvent, insertNode, maxCheckpoint, insertCheckpoint *sql.Stmt
}

// errSplit marks a statement failure in a batch of several requests: the
// batch is rolled back and its requests are committed one by one, so one
// bad request cannot fail the others.
var errSplit = errors.New("split batch")

// Append validates and canonicalizes events in the caller's goroutine, then
// queues them for the writer and returns once their batch is durable.
func (s *Store) Append(ctx context.Context, stream string, expected ledger.ExpectedRevision, events ...ledger.Event) ([]ledger.Record, error) {
	prepared, err := ledger.Prepare(stream, events, s.limits, s.now())
	if err != nil {
		return nil, fmt.Errorf("append %s: %w", stream, err)
	}
	return s.do(ctx, &request{kind: kindAppend, stream: stream, expected: expected, events: prepared})
}

// AddCheckpoint stores a signed checkpoint; its size must exceed every
// stored checkpoint's.
func (s *Store) AddCheckpoint(ctx context.Context, cp ledger.Checkpoint, note []byte) error {
	_, err := s.do(ctx, &request{kind: kindCheckpoint, cp: cp, note: note})
	return err
}

func (s *Store) submit(ctx context.Context, r *request) error {
	_, err := s.do(ctx, r)
	return err
}

// do queues r and waits for its outcome. Once queued, r is always answered:
// the wait does not end early on ctx, so a caller never mistakes a committed
// append for a failed one.
func (s *Store) do(ctx context.Context, r *request) ([]ledger.Record, error) {
	r.done = make(chan result, 1)
	s.sendMu.RLock()
	// Checked and queued under one read lock: Close cannot slip its
	// barrier and final checkpoint in between.
	if s.reqsClosed || s.reqs == nil || (r.kind == kindAppend && s.closed) {
		s.sendMu.RUnlock()
		return nil, ledger.ErrClosed
	}
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		s.sendMu.RUnlock()
		return nil, ctx.Err()
	}
	s.sendMu.RUnlock()
	res := <-r.done
	return res.records, res.err
}

func (s *Store) writer(ctx context.Context) {
	defer close(s.writerErr)
	defer close(s.walGrew)
	go s.syncer()
	defer func() {
		close(s.syncq)
		<-s.syncDone
		if s.walFile != nil {
			s.walFile.Close()
			s.walFile = nil
		}
	}()
	// Fires when the stream index's unindexed tail has waited long
	// enough and no append came to flush it.
	flushTimer := time.NewTimer(time.Hour)
	flushTimer.Stop()
	defer flushTimer.Stop()
	for {
		if !s.tailIdx.since.IsZero() && s.syncErr() == nil {
			flushTimer.Reset(time.Until(s.tailIdx.since.Add(streamsFlushAfter)))
		}
		var first *request
		select {
		case r, ok := <-s.reqs:
			if !ok {
				goto done
			}
			first = r
		case <-flushTimer.C:
			s.flushStreamsLogged(ctx)
			continue
		}
		flushTimer.Stop()
		batch := []*request{first}
		n := len(first.events)
		barrier := first.kind == kindBarrier
	gather:
		for n < maxBatchEvents {
			select {
			case r, ok := <-s.reqs:
				if !ok {
					break gather
				}
				batch = append(batch, r)
				n += len(r.events)
				barrier = barrier || r.kind == kindBarrier
			default:
				break gather
			}
		}
		s.commit(ctx, batch)
		s.boundWAL(ctx)
		// A barrier comes from Close: the ledger closes fully indexed.
		if barrier || s.tailIdx.due(s.rng.End(), time.Now()) {
			s.flushStreamsLogged(ctx)
		}
	}
done:
	for _, st := range []*sql.Stmt{s.w.findID, s.w.lastRev, s.w.readRange, s.w.insertEvent, s.w.insertNode, s.w.maxCheckpoint, s.w.insertCheckpoint} {
		if st != nil {
			st.Close()
		}
	}
}

func (s *Store) commit(ctx context.Context, batch []*request) {
	if err := s.syncErr(); err != nil {
		fail(batch, err)
		return
	}
	c, err := s.commitTx(ctx, batch)
	if errors.Is(err, errSplit) {
		for _, r := range batch {
			s.commit(ctx, []*request{r})
		}
		return
	}
	if err != nil {
		fail(batch, err)
		return
	}
	// Waits while the syncer makes the previous batch durable: the
	// requests that arrive meanwhile make the next batch.
	s.syncq <- c
}

// syncer makes committed batches durable one at a time, in commit order,
// while the writer commits the next: the WAL's fsync, which dominates a
// commit, overlaps the next batch's work instead of following it. The
// writer's connection commits with synchronous=NORMAL (SQLite writes the
// frames, no fsync); this fsync of the WAL file makes those frames, and
// every earlier one, durable before any request of the batch is answered
// or anyone sees it published. A batch built on an earlier one is written
// after it in the same WAL, so it can never be durable without it.
// A failed fsync leaves what the WAL holds unknown: the store answers
// every append from then on with that error (fail-stop), as the operating
// system may have dropped the pages it could not write.
func (s *Store) syncer() {
	defer close(s.syncDone)
	for c := range s.syncq {
		err := s.syncErr()
		if err == nil {
			start := time.Now()
			if err = s.syncWAL(); err == nil {
				s.syncNanos.Add(uint64(time.Since(start)))
				s.syncs.Add(1)
			} else {
				err = fmt.Errorf("make the ledger durable: the append was written but the fsync failed, so whether it is kept is unknown: %w (the ledger stops taking appends; after a restart a retry with the same event ids is recognised)", err)
				s.failed.Store(&err)
			}
		}
		if err != nil {
			fail(c.batch, err)
			continue
		}
		s.publish(c)
		for i, r := range c.batch {
			r.done <- c.results[i]
		}
	}
}

// fail answers every request of batch with err.
func fail(batch []*request, err error) {
	for _, r := range batch {
		r.done <- result{err: err}
	}
}

// syncErr is the failed fsync that stopped the store, or nil.
func (s *Store) syncErr() error {
	if p := s.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// syncWAL fsyncs the WAL file. SQLite keeps one WAL file while any
// connection is open (the writer's always is), restarting it in place; if
// it was ever replaced, the new one is the one to sync.
func (s *Store) syncWAL() error {
	if s.beforeSync != nil {
		s.beforeSync()
	}
	fi, err := os.Stat(s.walPath)
	if err != nil {
		return err
	}
	if s.walFile == nil || !os.SameFile(fi, s.walInfo) {
		f, err := os.Open(s.walPath)
		if err != nil {
			return err
		}
		if s.walFile != nil {
			s.walFile.Close()
		}
		s.walFile, s.walInfo = f, fi
	}
	return s.walFile.Sync()
}

// syncDir makes a folder's entries (a new WAL file's name) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// walCheckpointInterval is the least time between two WAL checkpoints.
// SQLite's automatic checkpoint runs every 1,000 pages (4 MB) of WAL; at
// thousands of appends a second that is a few hundred milliseconds, and a
// page rewritten by many commits meanwhile is copied into the database once.
const walCheckpointInterval = 250 * time.Millisecond

// walCheckpoints copies the WAL back into the database file (a PASSIVE
// checkpoint: it never blocks the writer or readers) at most every
// walCheckpointInterval while commits come in, until the writer exits. It
// runs beside the writer, so appends never wait for it. The checkpoint
// syncs the WAL before copying and the database after, as SQLite's own
// does; durability of commits does not depend on it.
func (s *Store) walCheckpoints(ctx context.Context) {
	defer close(s.walDone)
	for range s.walGrew {
		s.ckMu.Lock()
		var busy, frames, copied int64
		err := s.ckdb.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied)
		s.ckMu.Unlock()
		if err != nil {
			s.logger.Warn("WAL checkpoint failed; retrying after the next commit", "err", err)
		} else {
			s.walBacklog.Store(frames - copied)
		}
		select {
		case <-time.After(walCheckpointInterval):
		case <-s.writerErr: // closing: the last connection's close checkpoints
			return
		}
	}
}

// See boundWAL.
const (
	walRetryInterval  = 5 * time.Second
	maxRestartBacklog = 8 << 20   // bytes of WAL a restart may always be left to copy
	walFrameBytes     = 4096 + 24 // a WAL frame of a 4 KiB page (the default page size)
)

// boundWAL restarts the write-ahead log once it has outgrown maxWAL; the
// writer calls it between batches.
//
// SQLite writes a WAL from its start again only when a writer begins while
// every frame has been copied into the database. Under sustained appends
// the passive checkpoints never catch up with the writer, so the WAL would
// grow for as long as the load lasts (~50 MB/s at saturation on the
// development machine). A RESTART checkpoint copies the frames the passive
// ones have not, syncs the database and waits (at most ckdb's busy
// timeout) for readers to leave the WAL; the next commit then writes from
// the WAL's start and cuts the file back to maxWAL (journal_size_limit).
// Appends wait meanwhile, so the restart is left until the passive
// checkpoints (which never block the writer) have copied all but a
// quarter of maxWAL (or maxRestartBacklog, if more): a short pause every
// few seconds at saturation, none below it. A reader holding an old
// snapshot (a long read in another process) stops the passive checkpoints
// too, so the WAL grows while it reads, and is restarted after. If a
// passive checkpoint is running the restart is tried after the next batch;
// if readers stayed through the restart's wait, once the WAL has doubled
// or walRetryInterval has passed, so such a reader costs appends one wait
// per doubling or interval, not one per batch.
func (s *Store) boundWAL(ctx context.Context) {
	if s.syncErr() != nil {
		return // stopped: nothing more is written
	}
	st, err := os.Stat(s.path + "-wal")
	if err != nil || st.Size() <= s.maxWAL {
		return
	}
	if st.Size() < s.walRetryAt && time.Now().Before(s.walRetryAfter) {
		return
	}
	if s.walBacklog.Load()*walFrameBytes > max(s.maxWAL/4, maxRestartBacklog) {
		return // the passive checkpoints are behind (or held back by a reader)
	}
	if !s.ckMu.TryLock() {
		return
	}
	defer s.ckMu.Unlock()
	var busy, frames, copied int64
	if err := s.ckdb.QueryRowContext(ctx, `PRAGMA wal_checkpoint(RESTART)`).Scan(&busy, &frames, &copied); err != nil || busy != 0 {
		s.walRetryAt, s.walRetryAfter = 2*st.Size(), time.Now().Add(walRetryInterval)
		s.logger.Info("WAL restart postponed", "wal bytes", st.Size(), "busy", busy == 1, "err", err)
		return
	}
	s.walRetryAt, s.walRetryAfter = 0, time.Time{}
	s.walResets.Add(1)
}

func (s *Store) prepareStmts(ctx context.Context) error {
	if s.w.findID != nil {
		return nil
	}
	// All or none: a statement left nil would crash a later batch.
	var w writeStmts
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&w.findID, `SELECT stream, position FROM events WHERE id = ?`},
		{&w.lastRev, lastIndexedSQL},
		{&w.readRange, `SELECT position, canonical FROM events WHERE position >= ? ORDER BY position LIMIT ?`},
		{&w.insertEvent, `INSERT INTO events (position, id, stream, revision, leaf, canonical) VALUES (?, ?, ?, ?, ?, ?)`},
		{&w.insertNode, `INSERT INTO tree (level, idx, hash) VALUES (?, ?, ?)`},
		{&w.maxCheckpoint, `SELECT COALESCE(MAX(size), 0) FROM checkpoints`},
		{&w.insertCheckpoint, `INSERT INTO checkpoints (size, root, note, signed_at) VALUES (?, ?, ?, ?)`},
	} {
		st, err := s.wdb.PrepareContext(ctx, p.sql)
		if err != nil {
			for _, done := range []*sql.Stmt{w.findID, w.lastRev, w.readRange, w.insertEvent, w.insertNode, w.maxCheckpoint} {
				if done != nil {
					done.Close()
				}
			}
			return err
		}
		*p.dst = st
	}
	s.w = w
	return nil
}

// commitTx runs a batch in one transaction. Request-level outcomes (wrong
// revision, duplicate id) are in results; a non-nil error fails the batch.
func (s *Store) commitTx(ctx context.Context, batch []*request) (_ *committed, err error) {
	if err := s.prepareStmts(ctx); err != nil {
		return nil, fmt.Errorf("prepare statements: %w", err)
	}
	saved, err := ledger.RangeFactory.NewRange(s.rng.Begin(), s.rng.End(), append([][]byte(nil), s.rng.Hashes()...))
	if err != nil {
		return nil, err
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
			s.rng = saved
			if len(batch) > 1 {
				err = fmt.Errorf("%w: %w", errSplit, err)
			}
		}
	}()
	st := writeStmts{
		findID: tx.StmtContext(ctx, s.w.findID), lastRev: tx.StmtContext(ctx, s.w.lastRev), readRange: tx.StmtContext(ctx, s.w.readRange),
		insertEvent: tx.StmtContext(ctx, s.w.insertEvent), insertNode: tx.StmtContext(ctx, s.w.insertNode),
		maxCheckpoint: tx.StmtContext(ctx, s.w.maxCheckpoint), insertCheckpoint: tx.StmtContext(ctx, s.w.insertCheckpoint),
	}
	results := make([]result, len(batch))
	b := &batchState{next: map[string]uint64{}}
	for i, r := range batch {
		switch r.kind {
		case kindAppend:
			results[i], err = s.appendTx(ctx, st, r, b)
		case kindCheckpoint:
			results[i].err, err = addCheckpointTx(ctx, st, r, s.now())
		}
		if err != nil {
			return nil, err
		}
	}
	var nodeErr error
	storeNode := func(id compact.NodeID, hash []byte) {
		if id.Level >= storedLevel && nodeErr == nil {
			_, nodeErr = st.insertNode.ExecContext(ctx, id.Level, int64(id.Index), hash)
		}
	}
	for _, h := range b.leaves {
		if err := s.rng.Append(h, storeNode); err != nil {
			return nil, fmt.Errorf("store tree: %w", err)
		}
	}
	if nodeErr != nil {
		return nil, fmt.Errorf("store tree: %w", nodeErr)
	}
	root, err := s.rng.GetRootHash(nil)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	s.commits.Add(1)
	select {
	case s.walGrew <- struct{}{}:
	default:
	}
	// The writer's own account, ahead of the publication: the next
	// batch's revisions build on this one before it is durable.
	s.tailIdx.committed(b.next, s.rng.End(), time.Now())
	return &committed{batch: batch, results: results, next: b.next, canonical: b.canonical, end: s.rng.End(), root: root}, nil
}

// committed is a batch whose transaction committed but may not be durable
// yet: the syncer makes the WAL durable, then publishes the batch and
// answers its requests.
type committed struct {
	batch     []*request
	results   []result
	next      map[string]uint64 // stream → next revision after the batch
	canonical [][]byte          // its events, the last before position end
	end       uint64            // tree size after it
	root      []byte
}

// publish makes a durable batch visible: stream heads, the recent tail,
// the tree head (Head, readers' bound), subscribers and the checkpointer.
func (s *Store) publish(c *committed) {
	for _, r := range c.batch {
		if r.kind == kindAppend {
			s.appends.Add(1)
		}
	}
	s.headsMu.Lock()
	s.headsGen++
	if len(s.heads)+len(c.next) > maxCachedStreams {
		clear(s.heads)
	}
	maps.Copy(s.heads, c.next)
	s.headsMu.Unlock()
	if len(c.canonical) > 0 {
		s.mu.Lock()
		s.tail.add(c.end-uint64(len(c.canonical)), c.canonical)
		s.size, s.root = c.end, c.root
		close(s.notify)
		s.notify = make(chan struct{})
		s.mu.Unlock()
		select {
		case s.grew <- struct{}{}:
		default:
		}
	}
}

// nextRevision returns the revision the stream's next event gets (0 for a
// stream with no events), from this batch's appends, the stream index's
// unindexed tail (which includes batches committed but not yet
// published), the published heads, or the stream index.
func (s *Store) nextRevision(ctx context.Context, st writeStmts, b *batchState, stream string) (uint64, error) {
	if next, ok := b.next[stream]; ok {
		return next, nil
	}
	// The tail's account first: it includes batches committed but not
	// yet durable, which the published heads do not.
	if n, ok := s.tailIdx.next[stream]; ok {
		return n.revision, nil
	}
	s.headsMu.RLock()
	next, ok := s.heads[stream]
	s.headsMu.RUnlock()
	if ok {
		return next, nil
	}
	var last sql.NullInt64
	if err := st.lastRev.QueryRowContext(ctx, stream).Scan(&last); err != nil {
		return 0, fmt.Errorf("read revision of %s: %w", stream, err)
	}
	if !last.Valid {
		return 0, nil // no event yet
	}
	return uint64(last.Int64) + 1, nil
}

// batchState is what one transaction has appended so far.
type batchState struct {
	leaves    [][]byte
	canonical [][]byte          // the events' canonical bytes, in position order
	next      map[string]uint64 // stream → next revision, for streams appended to
}

// appendTx writes one append request inside the batch's transaction. It
// returns the request's outcome, or an error that must fail the batch.
// A retried append is recognised only where a fresh one would fail (wrong
// revision, or its first id already stored), so the common path costs one
// insert per event.
func (s *Store) appendTx(ctx context.Context, st writeStmts, r *request, b *batchState) (result, error) {
	next, err := s.nextRevision(ctx, st, b, r.stream)
	if err != nil {
		return result{}, err
	}
	if !r.expected.Allows(next-1, next > 0) {
		if recs, found, err := s.retried(ctx, st, r); err != nil || found {
			return recs, err
		}
		return result{err: ledger.WrongRevision(r.stream, r.expected, next-1, next > 0)}, nil
	}
	if next+uint64(len(r.events)) > maxSafeInteger {
		return result{err: fmt.Errorf("append %s: revisions beyond 2^53 cannot be represented in canonical JSON: %w", r.stream, ledger.ErrTooLarge)}, nil
	}
	pos := s.rng.End() + uint64(len(b.leaves))
	recs := make([]ledger.Record, len(r.events))
	for i, p := range r.events {
		rec := p.Finish(next+uint64(i), pos+uint64(i))
		leaf := ledger.LeafHash(rec.Canonical)
		if _, err := st.insertEvent.ExecContext(ctx, int64(rec.Position), rec.Event.ID, r.stream, int64(rec.Event.Revision), leaf, rec.Canonical); err != nil {
			if !strings.Contains(err.Error(), "UNIQUE constraint failed: events.id") {
				return result{}, fmt.Errorf("append %s: %w", r.stream, err)
			}
			if i == 0 {
				// Nothing of this request is written yet (a failed
				// statement leaves the transaction as it was).
				if recs, found, err := s.retried(ctx, st, r); err != nil || found {
					return recs, err
				}
			}
			return result{}, fmt.Errorf("append %s: event %s: %w", r.stream, rec.Event.ID, ledger.ErrDuplicateEvent)
		}
		recs[i] = rec
		b.leaves = append(b.leaves, leaf)
		b.canonical = append(b.canonical, rec.Canonical)
	}
	b.next[r.stream] = next + uint64(len(r.events))
	return result{records: recs}, nil
}

// maxSafeInteger bounds positions and revisions: RFC 8785 writes numbers as
// IEEE 754 doubles, exact up to 2^53.
const maxSafeInteger = 1 << 53

// retried reports whether r's events were all appended before, to the same
// stream in the same order, and returns the stored records if so.
func (s *Store) retried(ctx context.Context, st writeStmts, r *request) (result, bool, error) {
	var stream string
	var first int64
	err := st.findID.QueryRowContext(ctx, r.events[0].Event.ID).Scan(&stream, &first)
	if errors.Is(err, sql.ErrNoRows) {
		return result{}, false, nil
	}
	if err != nil {
		return result{}, false, fmt.Errorf("look up event id: %w", err)
	}
	dup := result{err: fmt.Errorf("append %s: event %s: %w", r.stream, r.events[0].Event.ID, ledger.ErrDuplicateEvent)}
	if stream != r.stream {
		return dup, true, nil
	}
	for i, p := range r.events[1:] {
		var st2 string
		var pos int64
		if err := st.findID.QueryRowContext(ctx, p.Event.ID).Scan(&st2, &pos); err != nil || st2 != r.stream || pos != first+int64(i)+1 {
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return result{}, false, fmt.Errorf("look up event id: %w", err)
			}
			return dup, true, nil
		}
	}
	rows, err := st.readRange.QueryContext(ctx, first, len(r.events))
	if err != nil {
		return result{}, false, fmt.Errorf("read log: %w", err)
	}
	recs, err := ledger.ScanRecords(rows)
	if err != nil {
		return result{}, false, fmt.Errorf("read log: %w", err)
	}
	return result{records: recs}, true, nil
}

func addCheckpointTx(ctx context.Context, st writeStmts, r *request, now time.Time) (reqErr, err error) {
	var max int64
	if err := st.maxCheckpoint.QueryRowContext(ctx).Scan(&max); err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	if r.cp.Size <= uint64(max) {
		return fmt.Errorf("checkpoint of size %d is not larger than the stored %d", r.cp.Size, max), nil
	}
	if _, err := st.insertCheckpoint.ExecContext(ctx, int64(r.cp.Size), r.cp.Root, r.note, now.UTC().Format(time.RFC3339Nano)); err != nil {
		return nil, fmt.Errorf("store checkpoint: %w", err)
	}
	return nil, nil
}
