// Package test holds end-to-end tests of the built docket binary.
package test

import (
	"bufio"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/evidence-parity/docket/ledger/sqlite"
)

// TestCrashLosesNoAcknowledgedAppend kills `docket bench append` with
// SIGKILL at random moments, several times over one data directory, and
// checks after each kill that the ledger verifies and holds every append
// the process reported as acknowledged.
func TestCrashLosesNoAcknowledgedAppend(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and repeatedly kills the binary; skipped under -short")
	}
	bin := buildDocket(t)
	data := t.TempDir()
	acked := map[uint64]string{}
	for round := 0; round < 5; round++ {
		cmd := exec.Command(bin, "bench", "append", "--data", data, "--events", "100000000",
			"--batch", strconv.Itoa(1+rand.IntN(40)), "--concurrency", strconv.Itoa(1+rand.IntN(16)), "--print-acks", "--no-raw")
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		// Kill once appends are flowing, at a random moment.
		kill := time.After(time.Duration(300+rand.IntN(900)) * time.Millisecond)
		seen := 0
	read:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break read
				}
				var pos uint64
				var id string
				if _, err := fmtSscan(l, &pos, &id); err != nil {
					t.Fatalf("round %d: unexpected output %q", round, l)
				}
				acked[pos] = id
				seen++
			case <-kill:
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				kill = nil
			}
		}
		cmd.Wait()
		if seen == 0 {
			t.Fatalf("round %d: no append was acknowledged before the kill", round)
		}
		// Reopen: sign the recovered tail, then verify with the binary.
		run(t, bin, "checkpoint", "--data", data)
		if out := run(t, bin, "verify", "ledger", "--data", data); !strings.HasPrefix(out, "ok: ") {
			t.Fatalf("round %d: verify printed %q", round, out)
		}
		checkAcked(t, filepath.Join(data, "ledger.db"), acked)
		t.Logf("round %d: %d acknowledged appends so far, all present", round, len(acked))
	}
}

func fmtSscan(line string, pos *uint64, id *string) (int, error) {
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "ack" {
		return 0, strconv.ErrSyntax
	}
	p, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0, err
	}
	*pos, *id = p, f[2]
	return 2, nil
}

func checkAcked(t *testing.T, db string, acked map[uint64]string) {
	t.Helper()
	s, err := sqlite.Open(context.Background(), db, sqlite.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	found := 0
	for r, err := range s.ReadAll(context.Background(), 0) {
		if err != nil {
			t.Fatal(err)
		}
		if id, ok := acked[r.Position]; ok {
			if r.Event.ID != id {
				t.Fatalf("position %d holds %s, but %s was acknowledged there", r.Position, r.Event.ID, id)
			}
			found++
		}
	}
	if found != len(acked) {
		t.Fatalf("%d of %d acknowledged appends are in the ledger", found, len(acked))
	}
}
