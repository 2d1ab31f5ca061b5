package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/evidence-parity/docket/anchors"
	"github.com/evidence-parity/docket/ledger"
	"github.com/evidence-parity/docket/ledger/sqlite"
)

func newVerifyCmd() *cobra.Command {
	verify := &cobra.Command{Use: "verify", Short: "Verify a ledger or a proof offline"}
	lc := &cobra.Command{
		Use:   "ledger",
		Short: "Recompute the ledger's Merkle tree and check it against its signed checkpoints",
		Long: `Recomputes every leaf from the stored canonical bytes, the tree from the
leaves, and checks every stored checkpoint's signature (against the pinned
key fingerprints) and root. Exit 0 with a summary when intact; exit 1 naming
the first bad position and what is wrong.

Without --fingerprint the fingerprint of the configured key (--kms-key-id, or
the local key file) is pinned. Pass checkpoints
saved earlier (docket checkpoint > FILE, or --save-checkpoint) with
--since-checkpoint to catch a log truncated together with its checkpoints.

With --esdb URL the ledger is re-read from EventStoreDB / KurrentDB (never from
a node's local index): every Docket event of $all and of each stream, so
events an operator deleted, tombstoned, truncated ($tb), re-appended or
scavenged are reported with their position, stream, revision and id. The key
material comes from the ledger's checkpoint stream, checked against the
pinned fingerprints. Pass --live while a server is writing.`,
		Args: cobra.NoArgs,
	}
	data := dataFlag(lc)
	fps := lc.Flags().StringArray("fingerprint", nil, "pinned key fingerprint (hex SHA-256 of the SPKI DER); repeat for rotated keys")
	since := lc.Flags().StringArray("since-checkpoint", nil, "a signed checkpoint seen earlier that the ledger must still contain; repeatable")
	save := lc.Flags().String("save-checkpoint", "", "after a successful verification, write the latest checkpoint to this file")
	esdbF := addESDBFlags(lc)
	live := lc.Flags().Bool("live", false, "with --esdb: a server is writing, so count events after the latest checkpoint instead of failing them")
	lc.RunE = func(c *cobra.Command, _ []string) error {
		ctx := c.Context()
		pinned := *fps
		for _, fp := range pinned {
			if len(fp) != 64 || strings.Trim(strings.ToLower(fp), "0123456789abcdef") != "" {
				return usageErr("--fingerprint %q: want 64 hex digits (docket keys show --fingerprint)", fp)
			}
		}
		if len(pinned) == 0 {
			s, _, err := checkpointSigner(ctx, *data, false)
			if err != nil {
				return usageErr("no --fingerprint given and no key to pin: %v", err)
			}
			fp, err := anchors.Fingerprint(s.Public())
			if err != nil {
				return err
			}
			pinned = []string{fp}
		}
		var trusted [][]byte
		for _, f := range *since {
			b, err := os.ReadFile(f)
			if err != nil {
				return usageErr("--since-checkpoint: %v", err)
			}
			if _, err := ledger.CheckpointBody(b); err != nil {
				return usageErr("--since-checkpoint %s: not a signed checkpoint: %v", f, err)
			}
			trusted = append(trusted, b)
		}
		start := time.Now()
		var rep ledger.Report
		var err error
		if esdbF.set() {
			rep, err = esdbF.verify(ctx, pinned, trusted, *live)
		} else {
			rep, err = verifyLedger(ctx, *data, pinned, trusted)
		}
		if err != nil {
			return err
		}
		took := time.Since(start)
		live := ""
		if rep.Unsigned > 0 {
			live = fmt.Sprintf("; %d newer events not yet covered (a writer is running and signs within a second)", rep.Unsigned)
		}
		fmt.Fprintf(c.OutOrStdout(), "ok: %d events, %d checkpoints, latest checkpoint size %d, key %s (%.0f events/s)%s\n",
			rep.Events, rep.Checkpoints, rep.Latest.Size, strings.Join(pinned, ", "), float64(rep.Events)/took.Seconds(), live)
		if *save != "" {
			latest := latestCheckpoint
			if esdbF.set() {
				latest = func(ctx context.Context, _ string) ([]byte, error) { return esdbF.latest(ctx) }
			}
			n, err := latest(ctx, *data)
			if err != nil {
				return err
			}
			return os.WriteFile(*save, n, 0o644)
		}
		return nil
	}
	verify.AddCommand(lc, newVerifyOTSCmd(), newVerifyBinderCmd())
	return verify
}

func verifyLedger(ctx context.Context, data string, pinned []string, trusted [][]byte) (ledger.Report, error) {
	s, err := sqlite.Open(ctx, ledgerPath(data), sqlite.Options{ReadOnly: true})
	if errors.Is(err, sqlite.ErrNoLedger) {
		return ledger.Report{}, usageErr("%v (is --data right?)", err)
	}
	if err != nil {
		return ledger.Report{}, failed(err)
	}
	defer s.Close()
	rep, err := s.Verify(ctx, pinned, trusted)
	if err != nil {
		return rep, failed(fmt.Errorf("verification FAILED: %w", err))
	}
	return rep, nil
}

// latestCheckpoint returns the ledger's latest signed checkpoint note.
func latestCheckpoint(ctx context.Context, data string) ([]byte, error) {
	s, err := sqlite.Open(ctx, ledgerPath(data), sqlite.Options{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	n, found, err := s.LatestCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, usageErr("the ledger is empty: no checkpoint yet")
	}
	return n, nil
}

func newCheckpointCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "checkpoint",
		Short: "Sign a checkpoint now if the log grew (as after a crash) and print the latest signed checkpoint",
		Args:  cobra.NoArgs,
	}
	data := dataFlag(c)
	c.RunE = func(c *cobra.Command, _ []string) error {
		ctx := c.Context()
		s, err := openWritable(ctx, *data)
		if err != nil {
			return err
		}
		if _, err := s.Checkpoint(ctx); err != nil {
			s.Close()
			return err
		}
		if err := s.Close(); err != nil {
			return err
		}
		n, err := latestCheckpoint(ctx, *data)
		if err != nil {
			return err
		}
		_, err = c.OutOrStdout().Write(n)
		return err
	}
	return c
}
