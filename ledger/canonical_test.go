package ledger

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/gowebpki/jcs"
)

// reference is the canonical form computed the slow, obvious way.
func reference(t testing.TB, e Event) []byte {
	raw, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	want, err := jcs.Transform(raw)
	if err != nil {
		t.Fatal(err)
	}
	return want
}

func TestCanonicalMatchesJCS(t *testing.T) {
	base := Event{ID: "0192f5a0-0000-7000-8000-000000000000", Stream: "change-1", Revision: 12, Type: "PlanSubmitted",
		Time: time.Date(2026, 11, 28, 4, 5, 6, 789000000, time.UTC), Actor: Actor{Kind: ActorAgent, ID: "agent-1"}, Data: json.RawMessage(`{"b":2,"a":[1.50,"x"]}`)}
	cases := map[string]func(e *Event){
		"plain":           func(*Event) {},
		"all optional":    func(e *Event) { e.Actor.Credential, e.Correlation, e.Causation = "cred", "chg", "cause" },
		"escapes":         func(e *Event) { e.Type = "a\"b\\c\b\f\n\r\t\x01\x1f\x7f</>&" },
		"unicode":         func(e *Event) { e.Stream = "change-é€😀\u2028\u2029\ufeff" },
		"zero ns":         func(e *Event) { e.Time = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) },
		"ns":              func(e *Event) { e.Time = time.Date(2026, 1, 2, 3, 4, 5, 1, time.UTC) },
		"non-UTC time":    func(e *Event) { e.Time = time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600)).UTC() },
		"big revision":    func(e *Event) { e.Revision = 1<<53 - 1 }, // the largest integer a JSON number holds exactly
		"nested data":     func(e *Event) { e.Data = json.RawMessage(`{"z":{"y":[{"b":1e2,"a":-0}]},"\u00e9":"\u20ac","a":null}`) },
		"data whitespace": func(e *Event) { e.Data = json.RawMessage(" {\n\"a\" : 1 } ") },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			e := base
			mutate(&e)
			got, err := Canonical(e)
			if err != nil {
				t.Fatal(err)
			}
			if want := reference(t, e); !bytes.Equal(got, want) {
				t.Errorf("canonical bytes\n got %s\nwant %s", got, want)
			}
		})
	}
}

func FuzzCanonicalMatchesJCS(f *testing.F) {
	f.Add("change-1", "T", "agent", "", `{"a":1}`, uint64(3))
	f.Add("s\x00", "t\"", "id\\", "c\u2028", `{"b":[1.0,2e10,"\u0001"]}`, uint64(0))
	f.Fuzz(func(t *testing.T, stream, typ, actor, corr, data string, rev uint64) {
		rev %= 1 << 53 // revisions stay within JSON's exact integers
		e := Event{ID: "id", Stream: stream, Revision: rev, Type: typ, Time: time.Unix(1, 5).UTC(),
			Actor: Actor{Kind: ActorHuman, ID: actor}, Correlation: corr, Data: json.RawMessage(data)}
		if validate(e, DefaultLimits) != nil || checkName("stream", stream, maxStream) != nil {
			return
		}
		got, err := Canonical(e)
		if err != nil {
			return // data jcs cannot canonicalize is refused, not mangled
		}
		if want := reference(t, e); !bytes.Equal(got, want) {
			t.Fatalf("canonical bytes\n got %s\nwant %s", got, want)
		}
		// Verification's shortcut reads the same stream and revision as a
		// full decode, or declines.
		if k, ok := tailKey(got); ok && (k.stream != e.Stream || k.revision != e.Revision) {
			t.Fatalf("tailKey read %q@%d, the envelope has %q@%d", k.stream, k.revision, e.Stream, e.Revision)
		}
	})
}
