package anchors

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// FileSigner is a Signer over an ECDSA P-256 private key kept in a local PEM
// file (PKCS#8). It is the embedded default for development: the key lives on
// the same machine as the ledger, so it is not externally custodied.
type FileSigner struct {
	key  *ecdsa.PrivateKey
	path string
}

var _ Signer = (*FileSigner)(nil)

// ErrNoKey is returned by OpenFileSigner when the key file does not exist and
// create is false.
var ErrNoKey = errors.New("no signing key")

// OpenFileSigner loads the PEM key at path. When the file does not exist and
// create is true, it generates a new P-256 key and writes it with mode 0600
// (the directory with 0700). A key file readable by group or others is
// refused, as ssh refuses such keys.
func OpenFileSigner(path string, create bool) (*FileSigner, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if !create {
			return nil, fmt.Errorf("%w: %s does not exist (run: docket keys init)", ErrNoKey, path)
		}
		return createFileSigner(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("stat key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key %s has mode %v: it must be readable by its owner only (chmod 600)", path, st.Mode().Perm())
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("key %s: no PKCS#8 \"PRIVATE KEY\" PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, fmt.Errorf("key %s: %w", path, ErrUnsupportedKey)
	}
	return &FileSigner{key: ek, path: path}, nil
}

func createFileSigner(path string) (*FileSigner, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create key directory: %w", err)
	}
	// O_EXCL: never overwrite a key another process created meanwhile.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create key: %w", err)
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return nil, fmt.Errorf("write key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("write key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write key: %w", err)
	}
	return &FileSigner{key: k, path: path}, nil
}

// Sign signs digest (a SHA-256 digest) with the file key.
func (s *FileSigner) Sign(_ context.Context, digest []byte) ([]byte, error) {
	return ecdsa.SignASN1(rand.Reader, s.key, digest)
}

// Public returns the key's *ecdsa.PublicKey.
func (s *FileSigner) Public() crypto.PublicKey { return &s.key.PublicKey }

// Path returns the key file's path.
func (s *FileSigner) Path() string { return s.path }

// PublicPEM encodes a public key as a PEM "PUBLIC KEY" block (SPKI).
func PublicPEM(pub crypto.PublicKey) ([]byte, error) {
	der, err := SPKI(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
