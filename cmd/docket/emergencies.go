package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/evidence-parity/docket/domain/clerk"
	"github.com/evidence-parity/docket/projections"
)

// sweepEmergencies opens the overdue exception of every emergency change
// whose approval window has passed without an approval, even if nothing
// else touches the change: every tenth of the window (at most a minute)
// until ctx ends. The read models name the candidates; the clerk decides
// each (CheckEmergency opens one exception at most, on any node).
func sweepEmergencies(ctx context.Context, k *clerk.Clerk, proj *projections.Projector, logger *slog.Logger) {
	window := k.Policy().EmergencyWindow
	t := time.NewTicker(max(min(window/10, time.Minute), 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ids, err := proj.UnapprovedEmergencies(ctx, k.Now().Add(-window))
		if err != nil {
			if ctx.Err() == nil {
				logger.Error("overdue emergencies", "err", err)
			}
			continue
		}
		for _, id := range ids {
			if err := k.CheckEmergency(ctx, id); err != nil && ctx.Err() == nil {
				logger.Error("overdue emergency", "change", id, "err", err)
			}
		}
	}
}
