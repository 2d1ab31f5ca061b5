package kms_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/note"

	"github.com/evidence-parity/docket/anchors"
	"github.com/evidence-parity/docket/anchors/kms"
	"github.com/evidence-parity/docket/anchors/kms/kmstest"
	"github.com/evidence-parity/docket/ledger"
	"github.com/evidence-parity/docket/ledger/sqlite"
	"github.com/evidence-parity/docket/ledger/storetest"
)

// newSigner builds a Signer for keyID against l, as the CLI would with
// --kms-endpoint.
func newSigner(t *testing.T, l *kmstest.LocalKMS, keyID string) *kms.Signer {
	t.Helper()
	s, err := kms.New(context.Background(), kms.Config{KeyID: keyID, Endpoint: l.Endpoint})
	if err != nil {
		t.Fatalf("kms.New(%s): %v", keyID, err)
	}
	return s
}

// openStore opens a sqlite ledger at path whose checkpoints signer signs.
func openStore(t *testing.T, path string, signer anchors.Signer) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{
		Signer:             signer,
		CheckpointInterval: 20 * time.Millisecond,
		Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
		WitnessPath:        path + ".witness",
	})
	if err != nil {
		t.Fatalf("open ledger: %v", err)
	}
	return s
}

// appendEvents appends n events to one stream and returns the log size.
func appendEvents(t *testing.T, s *sqlite.Store, stream string, n int) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var last ledger.Record
	for i := range n {
		recs, err := s.Append(ctx, stream, ledger.Any, storetest.Event("Tick", "i", i))
		if err != nil {
			t.Fatalf("append: %v", err)
		}
		last = recs[0]
	}
	return last.Position + 1
}

// latestSize returns the size of the store's latest checkpoint (0 if none).
func latestSize(t *testing.T, s *sqlite.Store) uint64 {
	t.Helper()
	n, found, err := s.LatestCheckpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !found {
		return 0
	}
	cp, err := ledger.CheckpointBody(n)
	if err != nil {
		t.Fatal(err)
	}
	return cp.Size
}

// verifyAtRest reopens the closed ledger read-only and verifies it pinning
// the given fingerprints, as `docket verify ledger --fingerprint` does.
func verifyAtRest(t *testing.T, path string, fingerprints ...string) (ledger.Report, error) {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("open ledger read-only: %v", err)
	}
	defer s.Close()
	return s.Verify(context.Background(), fingerprints, nil)
}

