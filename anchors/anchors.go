// Package anchors holds Docket's trust anchors: the key that signs
// checkpoints (a local PEM file for development, AWS KMS in production) and
// the signed-note encoding of checkpoint signatures.
//
// Checkpoint signatures follow C2SP signed-note with ECDSA P-256 (key type
// 0x02, the encoding github.com/transparency-dev/formats/note verifies): the
// signature is ASN.1 DER ECDSA over SHA-256 of the note body, and the key hash
// is the first four bytes of SHA-256 of the public key's SPKI DER.
package anchors

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
)

// Signer signs SHA-256 digests with an ECDSA P-256 key.
//
// Sign MUST return an ASN.1 DER ECDSA signature over digest exactly as given
// (it MUST NOT hash it again), and MUST be safe for concurrent use. A Signer
// backed by a remote service returns an error rather than blocking past ctx.
// Public MUST return the *ecdsa.PublicKey matching every signature.
type Signer interface {
	Sign(ctx context.Context, digest []byte) ([]byte, error)
	Public() crypto.PublicKey
}

// ErrUnsupportedKey is returned for keys that are not ECDSA P-256.
var ErrUnsupportedKey = errors.New("key is not ECDSA P-256")

// SPKI returns the DER-encoded SubjectPublicKeyInfo of an ECDSA P-256 key.
func SPKI(pub crypto.PublicKey) ([]byte, error) {
	k, ok := pub.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		return nil, ErrUnsupportedKey
	}
	return x509.MarshalPKIXPublicKey(k)
}

// Fingerprint is what auditors pin: the lower-case hex SHA-256 of the public
// key's SPKI DER.
func Fingerprint(pub crypto.PublicKey) (string, error) {
	der, err := SPKI(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// ParsePublicKey parses an SPKI DER public key and requires ECDSA P-256.
func ParsePublicKey(der []byte) (*ecdsa.PublicKey, error) {
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, ErrUnsupportedKey
	}
	return pub, nil
}
