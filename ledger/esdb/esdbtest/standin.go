// Package esdbtest is a STAND-IN for EventStoreDB / KurrentDB, for tests
// only. It is not EventStoreDB: it serves, over real gRPC on 127.0.0.1, the
// parts of the server's v1 protocol that the KurrentDB Go client
// (github.com/kurrent-io/KurrentDB-Client-Go) calls for Docket, built on the
// generated server stubs shipped in that module. EventStoreDB cannot run on
// the machines CI uses (no container engine, no .NET); with DOCKET_ESDB_URL
// set, the same tests run against a real server instead.
//
// What it models (as EventStoreDB 24.10.4 and later 24.10.x document and
// behave; it reports version 24.10.5):
//   - ServerFeatures.GetSupportedMethods (no batch append, no v2
//     multi-stream append, so the client uses Streams.Append).
//   - gRPC transport: the Streams receive limit of 16 MiB less 10,000
//     bytes (TFConsts.EffectiveMaxLogRecordSize); keepalive as Kestrel
//     with the server's defaults: pings to the client after 10 s idle,
//     10 s to ack, and client pings accepted at any rate, with or without
//     an open stream (grpc-go's default would answer the client's 10 s
//     pings with GOAWAY too_many_pings).
//   - Streams.Append with expected stream states any, no_stream,
//     stream_exists and an exact revision, decided as the server's
//     IndexWriter.CheckCommit does: WrongExpectedVersion results;
//     idempotent appends by event id (a repeated append whose ids are in
//     the stream, where the expectation places them for no_stream or a
//     revision, succeeds without writing; ids only partly there fail with
//     WrongExpectedVersion, as the server's "corrupted idempotency" does);
//     appends to a tombstoned stream fail with "stream-deleted".
//   - Append size, checked event by event as the events arrive, as
//     Streams.Append does: each event counts data + custom metadata + 2
//     bytes per UTF-16 code unit of its type (Event.SizeOnDisk); once the
//     running total exceeds Server.MaxAppendSize (default 1,048,576, the
//     server's MaxAppendSize) the call ends with InvalidArgument "Maximum
//     Append Size of N Exceeded." and trailers exception:
//     maximum-append-size-exceeded, maximum-append-size: N. Nothing is
//     written. The v1 append carries no error details, so the Go client
//     returns ErrorCodeUnknown wrapping that status, or, when the call
//     ends while it is still sending, an EOF from sending. An event
//     without "type" or "content-type" metadata fails with InvalidArgument
//     (missing-required-metadata-property).
//   - Streams.Read of a stream (forwards/backwards, from start, end or a
//     revision, with a count), StreamNotFound for a stream never written
//     or soft-deleted, and the "stream-deleted" error for a tombstoned one.
//   - Streams.Read of $all (forwards/backwards, from start, end or a
//     position, with a count, optionally filtered by stream-name prefix or
//     regex, or event-type prefix or regex), and subscriptions (to a stream
//     or to $all, filtered or not, from start, end or exclusively after a
//     position): confirmation, catch-up, then live events.
//   - Streams.Delete, a soft delete as the server's StorageWriterService
//     does it: a $metadata event {"$tb": 2^63-1} written to "$$<stream>"
//     (replacing its metadata; it shows in $all), after the same
//     expected-state check as an append; a stream with neither events nor
//     metadata cannot be deleted (WrongExpectedVersion). A soft-deleted
//     stream reads as not found and keeps its last revision L: appends
//     expecting revision L, any or no_stream succeed and recreate it,
//     continuing at L+1, by writing its metadata again with $tb = L+1 (its
//     old events stay hidden); appends expecting stream_exists fail with
//     "stream-deleted"; other revisions get WrongExpectedVersion with
//     current revision L. Writing its metadata also recreates it, with
//     $tb = L+1.
//   - Streams.Tombstone (hard delete: a $streamDeleted event at revision
//     2^63-1; reads and writes fail). Deletes and tombstones that fail the
//     expected-state check get FailedPrecondition with trailer exception:
//     wrong-expected-version.
//   - Stream metadata written to "$$<stream>", replacing the previous
//     metadata, with the $tb (truncate before) key: events before it are
//     hidden from stream reads. Metadata streams have $maxCount 1 (only
//     their last event reads back), as ESConsts.MetaStreamMaxCount.
//   - Deleted, truncated and tombstoned events stay readable in $all until
//     a scavenge, as in EventStoreDB; Scavenge removes them (a Go method,
//     not an RPC: EventStoreDB starts scavenges through its operations API).
//   - Commit and prepare positions that grow but are not contiguous.
//
// What it does not model: clusters, gossip, leader election and NotLeader
// redirects (use single-node URLs, esdb://127.0.0.1:PORT?tls=false); TLS;
// authentication and ACLs ($acl, $d, $mw are stored like any metadata but
// never enforced); $maxAge and $maxCount other than the metadata streams';
// MaxAppendEventSize (unlimited by default in 24.10.4+) and 24.10.0-3's
// size count (data only, from an operator-precedence bug); the bounded
// cache the server checks any/stream_exists idempotency against (here
// every event id of the stream counts, however old); persistent
// subscriptions; projections and system streams such as $ce-/$et-;
// BatchAppend and the v2 streams API (its AppendRecords size errors with
// rich details); links and resolveLinkTos; subscription checkpoints,
// caught-up and fell-behind messages; durability (everything is in memory
// and survives Restart but not the process).
package esdbtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/serverfeatures"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// tombstoneRevision is the revision EventStoreDB gives a tombstone event
// (EventNumber.DeletedStream); as a stream's $tb it marks a soft delete.
const tombstoneRevision = math.MaxInt64

