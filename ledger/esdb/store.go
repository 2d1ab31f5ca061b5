package esdb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf16"

	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/note"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/evidence-parity/docket/anchors"
	"github.com/evidence-parity/docket/ledger"
)

// Config configures a Store.
type Config struct {
	Remote
	// Path is the node's local SQLite index (the derived Merkle tree and a
	// copy of each event's canonical bytes). It is rebuilt from
	// EventStoreDB when missing.
	Path string
	// Signer signs checkpoints. Nil means this node signs none.
	Signer anchors.Signer
	// Limits bound what Append accepts (zero fields take ledger.DefaultLimits).
	Limits ledger.Limits
	// Now is the clock stamped on events without a time (default time.Now).
	Now func() time.Time
	// CheckpointInterval is the least time between two checkpoints (default 1s).
	CheckpointInterval time.Duration
	// WitnessPath, if set, keeps the last checkpoint this node signed
	// outside EventStoreDB (see ledger.Witness).
	WitnessPath string
	// IndexWait bounds how long a read waits for the tree follower to index
	// an event EventStoreDB already returned (default 30s).
	IndexWait time.Duration
	// MaxAppendSize is the server's MaxAppendSize setting: the most one
	// append may carry, counted as the server counts it (each event's data
	// and custom metadata, and twice its type's length in UTF-16 code
	// units). Default DefaultMaxAppendSize, the server's default.
	MaxAppendSize int
}

// DefaultMaxAppendSize is EventStoreDB's default MaxAppendSize (1 MiB).
const DefaultMaxAppendSize = 1 << 20

// minAppendSize is the least maximum append size Docket works with.
const minAppendSize = 64 << 10

// envelopeRoom is what an event's envelope may add to its data (ids,
// stream and type names, actor, time), kept free under MaxAppendSize.
const envelopeRoom = 4 << 10

// limitsFor fits limits to a server's maximum append size: one append is
// one atomic write, so its events together must fit, and an event's data
// must leave room for its envelope.
func limitsFor(l ledger.Limits, maxAppend int) ledger.Limits {
	l = l.WithDefaults()
	l.MaxData = min(l.MaxData, maxAppend-envelopeRoom)
	if l.MaxAppendBytes <= 0 || l.MaxAppendBytes > maxAppend {
		l.MaxAppendBytes = maxAppend
	}
	return l
}

// Limits are what Append accepts: the configured limits fitted to the
// server's maximum append size.
func (s *Store) Limits() ledger.Limits { return s.limits }

// Store is the EventStoreDB ledger store: events in EventStoreDB, the
// derived tree in the node's local SQLite, checkpoints in the checkpoint
// stream.
type Store struct {
	*Log
	cfg      Config
	limits   ledger.Limits
	now      func() time.Time
	ledgerID string

	db *sql.DB // local index; the follower is its only writer

	mu        sync.Mutex
	size      uint64
	root      []byte
	notify    chan struct{}            // closed and replaced after every indexed batch
	followErr error                    // the follower stopped
	inflight  map[string]chan struct{} // event ids being appended by this node
	from      *kurrentdb.Position
	closed    bool

	rng        *compact.Range // owned by the follower
	stopFollow context.CancelFunc
	followDone chan struct{}

	foreign atomic.Uint64 // events under the prefix the follower left out

	grew         chan struct{}
	checkpointer *ledger.Checkpointer
	noteSigner   *anchors.NoteSigner
	stopCP       context.CancelFunc
	cpDone       chan struct{}
}

var (
	_ ledger.Store         = (*Store)(nil)
	_ ledger.Tree          = (*Store)(nil)
	_ ledger.CheckpointLog = (*Store)(nil)
)

const schema = `
CREATE TABLE IF NOT EXISTS meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
	position  INTEGER PRIMARY KEY,
	commit_at INTEGER NOT NULL,
	esdb_id   TEXT NOT NULL,
	id        TEXT NOT NULL,
	stream    TEXT NOT NULL,
	revision  INTEGER NOT NULL,
	leaf      BLOB NOT NULL,
	canonical BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_id ON events (id);
CREATE INDEX IF NOT EXISTS events_esdb_id ON events (esdb_id);
CREATE INDEX IF NOT EXISTS events_stream ON events (stream, revision);
CREATE TABLE IF NOT EXISTS tree (
	level INTEGER NOT NULL,
	idx   INTEGER NOT NULL,
	hash  BLOB NOT NULL,
	PRIMARY KEY (level, idx)
) WITHOUT ROWID;
`

