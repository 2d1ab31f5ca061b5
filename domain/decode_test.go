package domain

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Decode reads records' data with go-json-experiment/json while the
// ledger writes them with encoding/json: for every event type, a value with
// every field set survives the round trip unchanged, and encoding/json
// reads the same bytes to the same value.
func TestDecodeReadsWhatEncodingJSONWrites(t *testing.T) {
	if len(registry) < 20 {
		t.Fatalf("only %d event types registered", len(registry))
	}
	for typ, newEvent := range registry {
		t.Run(typ, func(t *testing.T) {
			want := newEvent()
			fill(t, reflect.ValueOf(want).Elem(), typ)
			data, err := json.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(typ, data)
			if err != nil {
				t.Fatalf("Decode(%s): %v", data, err)
			}
			if !reflect.DeepEqual(got, reflect.ValueOf(want).Elem().Interface()) {
				t.Errorf("Decode(%s) = %+v, want %+v", data, got, want)
			}
			v1 := newEvent()
			if err := json.Unmarshal(data, v1); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, reflect.ValueOf(v1).Elem().Interface()) {
				t.Errorf("encoding/json reads %+v, Decode %+v", v1, got)
			}
		})
	}
}

// fill sets every field of v to a value other than its zero, each string
// distinct by its path.
func fill(t *testing.T, v reflect.Value, path string) {
	t.Helper()
	if v.Type() == reflect.TypeFor[time.Time]() {
		v.Set(reflect.ValueOf(time.Date(2026, 11, 29, 1, 2, 3, 456789, time.UTC)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(path + " é")
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
				fill(t, v.Field(i), path+"."+f.Name)
			}
		}
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		fill(t, s.Index(0), path+"[0]")
		fill(t, s.Index(1), path+"[1]")
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(t, k, path+"{k}")
		fill(t, e, path+"{v}")
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(t, p.Elem(), path)
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