const (
	// DefaultMaxAppendSize is EventStoreDB 24.10's default MaxAppendSize
	// (ClusterVNodeOptions.Application.MaxAppendSize = 1_024 * 1_024).
	DefaultMaxAppendSize = 1 << 20

	// maxRecvMsgSize is the Streams service's gRPC receive limit,
	// TFConsts.EffectiveMaxLogRecordSize (16 MiB less 10,000 bytes of
	// record overhead); grpc-go's default would be 4 MiB.
	maxRecvMsgSize = 16<<20 - 10_000

	// keepAliveTime and keepAliveTimeout are the server's defaults for
	// --keep-alive-interval and --keep-alive-timeout (Kestrel's
	// Http2.KeepAlivePingDelay and KeepAlivePingTimeout).
	keepAliveTime    = 10 * time.Second
	keepAliveTimeout = 10 * time.Second
)

type event struct {
	stream   string
	revision uint64
	id       uuid.UUID
	meta     map[string]string
	custom   []byte
	data     []byte
	position uint64 // commit = prepare position
}

type stream struct {
	last       int64  // last revision, -1 when never written
	tb         uint64 // truncate before, from the latest metadata: revisions below are hidden
	tombstoned bool
	meta       bool     // a "$$" metadata stream: $maxCount 1, only its last event shows
	events     []*event // every event ever written, in revision order
}

// softDeleted says whether the stream's metadata marks it soft-deleted
// ($tb = 2^63-1), as the server's IndexWriter.IsSoftDeleted does.
func (st *stream) softDeleted() bool { return st.tb == tombstoneRevision }

// Server is the stand-in. Start it with Start; its URL is what the client
// connects to.
type Server struct {
	// MaxAppendSize bounds the total size of one append, as the server's
	// MaxAppendSize option does: the sum over its events of data, custom
	// metadata and twice the event type's length in UTF-16 code units.
	// Start sets DefaultMaxAppendSize (24.10's default; KurrentDB 25.1
	// raised it to 256 MiB); change it only while no append is in flight.
	MaxAppendSize int

	mu      sync.Mutex
	log     []*event
	streams map[string]*stream
	nextPos uint64
	notify  chan struct{} // closed and replaced after every write

	addr string
	srv  *grpc.Server
	subs map[*subscription]struct{}
}

type subscription struct{ cancel context.CancelFunc }

// Start starts a stand-in on a free port of 127.0.0.1.
func Start() (*Server, error) {
	s := &Server{MaxAppendSize: DefaultMaxAppendSize, streams: map[string]*stream{}, nextPos: 1024, notify: make(chan struct{}), subs: map[*subscription]struct{}{}}
	if err := s.listen("127.0.0.1:0"); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) listen(addr string) error {
	var lis net.Listener
	var err error
	// After Stop, the port may linger briefly in the kernel.
	for i := 0; i < 50; i++ {
		if lis, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("stand-in listen %s: %w", addr, err)
	}
	srv := grpc.NewServer(
		grpc.MaxRecvMsgSize(maxRecvMsgSize),
		// Kestrel answers pings at any rate; grpc-go's default policy
		// (at most one ping per 5 minutes, none without an open stream)
		// would send the client's 10 s keepalive pings GOAWAY
		// too_many_pings and drop the connection.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Nanosecond, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: keepAliveTime, Timeout: keepAliveTimeout}),
	)
	api.RegisterStreamsServer(srv, streamsService{s: s})
	serverfeatures.RegisterServerFeaturesServer(srv, featuresService{})
	s.mu.Lock()
	s.addr, s.srv = lis.Addr().String(), srv
	s.mu.Unlock()
	go srv.Serve(lis)
	return nil
}