// Open connects to EventStoreDB, creates the ledger there if it has none,
// opens (or rebuilds) the local index at cfg.Path and starts the tree
// follower; with a Signer it records the key and signs checkpoints.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	l, err := Dial(cfg.Remote)
	if err != nil {
		return nil, err
	}
	if cfg.MaxAppendSize <= 0 {
		cfg.MaxAppendSize = DefaultMaxAppendSize
	}
	if cfg.MaxAppendSize < minAppendSize {
		l.Close()
		return nil, fmt.Errorf("esdb: a maximum append size of %d bytes leaves no room for an event (at least %d)", cfg.MaxAppendSize, minAppendSize)
	}
	s := &Store{Log: l, cfg: cfg, limits: limitsFor(cfg.Limits, cfg.MaxAppendSize), now: cfg.Now, notify: make(chan struct{}), grew: make(chan struct{}, 1)}
	if s.now == nil {
		s.now = time.Now
	}
	if s.cfg.IndexWait <= 0 {
		s.cfg.IndexWait = 30 * time.Second
	}
	if err := s.open(ctx); err != nil {
		if s.db != nil {
			s.db.Close()
		}
		l.Close()
		return nil, err
	}
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stopFollow, s.followDone = cancel, make(chan struct{})
	go s.follow(fctx)
	if s.noteSigner != nil {
		ccfg := ledger.CheckpointerConfig{Interval: cfg.CheckpointInterval, Logger: l.logger}
		if cfg.WitnessPath != "" {
			ccfg.Witness = ledger.FileWitness(cfg.WitnessPath)
		}
		s.checkpointer = ledger.NewCheckpointer(&signingLog{Store: s}, s.noteSigner, ccfg)
		cpCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		s.stopCP, s.cpDone = cancel, make(chan struct{})
		go func() {
			defer close(s.cpDone)
			s.checkpointer.Run(cpCtx, s.grew)
		}()
	}
	return s, nil
}

func (s *Store) open(ctx context.Context) error {
	var err error
	if s.ledgerID, err = s.ensureLedger(ctx); err != nil {
		return fmt.Errorf("esdb: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(s.cfg.Path), 0o700); err != nil {
		return err
	}
	dsn := "file:" + s.cfg.Path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	if s.db, err = sql.Open("sqlite", dsn); err != nil {
		return err
	}
	s.db.SetMaxOpenConns(4)
	if _, err := s.db.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("local index %s: %w", s.cfg.Path, err)
	}
	for _, kv := range [][2]string{{"ledger_id", s.ledgerID}, {"prefix", s.prefix}} {
		if _, err := s.db.ExecContext(ctx, `INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)`, kv[0], kv[1]); err != nil {
			return err
		}
		var have string
		if err := s.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, kv[0]).Scan(&have); err != nil {
			return err
		}
		if have != kv[1] {
			return fmt.Errorf("esdb: the local index %s was built for %s %q, EventStoreDB holds %q: remove it to rebuild", s.cfg.Path, kv[0], have, kv[1])
		}
	}
	var size sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(position) + 1 FROM events`).Scan(&size); err != nil {
		return err
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
		return err
	}
	var from string
	if err := s.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'from'`).Scan(&from); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if from != "" {
		var p kurrentdb.Position
		if _, err := fmt.Sscanf(from, "%d/%d", &p.Commit, &p.Prepare); err != nil {
			return fmt.Errorf("local index: $all position %q: %w", from, err)
		}
		s.from = &p
	}
	if err := s.stillThere(ctx); err != nil {
		return err
	}
	if s.cfg.Signer != nil {
		if s.noteSigner, err = anchors.NewNoteSigner("docket/"+s.ledgerID, s.cfg.Signer); err != nil {
			return fmt.Errorf("checkpoint signer: %w", err)
		}
		if err := s.addKey(ctx, s.cfg.Signer); err != nil {
			return fmt.Errorf("record signing key: %w", err)
		}
	}
	return nil
}

// stillThere checks that the last event of the local index is still in
// EventStoreDB, as indexed. A node whose EventStoreDB was restored from an
// older backup (or lost the event otherwise) would resume its subscription
// past the end of the log and sign events EventStoreDB no longer has; it
// refuses to start instead.
func (s *Store) stillThere(ctx context.Context) error {
	if s.size == 0 {
		return nil
	}
	var stream, esdbID string
	var rev, commitAt int64
	var canonical []byte
	if err := s.db.QueryRowContext(ctx, `SELECT stream, revision, esdb_id, commit_at, canonical FROM events WHERE position = ?`, int64(s.size-1)).
		Scan(&stream, &rev, &esdbID, &commitAt, &canonical); err != nil {
		return fmt.Errorf("local index: position %d: %w", s.size-1, err)
	}
	evs, _, err := s.readStream(ctx, s.esdbStream(stream), uint64(rev), false, 1)
	if err != nil && !errors.Is(err, errTombstoned) {
		return fmt.Errorf("esdb: read %s: %w", stream, err)
	}
	// The same event at the same place in $all (a log copied elsewhere
	// has the bytes but not the positions, and the follower resumes by
	// position), and $all reaching as far as the follower had read.
	if len(evs) == 1 && evs[0].EventNumber == uint64(rev) && evs[0].EventID.String() == esdbID && bytes.Equal(evs[0].Data, canonical) &&
		evs[0].Position.Commit == uint64(commitAt) {
		end, err := s.allEnd(ctx)
		if err != nil {
			return fmt.Errorf("esdb: read the end of $all: %w", err)
		}
		if s.from == nil || end.Commit >= s.from.Commit {
			return nil
		}
	}
	return fmt.Errorf("esdb: the local index %s ends at position %d (%s revision %d), which EventStoreDB no longer holds as indexed (the same event at the same $all position): "+
		"it was restored from an older backup, or the event was deleted or altered; run docket verify ledger --esdb, and remove the index to rebuild it from EventStoreDB", s.cfg.Path, s.size-1, stream, rev)
}

