package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
)

// canonicalJSON returns the RFC 8785 form of a JSON document, or an error
// if in is not JSON (RFC 8259, strings in valid UTF-8: stricter than
// encoding/json.Valid, which lets invalid UTF-8 through) or nests objects
// and arrays more than maxDepth levels deep (errTooDeep).
//
// Why not jcs.Transform: it is correct but builds strings a byte at a time
// and matches every number against a regular expression; it cost more CPU
// than the durable write of the event. This pass does the structural work
// (whitespace, key order by UTF-16 code units, duplicate keys, string
// escapes, UTF-8 and surrogate validation) over the bytes directly and
// leaves number formatting to jcs.NumberToJSON (ECMAScript
// Number.prototype.toString). FuzzCanonicalJSON checks it against
// jcs.Transform: the same bytes, or an error from both.
func canonicalJSON(in []byte, maxDepth int) ([]byte, error) {
	c := canonicalizer{in: in, out: make([]byte, 0, len(in)), maxDepth: maxDepth}
	if err := c.value(0); err != nil {
		return nil, err
	}
	c.space()
	if c.i != len(c.in) {
		return nil, errors.New("trailing data after the JSON value")
	}
	return c.out, nil
}

// errTooDeep is canonicalJSON's answer to nesting beyond its bound.
var errTooDeep = errors.New("JSON nested too deeply")

type canonicalizer struct {
	in       []byte
	i        int
	out      []byte
	maxDepth int    // levels of objects and arrays
	scratch  []byte // object's members while they are put in order
}

func (c *canonicalizer) space() {
	for c.i < len(c.in) {
		switch c.in[c.i] {
		case ' ', '\t', '\n', '\r':
			c.i++
		default:
			return
		}
	}
}

// value canonicalizes the value at c.i, inside depth objects and arrays.
func (c *canonicalizer) value(depth int) error {
	c.space()
	if c.i >= len(c.in) {
		return errors.New("unexpected end of JSON")
	}
	switch b := c.in[c.i]; {
	case (b == '{' || b == '[') && depth >= c.maxDepth:
		return errTooDeep
	case b == '{':
		return c.object(depth)
	case b == '[':
		return c.array(depth)
	case b == '"':
		_, err := c.str()
		return err
	default:
		return c.scalar()
	}
}

func (c *canonicalizer) array(depth int) error {
	c.i++ // [
	c.out = append(c.out, '[')
	c.space()
	if c.i < len(c.in) && c.in[c.i] == ']' {
		c.i++
		c.out = append(c.out, ']')
		return nil
	}
	for {
		if err := c.value(depth + 1); err != nil {
			return err
		}
		c.space()
		if c.i >= len(c.in) {
			return errors.New("unexpected end of JSON")
		}
		switch c.in[c.i] {
		case ',':
			c.i++
			c.out = append(c.out, ',')
		case ']':
			c.i++
			c.out = append(c.out, ']')
			return nil
		default:
			return fmt.Errorf("unexpected %q in array", c.in[c.i])
		}
	}
}

type member struct {
	key        []byte // decoded
	start, end int    // the canonical `"key":value` in out
}

