package upstream_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gatewaystack/gatewaystack/auth"
	"github.com/gatewaystack/gatewaystack/upstream"
)

// identityValueSeeds are values a verified identity may hold, and some it
// may not (the encoding does not depend on the checks).
var identityValueSeeds = []string{
	"", "alice", "acme", "auth0|123", "google-oauth2|1234567890", "user@example.com",
	"cn=alice,ou=people", "acme, evilcorp", "alice, admin", "José", "zoë|ünïcode", "東京",
	"alice smith", "100%", "%41", "%", "%%", "a%2Cb", " alice ", "\t", "a\x00b", "\r\nX-Injected: 1",
	"\u202eecila", "al\u200bice", "\ufeff", "\U0001F600", "~!\"#$&'()*+-./:;<=>?@[\\]^_`{|}",
	"\x7f\x80\xff", string([]byte{0xed, 0xa0, 0x80}),
}

// Regression invariant: an identity value reaches upstreams in one
// spelling that no HTTP hop trims or splits (only visible ASCII, no ','),
// that decodes back to exactly the verified value, and that leaves plain
// values unchanged.
func TestIdentityValueEncoding(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"alice", "alice"},
		{"acme", "acme"},
		{"auth0|123", "auth0|123"},
		{"user@example.com", "user@example.com"},
		{"tool:read", "tool:read"},
		{"cn=alice,ou=people", "cn=alice%2Cou=people"},
		{"acme, evilcorp", "acme%2C%20evilcorp"},
		{"José", "Jos%C3%A9"},
		{"100%", "100%25"},
		{"%41", "%2541"},
		{"alice smith", "alice%20smith"},
		{"a\x00b\x7f", "a%00b%7F"},
		{"\r\n", "%0D%0A"},
		{"\U0001F600", "%F0%9F%98%80"},
		{"", ""},
	}
	for _, tt := range tests {
		got := upstream.EncodeIdentityValue(tt.in)
		if got != tt.want {
			t.Errorf("EncodeIdentityValue(%q) = %q, want %q", tt.in, got, tt.want)
		}
		back, err := upstream.DecodeIdentityValue(got)
		if err != nil || back != tt.in {
			t.Errorf("DecodeIdentityValue(%q) = %q, %v, want %q", got, back, err, tt.in)
		}
		// Any percent-decoder reads it the same way.
		if std, err := url.PathUnescape(got); err != nil || std != tt.in {
			t.Errorf("url.PathUnescape(%q) = %q, %v, want %q", got, std, err, tt.in)
		}
	}
}

// The decoder accepts exactly the encoder's output, so a value has one
// spelling on the wire.
func TestDecodeIdentityValueRefusesOtherSpellings(t *testing.T) {
	t.Parallel()
	for _, v := range []string{
		"a,b",         // a raw comma
		"alice smith", // a raw space
		"Jos\xc3\xa9", // raw non-ASCII bytes
		"a\tb",        // a raw control byte
		"%",           // a cut escape
		"%4",          // a cut escape
		"abc%2",       // a cut escape at the end
		"%zz",         // not hexadecimal
		"%c3%a9",      // lowercase hexadecimal
		"%41lice",     // an escape of a byte sent as it is
		"%7C",         // '|' escaped
	} {
		got, err := upstream.DecodeIdentityValue(v)
		if !errors.Is(err, upstream.ErrIdentityValue) {
			t.Errorf("DecodeIdentityValue(%q) = %q, %v, want an error wrapping ErrIdentityValue", v, got, err)
		}
	}
}

// Round trip over the seeds and every single byte: decode(encode(s)) == s,
// the encoding holds only visible ASCII without ',', and it is the
// identity on values that need no encoding.
func TestIdentityValueRoundTrip(t *testing.T) {
	t.Parallel()
	values := append([]string(nil), identityValueSeeds...)
	for c := range 256 {
		values = append(values, string([]byte{byte(c)}), "x"+string([]byte{byte(c)})+"y")
	}
	for _, s := range values {
		checkIdentityValueRoundTrip(t, s)
	}
}

// FuzzIdentityValue checks the encoding's properties on any input:
// decode(encode(s)) == s, the encoding holds only visible ASCII without
// ',' (so HTTP neither trims nor splits it), encoding a value that needs
// none changes nothing, and decoding never accepts two spellings of one
// value (decode(v) == s implies v == encode(s)).
func FuzzIdentityValue(f *testing.F) {
	for _, s := range identityValueSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkIdentityValueRoundTrip(t, s)
		if d, err := upstream.DecodeIdentityValue(s); err == nil {
			if e := upstream.EncodeIdentityValue(d); e != s {
				t.Fatalf("DecodeIdentityValue(%q) = %q, whose encoding is %q: two spellings of one value", s, d, e)
			}
		}
	})
}

