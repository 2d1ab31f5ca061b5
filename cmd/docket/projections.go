package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/evidence-parity/docket/ledger"
	"github.com/evidence-parity/docket/ledger/sqlite"
	"github.com/evidence-parity/docket/projections"
)

func projectionsPath(data string) string { return filepath.Join(data, "projections.db") }

func newProjectionsCmd() *cobra.Command {
	pc := &cobra.Command{Use: "projections", Short: "Manage the read models"}
	rb := &cobra.Command{
		Use:   "rebuild",
		Short: "Drop the read models and project the whole ledger again from position 0",
		Long: `Drops the read models in --data (projections.db) and projects the ledger again
from position 0; run it while no docket serve uses --data. With --esdb the
ledger is read from EventStoreDB through the node's local index in --data,
which first catches up with the latest checkpoint.`,
		Args: cobra.NoArgs,
	}
	data := dataFlag(rb)
	esdbF := addESDBFlags(rb)
	rb.RunE = func(c *cobra.Command, _ []string) error {
		ctx := c.Context()
		var s ledger.Store
		if esdbF.set() {
			// The node's own index, so the read models' positions are its
			// positions; it catches up with EventStoreDB first.
			es, err := esdbF.openIndexed(ctx, esdbIndexPath(*data))
			if err != nil {
				return err
			}
			defer es.Close()
			s = es
		} else {
			ss, err := sqlite.Open(ctx, ledgerPath(*data), sqlite.Options{ReadOnly: true})
			if err != nil {
				return usageErr("%v (is --data right?)", err)
			}
			defer ss.Close()
			s = ss
		}
		p, err := projections.Open(ctx, projectionsPath(*data), s, nil)
		if err != nil {
			return err
		}
		defer p.Close()
		start := time.Now()
		if err := p.Rebuild(ctx); err != nil {
			return err
		}
		pos, err := p.Position(ctx)
		if err != nil {
			return err
		}
		took := time.Since(start)
		fmt.Fprintf(c.OutOrStdout(), "rebuilt %s: %d events in %v (%.0f events/s)\n", projectionsPath(*data), pos, took.Round(time.Millisecond), float64(pos)/took.Seconds())
		return nil
	}
	pc.AddCommand(rb)
	return pc
}
