// Package kms is the production checkpoint signer: an anchors.Signer whose
// private key stays in AWS KMS, so the operator of a Docket server never
// holds it.
//
// The key must be an asymmetric KMS key with key spec ECC_NIST_P256 and key
// usage SIGN_VERIFY. Signing uses SigningAlgorithm ECDSA_SHA_256 with
// MessageType DIGEST, so KMS signs the 32-byte SHA-256 digest it is given
// without hashing it again and returns an ASN.1 DER ECDSA signature (AWS KMS
// API Reference, Sign), which is exactly what anchors.Signer promises.
//
// Region, credentials and endpoint come from the standard AWS configuration
// chain (environment, shared config and credentials files, web identity,
// container and instance roles); Config.Endpoint points the client at a
// KMS-compatible endpoint other than AWS's, such as local-kms in tests.
package kms

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/evidence-parity/docket/anchors"
)

// Config configures a Signer.
type Config struct {
	// KeyID names the KMS key: a key id, a key ARN, an alias name
	// ("alias/docket-checkpoints") or an alias ARN. Required.
	KeyID string
	// Endpoint, if set, is the base URL of a KMS-compatible endpoint to use
	// instead of the one the AWS configuration chain resolves (for example
	// "http://127.0.0.1:8080" for local-kms). The CLI's --kms-endpoint.
	Endpoint string
	// Region, if set, overrides the region from the AWS configuration
	// chain. A region is required either way: requests are signed for it.
	Region string
	// MaxAttempts bounds the attempts of one KMS call, the first included
	// (default 4). Transient failures (throttling, timeouts, HTTP 5xx,
	// connection errors) are retried with jittered exponential backoff;
	// permanent ones are not. The caller's ctx bounds every call too.
	MaxAttempts int
	// MaxBackoff bounds the delay between two attempts (default 2s).
	MaxBackoff time.Duration
	// AttemptTimeout bounds one HTTP attempt, so a hung connection becomes
	// a retried timeout instead of a stalled call (default 10s).
	AttemptTimeout time.Duration
}

// Signer is an anchors.Signer over an ECDSA P-256 key held in AWS KMS. It
// fetches the public key once, at construction, and caches it. It is safe
// for concurrent use.
type Signer struct {
	client *kms.Client
	name   string // the key as configured, for messages
	arn    string // the key's ARN, resolved at construction
	pub    *ecdsa.PublicKey
}

var _ anchors.Signer = (*Signer)(nil)

// New loads the AWS configuration, fetches the key's public key and checks
// that the key can sign checkpoints: key spec ECC_NIST_P256, key usage
// SIGN_VERIFY, signing algorithm ECDSA_SHA_256 offered, key enabled. A key
// that fails these checks gives an error for which IsPermanent is true;
// one KMS could not be reached for gives a transient one.
func New(ctx context.Context, cfg Config) (*Signer, error) {
	if cfg.KeyID == "" {
		return nil, &Error{Key: "(none)", Op: "configure", Permanent: true, Reason: "no KMS key id, ARN or alias given"}
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 4
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 2 * time.Second
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = 10 * time.Second
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer { return newRetryer(cfg) }),
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTimeout(cfg.AttemptTimeout)),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, &Error{Key: cfg.KeyID, Op: "load AWS configuration", Permanent: true, Reason: err.Error(), Err: err}
	}
	if awsCfg.Region == "" {
		return nil, &Error{Key: cfg.KeyID, Op: "load AWS configuration", Permanent: true,
			Reason: "no AWS region configured (set AWS_REGION, a profile's region, or the KMS region option)"}
	}
	client := kms.NewFromConfig(awsCfg, func(o *kms.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	return newSigner(ctx, client, cfg.KeyID)
}

// newRetryer is the SDK's standard retryer, bounded by cfg, that also
// retries KMS's own transient faults. Its client-side retry quota is off: a
// long KMS outage would otherwise empty the quota and leave later calls
// unretried after KMS recovers; the checkpointer's interval already paces
// the calls.
func newRetryer(cfg Config) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = cfg.MaxAttempts
		o.MaxBackoff = cfg.MaxBackoff
		o.RateLimiter = ratelimit.None
		o.Retryables = append(o.Retryables, retry.RetryableErrorCode{Codes: map[string]struct{}{
			"KMSInternalException":       {},
			"DependencyTimeoutException": {},
			"KeyUnavailableException":    {},
		}})
	})
}

// newSigner fetches and checks the public key of keyID through client.
func newSigner(ctx context.Context, client *kms.Client, keyID string) (*Signer, error) {
	out, err := client.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(keyID)})
	if err != nil {
		return nil, classify(keyID, "get public key", err)
	}
	if err := checkKey(keyID, out); err != nil {
		return nil, err
	}
	pub, err := anchors.ParsePublicKey(out.PublicKey)
	if err != nil {
		return nil, &Error{Key: keyID, Op: "get public key", Permanent: true, Reason: "wrong key spec: " + err.Error(), Err: err}
	}
	arn := aws.ToString(out.KeyId)
	if arn == "" {
		arn = keyID
	}
	return &Signer{client: client, name: keyID, arn: arn, pub: pub}, nil
}

