package main

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is an output the test reads while the logger writes.
type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Request lines are held and reach the output together, in one write.
func TestServerLogBatchesLines(t *testing.T) {
	var out lockedBuffer
	logs := newLogBuffer(&out, time.Hour)
	logger := bufferedLogger(logs)
	for i := range 100 {
		logger.Info("request", "n", i)
	}
	if got := out.String(); got != "" {
		t.Fatalf("request lines written before a flush: %q", got)
	}
	if err := logs.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "msg=request"); n != 100 || out.writes != 1 {
		t.Errorf("flushed %d of 100 lines in %d writes, want all in 1", n, out.writes)
	}
	if !strings.HasSuffix(out.String(), "n=99\n") {
		t.Errorf("lines out of order: %q", out.String())
	}
}

// A held line is written the flush interval after it was logged, with
// nothing else logged or flushed.
func TestServerLogFlushesAfterTheInterval(t *testing.T) {
	var out lockedBuffer
	logs := newLogBuffer(&out, 20*time.Millisecond)
	defer logs.Close()
	bufferedLogger(logs).Info("request", "n", 1)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "msg=request n=1") {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s the line is still held: %q", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A warning or an error is written as it is logged, after every line
// logged before it.
func TestServerLogWritesWarningsAtOnce(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelWarn, slog.LevelError} {
		var out lockedBuffer
		logs := newLogBuffer(&out, time.Hour) // only the warning can flush
		logger := bufferedLogger(logs)
		logger.Info("request", "n", 1)
		logger.With("component", "ledger").Log(t.Context(), level, "trouble")
		got := out.String()
		first, second := strings.Index(got, "msg=request"), strings.Index(got, "msg=trouble component=ledger")
		if first < 0 || second < first {
			t.Errorf("%v: output right after it was logged %q, want the request line and then it", level, got)
		}
		logs.Close()
	}
}

// Close writes what is buffered, and anything logged after it goes straight
// to the output (main reports a failed serve after it).
func TestServerLogCloseWritesEverything(t *testing.T) {
	var out lockedBuffer
	logger, logs := newServerLogger(&out)
	logger.Info("request", "n", 1)
	if err := logs.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "msg=request n=1") {
		t.Fatalf("Close left %q", out.String())
	}
	logger.Info("late")
	if !strings.Contains(out.String(), "msg=late") {
		t.Errorf("a line logged after Close was held back: %q", out.String())
	}
}

// Concurrent requests each get their whole line, none lost (go test -race).
func TestServerLogConcurrentLines(t *testing.T) {
	var out lockedBuffer
	logger, logs := newServerLogger(&out)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				logger.Info("request", "id", fmt.Sprintf("%d-%d", g, i))
			}
		})
	}
	wg.Wait()
	logs.Close()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	seen := map[string]bool{}
	for _, l := range lines {
		_, id, ok := strings.Cut(l, " id=")
		if !ok || !strings.Contains(l, "msg=request") {
			t.Fatalf("torn line %q", l)
		}
		seen[id] = true
	}
	if len(lines) != 4000 || len(seen) != 4000 {
		t.Errorf("%d lines, %d distinct, want 4000", len(lines), len(seen))
	}
}

// BenchmarkServerLog is the cost of a request's log line written to a
// file as docket serve writes it, and as it did unbuffered.
func BenchmarkServerLog(b *testing.B) {
	for _, buffered := range []bool{false, true} {
		b.Run(map[bool]string{false: "unbuffered", true: "buffered"}[buffered], func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "server.log"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			logger := slog.New(slog.NewTextHandler(f, nil))
			if buffered {
				var logs *logBuffer
				logger, logs = newServerLogger(f)
				defer logs.Close()
			}
			b.ReportAllocs()
			for b.Loop() {
				logger.LogAttrs(b.Context(), slog.LevelInfo, "request",
					slog.String("id", "Qm9vbGVhbiBhbGdlYnJhIGlz"), slog.String("method", "POST"),
					slog.String("path", "/graphql"), slog.Int("status", 200), slog.Duration("took", 6*time.Millisecond), slog.String("remote", "127.0.0.1"))
			}
		})
	}
}

// failingOnce fails its first write, as a full disk would, then recovers.
type failingOnce struct {
	lockedBuffer
	failed bool
}

func (f *failingOnce) Write(p []byte) (int, error) {
	if !f.failed {
		f.failed = true
		return 0, errors.New("no space left on device")
	}
	return f.lockedBuffer.Write(p)
}

// A failed write loses the lines it carried, not the log: the next lines
// are written once the output takes them again.
func TestServerLogSurvivesAFailedWrite(t *testing.T) {
	var out failingOnce
	logs := newLogBuffer(&out, time.Hour)
	logger := bufferedLogger(logs)
	logger.Info("request", "n", 1)
	if err := logs.Flush(); err == nil {
		t.Fatal("the failed write was not reported")
	}
	logger.Info("request", "n", 2)
	logger.Error("trouble")
	if got := out.String(); !strings.Contains(got, "msg=request n=2") || !strings.Contains(got, "msg=trouble") {
		t.Errorf("after one failed write the log stayed silent: %q", got)
	}
}
