package ledger

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// decodeCases are envelopes Decode must read as encoding/json does; the
// ones the store writes take the direct path.
var decodeCases = map[string]struct {
	in     string
	direct bool // decodeCanonical, not encoding/json, should read it
}{
	"canonical":          {`{"actor":{"id":"agent-1","kind":"agent"},"data":{"a":[1.5,"x"],"b":2},"id":"0192f5a0-0000-7000-8000-000000000000","revision":12,"stream":"change-1","time":"2026-11-28T04:05:06.789Z","type":"PlanSubmitted"}`, true},
	"all optional":       {`{"actor":{"credential":"cred","id":"a","kind":"human"},"causation":"cause","correlation":"chg","data":{},"id":"i","revision":0,"stream":"s","time":"2026-01-02T03:04:05Z","type":"T"}`, true},
	"unicode":            {`{"actor":{"id":"é","kind":"agent"},"data":{"€":"😀"},"id":"i","revision":1,"stream":"change-é€😀` + "\u2028" + `","time":"2026-01-02T03:04:05.000000001Z","type":"T"}`, true},
	"nested data":        {`{"actor":{"id":"a","kind":"agent"},"data":{"a":null,"z":{"y":[{"a":-0,"b":100,"c":"}]\"{"}]}},"id":"i","revision":18446744073709551615,"stream":"s","time":"2026-01-02T03:04:05Z","type":"T"}`, true},
	"escapes":            {`{"actor":{"id":"a","kind":"agent"},"data":{},"id":"i","revision":1,"stream":"s","time":"2026-01-02T03:04:05Z","type":"a\"b\\c\u0001"}`, false},
	"whitespace":         {`{"actor":{"id":"a","kind":"agent"}, "data":{},"id":"i","revision":1,"stream":"s","time":"2026-01-02T03:04:05Z","type":"T"}`, false},
	"trailing space":     {`{"actor":{"id":"a","kind":"agent"},"data":{},"id":"i","revision":1,"stream":"s","time":"2026-01-02T03:04:05Z","type":"T"} `, false},
	"other order":        {`{"id":"i","actor":{"id":"a","kind":"agent"},"data":{},"revision":1,"stream":"s","time":"2026-01-02T03:04:05Z","type":"T"}`, false},
	"revision too big":   {`{"actor":{"id":"a","kind":"agent"},"data":{},"id":"i","revision":18446744073709551616,"stream":"s","time":"2026-01-02T03:04:05Z","type":"T"}`, false},
	"revision leading 0": {`{"actor":{"id":"a","kind":"agent"},"data":{},"id":"i","revision":01,"stream":"s","time":"2026-01-02T03:04:05Z","type":"T"}`, false},
	"revision negative":  {`{"actor":{"id":"a","kind":"agent"},"data":{},"id":"i","revision":-1,"stream":"s","time":"2026-01-02T03:04:05Z","type":"T"}`, false},
	"bad time":           {`{"actor":{"id":"a","kind":"agent"},"data":{},"id":"i","revision":1,"stream":"s","time":"yesterday","type":"T"}`, false},
	"invalid data":       {`{"actor":{"id":"a","kind":"agent"},"data":{"a":},"id":"i","revision":1,"stream":"s","time":"2026-01-02T03:04:05Z","type":"T"}`, false},
	"array data":         {`{"actor":{"id":"a","kind":"agent"},"data":[1],"id":"i","revision":1,"stream":"s","time":"2026-01-02T03:04:05Z","type":"T"}`, false},
	"bad UTF-8":          {`{"actor":{"id":"a","kind":"agent"},"data":{},"id":"i","revision":1,"stream":"s` + "\xff" + `","time":"2026-01-02T03:04:05Z","type":"T"}`, false},
	"truncated":          {`{"actor":{"id":"a","kind":"agent"},"data":{"a":"}`, false},
	"empty":              {``, false},
	"extra member":       {`{"actor":{"id":"a","kind":"agent"},"data":{},"id":"i","revision":1,"stream":"s","time":"2026-01-02T03:04:05Z","type":"T","x":1}`, false},
}

// checkDecode fails unless Decode agrees with encoding/json on in: the same
// event, or an error from both (the same error: encoding/json gives it).
func checkDecode(t *testing.T, in []byte) {
	t.Helper()
	want, wantErr := decodeJSON(in)
	got, err := Decode(in)
	if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
		t.Fatalf("Decode(%q): error %v, encoding/json's %v", in, err, wantErr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Decode(%q)\n got %#v\nwant %#v", in, got, want)
	}
	if _, ok := decodeCanonical(in); ok && wantErr != nil {
		t.Fatalf("decodeCanonical accepted %q, which encoding/json refuses: %v", in, wantErr)
	}
}

func TestDecodeMatchesJSON(t *testing.T) {
	for name, c := range decodeCases {
		t.Run(name, func(t *testing.T) {
			checkDecode(t, []byte(c.in))
			if _, ok := decodeCanonical([]byte(c.in)); ok != c.direct {
				t.Errorf("direct path taken: got %v, want %v", ok, c.direct)
			}
		})
	}
}

// TestDecodeCanonicalRoundTrip decodes what Canonical writes through the
// direct path, back to the event.
func TestDecodeCanonicalRoundTrip(t *testing.T) {
	e := Event{ID: "0192f5a0-0000-7000-8000-000000000000", Stream: "change-1", Revision: 7, Type: "ActionRecorded",
		Time: time.Date(2026, 11, 28, 4, 5, 6, 789, time.UTC), Actor: Actor{Kind: ActorAgent, ID: "agent-1", Credential: "k"},
		Correlation: "chg", Causation: "c", Data: json.RawMessage(`{"a":[1,{"b":"\"}"}],"c":true}`)}
	b, err := Canonical(e)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := decodeCanonical(b)
	if !ok {
		t.Fatalf("decodeCanonical declined the store's own bytes %s", b)
	}
	if !got.Time.Equal(e.Time) {
		t.Errorf("time: got %v, want %v", got.Time, e.Time)
	}
	got.Time = e.Time
	if !reflect.DeepEqual(got, e) {
		t.Errorf("got %#v\nwant %#v", got, e)
	}
	// Data shares the canonical bytes but cannot be appended into them.
	before := string(b)
	_ = append(got.Data, "xxxxxxxx"...)
	if string(b) != before {
		t.Error("appending to Data changed the canonical bytes")
	}
}

// FuzzDecodeMatchesJSON checks Decode against encoding/json on any bytes;
// testdata/fuzz/FuzzDecodeMatchesJSON holds seeds near the direct path's
// edges.
func FuzzDecodeMatchesJSON(f *testing.F) {
	for _, c := range decodeCases {
		f.Add([]byte(c.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkDecode(t, in) })
}

func BenchmarkDecode(b *testing.B) {
	in := []byte(decodeCases["canonical"].in)
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Decode(in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeJSON(in); err != nil {
				b.Fatal(err)
			}
		}
	})
}
