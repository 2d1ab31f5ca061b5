// Package kms_test drives the docket binary with its checkpoints signed by a
// real local-kms, in the private network namespace kmstest makes (local-kms
// listens on every interface).
package kms_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/evidence-parity/docket/anchors/kms/kmstest"
)

const envBin = "DOCKET_TEST_BIN"

// TestMain builds the binary before entering the private network (the go
// command may need the module proxy), then runs the tests there.
func TestMain(m *testing.M) {
	if !kmstest.InPrivateNetwork() && os.Getenv(envBin) == "" {
		dir, err := os.MkdirTemp("", "docket-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		bin := filepath.Join(dir, "docket")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/docket")
		cmd.Dir = "../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
			os.Exit(1)
		}
		os.Setenv(envBin, bin)
		defer os.RemoveAll(dir)
	}
	kmstest.Main(m)
}

func docket(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(os.Getenv(envBin), args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, stdout.String(), stderr.String()
}

func ok(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := docket(t, args...)
	if code != 0 {
		t.Fatalf("docket %v: exit %d\n%s%s", args, code, out, errOut)
	}
	return out
}

// fingerprint runs `docket keys show` for a KMS key, as an auditor would to
// learn what to pin.
func fingerprint(t *testing.T, l *kmstest.LocalKMS, key string) string {
	t.Helper()
	out := ok(t, "keys", "show", "--kms-key-id", key, "--kms-endpoint", l.Endpoint)
	m := regexp.MustCompile(`(?m)^fingerprint ([0-9a-f]{64})$`).FindStringSubmatch(out)
	if m == nil || !strings.HasPrefix(out, "-----BEGIN PUBLIC KEY-----") {
		t.Fatalf("keys show:\n%s", out)
	}
	return m[1]
}

func TestKeysShowPrintsTheKMSKey(t *testing.T) {
	l := kmstest.Start(t, "")
	key := l.CreateKey(t, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify)
	out := ok(t, "keys", "show", "--kms-key-id", key, "--kms-endpoint", l.Endpoint)
	if !strings.Contains(out, strings.TrimSpace(string(l.PublicKeyPEM(t, key)))) {
		t.Fatalf("keys show prints another key:\n%s", out)
	}
	if fp := ok(t, "keys", "show", "--fingerprint", "--kms-key-id", key, "--kms-endpoint", l.Endpoint); strings.TrimSpace(fp) != fingerprint(t, l, key) {
		t.Fatalf("--fingerprint: %s", fp)
	}
	// A key of the wrong spec is refused with the reason.
	bad := l.CreateKey(t, types.KeySpecEccNistP384, types.KeyUsageTypeSignVerify)
	if code, _, errOut := docket(t, "keys", "show", "--kms-key-id", bad, "--kms-endpoint", l.Endpoint); code == 0 || !strings.Contains(errOut, "wrong key spec ECC_NIST_P384") {
		t.Fatalf("P-384 key: exit %d %s", code, errOut)
	}
}

// TestLedgerSignedInKMSWithRotation writes a ledger whose checkpoints are
// signed through KMS, first by key A (seeded from YAML, used by alias) and
// then by key B, and verifies it with the public keys alone.
func TestLedgerSignedInKMSWithRotation(t *testing.T) {
	l := kmstest.Start(t, seed(t))
	data := t.TempDir()
	keyA, keyB := "alias/docket-checkpoints", l.CreateKey(t, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify)
	fpA, fpB := fingerprint(t, l, keyA), fingerprint(t, l, keyB)

	ok(t, "bench", "append", "--data", data, "--events", "50", "--batch", "10", "--no-raw", "--kms-key-id", keyA, "--kms-endpoint", l.Endpoint)
	if _, err := os.Stat(filepath.Join(data, "keys", "checkpoint.pem")); !os.IsNotExist(err) {
		t.Fatalf("a local private key was written beside a KMS-signed ledger (%v)", err)
	}
	ok(t, "verify", "ledger", "--data", data, "--fingerprint", fpA)
	// Without --fingerprint, the configured KMS key is pinned.
	ok(t, "verify", "ledger", "--data", data, "--kms-key-id", keyA, "--kms-endpoint", l.Endpoint)

	ok(t, "bench", "append", "--data", data, "--events", "30", "--batch", "10", "--no-raw", "--kms-key-id", keyB, "--kms-endpoint", l.Endpoint)
	ok(t, "verify", "ledger", "--data", data, "--fingerprint", fpA, "--fingerprint", fpB)
	for _, c := range []struct{ pin, name string }{{fpA, "only A"}, {fpB, "only B"}} {
		code, _, errOut := docket(t, "verify", "ledger", "--data", data, "--fingerprint", c.pin)
		if code != 1 || !regexp.MustCompile(`checkpoint at size \d+`).MatchString(errOut) {
			t.Fatalf("%s pinned: exit %d, want 1 naming the checkpoint:\n%s", c.name, code, errOut)
		}
	}
}

func TestServeWithKMS(t *testing.T) {
	l := kmstest.Start(t, "")
	key := l.CreateKey(t, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify)
	data := t.TempDir()
	ok(t, "bench", "append", "--data", data, "--events", "10", "--batch", "10", "--no-raw", "--kms-key-id", key, "--kms-endpoint", l.Endpoint)

	cmd := exec.Command(os.Getenv(envBin), "serve", "--data", data, "--listen", "127.0.0.1:0", "--anchor-interval", "0",
		"--kms-key-id", key, "--kms-endpoint", l.Endpoint)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, _ := bufio.NewReader(out).ReadString('\n')
	m := regexp.MustCompile(`http://127\.0\.0\.1:\d+`).FindString(line)
	if m == "" {
		t.Fatalf("serve printed %q", line)
	}
	readyz := func() (int, string) {
		resp, err := http.Get(m + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := readyz(); code != 200 || !strings.Contains(body, "kms key: arn:aws:kms:") || !strings.Contains(body, "enabled") {
		t.Fatalf("readyz %d:\n%s", code, body)
	}
	// The key is disabled: readiness says so, clearly.
	if _, err := l.Admin.DisableKey(context.Background(), &awskms.DisableKeyInput{KeyId: aws.String(key)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := readyz()
		if code == 503 && strings.Contains(body, "disabled") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz after disabling the key: %d\n%s", code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()

	// Start-up with a disabled key fails at once, saying why.
	code, _, errOut := docket(t, "serve", "--data", data, "--listen", "127.0.0.1:0", "--kms-key-id", key, "--kms-endpoint", l.Endpoint)
	if code != 1 || !strings.Contains(errOut, "disabled") {
		t.Fatalf("serve with a disabled key: exit %d %s", code, errOut)
	}
}

func seed(t *testing.T) string {
	y, _ := kmstest.SeedP256(t, "0b2f1c8e-3c1a-4f0e-9a51-6d1d2c7e9f10", "alias/docket-checkpoints")
	return y
}
