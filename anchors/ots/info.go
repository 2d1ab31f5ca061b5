package ots

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"strings"
)

// Info prints the file as the reference client's `ots info` does: the
// file's digest, then the timestamp tree.
func (f *File) Info() string {
	var b strings.Builder
	b.WriteString("File " + f.HashOp.Name() + " hash: " + hex.EncodeToString(f.Timestamp.Msg) + "\n")
	b.WriteString("Timestamp:\n")
	f.Timestamp.writeTree(&b, 0)
	return b.String()
}

// Tree prints the timestamp tree as the reference client does: a chain of
// operations one per line, forks as " -> op" with the branch indented four
// spaces, attestations as "verify …", and comments naming the Bitcoin
// transaction a message parses as and the block merkle root an attestation
// commits to.
func (t *Timestamp) Tree() string {
	var b strings.Builder
	t.writeTree(&b, 0)
	return b.String()
}

func (t *Timestamp) writeTree(b *strings.Builder, indent int) {
	pad := strings.Repeat("    ", indent)
	var ops []Branch
	for _, br := range t.Branches {
		if br.Attestation == nil {
			ops = append(ops, br)
			continue
		}
		b.WriteString(pad + "verify " + br.Attestation.String() + "\n")
		switch br.Attestation.Kind {
		case Bitcoin:
			b.WriteString(pad + "# Bitcoin block merkle root " + reversedHex(t.Msg) + "\n")
		case Litecoin:
			b.WriteString(pad + "# Litecoin block merkle root " + reversedHex(t.Msg) + "\n")
		}
	}
	isTx := len(ops) > 0 && looksLikeTransaction(t.Msg)
	if len(ops) > 1 {
		for _, br := range ops {
			if isTx {
				b.WriteString(pad + "# Bitcoin transaction id " + txid(t.Msg) + "\n")
			}
			b.WriteString(pad + " -> " + br.Op.String() + "\n")
			br.Next.writeTree(b, indent+1)
		}
		return
	}
	if len(ops) == 1 {
		if isTx {
			b.WriteString(pad + "# transaction id " + txid(t.Msg) + "\n")
		}
		b.WriteString(pad + ops[0].Op.String() + "\n")
		ops[0].Next.writeTree(b, indent)
	}
}

func reversedHex(b []byte) string {
	r := slices.Clone(b)
	slices.Reverse(r)
	return hex.EncodeToString(r)
}

// txid is a Bitcoin transaction id: the double SHA-256, byte-reversed.
func txid(tx []byte) string {
	h := sha256.Sum256(tx)
	h = sha256.Sum256(h[:])
	return reversedHex(h[:])
}

// looksLikeTransaction answers what the reference client's comment line
// depends on: whether bitcore-lib's Transaction parser (8.x,
// Transaction.fromBufferReader) accepts msg without throwing. That parser is
// lenient — it checks no trailing bytes and lets a script run past the end —
// and this mirrors it, so `docket ots info` prints the same lines.
func looksLikeTransaction(msg []byte) bool {
	if len(msg) == 0 {
		return true // bitcore treats an empty string as "no data" and builds a new transaction
	}
	p := &txParser{b: msg}
	p.fixed(4) // version
	n := p.varint()
	if p.err {
		return false
	}
	witness := false
	if n == 0 && (p.pos >= len(msg) || msg[p.pos] != 0) {
		p.pos++
		witness = true
		n = p.varint()
	}
	for i := uint64(0); i < n && !p.err; i++ {
		p.pos += 32 // previous txid: a lenient slice
		p.fixed(4)
		l := p.varint()
		if !p.err && uint64(len(msg)-p.pos) < l {
			return false // bitcore checks the script's length
		}
		p.pos += int(l)
		p.fixed(4)
	}
	outs := p.varint()
	for i := uint64(0); i < outs && !p.err; i++ {
		p.fixed(4)
		p.fixed(4)
		l := p.varint()
		if p.err || l > uint64(len(msg)) {
			return false
		}
		p.pos += int(l) // a lenient slice
	}
	if witness {
		for i := uint64(0); i < n && !p.err; i++ {
			items := p.varint()
			for j := uint64(0); j < items && !p.err; j++ {
				l := p.varint()
				if p.err || l > uint64(len(msg)) {
					return false
				}
				p.pos += int(l)
			}
		}
	}
	p.fixed(4) // lock time
	return !p.err
}

// txParser reads like bitcore's BufferReader: fixed-width reads fail past
// the end, slices do not.
type txParser struct {
	b   []byte
	pos int
	err bool
}

func (p *txParser) fixed(n int) []byte {
	if p.err || p.pos < 0 || p.pos+n > len(p.b) {
		p.err = true
		return nil
	}
	v := p.b[p.pos : p.pos+n]
	p.pos += n
	return v
}

func (p *txParser) varint() uint64 {
	first := p.fixed(1)
	if p.err {
		return 0
	}
	switch first[0] {
	case 0xfd:
		if v := p.fixed(2); !p.err {
			return uint64(binary.LittleEndian.Uint16(v))
		}
	case 0xfe:
		if v := p.fixed(4); !p.err {
			return uint64(binary.LittleEndian.Uint32(v))
		}
	case 0xff:
		if v := p.fixed(8); !p.err {
			n := binary.LittleEndian.Uint64(v)
			if n > 1<<53 {
				p.err = true // "number too large to retain precision"
			}
			return n
		}
	default:
		return uint64(first[0])
	}
	return 0
}
