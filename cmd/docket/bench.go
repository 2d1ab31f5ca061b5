package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/evidence-parity/docket/ledger"
)

func newBenchCmd() *cobra.Command {
	bench := &cobra.Command{Use: "bench", Short: "Measure Docket on this machine"}
	ac := &cobra.Command{
		Use:   "append",
		Short: "Append events durably into the ledger at --data and compare with raw SQLite inserts of the same rows",
		Long: `Appends --events events from --concurrency goroutines, --batch events per
append, into the ledger at --data (creating it), with tree hashes and signed
checkpoints, each append durable before it returns. Then inserts the same
rows into a plain SQLite table in a scratch file on the same disk (WAL,
synchronous=FULL, one transaction per batch, same concurrency) and prints
both rates and their ratio.

With --print-acks each acknowledged append prints "ack <position> <event id>"
for its last event as soon as it returns (used by the crash test).`,
		Args: cobra.NoArgs,
	}
	data := dataFlag(ac)
	events := ac.Flags().Int("events", 200_000, "events to append")
	batch := ac.Flags().Int("batch", 1000, "events per append")
	conc := ac.Flags().Int("concurrency", 1, "concurrent appenders")
	acks := ac.Flags().Bool("print-acks", false, "print each acknowledged append")
	noRaw := ac.Flags().Bool("no-raw", false, "skip the raw SQLite comparison")
	ac.RunE = func(c *cobra.Command, _ []string) error {
		if *events < 1 || *batch < 1 || *conc < 1 {
			return usageErr("--events, --batch and --concurrency must be at least 1")
		}
		if *batch > ledger.DefaultLimits.MaxEvents {
			return usageErr("--batch is at most %d", ledger.DefaultLimits.MaxEvents)
		}
		return benchAppend(c.Context(), c.OutOrStdout(), *data, *events, *batch, *conc, *acks, !*noRaw)
	}
	bench.AddCommand(ac, newBenchGraphQLCmd())
	return bench
}

func benchAppend(ctx context.Context, out io.Writer, data string, events, batch, conc int, acks, raw bool) error {
	s, err := openWritable(ctx, data)
	if err != nil {
		return err
	}
	run := uuid.NewString()[:8] // random: a UUIDv7 prefix repeats within a minute
	var outMu sync.Mutex
	kept := make([][]ledger.Record, conc) // rows for the raw comparison
	errs := make([]error, conc)
	payload := json.RawMessage(`{"note":"benchmark event with a payload of typical size for an action record","resources":["file:github.com/acme/api/src/billing/total.go"],"verbs":["write"],"inScope":true}`)
	cpBefore, _ := s.Checkpoints(ctx)
	start := time.Now()
	var wg sync.WaitGroup
	for g := 0; g < conc; g++ {
		share := events / conc
		if g < events%conc {
			share++
		}
		wg.Go(func() {
			stream := fmt.Sprintf("bench-%s-%d", run, g)
			expected := ledger.NoStream
			for done := 0; done < share; {
				n := min(batch, share-done)
				evs := make([]ledger.Event, n)
				for i := range evs {
					evs[i] = ledger.Event{Type: "BenchEvent", Actor: ledger.Actor{Kind: ledger.ActorService, ID: "bench"}, Correlation: stream, Data: payload}
				}
				recs, err := s.Append(ctx, stream, expected, evs...)
				if err != nil {
					errs[g] = err
					return
				}
				last := recs[len(recs)-1]
				expected = ledger.Exact(last.Event.Revision)
				if acks {
					outMu.Lock()
					fmt.Fprintf(out, "ack %d %s\n", last.Position, last.Event.ID)
					outMu.Unlock()
				}
				if raw {
					kept[g] = append(kept[g], recs...)
				}
				done += n
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	stats := s.Stats()
	cpAfter, _ := s.Checkpoints(ctx)
	if err := s.Close(); err != nil {
		return err
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	ledgerRate := float64(events) / took.Seconds()
	fmt.Fprintf(out, "ledger append: %d events in %v = %.0f events/s (batch %d, concurrency %d, %d group commits averaging %.1f appends, %d checkpoints signed meanwhile)\n",
		events, took.Round(time.Millisecond), ledgerRate, batch, conc, stats.Commits, float64(stats.Appends)/float64(max(stats.Commits, 1)), len(cpAfter)-len(cpBefore))
	if !raw {
		return nil
	}
	rawTook, err := rawInserts(ctx, data, kept, batch)
	if err != nil {
		return fmt.Errorf("raw sqlite: %w", err)
	}
	rawRate := float64(events) / rawTook.Seconds()
	fmt.Fprintf(out, "raw sqlite insert: %d rows in %v = %.0f rows/s (same rows and disk, WAL, synchronous=FULL, one transaction per batch)\n",
		events, rawTook.Round(time.Millisecond), rawRate)
	fmt.Fprintf(out, "ratio ledger/raw: %.2f\n", ledgerRate/rawRate)
	return nil
}

// rawInserts inserts the same rows into a plain table in a scratch file
// beside the ledger, with the same batching and concurrency, and times it.
func rawInserts(ctx context.Context, data string, rows [][]ledger.Record, batch int) (time.Duration, error) {
	dir, err := os.MkdirTemp(data, "bench-raw-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "raw.db")+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `CREATE TABLE raw (position INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, stream TEXT NOT NULL, revision INTEGER NOT NULL, canonical BLOB NOT NULL, UNIQUE (stream, revision))`); err != nil {
		return 0, err
	}
	ins, err := db.PrepareContext(ctx, `INSERT INTO raw (position, id, stream, revision, canonical) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return 0, err
	}
	defer ins.Close()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(rows))
	for g, recs := range rows {
		wg.Go(func() {
			for i := 0; i < len(recs) && errs[g] == nil; i += batch {
				errs[g] = insertBatch(ctx, db, ins, recs[i:min(i+batch, len(recs))])
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return took, nil
}

func insertBatch(ctx context.Context, db *sql.DB, ins *sql.Stmt, recs []ledger.Record) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	st := tx.StmtContext(ctx, ins)
	for _, r := range recs {
		if _, err := st.ExecContext(ctx, int64(r.Position), r.Event.ID, r.Event.Stream, int64(r.Event.Revision), r.Canonical); err != nil {
			tx.Rollback()
			return err
		}
	}
	return tx.Commit()
}
