package portal

import (
	"bytes"
	"encoding/csv"
	"testing"
)

// Each of these leaves the site in some browser: protocol-relative,
// backslash and control characters that browsers strip before parsing, a
// scheme, or no leading slash.
func TestSafeNextRefusesOffSite(t *testing.T) {
	for _, next := range []string{
		"", "//evil.example/", "/\\evil.example", "\\\\evil.example", "/\t/evil.example",
		"/\n/evil.example", "/\r/evil.example", "/\x00/evil.example", "/\x7f/evil.example",
		"https://evil.example/", "javascript:alert(1)", "evil.example", "changes", " /changes",
	} {
		if got := safeNext(next); got != "/" {
			t.Errorf("safeNext(%q) = %q, want /", next, got)
		}
	}
	for _, next := range []string{"/", "/changes", "/changes?from=2026-01-01&to=2026-03-31&status=promoted", "/changes/chg_01#answers", "/sample?seed=a%2Fb"} {
		if got := safeNext(next); got != next {
			t.Errorf("safeNext(%q) = %q, want it kept", next, got)
		}
	}
}

// A spreadsheet opening the population CSV must show every cell as text.
func TestCSVCellsAreNeverFormulas(t *testing.T) {
	var buf bytes.Buffer
	cw := csvWriter{csv.NewWriter(&buf)}
	in := []string{"=HYPERLINK(\"http://evil.example\")", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "chg_01", "", "a=b", "agent;=2+3", "a,@b;c"}
	cw.Write(append([]string(nil), in...))
	cw.Flush()
	got, err := csv.NewReader(&buf).Read()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"'=HYPERLINK(\"http://evil.example\")", "'+1", "'-2+3", "'@SUM(A1)", "'\tx", "'\rx", "chg_01", "", "a=b", "agent;'=2+3", "a,'@b;c"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("cell %d: %q, want %q", i, got[i], want[i])
		}
	}
}
