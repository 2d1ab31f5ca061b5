package esdbtest_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evidence-parity/docket/ledger/esdb/esdbtest"
	"github.com/google/uuid"
	"github.com/kurrent-io/KurrentDB-Client-Go/kurrentdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func start(t *testing.T) (*esdbtest.Server, *kurrentdb.Client) {
	t.Helper()
	srv, err := esdbtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	conf, err := kurrentdb.ParseConnectionString(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	c, err := kurrentdb.NewClient(conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return srv, c
}

func ev(typ string, data, meta []byte) kurrentdb.EventData {
	return kurrentdb.EventData{EventID: uuid.New(), EventType: typ, ContentType: kurrentdb.ContentTypeBinary, Data: data, Metadata: meta}
}

func code(err error) kurrentdb.ErrorCode {
	var e *kurrentdb.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return -1
}

// revisions reads a stream forwards and returns its event revisions, or
// the read's error.
func revisions(t *testing.T, c *kurrentdb.Client, stream string) ([]uint64, error) {
	t.Helper()
	rs, err := c.ReadStream(context.Background(), stream, kurrentdb.ReadStreamOptions{From: kurrentdb.Start{}}, 100)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []uint64
	for {
		e, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, e.OriginalEvent().EventNumber)
	}
}

func TestMaxAppendSize(t *testing.T) {
	srv, c := start(t)
	ctx := context.Background()
	if srv.MaxAppendSize != 1048576 {
		t.Fatalf("default MaxAppendSize %d, want 1048576", srv.MaxAppendSize)
	}
	tooBig := func(t *testing.T, err error, max int) {
		t.Helper()
		// status.FromError would give a wrapped status the whole text.
		var se interface{ GRPCStatus() *status.Status }
		if !errors.As(err, &se) {
			t.Fatalf("got %v, want a gRPC status", err)
		}
		st := se.GRPCStatus()
		if st.Code() != codes.InvalidArgument || st.Message() != "Maximum Append Size of "+strconv.Itoa(max)+" Exceeded." {
			t.Fatalf("got %v, want InvalidArgument %q", err, "Maximum Append Size of "+strconv.Itoa(max)+" Exceeded.")
		}
		if code(err) != kurrentdb.ErrorCodeUnknown {
			t.Fatalf("client error code %v, want ErrorCodeUnknown (the v1 append has no error details)", code(err))
		}
	}
	// Data + custom metadata + 2 bytes per UTF-16 code unit of the type:
	// "é€😀" is 4 code units, 8 bytes.
	const typ, typSize = "é€😀", 8
	meta := []byte(`{"m":1}`)
	fit := srv.MaxAppendSize - typSize - len(meta)
	if _, err := c.AppendToStream(ctx, "s", kurrentdb.AppendToStreamOptions{}, ev(typ, make([]byte, fit), meta)); err != nil {
		t.Fatalf("append of exactly MaxAppendSize: %v", err)
	}
	_, err := c.AppendToStream(ctx, "s", kurrentdb.AppendToStreamOptions{}, ev(typ, make([]byte, fit+1), meta))
	tooBig(t, err, 1048576)
	// Larger than grpc-go's default 4 MiB receive limit: still the
	// append-size error, as the server's 16 MiB limit lets it through.
	_, err = c.AppendToStream(ctx, "s", kurrentdb.AppendToStreamOptions{}, ev("T", make([]byte, 5<<20), nil))
	tooBig(t, err, 1048576)

	// The limit is over the whole append; nothing of a rejected one is
	// written. (An append rejected part-way may reach the client as the
	// status or as an EOF on sending, as from the real server.)
	srv.MaxAppendSize = 1000
	t.Cleanup(func() { srv.MaxAppendSize = esdbtest.DefaultMaxAppendSize })
	if _, err := c.AppendToStream(ctx, "many", kurrentdb.AppendToStreamOptions{}, ev("T", make([]byte, 498), nil), ev("T", make([]byte, 498), nil)); err != nil {
		t.Fatalf("two events totalling 1000 bytes: %v", err)
	}
	if _, err := c.AppendToStream(ctx, "many", kurrentdb.AppendToStreamOptions{}, ev("T", make([]byte, 498), nil), ev("T", make([]byte, 499), nil)); err == nil {
		t.Fatal("two events totalling 1001 bytes were accepted")
	}
	if revs, err := revisions(t, c, "many"); err != nil || len(revs) != 2 {
		t.Fatalf("stream after a rejected append: %v, %v; want revisions 0 and 1", revs, err)
	}
}

