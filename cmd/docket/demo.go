package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/evidence-parity/docket/anchors"
	"github.com/evidence-parity/docket/domain/clerk"
	"github.com/evidence-parity/docket/ledger"
	"github.com/evidence-parity/docket/ledger/sqlite"
)

func newDemoCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "demo",
		Short: "Seed the ledger (embedded, or EventStoreDB with --esdb) with 90 days of realistic changes, sign and verify it",
		Long: `Seeds, through the same service the API uses (never by writing rows), about
fifty changes by three agents over the last 90 days: deviations revoked and
resolved, a rubber-stamp approval, an emergency change approved late, an
issuance refused during a freeze, a promotion blocked by failing tests, a
rollback. Writes demo-credentials.json (mode 0600) in the data folder with a
token for each role. Running it again on the same folder changes nothing; it
refuses a ledger that holds events but no demo-credentials.json.
Then it signs a checkpoint and verifies the whole ledger.`,
		Args: cobra.NoArgs,
	}
	data := dataFlag(c)
	esdbF := addESDBFlags(c)
	c.RunE = func(c *cobra.Command, _ []string) error {
		ctx := c.Context()
		out := c.OutOrStdout()
		credsPath := filepath.Join(*data, "demo-credentials.json")
		if _, err := os.Stat(credsPath); err == nil {
			fmt.Fprintf(out, "demo data already in %s (credentials in %s); nothing to do\n", *data, credsPath)
			return nil
		}
		if !esdbF.set() {
			// Refuse a ledger that holds events before a key is made for it.
			if err := refuseNonEmpty(ctx, ledgerPath(*data), credsPath); err != nil {
				return err
			}
		}
		signer, err := anchors.OpenFileSigner(keyPath(*data), true)
		if err != nil {
			return err
		}
		// The demo's story spans the last 90 days.
		clock := &demoClock{t: time.Now().UTC().Add(-90 * 24 * time.Hour)}
		var s serverLedger
		if esdbF.set() {
			s, err = esdbF.open(ctx, *data, signer, clock.now)
		} else {
			s, err = sqlite.Open(ctx, ledgerPath(*data), sqlite.Options{Signer: signer, Now: clock.now, WitnessPath: witnessPath(*data)})
		}
		if err != nil {
			return err
		}
		// Never into a ledger that holds anything: a real one, or demo
		// data whose credentials file was removed.
		if size, _, err := s.Head(ctx); err != nil || size > 0 {
			s.Close()
			if err != nil {
				return err
			}
			return notEmpty(s.Path(), size, credsPath)
		}
		fmt.Fprintf(out, "ledger   %s (origin %s)\n", s.Path(), s.Origin())
		fmt.Fprintln(out, "warning: the checkpoint key is a local file, not externally custodied (use KMS in production)")
		creds, err := runDemo(ctx, out, clerk.New(s, clerk.Config{Now: clock.now}), clock)
		if err != nil {
			s.Close()
			return err
		}
		raw, _ := json.MarshalIndent(creds, "", "  ")
		if err := os.WriteFile(credsPath, append(raw, '\n'), 0o600); err != nil {
			s.Close()
			return err
		}
		fmt.Fprintf(out, "credentials for each demo role: %s\n", credsPath)
		if err := s.Close(); err != nil { // signs the final checkpoint
			return err
		}
		fp, err := anchors.Fingerprint(signer.Public())
		if err != nil {
			return err
		}
		latest, verify, where := latestCheckpoint, verifyLedger, "--data "+*data
		if esdbF.set() {
			latest = func(ctx context.Context, _ string) ([]byte, error) { return esdbF.latest(ctx) }
			verify = func(ctx context.Context, _ string, pinned []string, trusted [][]byte) (ledger.Report, error) {
				return esdbF.verify(ctx, pinned, trusted, false)
			}
			where = fmt.Sprintf("--esdb '%s' --esdb-prefix %s", *esdbF.url, *esdbF.prefix)
		}
		note, err := latest(ctx, *data)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "signed checkpoint:\n%s", note)
		rep, err := verify(ctx, *data, []string{fp}, nil)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "verified: %d events, %d checkpoints, key fingerprint %s\n", rep.Events, rep.Checkpoints, fp)
		fmt.Fprintf(out, "check it yourself: docket verify ledger %s --fingerprint %s\n", where, fp)
		return nil
	}
	return c
}

// refuseNonEmpty refuses an embedded ledger file that holds events; a
// missing file is an empty ledger.
func refuseNonEmpty(ctx context.Context, path, credsPath string) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	s, err := sqlite.Open(ctx, path, sqlite.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer s.Close()
	size, _, err := s.Head(ctx)
	if err != nil || size == 0 {
		return err
	}
	return notEmpty(path, size, credsPath)
}

func notEmpty(path string, size uint64, credsPath string) error {
	return fmt.Errorf("the ledger %s already holds %d events and %s does not exist: the demo seeds only an empty ledger (use a new --data folder)", path, size, credsPath)
}

type demoClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *demoClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Millisecond)
	return c.t
}

func (c *demoClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
