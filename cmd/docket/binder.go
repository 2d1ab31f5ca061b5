package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/renameio/v2"
	"github.com/spf13/cobra"

	"github.com/evidence-parity/docket/anchors/anchoring"
	"github.com/evidence-parity/docket/anchors/ots"
	"github.com/evidence-parity/docket/domain/answers"
	"github.com/evidence-parity/docket/evidence"
	"github.com/evidence-parity/docket/ledger/sqlite"
	"github.com/evidence-parity/docket/projections"
)

// binderSource is the ledger and read models an export draws from.
type binderSource struct {
	store      serverLedger
	proj       *projections.Projector
	anchorsDir string
	// headers are Bitcoin block header lines to carry, if known.
	headers []string
}

// sampleDef draws the sample (or names the changes) as the portal does.
func (s binderSource) sampleDef(ctx context.Context, from, to time.Time, size int, seed string, changes []string) (evidence.SampleDef, error) {
	pop, err := s.proj.Population(ctx, from, to)
	if err != nil {
		return evidence.SampleDef{}, err
	}
	def := evidence.SampleDef{From: from, To: to, Population: pop}
	if len(changes) > 0 {
		def.Mode, def.Size, def.Selected = "change", len(changes), changes
		return def, nil
	}
	def.Mode, def.Size, def.Seed = "sample", size, seed
	def.Selected = answers.Sample(pop, seed, size)
	return def, nil
}

// build assembles the bundle, with every anchor the anchoring loop kept.
func (s binderSource) build(ctx context.Context, def evidence.SampleDef, progress func(done, total int)) (*evidence.Bundle, error) {
	var anchors []evidence.AnchorFile
	all, err := anchoring.List(s.anchorsDir)
	if err != nil {
		return nil, err
	}
	for _, a := range all {
		note, proof, err := anchoring.Proof(s.anchorsDir, a.Size)
		if err != nil {
			return nil, err
		}
		raw, err := proof.Serialize()
		if err != nil {
			return nil, err
		}
		anchors = append(anchors, evidence.AnchorFile{Note: note, OTS: raw})
	}
	return evidence.Build(ctx, s.store, evidence.Request{Sample: def, Anchors: anchors, BitcoinHeaders: s.headers, Progress: progress})
}

// readHeaderLines reads a headers file (checked by parsing it) as lines.
func readHeaderLines(path string) ([]string, *ots.Headers, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, usageErr("%v", err)
	}
	hs, err := ots.ParseHeaders(bytes.NewReader(b))
	if err != nil {
		return nil, nil, usageErr("--bitcoin-headers: %v", err)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	return lines, hs, nil
}

func newExportCmd() *cobra.Command {
	export := &cobra.Command{Use: "export", Short: "Export evidence"}
	c := &cobra.Command{
		Use:   "binder --from YYYY-MM-DD --to YYYY-MM-DD (--sample N --seed S | --change ID…) -o FILE.pdf [--bundle FILE.json]",
		Short: "Export an evidence binder: a PDF with the machine-readable proof bundle attached",
		Long: `Draws the sample of the changes promoted from --from to --to (both days
included) exactly as the portal does, or takes the changes named with
--change, and writes the binder: a PDF for people with the proof bundle
(every event of each change with its inclusion proof to the latest signed
checkpoint, the anchored checkpoints with consistency and OpenTimestamps
proofs, the public keys) attached inside. --bundle also writes the bundle
alone. Auditors check either with docket verify binder.

With --esdb the ledger is read from EventStoreDB into a temporary local index
(every event of the ledger, so a running server's own index is never
touched); the anchors come from --data as usual.`,
		Args: cobra.NoArgs,
	}
	data := dataFlag(c)
	fromS := c.Flags().String("from", "", "first day of the period (YYYY-MM-DD)")
	toS := c.Flags().String("to", "", "last day of the period, included (YYYY-MM-DD)")
	size := c.Flags().Int("sample", 0, "sample size")
	seed := c.Flags().String("seed", "", "sample seed")
	changes := c.Flags().StringArray("change", nil, "a change to include (repeatable), instead of a sample")
	out := c.Flags().StringP("output", "o", "", "the PDF to write")
	bundlePath := c.Flags().String("bundle", "", "also write the bundle (JSON) to this file")
	org := c.Flags().String("organisation", envOr("DOCKET_ORGANISATION", "Acme Corp"), "organisation named on the cover (env DOCKET_ORGANISATION)")
	headersPath := c.Flags().String("bitcoin-headers", "", "Bitcoin block headers to carry for the anchors (HEIGHT HEX lines)")
	esdbF := addESDBFlags(c)
	c.RunE = func(c *cobra.Command, _ []string) error {
		ctx := c.Context()
		from, err := time.Parse("2006-01-02", *fromS)
		if err != nil {
			return usageErr("--from %q: want YYYY-MM-DD", *fromS)
		}
		to, err := time.Parse("2006-01-02", *toS)
		if err != nil {
			return usageErr("--to %q: want YYYY-MM-DD", *toS)
		}
		to = to.AddDate(0, 0, 1)
		if !from.Before(to) {
			return usageErr("--from must not be after --to")
		}
		if (len(*changes) > 0) == (*size > 0 || *seed != "") {
			return usageErr("give either --sample N --seed S or --change ID")
		}
		if len(*changes) == 0 && (*size < 1 || *size > 1000 || *seed == "") {
			return usageErr("--sample is 1 to 1000 and --seed is required")
		}
		if *out == "" && *bundlePath == "" {
			return usageErr("-o FILE.pdf (or --bundle FILE.json) is required")
		}
		src, cleanup, err := openBinderSource(ctx, *data, esdbF)
		if err != nil {
			return err
		}
		defer cleanup()
		if *headersPath != "" {
			if src.headers, _, err = readHeaderLines(*headersPath); err != nil {
				return err
			}
		}
		def, err := src.sampleDef(ctx, from, to, *size, *seed, *changes)
		if err != nil {
			return err
		}
		if len(def.Selected) == 0 {
			return usageErr("no change was promoted from %s to %s: nothing to sample", *fromS, *toS)
		}
		progress := func(int, int) {}
		if isTerminal(os.Stderr) {
			progress = progressBar(os.Stderr, "changes")
		}
		b, err := src.build(ctx, def, progress)
		if err != nil {
			return err
		}
		if *bundlePath != "" {
			if err := writeFileAtomic(*bundlePath, b.Write); err != nil {
				return err
			}
		}
		if *out != "" {
			if err := writeFileAtomic(*out, func(w io.Writer) error {
				return evidence.WritePDF(w, b, evidence.PDFOptions{Organisation: *org, Fingerprint: src.store.SignerFingerprint()})
			}); err != nil {
				return err
			}
		}
		fmt.Fprintf(c.OutOrStdout(), "binder of %d change(s) from a population of %d, checkpoint %d, %d anchor(s)%s\n",
			len(b.Changes), len(def.Population), b.Sample.CheckpointSize, len(b.Anchors), written(*out, *bundlePath))
		return nil
	}
	export.AddCommand(c)
	return export
}

