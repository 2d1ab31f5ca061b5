package ledger

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Decode parses canonical bytes into an envelope.
//
// Bytes in the store's own canonical form (RFC 8785, members in the fixed
// order envelopeParts writes, strings without escapes) take a direct path
// that reads the members in that order and keeps data as it stands; it
// was a quarter of a projection rebuild's CPU under encoding/json.
// Anything else — escapes, other member order, whitespace, invalid input —
// is decoded by encoding/json, which also gives every error, so the result
// and the errors are always encoding/json's. FuzzDecodeMatchesJSON checks
// that the two agree.
//
// The returned Data shares memory with canonical (its capacity is capped,
// so appending to it copies); callers treat both as read-only.
func Decode(canonical []byte) (Event, error) {
	if e, ok := decodeCanonical(canonical); ok {
		return e, nil
	}
	return decodeJSON(canonical)
}

// decodeJSON is Decode by encoding/json.
func decodeJSON(canonical []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(canonical, &e); err != nil {
		return Event{}, fmt.Errorf("decode event: %w", err)
	}
	return e, nil
}

// decodeCanonical reads the envelope in exactly the form envelopeParts
// writes, or reports false. When it reports true, encoding/json would
// decode the same bytes to the same Event without error: every string it
// accepts is escape-free valid UTF-8 without control characters (so
// encoding/json would copy it verbatim), data is an object json.Valid
// accepts, the revision is a plain decimal that fits a uint64, time goes
// through time.Time.UnmarshalJSON as encoding/json would call it, and
// nothing follows the closing brace.
func decodeCanonical(b []byte) (Event, bool) {
	var e Event
	// The members before data and those after it are each read from one
	// string, so the envelope's strings cost two allocations, not seven,
	// and none of them keeps data's bytes alive.
	i, ok := lit(b, 0, `{"actor":{`)
	if !ok {
		return Event{}, false
	}
	head := i
	var credential, actorID, kind, causation, correlation span
	if j, ok := lit(b, i, `"credential":`); ok {
		if credential, i, ok = str(b, j); !ok {
			return Event{}, false
		}
		if i, ok = lit(b, i, `,`); !ok {
			return Event{}, false
		}
	}
	if i, ok = lit(b, i, `"id":`); !ok {
		return Event{}, false
	}
	if actorID, i, ok = str(b, i); !ok {
		return Event{}, false
	}
	if i, ok = lit(b, i, `,"kind":`); !ok {
		return Event{}, false
	}
	if kind, i, ok = str(b, i); !ok {
		return Event{}, false
	}
	if i, ok = lit(b, i, `}`); !ok {
		return Event{}, false
	}
	if j, ok := lit(b, i, `,"causation":`); ok {
		if causation, i, ok = str(b, j); !ok {
			return Event{}, false
		}
	}
	if j, ok := lit(b, i, `,"correlation":`); ok {
		if correlation, i, ok = str(b, j); !ok {
			return Event{}, false
		}
	}
	if i, ok = lit(b, i, `,"data":`); !ok {
		return Event{}, false
	}
	dataStart := i
	if i, ok = skipObject(b, i); !ok {
		return Event{}, false
	}
	data := b[dataStart:i:i]
	tail := i
	var id, stream, tm, typ span
	if i, ok = lit(b, i, `,"id":`); !ok {
		return Event{}, false
	}
	if id, i, ok = str(b, i); !ok {
		return Event{}, false
	}
	if i, ok = lit(b, i, `,"revision":`); !ok {
		return Event{}, false
	}
	n := i
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		n++
	}
	if n == i || (n-i > 1 && b[i] == '0') {
		return Event{}, false
	}
	rev, err := strconv.ParseUint(string(b[i:n]), 10, 64)
	if err != nil {
		return Event{}, false
	}
	i = n
	if i, ok = lit(b, i, `,"stream":`); !ok {
		return Event{}, false
	}
	if stream, i, ok = str(b, i); !ok {
		return Event{}, false
	}
	if i, ok = lit(b, i, `,"time":`); !ok {
		return Event{}, false
	}
	if tm, i, ok = str(b, i); !ok {
		return Event{}, false
	}
	if i, ok = lit(b, i, `,"type":`); !ok {
		return Event{}, false
	}
	if typ, i, ok = str(b, i); !ok {
		return Event{}, false
	}
	if i, ok = lit(b, i, `}`); !ok || i != len(b) {
		return Event{}, false
	}
	// encoding/json hands a time.Time its literal, quotes included.
	if err := e.Time.UnmarshalJSON(b[tm.from-1 : tm.to+1]); err != nil {
		return Event{}, false
	}
	// Only now is data checked in full: everything else matched.
	if !json.Valid(data) {
		return Event{}, false
	}
	h, t := string(b[head:dataStart]), string(b[tail:i])
	e.Actor = Actor{Kind: kind.in(h, head), ID: actorID.in(h, head), Credential: credential.in(h, head)}
	e.Causation, e.Correlation = causation.in(h, head), correlation.in(h, head)
	e.Data = data
	e.ID, e.Revision, e.Stream, e.Type = id.in(t, tail), rev, stream.in(t, tail), typ.in(t, tail)
	return e, true
}

// span is a string's contents, b[from:to], in the envelope's bytes; the
// zero span is an absent member.
type span struct{ from, to int }

// in returns the span's text from s, a string copy of the bytes starting
// at offset base.
func (p span) in(s string, base int) string {
	if p.to == 0 {
		return ""
	}
	return s[p.from-base : p.to-base]
}

// lit reports whether b[i:] starts with s, and the index after it.
func lit(b []byte, i int, s string) (int, bool) {
	if len(b)-i < len(s) || string(b[i:i+len(s)]) != s {
		return i, false
	}
	return i + len(s), true
}

// str reads a JSON string at b[i] that encoding/json would decode to its
// bytes unchanged: no escapes, no control characters, valid UTF-8.
func str(b []byte, i int) (span, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return span{}, i, false
	}
	j := i + 1
	ascii := true
	for ; j < len(b); j++ {
		c := b[j]
		if c == '"' {
			break
		}
		if c == '\\' || c < 0x20 {
			return span{}, i, false
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	if j >= len(b) || (!ascii && !utf8.Valid(b[i+1:j])) {
		return span{}, i, false
	}
	return span{i + 1, j}, j + 1, true
}

// skipObject returns the index after the JSON object starting at b[i],
// found by matching brackets outside strings. It does not validate; the
// caller runs json.Valid on what it spans.
func skipObject(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '{' {
		return i, false
	}
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1, true
			}
		case '"':
			j := bytes.IndexByte(b[i+1:], '"')
			for {
				if j < 0 {
					return i, false
				}
				// The quote ends the string unless an odd number of
				// backslashes precede it.
				k := i + 1 + j
				bs := 0
				for k-1-bs > i && b[k-1-bs] == '\\' {
					bs++
				}
				if bs%2 == 0 {
					i = k
					break
				}
				next := bytes.IndexByte(b[k+1:], '"')
				if next < 0 {
					return i, false
				}
				j = k + 1 + next - (i + 1)
			}
		}
	}
	return i, false
}