// TestLedgerCheckpointsSignedInKMS: a ledger whose checkpoints a KMS key
// signs verifies with nothing but that key's public key from KMS.
func TestLedgerCheckpointsSignedInKMS(t *testing.T) {
	l := kmstest.Start(t, "")
	keyID := l.CreateKey(t, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify)
	signer := newSigner(t, l, keyID)
	if !strings.HasSuffix(signer.KeyARN(), "key/"+keyID) {
		t.Errorf("KeyARN() = %s, want the ARN of key %s", signer.KeyARN(), keyID)
	}
	if err := signer.Check(context.Background()); err != nil {
		t.Errorf("Check() = %v, want nil for an enabled key", err)
	}

	path := filepath.Join(t.TempDir(), "ledger.db")
	s := openStore(t, path, signer)
	size := appendEvents(t, s, "change-1", 5)
	cp, err := s.Checkpoint(context.Background())
	if err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	if cp.Size != size {
		t.Errorf("checkpoint size %d, want %d", cp.Size, size)
	}
	size = appendEvents(t, s, "change-2", 3)
	origin := s.Origin()
	if err := s.Close(); err != nil { // signs the final checkpoint
		t.Fatalf("close: %v", err)
	}

	fp, spki := pinned(t, l.PublicKeyPEM(t, keyID))
	if got := fingerprintOf(t, signer.Public().(*ecdsa.PublicKey)); got != fp {
		t.Fatalf("signer's fingerprint %s, KMS public key's %s", got, fp)
	}
	rep, err := verifyAtRest(t, path, fp)
	if err != nil {
		t.Fatalf("verify pinning %s: %v", fp, err)
	}
	if rep.Events != size || rep.Latest.Size != size || rep.Checkpoints < 2 {
		t.Errorf("report %+v, want %d events, latest size %d, at least 2 checkpoints", rep, size, size)
	}

	// The same, with the verifier built from the PEM alone rather than from
	// the key material the ledger recorded.
	v, err := anchors.NewNoteVerifier(origin, spki)
	if err != nil {
		t.Fatal(err)
	}
	ro, err := sqlite.Open(context.Background(), path, sqlite.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ledger.Verify(context.Background(), ro, ledger.VerifyOptions{Origin: origin, Verifiers: note.VerifierList(v)}); err != nil {
		t.Errorf("verify with the PEM's verifier: %v", err)
	}
}

// TestSignDigest: Sign signs the digest as given, without hashing it again,
// and refuses anything but 32 bytes.
func TestSignDigest(t *testing.T) {
	l := kmstest.Start(t, "")
	signer := newSigner(t, l, l.CreateKey(t, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify))
	pub := signer.Public().(*ecdsa.PublicKey)
	digest := sha256.Sum256([]byte("checkpoint body\n"))
	sig, err := signer.Sign(context.Background(), digest[:])
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(pub, digest[:], sig) {
		t.Error("signature does not verify over the digest as given")
	}
	twice := sha256.Sum256(digest[:])
	if ecdsa.VerifyASN1(pub, twice[:], sig) {
		t.Error("signature verifies over the hash of the digest: KMS hashed it again")
	}
	for _, n := range []int{0, 31, 33, 64} {
		_, err := signer.Sign(context.Background(), make([]byte, n))
		if !kms.IsPermanent(err) || !strings.Contains(fmt.Sprint(err), "want 32") {
			t.Errorf("Sign(%d bytes) = %v, want a permanent error about the length", n, err)
		}
	}
}

// TestSeededKeyByAlias: a key seeded into local-kms from a YAML file,
// used through its alias.
func TestSeededKeyByAlias(t *testing.T) {
	keyID := uuid.NewString()
	seed, priv := kmstest.SeedP256(t, keyID, "alias/docket-checkpoints")
	l := kmstest.Start(t, seed)

	signer := newSigner(t, l, "alias/docket-checkpoints")
	if got, want := fingerprintOf(t, signer.Public().(*ecdsa.PublicKey)), fingerprintOf(t, &priv.PublicKey); got != want {
		t.Fatalf("fingerprint through the alias %s, of the seeded key %s", got, want)
	}
	if !strings.HasSuffix(signer.KeyARN(), "key/"+keyID) {
		t.Errorf("KeyARN() = %s, want the seeded key's ARN", signer.KeyARN())
	}
	if err := signer.Check(context.Background()); err != nil {
		t.Errorf("Check() = %v", err)
	}

	path := filepath.Join(t.TempDir(), "ledger.db")
	s := openStore(t, path, signer)
	size := appendEvents(t, s, "agent-1", 4)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fp, _ := pinned(t, l.PublicKeyPEM(t, "alias/docket-checkpoints"))
	rep, err := verifyAtRest(t, path, fp)
	if err != nil || rep.Latest.Size != size {
		t.Fatalf("verify: %+v, %v; want latest size %d", rep, err, size)
	}
}

// TestUnusableKeys: keys that cannot sign checkpoints are refused at
// construction with a permanent error naming the key and the cause.
func TestUnusableKeys(t *testing.T) {
	l := kmstest.Start(t, "")
	disabled := l.CreateKey(t, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify)
	if _, err := l.Admin.DisableKey(context.Background(), &awskms.DisableKeyInput{KeyId: aws.String(disabled)}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, keyID, want string
	}{
		{"P-384", l.CreateKey(t, types.KeySpecEccNistP384, types.KeyUsageTypeSignVerify), "wrong key spec ECC_NIST_P384"},
		{"secp256k1", l.CreateKey(t, types.KeySpecEccSecgP256k1, types.KeyUsageTypeSignVerify), "wrong key spec ECC_SECG_P256K1"},
		{"RSA", l.CreateKey(t, types.KeySpecRsa2048, types.KeyUsageTypeSignVerify), "wrong key spec RSA_2048"},
		{"symmetric", l.CreateKey(t, types.KeySpecSymmetricDefault, types.KeyUsageTypeEncryptDecrypt), "UnsupportedOperationException"},
		{"disabled", disabled, "key is disabled (KMS DisabledException"},
		{"missing alias", "alias/nothing-here", "key not found (KMS NotFoundException"},
		{"missing key", uuid.NewString(), "key not found (KMS NotFoundException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := kms.New(context.Background(), kms.Config{KeyID: tc.keyID, Endpoint: l.Endpoint})
			if err == nil {
				t.Fatal("got a signer, want an error")
			}
			t.Log(err)
			if !kms.IsPermanent(err) {
				t.Errorf("IsPermanent(%v) = false, want true", err)
			}
			var ke *kms.Error
			if !errors.As(err, &ke) || ke.Key != tc.keyID {
				t.Errorf("error %v does not name key %s", err, tc.keyID)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "kms key "+tc.keyID+": ") || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q, want it to start with %q and contain %q", msg, "kms key "+tc.keyID+": ", tc.want)
			}
		})
	}
}