func written(paths ...string) string {
	var ps []string
	for _, p := range paths {
		if p != "" {
			ps = append(ps, p)
		}
	}
	return ": " + strings.Join(ps, ", ")
}

// writeFileAtomic writes a file whole or not at all (renameio: a synced
// temporary file beside it, renamed over it).
func writeFileAtomic(path string, write func(io.Writer) error) error {
	f, err := renameio.NewPendingFile(path, renameio.WithTempDir(filepath.Dir(path)), renameio.WithStaticPermissions(0o644))
	if err != nil {
		return err
	}
	defer f.Cleanup()
	bw := bufio.NewWriter(f)
	if err := write(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.CloseAtomicallyReplace()
}

// openBinderSource opens the ledger read-only and the read models brought
// up to date with it. With --esdb both are built afresh in a temporary
// folder, which cleanup removes.
func openBinderSource(ctx context.Context, data string, esdbF esdbFlags) (binderSource, func(), error) {
	var store serverLedger
	projPath, scratch := projectionsPath(data), ""
	if esdbF.set() {
		var err error
		if scratch, err = os.MkdirTemp("", "docket-export-"); err != nil {
			return binderSource{}, nil, err
		}
		es, err := esdbF.openIndexed(ctx, filepath.Join(scratch, "esdb-index.db"))
		if err != nil {
			os.RemoveAll(scratch)
			return binderSource{}, nil, err
		}
		store, projPath = es, filepath.Join(scratch, "projections.db")
	} else {
		s, err := sqlite.Open(ctx, ledgerPath(data), sqlite.Options{ReadOnly: true})
		if errors.Is(err, sqlite.ErrNoLedger) {
			return binderSource{}, nil, usageErr("%v (is --data right?)", err)
		}
		if err != nil {
			return binderSource{}, nil, err
		}
		store = s
	}
	closeStore := func() {
		store.Close()
		if scratch != "" {
			os.RemoveAll(scratch)
		}
	}
	proj, err := projections.Open(ctx, projPath, store, nil)
	if err != nil {
		closeStore()
		return binderSource{}, nil, err
	}
	if current, err := proj.Current(ctx); err != nil || !current {
		// Read models another build stored (a server may still run on
		// them): the export projects into a scratch copy of its own and
		// leaves them to docket serve, which rebuilds them as it starts.
		proj.Close()
		if err == nil {
			scratch, err = os.MkdirTemp("", "docket-export-")
		}
		if err != nil {
			closeStore()
			return binderSource{}, nil, err
		}
		if proj, err = projections.Open(ctx, filepath.Join(scratch, "projections.db"), store, nil); err != nil {
			closeStore()
			return binderSource{}, nil, err
		}
	}
	if err := proj.CatchUp(ctx); err != nil {
		proj.Close()
		closeStore()
		return binderSource{}, nil, err
	}
	return binderSource{store: store, proj: proj, anchorsDir: anchorsPath(data)}, func() { proj.Close(); closeStore() }, nil
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func newVerifyBinderCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "binder FILE.pdf|FILE.json --fingerprint HEX [--bitcoin-headers FILE]",
		Short: "Verify an evidence binder offline, trusting only the pinned key",
		Long: `Reads the bundle (attached inside a binder PDF, or a bundle JSON) and checks,
offline: the binder checkpoint's signature by a pinned key; every event's
hash and inclusion proof; each change's events in order; each change's five
CC8.1 answers recomputed from its events against what the binder states; the
sample drawn as stated; every anchored checkpoint's signature, consistency
proof and OpenTimestamps proof, and with --bitcoin-headers its Bitcoin
attestation. Prints a line per change and per anchor; exit 0 only when all
holds, 1 otherwise, 2 for unreadable input.`,
		Args: cobra.ExactArgs(1),
	}
	fps := c.Flags().StringArray("fingerprint", nil, "pinned key fingerprint (repeat for rotated keys); required")
	headersPath := c.Flags().String("bitcoin-headers", "", "Bitcoin block headers from a source you trust (HEIGHT HEX lines)")
	lowDiff := c.Flags().Bool("allow-low-difficulty", false, "accept headers easier than Bitcoin mainnet's proof-of-work limit (test chains only)")
	c.RunE = func(c *cobra.Command, args []string) error {
		if len(*fps) == 0 {
			return usageErr("--fingerprint is required: the binder is checked against the key you pinned, never against keys it carries")
		}
		f, err := os.Open(args[0])
		if err != nil {
			return usageErr("%v", err)
		}
		defer f.Close()
		var b *evidence.Bundle
		if strings.HasSuffix(strings.ToLower(args[0]), ".json") {
			b, err = evidence.ReadBundle(f)
		} else {
			b, err = evidence.ReadPDF(f)
		}
		if err != nil {
			return failed(fmt.Errorf("%s: %w", args[0], err))
		}
		opts := evidence.VerifyOptions{Fingerprints: *fps}
		if *headersPath != "" {
			_, hs, err := readHeaderLines(*headersPath)
			if err != nil {
				return err
			}
			hs.AllowLowDifficulty = *lowDiff
			opts.Headers = hs
		}
		rep, err := evidence.Verify(c.Context(), b, opts)
		if err != nil {
			return failed(err)
		}
		w := c.OutOrStdout()
		fmt.Fprintf(w, "checkpoint %d of %s: signature verifies with the pinned key\n", rep.Checkpoint.Size, rep.Checkpoint.Origin)
		for _, ch := range rep.Changes {
			if ch.OK() {
				fmt.Fprintf(w, "ok      change %s: %d events proved, five answers recomputed and match\n", ch.ID, ch.Events)
				continue
			}
			for _, p := range ch.Problems {
				fmt.Fprintf(w, "FAILED  change %s: %s\n", ch.ID, p)
			}
		}
		if rep.Sample != "" {
			fmt.Fprintf(w, "FAILED  sample: %s\n", rep.Sample)
		} else {
			fmt.Fprintf(w, "ok      sample: %s\n", sampleLine(b.Sample))
		}
		if len(rep.Anchors) == 0 {
			fmt.Fprintln(w, "note    anchors: the binder carries none; the checkpoint's time rests on the signature alone (no Bitcoin timestamp)")
		}
		for _, a := range rep.Anchors {
			if a.Problem != "" {
				fmt.Fprintf(w, "FAILED  anchor: %s\n", a.Problem)
				continue
			}
			fmt.Fprintf(w, "ok      anchor of checkpoint %d: consistent with the binder checkpoint; %s\n", a.Size, a.Status)
		}
		if !rep.OK() {
			return failed(errors.New("binder verification FAILED"))
		}
		fmt.Fprintln(w, "binder verified")
		return nil
	}
	return c
}

func sampleLine(s evidence.SampleDef) string {
	if s.Mode == "change" {
		return fmt.Sprintf("%d change(s) named by the exporter", len(s.Selected))
	}
	return fmt.Sprintf("%d of %d changes promoted %s to %s drawn with seed %q", len(s.Selected), len(s.Population),
		s.From.Format("2006-01-02"), s.To.AddDate(0, 0, -1).Format("2006-01-02"), s.Seed)
}

// progressBar draws "changes [#######.......] 12/25" on a terminal line,
// redrawn in place, and clears it when done. Written here rather than
// taken from a module: the served progress bars pull in a Unicode width
// table whose initialisation costs every docket invocation ~30 ms, which
// the agent hooks cannot afford.
func progressBar(w io.Writer, label string) func(done, total int) {
	return func(done, total int) {
		const width = 30
		filled := width * done / max(total, 1)
		fmt.Fprintf(w, "\r%s [%s%s] %d/%d", label, strings.Repeat("#", filled), strings.Repeat(".", width-filled), done, total)
		if done >= total {
			fmt.Fprint(w, "\r\033[K")
		}
	}
}
