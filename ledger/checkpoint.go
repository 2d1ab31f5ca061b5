package ledger

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Checkpoint is a tree head as committed to by a C2SP tlog-checkpoint: the
// log's origin, its size and the RFC 6962 root hash of its first Size leaves.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   []byte
}

// Body returns the checkpoint note body "<origin>\n<size>\n<base64 root>\n"
// (C2SP tlog-checkpoint, no extension lines).
func (c Checkpoint) Body() []byte {
	return fmt.Appendf(nil, "%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root))
}

func (c Checkpoint) String() string {
	return fmt.Sprintf("%s size %d root %s", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root))
}

// ErrMalformedCheckpoint is returned for a checkpoint that does not parse.
var ErrMalformedCheckpoint = errors.New("malformed checkpoint")

// ParseCheckpoint parses a checkpoint note body per C2SP tlog-checkpoint:
// a non-empty origin line, the size in decimal without leading zeros, the
// base64 root hash (32 bytes), then optional extension lines, which are
// ignored.
func ParseCheckpoint(body []byte) (Checkpoint, error) {
	s := string(body)
	if !strings.HasSuffix(s, "\n") {
		return Checkpoint{}, fmt.Errorf("%w: body does not end in a newline", ErrMalformedCheckpoint)
	}
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) < 3 {
		return Checkpoint{}, fmt.Errorf("%w: %d lines, want at least 3", ErrMalformedCheckpoint, len(lines))
	}
	if lines[0] == "" {
		return Checkpoint{}, fmt.Errorf("%w: empty origin", ErrMalformedCheckpoint)
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || (len(lines[1]) > 1 && lines[1][0] == '0') {
		return Checkpoint{}, fmt.Errorf("%w: size %q", ErrMalformedCheckpoint, lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != 32 {
		return Checkpoint{}, fmt.Errorf("%w: root hash %q", ErrMalformedCheckpoint, lines[2])
	}
	return Checkpoint{Origin: lines[0], Size: size, Root: root}, nil
}

// OpenCheckpoint verifies a signed checkpoint note with the known verifiers
// and parses its body. It fails unless at least one signature verifies.
func OpenCheckpoint(signed []byte, known note.Verifiers) (Checkpoint, error) {
	n, err := note.Open(signed, known)
	if err != nil {
		return Checkpoint{}, err
	}
	return ParseCheckpoint([]byte(n.Text))
}

// CheckpointBody returns the body of a signed note without checking its
// signatures; use it only on notes this process signed or already verified.
func CheckpointBody(signed []byte) (Checkpoint, error) {
	i := bytes.LastIndex(signed, []byte("\n\n"))
	if i < 0 {
		return Checkpoint{}, fmt.Errorf("%w: no signature block", ErrMalformedCheckpoint)
	}
	return ParseCheckpoint(signed[:i+1])
}
