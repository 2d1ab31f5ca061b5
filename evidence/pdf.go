package evidence

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"codeberg.org/go-pdf/fpdf"
	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"

	"github.com/evidence-parity/docket/anchors/ots"
	"github.com/evidence-parity/docket/domain"
	"github.com/evidence-parity/docket/domain/answers"
	"github.com/evidence-parity/docket/ledger"
)

// AttachmentName is the bundle's file name inside a binder PDF.
const AttachmentName = "bundle.json"

// PDFOptions is what the binder PDF prints besides the bundle.
type PDFOptions struct {
	// Organisation is printed on the cover and in every page's header
	// (default: the ledger's origin).
	Organisation string
	// Fingerprint is the checkpoint signing key's fingerprint as the
	// organisation publishes it, printed on the cover for the auditor to
	// compare with the one they obtained independently. Empty: the cover
	// prints the fingerprints of the keys the bundle carries.
	Fingerprint string
	// Now dates the PDF's metadata (default time.Now); the cover's
	// "created at" is the bundle's CreatedAt.
	Now func() time.Time
}

// WritePDF writes the binder PDF for b: a cover, contents, a summary of the
// sample, a section per change, the exceptions, an integrity appendix and
// how to verify, with the bundle attached as bundle.json (a document-level
// embedded file, ISO 32000-1 §7.11.4). Everything it prints comes from the
// bundle: each change's events are decoded and its view recomputed
// (domain/answers) for the plan, sessions, timeline and exceptions; the
// answers printed are the ones the bundle states.
func WritePDF(w io.Writer, b *Bundle, opts PDFOptions) error {
	if b == nil {
		return errors.New("write binder PDF: no bundle")
	}
	var js bytes.Buffer
	if err := b.Write(&js); err != nil {
		return fmt.Errorf("write binder PDF: encode bundle: %w", err)
	}
	bd := newBinder(b, opts, js.Bytes())
	bd.render()
	var out bytes.Buffer
	if err := bd.pdf.Output(&out); err != nil {
		return fmt.Errorf("write binder PDF: %w", err)
	}
	raw := out.Bytes()
	// fpdf declares PDF 1.3 unless a feature it knows needs more; embedded
	// files (ISO 32000-1 §7.11.4) need 1.4 and the file specification's
	// /UF entry 1.7 (§7.11.3). The header is "%PDF-1.3" whatever follows,
	// and a 1.3 body is a valid 1.7 one: declaring 1.7 in place keeps every
	// byte offset.
	if !bytes.HasPrefix(raw, []byte("%PDF-1.")) {
		return errors.New("write binder PDF: fpdf wrote no PDF header")
	}
	if raw[7] < '7' {
		raw[7] = '7'
	}
	if err := fixDestinations(raw); err != nil {
		return fmt.Errorf("write binder PDF: %w", err)
	}
	if _, err := w.Write(raw); err != nil {
		return fmt.Errorf("write binder PDF: %w", err)
	}
	return nil
}

// ErrNoBundle is returned by ReadPDF for a PDF that carries no bundle.
var ErrNoBundle = errors.New("the PDF carries no " + AttachmentName + " attachment")

// MaxPDFSize bounds a binder PDF ReadPDF reads.
const MaxPDFSize = 2 * MaxBundleSize

// pdfcpuConfig is pdfcpu's configuration without its configuration
// directory: by default pdfcpu creates one under the user's config dir
// (fonts, certificates) on first use, which a library reading a PDF must
// not do. api.DisableConfigDir sets a package variable, hence the Once.
var pdfcpuConfig = sync.OnceValue(func() *model.Configuration {
	api.DisableConfigDir()
	return model.NewDefaultConfiguration()
})

// ReadPDF extracts the bundle attached to a binder PDF and reads it with
// ReadBundle. It does not verify it (Verify does).
//
// A binder comes from outside, so pdfcpu reads it under limits sized for
// a binder (no stream decodes to more than a bundle may be; a PDF bomb is
// refused, not inflated), and a panic inside pdfcpu on a crafted file is
// an error, never a crash.
func ReadPDF(r io.Reader) (b *Bundle, err error) {
	defer func() {
		if p := recover(); p != nil {
			b, err = nil, fmt.Errorf("read binder PDF: not a readable PDF (the PDF reader failed: %v)", p)
		}
	}()
	raw, err := io.ReadAll(io.LimitReader(r, MaxPDFSize+1))
	if err != nil {
		return nil, fmt.Errorf("read binder PDF: %w", err)
	}
	if len(raw) > MaxPDFSize {
		return nil, fmt.Errorf("read binder PDF: larger than %d bytes", MaxPDFSize)
	}
	conf := *pdfcpuConfig()
	conf.Cmd = model.EXTRACTATTACHMENTS
	conf.Limits.MaxStreamBytes = MaxPDFSize
	conf.Limits.MaxDecodeBytes = MaxBundleSize + 1
	conf.Limits.MaxObjectCount = 1_000_000
	conf.Limits.MaxXRefEntries = 1_000_000
	ctx, err := api.ReadAndValidate(bytes.NewReader(raw), &conf)
	if err != nil {
		return nil, fmt.Errorf("read binder PDF: not a readable PDF: %w", err)
	}
	list, err := ctx.ListAttachments()
	if err != nil {
		return nil, fmt.Errorf("read binder PDF: attachments: %w", err)
	}
	for _, a := range list {
		if a.FileName != AttachmentName {
			continue
		}
		got, err := ctx.ExtractAttachments([]string{a.ID})
		if err != nil {
			return nil, fmt.Errorf("read binder PDF: extract %s: %w", AttachmentName, err)
		}
		if len(got) != 1 {
			break
		}
		if r, ok := got[0].Reader.(interface{ Len() int }); ok && r.Len() > MaxBundleSize {
			return nil, fmt.Errorf("read binder PDF: %s is larger than a bundle may be (%d bytes)", AttachmentName, MaxBundleSize)
		}
		return ReadBundle(got[0].Reader)
	}
	return nil, ErrNoBundle
}