// Addr is the host:port the stand-in listens on.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// URL is a single-node connection string for the stand-in.
func (s *Server) URL() string { return "esdb://" + s.Addr() + "?tls=false" }

// Stop stops serving, dropping every connection and subscription; the
// data stays for Restart.
func (s *Server) Stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Stop()
	}
}

// Restart serves the same data again on the same address, as a node that
// came back (or a new leader at the same address) would.
func (s *Server) Restart() error {
	s.Stop()
	return s.listen(s.Addr())
}

// DropSubscriptions ends every open subscription with Unavailable, as a
// leader change does, leaving the server up.
func (s *Server) DropSubscriptions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sub := range s.subs {
		sub.cancel()
	}
}

// Scavenge removes from $all every event its stream no longer shows
// (soft-deleted, truncated by $tb, or tombstoned, except the tombstone),
// as an EventStoreDB scavenge does.
func (s *Server) Scavenge() {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.log[:0]
	for _, e := range s.log {
		if st := s.streams[e.stream]; st != nil && !st.visible(e) && e.revision != tombstoneRevision {
			continue
		}
		kept = append(kept, e)
	}
	s.log = kept
}

func (st *stream) visible(e *event) bool {
	if st.meta && int64(e.revision) != st.last {
		return false // ESConsts.MetaStreamMaxCount = 1
	}
	return !st.tombstoned && e.revision >= st.tb
}

func (s *Server) stream(name string) *stream {
	st := s.streams[name]
	if st == nil {
		st = &stream{last: -1, meta: strings.HasPrefix(name, "$$")}
		s.streams[name] = st
	}
	return st
}

// write appends events to a stream; s.mu is held.
func (s *Server) write(name string, evs []*event) {
	st := s.stream(name)
	for _, e := range evs {
		st.last++
		e.stream, e.revision, e.position = name, uint64(st.last), s.nextPos
		s.nextPos += uint64(128 + len(e.data) + len(e.custom))
		if e.meta == nil {
			e.meta = map[string]string{}
		}
		e.meta["created"] = strconv.FormatInt(time.Now().UnixNano()/100, 10)
		st.events = append(st.events, e)
		s.log = append(s.log, e)
	}
	if strings.HasPrefix(name, "$$") && len(evs) > 0 {
		s.applyMetadata(strings.TrimPrefix(name, "$$"), evs[len(evs)-1])
	}
	close(s.notify)
	s.notify = make(chan struct{})
}

// applyMetadata makes e a stream's metadata. Metadata replaces, it does
// not merge: without a $tb (or unreadable) nothing is truncated.
func (s *Server) applyMetadata(name string, e *event) {
	st := s.stream(name)
	st.tb = 0
	var m map[string]json.RawMessage
	if json.Unmarshal(e.data, &m) != nil {
		return
	}
	if tb, err := strconv.ParseInt(string(m["$tb"]), 10, 64); err == nil && tb >= 0 {
		st.tb = uint64(tb)
	}
}

// writeMetadata appends a $metadata event to "$$<name>"; s.mu is held.
func (s *Server) writeMetadata(name string, data []byte) *event {
	e := &event{id: uuid.New(), data: data, meta: map[string]string{"type": "$metadata", "content-type": "application/json"}}
	s.write("$$"+name, []*event{e})
	return e
}

