package kms_test

// These tests run against a real local-kms in a private network namespace;
// see package kmstest.

import (
	"crypto/ecdsa"
	"encoding/pem"
	"net"
	"testing"

	"github.com/evidence-parity/docket/anchors"
	"github.com/evidence-parity/docket/anchors/kms/kmstest"
)

func TestMain(m *testing.M) { kmstest.Main(m) }

// pinned returns what an auditor derives from a public key PEM: the
// fingerprint to pin, and the SPKI DER.
func pinned(t *testing.T, pubPEM []byte) (fingerprint string, spki []byte) {
	t.Helper()
	block, _ := pem.Decode(pubPEM)
	if block == nil || block.Type != "PUBLIC KEY" {
		t.Fatalf("not a PUBLIC KEY PEM:\n%s", pubPEM)
	}
	pub, err := anchors.ParsePublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := anchors.Fingerprint(pub)
	if err != nil {
		t.Fatal(err)
	}
	return fp, block.Bytes
}

// fingerprintOf is the fingerprint of a public key.
func fingerprintOf(t *testing.T, pub *ecdsa.PublicKey) string {
	t.Helper()
	fp, err := anchors.Fingerprint(pub)
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

// TestPrivateNetwork guards the network rule: where local-kms runs, this
// process sees no network interface but its own loopback.
func TestPrivateNetwork(t *testing.T) {
	if !kmstest.InPrivateNetwork() {
		kmstest.Unavailable(t, "no private network namespace")
	}
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 {
			t.Errorf("interface %s (%v) is visible: the tests are not in a private network namespace", i.Name, i.Flags)
		}
	}
}
