package anchors

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// algECDSAWithSHA256 is the signed-note key type for ECDSA P-256 with SHA-256.
const algECDSAWithSHA256 = 0x02

// KeyHash is the signed-note key hash of an ECDSA key: the first four bytes,
// big-endian, of SHA-256 of its SPKI DER.
func KeyHash(spki []byte) uint32 {
	sum := sha256.Sum256(spki)
	return binary.BigEndian.Uint32(sum[:4])
}

// VerifierKey returns the signed-note verifier key string
// "<name>+<hex key hash>+<base64(0x02 || SPKI DER)>" for an ECDSA P-256 key.
func VerifierKey(name string, spki []byte) string {
	return fmt.Sprintf("%s+%08x+%s", name, KeyHash(spki),
		base64.StdEncoding.EncodeToString(append([]byte{algECDSAWithSHA256}, spki...)))
}

// NewNoteVerifier returns a signed-note verifier for notes signed by the key
// with the given SPKI under the given name. Verification is done by
// github.com/transparency-dev/formats/note, not by this package.
func NewNoteVerifier(name string, spki []byte) (note.Verifier, error) {
	if _, err := ParsePublicKey(spki); err != nil {
		return nil, err
	}
	return fnote.NewECDSAVerifier(VerifierKey(name, spki))
}

// NoteSigner signs notes under one key name with a Signer.
type NoteSigner struct {
	name   string
	hash   uint32
	spki   []byte
	signer Signer
}

// NewNoteSigner returns a NoteSigner for the key name (for Docket, the log's
// origin line) over s.
func NewNoteSigner(name string, s Signer) (*NoteSigner, error) {
	spki, err := SPKI(s.Public())
	if err != nil {
		return nil, err
	}
	return &NoteSigner{name: name, hash: KeyHash(spki), spki: spki, signer: s}, nil
}

// Name returns the key name.
func (n *NoteSigner) Name() string { return n.name }

// SPKI returns the signing key's SPKI DER.
func (n *NoteSigner) SPKI() []byte { return n.spki }

// Verifier returns a verifier for this signer's notes.
func (n *NoteSigner) Verifier() (note.Verifier, error) { return NewNoteVerifier(n.name, n.spki) }

// SignNote returns the signed note: body followed by a blank line and one
// signature line. body must end in a newline.
func (n *NoteSigner) SignNote(ctx context.Context, body []byte) ([]byte, error) {
	return note.Sign(&note.Note{Text: string(body)}, callSigner{ctx: ctx, n: n})
}

// callSigner adapts a NoteSigner to note.Signer for one call: note.Signer has
// no context, so the call's context travels in this short-lived value.
type callSigner struct {
	ctx context.Context
	n   *NoteSigner
}

func (c callSigner) Name() string    { return c.n.name }
func (c callSigner) KeyHash() uint32 { return c.n.hash }
func (c callSigner) Sign(msg []byte) ([]byte, error) {
	digest := sha256.Sum256(msg)
	return c.n.signer.Sign(c.ctx, digest[:])
}

// PinnedVerifiers returns note verifiers for the pinned fingerprints, the
// key material taken from keys (SPKI DER by fingerprint, as a ledger
// recorded them) and checked against its fingerprint. A fingerprint with no
// key, or a key without that fingerprint, is an error: nothing could verify
// against it.
func PinnedVerifiers(origin string, keys map[string][]byte, fingerprints ...string) (note.Verifiers, error) {
	var vs []note.Verifier
	for _, fp := range fingerprints {
		fp = strings.ToLower(fp)
		spki, ok := keys[fp]
		if !ok {
			return nil, fmt.Errorf("no key with fingerprint %s has signed this ledger", fp)
		}
		pub, err := ParsePublicKey(spki)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", fp, err)
		}
		if got, err := Fingerprint(pub); err != nil || got != fp {
			return nil, fmt.Errorf("the key stored under fingerprint %s does not have that fingerprint", fp)
		}
		v, err := NewNoteVerifier(origin, spki)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", fp, err)
		}
		vs = append(vs, v)
	}
	return note.VerifierList(vs...), nil
}
