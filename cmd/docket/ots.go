package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/evidence-parity/docket/anchors/anchoring"
	"github.com/evidence-parity/docket/anchors/ots"
	"github.com/evidence-parity/docket/ledger/sqlite"
)

func anchorsPath(data string) string { return filepath.Join(data, "anchors") }

func readOTS(path string) (*ots.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	defer f.Close()
	p, err := ots.ReadFile(f)
	if err != nil {
		return nil, failed(fmt.Errorf("%s: %w", path, err))
	}
	return p, nil
}

func newOTSCmd() *cobra.Command {
	c := &cobra.Command{Use: "ots", Short: "Read OpenTimestamps proofs"}
	info := &cobra.Command{
		Use:   "info FILE.ots",
		Short: "Print a proof's timestamp tree as the reference client prints it",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			f, err := readOTS(args[0])
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(c.OutOrStdout(), f.Info())
			return err
		},
	}
	c.AddCommand(info)
	return c
}

func newVerifyOTSCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "ots FILE.ots (--file F | --digest HEX)",
		Short: "Verify an OpenTimestamps proof against Bitcoin block headers, offline",
		Long: `Checks that FILE.ots is a proof about the data (--file, or its SHA-256 --digest)
and that one of its Bitcoin attestations holds: the attested block's header
must carry the proof's commitment as its merkle root and a valid proof of
work. Headers come from --bitcoin-headers (offline: one header per line, 160
hex digits, optionally preceded by the height, "358391 0100…"; several
headers must link by previous-block hash), or from a node you trust:
--esplora URL (Esplora API) or --bitcoin-rpc URL (Bitcoin Core JSON-RPC).

Exit 0 printing the block height and time when verified; exit 1 with the
reason otherwise (digest mismatch, pending at which calendars, header not
supplied for block N, merkle root mismatch, bad proof of work).`,
		Args: cobra.ExactArgs(1),
	}
	file := c.Flags().String("file", "", "the timestamped file")
	digestHex := c.Flags().String("digest", "", "the timestamped data's SHA-256, in hex")
	headersPath := c.Flags().String("bitcoin-headers", "", "file of Bitcoin block headers (offline verification)")
	esplora := c.Flags().String("esplora", "", "Esplora API URL to fetch block headers from")
	rpc := c.Flags().String("bitcoin-rpc", "", "Bitcoin Core JSON-RPC URL to fetch block headers from")
	lowDiff := c.Flags().Bool("allow-low-difficulty", false, "accept headers easier than Bitcoin mainnet's proof-of-work limit (regtest or test chains only: such headers cost nothing to forge)")
	c.RunE = func(c *cobra.Command, args []string) error {
		if (*file == "") == (*digestHex == "") {
			return usageErr("give exactly one of --file and --digest")
		}
		f, err := readOTS(args[0])
		if err != nil {
			return err
		}
		var digest []byte
		if *file != "" {
			if f.HashOp.Tag != ots.TagSHA256 {
				return failed(fmt.Errorf("%s: the proof is about a %s digest; pass it with --digest", args[0], f.HashOp.Name()))
			}
			b, err := os.ReadFile(*file)
			if err != nil {
				return usageErr("%v", err)
			}
			sum := sha256.Sum256(b)
			digest = sum[:]
		} else if digest, err = hex.DecodeString(strings.TrimSpace(*digestHex)); err != nil {
			return usageErr("--digest: %v", err)
		}
		given := 0
		for _, v := range []string{*headersPath, *esplora, *rpc} {
			if v != "" {
				given++
			}
		}
		if given > 1 {
			return usageErr("give one of --bitcoin-headers, --esplora and --bitcoin-rpc")
		}
		var src ots.HeaderSource
		switch {
		case *headersPath != "":
			hf, err := os.Open(*headersPath)
			if err != nil {
				return usageErr("%v", err)
			}
			hs, err := ots.ParseHeaders(hf)
			hf.Close()
			if err != nil {
				return usageErr("--bitcoin-headers: %v", err)
			}
			hs.AllowLowDifficulty = *lowDiff
			src = hs
		case *esplora != "":
			src = ots.Esplora{URL: *esplora}
		case *rpc != "":
			src = ots.BitcoinRPC{URL: *rpc}
		}
		rep, err := ots.Verify(c.Context(), f, digest, src)
		if err != nil {
			return failed(err)
		}
		if err := rep.Err(); err != nil {
			return failed(err)
		}
		for _, v := range rep.Verified {
			claimed := ""
			if v.HeightClaimed {
				claimed = " (the height is the proof's claim: the headers file gave none)"
			}
			fmt.Fprintf(c.OutOrStdout(), "ok: Bitcoin block %d (%s) attests the data existed as of %s%s\n",
				v.Height, v.BlockHash, v.Time.Format(time.RFC3339), claimed)
		}
		return nil
	}
	return c
}

