package domain

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gowebpki/jcs"
)

// Decode reads records' data with go-json-experiment/json while the
// ledger writes them with encoding/json and canonicalizes them (RFC 8785).
// For every event type, whether every field is set (strings with HTML
// characters, U+2028 and a control character, times in another zone), none
// is (omitempty members left out, nil slices written as null) or the
// slices are empty: Decode reads the canonical bytes to what encoding/json
// reads, and a value with every field set survives the round trip.
func TestDecodeReadsWhatEncodingJSONWrites(t *testing.T) {
	if len(registry) < 20 {
		t.Fatalf("only %d event types registered", len(registry))
	}
	for typ, newEvent := range registry {
		t.Run(typ, func(t *testing.T) {
			full, empty := newEvent(), newEvent()
			fill(t, reflect.ValueOf(full).Elem(), typ, 2)
			fill(t, reflect.ValueOf(empty).Elem(), typ, 0)
			for name, e := range map[string]Event{"full": full, "zero": newEvent(), "empty slices": empty} {
				data, err := json.Marshal(e)
				if err != nil {
					t.Fatal(err)
				}
				canonical, err := jcs.Transform(data)
				if err != nil {
					t.Fatal(err)
				}
				got, err := Decode(typ, canonical)
				if err != nil {
					t.Fatalf("%s: Decode(%s): %v", name, canonical, err)
				}
				v1 := newEvent()
				if err := json.Unmarshal(canonical, v1); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, reflect.ValueOf(v1).Elem().Interface()) {
					t.Errorf("%s: encoding/json reads %s to %+v, Decode to %+v", name, canonical, v1, got)
				}
				if name == "full" && !reflect.DeepEqual(got, reflect.ValueOf(e).Elem().Interface()) {
					t.Errorf("Decode(%s) = %+v, want %+v", canonical, got, e)
				}
			}
		})
	}
}

// fill sets every field of v: strings distinct by their path, numbers and
// booleans other than zero, times in a zone other than UTC, and slices with
// n elements (n = 0: empty, not nil).
func fill(t *testing.T, v reflect.Value, path string, n int) {
	t.Helper()
	if v.Type() == reflect.TypeFor[time.Time]() {
		v.Set(reflect.ValueOf(time.Date(2026, 11, 29, 1, 2, 3, 456789, time.FixedZone("", 5*3600+1800))))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(path + " <é&>\u2028\x01")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(-int64(len(path)))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(len(path)))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1.5)
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() && f.Tag.Get("json") != "-" {
				fill(t, v.Field(i), path+"."+f.Name, n)
			}
		}
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fill(t, s.Index(i), fmt.Sprintf("%s[%d]", path, i), n)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		if n > 0 {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(t, k, path+"{k}", n)
			fill(t, e, path+"{v}", n)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(t, p.Elem(), path, n)
		v.Set(p)
	default:
		t.Fatalf("%s: no value for a %s", path, v.Kind())
	}
}

// What encoding/json let through and Decode refuses: a record's data is
// written once, by encoding/json, and never has these.
func TestDecodeIsStrict(t *testing.T) {
	for name, data := range map[string]string{
		"duplicate member": `{"session":"a","session":"b","inScope":true}`,
		"invalid UTF-8":    "{\"session\":\"\xff\"}",
		"not an object":    `[1]`,
		"truncated":        `{"session":"a"`,
	} {
		if _, err := Decode("ActionRecorded", []byte(data)); err == nil || !strings.Contains(err.Error(), "decode ActionRecorded") {
			t.Errorf("%s: Decode = %v, want a decode error", name, err)
		}
	}
	// Unknown members are skipped, so a record written by a later version
	// still reads.
	e, err := Decode("ActionRecorded", []byte(`{"session":"s","inScope":true,"later":{"x":[1]}}`))
	if err != nil || e.(ActionRecorded).Session != "s" || !e.(ActionRecorded).InScope {
		t.Errorf("Decode with an unknown member = %+v, %v", e, err)
	}
}
