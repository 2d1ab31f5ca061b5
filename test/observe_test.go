package test

import (
	"bytes"
	"net/http"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"testing"
)

// lockedBuffer is a bytes.Buffer a child process's output may be copied
// into while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRequestIDsSecureHeadersAndLog: every answer carries a request id
// (the caller's own if it sent one) and the secure headers, and the
// server's structured log has a line per request under the same id.
func TestRequestIDsSecureHeadersAndLog(t *testing.T) {
	bin := buildDocket(t)
	data := t.TempDir()
	var logs lockedBuffer
	cmd := exec.Command(bin, "serve", "--data", data, "--listen", "127.0.0.1:0")
	cmd.Stderr = &logs
	s := startCmd(t, cmd)
	get := func(id string) http.Header {
		t.Helper()
		req, _ := http.NewRequest("GET", s.url+"/healthz", nil)
		if id != "" {
			req.Header.Set("X-Request-Id", id)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header
	}
	h1, h2 := get(""), get("")
	id1, id2 := h1.Get("X-Request-Id"), h2.Get("X-Request-Id")
	if !regexp.MustCompile(`^[A-Za-z0-9]{32}$`).MatchString(id1) || id1 == id2 {
		t.Errorf("request ids %q and %q: want two different 32-character ids", id1, id2)
	}
	if got := get("trace-7f3a")["X-Request-Id"]; len(got) != 1 || got[0] != "trace-7f3a" {
		t.Errorf("the caller's request id came back as %q", got)
	}
	for name, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "SAMEORIGIN", "X-Xss-Protection": "1; mode=block"} {
		if got := h1.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	// A graceful stop writes the buffered log out.
	s.cmd.Process.Signal(syscall.SIGTERM)
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("serve exited with %v", err)
	}
	for _, id := range []string{id1, id2, "trace-7f3a"} {
		line := `level=INFO msg=request id=` + id + ` method=GET path=/healthz status=200 took=\S+ remote=127\.0\.0\.1`
		if !regexp.MustCompile(line).MatchString(logs.String()) {
			t.Errorf("no log line %q in:\n%s", line, logs.String())
		}
	}
}
