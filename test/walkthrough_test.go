package test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestREADMEWalkthrough runs the README's walk-through
// (scripts/walkthrough.sh: curl and jq against the real server on a free
// loopback port, a fresh data folder), which stops at the first answer that
// is not the one the README shows.
func TestREADMEWalkthrough(t *testing.T) {
	bin := buildDocket(t)
	cmd := exec.Command("bash", "../scripts/walkthrough.sh")
	cmd.Env = append(os.Environ(), "DOCKET="+bin, "DOCKET_DATA="+t.TempDir(), "DOCKET_LISTEN=127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "# done: change chg-") {
		t.Fatalf("walkthrough: %v\n%s", err, out)
	}
}
