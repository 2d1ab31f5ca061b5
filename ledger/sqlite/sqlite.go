// Package sqlite is Docket's embedded ledger store: events, their Merkle tree
// hashes and the signed checkpoints in one SQLite file (modernc.org/sqlite,
// WAL).
//
// One writer goroutine owns the write connection and commits appends in
// groups: every append waiting when a commit starts joins one transaction,
// and each returns only after that transaction is durable. The fsync that
// makes it durable is the syncer's, overlapping the next commit (see
// syncer in writer.go). Expensive work
// (validation, RFC 8785 canonicalization) happens in the caller's goroutine
// before the append is queued.
//
// Tree storage: each event row carries its leaf hash; the tree table keeps
// the perfect-subtree hashes of level 4 and above. Nodes of levels 1–3 are
// recomputed from at most 8 leaves when a proof needs them, which keeps the
// per-event write cost to about one row.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/note"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/evidence-parity/docket/anchors"
	"github.com/evidence-parity/docket/ledger"
)

// Options configure a Store.
type Options struct {
	// Signer signs checkpoints. Nil means no checkpoints are signed.
	Signer anchors.Signer
	// Limits bound what Append accepts (zero fields take ledger.DefaultLimits).
	Limits ledger.Limits
	// Now is the clock stamped on events without a time (default time.Now).
	Now func() time.Time
	// CheckpointInterval is the least time between two checkpoints (default 1s).
	CheckpointInterval time.Duration
	// Logger receives background failures (default slog.Default()).
	Logger *slog.Logger
	// ReadOnly opens an existing ledger for reading and verification only.
	ReadOnly bool
	// WitnessPath, if set, is a file outside the database where the last
	// signed checkpoint is kept (see ledger.Witness). Keep it beside the key.
	WitnessPath string
	// MaxWALSize bounds the write-ahead log under sustained appends
	// (zero or less: DefaultMaxWALSize; see boundWAL).
	MaxWALSize int64
}

// DefaultMaxWALSize is the size the write-ahead log may reach before the
// writer restarts it: at saturation (~50 MB/s on the development machine)
// a few seconds of appends.
const DefaultMaxWALSize = 256 << 20

// storedLevel is the lowest tree level kept in the tree table.
const storedLevel = 4

// maxCachedStreams bounds the cache of stream heads.
const maxCachedStreams = 100_000

// maxBatchEvents bounds one group commit.
const maxBatchEvents = 20_000

// Store is the embedded SQLite ledger store.
type Store struct {
	path     string
	ledgerID string
	limits   ledger.Limits
	now      func() time.Time
	logger   *slog.Logger

	wdb  *sql.DB // the one write connection; used only by the writer goroutine
	rdb  *sql.DB // readers
	ckdb *sql.DB // WAL checkpoints, off the writer's path (see walCheckpoints)

	ckMu   sync.Mutex // one WAL checkpoint at a time (walCheckpoints, boundWAL)
	maxWAL int64
	// boundWAL's, after readers stayed: the WAL size or the time to try
	// again at (the writer's goroutine only).
	walRetryAt    int64
	walRetryAfter time.Time
	walBacklog    atomic.Int64 // frames the last passive checkpoint left uncopied
	walResets     atomic.Uint64

	reqs      chan *request
	writerErr chan struct{} // closed when the writer goroutine exits

	// The syncer (writer.go) makes committed batches durable and
	// publishes them; walFile and walInfo are its own.
	syncq    chan *committed
	syncDone chan struct{}
	failed   atomic.Pointer[error] // a failed fsync: no more appends
	walPath  string
	walFile  *os.File
	walInfo  os.FileInfo
	// beforeSync, set only by tests (export_test.go), runs before each
	// fsync of the WAL.
	beforeSync func()
	walGrew    chan struct{} // wakes the WAL checkpointer after a commit
	walDone    chan struct{} // closed when the WAL checkpointer exits

	sendMu     sync.RWMutex // held for reading while queueing; for writing by Close
	closed     bool         // no more appends
	reqsClosed bool         // reqs is closed: no more requests of any kind

	mu     sync.Mutex // guards head, notify and tail
	size   uint64
	root   []byte
	notify chan struct{} // closed and replaced after every commit
	tail   recentTail    // the last events committed, for subscribers

	grew         chan struct{} // wakes the checkpointer
	checkpointer *ledger.Checkpointer
	noteSigner   *anchors.NoteSigner
	stopCP       context.CancelFunc
	cpDone       chan struct{}

	commits, appends atomic.Uint64
	syncs, syncNanos atomic.Uint64 // the syncer's fsyncs of the WAL and their time
	lock             *os.File      // held while open for writing

	r       readStmts      // prepared once: parsing SQL cost more than reading
	rng     *compact.Range // owned by the writer goroutine
	w       writeStmts
	tailIdx streamTail // the stream index's unindexed tail; the writer's
	// hasStreams: the ledger has the stream index (one written before it,
	// opened read-only, has not).
	hasStreams bool

	// heads caches stream → next revision for a writable store, as
	// published. Only this process writes the ledger (the lock file), so a
	// cached head is authoritative for readers: the syncer publishes a
	// batch once durable and before anyone learns of it, and ReadStream
	// answers a read from the head on without a query. headsGen counts publications, so a reader
	// adds a head it read from the database only if no commit was
	// published meanwhile.
	headsMu  sync.RWMutex
	heads    map[string]uint64
	headsGen uint64
}