// softUndelete recreates a soft-deleted stream, as the server's
// StorageWriterService.SoftUndeleteStream does: it rewrites the stream's
// latest metadata with $tb = from, keeping its other keys, so the old
// revisions stay hidden and the stream continues after them. Metadata
// that is not a JSON object is left alone (the stream stays deleted, as
// on the server). s.mu is held.
func (s *Server) softUndelete(name string, from int64) {
	var raw []byte
	if ms := s.streams["$$"+name]; ms != nil && len(ms.events) > 0 {
		raw = ms.events[len(ms.events)-1].data
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || m == nil {
		return
	}
	m["$tb"] = json.RawMessage(strconv.FormatInt(from, 10))
	data, err := json.Marshal(m)
	if err != nil {
		return
	}
	s.writeMetadata(name, data)
}

type featuresService struct {
	serverfeatures.UnimplementedServerFeaturesServer
}

func (featuresService) GetSupportedMethods(context.Context, *shared.Empty) (*serverfeatures.SupportedMethods, error) {
	var ms []*serverfeatures.SupportedMethod
	for _, m := range []string{"read", "append", "delete", "tombstone"} {
		ms = append(ms, &serverfeatures.SupportedMethod{MethodName: m, ServiceName: "event_store.client.streams.streams"})
	}
	return &serverfeatures.SupportedMethods{Methods: ms, EventStoreServerVersion: "24.10.5"}, nil
}

type streamsService struct {
	api.UnimplementedStreamsServer
	s *Server
}

// streamDeleted is the server's RpcExceptions.StreamDeleted.
func streamDeleted(ctx context.Context, name string) error {
	grpc.SetTrailer(ctx, metadata.Pairs("exception", "stream-deleted", "stream-name", name))
	return status.Errorf(codes.FailedPrecondition, "Event stream '%s' is deleted.", name)
}

// maxAppendSizeExceeded is the server's RpcExceptions.MaxAppendSizeExceeded.
func maxAppendSizeExceeded(ctx context.Context, max int) error {
	grpc.SetTrailer(ctx, metadata.Pairs("exception", "maximum-append-size-exceeded", "maximum-append-size", strconv.Itoa(max)))
	return status.Errorf(codes.InvalidArgument, "Maximum Append Size of %d Exceeded.", max)
}

// missingMetadata is the server's RpcExceptions.RequiredMetadataPropertyMissing.
func missingMetadata(ctx context.Context, key string) error {
	grpc.SetTrailer(ctx, metadata.Pairs("exception", "missing-required-metadata-property", "required-metadata-properties", "type,content-type"))
	return status.Errorf(codes.InvalidArgument, "Required Metadata Property '%s' is missing", key)
}

// wrongExpectedVersion is the server's RpcExceptions.WrongExpectedVersion,
// which deletes and tombstones fail with (appends answer with a result).
func wrongExpectedVersion(ctx context.Context, op, name string, exp expectation, current int64) error {
	grpc.SetTrailer(ctx, metadata.Pairs("exception", "wrong-expected-version", "stream-name", name,
		"expected-version", strconv.FormatInt(int64(exp), 10), "actual-version", strconv.FormatInt(current, 10)))
	return status.Errorf(codes.FailedPrecondition, "%s failed due to WrongExpectedVersion. Stream: %s, Expected version: %d, Actual version: %d", op, name, int64(exp), current)
}

// eventSize is what an event counts towards MaxAppendSize: the server's
// Event.SizeOnDisk, data + custom metadata + 2 bytes per UTF-16 code unit
// of the event type (as fixed in 24.10.4; 24.10.0-3 counted only data).
func eventSize(m *api.AppendReq_ProposedMessage, eventType string) int {
	n := 0
	for _, r := range eventType {
		n += utf16.RuneLen(r)
	}
	return len(m.Data) + len(m.CustomMetadata) + 2*n
}

func uuidOf(u *shared.UUID) uuid.UUID {
	if st := u.GetStructured(); st != nil {
		var b [16]byte
		for i := 0; i < 8; i++ {
			b[i] = byte(uint64(st.MostSignificantBits) >> (56 - 8*i))
			b[8+i] = byte(uint64(st.LeastSignificantBits) >> (56 - 8*i))
		}
		return b
	}
	id, _ := uuid.Parse(u.GetString_())
	return id
}

func protoUUID(id uuid.UUID) *shared.UUID {
	var most, least uint64
	for i := 0; i < 8; i++ {
		most = most<<8 | uint64(id[i])
		least = least<<8 | uint64(id[8+i])
	}
	return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{MostSignificantBits: int64(most), LeastSignificantBits: int64(least)}}}
}

// expectation is an expected stream state: -2 any, -1 no stream, -4
// stream exists, else a revision.
type expectation int64

const (
	expectAny      expectation = -2
	expectNoStream expectation = -1
	expectExists   expectation = -4
)