// binder renders one binder PDF.
type binder struct {
	*doc
	b          *Bundle
	opts       PDFOptions
	org        string
	bundleJSON []byte
	changes    []*changeDoc
	cp         ledger.Checkpoint
	cpErr      error
	// toc lists the sections in order; each registers its page number
	// alias when it starts. The entries are not links: fpdf writes link
	// annotations inline in the page's /Annots, where ISO 32000-1 (Table
	// 30) wants indirect references; the outline navigates instead.
	toc map[string]*tocEntry
	// order is toc's keys in document order.
	order []string
}

type tocEntry struct {
	title string
	level int
	alias string
}

func newBinder(b *Bundle, opts PDFOptions, js []byte) *binder {
	bd := &binder{doc: newDoc(), b: b, opts: opts, org: opts.Organisation, bundleJSON: js, toc: map[string]*tocEntry{}}
	if bd.org == "" {
		bd.org = b.Origin
	}
	bd.cp, bd.cpErr = ledger.CheckpointBody([]byte(b.Checkpoint))
	for _, c := range b.Changes {
		bd.changes = append(bd.changes, decodeChange(c))
	}
	add := func(key, title string, level int) {
		bd.toc[key] = &tocEntry{title: title, level: level, alias: fmt.Sprintf("{toc%d}", len(bd.order))}
		bd.order = append(bd.order, key)
	}
	add("summary", "Summary of the sample", 0)
	for _, c := range bd.changes {
		t := "Change " + c.ID
		if c.view != nil && c.view.Plan.Objective != "" {
			t += " — " + c.view.Plan.Objective
		}
		add("change:"+c.ID, t, 1)
	}
	add("exceptions", "Exceptions across the sample", 0)
	add("integrity", "Integrity appendix", 0)
	add("verify", "How to verify this binder", 0)
	return bd
}

// section starts a section on a new page and records its page number.
func (bd *binder) section(key string) {
	e := bd.toc[key]
	bd.title(e.title)
	bd.pdf.RegisterAlias(e.alias, strconv.Itoa(bd.pdf.PageNo()))
}

func (bd *binder) render() {
	pdf := bd.pdf
	created := time.Now
	if bd.opts.Now != nil {
		created = bd.opts.Now
	}
	now := created().UTC()
	pdf.SetCreationDate(now)
	pdf.SetModificationDate(now)
	pdf.SetTitle("Evidence binder — "+bd.org+", "+bd.period(), true)
	pdf.SetAuthor(bd.org, true)
	pdf.SetSubject("SOC 2 CC8.1 change management evidence, with the verifiable bundle attached as "+AttachmentName, true)
	pdf.SetCreator("Docket", true)
	pdf.SetLang("en")
	pdf.SetAttachments([]fpdf.Attachment{{
		Content:     bd.bundleJSON,
		Filename:    AttachmentName,
		Description: fmt.Sprintf("Docket evidence bundle (%s version %d)", bd.b.Format, bd.b.Version),
	}})
	pdf.SetHeaderFunc(bd.header)
	pdf.SetFooterFunc(bd.footer)

	bd.cover()
	bd.contents()
	bd.summary()
	for i, c := range bd.changes {
		bd.change(i, c)
	}
	bd.exceptions()
	bd.integrity()
	bd.howToVerify()
}

func (bd *binder) header() {
	if bd.pdf.PageNo() == 1 {
		return
	}
	pdf := bd.pdf
	bd.set(style{family: "sans", size: 7.5, text: [3]int{90, 90, 90}})
	pdf.SetXY(marginLeft, 10)
	pdf.CellFormat(bd.width*0.75, 4, bd.org+" — Evidence binder, "+bd.period(), "", 0, "L", false, 0, "")
	pdf.CellFormat(bd.width*0.25, 4, fmt.Sprintf("checkpoint %d", bd.b.Sample.CheckpointSize), "", 0, "R", false, 0, "")
	pdf.Line(marginLeft, 14.5, marginLeft+bd.width, 14.5)
	pdf.SetXY(marginLeft, marginTop)
}

func (bd *binder) footer() {
	pdf := bd.pdf
	bd.set(style{family: "sans", size: 7.5, text: [3]int{90, 90, 90}})
	pdf.SetXY(marginLeft, -12)
	pdf.CellFormat(bd.width/2, 4, "Docket evidence binder · "+AttachmentName+" attached", "", 0, "L", false, 0, "")
	// Same font as the contents' page numbers: see newDoc.
	pdf.CellFormat(bd.width/2, 4, fmt.Sprintf("page %d of {nb}", pdf.PageNo()), "", 0, "R", false, 0, "")
}

