package anchors_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/evidence-parity/docket/anchors"
)

func TestFileSignerCreatesPrivateKeyOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "checkpoint.pem")
	if _, err := anchors.OpenFileSigner(path, false); err == nil {
		t.Fatal("opening a missing key without create must fail")
	}
	s1, err := anchors.OpenFileSigner(path, true)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
	s2, err := anchors.OpenFileSigner(path, true)
	if err != nil {
		t.Fatal(err)
	}
	fp1, _ := anchors.Fingerprint(s1.Public())
	fp2, _ := anchors.Fingerprint(s2.Public())
	if fp1 != fp2 {
		t.Fatalf("reopening changed the key: %s then %s", fp1, fp2)
	}
	os.Chmod(path, 0o644)
	if _, err := anchors.OpenFileSigner(path, false); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable key: got %v, want a refusal", err)
	}
}

// TestFingerprintMatchesOpenSSL checks the fingerprint against the SPKI DER
// that openssl derives from the same private key file.
func TestFingerprintMatchesOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed: nothing independent to compare with")
	}
	path := filepath.Join(t.TempDir(), "k.pem")
	s, err := anchors.OpenFileSigner(path, true)
	if err != nil {
		t.Fatal(err)
	}
	der, err := exec.Command(openssl, "pkey", "-in", path, "-pubout", "-outform", "DER").Output()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	fp, err := anchors.Fingerprint(s.Public())
	if err != nil {
		t.Fatal(err)
	}
	if want := hex.EncodeToString(sum[:]); fp != want {
		t.Fatalf("fingerprint %s, openssl's SPKI gives %s", fp, want)
	}
}

func TestNoteSignatureVerifiesOnlyForItsBody(t *testing.T) {
	s, err := anchors.OpenFileSigner(filepath.Join(t.TempDir(), "k.pem"), true)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := anchors.NewNoteSigner("docket/test", s)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := ns.SignNote(context.Background(), []byte("docket/test\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := ns.Verifier() // github.com/transparency-dev/formats/note's ECDSA verifier
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(signed, note.VerifierList(v)); err != nil {
		t.Fatalf("open signed note: %v\n%s", err, signed)
	}
	forged := strings.Replace(string(signed), "\n3\n", "\n4\n", 1)
	if _, err := note.Open([]byte(forged), note.VerifierList(v)); err == nil {
		t.Fatal("a note whose body was changed after signing verified")
	}
	other, _ := anchors.NewNoteSigner("docket/other", s)
	ov, _ := other.Verifier()
	if _, err := note.Open(signed, note.VerifierList(ov)); err == nil {
		t.Fatal("a note verified under another key name")
	}
}
