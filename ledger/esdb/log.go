// Package esdb is Docket's EventStoreDB / KurrentDB ledger store, through
// github.com/kurrent-io/KurrentDB-Client-Go (esdb:// and kurrentdb:// URLs).
//
// Layout in EventStoreDB:
//   - Ledger stream S is the EventStoreDB stream Prefix+S (default prefix
//     "docket-", so change-42 is docket-change-42; the ledger's stream name
//     stays intact after the prefix). Each event's data is its canonical
//     bytes (RFC 8785), content type application/json, event type the
//     ledger type, event id the ledger id (a UUID as is; any other id maps
//     to a name-based UUIDv5), and its EventStoreDB event number equals the
//     revision inside the canonical bytes.
//   - The checkpoint stream (default "docket.checkpoints", outside the
//     prefix) holds LedgerCreated at revision 0 (the ledger id, hence the
//     checkpoint origin "docket/<id>"), KeyAdded events (the SPKI of each
//     signing key) and CheckpointSigned events (the signed note). Every
//     write to it uses an exact expected revision, so two Docket nodes can
//     never fork the checkpoint sequence: the loser gets WrongRevision,
//     reloads and signs again later.
//
// Positions: the ledger position of an event is its index among the
// Docket events of $all (those in streams with the prefix), in $all order.
// A tree follower in each node subscribes to $all filtered by the prefix and
// appends every event to the node's local SQLite index (leaf hash, Merkle
// tree, a copy of the canonical bytes for ReadAll and Subscribe), resuming
// after its last position whenever the subscription drops.
//
// Verification never trusts the local index: it re-reads every Docket event
// from $all and every stream, so events that EventStoreDB's operators
// deleted, tombstoned, truncated ($tb), scavenged or re-appended are found.
package esdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"

	"github.com/evidence-parity/docket/ledger"
)

// Defaults for Config.
const (
	DefaultPrefix = "docket-"
)

// readPage is how many events one read asks for.
const readPage = 4096

// errTombstoned marks a read of a tombstoned (hard-deleted) stream.
var errTombstoned = errors.New("stream is tombstoned")

// Log is a Docket ledger in EventStoreDB as this process reaches it: the
// connection (replaced when the client gives up on a node) and the reads
// that verification and the Store share.
type Log struct {
	url      string
	prefix   string
	cpStream string
	logger   *slog.Logger

	mu     sync.Mutex
	client *kurrentdb.Client
	closed bool
}

// Remote names an EventStoreDB ledger.
type Remote struct {
	// URL is the connection string (esdb://, kurrentdb://, +discover forms).
	URL string
	// Prefix is prepended to every ledger stream name (default "docket-").
	Prefix string
	// CheckpointStream holds the ledger id, keys and signed checkpoints
	// (default: the prefix without its trailing separator, then
	// ".checkpoints": "docket.checkpoints"); it must not start with Prefix.
	CheckpointStream string
	// Logger receives connection trouble (default slog.Default()).
	Logger *slog.Logger
}

// Dial returns the Log at r. It connects lazily; a bad URL fails here.
func Dial(r Remote) (*Log, error) {
	if r.Prefix == "" {
		r.Prefix = DefaultPrefix
	}
	if r.CheckpointStream == "" {
		r.CheckpointStream = strings.TrimRight(r.Prefix, "-_.:") + ".checkpoints"
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	if strings.HasPrefix(r.CheckpointStream, r.Prefix) || strings.HasPrefix(r.Prefix, "$") {
		return nil, fmt.Errorf("esdb: checkpoint stream %q must not start with the prefix %q, and the prefix must not start with $", r.CheckpointStream, r.Prefix)
	}
	l := &Log{url: r.URL, prefix: r.Prefix, cpStream: r.CheckpointStream, logger: r.Logger}
	if _, err := l.newClient(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Log) newClient() (*kurrentdb.Client, error) {
	cfg, err := kurrentdb.ParseConnectionString(l.url)
	if err != nil {
		return nil, fmt.Errorf("esdb: connection string: %w", err)
	}
	logger := l.logger
	cfg.Logger = func(level kurrentdb.LogLevel, format string, args ...any) {
		if level == kurrentdb.LogError || level == kurrentdb.LogWarn {
			logger.Debug("eventstoredb client: " + fmt.Sprintf(format, args...))
		}
	}
	c, err := kurrentdb.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("esdb: %w", err)
	}
	l.mu.Lock()
	l.client = c
	l.mu.Unlock()
	return c, nil
}

// conn returns the current client.
func (l *Log) conn() (*kurrentdb.Client, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errors.New("esdb: closed")
	}
	return l.client, nil
}