func (bd *binder) period() string {
	s := bd.b.Sample
	return fmtDate(s.From) + " to " + fmtDate(s.To)
}

func (bd *binder) fingerprints() []string {
	if bd.opts.Fingerprint != "" {
		return []string{strings.ToLower(bd.opts.Fingerprint)}
	}
	var out []string
	for _, k := range bd.b.Keys {
		out = append(out, k.Fingerprint)
	}
	return out
}

func (bd *binder) sampleText() string {
	s := bd.b.Sample
	switch s.Mode {
	case "sample":
		return fmt.Sprintf("%d changes drawn at random from the population with seed %q", len(s.Selected), s.Seed)
	case "change":
		return fmt.Sprintf("%d changes named by the exporter (not drawn at random): %s", len(s.Selected), strings.Join(s.Selected, ", "))
	}
	return fmt.Sprintf("%d changes (mode %q)", len(s.Selected), s.Mode)
}

func (bd *binder) cover() {
	pdf := bd.pdf
	pdf.AddPage()
	pdf.Bookmark("Cover", 0, -1)
	pdf.SetY(42)
	bd.set(style{family: "sans", bold: true, size: 24})
	pdf.MultiCell(bd.width, 10, bd.org, "", "L", false)
	pdf.Ln(2)
	bd.set(style{family: "sans", bold: true, size: 17, text: [3]int{60, 60, 60}})
	pdf.MultiCell(bd.width, 8, "Evidence binder", "", "L", false)
	bd.set(style{family: "sans", size: 10.5, text: [3]int{60, 60, 60}})
	pdf.MultiCell(bd.width, 5.5, "SOC 2 CC8.1 change management: a sample of changes, the five answers for each, and the signed ledger events behind them.", "", "L", false)
	pdf.Ln(8)
	s := bd.b.Sample
	t := bd.newTable([]float64{0.28, 0.72})
	t.kv("Organisation", txt(bd.org))
	t.kv("Period", txt(bd.period()+" (changes promoted on or after the first date and before the second)"))
	t.kv("Population", txt(fmt.Sprintf("%d changes promoted in the period, at checkpoint size %d", len(s.Population), s.CheckpointSize)))
	t.kv("Sample", txt(bd.sampleText()))
	if s.Mode == "sample" {
		t.kv("Sample seed and size", mono(fmt.Sprintf("seed %q, size %d", s.Seed, s.Size)))
	}
	cp := fmt.Sprintf("size %d of log %s", bd.cp.Size, bd.cp.Origin)
	if bd.cpErr != nil {
		cp = "unreadable: " + bd.cpErr.Error()
	}
	t.kv("Binder checkpoint", txt(cp))
	if bd.opts.Fingerprint != "" {
		t.kv("Signing key fingerprint", mono(bd.opts.Fingerprint))
	} else {
		t.kv("Signing key fingerprints", mono(strings.Join(bd.fingerprints(), "\n")+"\n(as the bundle carries them: compare with one obtained independently)"))
	}
	t.kv("Created at", txt(fmtTime(bd.b.CreatedAt)))
	sum := sha256.Sum256(bd.bundleJSON)
	t.kv("Attached bundle", mono(fmt.Sprintf("%s, %d bytes, SHA-256 %s", AttachmentName, len(bd.bundleJSON), hex.EncodeToString(sum[:]))))
	t.end()
	pdf.Ln(6)
	fp := "HEX"
	if fps := bd.fingerprints(); len(fps) == 1 {
		fp = fps[0]
	}
	bd.set(style{family: "sans", size: bodySize})
	pdf.SetFillColor(245, 245, 245)
	pdf.MultiCell(bd.width, lineHeight(bodySize)+0.3, "This PDF presents the bundle attached to it. The bundle, not this text, is the evidence: "+
		"check it offline, without trusting the organisation's servers, with the fingerprint of the signing key obtained independently:\n\n"+
		"docket verify binder FILE.pdf --fingerprint "+fp+"\n\n"+
		"The last page says what the verification checks.", "1", "L", true)
}

func (bd *binder) contents() {
	pdf := bd.pdf
	pdf.AddPage()
	pdf.Bookmark("Contents", 0, -1)
	bd.set(style{family: "sans", bold: true, size: 15})
	pdf.MultiCell(bd.width, 7, "Contents", "", "L", false)
	y := pdf.GetY() + 1
	pdf.Line(marginLeft, y, marginLeft+bd.width, y)
	pdf.SetY(y + 3)
	for _, key := range bd.order {
		e := bd.toc[key]
		st := style{family: "sans", size: 9.5}
		indent := 0.0
		if e.level == 0 {
			st.bold = true
			pdf.Ln(1.5)
		} else {
			indent = 6
		}
		bd.set(st)
		lines := pdf.SplitText(e.title, bd.width-indent-18)
		h := float64(len(lines)) * 5
		bd.space(h)
		y := pdf.GetY()
		for i, l := range lines {
			pdf.SetXY(marginLeft+indent, y+float64(i)*5)
			pdf.CellFormat(bd.width-indent-18, 5, l, "", 0, "L", false, 0, "")
		}
		// The number in plain "sans", as the footers: see newDoc.
		bd.set(style{family: "sans", size: 9.5})
		pdf.SetXY(marginLeft+bd.width-14, y)
		pdf.CellFormat(14, 5, e.alias, "", 0, "L", false, 0, "")
		pdf.SetDrawColor(200, 200, 200)
		pdf.Line(marginLeft+indent, y+h, marginLeft+bd.width, y+h)
		pdf.SetDrawColor(120, 120, 120)
		pdf.SetXY(marginLeft, y+h+0.8)
	}
}