func checkIdentityValueRoundTrip(t *testing.T, s string) {
	t.Helper()
	enc := upstream.EncodeIdentityValue(s)
	for i := 0; i < len(enc); i++ {
		if c := enc[i]; c < 0x21 || c > 0x7e || c == ',' {
			t.Fatalf("EncodeIdentityValue(%q) = %q holds byte 0x%02X", s, enc, c)
		}
	}
	if (enc == "") != (s == "") {
		t.Fatalf("EncodeIdentityValue(%q) = %q", s, enc)
	}
	dec, err := upstream.DecodeIdentityValue(enc)
	if err != nil || dec != s {
		t.Fatalf("DecodeIdentityValue(EncodeIdentityValue(%q)) = %q, %v", s, dec, err)
	}
	plain := !strings.ContainsFunc(s, func(r rune) bool { return r < 0x21 || r > 0x7e || r == ',' || r == '%' })
	if plain && utf8.ValidString(s) && enc != s {
		t.Fatalf("EncodeIdentityValue(%q) = %q changed a value that needs no encoding", s, enc)
	}
}

// The identity headers carry each value encoded; the scopes header is the
// scopes, each encoded, joined by single spaces, so splitting it at spaces
// and decoding each part gives the scopes back.
func TestIdentityHeadersEncodeEachValue(t *testing.T) {
	t.Parallel()
	id := auth.Identity{Subject: "cn=alice,ou=people", Tenant: "Zürich, AG", Scopes: []string{"tool:read", "odd,scope", "100%"}}
	h := upstream.IdentityHeaders(testNames, id)
	want := map[string]string{
		"X-User-Id":     "cn=alice%2Cou=people",
		"X-Org-Id":      "Z%C3%BCrich%2C%20AG",
		"X-User-Scopes": "tool:read odd%2Cscope 100%25",
	}
	for k, v := range want {
		if h[k] != v {
			t.Errorf("%s = %q, want %q", k, h[k], v)
		}
	}
	var scopes []string
	for _, part := range strings.Split(h["X-User-Scopes"], " ") {
		s, err := upstream.DecodeIdentityValue(part)
		if err != nil {
			t.Fatal(err)
		}
		scopes = append(scopes, s)
	}
	if strings.Join(scopes, "\n") != strings.Join(id.Scopes, "\n") {
		t.Errorf("scopes decoded = %q, want %q", scopes, id.Scopes)
	}

	plain := upstream.IdentityHeaders(testNames, alice)
	if plain["X-User-Id"] != "alice" || plain["X-Org-Id"] != "acme" || plain["X-User-Scopes"] != "crm:read tool:read" {
		t.Errorf("plain identity headers changed: %v", plain)
	}
}

// A REST upstream receives the encoded identity in its headers and in the
// injected query parameter (whose value, once the URL escaping is undone,
// is the same encoding); the stdio _meta carries the verified values
// themselves, since JSON needs no encoding.
func TestIdentityValuesReachUpstreamsEncodedWhereHeadersCarryThem(t *testing.T) {
	t.Parallel()
	id := auth.Identity{Subject: "cn=José,ou=people", Tenant: "acme, evilcorp", Scopes: []string{"crm:read"}}
	ctx := upstream.WithIdentity(t.Context(), testNames, id)

	t.Run("REST headers and inject_query", func(t *testing.T) {
		t.Parallel()
		b := newRESTBackend(t, jsonAnswer(200, `{"ok":true}`))
		c := newREST(t, upstream.RESTOptions{
			BaseURL:     b.URL + "/v1",
			InjectQuery: "user_id",
			Tools:       []upstream.RESTTool{{Name: "get", Path: "/things"}},
		})
		if res := call(t, c, ctx, "get", map[string]any{}); res.IsError {
			t.Fatalf("isError: %+v", res)
		}
		got := b.last(t)
		for name, raw := range map[string]string{"X-User-Id": id.Subject, "X-Org-Id": id.Tenant} {
			vals := got.Header.Values(name)
			if len(vals) != 1 || vals[0] != upstream.EncodeIdentityValue(raw) {
				t.Fatalf("%s = %q, want [%q]", name, vals, upstream.EncodeIdentityValue(raw))
			}
			if dec, err := upstream.DecodeIdentityValue(vals[0]); err != nil || dec != raw {
				t.Errorf("%s decodes to %q, %v, want %q", name, dec, err, raw)
			}
		}
		q, err := url.ParseQuery(got.Query)
		if err != nil {
			t.Fatal(err)
		}
		if v := q["user_id"]; len(v) != 1 || v[0] != upstream.EncodeIdentityValue(id.Subject) {
			t.Errorf("user_id = %q, want [%q]", v, upstream.EncodeIdentityValue(id.Subject))
		}
	})

	t.Run("stdio _meta", func(t *testing.T) {
		t.Parallel()
		c, _ := newStdio(t, upstream.StdioOptions{})
		out := stdioMustCall(t, ctx, c, "whoami", nil)
		want := map[string]any{"sub": id.Subject, "tenant": id.Tenant, "scopes": []any{"crm:read"}}
		if !stdioSameJSON(out["identity"], want) {
			t.Errorf("identity = %v, want %v", out["identity"], want)
		}
	})
}