func (x expectation) wrong(current int64) *api.AppendResp {
	w := &api.AppendResp_WrongExpectedVersion{}
	if current < 0 {
		w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &shared.Empty{}}
	} else {
		w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(current)}
	}
	switch x {
	case expectAny:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedAny{ExpectedAny: &shared.Empty{}}
	case expectNoStream:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &shared.Empty{}}
	case expectExists:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: &shared.Empty{}}
	default:
		w.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: uint64(x)}
	}
	return &api.AppendResp{Result: &api.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: w}}
}

func success(last int64, pos uint64) *api.AppendResp {
	r := &api.AppendResp_Success{PositionOption: &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{CommitPosition: pos, PreparePosition: pos}}}
	if last < 0 {
		r.CurrentRevisionOption = &api.AppendResp_Success_NoStream{NoStream: &shared.Empty{}}
	} else {
		r.CurrentRevisionOption = &api.AppendResp_Success_CurrentRevision{CurrentRevision: uint64(last)}
	}
	return &api.AppendResp{Result: &api.AppendResp_Success_{Success: r}}
}

type decision int

const (
	commitOK decision = iota
	commitWrongVersion
	commitDeleted
	commitIdempotent
)

// commitCheck is the server's CommitCheckResult.
type commitCheck struct {
	decision
	current     int64 // the stream's last revision, -1 for none
	first, last int64 // the revisions already holding the events, when idempotent
	softDeleted bool  // the stream is soft-deleted: a write recreates it
}

// checkCommit decides a write of events with ids to a stream at an
// expected state as the server's IndexWriter.CheckCommit does; its
// CorruptedIdempotency is folded into WrongExpectedVersion, which is what
// StorageWriterService replies for it. s.mu is held.
//
// A soft-deleted stream keeps its last revision L: an exact expected
// revision L is accepted (and continues at L+1), as are Any and
// NoStream; StreamExists fails with StreamDeleted.
func (s *Server) checkCommit(name string, exp expectation, ids []uuid.UUID) commitCheck {
	st := s.stream(name)
	cur := st.last
	if st.tombstoned {
		return commitCheck{decision: commitDeleted, current: tombstoneRevision}
	}
	soft := st.softDeleted()
	ok := commitCheck{decision: commitOK, current: cur, softDeleted: soft}
	wrong := commitCheck{decision: commitWrongVersion, current: cur}
	if exp == expectExists {
		if soft {
			return commitCheck{decision: commitDeleted, current: cur}
		}
		if cur < 0 {
			if ms := s.streams["$$"+name]; ms == nil || ms.last < 0 {
				return wrong
			}
		}
	}
	if exp == expectAny || exp == expectExists {
		// Idempotency by event id, wherever in the stream the ids are.
		if len(ids) == 0 {
			return ok
		}
		c := commitCheck{decision: commitIdempotent, current: cur}
		for i, id := range ids {
			rev := int64(-1)
			for j := len(st.events) - 1; j >= 0; j-- {
				if st.events[j].id == id {
					rev = int64(j)
					break
				}
			}
			if rev < 0 {
				if i == 0 {
					return ok
				}
				return wrong // corrupted idempotency
			}
			if i == 0 {
				c.first = rev
			}
			c.last = rev
		}
		return c
	}
	if int64(exp) < cur {
		// Idempotency: the ids at the revisions after the expected one.
		rev := int64(exp)
		for i, id := range ids {
			rev++
			if rev < int64(len(st.events)) && st.events[rev].id == id {
				continue
			}
			if i > 0 {
				return wrong // corrupted idempotency
			}
			if exp == expectNoStream && soft {
				return ok
			}
			return wrong
		}
		if len(ids) == 0 {
			return wrong
		}
		return commitCheck{decision: commitIdempotent, current: cur, first: int64(exp) + 1, last: rev}
	}
	if int64(exp) > cur {
		return wrong
	}
	return ok // expected == current
}

