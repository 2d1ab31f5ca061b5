package ledger

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// The envelope's canonical form is written here rather than by running
// github.com/gowebpki/jcs over the whole marshalled envelope: its members
// are fixed and all strings but data, so only data needs the general
// algorithm (done by jcs), and the rest is a few appends. Canonicalizing
// the whole envelope with jcs cost more than the durable write itself.
// TestCanonicalMatchesJCS and the store contract suite check every byte
// against jcs.Transform of the json.Marshal'd envelope.

// envelopeParts returns the RFC 8785 bytes of e split around the value of
// its "revision" member: prefix ends with `"revision":`, suffix starts with
// `,"stream":`. Members are in RFC 8785 §3.2.3 order (by UTF-16 code units):
// actor{credential,id,kind}, causation, correlation, data, id, revision,
// stream, time, type; absent optional members are omitted.
func envelopeParts(e Event) (prefix, suffix []byte, err error) {
	data, err := canonicalJSON(e.Data, MaxDepth)
	switch {
	case errors.Is(err, errTooDeep):
		return nil, nil, fmt.Errorf("%w: data nests more than %d levels deep", ErrInvalidEvent, MaxDepth)
	case err != nil:
		return nil, nil, fmt.Errorf("%w: data must be a JSON object: %v", ErrInvalidEvent, err)
	}
	b := make([]byte, 0, len(data)+256)
	b = append(b, `{"actor":{`...)
	if e.Actor.Credential != "" {
		b = append(b, `"credential":`...)
		b = appendString(b, e.Actor.Credential)
		b = append(b, ',')
	}
	b = append(b, `"id":`...)
	b = appendString(b, e.Actor.ID)
	b = append(b, `,"kind":`...)
	b = appendString(b, e.Actor.Kind)
	b = append(b, '}')
	if e.Causation != "" {
		b = append(b, `,"causation":`...)
		b = appendString(b, e.Causation)
	}
	if e.Correlation != "" {
		b = append(b, `,"correlation":`...)
		b = appendString(b, e.Correlation)
	}
	b = append(b, `,"data":`...)
	b = append(b, data...)
	b = append(b, `,"id":`...)
	b = appendString(b, e.ID)
	b = append(b, `,"revision":`...)
	prefix = b
	s := make([]byte, 0, 128)
	s = append(s, `,"stream":`...)
	s = appendString(s, e.Stream)
	s = append(s, `,"time":"`...)
	s = e.Time.UTC().AppendFormat(s, time.RFC3339Nano)
	s = append(s, `","type":`...)
	s = appendString(s, e.Type)
	s = append(s, '}')
	return prefix, s, nil
}

// appendString appends s as an RFC 8785 §3.2.2.2 string: the ECMAScript
// JSON.stringify escapes (\b \t \n \f \r \" \\, other C0 controls as
// lower-case \u00hh) and every other character literally. s is valid UTF-8.
func appendString[T ~string | ~[]byte](b []byte, s T) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\t':
			b = append(b, '\\', 't')
		case '\n':
			b = append(b, '\\', 'n')
		case '\f':
			b = append(b, '\\', 'f')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			if c < 0x20 {
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			} else {
				b = append(b, c)
			}
		}
	}
	return append(b, '"')
}

// Canonical returns the RFC 8785 (JSON Canonicalization Scheme) bytes of
// the envelope.
func Canonical(e Event) ([]byte, error) {
	prefix, suffix, err := envelopeParts(e)
	if err != nil {
		return nil, err
	}
	return join(prefix, e.Revision, suffix), nil
}

func join(prefix []byte, revision uint64, suffix []byte) []byte {
	out := make([]byte, 0, len(prefix)+20+len(suffix))
	out = append(out, prefix...)
	out = strconv.AppendUint(out, revision, 10)
	return append(out, suffix...)
}
