// Package ots reads, writes, builds and verifies OpenTimestamps proofs.
//
// It is written here because no Go module for OpenTimestamps is served to
// this project. The format follows python-opentimestamps (core/serialize.py,
// core/op.py, core/notary.py, core/timestamp.py) and its JavaScript port
// (npm opentimestamps), which is also the reference the tests compare
// against:
//
//	file      := magic version(varuint = 1) file-hash-op digest timestamp
//	timestamp := (0xff branch)* branch
//	branch    := 0x00 attestation | op timestamp
//	op        := tag | tag varbytes          (binary ops carry an argument)
//	attestation := tag[8] varbytes(payload)
//
// varuint is unsigned LEB128; varbytes is a varuint length then the bytes.
// A parsed timestamp keeps its branches in the order they were read, so
// serializing it gives back the same bytes.
package ots

import (
	"errors"
	"fmt"
)

// Limits from the reference implementations.
const (
	// MaxMsgLength bounds every message an operation reads or writes.
	MaxMsgLength = 4096
	// MaxPayloadLength bounds an attestation's payload.
	MaxPayloadLength = 8192
	// MaxURILength bounds a pending attestation's calendar URI.
	MaxURILength = 1000
	// MaxDepth bounds the nesting of timestamps.
	MaxDepth = 256
	// MaxFileSize bounds the proof files Docket reads; real proofs are a
	// few kilobytes.
	MaxFileSize = 1 << 20
	// maxTotalMsg bounds the sum of every node's message, so a small file of
	// many sibling reverse or hexlify operations cannot claim gigabytes.
	maxTotalMsg = 16 << 20
)

// ErrInvalid is wrapped by every error that reports a malformed proof.
var ErrInvalid = errors.New("invalid timestamp")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// reader reads the primitive encodings of serialize.py from a byte slice.
type reader struct {
	b   []byte
	pos int
	// budget is what is left of maxTotalMsg.
	budget int
}

func (r *reader) eof() bool { return r.pos >= len(r.b) }

func (r *reader) byte() (byte, error) {
	if r.pos >= len(r.b) {
		return 0, invalidf("truncated at byte %d", r.pos)
	}
	c := r.b[r.pos]
	r.pos++
	return c, nil
}

func (r *reader) bytes(n int) ([]byte, error) {
	if n < 0 || len(r.b)-r.pos < n {
		return nil, invalidf("truncated at byte %d: want %d more bytes", r.pos, n)
	}
	out := r.b[r.pos : r.pos+n : r.pos+n]
	r.pos += n
	return out, nil
}

// varuint reads an unsigned LEB128 integer of at most 64 bits in its
// shortest encoding. The reference readers also accept padded encodings
// (a trailing 0x80…0x00); Docket refuses them so that a proof has one
// serialization, and every file round-trips byte for byte.
func (r *reader) varuint() (uint64, error) {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		if shift == 63 && c > 1 || shift > 63 {
			return 0, invalidf("varuint at byte %d overflows 64 bits", r.pos)
		}
		if c == 0 && shift > 0 {
			return 0, invalidf("varuint at byte %d is not in its shortest encoding", r.pos-1)
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, nil
		}
	}
}

// varbytes reads a length-prefixed byte string of min..max bytes.
func (r *reader) varbytes(min, max int, what string) ([]byte, error) {
	n, err := r.varuint()
	if err != nil {
		return nil, err
	}
	if n > uint64(max) {
		return nil, invalidf("%s of %d bytes exceeds the limit of %d", what, n, max)
	}
	if n < uint64(min) {
		return nil, invalidf("%s of %d bytes is shorter than %d", what, n, min)
	}
	return r.bytes(int(n))
}

func appendVaruint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendVarbytes(b, v []byte) []byte {
	return append(appendVaruint(b, uint64(len(v))), v...)
}