// answerLabels are the summary table's short column names for the five
// answers, in order.
var answerLabels = []string{"Authorized", "Plan", "Implemented", "Tested", "Backout"}

func (bd *binder) summary() {
	bd.section("summary")
	var clean, exceptions, failing, pending int
	for _, c := range bd.changes {
		worst := answers.Pass
		for _, a := range c.Stated.Answers {
			if rank(a.Result) > rank(worst) {
				worst = a.Result
			}
		}
		switch worst {
		case answers.Pass:
			clean++
		case answers.Exception:
			exceptions++
		case answers.Pending:
			pending++
		default:
			failing++
		}
	}
	bd.para(fmt.Sprintf("%s. Every attribute passes: %d. Passes with resolved exceptions: %d. Fails at least one attribute: %d. Not promoted yet (pending): %d.",
		bd.sampleText(), clean, exceptions, failing, pending))
	bd.note("Each answer's result is the worst of its attributes: fail, then pending, then exception, then pass. The results are the ones the binder states; docket verify binder recomputes them from the signed events.")
	// Only the first and third answers can be an exception: their
	// columns are the wider.
	cols := []float64{0.22, 0.1, 0.12, 0.13, 0.1, 0.13, 0.1, 0.1}
	t := bd.newTable(cols, append([]string{"Change", "Status", "Agent, approver"}, answerLabels...)...)
	for _, c := range bd.changes {
		who := ""
		if c.view != nil {
			who = c.view.Agent + "\n" + c.view.Approver
		}
		cells := []cell{mono(c.ID), txt(c.Stated.Status), txt(who)}
		for i := range answerLabels {
			r := ""
			if i < len(c.Stated.Answers) {
				r = c.Stated.Answers[i].Result
			}
			cells = append(cells, result(r))
		}
		t.row(cells...)
	}
	t.end()
}

func rank(r string) int {
	return map[string]int{answers.Pass: 0, answers.Exception: 1, answers.Pending: 2, answers.Fail: 3}[r]
}

func (bd *binder) change(i int, c *changeDoc) {
	bd.section("change:" + c.ID)
	v := c.view
	if c.err != nil {
		bd.warn("The events of this change could not be read (" + c.err.Error() + "). The answers the binder states follow; docket verify binder will report the change as failing.")
	}
	if len(c.differs) > 0 {
		var ds []string
		for _, d := range c.differs {
			ds = append(ds, clip(d, 400))
		}
		bd.warn("The events of this change do not give the answers the binder states: " + strings.Join(ds, "; ") + ". The stated answers are printed; docket verify binder will report the change as failing.")
	}
	t := bd.newTable([]float64{0.25, 0.75})
	t.kv("Status", txt(c.Stated.Status))
	if v != nil {
		t.kv("Agent", txt(v.Agent+" (requested by "+v.RequestedBy+")"))
		t.kv("Submitted", txt(fmtTime(v.SubmittedAt)))
		if v.ApprovedAt != nil {
			t.kv("Approved", txt(fmtTime(*v.ApprovedAt)+" by "+v.Approver))
		}
		if v.PromotedAt != nil {
			t.kv("Promoted", txt(fmtTime(*v.PromotedAt)))
		}
	}
	if n := len(c.Events); n > 0 {
		t.kv("Ledger events", txt(fmt.Sprintf("%d events of stream %s, log positions %d to %d, each with its inclusion proof to checkpoint %d",
			n, domain.ChangeStream(c.ID), c.Events[0].Position, c.Events[n-1].Position, bd.cp.Size)))
	}
	t.end()

	bd.answers(c)
	if v == nil {
		return
	}
	bd.plan(c)
	bd.approval(c)
	bd.sessions(c)
	bd.timeline(c)
	bd.deviations(c)
	bd.gates(c)
	bd.evidence(c)
}

func (bd *binder) answers(c *changeDoc) {
	bd.heading("The five answers")
	t := bd.newTable([]float64{0.3, 0.12, 0.58}, "Question / attribute", "Result", "Answer / detail")
	for i, a := range c.Stated.Answers {
		t.rowFill(greyBg, bold(a.Question), result(a.Result), bold(a.Answer))
		var computed []answers.Attribute
		if c.view != nil && i < len(c.view.Answers) {
			computed = c.view.Answers[i].Attributes
		}
		for j, at := range a.Attributes {
			detail := ""
			if j < len(computed) && computed[j].Name == at.Name {
				detail = computed[j].Detail
				if cites := c.cite(computed[j].Events); cites != "" {
					detail += "\n" + cites
				}
			}
			t.row(txt("   "+strings.ReplaceAll(at.Name, "_", " ")), result(at.Result), txt(detail))
		}
	}
	t.end()
}

