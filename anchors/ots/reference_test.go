package ots

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// referenceCLI finds the reference JavaScript client (npm opentimestamps),
// which scripts/install-ots-reference.sh installs; make test runs it first.
func referenceCLI(t *testing.T) string {
	t.Helper()
	cli, _ := filepath.Abs("../../scripts/ots-reference/node_modules/opentimestamps/ots-cli.js")
	if _, err := os.Stat(cli); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("reference OpenTimestamps client missing (%v): run scripts/install-ots-reference.sh", err)
		}
		t.Skip("reference OpenTimestamps client not installed: run scripts/install-ots-reference.sh")
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node not found: %v", err)
	}
	return cli
}

// referenceInfo is what `ots-cli.js info FILE` prints.
func referenceInfo(t *testing.T, cli, path string) string {
	t.Helper()
	out, err := exec.Command("node", cli, "info", path).CombinedOutput()
	if err != nil {
		t.Fatalf("reference info %s: %v\n%s", path, err, out)
	}
	return string(out)
}

func TestInfoMatchesTheReferenceClient(t *testing.T) {
	cli := referenceCLI(t)
	files, _ := filepath.Glob(filepath.Join(vectors, "*.ots"))
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			raw, _ := os.ReadFile(path)
			f, err := Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			// The reference prints the tree and a blank line.
			if got, want := f.Info()+"\n", referenceInfo(t, cli, path); got != want {
				t.Fatalf("docket:\n%s\nreference:\n%s", got, want)
			}
		})
	}
}