// allEnd is the position of the last event in $all.
func (s *Store) allEnd(ctx context.Context) (kurrentdb.Position, error) {
	var end kurrentdb.Position
	err := s.do(ctx, func(c *kurrentdb.Client) error {
		rs, err := c.ReadAll(ctx, kurrentdb.ReadAllOptions{Direction: kurrentdb.Backwards, From: kurrentdb.End{}}, 1)
		if err != nil {
			return err
		}
		evs, err := drain(rs)
		if err != nil {
			return err
		}
		if len(evs) > 0 {
			end = evs[0].Position
		}
		return nil
	})
	return end, err
}

// LedgerID returns the ledger's identifier (kept in EventStoreDB).
func (s *Store) LedgerID() string { return s.ledgerID }

// Origin returns the checkpoint origin line, "docket/<ledger id>".
func (s *Store) Origin() string { return "docket/" + s.ledgerID }

// Path returns the local index's path.
func (s *Store) Path() string { return s.cfg.Path }

// Close stops the checkpointer (signing a final checkpoint so the log at
// rest is covered), the follower and the connection.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	var errs []error
	if s.stopCP != nil {
		s.stopCP()
		<-s.cpDone
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if _, _, err := s.checkpointer.Sign(ctx); err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	s.stopFollow()
	<-s.followDone
	s.mu.Lock()
	close(s.notify)
	s.notify = nil
	s.mu.Unlock()
	errs = append(errs, s.db.Close(), s.Log.Close())
	return errors.Join(errs...)
}

// Checkpoint signs a checkpoint now if the tree grew since the latest one.
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

// SignerFingerprint is the fingerprint of the key this node signs with.
func (s *Store) SignerFingerprint() string {
	if s.noteSigner == nil {
		return ""
	}
	sum := sha256.Sum256(s.noteSigner.SPKI())
	return hex.EncodeToString(sum[:])
}

// Verifiers returns note verifiers for the pinned fingerprints.
func (s *Store) Verifiers(ctx context.Context, fingerprints ...string) (note.Verifiers, error) {
	return s.Log.Verifiers(ctx, s.Origin(), fingerprints...)
}

// publishedSize is the size of the head the follower has published.
func (s *Store) publishedSize() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size
}

// Head returns the size and root of the tree this node has indexed.
func (s *Store) Head(context.Context) (uint64, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size, s.root, nil
}

// signingLog is the Store as its Checkpointer sees it. Head reads the
// checkpoint stream's latest checkpoint (perhaps another node's) and waits
// until this node has indexed everything it covers, so a node that lags
// never mistakes another's newer checkpoint for a rewrite. LatestCheckpoint
// then answers from that same reading, and AddCheckpoint appends at exactly
// the revision after it: if another node signed in between, the append
// fails with ErrWrongRevision and the next round starts from the new one,
// so each checkpoint is checked against the one it follows.
type signingLog struct {
	*Store
	mu   sync.Mutex
	snap *cpSnapshot
}

type cpSnapshot struct {
	last    checkpointSigned
	found   bool
	lastRev uint64
}

func (l *signingLog) Head(ctx context.Context) (uint64, []byte, error) {
	last, found, lastRev, err := l.latestCheckpoint(ctx)
	if err != nil {
		return 0, nil, err
	}
	if found {
		// Build only on a checkpoint signed by one of the ledger's keys
		// (this node's, or an earlier one across a rotation): a junk
		// CheckpointSigned is refused at once, naming it.
		vs, err := l.keyVerifiers(ctx)
		if err != nil {
			return 0, nil, err
		}
		cp, err := ledger.OpenCheckpoint([]byte(last.Note), vs)
		if err != nil {
			return 0, nil, fmt.Errorf("the latest checkpoint in %s (revision %d) is not signed by a key of this ledger (%v): no checkpoint is signed after it", l.cpStream, lastRev, err)
		}
		// Wait for this node's index to cover it, but not for ever: a
		// checkpoint larger than EventStoreDB's log (restored from an
		// older backup) never will.
		wctx, cancel := context.WithTimeout(ctx, l.cfg.IndexWait)
		err = l.waitSize(wctx, cp.Size)
		cancel()
		if err != nil {
			return 0, nil, fmt.Errorf("the latest checkpoint covers %d events, more than this node has indexed from EventStoreDB: %w", cp.Size, err)
		}
		last.Size = cp.Size
	}
	l.mu.Lock()
	l.snap = &cpSnapshot{last: last, found: found, lastRev: lastRev}
	l.mu.Unlock()
	return l.Store.Head(ctx)
}