// cite names the log positions of the events an attribute cites.
func (c *changeDoc) cite(ids []string) string {
	var ps []string
	for _, id := range ids {
		if p, ok := c.positions[id]; ok {
			ps = append(ps, strconv.FormatUint(p, 10))
		}
	}
	if len(ps) == 0 {
		return ""
	}
	if len(ps) == 1 {
		return "proved by the event at log position " + ps[0]
	}
	return "proved by the events at log positions " + strings.Join(ps, ", ")
}

func (bd *binder) plan(c *changeDoc) {
	v := c.view
	p := v.Plan
	bd.heading("The plan")
	t := bd.newTable([]float64{0.25, 0.75})
	t.kv("Objective", txt(p.Objective))
	t.kv("Method", txt(p.Method))
	var rules []string
	for i, r := range p.Scope {
		verbs := make([]string, len(r.Verbs))
		for j, vb := range r.Verbs {
			verbs[j] = string(vb)
		}
		rules = append(rules, fmt.Sprintf("%d. %s %s", i+1, strings.Join(verbs, ", "), r.Resource))
	}
	t.kv("Scope rules", mono(strings.Join(rules, "\n")))
	t.kv("Test approach", txt(p.TestApproach))
	t.kv("Backout path", txt(p.BackoutPath))
	t.kv("Environment", txt(p.Environment))
	if p.Risk != "" {
		t.kv("Risk", txt(p.Risk))
	}
	if p.Emergency {
		t.kv("Emergency", txt("yes: a credential may be issued before approval, which is then due within the emergency window"))
	}
	t.kv("Plan hash", mono(v.PlanHash))
	t.kv("Version", txt(fmt.Sprintf("%d (the approval binds to this version's hash)", v.Version)))
	t.end()
}

func (bd *binder) approval(c *changeDoc) {
	v := c.view
	bd.heading("Approval and review depth")
	if v.Approver == "" || v.Review == nil {
		for _, r := range eventsOf[domain.PlanRejected](c) {
			bd.para(fmt.Sprintf("Rejected by %s at %s (authenticated by %s).", r.Approver, fmtTime(r.At), r.AuthMethod))
		}
		bd.para("The current plan is not approved.")
		return
	}
	var ap domain.PlanApproved
	for _, a := range eventsOf[domain.PlanApproved](c) {
		if a.PlanHash == v.PlanHash {
			ap = a
		}
	}
	r := v.Review
	t := bd.newTable([]float64{0.32, 0.68})
	t.kv("Approver", txt(v.Approver+" (requested by "+v.RequestedBy+")"))
	t.kv("Authenticated by", txt(ap.AuthMethod))
	t.kv("Approved at", txt(fmtTime(*v.ApprovedAt)))
	viewed := "no: approved without opening the plan in the portal"
	if r.Viewed {
		viewed = "yes"
	}
	t.kv("Plan opened before approval", txt(viewed))
	t.kv("Time from first view to approval", txt(seconds(r.DwellSeconds)))
	t.kv("Reading time the plan calls for", txt(fmt.Sprintf("%s for a plan of %d bytes", seconds(r.MinSeconds), r.PlanSize)))
	comment := "no"
	if r.CommentPresent {
		comment = "yes: " + ap.Comment
	}
	t.kv("Comment", txt(comment))
	stamp := cell{text: "NO", style: style{family: "sans", bold: true, size: tableSize}}
	if r.RubberStamp {
		stamp = result(answers.Fail)
		stamp.text, stamp.align = "YES — decided faster than the plan's size calls for", "L"
	}
	t.kv("Rubber-stamp risk", stamp)
	t.end()
}

func (bd *binder) sessions(c *changeDoc) {
	v := c.view
	bd.heading("Sessions and credentials")
	if len(v.Sessions) == 0 {
		bd.para("No agent session was started.")
		return
	}
	t := bd.newTable([]float64{0.2, 0.2, 0.13, 0.27, 0.12, 0.08}, "Session", "Credential", "Bound to plan", "Issued / expires", "State", "Actions")
	for _, s := range v.Sessions {
		state := "open"
		switch {
		case s.Revoked:
			state = "revoked"
		case s.Ended:
			state = "ended"
		}
		t.row(mono(s.ID), mono(s.CredentialID), mono(short(s.PlanHash)), txt(fmtTime(s.IssuedAt)+"\n"+fmtTime(s.ExpiresAt)), txt(state), txt(strconv.Itoa(s.Actions)))
	}
	t.end()
	for _, r := range eventsOf[domain.CredentialRevoked](c) {
		bd.note(fmt.Sprintf("Credential %s revoked at %s: %s.", r.CredentialID, fmtTime(r.At), r.Reason))
	}
	if n := len(eventsOf[domain.ActionRefused](c)); n > 0 {
		bd.note(fmt.Sprintf("%d actions presented with a dead credential were refused (see the timeline).", n))
	}
}

func (bd *binder) timeline(c *changeDoc) {
	bd.heading("Timeline")
	bd.note(fmt.Sprintf("Every event of the change as the ledger holds it, in log order. %d actions, %d out of scope; rows on a tinted background are deviations, refusals, failed gates and revocations.", c.view.Actions, c.view.OutOfScope))
	t := bd.newTable([]float64{0.045, 0.1, 0.135, 0.175, 0.545}, "Pos", "Time (UTC)", "Actor", "Event", "What happened")
	for _, e := range c.entries {
		what := e.Summary
		if len(e.Lines) > 0 {
			what += "\n" + strings.Join(e.Lines, "\n")
		}
		cells := []cell{txt(strconv.FormatUint(e.Position, 10)), txt(e.Time.UTC().Format("2006-01-02 15:04:05")), txt(e.Actor), txt(e.Type), txt(what)}
		if e.Bad {
			t.rowFill(badBg, cells...)
		} else {
			t.row(cells...)
		}
	}
	t.end()
}

