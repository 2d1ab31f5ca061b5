// Package esdbtest is a STAND-IN for EventStoreDB / KurrentDB, for tests
// only. It is not EventStoreDB: it serves, over real gRPC on 127.0.0.1, the
// parts of the server's v1 protocol that the KurrentDB Go client
// (github.com/kurrent-io/KurrentDB-Client-Go) calls for Docket, built on the
// generated server stubs shipped in that module. EventStoreDB cannot run on
// the machines CI uses (no container engine, no .NET); with DOCKET_ESDB_URL
// set, the same tests run against a real server instead.
//
// What it models (as EventStoreDB 24.x documents and behaves):
//   - ServerFeatures.GetSupportedMethods (version 24.10.0; no batch append,
//     no v2 multi-stream append, so the client uses Streams.Append).
//   - Streams.Append with expected stream states any, no_stream,
//     stream_exists and an exact revision; WrongExpectedVersion results;
//     idempotent appends by event id (a repeated append whose ids sit at
//     the expected place succeeds without writing; ids only partly there
//     fail with WrongExpectedVersion, as the server's "corrupted
//     idempotency" does); appends to a tombstoned stream fail.
//   - Streams.Read of a stream (forwards/backwards, from start, end or a
//     revision, with a count), StreamNotFound for a stream never written
//     or soft-deleted, and the "stream-deleted" error for a tombstoned one.
//   - Streams.Read of $all (forwards/backwards, from start, end or a
//     position, with a count, optionally filtered by stream-name prefix or
//     regex, or event-type prefix or regex), and subscriptions (to a stream
//     or to $all, filtered or not, from start, end or exclusively after a
//     position): confirmation, catch-up, then live events.
//   - Streams.Delete (soft delete: the stream reads as not found until it
//     is written again, then continues from its old revision with the old
//     events hidden by truncate-before) and Streams.Tombstone (hard delete:
//     a $streamDeleted event at revision 2^63-1; reads and writes fail).
//   - Stream metadata written to "$$<stream>" with the $tb (truncate
//     before) key: events before it are hidden from stream reads.
//   - Deleted, truncated and tombstoned events stay readable in $all until
//     a scavenge, as in EventStoreDB; Scavenge removes them (a Go method,
//     not an RPC: EventStoreDB starts scavenges through its operations API).
//   - Commit and prepare positions that grow but are not contiguous.
//
// What it does not model: clusters, gossip, leader election and NotLeader
// redirects (use single-node URLs, esdb://127.0.0.1:PORT?tls=false); TLS;
// authentication and ACLs ($acl, $d, $mw are stored like any metadata but
// never enforced); $maxAge and $maxCount; persistent subscriptions;
// projections and system streams such as $ce-/$et-; BatchAppend and the v2
// streams API; links and resolveLinkTos; subscription checkpoints,
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

	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/serverfeatures"
	"github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/shared"
	api "github.com/kurrent-io/KurrentDB-Client-Go/protos/kurrentdb/protocols/v1/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// tombstoneRevision is the revision EventStoreDB gives a tombstone event.
const tombstoneRevision = math.MaxInt64

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
	tb         uint64 // truncate before: revisions below are hidden
	deleted    bool   // soft-deleted and not written since
	tombstoned bool
	events     []*event // every event ever written, in revision order
}

// Server is the stand-in. Start it with Start; its URL is what the client
// connects to.
type Server struct {
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
	s := &Server{streams: map[string]*stream{}, nextPos: 1024, notify: make(chan struct{}), subs: map[*subscription]struct{}{}}
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
	srv := grpc.NewServer()
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
	return !st.tombstoned && !st.deleted && e.revision >= st.tb
}

func (s *Server) stream(name string) *stream {
	st := s.streams[name]
	if st == nil {
		st = &stream{last: -1}
		s.streams[name] = st
	}
	return st
}

