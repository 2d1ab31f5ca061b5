package projections_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/evidence-parity/docket/domain/clerk/clerktest"
	"github.com/evidence-parity/docket/projections"
)

// BenchmarkRebuild: projecting a ledger of complete changes from zero.
// Budget: ≥ 100,000 events/s.
func BenchmarkRebuild(b *testing.B) {
	w := clerktest.NewWorld(b)
	ctx := context.Background()
	for range 100 {
		story(b, w)
	}
	size, _, _ := w.Store.Head(ctx)
	p, err := projections.Open(ctx, filepath.Join(b.TempDir(), "p.db"), w.Store, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	b.ResetTimer()
	for range b.N {
		if err := p.Rebuild(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(uint64(b.N)*size)/b.Elapsed().Seconds(), "events/s")
}