func (bd *binder) deviations(c *changeDoc) {
	bd.heading("Deviations and exceptions")
	devs := eventsOf[domain.DeviationDetected](c)
	if len(devs) == 0 && len(c.view.Exceptions) == 0 {
		bd.para("No deviation was detected and no exception opened.")
		return
	}
	if len(devs) > 0 {
		t := bd.newTable([]float64{0.2, 0.25, 0.55}, "Detected", "Session", "Out-of-scope uses")
		for _, d := range devs {
			t.rowFill(badBg, txt(fmtTime(d.At)), mono(d.Session), txt(strings.Join(answers.VerdictLines(d.Verdicts), "\n")))
		}
		t.end()
	}
	bd.exceptionTable(c, false)
}

// exceptionTable lists a change's exceptions with their resolutions.
func (bd *binder) exceptionTable(c *changeDoc, withChange bool) {
	if c.view == nil || len(c.view.Exceptions) == 0 {
		return
	}
	opened := map[string]domain.ExceptionOpened{}
	for _, o := range eventsOf[domain.ExceptionOpened](c) {
		opened[o.Exception] = o
	}
	resolved := map[string]domain.ExceptionResolved{}
	for _, r := range eventsOf[domain.ExceptionResolved](c) {
		resolved[r.Exception] = r
	}
	cols, head := []float64{0.22, 0.12, 0.32, 0.34}, []string{"Exception", "Kind", "Reason", "Resolution"}
	if withChange {
		cols, head = []float64{0.2, 0.17, 0.11, 0.24, 0.28}, append([]string{"Change"}, head...)
	}
	t := bd.newTable(cols, head...)
	for _, x := range c.view.Exceptions {
		reason := x.Reason
		if o, ok := opened[x.ID]; ok {
			reason += "\nopened " + fmtTime(o.At)
		}
		res := cell{text: "UNRESOLVED", style: style{family: "sans", bold: true, size: tableSize, fill: badBg}}
		if x.Resolved {
			r := resolved[x.ID]
			res = txt(fmt.Sprintf("%s by %s at %s: %s", x.Disposition, r.By, fmtTime(r.At), r.Justification))
		}
		cells := []cell{mono(x.ID), txt(x.Kind), txt(reason), res}
		if withChange {
			cells = append([]cell{mono(c.ID)}, cells...)
		}
		t.row(cells...)
	}
	t.end()
}

func (bd *binder) gates(c *changeDoc) {
	bd.heading("Gates")
	gates := eventsOf[domain.VerificationRecorded](c)
	if len(gates) == 0 {
		bd.para("Neither gate has run: no credential was requested and no promotion.")
		return
	}
	bd.note("The issuance gate runs when an agent asks for a session credential; the promotion gate when promotion is requested. Each records every check it made.")
	t := bd.newTable([]float64{0.3, 0.12, 0.58}, "Gate / check", "Result", "Detail")
	for _, g := range gates {
		r, what := answers.Pass, "passed"
		if !g.Passed {
			r, what = answers.Fail, "failed"
		}
		name := string(g.Stage) + " gate"
		detail := what + " at " + fmtTime(g.At)
		if g.Session != "" {
			detail += ", for session " + g.Session
		}
		t.rowFill(greyBg, bold(name), result(r), txt(detail))
		for _, ch := range g.Checks {
			r := answers.Pass
			if !ch.Passed {
				r = answers.Fail
			}
			t.row(txt("   "+strings.ReplaceAll(ch.Name, "_", " ")), result(r), txt(ch.Detail))
		}
	}
	t.end()
}

func (bd *binder) evidence(c *changeDoc) {
	bd.heading("Evidence")
	ev := eventsOf[domain.EvidenceAttached](c)
	if len(ev) == 0 {
		bd.para("No evidence was attached.")
		return
	}
	t := bd.newTable([]float64{0.12, 0.33, 0.37, 0.18}, "Kind", "Summary", "SHA-256 of the file", "Attached")
	for _, e := range ev {
		s := e.Summary
		var lines []string
		if n := s.TestsPassed + s.TestsFailed + s.TestsSkipped; n > 0 || e.Kind == domain.EvidenceTest {
			lines = append(lines, fmt.Sprintf("tests: %d passed, %d failed, %d skipped", s.TestsPassed, s.TestsFailed, s.TestsSkipped))
		}
		if n := s.Critical + s.High + s.Medium + s.Low; n > 0 || e.Kind == domain.EvidenceScan {
			lines = append(lines, fmt.Sprintf("findings: %d critical, %d high, %d medium, %d low", s.Critical, s.High, s.Medium, s.Low))
		}
		t.row(txt(string(e.Kind)+"\n("+e.Format+")"), txt(strings.Join(lines, "\n")), mono(e.SHA256), txt(fmtTime(e.At)+"\nplan "+short(e.PlanHash)))
	}
	t.end()
	bd.note("The files themselves are in the ledger's evidence streams, addressed by these hashes; the bundle carries the attachment events that bind each hash to this change and plan.")
}