// keyVerifiers are note verifiers for every key recorded in the checkpoint
// stream (only those whose material has the fingerprint it is filed
// under) and this node's own.
func (l *signingLog) keyVerifiers(ctx context.Context) (note.Verifiers, error) {
	keys, err := l.Keys(ctx)
	if err != nil {
		return nil, err
	}
	spkis := map[string][]byte{string(l.noteSigner.SPKI()): l.noteSigner.SPKI()}
	for _, spki := range keys {
		spkis[string(spki)] = spki
	}
	var vs []note.Verifier
	for _, spki := range spkis {
		v, err := anchors.NewNoteVerifier(l.Origin(), spki)
		if err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	return note.VerifierList(vs...), nil
}

func (l *signingLog) snapshot(ctx context.Context) (*cpSnapshot, error) {
	l.mu.Lock()
	snap := l.snap
	l.mu.Unlock()
	if snap != nil {
		return snap, nil
	}
	last, found, lastRev, err := l.latestCheckpoint(ctx)
	return &cpSnapshot{last: last, found: found, lastRev: lastRev}, err
}

func (l *signingLog) LatestCheckpoint(ctx context.Context) ([]byte, bool, error) {
	snap, err := l.snapshot(ctx)
	if err != nil || !snap.found {
		return nil, false, err
	}
	return []byte(snap.last.Note), true, nil
}

func (l *signingLog) AddCheckpoint(ctx context.Context, cp ledger.Checkpoint, signed []byte) error {
	snap, err := l.snapshot(ctx)
	if err != nil {
		return err
	}
	return l.addCheckpointAt(ctx, snap, cp, signed)
}

// WaitCheckpointed waits until this node has indexed every event the
// ledger's latest checkpoint covers (at once if there is none): what a
// freshly opened node needs before it answers for the signed log.
func (s *Store) WaitCheckpointed(ctx context.Context) error {
	c, found, _, err := s.latestCheckpoint(ctx)
	if err != nil || !found {
		return err
	}
	return s.waitSize(ctx, c.Size)
}

// waitSize waits until the follower has indexed size events.
func (s *Store) waitSize(ctx context.Context, size uint64) error {
	for {
		s.mu.Lock()
		have, wake, ferr := s.size, s.notify, s.followErr
		s.mu.Unlock()
		if have >= size {
			return nil
		}
		if ferr != nil || wake == nil {
			return fmt.Errorf("the tree follower stopped: %w", cmpErr(ferr, ledger.ErrClosed))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		}
	}
}

func cmpErr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

// wake returns a channel closed after the follower's next batch, or an
// error once it stopped or the store closed.
func (s *Store) wake() (<-chan struct{}, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.notify == nil {
		return nil, ledger.ErrClosed
	}
	if s.followErr != nil {
		return nil, fmt.Errorf("the tree follower stopped: %w", s.followErr)
	}
	return s.notify, nil
}

// awaitIndexed polls find until it reports done, waiting for the follower
// between tries, for at most IndexWait. find is given the size the
// follower has published: rows at or beyond it are committed to the index
// but not yet part of the head (Head, Checkpoint), so find must not count
// them, or a checkpoint taken right after an Append could miss its events.
func (s *Store) awaitIndexed(ctx context.Context, what string, find func(size uint64) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.IndexWait)
	defer cancel()
	for {
		wake, err := s.wake()
		if err != nil {
			return err
		}
		done, err := find(s.publishedSize())
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not indexed by the tree follower: %w", what, ctx.Err())
		case <-wake:
		}
	}
}