// write appends events to a stream; s.mu is held.
func (s *Server) write(name string, evs []*event) {
	st := s.stream(name)
	if st.deleted {
		// Writing to a soft-deleted stream recreates it after its old end.
		st.deleted = false
		st.tb = uint64(st.last + 1)
	}
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

func (s *Server) applyMetadata(name string, e *event) {
	var m map[string]any
	if json.Unmarshal(e.data, &m) != nil {
		return
	}
	st := s.stream(name)
	if tb, ok := m["$tb"].(float64); ok && tb >= 0 {
		st.tb = uint64(tb)
	}
}

type featuresService struct {
	serverfeatures.UnimplementedServerFeaturesServer
}

func (featuresService) GetSupportedMethods(context.Context, *shared.Empty) (*serverfeatures.SupportedMethods, error) {
	var ms []*serverfeatures.SupportedMethod
	for _, m := range []string{"read", "append", "delete", "tombstone"} {
		ms = append(ms, &serverfeatures.SupportedMethod{MethodName: m, ServiceName: "event_store.client.streams.streams"})
	}
	return &serverfeatures.SupportedMethods{Methods: ms, EventStoreServerVersion: "24.10.0"}, nil
}

type streamsService struct {
	api.UnimplementedStreamsServer
	s *Server
}

func streamDeleted(ctx context.Context, name string) error {
	grpc.SetTrailer(ctx, metadata.Pairs("exception", "stream-deleted", "stream-name", name))
	return status.Errorf(codes.FailedPrecondition, "stream %q is deleted", name)
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

func success(st *stream, pos uint64) *api.AppendResp {
	return &api.AppendResp{Result: &api.AppendResp_Success_{Success: &api.AppendResp_Success{
		CurrentRevisionOption: &api.AppendResp_Success_CurrentRevision{CurrentRevision: uint64(st.last)},
		PositionOption:        &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{CommitPosition: pos, PreparePosition: pos}},
	}}}
}

func (v streamsService) Append(srv grpc.ClientStreamingServer[api.AppendReq, api.AppendResp]) error {
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
	var evs []*event
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
		meta := map[string]string{}
		for k, val := range m.Metadata {
			meta[k] = val
		}
		evs = append(evs, &event{id: uuidOf(m.Id), meta: meta, custom: m.CustomMetadata, data: m.Data})
	}
	s := v.s
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stream(name)
	if st.tombstoned {
		return streamDeleted(srv.Context(), name)
	}
	current := st.last
	if st.deleted {
		current = -1 // a soft-deleted stream accepts no_stream
	}
	// Idempotency: an append whose ids are already in the stream where
	// the expectation places them succeeds without writing.
	idem := func(from int64) (resp *api.AppendResp, done bool) {
		if from < 0 || from >= int64(len(st.events)) || len(evs) == 0 || st.events[from].id != evs[0].id {
			return nil, false
		}
		for i, e := range evs {
			j := from + int64(i)
			if j >= int64(len(st.events)) || st.events[j].id != e.id {
				return exp.wrong(current), true // corrupted idempotency
			}
		}
		last := st.events[from+int64(len(evs))-1]
		r := success(st, last.position)
		r.GetSuccess().CurrentRevisionOption = &api.AppendResp_Success_CurrentRevision{CurrentRevision: last.revision}
		return r, true
	}
	findFirst := func() int64 {
		for i, e := range st.events {
			if len(evs) > 0 && e.id == evs[0].id {
				return int64(i)
			}
		}
		return -1
	}
	switch {
	case exp == expectAny || (exp == expectExists && current >= 0):
		if r, done := idem(findFirst()); done {
			return srv.SendAndClose(r)
		}
	case exp == expectExists:
		return srv.SendAndClose(exp.wrong(current))
	case int64(exp) == current:
	case int64(exp) < current:
		if r, done := idem(int64(exp) + 1); done {
			return srv.SendAndClose(r)
		}
		return srv.SendAndClose(exp.wrong(current))
	default:
		return srv.SendAndClose(exp.wrong(current))
	}
	if len(evs) == 0 {
		return srv.SendAndClose(success(st, 0))
	}
	s.write(name, evs)
	return srv.SendAndClose(success(st, evs[len(evs)-1].position))
}

// deletable returns the stream a delete or tombstone may act on: not
// tombstoned, and at the expected revision if one is given. s.mu is held.
func (s *Server) deletable(ctx context.Context, name string, rev uint64, exact bool) (*stream, error) {
	st := s.stream(name)
	if st.tombstoned {
		return nil, streamDeleted(ctx, name)
	}
	if exact && int64(rev) != st.last {
		return nil, status.Errorf(codes.FailedPrecondition, "wrong expected version")
	}
	return st, nil
}

func (v streamsService) Delete(ctx context.Context, req *api.DeleteReq) (*api.DeleteResp, error) {
	o := req.GetOptions()
	name := string(o.GetStreamIdentifier().GetStreamName())
	s := v.s
	s.mu.Lock()
	defer s.mu.Unlock()
	_, exact := o.ExpectedStreamRevision.(*api.DeleteReq_Options_Revision)
	st, err := s.deletable(ctx, name, o.GetRevision(), exact)
	if err != nil {
		return nil, err
	}
	st.deleted = true
	st.tb = uint64(st.last + 1)
	pos := s.nextPos
	return &api.DeleteResp{PositionOption: &api.DeleteResp_Position_{Position: &api.DeleteResp_Position{CommitPosition: pos, PreparePosition: pos}}}, nil
}

func (v streamsService) Tombstone(ctx context.Context, req *api.TombstoneReq) (*api.TombstoneResp, error) {
	o := req.GetOptions()
	name := string(o.GetStreamIdentifier().GetStreamName())
	s := v.s
	s.mu.Lock()
	defer s.mu.Unlock()
	_, exact := o.ExpectedStreamRevision.(*api.TombstoneReq_Options_Revision)
	st, err := s.deletable(ctx, name, o.GetRevision(), exact)
	if err != nil {
		return nil, err
	}
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
		case st == nil || st.deleted || st.last < 0:
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
