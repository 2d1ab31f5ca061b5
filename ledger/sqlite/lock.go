package sqlite

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// ErrLocked is returned when another process has the ledger open for
// writing.
var ErrLocked = errors.New("the ledger is open for writing by another process (is docket serve running?)")

// lockFile takes an exclusive, non-blocking flock on path; closing the
// file releases it, and so does the process dying.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock ledger: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, path)
		}
		return nil, fmt.Errorf("lock ledger: %w", err)
	}
	return f, nil
}

// InUse reports whether a process has the ledger at path open for writing.
func InUse(path string) bool {
	f, err := lockFile(path + ".lock")
	if err != nil {
		return errors.Is(err, ErrLocked)
	}
	f.Close()
	return false
}
