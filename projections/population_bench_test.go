package projections

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/evidence-parity/docket/domain"
)

// BenchmarkPopulationPage: the portal's population page query (the period's
// count and its first page of 50) over a read model of many promoted
// changes. Budget: ≤ 200 ms on 1,000,000 changes. The size is
// DOCKET_BENCH_CHANGES (default 1,000,000); building the read model takes a
// minute, measuring it milliseconds.
func BenchmarkPopulationPage(b *testing.B) {
	n := 1_000_000
	if s := os.Getenv("DOCKET_BENCH_CHANGES"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	ctx := context.Background()
	p, err := Open(ctx, filepath.Join(b.TempDir(), "p.db"), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	db := p.db
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tx, _ := db.BeginTx(ctx, nil)
	up, err := tx.PrepareContext(ctx, upsertChangeSQL)
	if err != nil {
		b.Fatal(err)
	}
	v := &ChangeView{Status: "promoted", Agent: "claude-ci", RequestedBy: "alice", Approver: "bob", Version: 1,
		Plan: domain.Plan{Objective: "Fix rounding in invoice totals", Method: "decimal arithmetic", BackoutPath: "git revert", Environment: "production"},
		Answers: []Answer{{Question: "Who authorized the change?", Result: "pass"}, {Question: "What was the plan?", Result: "pass"},
			{Question: "Who implemented it?", Result: "pass"}, {Question: "Was it tested?", Result: "pass"}, {Question: "What is the backout path?", Result: "pass"}}}
	for i := range n {
		v.ID = fmt.Sprintf("chg-%09d", i)
		v.SubmittedAt = start.Add(time.Duration(i) * 30 * time.Second)
		at := v.SubmittedAt.Add(time.Hour)
		v.PromotedAt = &at
		v.OutOfScope = i % 50 / 49
		if err := upsertChange(ctx, up, v); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	// A quarter of the population in the period: the auditor's quarter.
	from, to := start.Add(time.Duration(n/4)*30*time.Second), start.Add(time.Duration(n/2)*30*time.Second)
	b.ResetTimer()
	for b.Loop() {
		pg, err := p.List(ctx, Filter{PromotedFrom: &from, PromotedTo: &to}, 50, "")
		if err != nil || len(pg.Views) != 50 {
			b.Fatal(err, len(pg.Views))
		}
		if _, err := p.List(ctx, Filter{PromotedFrom: &from, PromotedTo: &to}, 50, pg.EndCursor); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N)/2, "ms/page")
}
