package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// buildBinary builds the command in ../cmd/name once per test binary run
// and returns its path.
var buildBinary = func() func(t testing.TB, name string) string {
	type built struct {
		path string
		err  error
		out  []byte
	}
	var mu sync.Mutex
	onces := map[string]func() built{}
	return func(t testing.TB, name string) string {
		t.Helper()
		mu.Lock()
		once, ok := onces[name]
		if !ok {
			once = sync.OnceValue(func() built {
				dir, err := os.MkdirTemp("", name+"-bin-")
				if err != nil {
					return built{err: err}
				}
				path := filepath.Join(dir, name)
				cmd := exec.Command("go", "build", "-o", path, "./cmd/"+name)
				cmd.Dir = ".."
				out, err := cmd.CombinedOutput()
				return built{path, err, out}
			})
			onces[name] = once
		}
		mu.Unlock()
		b := once()
		if b.err != nil {
			t.Fatalf("go build %s: %v\n%s", name, b.err, b.out)
		}
		return b.path
	}
}()

// buildDocket builds cmd/docket once per test binary run.
func buildDocket(t testing.TB) string { return buildBinary(t, "docket") }

// buildHook builds cmd/docket-hook once per test binary run.
func buildHook(t testing.TB) string { return buildBinary(t, "docket-hook") }

// run runs the binary and fails the test unless it exits 0.
func run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("docket %v: %v\n%s%s", args, err, out, stderr)
	}
	return string(out)
}

// runCode runs the binary and returns its exit code and output.
func runCode(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, stdout.String(), stderr.String()
}