func (v streamsService) Append(srv grpc.ClientStreamingServer[api.AppendReq, api.AppendResp]) error {
	ctx := srv.Context()
	first, err := srv.Recv()
	if err != nil {
		return err
	}
	opts := first.GetOptions()
	if opts == nil {
		return status.Error(codes.InvalidArgument, "append must start with options")
	}
	name := string(opts.GetStreamIdentifier().GetStreamName())
	var exp expectation
	switch o := opts.ExpectedStreamRevision.(type) {
	case *api.AppendReq_Options_Revision:
		exp = expectation(o.Revision)
	case *api.AppendReq_Options_NoStream:
		exp = expectNoStream
	case *api.AppendReq_Options_StreamExists:
		exp = expectExists
	default:
		exp = expectAny
	}
	s := v.s
	maxSize := s.MaxAppendSize
	var evs []*event
	var ids []uuid.UUID
	size := 0
	for {
		req, err := srv.Recv()
		if err != nil {
			if errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled {
				return err
			}
			break // io.EOF: the client closed its side
		}
		m := req.GetProposedMessage()
		if m == nil {
			return status.Error(codes.InvalidArgument, "expected a proposed message")
		}
		// As Streams.Append does, event by event while receiving: the
		// call may end before the client has sent all its events.
		eventType, ok := m.Metadata["type"]
		if !ok {
			return missingMetadata(ctx, "type")
		}
		if _, ok := m.Metadata["content-type"]; !ok {
			return missingMetadata(ctx, "content-type")
		}
		if size += eventSize(m, eventType); size > maxSize {
			return maxAppendSizeExceeded(ctx, maxSize)
		}
		meta := map[string]string{}
		for k, val := range m.Metadata {
			meta[k] = val
		}
		e := &event{id: uuidOf(m.Id), meta: meta, custom: m.CustomMetadata, data: m.Data}
		evs = append(evs, e)
		ids = append(ids, e.id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.checkCommit(name, exp, ids)
	st := s.streams[name]
	switch c.decision {
	case commitDeleted:
		return streamDeleted(ctx, name)
	case commitWrongVersion:
		return srv.SendAndClose(exp.wrong(c.current))
	case commitIdempotent:
		// The server answers as if written, with the earlier write's
		// last revision and position.
		return srv.SendAndClose(success(c.last, st.events[c.last].position))
	}
	if len(evs) == 0 {
		return srv.SendAndClose(success(st.last, 0))
	}
	// A write to the metadata stream of a soft-deleted stream recreates
	// that stream too (StorageWriterService's SoftUndeleteMetastream).
	var undeleteOf string
	if orig, ok := strings.CutPrefix(name, "$$"); ok {
		if o := s.streams[orig]; o != nil && o.softDeleted() && !o.tombstoned {
			undeleteOf = orig
		}
	}
	s.write(name, evs)
	if c.softDeleted {
		s.softUndelete(name, c.current+1)
	}
	if undeleteOf != "" {
		s.softUndelete(undeleteOf, s.streams[undeleteOf].last+1)
	}
	last := evs[len(evs)-1]
	return srv.SendAndClose(success(int64(last.revision), last.position))
}

// deleteCheck checks a delete or tombstone as the server does (the same
// CheckCommit, with the delete's own new event id) and returns the error
// the client gets, if any. s.mu is held.
func (s *Server) deleteCheck(ctx context.Context, name string, exp expectation) error {
	c := s.checkCommit(name, exp, []uuid.UUID{uuid.New()})
	switch c.decision {
	case commitDeleted:
		return streamDeleted(ctx, name)
	case commitWrongVersion:
		return wrongExpectedVersion(ctx, "Delete", name, exp, c.current)
	}
	return nil
}

func deleteExpectation(rev uint64, opt any) expectation {
	switch opt.(type) {
	case *api.DeleteReq_Options_Revision, *api.TombstoneReq_Options_Revision:
		return expectation(rev)
	case *api.DeleteReq_Options_NoStream, *api.TombstoneReq_Options_NoStream:
		return expectNoStream
	case *api.DeleteReq_Options_StreamExists, *api.TombstoneReq_Options_StreamExists:
		return expectExists
	}
	return expectAny
}

// Delete soft-deletes a stream as the server's StorageWriterService does:
// it writes {"$tb": 2^63-1} as the stream's metadata (replacing any
// other metadata), to "$$<stream>", an event $all shows. A stream with
// neither events nor metadata cannot be deleted (WrongExpectedVersion).
func (v streamsService) Delete(ctx context.Context, req *api.DeleteReq) (*api.DeleteResp, error) {
	o := req.GetOptions()
	name := string(o.GetStreamIdentifier().GetStreamName())
	exp := deleteExpectation(o.GetRevision(), o.ExpectedStreamRevision)
	s := v.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.deleteCheck(ctx, name, exp); err != nil {
		return nil, err
	}
	if s.streams[name].last < 0 {
		if ms := s.streams["$$"+name]; ms == nil || ms.last < 0 {
			return nil, wrongExpectedVersion(ctx, "Delete", name, exp, -1)
		}
	}
	e := s.writeMetadata(name, []byte(`{"$tb":`+strconv.FormatInt(tombstoneRevision, 10)+`}`))
	return &api.DeleteResp{PositionOption: &api.DeleteResp_Position_{Position: &api.DeleteResp_Position{CommitPosition: e.position, PreparePosition: e.position}}}, nil
}

func (v streamsService) Tombstone(ctx context.Context, req *api.TombstoneReq) (*api.TombstoneResp, error) {
	o := req.GetOptions()
	name := string(o.GetStreamIdentifier().GetStreamName())
	exp := deleteExpectation(o.GetRevision(), o.ExpectedStreamRevision)
	s := v.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.deleteCheck(ctx, name, exp); err != nil {
		return nil, err
	}
	st := s.streams[name]
	e := &event{stream: name, revision: tombstoneRevision, id: uuid.New(), position: s.nextPos,
		meta: map[string]string{"type": "$streamDeleted", "content-type": "application/octet-stream", "created": strconv.FormatInt(time.Now().UnixNano()/100, 10)}}
	s.nextPos += 128
	s.log = append(s.log, e)
	st.tombstoned = true
	close(s.notify)
	s.notify = make(chan struct{})
	return &api.TombstoneResp{PositionOption: &api.TombstoneResp_Position_{Position: &api.TombstoneResp_Position{CommitPosition: e.position, PreparePosition: e.position}}}, nil
}

func readEvent(e *event) *api.ReadResp {
	return &api.ReadResp{Content: &api.ReadResp_Event{Event: &api.ReadResp_ReadEvent{
		Event: &api.ReadResp_ReadEvent_RecordedEvent{
			Id:               protoUUID(e.id),
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(e.stream)},
			StreamRevision:   e.revision,
			PreparePosition:  e.position,
			CommitPosition:   e.position,
			Metadata:         e.meta,
			CustomMetadata:   e.custom,
			Data:             e.data,
		},
		Position: &api.ReadResp_ReadEvent_CommitPosition{CommitPosition: e.position},
	}}}
}

// filter says which $all events a read or subscription yields.
type filter func(*event) bool

func newFilter(o *api.ReadReq_Options) (filter, error) {
	f := o.GetFilter()
	if f == nil {
		return func(*event) bool { return true }, nil
	}
	expr, byType := f.GetStreamIdentifier(), false
	if expr == nil {
		expr, byType = f.GetEventType(), true
	}
	var re *regexp.Regexp
	if expr.GetRegex() != "" {
		var err error
		if re, err = regexp.Compile(expr.GetRegex()); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "filter regex: %v", err)
		}
	}
	prefixes := expr.GetPrefix()
	return func(e *event) bool {
		subject := e.stream
		if byType {
			subject = e.meta["type"]
		}
		if re != nil {
			return re.MatchString(subject)
		}
		for _, p := range prefixes {
			if strings.HasPrefix(subject, p) {
				return true
			}
		}
		return false
	}, nil
}