// Close closes the connection.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	return l.client.Close()
}

func code(err error) (kurrentdb.ErrorCode, bool) {
	var e *kurrentdb.Error
	if errors.As(err, &e) {
		return e.Code(), true
	}
	return 0, false
}

// transient reports errors that a new attempt may not meet: the node went
// away, or a leader changed. The client reconnects by itself (to the leader
// a NotLeader names, or by discovery); once its discovery gives up it is
// closed for good, and recover replaces it.
func transient(err error) bool {
	c, ok := code(err)
	return ok && (c == kurrentdb.ErrorCodeConnectionClosed || c == kurrentdb.ErrorUnavailable || c == kurrentdb.ErrorCodeNotLeader || c == kurrentdb.ErrorAborted)
}

func (l *Log) recover(c *kurrentdb.Client, err error) {
	if cd, _ := code(err); cd != kurrentdb.ErrorCodeConnectionClosed {
		return
	}
	l.mu.Lock()
	stale := l.client == c && !l.closed
	l.mu.Unlock()
	if stale {
		c.Close()
		if _, err := l.newClient(); err != nil {
			l.logger.Error("esdb: reconnect", "err", err)
		}
	}
}

// do runs op, retrying with backoff while the error is transient and ctx
// lasts (bounded, so a dead server fails rather than hangs). Every write
// Docket retries carries its event ids, which EventStoreDB deduplicates.
func (l *Log) do(ctx context.Context, op func(*kurrentdb.Client) error) error {
	wait := 20 * time.Millisecond
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := l.conn()
		if err != nil {
			return err
		}
		err = op(c)
		if err == nil || !transient(err) || time.Now().After(deadline) {
			return err
		}
		l.recover(c, err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// readStream reads a stream from revision from on (forwards), or its last
// count events (backwards from the end). found is false for a stream that
// does not exist or was soft-deleted; a tombstoned one fails with
// errTombstoned.
func (l *Log) readStream(ctx context.Context, name string, from uint64, backwards bool, count uint64) (evs []*kurrentdb.RecordedEvent, found bool, err error) {
	err = l.do(ctx, func(c *kurrentdb.Client) error {
		evs, found = nil, true
		opts := kurrentdb.ReadStreamOptions{From: kurrentdb.Revision(from)}
		if backwards {
			opts = kurrentdb.ReadStreamOptions{Direction: kurrentdb.Backwards, From: kurrentdb.End{}}
		}
		for {
			n := uint64(readPage)
			if count > 0 {
				n = min(n, count-uint64(len(evs)))
			}
			rs, err := c.ReadStream(ctx, name, opts, n)
			if err != nil {
				return err
			}
			got, err := drain(rs)
			if cd, _ := code(err); cd == kurrentdb.ErrorCodeResourceNotFound {
				found = false
				return nil
			} else if cd == kurrentdb.ErrorCodeStreamDeleted {
				return fmt.Errorf("%s: %w", name, errTombstoned)
			} else if err != nil {
				return err
			}
			evs = append(evs, got...)
			if uint64(len(got)) < n || (count > 0 && uint64(len(evs)) >= count) || (backwards && count == 0) {
				return nil
			}
			if backwards {
				if got[len(got)-1].EventNumber == 0 {
					return nil
				}
				opts.From = kurrentdb.Revision(got[len(got)-1].EventNumber - 1)
				continue
			}
			opts.From = kurrentdb.Revision(got[len(got)-1].EventNumber + 1)
		}
	})
	return evs, found, err
}

func drain(rs *kurrentdb.ReadStream) ([]*kurrentdb.RecordedEvent, error) {
	defer rs.Close()
	var out []*kurrentdb.RecordedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if ev.Event != nil {
			out = append(out, ev.Event)
		}
	}
}

// readAll yields every event of $all from the start, in order, page by page.
func (l *Log) readAll(ctx context.Context, yield func(*kurrentdb.RecordedEvent) bool) error {
	var from kurrentdb.AllPosition = kurrentdb.Start{}
	var last *kurrentdb.Position
	for {
		var page []*kurrentdb.RecordedEvent
		err := l.do(ctx, func(c *kurrentdb.Client) error {
			rs, err := c.ReadAll(ctx, kurrentdb.ReadAllOptions{From: from}, readPage)
			if err != nil {
				return err
			}
			page, err = drain(rs)
			return err
		})
		if err != nil {
			return fmt.Errorf("read $all: %w", err)
		}
		n := 0
		for _, e := range page {
			if last != nil && e.Position == *last {
				continue // reads from a position include it
			}
			n++
			if !yield(e) {
				return nil
			}
		}
		if len(page) < readPage || n == 0 {
			return nil
		}
		p := page[len(page)-1].Position
		last, from = &p, p
	}
}

// esdbStream is the EventStoreDB stream of a ledger stream.
func (l *Log) esdbStream(stream string) string { return l.prefix + stream }

// ledgerStream returns the ledger stream of an EventStoreDB stream.
func (l *Log) ledgerStream(name string) (string, bool) {
	if !strings.HasPrefix(name, l.prefix) {
		return "", false
	}
	return strings.TrimPrefix(name, l.prefix), true
}

// idNamespace is the UUIDv5 namespace for ledger ids that are not UUIDs.
var idNamespace = uuid.MustParse("6f0f5c52-3d0e-4a55-9a62-8f1f0c7d3e11")

// EventID is the EventStoreDB event id of a ledger event id: the UUID
// itself when the id is a UUID in its canonical (lower-case, hyphenated)
// form, or a name-based UUIDv5 for any other string, so two different ids
// (such as one UUID in upper and in lower case) never share one.
func EventID(id string) uuid.UUID {
	if u, err := uuid.Parse(id); err == nil && u.String() == id {
		return u
	}
	return uuid.NewSHA1(idNamespace, []byte(id))
}

// envelopeOf reads a Docket event as EventStoreDB holds it in the stream
// named (name, the ledger stream being stream): its data must be a
// ledger envelope in canonical form, of that stream, at the revision
// EventStoreDB numbered it, with the EventStoreDB id derived from its id.
// Anything else under the prefix is foreign (another application's event,
// a second ledger whose prefix nests inside this one's, a write that gets
// any of these wrong): never indexed or signed, and reported by verify.
// The test depends on the event alone, so every node decides alike and
// positions agree.
func envelopeOf(e *kurrentdb.RecordedEvent, stream string) (ledger.Event, error) {
	if system(e.EventType) {
		return ledger.Event{}, fmt.Errorf("EventStoreDB system event %s", e.EventType)
	}
	env, err := ledger.Decode(e.Data)
	if err != nil {
		return ledger.Event{}, fmt.Errorf("not a ledger envelope: %v", err)
	}
	canonical, err := ledger.Canonical(env)
	switch {
	case err != nil || env.ID == "" || env.Type == "" || !bytes.Equal(canonical, e.Data):
		return ledger.Event{}, errors.New("not a ledger envelope in canonical form")
	case env.Stream != stream:
		return ledger.Event{}, fmt.Errorf("an envelope of stream %q", env.Stream)
	case env.Revision != e.EventNumber:
		return ledger.Event{}, fmt.Errorf("an envelope of revision %d at EventStoreDB event number %d", env.Revision, e.EventNumber)
	case EventID(env.ID) != e.EventID:
		return ledger.Event{}, fmt.Errorf("EventStoreDB's event id does not derive from the envelope's id %s", env.ID)
	}
	return env, nil
}

// system reports event types EventStoreDB reserves ($streamDeleted,
// $metadata, …): Docket never writes them, and skips them in its streams.
func system(typ string) bool { return strings.HasPrefix(typ, "$") }
