package ots

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// HeaderSize is the size of a Bitcoin block header.
const HeaderSize = 80

// Header is a Bitcoin block header (80 bytes, as serialized on the wire).
type Header [HeaderSize]byte

// MerkleRoot is the header's merkle root in internal byte order (bytes
// 36..67): what a Bitcoin attestation's message must equal.
func (h Header) MerkleRoot() []byte { return h[36:68] }

// PrevHash is the previous block's hash in internal byte order.
func (h Header) PrevHash() []byte { return h[4:36] }

// Time is the header's timestamp.
func (h Header) Time() time.Time {
	return time.Unix(int64(binary.LittleEndian.Uint32(h[68:72])), 0).UTC()
}

// Bits is the compact encoding of the proof-of-work target.
func (h Header) Bits() uint32 { return binary.LittleEndian.Uint32(h[72:76]) }

// Hash is the double SHA-256 of the header in internal byte order.
func (h Header) Hash() [32]byte {
	s := sha256.Sum256(h[:])
	return sha256.Sum256(s[:])
}

// BlockHash is the block hash as explorers print it (byte-reversed hex).
func (h Header) BlockHash() string {
	s := h.Hash()
	return reversedHex(s[:])
}

// ErrBadProofOfWork is returned for a header whose hash does not meet the
// target its nBits field encodes.
var ErrBadProofOfWork = errors.New("bad proof of work")

// CheckProofOfWork checks that the header's hash, read as a little-endian
// number, does not exceed the target encoded in its nBits.
func (h Header) CheckProofOfWork() error {
	target, err := compactTarget(h.Bits())
	if err != nil {
		return fmt.Errorf("block %s: %w", h.BlockHash(), err)
	}
	hash := h.Hash()
	n := new(big.Int).SetBytes(reversed(hash[:]))
	if n.Cmp(target) > 0 {
		return fmt.Errorf("block %s: %w: hash exceeds the target of nBits %#08x", h.BlockHash(), ErrBadProofOfWork, h.Bits())
	}
	return nil
}

// compactTarget decodes Bitcoin's compact target encoding (nBits): a
// base-256 exponent byte and a 23-bit mantissa with a sign bit.
func compactTarget(bits uint32) (*big.Int, error) {
	exp := uint(bits >> 24)
	mant := int64(bits & 0x007fffff)
	if bits&0x00800000 != 0 && mant != 0 {
		return nil, fmt.Errorf("%w: nBits %#08x encodes a negative target", ErrBadProofOfWork, bits)
	}
	if mant == 0 {
		return nil, fmt.Errorf("%w: nBits %#08x encodes a zero target", ErrBadProofOfWork, bits)
	}
	t := big.NewInt(mant)
	if exp <= 3 {
		t.Rsh(t, 8*(3-exp))
	} else {
		t.Lsh(t, 8*(exp-3))
	}
	if t.Sign() == 0 {
		return nil, fmt.Errorf("%w: nBits %#08x encodes a zero target", ErrBadProofOfWork, bits)
	}
	if t.BitLen() > 256 {
		return nil, fmt.Errorf("%w: nBits %#08x encodes a target over 256 bits", ErrBadProofOfWork, bits)
	}
	return t, nil
}

func reversed(b []byte) []byte {
	r := make([]byte, len(b))
	for i := range b {
		r[len(b)-1-i] = b[i]
	}
	return r
}

// Headers is a set of block headers supplied by the user for offline
// verification.
type Headers struct {
	byHeight map[uint64]Header
	// loose are headers given without a height.
	loose []Header
	// AllowLowDifficulty accepts headers whose target is easier than
	// Bitcoin mainnet's proof-of-work limit (regtest, synthetic test
	// chains). Without it such a header fails: its proof of work costs
	// nothing to forge.
	AllowLowDifficulty bool
}

// MainnetPowLimit is the compact form of the easiest target Bitcoin
// mainnet allows (Bitcoin Core chainparams powLimit, nBits 0x1d00ffff).
const MainnetPowLimit = 0x1d00ffff

var mainnetPowLimit, _ = compactTarget(MainnetPowLimit)

// CheckDifficulty refuses a header whose target is easier than mainnet's
// limit: anyone can mine such a header in a moment, so its "proof of work"
// proves nothing.
func (h Header) CheckDifficulty() error {
	target, err := compactTarget(h.Bits())
	if err != nil {
		return fmt.Errorf("block %s: %w", h.BlockHash(), err)
	}
	if target.Cmp(mainnetPowLimit) > 0 {
		return fmt.Errorf("block %s: %w: nBits %#08x is easier than Bitcoin mainnet allows (%#08x); a header like this costs nothing to forge",
			h.BlockHash(), ErrBadProofOfWork, h.Bits(), MainnetPowLimit)
	}
	return nil
}