// Append writes events to stream in EventStoreDB and returns once the tree
// follower has indexed them (their positions are then known).
//
// Expected revisions: NoStream and Exact(n) go to EventStoreDB as they are
// (StreamState NoStream and StreamRevision n). Because the canonical bytes
// carry each event's revision, Any and StreamExists are resolved first by
// reading the stream's last revision and appending at exactly that
// revision, retried if another writer got in between. A refusal from
// EventStoreDB (ErrorCodeWrongExpectedVersion) is ledger.ErrWrongRevision.
//
// Idempotency: event ids are the ledger ids (see EventID). An append whose
// ids this node already indexed returns the original records (or
// ErrDuplicateEvent when they are elsewhere or only partly there); one
// whose reply was lost before indexing is deduplicated by EventStoreDB,
// which acknowledges ids already at the expected place without writing.
// Uniqueness of ids across streams is checked against the node's index
// before writing, one append of an id at a time on a node; EventStoreDB
// has no such check, so two nodes appending one id to two streams at the
// same instant could both succeed, and verify then reports the id written
// twice.
func (s *Store) Append(ctx context.Context, stream string, expected ledger.ExpectedRevision, events ...ledger.Event) ([]ledger.Record, error) {
	prepared, err := ledger.Prepare(stream, events, s.limits, s.now())
	if err != nil {
		return nil, fmt.Errorf("append %s: %w", stream, err)
	}
	for _, p := range prepared {
		if system(p.Event.Type) {
			return nil, fmt.Errorf("append %s: type %q: types starting with $ are reserved by EventStoreDB: %w", stream, p.Event.Type, ledger.ErrInvalidEvent)
		}
	}
	// One append of an id at a time on this node: the look-ups below and
	// the write are then one step for each id.
	release, err := s.claim(ctx, prepared)
	if err != nil {
		return nil, fmt.Errorf("append %s: %w", stream, err)
	}
	defer release()
	if recs, found, err := s.retried(ctx, stream, prepared); err != nil || found {
		return recs, err
	}
	ids := make([]uuid.UUID, len(prepared))
	for i, p := range prepared {
		ids[i] = EventID(p.Event.ID)
	}
	if _, exact := expected.Revision(); !exact && expected != ledger.NoStream {
		// Any or StreamExists append at the head read just before, so
		// EventStoreDB cannot tell a retry from new events: look in the
		// stream itself (the index may lag behind a first attempt whose
		// reply was lost).
		if recs, found, err := s.inStream(ctx, stream, prepared, ids); err != nil || found {
			return recs, err
		}
	}
	name := s.esdbStream(stream)
	for attempt := 0; ; attempt++ {
		state, next, err := s.target(ctx, stream, expected)
		if err != nil {
			return nil, err
		}
		if next+uint64(len(prepared)) > 1<<53 {
			return nil, fmt.Errorf("append %s: revisions beyond 2^53 cannot be represented in canonical JSON: %w", stream, ledger.ErrTooLarge)
		}
		data := make([]kurrentdb.EventData, len(prepared))
		size := 0
		for i, p := range prepared {
			rec := p.Finish(next+uint64(i), 0)
			data[i] = kurrentdb.EventData{EventID: ids[i], EventType: p.Event.Type, ContentType: kurrentdb.ContentTypeJson, Data: rec.Canonical}
			size += len(rec.Canonical) + 2*len(utf16.Encode([]rune(p.Event.Type)))
		}
		if size > s.cfg.MaxAppendSize {
			return nil, fmt.Errorf("append %s: %d events of %d bytes as EventStoreDB counts them, more than its maximum append size %d: %w", stream, len(prepared), size, s.cfg.MaxAppendSize, ledger.ErrTooLarge)
		}
		err = s.do(ctx, func(c *kurrentdb.Client) error {
			_, err := c.AppendToStream(ctx, name, kurrentdb.AppendToStreamOptions{StreamState: state}, data...)
			return err
		})
		cd, _ := code(err)
		switch {
		case err == nil:
			return s.indexed(ctx, stream, ids)
		case cd == kurrentdb.ErrorCodeWrongExpectedVersion:
			if _, exact := expected.Revision(); expected != ledger.NoStream && !exact && attempt < 100 {
				continue // Any or StreamExists: the head moved; read it again
			}
			// Before reporting the conflict, check the stream: perhaps
			// these events are there already (a retry whose first reply
			// was lost), wholly or partly.
			if recs, found, err := s.inStream(ctx, stream, prepared, ids); err != nil || found {
				return recs, err
			}
			last, exists, err := s.head(ctx, stream)
			if err != nil {
				return nil, err
			}
			return nil, ledger.WrongRevision(stream, expected, last, exists)
		case cd == kurrentdb.ErrorCodeAppendTransactionSizeExceeded || cd == kurrentdb.ErrorCodeAppendRecordSizeExceeded ||
			strings.Contains(err.Error(), "Maximum Append Size"):
			return nil, fmt.Errorf("append %s: EventStoreDB refused the append as too large (its MaxAppendSize is below --esdb-max-append-size %d): %w", stream, s.cfg.MaxAppendSize, ledger.ErrTooLarge)
		case cd == kurrentdb.ErrorCodeStreamDeleted:
			return nil, fmt.Errorf("append %s: the stream was tombstoned in EventStoreDB: %w", stream, err)
		default:
			return nil, fmt.Errorf("append %s: %w", stream, err)
		}
	}
}

