package ledger

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// Data may nest MaxDepth levels of objects and arrays; brackets inside
// strings are not nesting.
func TestPrepareBoundsDepth(t *testing.T) {
	prepare := func(data string) error {
		_, err := Prepare("s", []Event{{Type: "T", Actor: Actor{Kind: ActorSystem, ID: "x"}, Data: []byte(data)}}, DefaultLimits, time.Now())
		return err
	}
	nested := func(levels int, inner string) string { // levels counts the outer object
		return `{"a":` + strings.Repeat("[", levels-1) + inner + strings.Repeat("]", levels-1) + `}`
	}
	for name, data := range map[string]string{
		"MaxDepth levels":                      nested(MaxDepth, ""),
		"MaxDepth levels around a scalar":      nested(MaxDepth, "1"),
		"brackets in strings":                  `{"a":"` + strings.Repeat("[{", 2*MaxDepth) + `","b":"\"[[","c":"\\"}`,
		"MaxDepth levels, brackets in strings": nested(MaxDepth, `"]]]\\\"]{"`),
	} {
		if err := prepare(data); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, data := range map[string]string{
		"one level more":             nested(MaxDepth+1, ""),
		"one level more, an object":  nested(MaxDepth, "{}"),
		"far deeper":                 nested(20_000, ""),
		"one level more, with value": nested(MaxDepth+1, "1"),
	} {
		err := prepare(data)
		if !errors.Is(err, ErrInvalidEvent) || !strings.Contains(err.Error(), "nests more than 1000 levels") {
			t.Errorf("%s: got %v, want ErrInvalidEvent naming the depth limit", name, err)
		}
	}
}

// Data that is not a JSON object is refused by name, however it fails.
func TestPrepareRefusesDataThatIsNotAnObject(t *testing.T) {
	for _, data := range []string{
		``, ` `, `[]`, `"x"`, `1`, `null`, `{`, `{"a":1`, `{"a":1}x`, `{"a":1} {}`, `{"a":01}`, `{"a":+1}`,
		`{"a":.5}`, `{"a":1.}`, `{"a":0x10}`, `{"a":tru}`, `{"a":truex}`, `{"a":NaN}`, `{a:1}`, `{"a" 1}`,
		`{"a":1,}`, `{"a":[1,]}`, `{"a":"\x"}`, "{\"a\":\"\x01\"}", "{\"a\":\"\xff\"}", `{"a":"\ud800"}`, `{"a":1,"a":2}`,
	} {
		_, err := Prepare("s", []Event{{Type: "T", Actor: Actor{Kind: ActorSystem, ID: "x"}, Data: []byte(data)}}, DefaultLimits, time.Now())
		if !errors.Is(err, ErrInvalidEvent) || !strings.Contains(err.Error(), "data must be a JSON object") {
			t.Errorf("%q: got %v, want ErrInvalidEvent: data must be a JSON object", data, err)
		}
	}
}

// BenchmarkPrepare prepares one event of the size and shape of an agent's
// recorded action, as the clerk does for every recordAction.
func BenchmarkPrepare(b *testing.B) {
	data := []byte(`{"changeId":"chg-019ad3f1-7c2e-7a10-9d3b-5e8f0c1a2b3c","sessionId":"ses-019ad3f1-8d4f-7b21-8e4c-6f9a1d2b3c4d",` +
		`"kind":"edit","command":"Edit src/x.go","outcome":"","uses":[{"resource":"file:github.com/acme/api/src/x.go","verb":"write"}],` +
		`"inScope":true,"verdicts":[{"resource":"file:github.com/acme/api/src/x.go","verb":"write","allowed":true,` +
		`"rule":"file:github.com/acme/api/**","reason":"matches file:github.com/acme/api/** (write)"}],"planHash":"sha256:9f2c` +
		strings.Repeat("0", 60) + `","at":"2026-11-28T18:00:00.123456789Z"}`)
	e := []Event{{Type: "ActionRecorded", Actor: Actor{Kind: ActorAgent, ID: "agt-1", Credential: "ses-1"}, Correlation: "chg-1", Data: data}}
	now := time.Now()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Prepare("change-chg-1", e, DefaultLimits, now); err != nil {
			b.Fatal(err)
		}
	}
}