// checkKey requires what checkpoint signing needs of a key.
func checkKey(keyID string, out *kms.GetPublicKeyOutput) error {
	wrong := func(format string, args ...any) error {
		return &Error{Key: keyID, Op: "check key", Permanent: true, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case out.KeySpec != types.KeySpecEccNistP256:
		return wrong("wrong key spec %s, want %s", out.KeySpec, types.KeySpecEccNistP256)
	case out.KeyUsage != types.KeyUsageTypeSignVerify:
		return wrong("wrong key usage %s, want %s", out.KeyUsage, types.KeyUsageTypeSignVerify)
	case !slices.Contains(out.SigningAlgorithms, types.SigningAlgorithmSpecEcdsaSha256):
		return wrong("key does not offer signing algorithm %s (it offers %v)", types.SigningAlgorithmSpecEcdsaSha256, out.SigningAlgorithms)
	}
	return nil
}

// Sign signs a SHA-256 digest with the KMS key and returns the ASN.1 DER
// ECDSA signature. KMS receives the digest itself (MessageType DIGEST) and
// does not hash it again. Sign calls the key by the ARN resolved at
// construction, so an alias moved to another key meanwhile cannot produce
// signatures that Public does not verify; and it checks each signature
// against Public before returning it.
func (s *Signer) Sign(ctx context.Context, digest []byte) ([]byte, error) {
	if len(digest) != 32 {
		return nil, &Error{Key: s.name, Op: "sign", Permanent: true,
			Reason: fmt.Sprintf("digest is %d bytes, want 32 (a SHA-256 digest)", len(digest))}
	}
	out, err := s.client.Sign(ctx, &kms.SignInput{
		KeyId:            aws.String(s.arn),
		Message:          digest,
		MessageType:      types.MessageTypeDigest,
		SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256,
	})
	if err != nil {
		return nil, classify(s.name, "sign", err)
	}
	if !ecdsa.VerifyASN1(s.pub, digest, out.Signature) {
		return nil, &Error{Key: s.name, Op: "sign", Permanent: true,
			Reason: "KMS returned a signature that the key's public key does not verify"}
	}
	return out.Signature, nil
}

// Public returns the key's *ecdsa.PublicKey, fetched at construction.
func (s *Signer) Public() crypto.PublicKey { return s.pub }

// KeyARN returns the ARN of the key, resolved from the configured key id or
// alias at construction.
func (s *Signer) KeyARN() string { return s.arn }

// Check reports whether the key can sign now, for readiness probes: nil
// when it is enabled; otherwise an *Error naming its state (disabled,
// pending deletion, pending import, unavailable) or why KMS could not be
// asked. It also fails when the configured alias now names a different key
// than the one this Signer signs with: new checkpoints would still be signed
// by the old key, which is not what the operator asked for.
func (s *Signer) Check(ctx context.Context) error {
	out, err := s.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(s.name)})
	if err != nil {
		return classify(s.name, "describe key", err)
	}
	md := out.KeyMetadata
	if md == nil {
		return &Error{Key: s.name, Op: "describe key", Reason: "KMS returned no key metadata"}
	}
	if arn := aws.ToString(md.Arn); arn != "" && arn != s.arn {
		return &Error{Key: s.name, Op: "describe key", Permanent: true,
			Reason: fmt.Sprintf("now names key %s, but this signer signs with %s (restart to use the new key)", arn, s.arn)}
	}
	switch md.KeyState {
	case types.KeyStateEnabled:
		return nil
	case types.KeyStateDisabled:
		return &Error{Key: s.name, Op: "describe key", Permanent: true, Reason: "key is disabled"}
	case types.KeyStatePendingDeletion, types.KeyStatePendingReplicaDeletion:
		when := ""
		if md.DeletionDate != nil {
			when = " on " + md.DeletionDate.UTC().Format(time.RFC3339)
		}
		return &Error{Key: s.name, Op: "describe key", Permanent: true, Reason: "key is pending deletion" + when}
	case types.KeyStatePendingImport:
		return &Error{Key: s.name, Op: "describe key", Permanent: true, Reason: "key is pending import of its key material"}
	case types.KeyStateUnavailable:
		return &Error{Key: s.name, Op: "describe key", Reason: "key is unavailable (its custom key store is disconnected)"}
	default:
		return &Error{Key: s.name, Op: "describe key", Reason: fmt.Sprintf("key is in state %s", md.KeyState)}
	}
}

// ErrPermanent matches, with errors.Is, every error that retrying the same
// call will not fix until someone changes the key, its policy or the
// configuration: access denied, a disabled, missing or deleted key, a key of
// the wrong spec or usage, a malformed request.
var ErrPermanent = errors.New("permanent KMS failure")

// IsPermanent reports whether err is a permanent KMS failure. A caller that
// retries on a schedule, as the checkpointer does, may keep retrying: an
// operator can re-enable a key.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

// Error is a failed KMS operation on one key.
type Error struct {
	// Key is the key as configured (id, ARN or alias).
	Key string
	// Op is the operation: "sign", "get public key", "describe key", ….
	Op string
	// Code is KMS's error code ("DisabledException", …), or "" when KMS
	// gave none (a network failure, or a check made here).
	Code string
	// Reason says what is wrong, for people.
	Reason string
	// Permanent is true when retrying will not help (see ErrPermanent).
	Permanent bool
	// Err is the underlying error, if any.
	Err error
}

// Error reads, for example,
// "kms key alias/docket: sign: key is disabled (KMS DisabledException: …)".
func (e *Error) Error() string {
	msg := fmt.Sprintf("kms key %s: %s: %s", e.Key, e.Op, e.Reason)
	if e.Code != "" {
		msg += " (KMS " + e.Code
		if d := apiMessage(e.Err); d != "" {
			msg += ": " + d
		}
		msg += ")"
	}
	return msg
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrPermanent) true for permanent failures.
func (e *Error) Is(target error) bool { return target == ErrPermanent && e.Permanent }
