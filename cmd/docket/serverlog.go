package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// The server logs a line per request. Written straight to stderr that is a
// system call per request: 5.8 µs of CPU a line against 1.7 µs buffered
// (BenchmarkServerLog, to a file on the 2-core development machine), some
// 2% of a recordAction's CPU. The server's log is buffered instead: lines reach
// the output at most logFlushInterval after they are logged, or sooner when
// the buffer fills; a warning or an error is written at once, with every
// line before it, and everything is written when the server stops
// gracefully (goroutines that outlive it, such as a websocket subscription,
// log straight through after that). A crash (SIGKILL, a second signal
// during a hung shutdown, a runtime fatal error) can lose the last
// logFlushInterval of request lines, never a warning or an error. A failed
// write to the output loses the lines it carried, not the later ones.
const (
	logFlushInterval = 100 * time.Millisecond
	logBufferBytes   = 64 << 10
)

// logBuffer batches writes to w: each Write (slog writes a record in one)
// is buffered, and a flush is scheduled for every later.
type logBuffer struct {
	mu        sync.Mutex
	out       io.Writer
	w         *bufio.Writer
	every     time.Duration
	scheduled bool // a flush is due
	closed    bool // Close ran: writes go straight through
}

func newLogBuffer(w io.Writer, every time.Duration) *logBuffer {
	return &logBuffer{out: w, w: bufio.NewWriterSize(w, logBufferBytes), every: every}
}

// failed, after a write to the output failed, drops the lines that were
// being written and lets the next ones through: bufio.Writer would
// otherwise keep the error and write nothing more (a full disk that frees
// up would have silenced the log for good).
func (b *logBuffer) failed(err error) error {
	if err != nil {
		b.w.Reset(b.out)
	}
	return err
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.w.Write(p)
	err = b.failed(err)
	switch {
	case b.closed:
		if err == nil {
			err = b.failed(b.w.Flush())
		}
	case !b.scheduled && b.w.Buffered() > 0:
		b.scheduled = true
		time.AfterFunc(b.every, func() { b.Flush() })
	}
	return n, err
}

// Flush writes every buffered line.
func (b *logBuffer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.scheduled = false
	return b.failed(b.w.Flush())
}

// Close writes every buffered line; later writes are not buffered.
func (b *logBuffer) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return b.failed(b.w.Flush())
}

// newServerLogger is the server's logger: slog's text format into a
// logBuffer over w. Close the buffer when the server has stopped.
func newServerLogger(w io.Writer) (*slog.Logger, *logBuffer) {
	b := newLogBuffer(w, logFlushInterval)
	return bufferedLogger(b), b
}

// bufferedLogger logs in slog's text format into b.
func bufferedLogger(b *logBuffer) *slog.Logger {
	return slog.New(flushOnWarn{slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelInfo}), b})
}

// flushOnWarn writes a warning or an error, and every line before it, to
// the output as soon as it is logged.
type flushOnWarn struct {
	slog.Handler
	b *logBuffer
}

func (h flushOnWarn) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		if ferr := h.b.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

func (h flushOnWarn) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushOnWarn{h.Handler.WithAttrs(attrs), h.b}
}

func (h flushOnWarn) WithGroup(name string) slog.Handler {
	return flushOnWarn{h.Handler.WithGroup(name), h.b}
}