// claim marks the events' ids as being appended by this node, waiting
// while another append of any of them is under way; release ends it.
func (s *Store) claim(ctx context.Context, prepared []ledger.Prepared) (release func(), err error) {
	for {
		s.mu.Lock()
		var busy chan struct{}
		for _, p := range prepared {
			if ch, ok := s.inflight[p.Event.ID]; ok {
				busy = ch
				break
			}
		}
		if busy == nil {
			done := make(chan struct{})
			if s.inflight == nil {
				s.inflight = map[string]chan struct{}{}
			}
			for _, p := range prepared {
				s.inflight[p.Event.ID] = done
			}
			s.mu.Unlock()
			return func() {
				s.mu.Lock()
				for _, p := range prepared {
					delete(s.inflight, p.Event.ID)
				}
				s.mu.Unlock()
				close(done)
			}, nil
		}
		s.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// target maps an expected revision to the EventStoreDB stream state an
// append uses, and the revision its first event gets.
func (s *Store) target(ctx context.Context, stream string, expected ledger.ExpectedRevision) (kurrentdb.StreamState, uint64, error) {
	if expected == ledger.NoStream {
		return kurrentdb.NoStream{}, 0, nil
	}
	if rev, ok := expected.Revision(); ok {
		if rev >= 1<<53 { // no stream reaches it (and rev+1 could wrap)
			last, exists, err := s.head(ctx, stream)
			if err != nil {
				return nil, 0, err
			}
			return nil, 0, ledger.WrongRevision(stream, expected, last, exists)
		}
		return kurrentdb.Revision(rev), rev + 1, nil
	}
	last, exists, err := s.head(ctx, stream)
	if err != nil {
		return nil, 0, err
	}
	if !expected.Allows(last, exists) {
		return nil, 0, ledger.WrongRevision(stream, expected, last, exists)
	}
	if !exists {
		return kurrentdb.NoStream{}, 0, nil
	}
	return kurrentdb.Revision(last), last + 1, nil
}

// head returns a stream's last revision in EventStoreDB.
func (s *Store) head(ctx context.Context, stream string) (last uint64, exists bool, err error) {
	evs, found, err := s.readStream(ctx, s.esdbStream(stream), 0, true, 1)
	if errors.Is(err, errTombstoned) {
		return 0, false, fmt.Errorf("append %s: the stream was tombstoned in EventStoreDB", stream)
	}
	if err != nil {
		return 0, false, fmt.Errorf("read %s: %w", stream, err)
	}
	if !found || len(evs) == 0 {
		return 0, false, nil
	}
	return evs[0].EventNumber, true, nil
}

// retried looks the events' ids up in the local index: all there, in this
// stream and in order, is a retry (the original records); any there
// otherwise is ErrDuplicateEvent.
func (s *Store) retried(ctx context.Context, stream string, prepared []ledger.Prepared) ([]ledger.Record, bool, error) {
	ids := make([]string, len(prepared))
	for i, p := range prepared {
		ids[i] = p.Event.ID
	}
	type place struct {
		stream string
		pos    int64
	}
	found := map[string]place{}
	err := inChunks(ids, func(chunk []any, marks string) error {
		rows, err := s.db.QueryContext(ctx, `SELECT id, stream, MIN(position) FROM events WHERE id IN (`+marks+`) GROUP BY id`, chunk...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var p place
			if err := rows.Scan(&id, &p.stream, &p.pos); err != nil {
				return err
			}
			found[id] = p
		}
		return rows.Err()
	})
	if err != nil {
		return nil, false, fmt.Errorf("look up event ids: %w", err)
	}
	if len(found) == 0 {
		return nil, false, nil
	}
	first, ok := found[ids[0]]
	for i, id := range ids {
		if p, there := found[id]; !ok || !there || p.stream != stream || p.pos != first.pos+int64(i) {
			return nil, true, fmt.Errorf("append %s: event %s: %w", stream, id, ledger.ErrDuplicateEvent)
		}
	}
	// The rows may be committed a moment before the follower publishes
	// them as its head; the append is done only when they are part of it.
	wctx, cancel := context.WithTimeout(ctx, s.cfg.IndexWait)
	err = s.waitSize(wctx, uint64(first.pos)+uint64(len(prepared)))
	cancel()
	if err != nil {
		return nil, true, fmt.Errorf("append %s: %w", stream, err)
	}
	recs, err := s.page(ctx, uint64(first.pos), len(prepared))
	return recs, true, err
}

// inChunks calls f with the values in chunks small enough for one SQL
// statement, and the matching "?, ?, …" placeholders.
func inChunks(values []string, f func(chunk []any, marks string) error) error {
	const most = 500
	for len(values) > 0 {
		n := min(len(values), most)
		chunk := make([]any, n)
		for i, v := range values[:n] {
			chunk[i] = v
		}
		if err := f(chunk, strings.Repeat("?, ", n-1)+"?"); err != nil {
			return err
		}
		values = values[n:]
	}
	return nil
}

// inStream checks EventStoreDB's stream itself for the events' ids.
//
// It reads the stream's tail: the events themselves and retryWindow more
// that other writers may have appended since, newest first, so its cost
// does not grow with the stream.
func (s *Store) inStream(ctx context.Context, stream string, prepared []ledger.Prepared, ids []uuid.UUID) ([]ledger.Record, bool, error) {
	evs, _, err := s.readStream(ctx, s.esdbStream(stream), 0, true, uint64(len(ids)+retryWindow))
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", stream, err)
	}
	slices.Reverse(evs)
	for i, e := range evs {
		if e.EventID != ids[0] {
			continue
		}
		for j := range ids {
			if i+j >= len(evs) || evs[i+j].EventID != ids[j] {
				return nil, true, fmt.Errorf("append %s: event %s: %w", stream, prepared[j].Event.ID, ledger.ErrDuplicateEvent)
			}
		}
		recs, err := s.indexed(ctx, stream, ids)
		return recs, true, err
	}
	return nil, false, nil
}

// retryWindow is how many events other writers may append to a stream
// between a first attempt and its retry for inStream to still find it.
const retryWindow = 1024

// indexed waits until the follower indexed the events with these
// EventStoreDB ids in stream and returns their records.
func (s *Store) indexed(ctx context.Context, stream string, ids []uuid.UUID) ([]ledger.Record, error) {
	want := make([]string, len(ids))
	for i, id := range ids {
		want[i] = id.String()
	}
	byID := map[string]ledger.Record{}
	err := s.awaitIndexed(ctx, "append "+stream, func(size uint64) (bool, error) {
		var missing []string
		for _, id := range want {
			if _, ok := byID[id]; !ok {
				missing = append(missing, id)
			}
		}
		err := inChunks(missing, func(chunk []any, marks string) error {
			rows, err := s.db.QueryContext(ctx, `SELECT esdb_id, position, canonical FROM events WHERE position < ? AND stream = ? AND esdb_id IN (`+marks+`) ORDER BY position`, append([]any{int64(size), stream}, chunk...)...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var id string
				var r ledger.Record
				var pos int64
				if err := rows.Scan(&id, &pos, &r.Canonical); err != nil {
					return err
				}
				if _, dup := byID[id]; dup {
					continue // the first one in the stream is the one appended
				}
				if r.Event, err = ledger.Decode(r.Canonical); err != nil {
					return fmt.Errorf("position %d: %w", pos, err)
				}
				r.Position = uint64(pos)
				byID[id] = r
			}
			return rows.Err()
		})
		return len(byID) == len(want), err
	})
	if err != nil {
		return nil, err
	}
	recs := make([]ledger.Record, len(want))
	for i, id := range want {
		recs[i] = byID[id]
	}
	return recs, nil
}

// ReadStream reads a stream's records from revision from on, from
// EventStoreDB; each record's position comes from the local index
// (waiting for the follower if the event is newer than it). A stream that
// does not exist, or was soft-deleted, reads as empty; a tombstoned one is
// an error.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64) ([]ledger.Record, error) {
	evs, _, err := s.readStream(ctx, s.esdbStream(stream), from, false, 0)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	var out []ledger.Record
	for _, e := range evs {
		if system(e.EventType) {
			continue
		}
		env, err := envelopeOf(e, stream)
		if err != nil {
			return nil, fmt.Errorf("read %s: EventStoreDB event number %d is foreign to the ledger (%v); docket verify ledger --esdb reports it", stream, e.EventNumber, err)
		}
		out = append(out, ledger.Record{Event: env, Canonical: e.Data})
	}
	if len(out) == 0 {
		return nil, nil
	}
	lo, hi := out[0].Event.Revision, out[len(out)-1].Event.Revision
	pos := map[uint64]uint64{}
	err = s.awaitIndexed(ctx, "read "+stream, func(size uint64) (bool, error) {
		rows, err := s.db.QueryContext(ctx, `SELECT revision, position FROM events WHERE position < ? AND stream = ? AND revision BETWEEN ? AND ?`, int64(size), stream, int64(lo), int64(hi))
		if err != nil {
			return false, err
		}
		defer rows.Close()
		for rows.Next() {
			var rev, p int64
			if err := rows.Scan(&rev, &p); err != nil {
				return false, err
			}
			pos[uint64(rev)] = uint64(p)
		}
		if err := rows.Err(); err != nil {
			return false, err
		}
		for _, r := range out {
			if _, ok := pos[r.Event.Revision]; !ok {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Position = pos[out[i].Event.Revision]
	}
	return out, nil
}

const pageSize = 1024

// ReadAll yields records in position order from position from, up to the
// end of what this node has indexed.
func (s *Store) ReadAll(ctx context.Context, from uint64) iter.Seq2[ledger.Record, error] {
	return ledger.ReadPages(ctx, from, pageSize, s.readPage)
}

// Subscribe yields every record from position from: those indexed, then
// each new one as the follower indexes it. The follower's own
// subscription to $all resumes after its last event when it drops (a
// leader change, a restart), so this one neither skips nor repeats.
func (s *Store) Subscribe(ctx context.Context, from uint64) iter.Seq2[ledger.Record, error] {
	return ledger.SubscribePages(ctx, from, pageSize, s.readPage, s.wake)
}

func (s *Store) readPage(ctx context.Context, from uint64) ([]ledger.Record, error) {
	return s.page(ctx, from, pageSize)
}

// page reads up to n records from position from, within the head the
// follower has published (rows it has committed but not yet published are
// not part of the signed tree yet).
func (s *Store) page(ctx context.Context, from uint64, n int) ([]ledger.Record, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT position, canonical FROM events WHERE position >= ? AND position < ? ORDER BY position LIMIT ?`, int64(from), int64(s.publishedSize()), n)
	if err != nil {
		return nil, fmt.Errorf("read log: %w", err)
	}
	recs, err := ledger.ScanRecords(rows)
	if err != nil {
		return nil, fmt.Errorf("read log: %w", err)
	}
	return recs, nil
}

// Lookup returns the event with the given ledger id.
func (s *Store) Lookup(ctx context.Context, id string) (ledger.Record, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT position, canonical FROM events WHERE id = ? ORDER BY position LIMIT 1`, id)
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

// NodeHashes returns perfect-subtree hashes from the local index: leaves
// from the event rows, every higher node from the tree table.
func (s *Store) NodeHashes(ctx context.Context, ids []compact.NodeID) ([][]byte, error) {
	out := make([][]byte, len(ids))
	for i, id := range ids {
		var err error
		if id.Level == 0 {
			err = s.db.QueryRowContext(ctx, `SELECT leaf FROM events WHERE position = ?`, int64(id.Index)).Scan(&out[i])
		} else {
			err = s.db.QueryRowContext(ctx, `SELECT hash FROM tree WHERE level = ? AND idx = ?`, id.Level, int64(id.Index)).Scan(&out[i])
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
		return fmt.Errorf("tree size %d is beyond the %d events this node has indexed", size, s.size)
	}
	return nil
}

// follow runs the tree follower until ctx is done: one goroutine keeps a
// subscription to $all (filtered to the prefix) and resubscribes after
// the last event it received whenever it drops; this one indexes what it
// receives in batches.
func (s *Store) follow(ctx context.Context) {
	defer close(s.followDone)
	in := make(chan *kurrentdb.RecordedEvent, 4096)
	go s.receive(ctx, in)
	for first := range in {
		batch := []*kurrentdb.RecordedEvent{first}
	gather:
		for len(batch) < 4096 {
			select {
			case e, ok := <-in:
				if !ok {
					break gather
				}
				batch = append(batch, e)
			default:
				break gather
			}
		}
		if err := s.index(ctx, batch); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.logger.Error("esdb: tree follower stopped", "err", err)
			s.mu.Lock()
			s.followErr = err
			if s.notify != nil {
				close(s.notify)
				s.notify = make(chan struct{})
			}
			s.mu.Unlock()
			return
		}
	}
}

func (s *Store) receive(ctx context.Context, out chan<- *kurrentdb.RecordedEvent) {
	defer close(out)
	s.mu.Lock()
	from := s.from
	s.mu.Unlock()
	wait := 20 * time.Millisecond
	for ctx.Err() == nil {
		opts := kurrentdb.SubscribeToAllOptions{
			From:   kurrentdb.Start{},
			Filter: &kurrentdb.SubscriptionFilter{Type: kurrentdb.StreamFilterType, Prefixes: []string{s.prefix}},
		}
		if from != nil {
			opts.From = *from // exclusive: the subscription starts after it
		}
		c, err := s.conn()
		if err != nil {
			return
		}
		sub, err := c.SubscribeToAll(ctx, opts)
		if err != nil {
			s.logger.Debug("esdb: subscribe to $all", "err", err)
			s.Log.recover(c, err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, time.Second)
			continue
		}
		for {
			ev := sub.Recv()
			if ev.SubscriptionDropped != nil {
				s.logger.Debug("esdb: subscription to $all dropped; resubscribing", "err", ev.SubscriptionDropped.Error)
				s.Log.recover(c, ev.SubscriptionDropped.Error)
				break
			}
			if ev.EventAppeared == nil || ev.EventAppeared.Event == nil {
				continue
			}
			wait = 20 * time.Millisecond
			e := ev.EventAppeared.Event
			p := e.Position
			from = &p
			select {
			case out <- e:
			case <-ctx.Done():
				sub.Close()
				return
			}
		}
		sub.Close()
	}
}

// index appends a batch of $all events to the local index and tree in one
// transaction, then publishes the new head.
func (s *Store) index(ctx context.Context, batch []*kurrentdb.RecordedEvent) (err error) {
	saved, err := ledger.RangeFactory.NewRange(s.rng.Begin(), s.rng.End(), append([][]byte(nil), s.rng.Hashes()...))
	if err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
			s.rng = saved
		}
	}()
	var nodeErr error
	storeNode := func(id compact.NodeID, hash []byte) {
		if id.Level > 0 && nodeErr == nil {
			_, nodeErr = tx.ExecContext(ctx, `INSERT OR REPLACE INTO tree (level, idx, hash) VALUES (?, ?, ?)`, id.Level, int64(id.Index), hash)
		}
	}
	added := 0
	for _, e := range batch {
		stream, ok := s.ledgerStream(e.StreamID)
		if !ok || system(e.EventType) {
			continue
		}
		env, err := envelopeOf(e, stream)
		if err != nil {
			// Not Docket's: left out of the tree, so never signed; verify
			// reports it.
			s.logger.Error("esdb: a foreign event under Docket's prefix is not indexed", "stream", e.StreamID, "event number", e.EventNumber, "event id", e.EventID, "err", err)
			s.foreign.Add(1)
			continue
		}
		id := env.ID
		leaf := ledger.LeafHash(e.Data)
		pos := s.rng.End()
		if _, err := tx.ExecContext(ctx, `INSERT INTO events (position, commit_at, esdb_id, id, stream, revision, leaf, canonical) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			int64(pos), int64(e.Position.Commit), e.EventID.String(), id, stream, int64(e.EventNumber), leaf, e.Data); err != nil {
			return fmt.Errorf("index position %d: %w", pos, err)
		}
		if err := s.rng.Append(leaf, storeNode); err != nil {
			return err
		}
		if nodeErr != nil {
			return nodeErr
		}
		added++
	}
	last := batch[len(batch)-1].Position
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO meta (key, value) VALUES ('from', ?)`, fmt.Sprintf("%d/%d", last.Commit, last.Prepare)); err != nil {
		return err
	}
	root, err := s.rng.GetRootHash(nil)
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.mu.Lock()
	s.size, s.root, s.from = s.rng.End(), root, &last
	if s.notify != nil {
		close(s.notify)
		s.notify = make(chan struct{})
	}
	s.mu.Unlock()
	if added > 0 {
		select {
		case s.grew <- struct{}{}:
		default:
		}
	}
	return nil
}

// Foreign counts the events under the prefix that this node's follower
// left out of the tree since it started: not Docket's (see envelopeOf).
func (s *Store) Foreign() uint64 { return s.foreign.Load() }

// Verify checks the ledger in EventStoreDB (not this node's index) against
// its signed checkpoints; see Log.Verify.
func (s *Store) Verify(ctx context.Context, fingerprints []string, trusted [][]byte) (ledger.Report, error) {
	return s.Log.Verify(ctx, fingerprints, trusted, true)
}
