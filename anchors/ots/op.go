package ots

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	"golang.org/x/crypto/ripemd160" //lint:ignore SA1019 OpenTimestamps proofs use RIPEMD-160.
	"golang.org/x/crypto/sha3"
)

// Op tags (python-opentimestamps core/op.py).
const (
	TagAppend    byte = 0xf0
	TagPrepend   byte = 0xf1
	TagReverse   byte = 0xf2
	TagHexlify   byte = 0xf3
	TagSHA1      byte = 0x02
	TagRIPEMD160 byte = 0x03
	TagSHA256    byte = 0x08
	TagKeccak256 byte = 0x67
)

// Op is one commitment operation: a tag and, for append and prepend, its
// argument.
type Op struct {
	Tag byte
	Arg []byte
}

// Append returns the operation that appends arg to the message.
func Append(arg []byte) Op { return Op{Tag: TagAppend, Arg: slices.Clone(arg)} }

// Prepend returns the operation that prepends arg to the message.
func Prepend(arg []byte) Op { return Op{Tag: TagPrepend, Arg: slices.Clone(arg)} }

// SHA256 is the operation that hashes the message with SHA-256.
var SHA256 = Op{Tag: TagSHA256}

type opInfo struct {
	name   string
	binary bool
	// digest is the output length of a hash operation (0 otherwise); a
	// detached file's hash operation is followed by a digest this long.
	digest int
	// maxMsg is the longest message the operation accepts.
	maxMsg int
}

var ops = map[byte]opInfo{
	TagAppend:    {name: "append", binary: true, maxMsg: MaxMsgLength},
	TagPrepend:   {name: "prepend", binary: true, maxMsg: MaxMsgLength},
	TagReverse:   {name: "reverse", maxMsg: MaxMsgLength},
	TagHexlify:   {name: "hexlify", maxMsg: MaxMsgLength / 2},
	TagSHA1:      {name: "sha1", digest: 20, maxMsg: MaxMsgLength},
	TagRIPEMD160: {name: "ripemd160", digest: 20, maxMsg: MaxMsgLength},
	TagSHA256:    {name: "sha256", digest: 32, maxMsg: MaxMsgLength},
	TagKeccak256: {name: "keccak256", digest: 32, maxMsg: MaxMsgLength},
}

// Name is the operation's name as the reference clients print it.
func (o Op) Name() string {
	if i, ok := ops[o.Tag]; ok {
		return i.name
	}
	return fmt.Sprintf("op(%#02x)", o.Tag)
}

// String prints the operation as the reference clients do: the name, then
// the argument in hex for append and prepend.
func (o Op) String() string {
	if ops[o.Tag].binary {
		return o.Name() + " " + hex.EncodeToString(o.Arg)
	}
	return o.Name()
}

// Equal reports whether two operations are the same.
func (o Op) Equal(p Op) bool { return o.Tag == p.Tag && string(o.Arg) == string(p.Arg) }

// Apply computes the operation's result on msg, enforcing the length limits.
func (o Op) Apply(msg []byte) ([]byte, error) {
	info, ok := ops[o.Tag]
	if !ok {
		return nil, invalidf("unknown operation tag %#02x", o.Tag)
	}
	if len(msg) > info.maxMsg {
		return nil, invalidf("%s of a %d-byte message exceeds the message limit of %d", info.name, len(msg), info.maxMsg)
	}
	var out []byte
	switch o.Tag {
	case TagAppend:
		out = append(slices.Clip(msg), o.Arg...)
	case TagPrepend:
		out = append(slices.Clone(o.Arg), msg...)
	case TagReverse:
		out = slices.Clone(msg)
		slices.Reverse(out)
	case TagHexlify:
		out = []byte(hex.EncodeToString(msg))
	case TagSHA1:
		s := sha1.Sum(msg)
		out = s[:]
	case TagRIPEMD160:
		h := ripemd160.New()
		h.Write(msg)
		out = h.Sum(nil)
	case TagSHA256:
		s := sha256.Sum256(msg)
		out = s[:]
	case TagKeccak256:
		// Ethereum's Keccak-256: the original Keccak padding, not SHA3-256.
		h := sha3.NewLegacyKeccak256()
		h.Write(msg)
		out = h.Sum(nil)
	}
	if len(out) > MaxMsgLength {
		return nil, invalidf("%s result of %d bytes exceeds the limit of %d", info.name, len(out), MaxMsgLength)
	}
	return out, nil
}

// readOp reads the operation whose tag was just read.
func readOp(r *reader, tag byte) (Op, error) {
	info, ok := ops[tag]
	if !ok {
		return Op{}, invalidf("unknown operation tag %#02x at byte %d", tag, r.pos-1)
	}
	if !info.binary {
		return Op{Tag: tag}, nil
	}
	arg, err := r.varbytes(1, MaxMsgLength, info.name+" argument")
	if err != nil {
		return Op{}, err
	}
	return Op{Tag: tag, Arg: arg}, nil
}

func (o Op) appendTo(b []byte) []byte {
	b = append(b, o.Tag)
	if ops[o.Tag].binary {
		b = appendVarbytes(b, o.Arg)
	}
	return b
}