func (bd *binder) exceptions() {
	bd.section("exceptions")
	total, open := 0, 0
	for _, c := range bd.changes {
		if c.view == nil {
			continue
		}
		total += len(c.view.Exceptions)
		open += c.view.Unresolved
	}
	if total == 0 {
		bd.para("No exception was opened on any change of the sample.")
	} else {
		bd.para(fmt.Sprintf("Exceptions across the sample: %d, of which %d resolved and %d unresolved.", total, total-open, open))
		for _, c := range bd.changes {
			bd.exceptionTable(c, true)
		}
	}
	bd.heading("Attributes that did not pass")
	var rows [][]cell
	for _, c := range bd.changes {
		for _, a := range c.Stated.Answers {
			for _, at := range a.Attributes {
				if at.Result != answers.Pass {
					rows = append(rows, []cell{mono(c.ID), txt(a.Question), txt(strings.ReplaceAll(at.Name, "_", " ")), result(at.Result)})
				}
			}
		}
	}
	if len(rows) == 0 {
		bd.para("Every attribute of every change passed.")
		return
	}
	t := bd.newTable([]float64{0.3, 0.25, 0.3, 0.15}, "Change", "Question", "Attribute", "Result")
	for _, r := range rows {
		t.row(r...)
	}
	t.end()
}

func (bd *binder) integrity() {
	bd.section("integrity")
	b := bd.b
	bd.heading("Binder checkpoint")
	bd.para(fmt.Sprintf("Every event in this binder is proved included in this signed checkpoint of the ledger (a C2SP signed note: origin, size, RFC 6962 Merkle root, then signatures). Verbatim, %d bytes:", len(b.Checkpoint)))
	bd.verbatim(b.Checkpoint)
	if bd.cpErr == nil {
		t := bd.newTable([]float64{0.25, 0.75})
		t.kv("Origin", mono(bd.cp.Origin))
		t.kv("Size", txt(fmt.Sprintf("%d events", bd.cp.Size)))
		t.kv("Root (hex)", mono(hex.EncodeToString(bd.cp.Root)))
		t.end()
	} else {
		bd.warn("The checkpoint does not parse: " + bd.cpErr.Error())
	}

	bd.heading("Signing keys")
	bd.para("The bundle carries the public keys that signed the ledger's checkpoints. A key is trusted only when its fingerprint (SHA-256 of its DER SubjectPublicKeyInfo) matches one the auditor obtained independently.")
	t := bd.newTable([]float64{0.72, 0.28}, "Fingerprint (SHA-256 of the key)", "Note")
	found := bd.opts.Fingerprint == ""
	for _, k := range b.Keys {
		note := ""
		if strings.EqualFold(k.Fingerprint, bd.opts.Fingerprint) {
			note, found = "printed on the cover", true
		}
		t.row(mono(k.Fingerprint), txt(note))
	}
	t.end()
	if !found {
		bd.warn("The fingerprint printed on the cover (" + bd.opts.Fingerprint + ") is not among the keys the bundle carries: verification with it will fail.")
	}

	bd.heading("Anchors")
	if len(b.Anchors) == 0 {
		bd.para("The exporter knew no anchored checkpoint at or below the binder checkpoint.")
	} else {
		bd.para("Anchored checkpoints are earlier checkpoints whose SHA-256 was timestamped with OpenTimestamps; a consistency proof shows the binder checkpoint extends each, so the log was not rewritten after the anchor.")
		t := bd.newTable([]float64{0.14, 0.4, 0.46}, "Checkpoint size", "SHA-256 of the anchored note", "OpenTimestamps attestations")
		for _, a := range b.Anchors {
			size := "?"
			if acp, err := ledger.CheckpointBody([]byte(a.Note)); err == nil {
				size = strconv.FormatUint(acp.Size, 10)
			}
			d := noteDigest(a.Note)
			t.row(txt(size), mono(hex.EncodeToString(d[:])), txt(anchorStatus(a)+fmt.Sprintf("\nconsistency proof: %d hashes", len(a.Consistency))))
		}
		t.end()
		bd.note("A Bitcoin attestation is checked against block headers by docket verify binder --bitcoin-headers FILE; headers the bundle carries are the exporter's and are never trusted.")
	}
	if n := len(b.BitcoinHeaders); n > 0 {
		bd.para(fmt.Sprintf("The bundle carries %d Bitcoin block headers from the exporter.", n))
	}

	bd.heading("Sample population")
	s := b.Sample
	bd.para(fmt.Sprintf("%s. The population is every change promoted from %s to %s as the ledger stood at checkpoint size %d: %d changes.",
		bd.sampleText(), fmtDate(s.From), fmtDate(s.To), s.CheckpointSize, len(s.Population)))
	if len(s.Population) > 0 {
		bd.verbatim(strings.Join(s.Population, "\n"))
	}
}

