package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/evidence-parity/docket/anchors/anchoring"
	kmssigner "github.com/evidence-parity/docket/anchors/kms"
	"github.com/evidence-parity/docket/ledger/sqlite"
)

// readiness answers /readyz with a line per part: the checkpoint signer,
// the KMS key's state, and anchoring. The server is not ready while
// checkpoints cannot be signed (the evidence would not be sealed); anchoring
// trouble is reported but leaves it ready, since the ledger keeps working
// and the next round catches up.
type readiness struct {
	store    *sqlite.Store
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
		if err := r.kmsCheck(ctx); err != nil {
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
	all, err := r.anchorer.Status()
	switch {
	case err != nil:
		fmt.Fprintf(&b, "anchoring: %v\n", err)
	case len(all) == 0:
		b.WriteString("anchoring: no checkpoint anchored yet\n")
	default:
		last := all[len(all)-1]
		if last.Complete() {
			fmt.Fprintf(&b, "anchoring: checkpoint %d in bitcoin block %v\n", last.Size, last.Bitcoin)
		} else {
			fmt.Fprintf(&b, "anchoring: checkpoint %d pending since %s at %s\n", last.Size, last.SubmittedAt.Format(time.RFC3339), strings.Join(last.Calendars, ", "))
		}
	}
	return b.String(), ok
}