// TestDisabledKey: while the key is disabled, appends go on and checkpoints
// stop with a permanent error; once it is enabled again they catch up.
func TestDisabledKey(t *testing.T) {
	l := kmstest.Start(t, "")
	keyID := l.CreateKey(t, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify)
	signer := newSigner(t, l, keyID)
	path := filepath.Join(t.TempDir(), "ledger.db")
	s := openStore(t, path, signer)
	defer s.Close()
	ctx := context.Background()

	signedSize := appendEvents(t, s, "change-1", 3)
	if _, err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}

	if _, err := l.Admin.DisableKey(ctx, &awskms.DisableKeyInput{KeyId: aws.String(keyID)}); err != nil {
		t.Fatal(err)
	}
	if err := signer.Check(ctx); !kms.IsPermanent(err) || !strings.Contains(err.Error(), "key is disabled") {
		t.Errorf("Check() = %v, want a permanent error saying the key is disabled", err)
	}
	if _, err := kms.New(ctx, kms.Config{KeyID: keyID, Endpoint: l.Endpoint}); !kms.IsPermanent(err) {
		t.Errorf("kms.New on a disabled key = %v, want a permanent error", err)
	}

	size := appendEvents(t, s, "change-1", 4) // appends never wait on KMS
	_, err := s.Checkpoint(ctx)
	if !kms.IsPermanent(err) || !strings.Contains(err.Error(), "kms key "+keyID+": sign: key is disabled (KMS DisabledException") {
		t.Fatalf("checkpoint with the key disabled: %v, want a permanent error naming the key and the cause", err)
	}
	if got := latestSize(t, s); got != signedSize {
		t.Errorf("latest checkpoint size %d while the key is disabled, want %d", got, signedSize)
	}
	size = appendEvents(t, s, "change-2", 2)

	if _, err := l.Admin.EnableKey(ctx, &awskms.EnableKeyInput{KeyId: aws.String(keyID)}); err != nil {
		t.Fatal(err)
	}
	if err := signer.Check(ctx); err != nil {
		t.Errorf("Check() after EnableKey = %v", err)
	}
	// The store's background checkpointer retries each interval.
	deadline := time.Now().Add(20 * time.Second)
	for latestSize(t, s) != size {
		if time.Now().After(deadline) {
			t.Fatalf("checkpoints did not catch up after EnableKey: latest %d, log %d, last error %v", latestSize(t, s), size, s.CheckpointErr())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fp, _ := pinned(t, l.PublicKeyPEM(t, keyID))
	if _, err := verifyAtRest(t, path, fp); err != nil {
		t.Errorf("verify: %v", err)
	}
}

// TestRotation: checkpoints signed by key A, then by key B after the store
// is reopened with it, verify when both keys are pinned and fail, naming the
// checkpoint, when only one is.
func TestRotation(t *testing.T) {
	l := kmstest.Start(t, "")
	keyA := l.CreateKey(t, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify)
	keyB := l.CreateKey(t, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify)
	path := filepath.Join(t.TempDir(), "ledger.db")

	s := openStore(t, path, newSigner(t, l, keyA))
	sizeA := appendEvents(t, s, "change-1", 3)
	originA := s.Origin()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, path, newSigner(t, l, keyB))
	if s.Origin() != originA {
		t.Fatalf("origin changed on reopening: %s, was %s", s.Origin(), originA)
	}
	sizeB := appendEvents(t, s, "change-1", 2)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	fpA, _ := pinned(t, l.PublicKeyPEM(t, keyA))
	fpB, _ := pinned(t, l.PublicKeyPEM(t, keyB))
	rep, err := verifyAtRest(t, path, fpA, fpB)
	if err != nil {
		t.Fatalf("verify pinning both keys: %v", err)
	}
	if rep.Checkpoints != 2 || rep.Latest.Size != sizeB {
		t.Errorf("report %+v, want 2 checkpoints, latest size %d", rep, sizeB)
	}

	for _, tc := range []struct {
		name     string
		pin      string
		unsigned uint64 // the checkpoint no pinned key signed
	}{
		{"only A", fpA, sizeB},
		{"only B", fpB, sizeA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := verifyAtRest(t, path, tc.pin)
			var f *ledger.Failure
			if !errors.As(err, &f) {
				t.Fatalf("verify = %v, want a *ledger.Failure", err)
			}
			if f.Checkpoint != tc.unsigned || !strings.Contains(err.Error(), fmt.Sprintf("checkpoint at size %d", tc.unsigned)) {
				t.Errorf("failure %q (checkpoint %d), want it to name the checkpoint at size %d", err, f.Checkpoint, tc.unsigned)
			}
		})
	}
}

