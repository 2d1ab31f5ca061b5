package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/evidence-parity/docket/domain/clerk"
	"github.com/evidence-parity/docket/evidence"
	"github.com/evidence-parity/docket/portal"
	"github.com/evidence-parity/docket/projections"
)

// newPortal builds the auditor and approver portal over the server's store,
// read models and clerk. It pins the key the server signs with.
func newPortal(ctx context.Context, data string, store serverLedger, proj *projections.Projector, k *clerk.Clerk, signIn portal.OIDC, logger *slog.Logger) (*portal.Portal, error) {
	fp := store.SignerFingerprint()
	vs, err := store.Verifiers(ctx, fp)
	if err != nil {
		return nil, fmt.Errorf("portal: %w", err)
	}
	return portal.New(portal.Config{
		Projections: proj, Ledger: store, Clerk: k, Verifiers: vs, Fingerprint: fp,
		AnchorsDir: anchorsPath(data), OIDC: signIn, Logger: logger,
		Binder: func(ctx context.Context, w io.Writer, from, to time.Time, size int, seed string) error {
			src := binderSource{store: store, proj: proj, anchorsDir: anchorsPath(data)}
			def, err := src.sampleDef(ctx, from, to, size, seed, nil)
			if err != nil {
				return err
			}
			b, err := src.build(ctx, def, nil)
			if err != nil {
				return err
			}
			return evidence.WritePDF(w, b, evidence.PDFOptions{Organisation: envOr("DOCKET_ORGANISATION", "Acme Corp"), Fingerprint: fp})
		},
	})
}
