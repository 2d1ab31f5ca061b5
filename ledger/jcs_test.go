package ledger

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/gowebpki/jcs"
)

// FuzzCanonicalJSON: canonicalJSON agrees with github.com/gowebpki/jcs on
// every document: the same bytes, or both refuse it.
func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `[]`, `{"b":1,"a":2}`, `{"a":[1.50,-0,0.0,1e21,1e-7,123456789012345678,-1]}`,
		`{"€":1,"😀":2,"\ue000":3,"a\u0000b":"\u2028\/\"\\"}`, `{"a":{"a":1},"a ":2}`, `{"a":1,"a":2}`,
		`"\ud83d\ude00"`, `"\ud83d"`, `"\udc00x"`, `{"x":"caf\u00e9 \t\n"}`, " {\n \"k\" : [ true , false , null ] } ",
		`[1e400]`, `{"😁":1,"😀":2,"\ufffd":3,"\ud83d\ude00x":4}`, `[-1E+2, 5e-324, 9007199254740993]`, `{"a":1,"b":{"d":1,"c":2},"a":3}`, `{"b":[{"y":1,"x":2}],"a":"\u00e9"}`, "{\"\xff\":1}", `{"deep":[[[[[[{"z":0,"y":[]}]]]]]]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, gerr := canonicalJSON(in, 10_000) // encoding/json's own bound
		if !jsonValid(in) {
			// Prepare leaves telling JSON from not to canonicalJSON.
			if gerr == nil {
				t.Fatalf("%q: not JSON, but canonicalized to %s", in, got)
			}
			return
		}
		want, werr := jcs.Transform(in)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%q: jcs error %v, ours %v", in, werr, gerr)
		}
		if werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("%q:\n got %s\nwant %s", in, got, want)
		}
	})
}

func jsonValid(b []byte) bool { return json.Valid(b) }
