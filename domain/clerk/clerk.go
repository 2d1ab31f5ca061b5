// Package clerk is Docket's application service. Its only I/O goes through
// the ledger.Store it is given: it loads a stream's state
// from a ledger.Store, asks the domain for a decision, and appends the
// decision's events with optimistic concurrency. When another writer got
// there first (ledger.ErrWrongRevision) it reloads and decides again, so a
// stale decision is never appended.
package clerk

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/evidence-parity/docket/domain"
	"github.com/evidence-parity/docket/ledger"
)

// Config configures a Clerk.
type Config struct {
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Rand is the source of secrets (default crypto/rand.Reader).
	Rand io.Reader
	// Policy holds the domain's tunables (zero fields take DefaultPolicy).
	Policy domain.Policy
}

// Clerk records Evidence Parity commands in a ledger.
type Clerk struct {
	store  ledger.Store
	cache  streamCache
	now    func() time.Time
	rand   io.Reader
	policy domain.Policy
}

// New returns a Clerk over store.
func New(store ledger.Store, cfg Config) *Clerk {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	d := domain.DefaultPolicy
	if cfg.Policy.CredentialTTL == 0 {
		cfg.Policy.CredentialTTL = d.CredentialTTL
	}
	if cfg.Policy.EmergencyWindow == 0 {
		cfg.Policy.EmergencyWindow = d.EmergencyWindow
	}
	if cfg.Policy.ReviewBytesPerSecond == 0 {
		cfg.Policy.ReviewBytesPerSecond = d.ReviewBytesPerSecond
	}
	// Times in UTC without a monotonic reading: what an event's JSON
	// encoding keeps, so an event decided and applied here equals the one
	// read back (see updateEvents).
	clock := cfg.Now
	now := func() time.Time { return clock().UTC().Round(0) }
	return &Clerk{store: store, now: now, rand: cfg.Rand, policy: cfg.Policy}
}

// maxAttempts bounds decide-append rounds lost to concurrent writers.
const maxAttempts = 16

// state is a domain aggregate folded from one stream. Clone must copy
// whatever Apply changes, so a folded state can be kept and copies of it
// handed out.
type state[S any] interface {
	*S
	Apply(domain.Event)
	Clone() *S
}

// load returns a stream's state, folded into a copy the caller may change,
// and the revision an append must expect. The folded state is cached: the
// log is append-only, so only events after it are read and applied.
func load[S any, P state[S]](ctx context.Context, k *Clerk, stream string) (*S, ledger.ExpectedRevision, error) {
	s, rev, err := peek[S, P](ctx, k, stream)
	if err != nil {
		return nil, ledger.Any, err
	}
	return P(s).Clone(), rev, nil
}

// peek is load for a caller that only reads: the state it returns is the
// cache's own and must not be changed.
func peek[S any, P state[S]](ctx context.Context, k *Clerk, stream string) (*S, ledger.ExpectedRevision, error) {
	s, next, ok := cachedState[S](&k.cache, stream)
	if !ok {
		s, next = new(S), 0
	}
	recs, err := k.store.ReadStream(ctx, stream, next)
	if err != nil {
		return nil, ledger.Any, err
	}
	if len(recs) > 0 {
		if s, next, err = extend[S, P](&k.cache, stream, s, next, recs); err != nil {
			return nil, ledger.Any, err
		}
	}
	if next == 0 {
		return s, ledger.NoStream, nil
	}
	return s, ledger.Exact(next - 1), nil
}

// extend applies recs, which must follow revision next-1, to a copy of s
// (folded from next events), caches the result, and returns it.
func extend[S any, P state[S]](c *streamCache, stream string, s *S, next uint64, recs []ledger.Record) (*S, uint64, error) {
	s = P(s).Clone()
	for _, r := range recs {
		if r.Event.Revision != next {
			return nil, 0, fmt.Errorf("%s: revision %d follows %d events", stream, r.Event.Revision, next)
		}
		e, err := domain.Decode(r.Event.Type, r.Event.Data)
		if err != nil {
			return nil, 0, fmt.Errorf("%s at revision %d: %w", stream, r.Event.Revision, err)
		}
		P(s).Apply(e)
		next++
	}
	c.put(stream, s, next)
	return s, next, nil
}

// streamCache keeps the folded states of recently used streams. A cached
// state is never changed: loads fold new events into a copy.
type streamCache struct {
	mu      sync.Mutex
	streams map[string]folded
}

// folded is a state (a *S) folded from a stream's first next events.
type folded struct {
	state any
	next  uint64
}

// maxCachedStreams bounds the cache; past it, it starts over.
const maxCachedStreams = 50_000

// cachedState returns the cached state of stream, if it holds an *S.
func cachedState[S any](c *streamCache, stream string) (*S, uint64, bool) {
	c.mu.Lock()
	f := c.streams[stream]
	c.mu.Unlock()
	s, ok := f.state.(*S)
	return s, f.next, ok
}

// put caches s, folded from next events, unless a longer fold is cached.
func (c *streamCache) put(stream string, s any, next uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.streams == nil || len(c.streams) > maxCachedStreams {
		c.streams = map[string]folded{}
	}
	if f, ok := c.streams[stream]; !ok || next > f.next {
		c.streams[stream] = folded{state: s, next: next}
	}
}

