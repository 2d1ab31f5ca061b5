package ots

import (
	"encoding/hex"
	"fmt"
	"strconv"
)

// Attestation tags (python-opentimestamps core/notary.py).
var (
	TagPending  = [8]byte{0x83, 0xdf, 0xe3, 0x0d, 0x2e, 0xf9, 0x0c, 0x8e}
	TagBitcoin  = [8]byte{0x05, 0x88, 0x96, 0x0d, 0x73, 0xd7, 0x19, 0x01}
	TagLitecoin = [8]byte{0x06, 0x86, 0x9a, 0x0d, 0x73, 0xd7, 0x1b, 0x45}
	TagEthereum = [8]byte{0x30, 0xfe, 0x80, 0x87, 0xb5, 0xc7, 0xea, 0xd7}
)

// AttestationKind says what an attestation claims.
type AttestationKind int

// The kinds of attestation Docket understands; any other tag is kept as
// Unknown and written back unchanged.
const (
	Unknown AttestationKind = iota
	Pending
	Bitcoin
	Litecoin
	Ethereum
)

// Attestation states that the message of the timestamp node holding it
// existed at some point: in a Bitcoin block header at Height, or at a
// calendar (URI) that has yet to anchor it.
type Attestation struct {
	Kind AttestationKind
	Tag  [8]byte
	// Height is the block height of a Bitcoin, Litecoin or Ethereum
	// attestation.
	Height uint64
	// URI is a pending attestation's calendar.
	URI string
	// Payload is the serialized payload, kept as read so that a parsed file
	// re-serializes byte for byte.
	Payload []byte
}

// NewPending returns a pending attestation for a calendar URI.
func NewPending(uri string) (Attestation, error) {
	if err := checkURI(uri); err != nil {
		return Attestation{}, err
	}
	return Attestation{Kind: Pending, Tag: TagPending, URI: uri, Payload: appendVarbytes(nil, []byte(uri))}, nil
}

// NewBitcoin returns a Bitcoin block header attestation for a height.
func NewBitcoin(height uint64) Attestation {
	return Attestation{Kind: Bitcoin, Tag: TagBitcoin, Height: height, Payload: appendVaruint(nil, height)}
}

// String prints the attestation as the reference clients do, e.g.
// BitcoinBlockHeaderAttestation(358391) or
// PendingAttestation('https://alice.btc.calendar.opentimestamps.org').
func (a Attestation) String() string {
	switch a.Kind {
	case Pending:
		return "PendingAttestation('" + a.URI + "')"
	case Bitcoin:
		return "BitcoinBlockHeaderAttestation(" + strconv.FormatUint(a.Height, 10) + ")"
	case Litecoin:
		return "LitecoinBlockHeaderAttestation(" + strconv.FormatUint(a.Height, 10) + ")"
	case Ethereum:
		return "EthereumBlockHeaderAttestation(" + strconv.FormatUint(a.Height, 10) + ")"
	}
	return "UnknownAttestation " + hex.EncodeToString(a.Tag[:]) + " " + hex.EncodeToString(a.Payload)
}

// Equal reports whether two attestations are the same claim.
func (a Attestation) Equal(b Attestation) bool {
	return a.Tag == b.Tag && string(a.Payload) == string(b.Payload)
}

func readAttestation(r *reader) (Attestation, error) {
	start := r.pos
	tag, err := r.bytes(8)
	if err != nil {
		return Attestation{}, err
	}
	payload, err := r.varbytes(0, MaxPayloadLength, "attestation payload")
	if err != nil {
		return Attestation{}, err
	}
	a := Attestation{Tag: [8]byte(tag), Payload: payload}
	p := &reader{b: payload}
	switch a.Tag {
	case TagPending:
		a.Kind = Pending
		uri, err := p.varbytes(0, MaxURILength, "calendar URI")
		if err != nil {
			return Attestation{}, fmt.Errorf("pending attestation at byte %d: %w", start, err)
		}
		if err := checkURI(string(uri)); err != nil {
			return Attestation{}, fmt.Errorf("pending attestation at byte %d: %w", start, err)
		}
		a.URI = string(uri)
	case TagBitcoin, TagLitecoin, TagEthereum:
		a.Kind = map[[8]byte]AttestationKind{TagBitcoin: Bitcoin, TagLitecoin: Litecoin, TagEthereum: Ethereum}[a.Tag]
		if a.Height, err = p.varuint(); err != nil {
			return Attestation{}, fmt.Errorf("block header attestation at byte %d: %w", start, err)
		}
	default:
		return a, nil
	}
	if !p.eof() {
		return Attestation{}, invalidf("attestation at byte %d has %d bytes of trailing garbage in its payload", start, len(p.b)-p.pos)
	}
	return a, nil
}

func (a Attestation) appendTo(b []byte) []byte {
	b = append(b, a.Tag[:]...)
	return appendVarbytes(b, a.Payload)
}

// checkURI applies notary.py's rule for calendar URIs: at most 1000
// characters from a small safe alphabet, so a proof cannot smuggle control
// characters into what a client prints or fetches.
func checkURI(uri string) error {
	if len(uri) > MaxURILength {
		return invalidf("calendar URI of %d bytes exceeds %d", len(uri), MaxURILength)
	}
	for i := 0; i < len(uri); i++ {
		c := uri[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '/' || c == ':') {
			return invalidf("calendar URI %q has a character outside [A-Za-z0-9-._/:]", uri)
		}
	}
	return nil
}