// TestTransientFailuresRetried: throttling and server faults in front of a
// real local-kms are retried until KMS answers; a KMS that cannot be reached
// gives a transient error, and the caller's deadline bounds the retrying.
func TestTransientFailuresRetried(t *testing.T) {
	l := kmstest.Start(t, "")
	keyID := l.CreateKey(t, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify)

	// A proxy that fails the first Sign attempts of each call the way AWS
	// does under load, then passes requests on to local-kms.
	target, err := url.Parse(l.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var signs, failFirst atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".Sign") {
			n := signs.Add(1)
			switch {
			case n <= failFirst.Load()/2:
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprint(w, `{"__type":"ThrottlingException","message":"Rate exceeded"}`)
				return
			case n <= failFirst.Load():
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				w.WriteHeader(http.StatusInternalServerError)
				fmt.Fprint(w, `{"__type":"KMSInternalException","message":"internal error"}`)
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	defer srv.Close()

	signer, err := kms.New(context.Background(), kms.Config{KeyID: keyID, Endpoint: srv.URL, MaxAttempts: 4, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("x"))

	failFirst.Store(2) // one throttle, one server fault, then success
	if _, err := signer.Sign(context.Background(), digest[:]); err != nil {
		t.Fatalf("sign after transient failures: %v", err)
	}
	if got := signs.Load(); got != 3 {
		t.Errorf("%d Sign attempts, want 3", got)
	}

	signs.Store(0)
	failFirst.Store(100) // more than MaxAttempts
	_, err = signer.Sign(context.Background(), digest[:])
	if err == nil || kms.IsPermanent(err) {
		t.Errorf("sign while KMS keeps failing = %v, want a transient error", err)
	}
	if got := signs.Load(); got != 4 {
		t.Errorf("%d Sign attempts, want MaxAttempts = 4", got)
	}

	// Nothing listens on a port taken and closed again.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	_, err = kms.New(context.Background(), kms.Config{KeyID: keyID, Endpoint: dead, MaxAttempts: 2, MaxBackoff: 10 * time.Millisecond})
	if err == nil || kms.IsPermanent(err) || !strings.Contains(err.Error(), "kms key "+keyID+": get public key: KMS unreachable") {
		t.Errorf("kms.New against a dead endpoint = %v, want a transient 'KMS unreachable' error", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	failFirst.Store(1 << 30)
	slow, err := kms.New(context.Background(), kms.Config{KeyID: keyID, Endpoint: srv.URL, MaxAttempts: 1000, MaxBackoff: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := slow.Sign(ctx, digest[:]); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("sign past the deadline = %v, want context.DeadlineExceeded", err)
	}
}

// TestPendingDeletion: Check reports a key scheduled for deletion, and Sign
// fails permanently.
func TestPendingDeletion(t *testing.T) {
	l := kmstest.Start(t, "")
	keyID := l.CreateKey(t, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify)
	signer := newSigner(t, l, keyID)
	ctx := context.Background()
	if _, err := l.Admin.ScheduleKeyDeletion(ctx, &awskms.ScheduleKeyDeletionInput{KeyId: aws.String(keyID), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	if err := signer.Check(ctx); !kms.IsPermanent(err) || !strings.Contains(err.Error(), "key is pending deletion") {
		t.Errorf("Check() = %v, want a permanent error saying the key is pending deletion", err)
	}
	digest := sha256.Sum256([]byte("x"))
	if _, err := signer.Sign(ctx, digest[:]); !kms.IsPermanent(err) || !strings.Contains(err.Error(), "KMSInvalidStateException") {
		t.Errorf("Sign() = %v, want a permanent KMSInvalidStateException", err)
	}
}
