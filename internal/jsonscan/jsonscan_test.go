package jsonscan

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// referenceCanonical is what Canonical must produce: encoding/json's decode
// (numbers as written) and encode.
func referenceCanonical(v []byte) ([]byte, bool) {
	d := json.NewDecoder(bytes.NewReader(v))
	d.UseNumber()
	var x any
	if d.Decode(&x) != nil {
		return nil, false
	}
	out, err := json.Marshal(x)
	return out, err == nil
}

var corpus = []string{
	`{}`, `[]`, `null`, `true`, `false`, `0`, `-1.5e+10`, `1.0`, `"x"`, `""`,
	`{"text":"hi"}`,
	` { "b" : 1 , "a" : [ 1 , 2 , { "d" : null , "c" : true } ] } `,
	`{"a":"<script>&amp;</script>"}`,
	`{"k":"line\nbreak\ttab \"quoted\" back\\slash"}`,
	`{"\u0061":"escaped key","b":"\u00e9\u2028\u2029"}`,
	`{"é":"ü","z":"日本語"}`,
	`{"nested":{"deeper":{"deepest":[[],[{}],[[]]]}}}`,
	`{"a":1,"a":2}`,
	`{"a":1,"\u0061":2}`,
	`{"invalid utf8":"` + "\xff\xfe" + `"}`,
	`{"ctl":"\u0001\u001f"}`,
	`[1,"two",{"three":3},[4],null,false]`,
	`{"B":1,"a":2,"_":3,"A":4}`,
}

// TestCanonicalAgreesWithEncodingJSON checks Canonical against the
// decode-and-encode it replaces on the hot path: wherever it answers, it
// answers the same bytes; where it declines (repeated names), the caller
// falls back to encoding/json.
func TestCanonicalAgreesWithEncodingJSON(t *testing.T) {
	declined := 0
	for _, in := range corpus {
		want, ok := referenceCanonical([]byte(in))
		if !ok {
			t.Fatalf("corpus entry %q is not JSON", in)
		}
		got, ok := Canonical(nil, []byte(in))
		if !ok {
			declined++
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("Canonical(%s) = %s, want %s", in, got, want)
		}
	}
	// Only the two entries that repeat a name are left to encoding/json.
	if declined != 2 {
		t.Errorf("Canonical declined %d corpus entries, want 2 (the repeated names)", declined)
	}
}

// TestObjectReadsMembersAsEncodingJSON checks that Object's members, decoded,
// are what encoding/json decodes the object into.
func TestObjectReadsMembersAsEncodingJSON(t *testing.T) {
	for _, in := range corpus {
		members, ok := Object([]byte(in), nil)
		var want map[string]json.RawMessage
		err := json.Unmarshal([]byte(in), &want)
		isObject := err == nil && want != nil
		if ok != isObject {
			t.Errorf("Object(%s) ok = %v, encoding/json object = %v", in, ok, isObject)
			continue
		}
		if !ok {
			continue
		}
		got := map[string]json.RawMessage{}
		for _, m := range members {
			got[m.Key] = m.Value
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Object(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestStringAndAppendStringRoundTrip(t *testing.T) {
	for _, s := range []string{"", "plain", "tab\t", `quote"`, `back\`, "<&>", "é", "\u2028", "\x00"} {
		enc := AppendString(nil, s)
		want, _ := json.Marshal(s)
		if !bytes.Equal(enc, want) {
			t.Errorf("AppendString(%q) = %s, want %s", s, enc, want)
		}
		got, ok := String(enc)
		if !ok || got != s {
			t.Errorf("String(%s) = %q, %v; want %q", enc, got, ok, s)
		}
	}
	for _, bad := range []string{``, `"`, `x`, `"unterminated`, `1`, `null`} {
		if _, ok := String([]byte(bad)); ok {
			t.Errorf("String(%q) ok, want not a string", bad)
		}
	}
}

// FuzzCanonical checks, for any valid JSON, that Canonical either declines
// or agrees byte for byte with encoding/json, and that Object agrees with
// decoding into a map.
func FuzzCanonical(f *testing.F) {
	for _, in := range corpus {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if !json.Valid(in) {
			return
		}
		want, ok := referenceCanonical(in)
		if !ok {
			return
		}
		if got, ok := Canonical(nil, in); ok && !bytes.Equal(got, want) {
			t.Fatalf("Canonical(%q) = %s, want %s", in, got, want)
		}
		members, ok := Object(in, nil)
		var m map[string]json.RawMessage
		if json.Unmarshal(in, &m) != nil || m == nil {
			if ok {
				t.Fatalf("Object(%q) ok for a non-object", in)
			}
			return
		}
		if !ok {
			t.Fatalf("Object(%q) declined an object", in)
		}
		got := map[string]json.RawMessage{}
		for _, mem := range members {
			got[mem.Key] = mem.Value
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("Object(%q) = %q, want %q", in, got, m)
		}
	})
}

// Plain accepts only messages every decoder reads alike, and leaves the
// rest to encoding/json.
func TestPlain(t *testing.T) {
	known := []string{"method", "id"}
	for in, want := range map[string]bool{
		`{"method":"a","id":1}`:            true,
		` {"method":"a","other":{"x":1}} `: true,
		`{"method":"a","method":"b"}`:      false, // repeated
		`{"Method":"a"}`:                   false, // case variant of a known name
		`{"meth\u006fd":"a","method":"b"}`: false, // the same name, escaped
		`{"other":1,"Other":2}`:            true,  // case variants of unknown names are left to the strict check
		`{"method":"a",}`:                  false, // not JSON
		`["method"]`:                       false, // not an object
	} {
		if _, ok := Plain([]byte(in), nil, known); ok != want {
			t.Errorf("Plain(%s) = %v, want %v", in, ok, want)
		}
	}
}
