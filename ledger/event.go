// Package ledger is Docket's append-only log: the event envelope and its
// canonical bytes, the Store interface every backend implements, the Merkle
// tree over the log (RFC 6962), signed checkpoints (C2SP tlog-checkpoint) and
// the one verification algorithm that checks a log against them.
//
// Data flow: a caller proposes Events; a Store validates them, assigns
// stream revisions, global positions and canonical bytes (RFC 8785), and
// stores each event's RFC 6962 leaf hash in the same durable write. A
// Checkpointer signs the tree head; Verify recomputes everything from the
// stored canonical bytes and checks it against the signed checkpoints.
package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/transparency-dev/merkle/rfc6962"
)

// Actor kinds.
const (
	ActorHuman   = "human"
	ActorAgent   = "agent"
	ActorService = "service"
	ActorSystem  = "system"
)

// Actor says who caused an event.
type Actor struct {
	// Kind is one of ActorHuman, ActorAgent, ActorService or ActorSystem.
	Kind string `json:"kind"`
	// ID identifies the principal, agent or service.
	ID string `json:"id"`
	// Credential is the id (never the secret) of the credential used, if any.
	Credential string `json:"credential,omitempty"`
}

// Event is the envelope of every record in the log. A caller fills ID
// (optional: the store assigns a UUIDv7 when empty; set it yourself to make a
// retried append idempotent), Type, Actor, Correlation, Causation, Data and
// optionally Time; the store assigns Stream and Revision.
type Event struct {
	ID          string          `json:"id"`
	Stream      string          `json:"stream"`
	Revision    uint64          `json:"revision"`
	Type        string          `json:"type"`
	Time        time.Time       `json:"time"`
	Actor       Actor           `json:"actor"`
	Correlation string          `json:"correlation,omitempty"`
	Causation   string          `json:"causation,omitempty"`
	Data        json.RawMessage `json:"data"`
}

// Record is an event as stored: its global position (the leaf index in the
// Merkle tree, 0-based and gap-free), the decoded envelope, and the canonical
// bytes that were hashed. Readers use Canonical as stored, never re-encoded.
type Record struct {
	Position  uint64
	Event     Event
	Canonical []byte
}

// LeafHash returns the record's RFC 6962 leaf hash, SHA-256(0x00 ‖ canonical).
func (r Record) LeafHash() []byte { return LeafHash(r.Canonical) }

// LeafHash returns SHA-256(0x00 ‖ canonical), the RFC 6962 §2.1 leaf hash.
func LeafHash(canonical []byte) []byte { return rfc6962.DefaultHasher.HashLeaf(canonical) }

// Errors a Store returns; callers test them with errors.Is.
var (
	// ErrWrongRevision: the stream was not at the expected revision.
	ErrWrongRevision = errors.New("wrong expected revision")
	// ErrInvalidEvent: the event is malformed (empty stream or type, data
	// that is not a JSON object, a bad id, ...). Nothing was written.
	ErrInvalidEvent = errors.New("invalid event")
	// ErrTooLarge: an event's data exceeds the store's limit. Nothing was written.
	ErrTooLarge = errors.New("event too large")
	// ErrDuplicateEvent: an event id is already used by a different event.
	ErrDuplicateEvent = errors.New("event id already used")
	// ErrNoEvent: no event has the id looked up.
	ErrNoEvent = errors.New("no such event")
	// ErrClosed: the store is closed.
	ErrClosed = errors.New("store closed")
)

// Limits bound what a store accepts.
type Limits struct {
	// MaxData is the largest Data, in bytes, an event may carry (default 1 MiB).
	MaxData int
	// MaxEvents is the most events one Append may carry (default 10,000).
	MaxEvents int
	// MaxAppendBytes, if set, bounds the canonical bytes of one Append's
	// events together (a backend that takes at most so much in one atomic
	// write, such as EventStoreDB's maximum append size).
	MaxAppendBytes int
}

// DefaultLimits are the limits a store uses when none are configured.
var DefaultLimits = Limits{MaxData: 1 << 20, MaxEvents: 10_000}

// WithDefaults fills zero fields from DefaultLimits.
func (l Limits) WithDefaults() Limits {
	if l.MaxData <= 0 {
		l.MaxData = DefaultLimits.MaxData
	}
	if l.MaxEvents <= 0 {
		l.MaxEvents = DefaultLimits.MaxEvents
	}
	return l
}

const (
	maxStream = 512
	maxType   = 256
	maxID     = 512
)

// Prepared is an event validated and canonicalized for one append, waiting
// only for its stream revision. Stores use it to do the expensive work
// (validation, RFC 8785 canonicalization) outside their single writer.
type Prepared struct {
	Event          Event
	prefix, suffix []byte // canonical bytes around the revision's digits
}

