package ledger

import (
	"context"
	"fmt"
	"iter"
)

// Store is an append-only event log with per-stream optimistic concurrency.
//
// Append writes events to one stream atomically: all or none. It MUST fail
// with ErrWrongRevision, writing nothing, when the stream is not at expected;
// it MUST return only after the events are durable; positions it assigns MUST
// be gap-free across the whole log and revisions gap-free within the stream.
// An append whose event ids were all already appended to the same stream by
// an earlier append MUST succeed without writing again and return the
// original records (a retried append is idempotent); an id already used
// elsewhere fails with ErrDuplicateEvent.
//
// ReadStream returns the records of one stream from a revision on, in
// revision order; a stream that does not exist reads as empty.
//
// ReadAll yields records in position order from a position on, up to the
// end of the log as it stands while reading, then stops.
//
// Subscribe yields every record from a position on, first those already
// stored, then each new one as it is appended, never skipping or repeating
// one across that switch. It runs until the consumer stops ranging or ctx is
// done; then it yields ctx's error once and stops.
//
// Records a store returns are read-only: their byte slices (Canonical, and
// Event.Data within it) may be shared with other readers and the appender.
type Store interface {
	Append(ctx context.Context, stream string, expected ExpectedRevision, events ...Event) ([]Record, error)
	ReadStream(ctx context.Context, stream string, from uint64) ([]Record, error)
	ReadAll(ctx context.Context, from uint64) iter.Seq2[Record, error]
	Subscribe(ctx context.Context, from uint64) iter.Seq2[Record, error]
}

type expectKind uint8

const (
	expectAny expectKind = iota
	expectNoStream
	expectExists
	expectExact
)

// ExpectedRevision is the state a stream must be in for an append to
// proceed. The zero value is Any.
type ExpectedRevision struct {
	kind expectKind
	rev  uint64
}

var (
	// Any accepts the stream in any state.
	Any = ExpectedRevision{kind: expectAny}
	// NoStream requires that the stream has no events.
	NoStream = ExpectedRevision{kind: expectNoStream}
	// StreamExists requires that the stream has at least one event.
	StreamExists = ExpectedRevision{kind: expectExists}
)

// Exact requires that the stream's last event has revision rev.
func Exact(rev uint64) ExpectedRevision { return ExpectedRevision{kind: expectExact, rev: rev} }

// Allows reports whether a stream whose last revision is last (meaningful
// only when exists) satisfies the expectation.
func (e ExpectedRevision) Allows(last uint64, exists bool) bool {
	switch e.kind {
	case expectNoStream:
		return !exists
	case expectExists:
		return exists
	case expectExact:
		return exists && last == e.rev
	default:
		return true
	}
}

// Revision returns the exact revision and true for Exact expectations.
func (e ExpectedRevision) Revision() (uint64, bool) { return e.rev, e.kind == expectExact }

func (e ExpectedRevision) String() string {
	switch e.kind {
	case expectNoStream:
		return "no stream"
	case expectExists:
		return "stream exists"
	case expectExact:
		return fmt.Sprintf("revision %d", e.rev)
	default:
		return "any"
	}
}

// WrongRevision builds the error a store returns when expected does not
// hold; it wraps ErrWrongRevision.
func WrongRevision(stream string, expected ExpectedRevision, last uint64, exists bool) error {
	actual := "no stream"
	if exists {
		actual = fmt.Sprintf("revision %d", last)
	}
	return fmt.Errorf("append %s: expected %s, stream is at %s: %w", stream, expected, actual, ErrWrongRevision)
}
