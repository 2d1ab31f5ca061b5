package evidence

import (
	_ "embed"
	"math"
	"strings"

	"codeberg.org/go-pdf/fpdf"

	"github.com/evidence-parity/docket/domain/answers"
)

// The binder's fonts: DejaVu (Bitstream Vera license, fonts/LICENSE),
// embedded so the PDF carries every glyph it prints, whatever the reader's
// system has.
var (
	//go:embed fonts/DejaVuSansCondensed.ttf
	fontRegular []byte
	//go:embed fonts/DejaVuSansCondensed-Bold.ttf
	fontBold []byte
	//go:embed fonts/DejaVuSansMono.ttf
	fontMono []byte
)

// Page geometry, in millimetres (A4 portrait).
const (
	marginLeft   = 16.0
	marginRight  = 16.0
	marginTop    = 20.0
	marginBottom = 18.0
	bodySize     = 9.0 // points
	tableSize    = 8.0
	cellPad      = 0.9 // above and below a table cell's text
)

// style is how a piece of text is set.
type style struct {
	family string // "sans" or "mono"
	bold   bool
	size   float64
	fill   *[3]int
	text   [3]int
	align  string
}

var (
	plain  = style{family: "sans", size: tableSize}
	strong = style{family: "sans", bold: true, size: tableSize}
	code   = style{family: "mono", size: tableSize - 0.5}
	greyBg = &[3]int{235, 235, 235}
	badBg  = &[3]int{251, 222, 222}
)

// resultStyle sets an attribute result so that it reads in greyscale too:
// the word is always written, the colour only helps.
func resultStyle(result string) (string, style) {
	s := style{family: "sans", bold: true, size: tableSize, align: "C"}
	switch result {
	case answers.Pass:
		s.fill, s.text = &[3]int{214, 240, 214}, [3]int{20, 90, 20}
	case answers.Fail:
		s.fill, s.text = &[3]int{248, 200, 200}, [3]int{150, 0, 0}
	case answers.Exception:
		s.fill, s.text = &[3]int{253, 230, 180}, [3]int{120, 70, 0}
	case answers.Pending:
		s.fill, s.text = &[3]int{228, 228, 228}, [3]int{60, 60, 60}
	}
	if result == "" {
		result = "—"
	}
	return strings.ToUpper(result), s
}

// doc wraps the fpdf document with the binder's few layout primitives:
// headings, paragraphs and bordered tables whose cells wrap long strings
// and whose rows continue across pages.
type doc struct {
	pdf    *fpdf.Fpdf
	width  float64 // text width
	bottom float64 // where the body ends
}

func newDoc() *doc {
	pdf := fpdf.New("P", "mm", "A4", "")
	// Page numbers are aliases replaced when the document closes; the
	// embedded font is a subset of the glyphs printed. Every number an
	// alias becomes (the page count, a contents entry's page) is also
	// printed in the same font in that page's footer, so its digits are in
	// the subset: keep the footer and the contents' numbers in "sans".
	pdf.AliasNbPages("{nb}")
	pdf.AddUTF8FontFromBytes("sans", "", fontRegular)
	pdf.AddUTF8FontFromBytes("sans", "B", fontBold)
	pdf.AddUTF8FontFromBytes("mono", "", fontMono)
	pdf.SetMargins(marginLeft, marginTop, marginRight)
	pdf.SetAutoPageBreak(true, marginBottom)
	pdf.SetLineWidth(0.2)
	pdf.SetDrawColor(120, 120, 120)
	w, h := pdf.GetPageSize()
	return &doc{pdf: pdf, width: w - marginLeft - marginRight, bottom: h - marginBottom}
}

func (d *doc) set(s style) {
	b := ""
	if s.bold && s.family == "sans" {
		b = "B"
	}
	size := s.size
	if size == 0 {
		size = bodySize
	}
	d.pdf.SetFont(s.family, b, size)
	d.pdf.SetTextColor(s.text[0], s.text[1], s.text[2])
}

// lineHeight is the leading for a font size in points.
func lineHeight(size float64) float64 { return size * 0.3528 * 1.3 }

// space makes sure h millimetres are left on the page, else starts a new
// one; it keeps a heading with what follows it.
func (d *doc) space(h float64) {
	if d.pdf.GetY()+h > d.bottom {
		d.pdf.AddPage()
	}
}

// title is a section's heading on a new page, with its outline entry.
// The outline is flat: fpdf writes no /Count for an outline item with
// children, which ISO 32000-1 §12.3.3 requires.
func (d *doc) title(text string) {
	d.pdf.AddPage()
	d.pdf.Bookmark(text, 0, -1)
	d.set(style{family: "sans", bold: true, size: 15})
	d.pdf.MultiCell(d.width, 7, text, "", "L", false)
	y := d.pdf.GetY() + 1
	d.pdf.Line(marginLeft, y, marginLeft+d.width, y)
	d.pdf.SetY(y + 3)
}

// heading is a subsection's heading, kept with the first lines after it.
func (d *doc) heading(text string) {
	d.pdf.Ln(3)
	d.space(22)
	d.set(style{family: "sans", bold: true, size: 11})
	d.pdf.MultiCell(d.width, 5.5, text, "", "L", false)
	d.pdf.Ln(1)
}

// para is a paragraph of body text.
func (d *doc) para(text string) {
	d.set(style{family: "sans", size: bodySize})
	d.pdf.MultiCell(d.width, lineHeight(bodySize), text, "", "L", false)
	d.pdf.Ln(1.5)
}