var (
	_ ledger.Store         = (*Store)(nil)
	_ ledger.CheckpointLog = (*Store)(nil)
	_ ledger.VerifiableLog = (*Store)(nil)
	_ ledger.Tree          = (*Store)(nil)
)

const schema = `
CREATE TABLE IF NOT EXISTS meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
	position  INTEGER PRIMARY KEY,
	id        TEXT NOT NULL UNIQUE,
	stream    TEXT NOT NULL,
	revision  INTEGER NOT NULL,
	leaf      BLOB NOT NULL,
	canonical BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS streams (
	position INTEGER PRIMARY KEY,
	stream   TEXT NOT NULL,
	revision INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS streams_revision ON streams (stream, revision);
CREATE TABLE IF NOT EXISTS tree (
	level INTEGER NOT NULL,
	idx   INTEGER NOT NULL,
	hash  BLOB NOT NULL,
	PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
	size      INTEGER PRIMARY KEY,
	root      BLOB NOT NULL,
	note      BLOB NOT NULL,
	signed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS keys (
	fingerprint TEXT PRIMARY KEY,
	spki        BLOB NOT NULL,
	added_at    TEXT NOT NULL
) WITHOUT ROWID;
`

// ErrNoLedger is returned when a read-only open finds no ledger.
var ErrNoLedger = errors.New("no ledger")

