package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

func decode(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %s", b)
	}
	return v
}

func TestParseCallParams(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, params, wantName string
		wantErr                bool
	}{
		{"a plain name is read", `{"name":"a__b","arguments":{"x":1}}`, "a__b", false},
		{"an escaped key still is the name", `{"na\u006de":"a__b"}`, "a__b", false},
		{"the last of duplicate exact keys is read", `{"name":"x","name":"y"}`, "y", false},
		{"NAME next to name is refused", `{"name":"x","NAME":"y"}`, "", true},
		{"Name alone is refused", `{"Name":"y"}`, "", true},
		{"a missing name is refused", `{"arguments":{}}`, "", true},
		{"an empty name is refused", `{"name":""}`, "", true},
		{"a non-string name is refused", `{"name":7}`, "", true},
		{"an array is refused", `["name"]`, "", true},
		{"null is refused", `null`, "", true},
		{"no params are refused", ``, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := ParseCallParams(json.RawMessage(tc.params))
			if tc.wantErr {
				if !errors.Is(err, ErrParamsInvalid) {
					t.Fatalf("err = %v, want ErrParamsInvalid", err)
				}
				return
			}
			if err != nil || p.Name != tc.wantName {
				t.Fatalf("got %q, %v; want %q", p.Name, err, tc.wantName)
			}
		})
	}
}

// Encode keeps every field but the name as sent and leaves exactly one
// "name" key, so no upstream can read another duplicate than the gateway.
func TestCallParamsEncode(t *testing.T) {
	t.Parallel()
	p, err := ParseCallParams(json.RawMessage(`{"name":"x","name":"up__echo","arguments":{"big":12345678901234567890,"s":"<&>"},"_meta":{"progressToken":3}}`))
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Encode("echo")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"name":"echo","arguments":{"big":12345678901234567890,"s":"<&>"},"_meta":{"progressToken":3}}`
	dec := func(b []byte) any {
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if !reflect.DeepEqual(dec(out), dec([]byte(want))) {
		t.Fatalf("Encode = %s, want %s", out, want)
	}
	if n := countKey(t, out, "name"); n != 1 {
		t.Fatalf("encoded params carry %d name keys", n)
	}
}

func countKey(t *testing.T, b []byte, key string) int {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", b)
	}
	n := 0
	for d.More() {
		k, _ := d.Token()
		if k == key {
			n++
		}
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// legacyParams bridges a stateless (2026-07-28) request to an upstream
// session of an earlier era: the era's per-request _meta keys go, every
// other field stays.
func TestLegacyParams(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, in, want string }{
		{"params without era keys are untouched", `{"name":"x","_meta":{"progressToken":1}}`, `{"name":"x","_meta":{"progressToken":1}}`},
		{"era keys are dropped and other _meta kept",
			`{"name":"x","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"c"},"io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/logLevel":"info","progressToken":"p","vendor/x":1}}`,
			`{"name":"x","_meta":{"progressToken":"p","vendor/x":1}}`},
		{"an emptied _meta is removed", `{"name":"x","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}`, `{"name":"x"}`},
		{"era keys outside _meta are not touched", `{"name":"x","arguments":{"io.modelcontextprotocol/protocolVersion":"keep"}}`, `{"name":"x","arguments":{"io.modelcontextprotocol/protocolVersion":"keep"}}`},
		{"other reserved keys stay", `{"_meta":{"io.modelcontextprotocol/related-task":{"taskId":"t"}}}`, `{"_meta":{"io.modelcontextprotocol/related-task":{"taskId":"t"}}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := legacyParams(json.RawMessage(tc.in))
			if !reflect.DeepEqual(decode(t, got), decode(t, []byte(tc.want))) {
				t.Fatalf("legacyParams(%s) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}