// anchorFlags are the calendar settings the anchor commands and serve share.
type anchorFlags struct {
	calendars []string
	allowHTTP bool
}

func addAnchorFlags(c *cobra.Command) *anchorFlags {
	a := &anchorFlags{}
	c.Flags().StringArrayVar(&a.calendars, "calendar", nil, "OpenTimestamps calendar URL; repeat, at least two (default: the public calendars)")
	c.Flags().BoolVar(&a.allowHTTP, "ots-allow-http", false, "allow http:// calendars (for tests against a calendar on loopback)")
	return a
}

func (a *anchorFlags) anchorer(data string, log anchoring.Checkpoints, cfg anchoring.Config) (*anchoring.Anchorer, error) {
	cfg.Dir = anchorsPath(data)
	cfg.Calendars = a.calendars
	cfg.Client = &ots.Client{AllowHTTP: a.allowHTTP}
	an, err := anchoring.New(log, cfg)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	return an, nil
}

func newAnchorCmd() *cobra.Command {
	c := &cobra.Command{Use: "anchor", Short: "Anchor signed checkpoints in Bitcoin through OpenTimestamps calendars"}
	now := &cobra.Command{
		Use:   "now",
		Short: "Submit the latest signed checkpoint to the calendars (and retry calendars that missed it)",
		Args:  cobra.NoArgs,
	}
	nowData := dataFlag(now)
	nowFlags := addAnchorFlags(now)
	now.RunE = func(c *cobra.Command, _ []string) error {
		ctx := c.Context()
		s, err := sqlite.Open(ctx, ledgerPath(*nowData), sqlite.Options{ReadOnly: true})
		if err != nil {
			return usageErr("%v", err)
		}
		defer s.Close()
		an, err := nowFlags.anchorer(*nowData, s, anchoring.Config{})
		if err != nil {
			return err
		}
		anc, err := an.AnchorNow(ctx)
		if errors.Is(err, anchoring.ErrNoCheckpoint) {
			return usageErr("%v", err)
		}
		if err != nil {
			return failed(err)
		}
		printAnchor(c, anc)
		return nil
	}

	status := &cobra.Command{
		Use:   "status",
		Short: "List the anchored checkpoints: pending since when and at which calendars, or the Bitcoin block",
		Args:  cobra.NoArgs,
	}
	statusData := dataFlag(status)
	status.RunE = func(c *cobra.Command, _ []string) error {
		all, err := anchoring.List(anchorsPath(*statusData))
		if err != nil {
			return err
		}
		if len(all) == 0 {
			fmt.Fprintln(c.OutOrStdout(), "no checkpoint anchored yet")
			return nil
		}
		for _, anc := range all {
			printAnchor(c, anc)
		}
		return nil
	}

	upgrade := &cobra.Command{
		Use:   "upgrade",
		Short: "Ask the calendars for the Bitcoin attestations of pending anchors",
		Args:  cobra.NoArgs,
	}
	upData := dataFlag(upgrade)
	upFlags := addAnchorFlags(upgrade)
	upgrade.RunE = func(c *cobra.Command, _ []string) error {
		an, err := upFlags.anchorer(*upData, nil, anchoring.Config{})
		if err != nil {
			return err
		}
		ups, err := an.Upgrade(c.Context())
		if err != nil {
			return failed(err)
		}
		if len(ups) == 0 {
			fmt.Fprintln(c.OutOrStdout(), "nothing pending")
		}
		for _, anc := range ups {
			printAnchor(c, anc)
		}
		return nil
	}
	c.AddCommand(now, status, upgrade)
	return c
}

// printAnchor prints one line per anchor, e.g.
//
//	checkpoint 120: bitcoin block 900000 (proof anchors/checkpoint-000000000120.ots)
//	checkpoint 130: pending since 2026-11-28T07:00:00Z at https://a…, https://b…
func printAnchor(c *cobra.Command, a anchoring.Anchor) {
	var state string
	switch {
	case a.Complete():
		hs := make([]string, len(a.Bitcoin))
		for i, h := range a.Bitcoin {
			hs[i] = fmt.Sprint(h)
		}
		state = "bitcoin block " + strings.Join(hs, ", ")
	default:
		state = "pending since " + a.SubmittedAt.Format(time.RFC3339) + " at " + strings.Join(a.Calendars, ", ")
	}
	if len(a.Missing) > 0 {
		var ms []string
		for cal, e := range a.Missing {
			ms = append(ms, cal+" ("+e+")")
		}
		state += "; not yet submitted to " + strings.Join(ms, ", ")
	}
	if a.LastError != "" {
		state += "; last upgrade error: " + a.LastError
	}
	fmt.Fprintf(c.OutOrStdout(), "checkpoint %d: %s\n", a.Size, state)
}