// Open opens (creating unless opts.ReadOnly) the ledger in the SQLite file at
// path. With a Signer it signs a checkpoint soon after opening if the tree
// outgrew the latest one (as after a crash), then after every growth.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	s := &Store{
		path:   path,
		limits: opts.Limits.WithDefaults(),
		now:    opts.Now,
		logger: opts.Logger,
		notify: make(chan struct{}),
		heads:  make(map[string]uint64),
		grew:   make(chan struct{}, 1),
		maxWAL: DefaultMaxWALSize,
	}
	if opts.MaxWALSize > 0 {
		s.maxWAL = opts.MaxWALSize
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if opts.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("%w at %s", ErrNoLedger, path)
		}
	} else {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("open ledger: %w", err)
		}
		// One writing process per ledger: the writer keeps the tree's
		// frontier and the stream revisions in memory.
		lock, err := lockFile(path + ".lock")
		if err != nil {
			return nil, err
		}
		s.lock = lock
	}
	// journal_size_limit: a WAL restarted after a burst is cut back to
	// the bound on its next commit, not kept at the burst's size.
	dsn := fmt.Sprintf("file:%s?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=journal_size_limit(%d)", path, s.maxWAL)
	var err error
	if s.rdb, err = sql.Open("sqlite", dsn+"&_pragma=busy_timeout(10000)&_pragma=query_only(1)"); err != nil {
		s.closeDBs()
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	s.rdb.SetMaxOpenConns(4)
	if !opts.ReadOnly {
		// The writer never checkpoints the WAL itself (that would stall
		// every waiting append behind copying pages into the database and
		// syncing it); walCheckpoints does, on its own connection. Its
		// commits do not fsync (synchronous=NORMAL in WAL mode): the
		// syncer does, overlapping the next commit, before any of them is
		// answered or published. NORMAL, not OFF: SQLite still syncs a
		// restarted WAL's new header before writing frames over the old
		// ones, without which a power loss could replay stale frames.
		// temp_store=MEMORY keeps the statement journal of the stream
		// index's bulk insert (the original of every index page it
		// changes: a few hundred for a flush of 1,024 events, at most the
		// index's pages touched by streamsIndexChunk events) in memory:
		// on disk it was a temporary file written page by page, half the
		// flush's time.
		if s.wdb, err = sql.Open("sqlite", dsn+"&_pragma=busy_timeout(10000)&_txlock=immediate&_pragma=wal_autocheckpoint(0)&_pragma=synchronous(NORMAL)&_pragma=temp_store(MEMORY)"); err != nil {
			s.closeDBs()
			return nil, fmt.Errorf("open ledger: %w", err)
		}
		s.wdb.SetMaxOpenConns(1)
		// A short busy timeout: boundWAL's restart, run between the
		// writer's batches, waits at most this long for readers.
		if s.ckdb, err = sql.Open("sqlite", dsn+"&_pragma=busy_timeout(250)&_pragma=wal_autocheckpoint(0)"); err != nil {
			s.closeDBs()
			return nil, fmt.Errorf("open ledger: %w", err)
		}
		s.ckdb.SetMaxOpenConns(1)
	}
	if err := s.init(ctx, opts); err != nil {
		s.closeDBs()
		return nil, fmt.Errorf("open ledger %s: %w", path, err)
	}
	if !opts.ReadOnly {
		if err := s.recoverStreams(ctx); err != nil {
			s.closeDBs()
			return nil, fmt.Errorf("open ledger %s: %w", path, err)
		}
		// What opening wrote (schema, ledger id, key, stream index), and
		// a killed process's last commits, are durable before the first
		// append, and so is the WAL file's name in its folder.
		s.walPath = path + "-wal"
		if err := s.syncWAL(); err != nil {
			s.closeDBs()
			return nil, fmt.Errorf("open ledger %s: sync: %w", path, err)
		}
		if err := syncDir(filepath.Dir(path)); err != nil {
			s.closeDBs()
			return nil, fmt.Errorf("open ledger %s: sync: %w", path, err)
		}
	}
	if err := s.prepareReads(ctx); err != nil {
		s.closeDBs()
		return nil, fmt.Errorf("open ledger %s: %w", path, err)
	}
	if !opts.ReadOnly {
		s.reqs = make(chan *request, 1024)
		s.writerErr = make(chan struct{})
		s.syncq, s.syncDone = make(chan *committed), make(chan struct{})
		s.walGrew, s.walDone = make(chan struct{}, 1), make(chan struct{})
		go s.writer(context.WithoutCancel(ctx))
		go s.walCheckpoints(context.WithoutCancel(ctx))
	}
	if s.noteSigner != nil {
		cfg := ledger.CheckpointerConfig{Interval: opts.CheckpointInterval, Logger: s.logger}
		if opts.WitnessPath != "" {
			cfg.Witness = ledger.FileWitness(opts.WitnessPath)
		}
		s.checkpointer = ledger.NewCheckpointer(s, s.noteSigner, cfg)
		cpCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		s.stopCP, s.cpDone = cancel, make(chan struct{})
		go func() {
			defer close(s.cpDone)
			s.checkpointer.Run(cpCtx, s.grew)
		}()
	}
	return s, nil
}