// TestKeepalivePings sends HTTP/2 pings faster than grpc-go's default
// enforcement policy allows, with no stream open, as a client's keepalive
// may; the stand-in, like the server's Kestrel, must ack them all and not
// answer GOAWAY too_many_pings.
func TestKeepalivePings(t *testing.T) {
	srv, _ := start(t)
	conn, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	frame := func(typ byte, payload []byte) []byte {
		h := make([]byte, 9)
		h[0], h[1], h[2] = byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
		h[3] = typ
		return append(h, payload...)
	}
	var out bytes.Buffer
	out.WriteString("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	out.Write(frame(0x4, nil)) // SETTINGS
	const pings = 6
	for i := range pings {
		out.Write(frame(0x6, binary.BigEndian.AppendUint64(nil, uint64(i)))) // PING
	}
	if _, err := conn.Write(out.Bytes()); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	acks := 0
	for acks < pings {
		h := make([]byte, 9)
		if _, err := io.ReadFull(conn, h); err != nil {
			t.Fatalf("after %d ping acks: %v", acks, err)
		}
		payload := make([]byte, int(h[0])<<16|int(h[1])<<8|int(h[2]))
		if _, err := io.ReadFull(conn, payload); err != nil {
			t.Fatal(err)
		}
		switch h[3] {
		case 0x7: // GOAWAY
			t.Fatalf("GOAWAY after %d ping acks: %q", acks, payload[8:])
		case 0x6:
			if h[4]&1 != 0 {
				acks++
			}
		}
	}
}

func TestSoftDeletedStream(t *testing.T) {
	_, c := start(t)
	ctx := context.Background()
	write := func(t *testing.T, stream string, state kurrentdb.StreamState) (*kurrentdb.WriteResult, error) {
		t.Helper()
		return c.AppendToStream(ctx, stream, kurrentdb.AppendToStreamOptions{StreamState: state}, ev("T", []byte("x"), nil))
	}
	// deleted returns a stream with revisions 0..2, soft-deleted.
	deleted := func(t *testing.T) string {
		t.Helper()
		name := strings.ReplaceAll(t.Name(), "/", "-")
		for range 3 {
			if _, err := write(t, name, kurrentdb.Any{}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.DeleteStream(ctx, name, kurrentdb.DeleteStreamOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := revisions(t, c, name); code(err) != kurrentdb.ErrorCodeResourceNotFound {
			t.Fatalf("read of a deleted stream: %v, want not found", err)
		}
		return name
	}
	recreated := func(t *testing.T, name string, r *kurrentdb.WriteResult, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if r.NextExpectedVersion != 3 {
			t.Fatalf("recreated at revision %d, want 3", r.NextExpectedVersion)
		}
		if revs, err := revisions(t, c, name); err != nil || len(revs) != 1 || revs[0] != 3 {
			t.Fatalf("recreated stream reads %v, %v; want only revision 3", revs, err)
		}
		m, err := c.GetStreamMetadata(ctx, name, kurrentdb.ReadStreamOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if tb := m.TruncateBefore(); tb == nil || *tb != 3 {
			t.Fatalf("metadata $tb %v, want 3", tb)
		}
	}
	t.Run("expected revision is the old last revision", func(t *testing.T) {
		name := deleted(t)
		r, err := write(t, name, kurrentdb.StreamRevision{Value: 2})
		recreated(t, name, r, err)
	})
	t.Run("any", func(t *testing.T) {
		name := deleted(t)
		r, err := write(t, name, kurrentdb.Any{})
		recreated(t, name, r, err)
	})
	t.Run("no stream", func(t *testing.T) {
		name := deleted(t)
		r, err := write(t, name, kurrentdb.NoStream{})
		recreated(t, name, r, err)
	})
	t.Run("stream exists", func(t *testing.T) {
		name := deleted(t)
		if _, err := write(t, name, kurrentdb.StreamExists{}); code(err) != kurrentdb.ErrorCodeStreamDeleted {
			t.Fatalf("got %v, want ErrorCodeStreamDeleted", err)
		}
	})
	t.Run("another revision", func(t *testing.T) {
		name := deleted(t)
		for _, rev := range []uint64{1, 3} {
			if _, err := write(t, name, kurrentdb.StreamRevision{Value: rev}); code(err) != kurrentdb.ErrorCodeWrongExpectedVersion ||
				!strings.Contains(err.Error(), "got '2'") {
				t.Fatalf("expected revision %d: got %v, want wrong expected version, current 2", rev, err)
			}
		}
	})
	t.Run("metadata written", func(t *testing.T) {
		name := deleted(t)
		var m kurrentdb.StreamMetadata
		m.SetMaxCount(10)
		if _, err := c.SetStreamMetadata(ctx, name, kurrentdb.AppendToStreamOptions{}, m); err != nil {
			t.Fatal(err)
		}
		if revs, err := revisions(t, c, name); err != nil || len(revs) != 0 {
			t.Fatalf("stream after its metadata was rewritten reads %v, %v; want no events, no error", revs, err)
		}
		got, err := c.GetStreamMetadata(ctx, name, kurrentdb.ReadStreamOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if tb, mc := got.TruncateBefore(), got.MaxCount(); tb == nil || *tb != 3 || mc == nil || *mc != 10 {
			t.Fatalf("metadata $tb %v $maxCount %v, want 3 and 10", tb, mc)
		}
	})
	t.Run("never written", func(t *testing.T) {
		if _, err := c.DeleteStream(ctx, "nothing", kurrentdb.DeleteStreamOptions{}); err == nil {
			t.Fatal("deleting a stream never written succeeded")
		}
	})
}