func (c *canonicalizer) object(depth int) error {
	c.i++ // {
	base := len(c.out)
	c.out = append(c.out, '{')
	c.space()
	if c.i < len(c.in) && c.in[c.i] == '}' {
		c.i++
		c.out = append(c.out, '}')
		return nil
	}
	// Members are written as they come; only if they came out of order
	// are they moved (encoding/json writes maps sorted, and structs in
	// their fields' order, which may well be sorted too).
	var small [16]member
	members := small[:0]
	for {
		c.space()
		if c.i >= len(c.in) || c.in[c.i] != '"' {
			return errors.New("object key expected")
		}
		start := len(c.out)
		key, err := c.str()
		if err != nil {
			return err
		}
		c.space()
		if c.i >= len(c.in) || c.in[c.i] != ':' {
			return errors.New("':' expected after object key")
		}
		c.i++
		c.out = append(c.out, ':')
		if err := c.value(depth + 1); err != nil {
			return err
		}
		members = append(members, member{key: key, start: start, end: len(c.out)})
		c.space()
		if c.i >= len(c.in) {
			return errors.New("unexpected end of JSON")
		}
		if c.in[c.i] == ',' {
			c.i++
			c.out = append(c.out, ',')
			continue
		}
		if c.in[c.i] != '}' {
			return fmt.Errorf("unexpected %q in object", c.in[c.i])
		}
		c.i++
		break
	}
	// RFC 8785 §3.2.3: members sorted by their names' UTF-16 code units.
	sorted := true
	for i := 1; i < len(members) && sorted; i++ {
		sorted = compareUTF16(members[i-1].key, members[i].key) < 0
	}
	if sorted { // and so without duplicates
		c.out = append(c.out, '}')
		return nil
	}
	slices.SortFunc(members, func(a, b member) int { return compareUTF16(a.key, b.key) })
	for i := 1; i < len(members); i++ {
		if bytes.Equal(members[i-1].key, members[i].key) {
			return fmt.Errorf("duplicate key %q", members[i].key)
		}
	}
	c.scratch = append(c.scratch[:0], c.out[base:]...)
	c.out = append(c.out[:base], '{')
	for i, m := range members {
		if i > 0 {
			c.out = append(c.out, ',')
		}
		c.out = append(c.out, c.scratch[m.start-base:m.end-base]...)
	}
	c.out = append(c.out, '}')
	return nil
}

// compareUTF16 orders valid UTF-8 strings by their UTF-16 code units.
func compareUTF16(a, b []byte) int {
	for len(a) > 0 && len(b) > 0 {
		ra, na := utf8.DecodeRune(a)
		rb, nb := utf8.DecodeRune(b)
		if ra != rb {
			if ra >= 0x10000 && rb >= 0x10000 {
				return int(ra - rb) // same surrogate order as code point order
			}
			return cmpUnits(ra) - cmpUnits(rb)
		}
		a, b = a[na:], b[nb:]
	}
	return len(a) - len(b)
}

// cmpUnits returns the first UTF-16 code unit of r: what decides the order
// of two different runes (a supplementary rune's high surrogate sorts
// before U+E000–U+FFFF).
func cmpUnits(r rune) int {
	if r >= 0x10000 {
		hi, _ := utf16.EncodeRune(r)
		return int(hi)
	}
	return int(r)
}

// str writes the canonical form of the JSON string at c.i to out, and
// returns it decoded: a slice of in if it had no escapes and is printable
// ASCII, which is then already canonical.
func (c *canonicalizer) str() ([]byte, error) {
	c.i++ // opening quote
	start := c.i
	// Fast path: printable ASCII without escapes.
	for c.i < len(c.in) {
		b := c.in[c.i]
		if b == '"' {
			s := c.in[start:c.i]
			c.i++
			c.out = append(c.out, '"')
			c.out = append(c.out, s...)
			c.out = append(c.out, '"')
			return s, nil
		}
		if b == '\\' || b < 0x20 || b >= 0x80 {
			break
		}
		c.i++
	}
	buf := append([]byte(nil), c.in[start:c.i]...)
	for c.i < len(c.in) {
		b := c.in[c.i]
		switch {
		case b == '"':
			c.i++
			c.out = appendString(c.out, buf)
			return buf, nil
		case b < 0x20:
			return nil, errors.New("control character in string")
		case b == '\\':
			if c.i+1 >= len(c.in) {
				return nil, errors.New("unexpected end of JSON")
			}
			e := c.in[c.i+1]
			c.i += 2
			switch e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r, err := c.hex4()
				if err != nil {
					return nil, err
				}
				if utf16.IsSurrogate(r) {
					if r >= 0xdc00 {
						return nil, fmt.Errorf("lone low surrogate \\u%04x", r)
					}
					if c.i+1 >= len(c.in) || c.in[c.i] != '\\' || c.in[c.i+1] != 'u' {
						return nil, errors.New("high surrogate without a low one")
					}
					c.i += 2
					lo, err := c.hex4()
					if err != nil {
						return nil, err
					}
					if lo < 0xdc00 || lo > 0xdfff {
						return nil, fmt.Errorf("invalid low surrogate \\u%04x", lo)
					}
					r = utf16.DecodeRune(r, lo)
				}
				buf = utf8.AppendRune(buf, r)
			default:
				return nil, fmt.Errorf("invalid escape \\%c", e)
			}
		case b < 0x80:
			buf = append(buf, b)
			c.i++
		default:
			r, n := utf8.DecodeRune(c.in[c.i:])
			if r == utf8.RuneError && n <= 1 {
				return nil, errors.New("invalid UTF-8 in string")
			}
			buf = append(buf, c.in[c.i:c.i+n]...)
			c.i += n
		}
	}
	return nil, errors.New("unterminated string")
}