func (s *Store) init(ctx context.Context, opts Options) error {
	if !opts.ReadOnly {
		if _, err := s.wdb.ExecContext(ctx, schema); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		if _, err := s.wdb.ExecContext(ctx, `INSERT OR IGNORE INTO meta (key, value) VALUES ('ledger_id', ?)`, id.String()); err != nil {
			return fmt.Errorf("create ledger id: %w", err)
		}
	}
	if err := s.rdb.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'ledger_id'`).Scan(&s.ledgerID); err != nil {
		if errors.Is(err, sql.ErrNoRows) || isNoSuchTable(err) {
			return ErrNoLedger
		}
		return fmt.Errorf("read ledger id: %w", err)
	}
	var size sql.NullInt64
	if err := s.rdb.QueryRowContext(ctx, `SELECT MAX(position) + 1 FROM events`).Scan(&size); err != nil {
		return fmt.Errorf("read log size: %w", err)
	}
	s.size = uint64(size.Int64)
	hashes, err := s.NodeHashes(ctx, compact.RangeNodes(0, s.size, nil))
	if err != nil {
		return fmt.Errorf("load tree: %w", err)
	}
	if s.rng, err = ledger.RangeFactory.NewRange(0, s.size, hashes); err != nil {
		return fmt.Errorf("load tree: %w", err)
	}
	if s.root, err = s.rng.GetRootHash(nil); err != nil {
		return fmt.Errorf("load tree: %w", err)
	}
	if opts.Signer != nil && !opts.ReadOnly {
		if s.noteSigner, err = anchors.NewNoteSigner(s.Origin(), opts.Signer); err != nil {
			return fmt.Errorf("checkpoint signer: %w", err)
		}
		fp, err := anchors.Fingerprint(opts.Signer.Public())
		if err != nil {
			return err
		}
		if _, err := s.wdb.ExecContext(ctx, `INSERT OR IGNORE INTO keys (fingerprint, spki, added_at) VALUES (?, ?, ?)`,
			fp, s.noteSigner.SPKI(), s.now().UTC().Format(time.RFC3339Nano)); err != nil {
			return fmt.Errorf("record signing key: %w", err)
		}
	}
	return nil
}

// LedgerID returns the ledger's identifier, fixed when the file was created.
func (s *Store) LedgerID() string { return s.ledgerID }

// Origin returns the checkpoint origin line, "docket/<ledger id>".
func (s *Store) Origin() string { return "docket/" + s.ledgerID }

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// Checkpoint signs a checkpoint now if the tree grew since the latest one,
// without waiting for the interval. It returns the latest checkpoint.
func (s *Store) Checkpoint(ctx context.Context) (ledger.Checkpoint, error) {
	if s.checkpointer == nil {
		return ledger.Checkpoint{}, errors.New("checkpoint: this store has no signer")
	}
	cp, _, err := s.checkpointer.Sign(ctx)
	return cp, err
}

// CheckpointErr returns the outcome of the latest signing attempt.
func (s *Store) CheckpointErr() error {
	if s.checkpointer == nil {
		return nil
	}
	return s.checkpointer.Err()
}

// Close stops accepting appends, lets queued ones commit, signs a final
// checkpoint so the log at rest is fully covered, and closes the file.
func (s *Store) Close() error {
	s.sendMu.Lock()
	if s.closed {
		s.sendMu.Unlock()
		return nil // closed already (or crashed, in tests)
	}
	s.closed = true // no more appends; the writer still runs
	s.sendMu.Unlock()
	var errs []error
	if s.stopCP != nil {
		s.stopCP()
		<-s.cpDone
	}
	if s.writerErr != nil {
		ctx := context.Background()
		// Let queued appends commit, then cover them with a checkpoint.
		if err := s.submit(ctx, &request{kind: kindBarrier}); err != nil {
			errs = append(errs, err)
		}
		if s.checkpointer != nil {
			if _, _, err := s.checkpointer.Sign(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		s.sendMu.Lock()
		s.reqsClosed = true
		close(s.reqs)
		s.sendMu.Unlock()
		<-s.writerErr
		<-s.walDone // the writer's exit closed walGrew
	}
	s.mu.Lock()
	close(s.notify) // wake subscribers so they see the store closed
	s.notify = nil
	s.mu.Unlock()
	errs = append(errs, s.closeDBs())
	return errors.Join(errs...)
}

// readStmts are the hot read queries, prepared on the reader pool.
type readStmts struct {
	readStream, page *sql.Stmt
}

func (s *Store) prepareReads(ctx context.Context) error {
	var err error
	if err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'streams'`).Scan(&s.hasStreams); err != nil {
		return err
	}
	q := readStreamSQL
	if !s.hasStreams {
		q = legacyReadStreamSQL // only a read-only open finds none
	}
	if s.r.readStream, err = s.rdb.PrepareContext(ctx, q); err != nil {
		return err
	}
	s.r.page, err = s.rdb.PrepareContext(ctx, `SELECT position, canonical FROM events WHERE position >= ? AND position < ? ORDER BY position LIMIT ?`)
	return err
}

func (s *Store) closeDBs() error {
	// Reads after Close fail as reads of the closed database do, rather
	// than answering from memory.
	s.mu.Lock()
	s.tail = recentTail{}
	s.mu.Unlock()
	var errs []error
	for _, st := range []*sql.Stmt{s.r.readStream, s.r.page} {
		if st != nil {
			st.Close()
		}
	}
	if s.walFile != nil { // opened, but the writer never started
		s.walFile.Close()
	}
	if s.lock != nil {
		errs = append(errs, s.lock.Close()) // releases the lock
	}
	if s.wdb != nil {
		errs = append(errs, s.wdb.Close())
	}
	if s.ckdb != nil {
		errs = append(errs, s.ckdb.Close())
	}
	if s.rdb != nil {
		errs = append(errs, s.rdb.Close())
	}
	return errors.Join(errs...)
}

// Head returns the size and root of the tree over every durable event.
func (s *Store) Head(context.Context) (uint64, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size, s.root, nil
}

