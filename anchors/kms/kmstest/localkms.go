// Package kmstest runs a real local-kms (github.com/nsmithuk/local-kms) for
// tests, installed by scripts/install-local-kms.sh and reached through the
// real aws-sdk-go-v2 client with a custom endpoint.
//
// Network rule: test servers may listen on loopback only, and local-kms
// listens on every interface with no option to choose. Importing its
// handler and serving it from httptest on 127.0.0.1 would pull its old
// dependencies (aws-sdk-go v1, goleveldb, logrus, btcec) into our go.mod for
// a test, and would test a library use of it that nobody runs. So Main
// instead re-runs the test binary inside a new network namespace, whose only
// interface is its own loopback, brings that loopback up, and local-kms is
// started there (PORT=0, reading the port it chose from its log). The
// "every interface" local-kms binds is then that loopback alone, and the
// whole test process, SDK and any docket process it starts included, cannot
// reach anything else.
package kmstest

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// envInNetns marks the re-run inside the private network namespace.
const envInNetns = "DOCKET_KMS_TEST_NETNS"

// envLocalKMS names the local-kms binary; the default is bin/tools/local-kms
// at the repository root, where scripts/install-local-kms.sh puts it.
const envLocalKMS = "DOCKET_LOCAL_KMS"

const (
	testRegion  = "eu-west-2"
	testAccount = "111122223333"
)

// netnsErr says why the tests run without a private network namespace (and
// so without local-kms); nil inside one.
var netnsErr error

// InPrivateNetwork reports whether this process runs in the private
// network namespace Main made.
func InPrivateNetwork() bool { return os.Getenv(envInNetns) != "" }

// Main is a test package's TestMain: it runs the tests in a private network
// namespace, or, where none can be made, here (Start then skips, or fails
// under CI).
func Main(m *testing.M) {
	if os.Getenv(envInNetns) == "" {
		code, err := runInPrivateNetwork()
		if err == nil {
			os.Exit(code)
		}
		netnsErr = err
	} else if err := loopbackUp(); err != nil {
		fmt.Fprintln(os.Stderr, "private network namespace:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// Unavailable fails the test under CI, where local-kms must be there, and
// skips it elsewhere, saying why.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// localKMSBinary finds the local-kms binary.
func localKMSBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(envLocalKMS); p != "" {
		if _, err := os.Stat(p); err != nil {
			Unavailable(t, "local-kms: %s=%s: %v (run scripts/install-local-kms.sh, or point %s at the binary)", envLocalKMS, p, err, envLocalKMS)
		}
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
	p := filepath.Join(dir, "bin", "tools", "local-kms")
	if _, err := os.Stat(p); err != nil {
		Unavailable(t, "local-kms is not installed at %s (run scripts/install-local-kms.sh, or set %s)", p, envLocalKMS)
	}
	return p
}

// LocalKMS is one local-kms process with its own data directory.
type LocalKMS struct {
	// Endpoint is its URL on loopback (--kms-endpoint).
	Endpoint string
	// Admin is the test's own client, for key management.
	Admin *awskms.Client
}

// Region and Account are local-kms's.
const (
	Region  = testRegion
	Account = testAccount
)

var startedRE = regexp.MustCompile(`Local KMS started on 0\.0\.0\.0:(\d+)`)

// Start starts local-kms, seeded from seedYAML when it is not empty,
// and stops it when the test ends. It also points the AWS configuration
// chain at fixed test credentials and away from the user's own files.
func Start(t testing.TB, seedYAML string) *LocalKMS {
	t.Helper()
	if netnsErr != nil {
		Unavailable(t, "local-kms needs a private network namespace (it listens on every interface): %v", netnsErr)
	}
	bin := localKMSBinary(t)
	dir := t.TempDir()
	seedPath := filepath.Join(dir, "seed.yaml") // absent means no seeding
	if seedYAML != "" {
		if err := os.WriteFile(seedPath, []byte(seedYAML), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"PORT=0",
		"KMS_REGION="+testRegion,
		"KMS_ACCOUNT_ID="+testAccount,
		"KMS_DATA_PATH="+filepath.Join(dir, "data"),
		"KMS_SEED_PATH="+seedPath,
	)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start local-kms: %v", err)
	}

	// Keep its log: shown when the test fails.
	var (
		mu  sync.Mutex
		log strings.Builder
	)
	port := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			log.WriteString(line + "\n")
			mu.Unlock()
			if m := startedRE.FindStringSubmatch(line); m != nil {
				select {
				case port <- m[1]:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		_ = cmd.Wait()
		if t.Failed() {
			mu.Lock()
			t.Logf("local-kms log:\n%s", log.String())
			mu.Unlock()
		}
	})
	var p string
	select {
	case p = <-port:
	case <-done:
		t.Fatal("local-kms exited before it started listening")
	case <-time.After(30 * time.Second):
		t.Fatal("local-kms did not start listening within 30s")
	}

	// The signer under test reads the standard chain; keep it hermetic.
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDLOCALKMSTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local-kms-ignores-this")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", testRegion)
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "no-aws-config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "no-aws-credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_ENDPOINT_URL_KMS", "")

	endpoint := "http://127.0.0.1:" + p
	admin := awskms.New(awskms.Options{
		Region:       testRegion,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDLOCALKMSTEST", "local-kms-ignores-this", ""),
	})
	return &LocalKMS{Endpoint: endpoint, Admin: admin}
}

// CreateKey creates a key of the given spec through the SDK and returns its id.
func (l *LocalKMS) CreateKey(t testing.TB, spec types.KeySpec, usage types.KeyUsageType) string {
	t.Helper()
	out, err := l.Admin.CreateKey(context.Background(), &awskms.CreateKeyInput{
		KeySpec:     spec,
		KeyUsage:    usage,
		Description: aws.String("docket test " + t.Name()),
	})
	if err != nil {
		t.Fatalf("create %s key: %v", spec, err)
	}
	return aws.ToString(out.KeyMetadata.KeyId)
}

// PublicKeyPEM fetches a key's public key from KMS as PEM, as an auditor
// would (aws kms get-public-key), with no private key anywhere in sight.
func (l *LocalKMS) PublicKeyPEM(t testing.TB, keyID string) []byte {
	t.Helper()
	out, err := l.Admin.GetPublicKey(context.Background(), &awskms.GetPublicKeyInput{KeyId: aws.String(keyID)})
	if err != nil {
		t.Fatalf("get public key %s: %v", keyID, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: out.PublicKey})
}

// SeedP256 returns a local-kms seed file (KMS_SEED_PATH's YAML format) with
// a fresh P-256 signing key under keyID, reachable by alias, and the key
// itself so a test can compare what KMS reports with it.
func SeedP256(t testing.TB, keyID, alias string) (string, *ecdsa.PrivateKey) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	var seed strings.Builder
	fmt.Fprintf(&seed, "Keys:\n  Asymmetric:\n    Ecc:\n      - Metadata:\n          KeyId: %s\n          KeyUsage: SIGN_VERIFY\n          Description: docket checkpoints\n        PrivateKeyPem: |\n", keyID)
	for line := range strings.Lines(string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))) {
		seed.WriteString("          " + line)
	}
	fmt.Fprintf(&seed, "Aliases:\n  - AliasName: %s\n    TargetKeyId: %s\n", alias, keyID)
	return seed.String(), priv
}
