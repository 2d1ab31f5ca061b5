package kms

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/smithy-go"
)

// permanentCodes are the KMS error codes retrying cannot fix, with what each
// means for the signing key (AWS KMS API Reference, Common Errors and the
// Errors section of Sign, GetPublicKey and DescribeKey).
var permanentCodes = map[string]string{
	"AccessDeniedException":         "access denied (check the key policy and the caller's IAM permissions)",
	"DisabledException":             "key is disabled",
	"KMSInvalidStateException":      "key is not in a usable state (disabled, pending deletion or pending import)",
	"NotFoundException":             "key not found",
	"InvalidArnException":           "not a valid key ARN",
	"InvalidKeyUsageException":      "wrong key usage for signing",
	"UnsupportedOperationException": "wrong key spec: the operation is not supported for this key",
	"ValidationException":           "request rejected as invalid",
	"IncorrectKeyException":         "wrong key for this operation",
	"UnrecognizedClientException":   "credentials not recognised",
	"InvalidClientTokenId":          "credentials not recognised",
	"InvalidSignatureException":     "request signature rejected (check the secret key and the region)",
	"IncompleteSignature":           "request signature incomplete",
	"MissingAuthenticationToken":    "no credentials were sent",
	"OptInRequired":                 "the account is not subscribed to KMS",
}

// classify turns an error from a KMS call into an *Error, permanent or
// transient; a cancelled or expired ctx keeps its context error so callers
// can tell they stopped it themselves.
func classify(key, op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("kms key %s: %s: %w", key, op, err)
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code := ae.ErrorCode()
		if reason, ok := permanentCodes[code]; ok {
			return &Error{Key: key, Op: op, Code: code, Reason: reason, Permanent: true, Err: err}
		}
		reason := "KMS request failed"
		if ae.ErrorFault() == smithy.FaultServer {
			reason = "KMS failed (server fault)"
		}
		return &Error{Key: key, Op: op, Code: code, Reason: reason, Err: err}
	}
	return &Error{Key: key, Op: op, Reason: "KMS unreachable: " + err.Error(), Err: err}
}

// apiMessage returns the message KMS sent with its error code, if any.
func apiMessage(err error) string {
	var ae smithy.APIError
	if err != nil && errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return ""
}
