package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/evidence-parity/docket/anchors/anchoring"
	kmssigner "github.com/evidence-parity/docket/anchors/kms"
)

// readiness answers /readyz with a line per part: the checkpoint signer,
// the KMS key's state, and anchoring. The server is not ready while
// checkpoints cannot be signed (the evidence would not be sealed); anchoring
// trouble is reported but leaves it ready, since the ledger keeps working
// and the next round catches up.
type readiness struct {
	store    serverLedger
	kms      *kmssigner.Signer
	anchorer *anchoring.Anchorer

	mu       sync.Mutex
	kmsAt    time.Time
	kmsState error
}

// kmsCheck asks KMS for the key's state at most every 5 seconds, so
// probes do not turn into a stream of DescribeKey calls.
func (r *readiness) kmsCheck(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.kmsAt) < 5*time.Second {
		return r.kmsState
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	r.kmsState, r.kmsAt = r.kms.Check(ctx), time.Now()
	return r.kmsState
}

func (r *readiness) check(ctx context.Context) (string, bool) {
	var b strings.Builder
	ok := true
	if err := r.store.CheckpointErr(); err != nil {
		ok = false
		fmt.Fprintf(&b, "checkpoints: failing: %v\n", err)
	} else {
		b.WriteString("checkpoints: ok\n")
	}
	if r.kms != nil {
		var ke *kmssigner.Error
		if err := r.kmsCheck(ctx); errors.As(err, &ke) && ke.Op == "describe key" && ke.Code == "AccessDeniedException" {
			// A least-privilege key policy grants kms:Sign and
			// kms:GetPublicKey only; the checkpoints line above then
			// tells whether signing works.
			fmt.Fprintf(&b, "kms key: %s state unknown (kms:DescribeKey not granted)\n", r.kms.KeyARN())
		} else if err != nil {
			ok = false
			fmt.Fprintf(&b, "kms key: %v\n", err)
		} else {
			fmt.Fprintf(&b, "kms key: %s enabled\n", r.kms.KeyARN())
		}
	} else {
		b.WriteString("key: local file (not externally custodied)\n")
	}
	if r.anchorer == nil {
		b.WriteString("anchoring: off\n")
		return b.String(), ok
	}
	if err := r.anchorer.Err(); err != nil {
		fmt.Fprintf(&b, "anchoring: last round failed: %v\n", err)
	}
	last, complete, err := anchoring.Latest(r.anchorer.Dir())
	switch {
	case err != nil:
		fmt.Fprintf(&b, "anchoring: %v\n", err)
	case last == nil:
		b.WriteString("anchoring: no checkpoint anchored yet\n")
	default:
		if last.Complete() {
			fmt.Fprintf(&b, "anchoring: checkpoint %d in bitcoin block %v\n", last.Size, last.Bitcoin)
		} else {
			fmt.Fprintf(&b, "anchoring: checkpoint %d pending since %s at %s\n", last.Size, last.SubmittedAt.Format(time.RFC3339), strings.Join(last.Calendars, ", "))
			if complete != nil {
				fmt.Fprintf(&b, "anchoring: last complete: checkpoint %d in bitcoin block %v\n", complete.Size, complete.Bitcoin)
			}
		}
		for _, cal := range slices.Sorted(maps.Keys(last.Missing)) {
			fmt.Fprintf(&b, "anchoring: not yet submitted to %s: %s\n", cal, last.Missing[cal])
		}
		if last.LastError != "" {
			fmt.Fprintf(&b, "anchoring: last upgrade error: %s\n", last.LastError)
		}
	}
	return b.String(), ok
}