// readBound is the position reads stop before. A writable store's readers
// see only published events: the database holds committed batches a
// moment (one fsync) before they are durable (see syncer). A read-only
// store, in another process, reads whatever the database holds, so it may
// see the writer's last batch before its fsync ends; if the machine lost
// power in that moment, the batch would be gone from the ledger though
// that reader saw it. The checkpointer signs only durable sizes, so no
// signed checkpoint or proof ever covers such an event.
func (s *Store) readBound() int64 {
	if s.wdb == nil {
		return math.MaxInt64
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(s.size)
}

// wait returns a channel closed after the next commit, or nil once closed.
func (s *Store) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.notify
}

func isNoSuchTable(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no such table")
}

// ReadStream returns a stream's records from revision from on. A writable
// store answers a read past a stream's known head without a query: loading
// a cached stream to check nothing was added is the common read.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64) ([]ledger.Record, error) {
	writable := s.wdb != nil
	var gen uint64
	if writable {
		s.headsMu.RLock()
		next, known := s.heads[stream]
		gen = s.headsGen
		s.headsMu.RUnlock()
		if known && from >= next {
			return nil, nil
		}
	}
	rows, err := s.r.readStream.QueryContext(ctx, stream, int64(from), s.readBound())
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	recs, err := ledger.ScanRecords(rows)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	if writable && len(recs) > 0 {
		// The query began after gen was read, so it saw every commit
		// published by then; if none was published since, the last record
		// is the stream's head. (Empty streams are not cached: any
		// presented token names one.)
		next := recs[len(recs)-1].Event.Revision + 1
		s.headsMu.Lock()
		if _, known := s.heads[stream]; !known && s.headsGen == gen && len(s.heads) < maxCachedStreams {
			s.heads[stream] = next
		}
		s.headsMu.Unlock()
	}
	return recs, nil
}

const pageSize = 1024

// recentTail holds the canonical bytes of the last events the writer
// committed, positions start to start+len(canonical)-1 with no gap, so
// subscribers following the log (the read models, live readers) take new
// events from memory instead of querying them back. What it holds is what
// the database holds: the bytes the writer inserted, published only after
// their transaction committed. Records are shared, never written to.
type recentTail struct {
	start     uint64
	canonical [][]byte
	bytes     int // total length of canonical's events
}

// The tail keeps at least the last recentTailEvents events and
// recentTailBytes bytes' worth, and at most twice as many (it is trimmed in
// one go when it reaches either bound; events may be up to
// ledger.Limits.MaxData each). A subscriber further behind reads pages from
// the database.
const (
	recentTailEvents = 4096
	recentTailBytes  = 4 << 20
)

// add records a committed batch's events, which begin at position first.
// A batch that does not follow the tail starts it over.
func (t *recentTail) add(first uint64, canonical [][]byte) {
	if len(canonical) == 0 {
		return
	}
	if first != t.start+uint64(len(t.canonical)) {
		*t = recentTail{start: first}
	}
	t.canonical = append(t.canonical, canonical...)
	for _, c := range canonical {
		t.bytes += len(c)
	}
	if len(t.canonical) < 2*recentTailEvents && t.bytes < 2*recentTailBytes {
		return
	}
	// Drop the oldest down to the bounds, copying the rest so the dropped
	// bytes can be collected.
	drop := 0
	for len(t.canonical)-drop > recentTailEvents || t.bytes > recentTailBytes {
		t.bytes -= len(t.canonical[drop])
		drop++
	}
	t.canonical = append([][]byte(nil), t.canonical[drop:]...)
	t.start += uint64(drop)
}

// from returns up to n events from position from on, and whether the tail
// answers for from: it holds from, or from is the position after its end.
func (t *recentTail) from(from uint64, n int) ([][]byte, bool) {
	end := t.start + uint64(len(t.canonical))
	if len(t.canonical) == 0 || from < t.start || from > end {
		return nil, false
	}
	got := t.canonical[from-t.start : from-t.start+uint64(min(uint64(n), end-from))]
	return got, true
}

// decodeTail decodes events from the tail as ScanRecords decodes rows.
func decodeTail(from uint64, canonical [][]byte) ([]ledger.Record, error) {
	if len(canonical) == 0 {
		return nil, nil
	}
	out := make([]ledger.Record, len(canonical))
	for i, c := range canonical {
		e, err := ledger.Decode(c)
		if err != nil {
			return nil, fmt.Errorf("read log: position %d: %w", from+uint64(i), err)
		}
		out[i] = ledger.Record{Position: from + uint64(i), Event: e, Canonical: c}
	}
	return out, nil
}

// ReadAll yields records in position order from position from to the end
// of the log as it stands while reading.
func (s *Store) ReadAll(ctx context.Context, from uint64) iter.Seq2[ledger.Record, error] {
	return ledger.ReadPages(ctx, from, pageSize, s.page)
}

