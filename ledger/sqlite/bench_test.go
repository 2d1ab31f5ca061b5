package sqlite_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/evidence-parity/docket/anchors"
	"github.com/evidence-parity/docket/ledger"
	"github.com/evidence-parity/docket/ledger/sqlite"
)

var benchData = json.RawMessage(`{"note":"benchmark event with a payload of typical size for an action record","resources":["file:github.com/acme/api/src/billing/total.go"],"verbs":["write"],"inScope":true}`)

func benchStore(b *testing.B) *sqlite.Store {
	b.Helper()
	dir := b.TempDir()
	signer, err := anchors.OpenFileSigner(filepath.Join(dir, "key.pem"), true)
	if err != nil {
		b.Fatal(err)
	}
	s, err := sqlite.Open(context.Background(), filepath.Join(dir, "ledger.db"), sqlite.Options{Signer: signer})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func benchEvents(n int) []ledger.Event {
	evs := make([]ledger.Event, n)
	for i := range evs {
		evs[i] = ledger.Event{Type: "BenchEvent", Actor: ledger.Actor{Kind: ledger.ActorService, ID: "bench"}, Data: benchData}
	}
	return evs
}

// BenchmarkAppendBatched: durable appends of 1,000 events each, with tree
// hashes and checkpoints. Budget: ≥ 100,000 events/s.
func BenchmarkAppendBatched(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	const batch = 1000
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Append(ctx, "bench", ledger.Any, benchEvents(batch)...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkAppendConcurrent64: 64 concurrent single-event durable appends.
// Budget: ≥ 20,000 events/s.
func BenchmarkAppendConcurrent64(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	var n atomic.Int64
	b.SetParallelism(32) // 2 cores × 32 = 64 appenders
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		stream := fmt.Sprintf("bench-%d", n.Add(1))
		for pb.Next() {
			if _, err := s.Append(ctx, stream, ledger.Any, benchEvents(1)...); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkVerify: full verification. Budget: ≥ 200,000 events/s.
func BenchmarkVerify(b *testing.B) {
	s := benchStore(b)
	ctx := context.Background()
	const events = 100_000
	for i := 0; i < events; i += 1000 {
		if _, err := s.Append(ctx, fmt.Sprintf("s-%d", i%10), ledger.Any, benchEvents(1000)...); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := s.Checkpoint(ctx); err != nil {
		b.Fatal(err)
	}
	fp, _ := anchorsFingerprint(s)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Verify(ctx, []string{fp}, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*events)/b.Elapsed().Seconds(), "events/s")
}

func anchorsFingerprint(s *sqlite.Store) (string, error) {
	keys, err := s.Keys(context.Background())
	for fp := range keys {
		return fp, err
	}
	return "", err
}
