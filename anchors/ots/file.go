package ots

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"slices"
)

// magic opens every detached timestamp file (serialize.py
// DetachedTimestampFile.HEADER_MAGIC).
var magic = []byte("\x00OpenTimestamps\x00\x00Proof\x00\xbf\x89\xe2\xe8\x84\xe8\x92\x94")

// MajorVersion is the only file version there is.
const MajorVersion = 1

// File is a detached timestamp: the proof for a file (or any byte string)
// identified by its digest under HashOp.
type File struct {
	// HashOp is the hash operation that made the file's digest (sha256 for
	// everything Docket stamps).
	HashOp Op
	// Timestamp's Msg is the digest.
	Timestamp *Timestamp
}

// NewFile returns the detached timestamp of a SHA-256 digest.
func NewFile(digest [sha256.Size]byte) *File {
	return &File{HashOp: SHA256, Timestamp: New(digest[:])}
}

// Digest is the stamped file's digest.
func (f *File) Digest() []byte { return f.Timestamp.Msg }

// Parse reads a .ots file.
func Parse(b []byte) (*File, error) {
	if len(b) > MaxFileSize {
		return nil, invalidf("file of %d bytes exceeds %d", len(b), MaxFileSize)
	}
	if !bytes.HasPrefix(b, magic) {
		return nil, invalidf("not an OpenTimestamps proof: the header magic is missing")
	}
	r := &reader{b: b, pos: len(magic), budget: maxTotalMsg}
	v, err := r.varuint()
	if err != nil {
		return nil, err
	}
	if v != MajorVersion {
		return nil, invalidf("unsupported major version %d (this reader knows version %d)", v, MajorVersion)
	}
	tag, err := r.byte()
	if err != nil {
		return nil, err
	}
	info, ok := ops[tag]
	if !ok || info.digest == 0 {
		return nil, invalidf("file hash operation %#02x is not a hash operation (sha1, ripemd160, sha256 or keccak256)", tag)
	}
	digest, err := r.bytes(info.digest)
	if err != nil {
		return nil, fmt.Errorf("file digest: %w", err)
	}
	t, err := readTimestamp(r, slices.Clone(digest), MaxDepth)
	if err != nil {
		return nil, err
	}
	if !r.eof() {
		return nil, invalidf("%d bytes of trailing garbage after the timestamp", len(r.b)-r.pos)
	}
	return &File{HashOp: Op{Tag: tag}, Timestamp: t}, nil
}

// ReadFile reads a .ots file from r, refusing more than MaxFileSize bytes.
func ReadFile(r io.Reader) (*File, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	return Parse(b)
}

// Serialize writes the .ots file.
func (f *File) Serialize() ([]byte, error) {
	info := ops[f.HashOp.Tag]
	if info.digest == 0 || len(f.Timestamp.Msg) != info.digest {
		return nil, fmt.Errorf("ots: a %s file digest is %d bytes, have %d", f.HashOp.Name(), info.digest, len(f.Timestamp.Msg))
	}
	b := append(slices.Clip(magic), MajorVersion, f.HashOp.Tag)
	b = append(b, f.Timestamp.Msg...)
	return f.Timestamp.appendTo(b)
}