// ParseHeaders reads block headers, one per line, each 160 hex digits,
// optionally preceded by its height and a space or colon ("358391 0100…").
// Blank lines and lines starting with # are skipped. When several headers
// are given they must form a chain, each linking to the one before it by
// its previous-block hash, and a height given for one of them carries to
// those that follow. A header given without any height is matched to an
// attestation by its merkle root; a single such header is taken to be the
// block the attestation names.
func ParseHeaders(r io.Reader) (*Headers, error) {
	hs := &Headers{byHeight: map[uint64]Header{}}
	sc := bufio.NewScanner(io.LimitReader(r, 64<<20))
	var prev *Header
	var prevHeight uint64
	havePrevHeight := false
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		var height uint64
		hasHeight := false
		if i := strings.IndexAny(s, " :\t"); i >= 0 {
			v, err := strconv.ParseUint(s[:i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("headers line %d: height %q is not a number", line, s[:i])
			}
			height, hasHeight = v, true
			s = strings.TrimSpace(s[i+1:])
		}
		raw, err := hex.DecodeString(s)
		if err != nil || len(raw) != HeaderSize {
			return nil, fmt.Errorf("headers line %d: want %d hex digits of a block header", line, 2*HeaderSize)
		}
		h := Header(raw)
		if prev != nil {
			ph := prev.Hash()
			if !bytes.Equal(h.PrevHash(), ph[:]) {
				return nil, fmt.Errorf("headers line %d: block %s does not link to the block before it (%s)", line, h.BlockHash(), prev.BlockHash())
			}
			if !hasHeight && havePrevHeight {
				height, hasHeight = prevHeight+1, true
			} else if hasHeight && havePrevHeight && height != prevHeight+1 {
				return nil, fmt.Errorf("headers line %d: height %d does not follow %d", line, height, prevHeight)
			}
		}
		if hasHeight {
			hs.byHeight[height] = h
		} else {
			hs.loose = append(hs.loose, h)
		}
		prev, prevHeight, havePrevHeight = &h, height, hasHeight
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("headers: %w", err)
	}
	if len(hs.byHeight) == 0 && len(hs.loose) == 0 {
		return nil, errors.New("headers: no block header found")
	}
	return hs, nil
}

// ErrHeaderMissing is returned when no supplied header is the attested block.
var ErrHeaderMissing = errors.New("block header not supplied")

// ErrMerkleRootMismatch is returned when the attested block's merkle root is
// not the timestamp's commitment.
var ErrMerkleRootMismatch = errors.New("merkle root mismatch")

// HeaderSource finds the header of the block an attestation names.
type HeaderSource interface {
	// HeaderAt returns the header of the block at height. It MAY use the
	// commitment to pick among headers whose height it does not know; it
	// MUST NOT check the commitment itself (VerifyBitcoin does), and returns
	// an error wrapping ErrHeaderMissing when it has no such block.
	HeaderAt(ctx context.Context, height uint64, commitment []byte) (Header, error)
}

// HeaderAt finds the supplied header for an attestation of commitment at
// height.
func (hs *Headers) HeaderAt(_ context.Context, height uint64, commitment []byte) (Header, error) {
	if h, ok := hs.byHeight[height]; ok {
		return h, nil
	}
	for _, h := range hs.loose {
		if bytes.Equal(h.MerkleRoot(), commitment) {
			return h, nil
		}
	}
	if len(hs.byHeight) == 0 && len(hs.loose) == 1 {
		return hs.loose[0], nil
	}
	return Header{}, fmt.Errorf("%w for block %d", ErrHeaderMissing, height)
}

// heightKnown reports whether the headers name the height of the block
// given for height (false: a header without a height, matched by its
// merkle root, so the height is only the proof's claim).
func (hs *Headers) heightKnown(height uint64) bool {
	_, ok := hs.byHeight[height]
	return ok
}

// BitcoinProof is a verified Bitcoin attestation.
type BitcoinProof struct {
	Height    uint64
	Time      time.Time
	BlockHash string
	// HeightClaimed is true when the header was supplied without its
	// height: the block is verified, its height is the proof's claim.
	HeightClaimed bool
}

// VerifyBitcoin checks an attestation of commitment at height against a
// header source: the block at that height must carry commitment as its
// merkle root and meet its proof-of-work target.
func VerifyBitcoin(ctx context.Context, src HeaderSource, height uint64, commitment []byte) (BitcoinProof, error) {
	if len(commitment) != 32 {
		return BitcoinProof{}, fmt.Errorf("block %d: commitment is %d bytes, not a 32-byte merkle root", height, len(commitment))
	}
	h, err := src.HeaderAt(ctx, height, commitment)
	if err != nil {
		return BitcoinProof{}, err
	}
	if !bytes.Equal(h.MerkleRoot(), commitment) {
		return BitcoinProof{}, fmt.Errorf("block %d: %w: the proof commits to %s, the block's merkle root is %s",
			height, ErrMerkleRootMismatch, reversedHex(commitment), reversedHex(h.MerkleRoot()))
	}
	if err := h.CheckProofOfWork(); err != nil {
		return BitcoinProof{}, err
	}
	hs, supplied := src.(*Headers)
	if !supplied || !hs.AllowLowDifficulty {
		if err := h.CheckDifficulty(); err != nil {
			return BitcoinProof{}, err
		}
	}
	return BitcoinProof{Height: height, Time: h.Time(), BlockHash: h.BlockHash(), HeightClaimed: supplied && !hs.heightKnown(height)}, nil
}

// ReversedHex prints a hash byte-reversed, as block explorers print merkle
// roots and block hashes.
func ReversedHex(b []byte) string { return reversedHex(b) }