func (v streamsService) Read(req *api.ReadReq, srv grpc.ServerStreamingServer[api.ReadResp]) error {
	o := req.GetOptions()
	if o.GetSubscription() != nil {
		return v.subscribe(o, srv)
	}
	count := o.GetCount()
	backwards := o.GetReadDirection() == api.ReadReq_Options_Backwards
	s := v.s
	s.mu.Lock()
	var out []*event
	var notFound []byte
	if so := o.GetStream(); so != nil {
		name := string(so.GetStreamIdentifier().GetStreamName())
		st := s.streams[name]
		switch {
		case st != nil && st.tombstoned:
			s.mu.Unlock()
			return streamDeleted(srv.Context(), name)
		case st == nil || st.softDeleted() || st.last < 0:
			notFound = []byte(name)
		default:
			evs := st.events
			if backwards {
				from := int64(len(evs)) - 1
				if r, ok := so.RevisionOption.(*api.ReadReq_Options_StreamOptions_Revision); ok && int64(r.Revision) < from {
					from = int64(r.Revision)
				}
				for i := from; i >= 0 && uint64(len(out)) < count; i-- {
					if st.visible(evs[i]) {
						out = append(out, evs[i])
					}
				}
			} else {
				var from uint64
				switch r := so.RevisionOption.(type) {
				case *api.ReadReq_Options_StreamOptions_Revision:
					from = r.Revision
				case *api.ReadReq_Options_StreamOptions_End:
					from = uint64(len(evs))
				}
				for i := from; i < uint64(len(evs)) && uint64(len(out)) < count; i++ {
					if st.visible(evs[i]) {
						out = append(out, evs[i])
					}
				}
			}
		}
	} else {
		keep, err := newFilter(o)
		if err != nil {
			s.mu.Unlock()
			return err
		}
		ao := o.GetAll()
		if backwards {
			limit := uint64(math.MaxUint64)
			if p := ao.GetPosition(); p != nil {
				limit = p.CommitPosition
			}
			for i := len(s.log) - 1; i >= 0 && uint64(len(out)) < count; i-- {
				if e := s.log[i]; e.position < limit && keep(e) {
					out = append(out, e)
				}
			}
		} else {
			var from uint64
			if p := ao.GetPosition(); p != nil {
				from = p.CommitPosition
			} else if ao.GetEnd() != nil {
				from = math.MaxUint64
			}
			for _, e := range s.log {
				if uint64(len(out)) >= count {
					break
				}
				if e.position >= from && keep(e) {
					out = append(out, e)
				}
			}
		}
	}
	s.mu.Unlock()
	if notFound != nil {
		return srv.Send(&api.ReadResp{Content: &api.ReadResp_StreamNotFound_{StreamNotFound: &api.ReadResp_StreamNotFound{StreamIdentifier: &shared.StreamIdentifier{StreamName: notFound}}}})
	}
	for _, e := range out {
		if err := srv.Send(readEvent(e)); err != nil {
			return err
		}
	}
	return nil
}

