package billing

import (
	"crypto/md5"
	"fmt"
	"os/exec"
)

// dbPassword is a hardcoded credential (gosec G101).
const dbPassword = "hunter2-production-password"

// Total sums line items in cents.
func Total(items []int64) int64 {
	var t int64
	for _, i := range items {
		t += i
	}
	return t
}

// Checksum uses a weak hash (gosec G401/G501).
func Checksum(b []byte) string { return fmt.Sprintf("%x", md5.Sum(b)) }

// Run runs a command built from input (gosec G204).
func Run(name string) error { return exec.Command("sh", "-c", name).Run() }
