// Package report reads test and scan reports into the summaries the
// promotion gate judges: JUnit XML (github.com/joshdk/go-junit) and SARIF
// 2.1.0 (github.com/owenrumney/go-sarif/v3). It only parses bytes.
package report

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/joshdk/go-junit"
	"github.com/owenrumney/go-sarif/v3/pkg/report/v210/sarif"

	"github.com/evidence-parity/docket/domain"
)

// ErrMalformed: the bytes are not a report of the stated format.
var ErrMalformed = fmt.Errorf("%w: malformed report", domain.ErrInvalidInput)

// Parse summarises a report of the given format ("junit" or "sarif").
func Parse(format string, b []byte) (domain.EvidenceSummary, error) {
	switch strings.ToLower(format) {
	case "junit":
		return JUnit(b)
	case "sarif":
		return SARIF(b)
	}
	return domain.EvidenceSummary{}, fmt.Errorf("%w: unknown report format %q (junit or sarif)", domain.ErrInvalidInput, format)
}

// JUnit counts passed, failed (failures and errors) and skipped tests.
func JUnit(b []byte) (domain.EvidenceSummary, error) {
	if !bytes.Contains(b, []byte("<testsuite")) {
		return domain.EvidenceSummary{}, fmt.Errorf("%w: no <testsuite> element", ErrMalformed)
	}
	suites, err := junit.Ingest(b)
	if err != nil {
		return domain.EvidenceSummary{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var s domain.EvidenceSummary
	for _, suite := range suites {
		s.TestsPassed += suite.Totals.Passed
		s.TestsFailed += suite.Totals.Failed + suite.Totals.Error
		s.TestsSkipped += suite.Totals.Skipped
	}
	if s.TestsPassed+s.TestsFailed+s.TestsSkipped == 0 {
		return s, fmt.Errorf("%w: the report holds no tests", ErrMalformed)
	}
	return s, nil
}

// SARIF counts findings by severity. Suppressed results (accepted in the
// tool, with their own justification) are not counted.
//
// Severity, first that applies: the rule's `security-severity` property
// (the CVSS-style score GitHub code scanning uses: ≥ 9 critical, ≥ 7 high,
// ≥ 4 medium, else low); a CRITICAL/HIGH/MEDIUM/LOW tag on the result or
// rule (gosec's convention); the SARIF level (error high, warning medium,
// note or none low; warning when absent, SARIF §3.27.10).
func SARIF(b []byte) (domain.EvidenceSummary, error) {
	rep, err := sarif.FromBytes(b)
	if err != nil {
		return domain.EvidenceSummary{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if rep.Version != "2.1.0" || rep.Runs == nil {
		return domain.EvidenceSummary{}, fmt.Errorf("%w: not a SARIF 2.1.0 log (version %q)", ErrMalformed, rep.Version)
	}
	var s domain.EvidenceSummary
	for _, run := range rep.Runs {
		if run == nil {
			continue
		}
		rules := map[string]*sarif.ReportingDescriptor{}
		if run.Tool != nil && run.Tool.Driver != nil {
			for _, r := range run.Tool.Driver.Rules {
				if r != nil && r.ID != nil {
					rules[*r.ID] = r
				}
			}
		}
		for _, res := range run.Results {
			if res == nil || len(res.Suppressions) > 0 {
				continue
			}
			var rule *sarif.ReportingDescriptor
			if res.RuleID != nil {
				rule = rules[*res.RuleID]
			}
			switch severity(res, rule) {
			case "critical":
				s.Critical++
			case "high":
				s.High++
			case "medium":
				s.Medium++
			default:
				s.Low++
			}
		}
	}
	return s, nil
}

func severity(res *sarif.Result, rule *sarif.ReportingDescriptor) string {
	if rule != nil && rule.Properties != nil {
		if v, ok := rule.Properties.Properties["security-severity"]; ok {
			if f, err := toFloat(v); err == nil {
				switch {
				case f >= 9:
					return "critical"
				case f >= 7:
					return "high"
				case f >= 4:
					return "medium"
				}
				return "low"
			}
		}
	}
	for _, bag := range []*sarif.PropertyBag{res.Properties, ruleProps(rule)} {
		if bag == nil {
			continue
		}
		for _, t := range bag.Tags {
			switch l := strings.ToLower(t); l {
			case "critical", "high", "medium", "low":
				return l
			}
		}
	}
	level := res.Level
	if level == "" && rule != nil && rule.DefaultConfiguration != nil {
		level = rule.DefaultConfiguration.Level
	}
	switch level {
	case "error":
		return "high"
	case "note", "none":
		return "low"
	}
	return "medium"
}

func ruleProps(r *sarif.ReportingDescriptor) *sarif.PropertyBag {
	if r == nil {
		return nil
	}
	return r.Properties
}

func toFloat(v any) (float64, error) {
	switch v := v.(type) {
	case float64:
		return v, nil
	case string:
		return strconv.ParseFloat(v, 64)
	}
	return 0, errors.New("not a number")
}