// update loads stream, decides, appends with the loaded revision, and on a
// lost race does it all again. A decision's events are appended even when
// it also returns an error (recorded refusals); the error is returned after.
func update[S any, P state[S]](ctx context.Context, k *Clerk, stream, correlation string, actor ledger.Actor,
	decide func(s *S, now time.Time) ([]domain.Event, error)) ([]ledger.Record, error) {
	return updateAs[S, P](ctx, k, stream, correlation, func(*S) ledger.Actor { return actor }, decide)
}

// updateAs is update for commands whose actor is read from the state (a
// session credential acts as its session's agent).
func updateAs[S any, P state[S]](ctx context.Context, k *Clerk, stream, correlation string, actor func(*S) ledger.Actor,
	decide func(s *S, now time.Time) ([]domain.Event, error)) ([]ledger.Record, error) {
	recs, _, err := updateEvents[S, P](ctx, k, stream, correlation, actor, decide)
	return recs, err
}

// updateEvents is updateAs that also returns the appended events.
//
// The state a decision was made on is the loaded state, a private copy at
// exactly the revision the append expected. So once the append succeeds,
// the decided events are applied to that copy and it is cached as the
// stream's state: no re-read and no re-decode of what was just written.
// That is the state folded from the events as stored
// (TestCachedStateIsTheStoredState) because
//   - deciders do not change the state they are given, except by applying
//     events they return (overdue), which applying again leaves as it is;
//   - the events hold exactly what their JSON encoding keeps: the clock
//     gives UTC times without monotonic readings, and commands pass an
//     empty slice that an event omits when empty (omitempty) as nil;
//   - the events share no memory with the caller, who may change its
//     slices after the call: commands copy the slices they are given.
func updateEvents[S any, P state[S]](ctx context.Context, k *Clerk, stream, correlation string, actor func(*S) ledger.Actor,
	decide func(s *S, now time.Time) ([]domain.Event, error)) ([]ledger.Record, []domain.Event, error) {
	for range maxAttempts {
		s, expected, err := load[S, P](ctx, k, stream)
		if err != nil {
			return nil, nil, err
		}
		events, derr := decide(s, k.now())
		if len(events) == 0 {
			return nil, nil, derr
		}
		recs, err := k.append(ctx, stream, expected, actor(s), correlation, events)
		if errors.Is(err, ledger.ErrWrongRevision) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		next := uint64(0) // load expects NoStream or Exact(next-1)
		if last, ok := expected.Revision(); ok {
			next = last + 1
		}
		if len(recs) == len(events) && recs[0].Event.Revision == next {
			for _, e := range events {
				P(s).Apply(e)
			}
			k.cache.put(stream, s, next+uint64(len(events)))
		}
		return recs, events, derr
	}
	return nil, nil, fmt.Errorf("%w: %s changed under %d attempts in a row", domain.ErrConflict, stream, maxAttempts)
}

// omitEmpty returns s, or nil if s is empty: what an event field tagged
// omitempty holds once read back.
func omitEmpty[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return s
}

func (k *Clerk) append(ctx context.Context, stream string, expected ledger.ExpectedRevision, actor ledger.Actor, correlation string, events []domain.Event) ([]ledger.Record, error) {
	out := make([]ledger.Event, len(events))
	for i, e := range events {
		data, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", e.EventType(), err)
		}
		out[i] = ledger.Event{Type: e.EventType(), Actor: actor, Correlation: correlation, Data: data}
	}
	return k.store.Append(ctx, stream, expected, out...)
}

// newID returns prefix + a UUIDv7.
func newID(prefix string) string { return prefix + uuid.Must(uuid.NewV7()).String() }

// secret returns a new secret for ref and its hash.
func (k *Clerk) secret(prefix, ref string) (string, string, error) {
	b := make([]byte, 32)
	if _, err := io.ReadFull(k.rand, b); err != nil {
		return "", "", fmt.Errorf("random secret: %w", err)
	}
	s := domain.NewSecret(prefix, ref, b)
	return s, domain.HashSecret(s), nil
}

// Now is the clerk's clock: the time its decisions are taken at.
func (k *Clerk) Now() time.Time { return k.now() }

// Policy is the policy the clerk decides by.
func (k *Clerk) Policy() domain.Policy { return k.policy }

func ledgerActor(a domain.Actor) ledger.Actor {
	switch a.Kind {
	case domain.ActorHuman:
		return ledger.Actor{Kind: ledger.ActorHuman, ID: a.ID, Credential: a.Credential}
	case domain.ActorAgent:
		return ledger.Actor{Kind: ledger.ActorAgent, ID: a.ID, Credential: a.Credential}
	}
	return ledger.Actor{Kind: ledger.ActorSystem, ID: "docket"}
}

// System is the actor for commands Docket's operator runs from the CLI
// (bootstrapping principals and agents).
var System = domain.Actor{Kind: "system", ID: "docket", AuthMethod: "local"}

func checkID(what, id string) error {
	if id == "" || strings.ContainsAny(id, ". \t\n/") || len(id) > 128 {
		return fmt.Errorf("%w: %s id %q must be 1-128 characters without dots, slashes or spaces", domain.ErrInvalidInput, what, id)
	}
	return nil
}

// checkPrincipalID is checkID for principals, whose ids may be email
// addresses (so OIDC email claims map to them); a token's secret part never
// holds a dot, so the last dot still separates it.
func checkPrincipalID(id string) error {
	if id == "" || strings.ContainsAny(id, " \t\n/") || len(id) > 128 {
		return fmt.Errorf("%w: principal id %q must be 1-128 characters without slashes or spaces", domain.ErrInvalidInput, id)
	}
	return nil
}
