package evidence_test

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"codeberg.org/go-pdf/fpdf"
	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"

	"github.com/evidence-parity/docket/anchors/ots"
	"github.com/evidence-parity/docket/domain"
	"github.com/evidence-parity/docket/domain/answers"
	"github.com/evidence-parity/docket/domain/clerk/clerktest"
	"github.com/evidence-parity/docket/evidence"
)

// Kinds of change recordChange records.
const (
	clean    = iota // approved after a review, in scope, tested, promoted
	deviated        // an out-of-scope action, its exception resolved, promoted
	stamped         // approved in three seconds (rubber-stamp risk), promoted
	pending         // approved, worked on, not promoted yet
)

// recordChange records one complete change of the given kind and returns
// its id.
func recordChange(t testing.TB, w *clerktest.World, kind int) string {
	t.Helper()
	ctx := context.Background()
	k := w.Clerk
	id, hash, err := k.SubmitPlan(ctx, w.Agent, "", "alice", clerktest.Plan())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.ViewPlan(ctx, w.Bob, id); err != nil {
		t.Fatal(err)
	}
	comment := "read the diff; backout is a plain revert"
	if kind == stamped {
		w.Advance(3 * time.Second)
		comment = ""
	} else {
		w.Advance(15 * time.Minute)
	}
	if err := k.Approve(ctx, w.Bob, id, hash, comment); err != nil {
		t.Fatal(err)
	}
	ses, err := k.RequestSession(ctx, w.Agent, id)
	if err != nil {
		t.Fatal(err)
	}
	cred := ses.Credential
	w.Advance(time.Minute)
	if _, err := k.RecordAction(ctx, cred, "edit", []domain.ResourceUse{{Resource: "file:github.com/acme/api/src/billing/total.go", Verb: domain.Write}}, "", ""); err != nil {
		t.Fatal(err)
	}
	if kind == deviated {
		if _, err := k.RecordAction(ctx, cred, "read", []domain.ResourceUse{{Resource: "env:AWS_SECRET_ACCESS_KEY", Verb: domain.Read}}, "", ""); !errors.Is(err, domain.ErrOutOfScope) {
			t.Fatalf("out-of-scope action: %v, want ErrOutOfScope", err)
		}
		c, err := k.Change(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		w.Advance(20 * time.Minute)
		for xid := range c.Exceptions {
			if err := k.ResolveException(ctx, w.Bob, id, xid, domain.DispositionRemediated, "key rotated; the agent's harness no longer exposes the environment"); err != nil {
				t.Fatal(err)
			}
		}
		s2, err := k.RequestSession(ctx, w.Agent, id)
		if err != nil {
			t.Fatal(err)
		}
		cred = s2.Credential
	}
	if _, err := k.RecordAction(ctx, cred, "test", []domain.ResourceUse{{Resource: "cmd:go test ./...", Verb: domain.Exec}}, "go test ./...", "ok"); err != nil {
		t.Fatal(err)
	}
	w.Attach(t, cred, "gotestsum-passing.xml", "gosec-clean.sarif")
	if kind != pending {
		if err := k.RequestPromotion(ctx, w.Agent, id); err != nil {
			t.Fatal(err)
		}
	}
	w.Advance(time.Hour)
	return id
}

// ledgerWith records the changes (kinds in order), signs a checkpoint
// after the first (the anchored one) and one at the end, and returns the
// world, the ids and the anchor.
func ledgerWith(t testing.TB, kinds ...int) (*clerktest.World, []string, evidence.AnchorFile) {
	t.Helper()
	ctx := context.Background()
	w := clerktest.NewWorld(t)
	var ids []string
	var anchor evidence.AnchorFile
	for i, kind := range kinds {
		ids = append(ids, recordChange(t, w, kind))
		if i == 0 {
			anchor = anchorFile(t, w)
		}
	}
	if _, err := w.Store.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	return w, ids, anchor
}

// anchorFile signs a checkpoint and stamps it the way the anchoring loop
// keeps it: a Bitcoin attestation (not checkable without headers) and a
// calendar still pending.
func anchorFile(t testing.TB, w *clerktest.World) evidence.AnchorFile {
	t.Helper()
	ctx := context.Background()
	if _, err := w.Store.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	notes, err := w.Store.Checkpoints(ctx)
	if err != nil || len(notes) == 0 {
		t.Fatalf("checkpoints: %d, %v", len(notes), err)
	}
	note := notes[len(notes)-1]
	f := ots.NewFile(sha256Of(note))
	f.Timestamp.Attest(ots.NewBitcoin(923456))
	p, err := ots.NewPending("https://alice.btc.calendar.opentimestamps.org")
	if err != nil {
		t.Fatal(err)
	}
	f.Timestamp.Attest(p)
	raw, err := f.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return evidence.AnchorFile{Note: note, OTS: raw}
}

// build exports a binder of every change recorded, as a seeded sample of
// the promoted ones (or named, when some are not promoted).
func build(t testing.TB, w *clerktest.World, ids []string, anchor evidence.AnchorFile, mode string) *evidence.Bundle {
	t.Helper()
	s := evidence.SampleDef{Mode: mode, From: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		Population: ids, Size: len(ids)}
	if mode == "sample" {
		s.Seed = "audit-2026-q4"
		s.Selected = answers.Sample(ids, s.Seed, s.Size)
	} else {
		s.Selected = ids
	}
	b, err := evidence.Build(context.Background(), w.Store, evidence.Request{Sample: s, Anchors: []evidence.AnchorFile{anchor}, Now: w.Now})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writePDF(t testing.TB, b *evidence.Bundle, fp string) []byte {
	t.Helper()
	var out bytes.Buffer
	err := evidence.WritePDF(&out, b, evidence.PDFOptions{Organisation: "Acme Payments Ltd", Fingerprint: fp,
		Now: func() time.Time { return time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestBinderPDF(t *testing.T) {
	w, ids, anchor := ledgerWith(t, clean, deviated, stamped)
	b := build(t, w, ids, anchor, "sample")
	raw := writePDF(t, b, w.FP)
	path := filepath.Join(t.ArtifactDir(), "binder.pdf")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("binder: %d changes, %d bytes", len(b.Changes), len(raw))

	t.Run("valid in strict mode", func(t *testing.T) {
		conf := pdfcpuConfig()
		conf.ValidationMode = model.ValidationStrict
		if err := api.Validate(bytes.NewReader(raw), conf); err != nil {
			t.Fatalf("pdfcpu strict validation: %v", err)
		}
	})

	t.Run("text", func(t *testing.T) {
		text := pdfText(t, path)
		for _, want := range []string{
			"Acme Payments Ltd", "Evidence binder", "2026-11-01 to 2026-12-01", `seed "audit-2026-q4"`, w.FP,
			"Contents", "Summary of the sample", "Integrity appendix", "How to verify this binder",
			"docket verify binder FILE.pdf --fingerprint " + w.FP,
			"Change " + ids[1], "OUT OF SCOPE", "remediated by bob",
			"Bitcoin block 923456", "pending at", "https://alice.btc.calendar.opentimestamps.org",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("the PDF's text lacks %q", want)
			}
		}
		// Each change's first answer with its stated result, as pdftotext
		// lays the row out: question, result, answer.
		for _, c := range b.Changes {
			a := c.Stated.Answers[0]
			re := regexp.MustCompile(regexp.QuoteMeta(a.Question) + `\s+` + strings.ToUpper(a.Result) + `\s+` + regexp.QuoteMeta(a.Answer))
			if !re.MatchString(text) {
				t.Errorf("change %s: the PDF's text lacks %q stated %s", c.ID, a.Question, a.Result)
			}
		}
		if got := regexp.MustCompile(`page \d+ of (\d+)`).FindAllStringSubmatch(text, -1); len(got) == 0 || got[0][1] == "{nb}" {
			t.Errorf("footer page numbers: %v", got)
		}
		if strings.Contains(text, "{toc") || strings.Contains(text, "{nb}") {
			t.Error("an unreplaced page-number alias is left in the text")
		}
	})

	t.Run("attached bundle", func(t *testing.T) {
		got, err := evidence.ReadPDF(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		if g, w := jsonOf(t, got), jsonOf(t, b); !bytes.Equal(g, w) {
			t.Fatalf("the bundle read back differs from the one written:\n got %.300s\nwant %.300s", g, w)
		}
		rep, err := evidence.Verify(context.Background(), got, evidence.VerifyOptions{Fingerprints: []string{w.FP}})
		if err != nil || !rep.OK() {
			t.Fatalf("verify the attached bundle: %+v, %v", rep, err)
		}
	})

	renderPNG(t, path, 4)
}

// TestBinderPDFPendingAndNamed covers a binder of named changes, one not
// promoted, without a fingerprint given: the cover prints the bundle's
// keys.
func TestBinderPDFPendingAndNamed(t *testing.T) {
	w, ids, anchor := ledgerWith(t, pending, clean)
	b := build(t, w, ids, anchor, "change")
	raw := writePDF(t, b, "")
	path := filepath.Join(t.TempDir(), "binder.pdf")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	text := pdfText(t, path)
	for _, want := range []string{"changes named by the exporter", "PENDING", w.FP, "Signing key fingerprints", "as the bundle carries them"} {
		if !strings.Contains(text, want) {
			t.Errorf("the PDF's text lacks %q", want)
		}
	}
}

// TestBinderPDFOfABadBundle renders bundles that would fail verification:
// the PDF still renders, stays valid, prints what the binder states and
// says what is wrong.
func TestBinderPDFOfABadBundle(t *testing.T) {
	w, ids, anchor := ledgerWith(t, clean)
	for _, tc := range []struct {
		name   string
		fp     string
		tamper func(b *evidence.Bundle)
		want   string
	}{
		{"stated answer changed", "", func(b *evidence.Bundle) { b.Changes[0].Stated.Answers[1].Result = answers.Fail },
			"do not give the answers the binder states"},
		{"event bytes garbled", "", func(b *evidence.Bundle) { b.Changes[0].Events[2].Canonical = []byte("not json") },
			"could not be read"},
		{"fingerprint not carried", strings.Repeat("ab", 32), func(*evidence.Bundle) {},
			"is not among the keys the bundle carries"},
		{"long unbreakable strings", "", func(b *evidence.Bundle) {
			b.Changes[0].Stated.Answers[0].Answer = strings.Repeat("0123456789abcdef", 2000)
			b.Sample.Seed = strings.Repeat("s", 500)
		}, "0123456789abcdef"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := build(t, w, ids, anchor, "sample")
			tc.tamper(b)
			raw := writePDF(t, b, tc.fp)
			conf := pdfcpuConfig()
			conf.ValidationMode = model.ValidationStrict
			if err := api.Validate(bytes.NewReader(raw), conf); err != nil {
				t.Fatalf("pdfcpu strict validation: %v", err)
			}
			path := filepath.Join(t.TempDir(), "binder.pdf")
			if err := os.WriteFile(path, raw, 0o644); err != nil {
				t.Fatal(err)
			}
			if text := pdfText(t, path); !strings.Contains(strings.Join(strings.Fields(text), " "), tc.want) {
				t.Errorf("the PDF's text lacks %q", tc.want)
			}
		})
	}
}

// A bundle.json attachment that inflates past what a bundle may be (a PDF
// bomb: hundreds of MiB of white space in a few hundred KiB) is refused
// with an error, whether it stays under the PDF reader's own decoding cap
// (512 MiB) or not.
func TestReadPDFRefusesABomb(t *testing.T) {
	for _, size := range []int{evidence.MaxBundleSize + 1<<20, 600 << 20} {
		pdf := bombPDF(t, size)
		if len(pdf) > 4<<20 {
			t.Fatalf("the bomb is %d bytes, not small", len(pdf))
		}
		_, err := evidence.ReadPDF(bytes.NewReader(pdf))
		if err == nil || !strings.Contains(err.Error(), "limit") && !strings.Contains(err.Error(), "larger than") {
			t.Fatalf("%d bytes inflated: got %v, want a refusal naming the limit", size, err)
		}
		t.Logf("%d MiB: %v", size>>20, err)
	}
}

// bombPDF is a one-page PDF whose bundle.json attachment inflates to size
// spaces, written by hand (fpdf takes long to compress that much).
func bombPDF(t *testing.T, size int) []byte {
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, zlib.BestSpeed)
	chunk := bytes.Repeat([]byte(" "), 1<<20)
	for n := 0; n < size; n += len(chunk) {
		zw.Write(chunk[:min(len(chunk), size-n)])
	}
	zw.Close()
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(bundle.json) 4 0 R] >> >> >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
		"<< /Type /Filespec /F (bundle.json) /UF (bundle.json) /EF << /F 5 0 R >> >>",
		fmt.Sprintf("<< /Type /EmbeddedFile /Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream", z.Len(), z.Bytes()),
	}
	var pdf bytes.Buffer
	pdf.WriteString("%PDF-1.7\n")
	var offsets []int
	for i, o := range objs {
		offsets = append(offsets, pdf.Len())
		fmt.Fprintf(&pdf, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := pdf.Len()
	fmt.Fprintf(&pdf, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&pdf, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&pdf, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return pdf.Bytes()
}

func TestReadPDFWithoutBundle(t *testing.T) {
	plain := fpdf.New("P", "mm", "A4", "")
	plain.AddPage()
	plain.SetFont("Helvetica", "", 12)
	plain.Cell(40, 10, "not a binder")
	var pdf bytes.Buffer
	if err := plain.Output(&pdf); err != nil {
		t.Fatal(err)
	}
	other := fpdf.New("P", "mm", "A4", "")
	other.SetAttachments([]fpdf.Attachment{{Content: []byte("{}"), Filename: "notes.json"}})
	other.AddPage()
	var withOther bytes.Buffer
	if err := other.Output(&withOther); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		in      []byte
		noBundl bool
	}{
		{"plain PDF", pdf.Bytes(), true},
		{"another attachment", withOther.Bytes(), true},
		{"not a PDF", []byte(`{"format":"docket-evidence-bundle"}`), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := evidence.ReadPDF(bytes.NewReader(tc.in))
			if err == nil {
				t.Fatal("ReadPDF succeeded, want an error")
			}
			if errors.Is(err, evidence.ErrNoBundle) != tc.noBundl {
				t.Fatalf("got %v, want ErrNoBundle: %v", err, tc.noBundl)
			}
		})
	}
}

// BenchmarkWritePDF renders a 25-change binder (built once).
func BenchmarkWritePDF(b *testing.B) {
	kinds := make([]int, 25)
	for i := range kinds {
		kinds[i] = []int{clean, deviated, clean, stamped, pending}[i%5]
	}
	w, ids, anchor := ledgerWith(b, kinds...)
	bundle := build(b, w, ids, anchor, "change")
	opts := evidence.PDFOptions{Organisation: "Acme Payments Ltd", Fingerprint: w.FP}
	var size int
	b.ResetTimer()
	for b.Loop() {
		var out bytes.Buffer
		if err := evidence.WritePDF(&out, bundle, opts); err != nil {
			b.Fatal(err)
		}
		size = out.Len()
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/pdf")
	b.ReportMetric(float64(size), "bytes/pdf")
}

// tool finds a poppler-utils command: the test fails without it under CI
// (scripts/install-poppler.sh installs it) and skips otherwise.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found; run scripts/install-poppler.sh", name)
	}
	t.Skipf("%s not found (poppler-utils; scripts/install-poppler.sh installs it)", name)
	return ""
}

// pdfText extracts a PDF's text, keeping each table row on a line.
func pdfText(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command(tool(t, "pdftotext"), "-layout", "-enc", "UTF-8", path, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	return string(out)
}

// renderPNG renders the first pages at 60 dpi into the test's artifact
// directory for a person to look at (go test -artifacts keeps them).
func renderPNG(t *testing.T, path string, pages int) {
	t.Helper()
	dir := t.ArtifactDir()
	prefix := filepath.Join(dir, "page")
	out, err := exec.Command(tool(t, "pdftoppm"), "-r", "60", "-f", "1", "-l", strconv.Itoa(pages), "-png", path, prefix).CombinedOutput()
	if err != nil {
		t.Fatalf("pdftoppm: %v: %s", err, out)
	}
	pngs, _ := filepath.Glob(prefix + "*.png")
	slices.Sort(pngs)
	if len(pngs) == 0 {
		t.Fatal("pdftoppm wrote no page")
	}
	for _, p := range pngs {
		t.Logf("page image: %s", p)
	}
}

// pdfcpuConfig is pdfcpu's default configuration without its
// configuration directory (pdfcpu would otherwise create one in $HOME).
func pdfcpuConfig() *model.Configuration {
	api.DisableConfigDir()
	return model.NewDefaultConfiguration()
}

func sha256Of(b []byte) [32]byte { return sha256.Sum256(b) }

func jsonOf(t *testing.T, b *evidence.Bundle) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := b.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkExportAndVerify: a 25-change binder exported (bundle built from
// the ledger, PDF written) and verified (bundle read back from the PDF,
// every proof and answer checked).
func BenchmarkExportAndVerify(b *testing.B) {
	kinds := make([]int, 25)
	for i := range kinds {
		kinds[i] = []int{clean, deviated, clean, stamped, pending}[i%5]
	}
	w, ids, anchor := ledgerWith(b, kinds...)
	opts := evidence.PDFOptions{Organisation: "Acme Payments Ltd", Fingerprint: w.FP}
	var export, verify time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		bundle := build(b, w, ids, anchor, "change")
		var out bytes.Buffer
		if err := evidence.WritePDF(&out, bundle, opts); err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		back, err := evidence.ReadPDF(bytes.NewReader(out.Bytes()))
		if err != nil {
			b.Fatal(err)
		}
		rep, err := evidence.Verify(context.Background(), back, evidence.VerifyOptions{Fingerprints: []string{w.FP}})
		if err != nil || !rep.OK() {
			b.Fatal(err, rep)
		}
		export += mid.Sub(start)
		verify += time.Since(mid)
	}
	b.ReportMetric(float64(export.Milliseconds())/float64(b.N), "ms/export")
	b.ReportMetric(float64(verify.Milliseconds())/float64(b.N), "ms/verify")
}
