package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildOut  []byte
)

// buildDocket builds cmd/docket once per test binary run.
func buildDocket(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "docket-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "docket")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/docket")
		cmd.Dir = ".."
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build: %v\n%s", buildErr, buildOut)
	}
	return binPath
}

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

var (
	hookOnce sync.Once
	hookPath string
	hookErr  error
	hookOut  []byte
)

// buildHook builds cmd/docket-hook once per test binary run.
func buildHook(t testing.TB) string {
	t.Helper()
	hookOnce.Do(func() {
		dir, err := os.MkdirTemp("", "docket-hook-bin-")
		if err != nil {
			hookErr = err
			return
		}
		hookPath = filepath.Join(dir, "docket-hook")
		cmd := exec.Command("go", "build", "-o", hookPath, "./cmd/docket-hook")
		cmd.Dir = ".."
		hookOut, hookErr = cmd.CombinedOutput()
	})
	if hookErr != nil {
		t.Fatalf("go build docket-hook: %v\n%s", hookErr, hookOut)
	}
	return hookPath
}