// Subscribe yields every record from position from on: those stored, then
// new ones as they commit. Each page is read by position after noting the
// commit signal, so no record is skipped or repeated across the switch.
func (s *Store) Subscribe(ctx context.Context, from uint64) iter.Seq2[ledger.Record, error] {
	return ledger.SubscribePages(ctx, from, pageSize, s.page, func() (<-chan struct{}, error) {
		if w := s.wait(); w != nil {
			return w, nil
		}
		return nil, ledger.ErrClosed
	})
}

func (s *Store) page(ctx context.Context, from uint64) ([]ledger.Record, error) {
	s.mu.Lock()
	canonical, ok := s.tail.from(from, pageSize)
	s.mu.Unlock()
	if ok {
		return decodeTail(from, canonical)
	}
	rows, err := s.r.page.QueryContext(ctx, int64(from), s.readBound(), pageSize)
	if err != nil {
		return nil, fmt.Errorf("read log: %w", err)
	}
	recs, err := ledger.ScanRecords(rows)
	if err != nil {
		return nil, fmt.Errorf("read log: %w", err)
	}
	return recs, nil
}

// Leaves yields every stored event with the leaf hash stored for it, as
// stored, for verification. The next page is read while the consumer works
// on the current one.
func (s *Store) Leaves(ctx context.Context) iter.Seq2[ledger.Leaf, error] {
	return func(yield func(ledger.Leaf, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		type page struct {
			leaves []ledger.Leaf
			err    error
		}
		pages := make(chan page, 2)
		go func() {
			defer close(pages)
			from := int64(math.MinInt64) // rows below 0 were not written by Docket
			// A stream index that disagrees with the log is reported
			// after every leaf: a change to the log itself (which moves
			// events under their index rows) is the failure to name.
			var badIndex error
			for {
				leaves, bad, err := s.leafPage(ctx, from)
				if badIndex == nil && bad != nil {
					badIndex = bad
				}
				last := err != nil || len(leaves) < leafPageSize
				if last && err == nil {
					if badIndex == nil && s.hasStreams {
						badIndex = s.checkStreamCount(ctx)
					}
					err = badIndex
				}
				select {
				case pages <- page{leaves, err}:
				case <-ctx.Done():
					return
				}
				if last {
					return
				}
				from = int64(leaves[len(leaves)-1].Position) + 1
			}
		}()
		for p := range pages {
			// A page that fails does so after its last good leaf.
			for _, l := range p.leaves {
				if !yield(l, nil) {
					return
				}
			}
			if p.err != nil {
				yield(ledger.Leaf{}, p.err)
				return
			}
		}
	}
}

const leafPageSize = 8192

// leafPage reads up to leafPageSize leaves from position from on. bad is
// the page's first stream index row that disagrees with its event.
func (s *Store) leafPage(ctx context.Context, from int64) (page []ledger.Leaf, bad *ledger.Failure, err error) {
	// The stream index rows ride along, read in the same snapshot as the
	// watermark they must agree with. A ledger written before the index
	// has none: no row and watermark 0, so nothing to check.
	q := `SELECT e.position, e.canonical, e.leaf, e.id, e.stream, e.revision, s.position IS NOT NULL, s.stream, s.revision, ` + indexedWatermark + `
		FROM events e LEFT JOIN streams s ON s.position = e.position WHERE e.position >= ? ORDER BY e.position LIMIT ?`
	if !s.hasStreams {
		q = `SELECT position, canonical, leaf, id, stream, revision, FALSE, NULL, NULL, 0 FROM events WHERE position >= ? ORDER BY position LIMIT ?`
	}
	rows, err := s.rdb.QueryContext(ctx, q, from, leafPageSize)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	page = make([]ledger.Leaf, 0, leafPageSize)
	for rows.Next() {
		var l ledger.Leaf
		var pos, rev, indexed int64
		var x ledger.Index
		var hasRow bool
		var rowStream sql.NullString
		var rowRev sql.NullInt64
		if err := rows.Scan(&pos, &l.Canonical, &l.Stored, &x.ID, &x.Stream, &rev, &hasRow, &rowStream, &rowRev, &indexed); err != nil {
			return nil, nil, err
		}
		if pos < 0 || rev < 0 {
			return page, nil, &ledger.Failure{Position: pos, Reason: fmt.Sprintf("a row at position %d, revision %d: Docket never writes negative positions or revisions", pos, rev)}
		}
		if bad == nil {
			switch {
			case pos < indexed && !hasRow:
				bad = &ledger.Failure{Position: pos, Reason: "the stored index: the stream index has no row for this event, which it covers: readers by stream would miss it"}
			case pos >= indexed && hasRow:
				bad = &ledger.Failure{Position: pos, Reason: fmt.Sprintf("the stored index: the stream index has a row for this event above its watermark %d", indexed)}
			case hasRow && (rowStream.String != x.Stream || rowRev.Int64 != rev):
				bad = &ledger.Failure{Position: pos, Reason: fmt.Sprintf(
					"the stored index: the stream index row (stream %s, revision %d) disagrees with the event (stream %s, revision %d): readers by stream would be misled", rowStream.String, rowRev.Int64, x.Stream, rev)}
			}
		}
		l.Position, x.Revision, l.Index = uint64(pos), uint64(rev), &x
		page = append(page, l)
	}
	return page, bad, rows.Err()
}

// checkStreamCount checks, once every event's row was found, that the
// stream index holds no other row and covers no event the log lacks.
func (s *Store) checkStreamCount(ctx context.Context) error {
	var rows, outside, w, size int64
	if err := s.rdb.QueryRowContext(ctx, `SELECT (SELECT COALESCE(MAX(position) + 1, 0) FROM events), `+indexShapeColumns).Scan(&size, &rows, &outside, &w); err != nil {
		return err
	}
	if problem := indexShape(rows, outside, w, size); problem != "" {
		return &ledger.Failure{Position: -1, Reason: "the stored index: the stream index is wrong: " + problem + ": readers by stream would be misled"}
	}
	return nil
}

// Checkpoints returns every stored signed checkpoint note in size order.
func (s *Store) Checkpoints(ctx context.Context) ([][]byte, error) {
	return s.notes(ctx, `SELECT note FROM checkpoints ORDER BY size`)
}

// RecentCheckpoints returns the signed notes of the n largest stored
// checkpoints, largest first: what a reader of the latest few needs,
// without reading every checkpoint ever signed.
func (s *Store) RecentCheckpoints(ctx context.Context, n int) ([][]byte, error) {
	return s.notes(ctx, `SELECT note FROM checkpoints ORDER BY size DESC LIMIT ?`, n)
}

// notes runs a query for checkpoint notes.
func (s *Store) notes(ctx context.Context, query string, args ...any) ([][]byte, error) {
	rows, err := s.rdb.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var note []byte
		if err := rows.Scan(&note); err != nil {
			return nil, fmt.Errorf("read checkpoints: %w", err)
		}
		out = append(out, note)
	}
	return out, rows.Err()
}

