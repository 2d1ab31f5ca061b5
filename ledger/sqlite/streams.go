package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"
)

// The stream index (table streams) finds a stream's events. It is kept
// apart from the events table and written in bulk, not by every commit:
// each commit's appends go to as many streams as there are sessions, and an
// index keyed by stream takes each of them on a different page, so an index
// maintained by the commit added a WAL frame (and its share of the fsync)
// per stream touched, about half of a commit's frames under 64 concurrent
// sessions. Written every streamsFlushEvents events, one page takes many
// streams' appends at once.
//
// Every event below the watermark (meta 'streams_indexed') has its row,
// and no other event has: a flush inserts the rows and moves the watermark
// in one transaction. The events above it, at most streamsFlushEvents plus
// a second's worth, are the unindexed tail, which readers scan; it is
// flushed after a crash when the ledger next opens for writing. The rows
// repeat the events' stream and revision columns, which the envelope
// signs, so verification checks them against the events (leafPage).
//
// Variables only for tests (export_test.go); nothing else sets them.
var (
	streamsFlushEvents uint64 = 1024
	streamsFlushAfter         = time.Second
	// streamsIndexChunk bounds the events one transaction indexes: the
	// writer keeps a transaction's statement journal (the original of
	// every page it changes) in memory, and a rebuild, or a tail that
	// grew while flushes failed, may cover the whole log.
	streamsIndexChunk uint64 = 100_000
)

const indexedKey = "streams_indexed"

// indexedWatermark reads the watermark: 0 when no flush has run.
const indexedWatermark = `COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'streams_indexed'), 0)`

// readStreamSQL reads a stream from revision ?2 in one snapshot: the
// indexed events, then the tail's. Stream revisions grow with positions.
// Both read only below position ?3 (readBound).
const readStreamSQL = `
SELECT e.position, e.canonical FROM streams s JOIN events e ON e.position = s.position
 WHERE s.stream = ?1 AND s.revision >= ?2 AND s.position < ` + indexedWatermark + ` AND s.position < ?3
UNION ALL
SELECT position, canonical FROM events
 WHERE position >= ` + indexedWatermark + ` AND position < ?3 AND stream = ?1 AND revision >= ?2
ORDER BY 1`

// legacyReadStreamSQL serves a read-only open of a ledger written before
// the stream index: its events table has a (stream, revision) index.
const legacyReadStreamSQL = `SELECT position, canonical FROM events WHERE stream = ?1 AND revision >= ?2 AND position < ?3 ORDER BY revision`

// lastIndexedSQL is a stream's last indexed revision. The writer asks it
// only for streams with no event in the tail (streamTail.next).
const lastIndexedSQL = `SELECT MAX(revision) FROM streams WHERE stream = ?`

// streamTail is the writer's account of the unindexed tail.
type streamTail struct {
	indexed uint64 // the watermark
	// next holds every stream with an event in the tail, and every
	// stream whose latest batch is not yet published (the published
	// heads lag behind it).
	next   map[string]streamNext
	since  time.Time // when the oldest unindexed event committed; zero when none is
	failed time.Time // when a flush last failed
}

// streamNext is a stream's next revision, and the log's size after the
// batch that appended to it last.
type streamNext struct{ revision, end uint64 }

// committed records the appends of a commit that left the log at size end
// (stream → next revision).
func (t *streamTail) committed(next map[string]uint64, end uint64, now time.Time) {
	if len(next) == 0 {
		return
	}
	if t.since.IsZero() {
		t.since = now
	}
	for stream, rev := range next {
		t.next[stream] = streamNext{rev, end}
	}
}

// flushed moves the watermark to end once the tail's rows are in the
// index, the log's size being published as far as published. A stream
// whose latest batch is published is dropped from next: the published
// heads, or failing them the index, give its next revision. One whose
// latest batch is still on its way to the disk is kept, as the heads do
// not know that batch yet.
func (t *streamTail) flushed(end, published uint64) {
	t.indexed, t.since = end, time.Time{}
	for stream, n := range t.next {
		if n.end <= published {
			delete(t.next, stream)
		}
	}
}

// due reports whether the tail, which ends before position end, should be
// flushed now.
func (t *streamTail) due(end uint64, now time.Time) bool {
	if now.Sub(t.failed) < streamsFlushAfter {
		return false
	}
	return end-t.indexed >= streamsFlushEvents || (end > t.indexed && now.Sub(t.since) >= streamsFlushAfter)
}