func (c *canonicalizer) hex4() (rune, error) {
	if c.i+4 > len(c.in) {
		return 0, errors.New("short \\u escape")
	}
	v, err := strconv.ParseUint(string(c.in[c.i:c.i+4]), 16, 16)
	if err != nil {
		return 0, fmt.Errorf("invalid \\u escape %q", c.in[c.i:c.i+4])
	}
	c.i += 4
	return rune(v), nil
}

// scalar handles true, false, null and numbers; numbers are formatted by
// jcs.NumberToJSON from their IEEE 754 double value.
func (c *canonicalizer) scalar() error {
	start := c.i
	for c.i < len(c.in) {
		switch c.in[c.i] {
		case ',', ']', '}', ' ', '\t', '\n', '\r':
			goto done
		}
		c.i++
	}
done:
	tok := c.in[start:c.i]
	switch string(tok) {
	case "true", "false", "null":
		c.out = append(c.out, tok...)
		return nil
	}
	if !isNumber(tok) {
		return fmt.Errorf("invalid literal %q", tok)
	}
	// Integers that a double holds exactly are already canonical.
	if len(tok) <= 15 && isPlainInt(tok) {
		c.out = append(c.out, tok...)
		return nil
	}
	f, err := strconv.ParseFloat(string(tok), 64)
	if err != nil {
		return fmt.Errorf("number out of range: %.40s", tok)
	}
	s, err := jcs.NumberToJSON(f)
	if err != nil {
		return err
	}
	c.out = append(c.out, s...)
	return nil
}

// isPlainInt reports an integer without sign issues: "0" or [-]?[1-9][0-9]*
// (not "-0", which canonicalizes to "0").
func isPlainInt(t []byte) bool {
	if t[0] == '-' {
		t = t[1:]
		if len(t) == 0 || t[0] == '0' {
			return false
		}
	}
	if len(t) > 1 && t[0] == '0' {
		return false
	}
	for _, b := range t {
		if b < '0' || b > '9' {
			return false
		}
	}
	return len(t) > 0
}

// isNumber checks the RFC 8259 §6 number grammar.
func isNumber(t []byte) bool {
	i := 0
	if i < len(t) && t[i] == '-' {
		i++
	}
	switch {
	case i < len(t) && t[i] == '0':
		i++
	case i < len(t) && t[i] >= '1' && t[i] <= '9':
		i = digits(t, i)
	default:
		return false
	}
	if i < len(t) && t[i] == '.' {
		if i = digits(t, i+1); t[i-1] == '.' {
			return false
		}
	}
	if i < len(t) && (t[i] == 'e' || t[i] == 'E') {
		i++
		if i < len(t) && (t[i] == '+' || t[i] == '-') {
			i++
		}
		d := i
		if i = digits(t, i); i == d {
			return false
		}
	}
	return i == len(t)
}

// digits returns the index after the run of digits starting at i.
func digits(t []byte, i int) int {
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	return i
}