// LatestCheckpoint returns the largest stored checkpoint's signed note.
func (s *Store) LatestCheckpoint(ctx context.Context) ([]byte, bool, error) {
	var n []byte
	err := s.rdb.QueryRowContext(ctx, `SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1`).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read latest checkpoint: %w", err)
	}
	return n, true, nil
}

// Keys returns the SPKI DER of every key that has signed checkpoints of this
// ledger, by fingerprint. Verification pins keys by fingerprint and takes
// the key material from here.
func (s *Store) Keys(ctx context.Context) (map[string][]byte, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT fingerprint, spki FROM keys`)
	if err != nil {
		return nil, fmt.Errorf("read keys: %w", err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var fp string
		var spki []byte
		if err := rows.Scan(&fp, &spki); err != nil {
			return nil, fmt.Errorf("read keys: %w", err)
		}
		out[fp] = spki
	}
	return out, rows.Err()
}

// NodeHashes returns the hashes of perfect-subtree nodes: leaves from the
// event rows, levels 1–3 recomputed from leaves, higher levels from the
// tree table.
func (s *Store) NodeHashes(ctx context.Context, ids []compact.NodeID) ([][]byte, error) {
	out := make([][]byte, len(ids))
	for i, id := range ids {
		var err error
		switch {
		case id.Level == 0:
			err = s.rdb.QueryRowContext(ctx, `SELECT leaf FROM events WHERE position = ?`, int64(id.Index)).Scan(&out[i])
		case id.Level < storedLevel:
			out[i], err = s.subtreeFromLeaves(ctx, id)
		default:
			err = s.rdb.QueryRowContext(ctx, `SELECT hash FROM tree WHERE level = ? AND idx = ?`, id.Level, int64(id.Index)).Scan(&out[i])
		}
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("tree node (level %d, index %d) is missing", id.Level, id.Index)
		}
		if err != nil {
			return nil, fmt.Errorf("tree node (level %d, index %d): %w", id.Level, id.Index, err)
		}
	}
	return out, nil
}

func (s *Store) subtreeFromLeaves(ctx context.Context, id compact.NodeID) ([]byte, error) {
	begin, end := id.Coverage()
	rows, err := s.rdb.QueryContext(ctx, `SELECT leaf FROM events WHERE position >= ? AND position < ? ORDER BY position`, int64(begin), int64(end))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var level [][]byte
	for rows.Next() {
		var h []byte
		if err := rows.Scan(&h); err != nil {
			return nil, err
		}
		level = append(level, h)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if uint64(len(level)) != end-begin {
		return nil, sql.ErrNoRows
	}
	// A perfect subtree: hash pairs level by level up to its root.
	for len(level) > 1 {
		for i := 0; i < len(level)/2; i++ {
			level[i] = ledger.Hasher.HashChildren(level[2*i], level[2*i+1])
		}
		level = level[:len(level)/2]
	}
	return level[0], nil
}

// InclusionProof returns the inclusion proof of the event at position index
// in the tree of the given size.
func (s *Store) InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error) {
	if err := s.checkSize(size); err != nil {
		return nil, err
	}
	return ledger.InclusionProof(ctx, s, index, size)
}

// ConsistencyProof returns the consistency proof between two tree sizes.
func (s *Store) ConsistencyProof(ctx context.Context, size1, size2 uint64) ([][]byte, error) {
	if err := s.checkSize(size2); err != nil {
		return nil, err
	}
	return ledger.ConsistencyProof(ctx, s, size1, size2)
}

func (s *Store) checkSize(size uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if size > s.size {
		return fmt.Errorf("tree size %d is beyond the log's %d events", size, s.size)
	}
	return nil
}

// Verifiers returns note verifiers for the pinned keys, taking each key's
// material from the keys this ledger recorded. A fingerprint the ledger has
// no key for is an error: nothing could verify against it.
func (s *Store) Verifiers(ctx context.Context, fingerprints ...string) (note.Verifiers, error) {
	keys, err := s.Keys(ctx)
	if err != nil {
		return nil, err
	}
	return anchors.PinnedVerifiers(s.Origin(), keys, fingerprints...)
}

// Verify checks the whole ledger against its checkpoints, trusting only the
// pinned key fingerprints and the trusted checkpoint notes. When another
// process is writing the ledger, its not-yet-signed tail is counted rather
// than failed.
func (s *Store) Verify(ctx context.Context, fingerprints []string, trusted [][]byte) (ledger.Report, error) {
	vs, err := s.Verifiers(ctx, fingerprints...)
	if err != nil {
		return ledger.Report{}, &ledger.Failure{Position: -1, Reason: err.Error()}
	}
	live := s.lock == nil && InUse(s.path)
	return ledger.Verify(ctx, s, ledger.VerifyOptions{Origin: s.Origin(), Verifiers: vs, Trusted: trusted, Live: live})
}

// Stats counts the writer's work since Open.
type Stats struct {
	// Commits is the number of group-commit transactions.
	Commits uint64
	// Appends is the number of append requests committed.
	Appends uint64
	// WALRestarts counts the times the writer restarted a write-ahead
	// log that had outgrown MaxWALSize (see boundWAL).
	WALRestarts uint64
	// Syncs is the number of fsyncs of the write-ahead log that made
	// batches durable, and SyncTime the time spent in them: the disk's
	// part of every append's latency. An append waits for the fsync under
	// way (if any) and then its own, so where SyncTime grows nearly as
	// fast as the clock, appends wait mostly for the disk.
	Syncs    uint64
	SyncTime time.Duration
}

// Stats returns counters of the writer's work.
func (s *Store) Stats() Stats {
	return Stats{
		Commits: s.commits.Load(), Appends: s.appends.Load(), WALRestarts: s.walResets.Load(),
		Syncs: s.syncs.Load(), SyncTime: time.Duration(s.syncNanos.Load()),
	}
}

// Lookup returns the event with the given id.
func (s *Store) Lookup(ctx context.Context, id string) (ledger.Record, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT position, canonical FROM events WHERE id = ? AND position < ?`, id, s.readBound())
	if err != nil {
		return ledger.Record{}, fmt.Errorf("look up %s: %w", id, err)
	}
	recs, err := ledger.ScanRecords(rows)
	if err != nil {
		return ledger.Record{}, fmt.Errorf("look up %s: %w", id, err)
	}
	if len(recs) == 0 {
		return ledger.Record{}, fmt.Errorf("%w: %s", ledger.ErrNoEvent, id)
	}
	return recs[0], nil
}