// flushStreamsLogged flushes the tail; a failure is logged and the flush
// tried again a while later (readers scan the longer tail meanwhile).
func (s *Store) flushStreamsLogged(ctx context.Context) {
	if s.syncErr() != nil {
		return // stopped: nothing more is written
	}
	if err := s.flushStreams(ctx); err != nil {
		s.logger.Error("ledger: stream index not updated; reads by stream scan the unindexed events until it is", "err", err)
		s.tailIdx.failed = time.Now()
		s.tailIdx.since = s.tailIdx.failed
	}
}

// flushStreams indexes every committed event above the watermark, in
// transactions of its own between batches (the writer's goroutine only).
// A failure leaves the rest of the tail to the next flush; readers scan it
// meanwhile.
func (s *Store) flushStreams(ctx context.Context) error {
	end := s.rng.End()
	if end == s.tailIdx.indexed {
		return nil
	}
	// The writer's connection sees every committed batch, durable or not,
	// so the flush need not wait for the syncer: it runs while the fsync
	// of the batch before it does. Its own commit is made durable with the
	// next batch's fsync; it cannot outlive a batch the disk lost, as the
	// WAL keeps only a prefix of its frames after a crash.
	reached, err := indexStreams(ctx, s.wdb, s.tailIdx.indexed, end)
	if err != nil {
		s.tailIdx.indexed = reached
		return err
	}
	published, _, _ := s.Head(ctx)
	s.tailIdx.flushed(end, published)
	return nil
}

// indexStreams inserts the rows of events [from, end) and moves the
// watermark to end, in transactions of at most streamsIndexChunk events,
// each leaving an index the next flush or open takes up from. It returns
// the watermark reached. It runs at least once, so a rebuild (from = end =
// 0) resets the watermark.
func indexStreams(ctx context.Context, db *sql.DB, from, end uint64) (uint64, error) {
	for {
		to := min(from+streamsIndexChunk, end)
		if err := indexStreamsTx(ctx, db, from, to); err != nil {
			return from, err
		}
		if from = to; from == end {
			return end, nil
		}
	}
}

// indexStreamsTx inserts the rows of events [from, end) and moves the
// watermark to end, in one transaction.
func indexStreamsTx(ctx context.Context, db *sql.DB, from, end uint64) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("index streams: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO streams (position, stream, revision)
		SELECT position, stream, revision FROM events WHERE position >= ? AND position < ? ORDER BY position`, int64(from), int64(end)); err != nil {
		return fmt.Errorf("index streams %d–%d: %w", from, end, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
		indexedKey, strconv.FormatUint(end, 10)); err != nil {
		return fmt.Errorf("index streams: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("index streams: %w", err)
	}
	return nil
}

// recoverStreams, at a writable open, indexes the tail a crash left (or a
// whole ledger written before the stream index) before any append. The
// writer takes stream revisions from the index, so an index that is not
// what the writer leaves (edited, or the log cut back under it) is rebuilt
// from the events, never trusted.
func (s *Store) recoverStreams(ctx context.Context) error {
	var rows, outside, w int64
	if err := s.wdb.QueryRowContext(ctx, `SELECT `+indexShapeColumns).Scan(&rows, &outside, &w); err != nil {
		return fmt.Errorf("read stream index: %w", err)
	}
	indexed := uint64(max(w, 0))
	problem := indexShape(rows, outside, w, int64(s.size))
	if problem != "" {
		s.logger.Warn("ledger: rebuilding the stream index from the events", "problem", problem)
		if _, err := s.wdb.ExecContext(ctx, `DELETE FROM streams`); err != nil {
			return fmt.Errorf("rebuild stream index: %w", err)
		}
		indexed = 0
	}
	if indexed < s.size || problem != "" { // a rebuild also resets the watermark
		if _, err := indexStreams(ctx, s.wdb, indexed, s.size); err != nil {
			return err
		}
	}
	s.tailIdx = streamTail{indexed: s.size, next: map[string]streamNext{}}
	return nil
}

// indexShapeColumns are, read in one snapshot, the index's rows, those
// outside [0, watermark), and the watermark.
const indexShapeColumns = `(SELECT COUNT(*) FROM streams),
	(SELECT COUNT(*) FROM streams WHERE position < 0 OR position >= ` + indexedWatermark + `), ` + indexedWatermark

// indexShape says what is wrong with an index of rows rows, outside of
// them outside [0, w), over a log of size events; "" if nothing. With every
// row inside [0, w) at distinct positions and w of them, there is one row
// per covered event (whether each agrees with its event is leafPage's
// check).
func indexShape(rows, outside, w, size int64) string {
	switch {
	case w < 0 || w > size:
		return fmt.Sprintf("its watermark %d is outside the log's %d events", w, size)
	case outside > 0:
		return fmt.Sprintf("%d of its rows are for positions it does not cover", outside)
	case rows != w:
		return fmt.Sprintf("it holds %d rows for the %d events it covers", rows, w)
	}
	return ""
}