// anchorStatus reads an anchor's OpenTimestamps proof: the Bitcoin block
// heights it is attested in, else the calendars it is pending at.
func anchorStatus(a Anchor) string {
	f, err := ots.Parse(a.OTS)
	if err != nil {
		return "proof does not parse: " + err.Error()
	}
	var btc, pending, other []string
	for _, at := range f.Timestamp.Attestations() {
		switch at.Attestation.Kind {
		case ots.Bitcoin:
			btc = append(btc, strconv.FormatUint(at.Attestation.Height, 10))
		case ots.Pending:
			pending = append(pending, at.Attestation.URI)
		default:
			other = append(other, at.Attestation.String())
		}
	}
	var out []string
	if len(btc) > 0 {
		out = append(out, "Bitcoin block "+strings.Join(btc, ", "))
	}
	if len(pending) > 0 {
		out = append(out, "pending at "+strings.Join(pending, ", "))
	}
	out = append(out, other...)
	if len(out) == 0 {
		return "no attestation"
	}
	return strings.Join(out, "; ")
}

func (bd *binder) howToVerify() {
	bd.section("verify")
	fp := "HEX"
	if fps := bd.fingerprints(); len(fps) == 1 {
		fp = fps[0]
	}
	bd.para("Nothing printed in this PDF needs to be trusted. The bundle attached to it (" + AttachmentName + ") carries the ledger's signed events and the proofs that tie them together; the verifier checks them offline, with no access to the organisation's servers.")
	bd.heading("1. Obtain the signing key's fingerprint")
	bd.para("Ask the organisation for the fingerprint of its checkpoint signing key through a channel other than this binder (its published key, a signed letter, a call). Compare it with the one printed on the cover.")
	bd.heading("2. Run the verifier")
	bd.verbatim("docket verify binder FILE.pdf --fingerprint " + fp + " [--bitcoin-headers FILE]")
	bd.para("The bundle can also be extracted and verified alone (docket verify binder bundle.json …), or extracted with any PDF tool that saves attachments (for example pdfdetach -saveall FILE.pdf). --bitcoin-headers takes block headers (\"HEIGHT HEX\" lines) from a Bitcoin node or source you trust; without them Bitcoin attestations are reported, not checked.")
	bd.heading("3. What it checks")
	for _, s := range []string{
		"The binder checkpoint's signature, against the pinned fingerprint only: keys the bundle carries are used only if their fingerprint matches.",
		"Every event: its canonical bytes hash to a leaf (RFC 6962) whose inclusion proof leads to the binder checkpoint's root. An edited byte fails.",
		"Each change's stream: every event belongs to the change, revisions run 0, 1, 2 … without gaps and positions increase, so no event was dropped or reordered.",
		"Each change's five answers, recomputed from its events with the same rules Docket applies, compared with the answers this binder states: status, plan hash, each answer and each attribute's result.",
		"The sample: with a seed, the selection is the one the seed draws from the stated population; the binder carries exactly the changes selected, in order.",
		"Each anchored checkpoint: its signature, a consistency proof from it to the binder checkpoint, and its OpenTimestamps proof of the note's SHA-256 — with block headers, down to the Bitcoin block's Merkle root.",
	} {
		bd.bullet(s)
	}
	bd.para("It prints a result per change and per anchor, and exits with status 0 only when all of it holds.")
}

// clip shortens s to at most n runes.
func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func fmtDate(t time.Time) string {
	t = t.UTC()
	if t.Equal(t.Truncate(24 * time.Hour)) {
		return t.Format("2006-01-02")
	}
	return t.Format("2006-01-02 15:04 UTC")
}

// seconds writes a duration in seconds, and the way a person reads it
// when it is a minute or more.
func seconds(s float64) string {
	out := fmt.Sprintf("%.0f s", s)
	if s >= 60 {
		out += " (" + (time.Duration(s) * time.Second).String() + ")"
	}
	return out
}

var (
	firstPageObj = regexp.MustCompile(`(?m)^(\d+) 0 obj\n<</Type /Page\n`)
	destination  = regexp.MustCompile(`/Dest \[(\d+) 0 R /XYZ `)
)

// fixDestinations corrects, in place, the page references of the
// outline (and of any internal link). fpdf v0.12.0 writes them as if page n
// were object 1+2n, but writes the embedded files' objects before the
// pages, so every destination would name the object two before its page
// (an object that is not a page: pdfcpu's strict validation refuses it).
// The correction keeps each destination's byte length (a reference one
// digit longer takes the optional space before /XYZ), so the
// cross-reference table's offsets stay right.
func fixDestinations(raw []byte) error {
	m := firstPageObj.FindSubmatch(raw)
	if m == nil {
		return errors.New("fix link destinations: no page object")
	}
	first, _ := strconv.Atoi(string(m[1]))
	shift := first - 3 // fpdf's page 1 without objects before the pages
	if shift == 0 {
		return nil
	}
	var err error
	fixed := destination.ReplaceAllFunc(raw, func(d []byte) []byte {
		n, _ := strconv.Atoi(string(destination.FindSubmatch(d)[1]))
		out := []byte(fmt.Sprintf("/Dest [%d 0 R /XYZ ", n+shift))
		switch len(out) - len(d) {
		case 0:
		case 1:
			out = []byte(fmt.Sprintf("/Dest [%d 0 R/XYZ ", n+shift))
		default:
			err = fmt.Errorf("fix link destinations: object %d cannot become %d in place", n, n+shift)
			return d
		}
		return out
	})
	if err != nil {
		return err
	}
	copy(raw, fixed)
	return nil
}
