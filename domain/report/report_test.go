package report

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/evidence-parity/docket/domain"
)

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRealReports(t *testing.T) {
	cases := []struct {
		file, format string
		want         domain.EvidenceSummary
	}{
		{"gotestsum-failing.xml", "junit", domain.EvidenceSummary{TestsPassed: 2, TestsFailed: 1, TestsSkipped: 1}},
		{"gotestsum-passing.xml", "junit", domain.EvidenceSummary{TestsPassed: 3, TestsSkipped: 1}},
		{"gosec-findings.sarif", "sarif", domain.EvidenceSummary{High: 1, Medium: 3}},
		{"gosec-clean.sarif", "sarif", domain.EvidenceSummary{}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			got, err := Parse(tc.format, read(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSecuritySeverity(t *testing.T) {
	log := `{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"x","rules":[
	 {"id":"A","properties":{"security-severity":"9.8"}},{"id":"B","properties":{"security-severity":7.5}},
	 {"id":"C","defaultConfiguration":{"level":"note"}}]}},
	 "results":[{"ruleId":"A","message":{"text":"a"}},{"ruleId":"B","message":{"text":"b"}},{"ruleId":"C","message":{"text":"c"}},
	 {"ruleId":"A","message":{"text":"accepted"},"suppressions":[{"kind":"inSource","justification":"test key"}]},
	 {"message":{"text":"no rule, no level"}}]}]}`
	got, err := SARIF([]byte(log))
	if err != nil {
		t.Fatal(err)
	}
	if want := (domain.EvidenceSummary{Critical: 1, High: 1, Medium: 1, Low: 1}); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestMalformed(t *testing.T) {
	for _, tc := range []struct{ format, body string }{
		{"junit", ""}, {"junit", "<html>not junit</html>"}, {"junit", "<testsuites><testsuite"}, {"junit", `<testsuites></testsuites>`},
		{"sarif", ""}, {"sarif", "{"}, {"sarif", `{"version":"1.0"}`}, {"sarif", `[]`}, {"pdf", "%PDF"},
	} {
		if _, err := Parse(tc.format, []byte(tc.body)); !errors.Is(err, domain.ErrInvalidInput) {
			t.Errorf("Parse(%s, %q) = %v, want ErrInvalidInput", tc.format, tc.body, err)
		}
	}
	// The real failing JUnit file is not SARIF.
	if _, err := SARIF(read(t, "gotestsum-failing.xml")); err == nil {
		t.Error("a JUnit file parsed as SARIF")
	}
}

func FuzzParseNeverPanics(f *testing.F) {
	f.Add("junit", []byte(`<testsuite tests="1"><testcase name="a"/></testsuite>`))
	f.Add("sarif", []byte(`{"version":"2.1.0","runs":[{"results":[{"level":"error"}]}]}`))
	f.Fuzz(func(t *testing.T, format string, b []byte) { Parse(format, b) })
}