// Prepare validates events for an append to stream, assigns ids (UUIDv7) and
// times (now, UTC) where empty, and canonicalizes them. It returns an error
// wrapping ErrInvalidEvent or ErrTooLarge; a store writes nothing then.
func Prepare(stream string, events []Event, limits Limits, now time.Time) ([]Prepared, error) {
	limits = limits.WithDefaults()
	if err := checkName("stream", stream, maxStream); err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, fmt.Errorf("%w: no events", ErrInvalidEvent)
	}
	if len(events) > limits.MaxEvents {
		return nil, fmt.Errorf("%w: %d events in one append, limit %d", ErrTooLarge, len(events), limits.MaxEvents)
	}
	out := make([]Prepared, len(events))
	seen := make(map[string]bool, len(events))
	for i, e := range events {
		e.Stream, e.Revision = stream, 0
		if e.ID == "" {
			id, err := uuid.NewV7()
			if err != nil {
				return nil, fmt.Errorf("event id: %w", err)
			}
			e.ID = id.String()
		} else if err := checkName("id", e.ID, maxID); err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		if seen[e.ID] {
			return nil, fmt.Errorf("%w: event id %s appears twice in one append", ErrInvalidEvent, e.ID)
		}
		seen[e.ID] = true
		if e.Time.IsZero() {
			e.Time = now
		}
		e.Time = e.Time.UTC()
		out[i].Event = e
	}
	// Validation and canonicalization are independent per event: spread
	// large appends over the CPUs; a small one stays in this goroutine.
	workers := min(runtime.GOMAXPROCS(0), len(out)/256+1)
	errs := make([]error, workers)
	work := func(w int) {
		for i := w; i < len(out); i += workers {
			p := &out[i]
			if err := validate(p.Event, limits); err != nil {
				errs[w] = fmt.Errorf("event %d (%s): %w", i, p.Event.ID, err)
				return
			}
			var err error
			if p.prefix, p.suffix, err = envelopeParts(p.Event); err != nil {
				errs[w] = fmt.Errorf("event %d (%s): %w", i, p.Event.ID, err)
				return
			}
		}
	}
	if workers == 1 {
		work(0)
	} else {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() { work(w) })
		}
		wg.Wait()
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if limits.MaxAppendBytes > 0 {
		total := 0
		for _, p := range out {
			total += len(p.prefix) + len(p.suffix) + 20 // the revision's digits, at most
		}
		if total > limits.MaxAppendBytes {
			return nil, fmt.Errorf("%w: %d events of %d bytes in one append, limit %d bytes", ErrTooLarge, len(out), total, limits.MaxAppendBytes)
		}
	}
	return out, nil
}

// Finish returns the record for the prepared event at the given stream
// revision and global position: the envelope and its canonical bytes.
func (p Prepared) Finish(revision, position uint64) Record {
	e := p.Event
	e.Revision = revision
	return Record{Position: position, Event: e, Canonical: join(p.prefix, revision, p.suffix)}
}

func validate(e Event, limits Limits) error {
	if err := checkName("type", e.Type, maxType); err != nil {
		return err
	}
	// RFC 3339 has four-digit years; a time outside them could be written
	// but never read back.
	if y := e.Time.Year(); y < 1 || y > 9999 {
		return fmt.Errorf("%w: time %v is outside years 1-9999", ErrInvalidEvent, e.Time)
	}
	switch e.Actor.Kind {
	case ActorHuman, ActorAgent, ActorService, ActorSystem:
	default:
		return fmt.Errorf("%w: actor kind %q is not human, agent, service or system", ErrInvalidEvent, e.Actor.Kind)
	}
	if err := checkName("actor id", e.Actor.ID, maxID); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{
		{"actor credential", e.Actor.Credential}, {"correlation", e.Correlation}, {"causation", e.Causation},
	} {
		if f.v != "" {
			if err := checkName(f.name, f.v, maxID); err != nil {
				return err
			}
		}
	}
	if len(e.Data) > limits.MaxData {
		return fmt.Errorf("%w: data is %d bytes, limit %d", ErrTooLarge, len(e.Data), limits.MaxData)
	}
	// That it is JSON, and nests at most MaxDepth deep, envelopeParts
	// checks as it canonicalizes: one pass over the data.
	if d := bytes.TrimLeft(e.Data, " \t\r\n"); len(d) == 0 || d[0] != '{' {
		return fmt.Errorf("%w: data must be a JSON object", ErrInvalidEvent)
	}
	return nil
}

// MaxDepth bounds how deep an event's data nests. encoding/json reads at
// most 10,000 levels, and the envelope adds one: data any deeper could be
// written but not read back.
const MaxDepth = 1000

// checkName rejects empty, oversized, non-UTF-8 or control-character values
// for the envelope's identifying strings.
func checkName(what, v string, max int) error {
	switch {
	case v == "":
		return fmt.Errorf("%w: empty %s", ErrInvalidEvent, what)
	case len(v) > max:
		return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalidEvent, what, max)
	case !utf8.ValidString(v):
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidEvent, what)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: %s contains a control character", ErrInvalidEvent, what)
		}
	}
	return nil
}