func (v streamsService) subscribe(o *api.ReadReq_Options, srv grpc.ServerStreamingServer[api.ReadResp]) error {
	s := v.s
	ctx, cancel := context.WithCancel(srv.Context())
	defer cancel()
	sub := &subscription{cancel: cancel}
	s.mu.Lock()
	s.subs[sub] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.subs, sub)
		s.mu.Unlock()
	}()
	keep, err := newFilter(o)
	if err != nil {
		return err
	}
	// Which events the subscription yields, and the first one due: after
	// a position, or every one from the start, or only new ones.
	var match func(*event) bool
	var after uint64 // yield events with position > after (0: from the start)
	fromEnd := false
	if so := o.GetStream(); so != nil {
		name := string(so.GetStreamIdentifier().GetStreamName())
		var minRev int64 = -1
		switch r := so.RevisionOption.(type) {
		case *api.ReadReq_Options_StreamOptions_Revision:
			minRev = int64(r.Revision)
		case *api.ReadReq_Options_StreamOptions_End:
			fromEnd = true
		}
		match = func(e *event) bool {
			st := s.streams[name]
			return e.stream == name && int64(e.revision) > minRev && st != nil && st.visible(e)
		}
	} else {
		ao := o.GetAll()
		if p := ao.GetPosition(); p != nil {
			after = p.CommitPosition
		} else if ao.GetEnd() != nil {
			fromEnd = true
		}
		match = keep
	}
	if err := srv.Send(&api.ReadResp{Content: &api.ReadResp_Confirmation{Confirmation: &api.ReadResp_SubscriptionConfirmation{SubscriptionId: uuid.NewString()}}}); err != nil {
		return err
	}
	s.mu.Lock()
	if fromEnd {
		after = s.nextPos
	}
	s.mu.Unlock()
	for {
		s.mu.Lock()
		var batch []*event
		i := sort.Search(len(s.log), func(i int) bool { return s.log[i].position > after })
		for _, e := range s.log[i:] {
			if match(e) {
				batch = append(batch, e)
			}
		}
		if n := len(s.log); n > 0 && s.log[n-1].position > after {
			after = s.log[n-1].position
		}
		wake := s.notify
		s.mu.Unlock()
		for _, e := range batch {
			if err := srv.Send(readEvent(e)); err != nil {
				return err
			}
		}
		select {
		case <-wake:
		case <-ctx.Done():
			if srv.Context().Err() != nil {
				return srv.Context().Err()
			}
			return status.Error(codes.Unavailable, "subscription dropped by the stand-in")
		}
	}
}