// bullet is a paragraph of a list, with a hanging indent.
func (d *doc) bullet(text string) {
	d.set(style{family: "sans", size: bodySize})
	d.space(lineHeight(bodySize) * 2)
	d.pdf.CellFormat(5, lineHeight(bodySize), "•", "", 0, "L", false, 0, "")
	d.pdf.MultiCell(d.width-5, lineHeight(bodySize), text, "", "L", false)
	d.pdf.Ln(1.5)
}

// note is a paragraph in grey, smaller.
func (d *doc) note(text string) {
	d.set(style{family: "sans", size: tableSize, text: [3]int{80, 80, 80}})
	d.pdf.MultiCell(d.width, lineHeight(tableSize), text, "", "L", false)
	d.pdf.Ln(1.5)
}

// warn is a boxed warning.
func (d *doc) warn(text string) {
	d.set(style{family: "sans", bold: true, size: bodySize, text: [3]int{140, 0, 0}})
	d.pdf.SetFillColor(badBg[0], badBg[1], badBg[2])
	d.pdf.MultiCell(d.width, lineHeight(bodySize)+0.5, text, "1", "L", true)
	d.pdf.Ln(2)
}

// verbatim prints text in the monospace font, in a box, line for line.
func (d *doc) verbatim(text string) {
	d.set(style{family: "mono", size: tableSize})
	d.pdf.SetFillColor(245, 245, 245)
	d.pdf.MultiCell(d.width, lineHeight(tableSize), strings.TrimRight(text, "\n"), "1", "L", true)
	d.pdf.Ln(2)
}

// cell is one table cell.
type cell struct {
	text string
	style
}

func txt(s string) cell  { return cell{text: s, style: plain} }
func bold(s string) cell { return cell{text: s, style: strong} }
func mono(s string) cell { return cell{text: s, style: code} }
func result(r string) cell {
	t, s := resultStyle(r)
	return cell{text: t, style: s}
}

// table is a bordered table with fixed column widths (fractions of the
// text width) and an optional header row repeated on every page it spans.
type table struct {
	d      *doc
	widths []float64
	header []string
}

func (d *doc) newTable(fractions []float64, header ...string) *table {
	t := &table{d: d, header: header}
	for _, f := range fractions {
		t.widths = append(t.widths, f*d.width)
	}
	if len(header) > 0 {
		d.space(18)
		t.head()
	}
	return t
}

func (t *table) head() {
	cells := make([]cell, len(t.header))
	for i, h := range t.header {
		cells[i] = cell{text: h, style: style{family: "sans", bold: true, size: tableSize, fill: greyBg}}
	}
	t.draw(cells, false)
}

// row draws a row.
func (t *table) row(cells ...cell) { t.draw(cells, true) }

// rowFill draws a row on a background.
func (t *table) rowFill(bg *[3]int, cells ...cell) {
	for i := range cells {
		if cells[i].fill == nil {
			cells[i].fill = bg
		}
	}
	t.draw(cells, true)
}

// kv draws label/value rows.
func (t *table) kv(label string, value cell) { t.row(bold(label), value) }

// draw wraps each cell's text to its column and draws the row, continuing
// it on the next page (after the header) when it does not fit; a row that
// fits on a fresh page is moved there whole.
func (t *table) draw(cells []cell, repeatHeader bool) {
	pdf := t.d.pdf
	lines := make([][]string, len(cells))
	heights := make([]float64, len(cells))
	lh := 0.0
	for i, c := range cells {
		t.d.set(c.style)
		ls := pdf.SplitText(c.text, t.widths[i])
		if len(ls) == 0 {
			ls = []string{""}
		}
		lines[i] = ls
		size := c.size
		if size == 0 {
			size = bodySize
		}
		heights[i] = lineHeight(size)
		lh = math.Max(lh, heights[i])
	}
	n := 0
	for _, ls := range lines {
		n = max(n, len(ls))
	}
	_, pageH := pdf.GetPageSize()
	fullPage := int((pageH - marginTop - marginBottom - 12) / lh)
	for start := 0; start < n; {
		rest := n - start
		avail := int((t.d.bottom - pdf.GetY() - 2*cellPad - 0.01) / lh)
		if avail < rest && (rest <= fullPage || avail < 2) {
			pdf.AddPage()
			if repeatHeader && len(t.header) > 0 {
				t.head()
			}
			continue
		}
		k := min(rest, avail)
		h := float64(k)*lh + 2*cellPad
		x, y := marginLeft, pdf.GetY()
		for i, c := range cells {
			w := t.widths[i]
			if c.fill != nil {
				pdf.SetFillColor(c.fill[0], c.fill[1], c.fill[2])
				pdf.Rect(x, y, w, h, "FD")
			} else {
				pdf.Rect(x, y, w, h, "D")
			}
			t.d.set(c.style)
			align := c.align
			if align == "" {
				align = "L"
			}
			for j := 0; j < k && start+j < len(lines[i]); j++ {
				pdf.SetXY(x, y+cellPad+float64(j)*lh)
				pdf.CellFormat(w, heights[i], lines[i][start+j], "", 0, align, false, 0, "")
			}
			x += w
		}
		pdf.SetXY(marginLeft, y+h)
		start += k
	}
}

// end leaves a little space after a table.
func (t *table) end() { t.d.pdf.Ln(3) }
