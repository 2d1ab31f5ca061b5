package ots

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ErrDigestMismatch is returned when a proof is not about the given data.
var ErrDigestMismatch = errors.New("digest mismatch")

// ErrNotVerified is wrapped by Report.Err when no Bitcoin attestation
// verified.
var ErrNotVerified = errors.New("timestamp not verified")

// Report is what verification found in a proof.
type Report struct {
	// Verified are the Bitcoin attestations that hold.
	Verified []BitcoinProof
	// Failed are the Bitcoin attestations that do not, each with its reason.
	Failed []error
	// Pending are the calendars still to anchor the timestamp.
	Pending []string
	// Other are attestations this verifier does not check (Litecoin,
	// Ethereum, unknown notaries).
	Other []Attestation
}

// Err is nil when at least one Bitcoin attestation verified; otherwise it
// says why not: the failures, or the calendars it is pending at.
func (r Report) Err() error {
	if len(r.Verified) > 0 {
		return nil
	}
	if len(r.Failed) > 0 {
		return fmt.Errorf("%w: %w", ErrNotVerified, errors.Join(r.Failed...))
	}
	if len(r.Pending) > 0 {
		return fmt.Errorf("%w: pending at %s", ErrNotVerified, strings.Join(r.Pending, ", "))
	}
	return fmt.Errorf("%w: the proof holds no Bitcoin attestation", ErrNotVerified)
}

// Verify checks that f is a proof about digest and checks each Bitcoin
// attestation against src (nil: none are checked and each fails with
// ErrHeaderMissing). It returns an error only for a digest mismatch or a
// cancelled ctx; what the attestations show is in the Report.
func Verify(ctx context.Context, f *File, digest []byte, src HeaderSource) (Report, error) {
	if !bytes.Equal(f.Digest(), digest) {
		return Report{}, fmt.Errorf("%w: the proof is about %s %s, the data's is %s",
			ErrDigestMismatch, f.HashOp.Name(), hex.EncodeToString(f.Digest()), hex.EncodeToString(digest))
	}
	var rep Report
	for _, a := range f.Timestamp.Attestations() {
		switch a.Attestation.Kind {
		case Pending:
			rep.Pending = append(rep.Pending, a.Attestation.URI)
		case Bitcoin:
			if src == nil {
				rep.Failed = append(rep.Failed, fmt.Errorf("%w for block %d", ErrHeaderMissing, a.Attestation.Height))
				continue
			}
			p, err := VerifyBitcoin(ctx, src, a.Attestation.Height, a.Msg)
			if ctx.Err() != nil {
				return Report{}, ctx.Err()
			}
			if err != nil {
				rep.Failed = append(rep.Failed, err)
				continue
			}
			rep.Verified = append(rep.Verified, p)
		default:
			rep.Other = append(rep.Other, a.Attestation)
		}
	}
	return rep, nil
}
