package resourceuri

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// normalizeCases are the cases of TestNormalize and the seeds of
// FuzzNormalize: want is the normal form, or err the sentinel.
var normalizeCases = []struct {
	name, in, want string
	err            error
}{
	// Dot segments, in every spelling, are removed from rooted paths.
	{"a traversal is removed", "file:///srv/public/../private/secret.txt", "file:///srv/private/secret.txt", nil},
	{"an encoded traversal is removed as a raw one", "file:///srv/public/%2e%2e/private/secret.txt", "file:///srv/private/secret.txt", nil},
	{"a half-encoded traversal is removed", "file:///srv/public/.%2E/private", "file:///srv/private", nil},
	{"a traversal with an encoded slash is refused", "file:///srv/public/..%2fprivate", "", ErrForbidden},
	{"a traversal above the root stops at the root", "file:///../../etc/passwd", "file:///etc/passwd", nil},
	{"a final .. keeps its slash", "file:///a/b/..", "file:///a/", nil},
	{"a bare .. is the root", "file:///..", "file:///", nil},
	{"single dots are removed", "file:///a/./b/.", "file:///a/b/", nil},
	{"dot segments after an authority are removed", "http://h/a/b/../../c", "http://h/c", nil},
	{"dot segments of a path without an authority are removed", "a:/x/../y", "a:/y", nil},
	{"dots inside a segment stay", "file:///a/..b/.c/...", "file:///a/..b/.c/...", nil},
	{"a path that would read as an authority is refused", "a:/..//b", "", ErrForbidden},
	{"decoding happens once", "file:///a/%252e%252e/b", "file:///a/%252e%252e/b", nil},
	{"empty segments stay", "file:///a//b/", "file:///a//b/", nil},

	// Case.
	{"the scheme is lowercased", "FILE:///x", "file:///x", nil},
	{"the host is lowercased", "http://EXAMPLE.com/a", "http://example.com/a", nil},
	{"the path keeps its case", "http://h/A/B", "http://h/A/B", nil},
	{"a decoded letter in the host is lowercased", "http://%45xample.com/", "http://example.com/", nil},
	{"an IPv6 host is lowercased", "http://[FE80::1]:8080/", "http://[fe80::1]:8080/", nil},
	{"an IPv6 host", "http://[::1]/x", "http://[::1]/x", nil},
	{"an IPv6 zone keeps its encoded percent", "http://[fe80::1%25EN0]/", "http://[fe80::1%25en0]/", nil},

	// Percent-encoding.
	{"an encoded tilde is decoded", "https://example.com/%7Euser", "https://example.com/~user", nil},
	{"encoded unreserved characters are decoded", "file:///%41%62%2D%2e%5f%7e%30", "file:///Ab-._~0", nil},
	{"hex digits are uppercased", "file:///caf%c3%a9", "file:///caf%C3%A9", nil},
	{"reserved characters stay encoded", "file:///a%3ab%3F%23", "file:///a%3Ab%3F%23", nil},
	{"non-ASCII is encoded as UTF-8", "file:///café", "file:///caf%C3%A9", nil},
	{"a space is encoded", "file:///a b", "file:///a%20b", nil},
	{"characters outside RFC 3986 are encoded", `file:///"<>^{|}` + "`", "file:///%22%3C%3E%5E%7B%7C%7D%60", nil},
	{"an encoded percent stays", "file:///100%25", "file:///100%25", nil},

	// Queries and fragments: percent-normalized, dots kept.
	{"a query is percent-normalized but keeps its dots", "http://h/p?q=%7e&r=/../x", "http://h/p?q=~&r=/../x", nil},
	{"a fragment is percent-normalized but keeps its dots", "http://h/p#%2e%2e/./x", "http://h/p#.././x", nil},
	{"an encoded slash in a query is refused", "http://h/p?path=a%2Fb", "", ErrForbidden},
	{"an encoded NUL in a fragment is refused", "http://h/p#a%00", "", ErrForbidden},

	// Authority.
	{"userinfo keeps its case", "http://User:Pa%73s@Example.COM:8080/x", "http://User:Pass@example.com:8080/x", nil},
	{"a port stays", "http://h:80/", "http://h:80/", nil},
	{"an empty port stays", "http://h:/", "http://h:/", nil},
	{"an empty path stays empty", "http://example.com", "http://example.com", nil},
	{"an empty path and a query", "http://example.com?x=1", "http://example.com?x=1", nil},
	{"an empty authority", "file:///x", "file:///x", nil},
	{"a port that is not a number is refused", "http://h:8x/", "", ErrForbidden},
	{"two ports are refused", "http://h:1:2/", "", ErrForbidden},
	{"two @ are refused", "http://a@b@c/", "", ErrForbidden},
	{"an unclosed IP literal is refused", "http://[::1/", "", ErrForbidden},
	{"a bracket outside an IP literal is refused", "http://a]b/", "", ErrForbidden},
	{"characters after an IP literal are refused", "http://[::1]x/", "", ErrForbidden},
	{"an encoded backslash in the host is refused", "http://a%5cb/", "", ErrForbidden},

	// MCP's own schemes and opaque URIs.
	{"a host-only URI", "ui://dashboard", "ui://dashboard", nil},
	{"the everything server's URIs", "test://static/resource/1", "test://static/resource/1", nil},
	{"an opaque URI", "a:b", "a:b", nil},
	{"an opaque URI keeps the case of its path", "A:B", "a:B", nil},
	{"a URN", "urn:example:a/b", "urn:example:a/b", nil},
	{"a URN with a traversal is refused", "urn:example:a/../b", "", ErrForbidden},
	{"a rootless path starting with a dot segment is refused", "a:./b", "", ErrForbidden},
	{"a rootless path ending with an encoded dot segment is refused", "a:b/%2E", "", ErrForbidden},
	{"a scheme alone", "a:", "a:", nil},
	{"a scheme with + - .", "git+ssh.v-2://h/x", "git+ssh.v-2://h/x", nil},

	// Refused in any form.
	{"an encoded slash is refused", "file:///a%2Fb", "", ErrForbidden},
	{"an encoded slash in lower case is refused", "file:///a%2fb", "", ErrForbidden},
	{"an encoded backslash is refused", "file:///a%5cb", "", ErrForbidden},
	{"an encoded NUL is refused", "file:///a%00b", "", ErrForbidden},
	{"a raw backslash is refused", `file:///a\..\b`, "", ErrForbidden},
	{"a raw NUL is refused", "file:///a\x00b", "", ErrForbidden},
	{"a newline is refused", "file:///a\nb", "", ErrForbidden},
	{"DEL is refused", "file:///a\x7fb", "", ErrForbidden},
	{"a short percent-encoding is refused", "file:///a%2", "", ErrForbidden},
	{"a short percent-encoding before a query is refused", "file:///a%2?x", "", ErrForbidden},
	{"a percent-encoding that is not hex is refused", "file:///a%zz", "", ErrForbidden},
	{"a lone percent is refused", "file:///%", "", ErrForbidden},

	// Not absolute.
	{"an absolute path is not a URI", "/etc/passwd", "", ErrNoScheme},
	{"a network-path reference is not a URI", "//host/x", "", ErrNoScheme},
	{"a relative path is not a URI", "srv/a.txt", "", ErrNoScheme},
	{"an empty scheme", ":x", "", ErrNoScheme},
	{"a scheme starting with a digit", "1a:b", "", ErrNoScheme},
	{"an empty URI", "", "", ErrNoScheme},

	// Length.
	{"MaxLen bytes are accepted", "file:///" + strings.Repeat("a", MaxLen-8), "file:///" + strings.Repeat("a", MaxLen-8), nil},
	{"a byte more is refused", "file:///" + strings.Repeat("a", MaxLen-7), "", ErrTooLong},
	{"a normal form longer than MaxLen is refused", "file:///" + strings.Repeat(" ", 3000), "", ErrTooLong},
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	for _, tc := range normalizeCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Normalize(tc.in)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Normalize(%s) = %q, %v; want %v", Quote(tc.in), got, err, tc.err)
				}
				if _, cerr := Check(tc.in); !errors.Is(cerr, tc.err) {
					t.Errorf("Check(%s) = %v, want %v", Quote(tc.in), cerr, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Normalize(%s) = %q, %v; want %q", Quote(tc.in), got, err, tc.want)
			}
			// Check accepts exactly the normal form.
			c, cerr := Check(tc.in)
			if tc.in == tc.want {
				if cerr != nil || c != tc.in {
					t.Errorf("Check(%s) = %q, %v; want it accepted", Quote(tc.in), c, cerr)
				}
			} else if !errors.Is(cerr, ErrNotNormal) || !strings.Contains(cerr.Error(), Quote(tc.want)) && len(tc.want) <= maxQuoted {
				t.Errorf("Check(%s) = %v; want ErrNotNormal naming %q", Quote(tc.in), cerr, tc.want)
			}
			crossCheck(t, got)
		})
	}
}

// withoutPercentEncodings drops the %XX triplets of s, whose hex digits
// are upper case in a normal form.
func withoutPercentEncodings(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// crossCheck reads a normal form with net/url: its scheme is in lower case
// and its path, decoded, holds no dot segment.
func crossCheck(t *testing.T, n string) {
	t.Helper()
	u, err := url.Parse(n)
	if err != nil {
		// net/url refuses some hosts RFC 3986 allows (an encoded byte in a
		// reg-name); the path check below needs its parse.
		return
	}
	if u.Scheme != strings.ToLower(u.Scheme) {
		t.Errorf("net/url reads scheme %q in %q", u.Scheme, n)
	}
	if u.Opaque == "" && hasDotSegment(u.Path) {
		t.Errorf("net/url decodes the path of %q to %q, which holds a dot segment", n, u.Path)
	}
	if hasUpper(u.Host) {
		t.Errorf("net/url reads host %q in %q", u.Host, n)
	}
}

func TestErrorMessages(t *testing.T) {
	t.Parallel()
	long := "file:///" + strings.Repeat("a", 300) + "/./b"
	for _, tc := range []struct {
		name, in, want string
		check          bool
	}{
		{"not normal names the normal form", "file:///srv/public/../private/secret.txt",
			`resource URI is not in normal form; send "file:///srv/private/secret.txt"`, true},
		{"lowercase hex names the uppercase form", "file:///caf%c3%a9",
			`resource URI is not in normal form; send "file:///caf%C3%A9"`, true},
		{"a long normal form is cut at 256 bytes", long,
			`resource URI is not in normal form; send "file:///` + strings.Repeat("a", 248) + `"…(310 bytes)`, true},
		{"an encoded slash", "file:///srv/a%2fb",
			`resource URI "file:///srv/a%2fb" holds %2f (an encoded "/") at byte 13`, false},
		{"an encoded backslash", "file:///a%5Cb",
			`resource URI "file:///a%5Cb" holds %5C (an encoded "\") at byte 9`, false},
		{"an encoded NUL", "file:///a%00",
			`resource URI "file:///a%00" holds %00 (an encoded NUL) at byte 9`, false},
		{"a control character is quoted escaped", "file:///a\r\nb",
			`resource URI "file:///a\r\nb" holds a control character at byte 9`, false},
		{"a backslash", `file:///a\b`,
			`resource URI "file:///a\\b" holds a "\" at byte 9`, false},
		{"a short percent-encoding", "file:///a%2",
			`resource URI "file:///a%2" holds "%" not followed by two hex digits at byte 9`, false},
		{"no scheme", "srv/a.txt",
			`resource URI "srv/a.txt" has no scheme; send an absolute URI (scheme:...)`, false},
		{"a rootless traversal", "urn:x:a/../b",
			`resource URI "urn:x:a/../b" holds a "." or ".." segment in a path without a root`, false},
		{"too long", "a:" + strings.Repeat("b", 9000),
			`resource URI is 9002 bytes, longer than 8192`, false},
		{"a quoted URI is cut at 256 bytes", "a:" + strings.Repeat("b", 300) + "%2F",
			`resource URI "a:` + strings.Repeat("b", 254) + `"…(305 bytes) holds %2F (an encoded "/") at byte 302`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Normalize(tc.in)
			if tc.check {
				_, err = Check(tc.in)
			}
			if err == nil || err.Error() != tc.want {
				t.Errorf("got  %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestQuoteCutsOnARuneBoundary(t *testing.T) {
	t.Parallel()
	in := strings.Repeat("a", 255) + "é" + strings.Repeat("b", 10)
	got := Quote(in)
	want := `"` + strings.Repeat("a", 255) + `"…(267 bytes)`
	if got != want {
		t.Errorf("Quote = %s, want %s", got, want)
	}
}

// A URI that is already normal costs no allocation.
func TestNormalDoesNotAllocate(t *testing.T) {
	for _, in := range []string{"test://static/resource/1", "file:///srv/public/a.txt", "ui://dashboard", "urn:example:a"} {
		if n := testing.AllocsPerRun(100, func() {
			if out, err := Check(in); err != nil || out != in {
				t.Fatalf("Check(%q) = %q, %v", in, out, err)
			}
		}); n != 0 {
			t.Errorf("Check(%q) allocates %v times, want 0", in, n)
		}
	}
}

func BenchmarkNormalize(b *testing.B) {
	for _, bc := range []struct{ name, in string }{
		{"normal", "file:///srv/public/reports/2026/q4.txt"},
		{"dot segments", "file:///srv/public/../private/secret.txt"},
		{"percent-encoded", "https://example.com/%7euser/caf%c3%a9?q=%41"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Normalize(bc.in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzNormalize checks the invariants of Normalize and Check for any
// string: Normalize never panics and is idempotent; Check accepts exactly
// the normal forms; an accepted URI is at most MaxLen bytes, has a
// lower-case scheme, no dot segment in a rooted path, and no encoded '/',
// '\' or NUL.
func FuzzNormalize(f *testing.F) {
	for _, tc := range normalizeCases {
		if len(tc.in) < 512 {
			f.Add(tc.in)
		}
	}
	f.Fuzz(func(t *testing.T, in string) {
		n, err := Normalize(in)
		c, cerr := Check(in)
		if err != nil {
			if !errors.Is(err, ErrTooLong) && !errors.Is(err, ErrNoScheme) && !errors.Is(err, ErrForbidden) {
				t.Fatalf("Normalize(%q) = %v, wrapping no sentinel", in, err)
			}
			if cerr == nil || cerr.Error() != err.Error() {
				t.Fatalf("Normalize(%q) = %v but Check = %q, %v", in, err, c, cerr)
			}
			return
		}
		if n2, err := Normalize(n); err != nil || n2 != n {
			t.Fatalf("Normalize(%q) = %q, but Normalize(%q) = %q, %v", in, n, n, n2, err)
		}
		if (cerr == nil) != (n == in) {
			t.Fatalf("Check(%q) = %q, %v but Normalize = %q", in, c, cerr, n)
		}
		if cerr != nil && !errors.Is(cerr, ErrNotNormal) {
			t.Fatalf("Check(%q) = %v, want ErrNotNormal", in, cerr)
		}
		if c, err := Check(n); err != nil || c != n {
			t.Fatalf("Check(%q) = %q, %v for a normal form", n, c, err)
		}
		if len(n) > MaxLen {
			t.Fatalf("Normalize(%q) is %d bytes", in, len(n))
		}
		up := strings.ToUpper(n)
		for _, enc := range []string{"%2F", "%5C", "%00"} {
			if strings.Contains(up, enc) {
				t.Fatalf("Normalize(%q) = %q holds %s", in, n, enc)
			}
		}
		for i := 0; i < len(n); i++ {
			if cl := class[n[i]]; cl == control || cl == backslash || cl == encode {
				t.Fatalf("Normalize(%q) = %q holds byte %#x", in, n, n[i])
			}
		}
		p, err := split(n)
		if err != nil {
			t.Fatalf("split(%q): %v", n, err)
		}
		if hasUpper(n[:p.schemeEnd]) || hasUpper(withoutPercentEncodings(n[p.hostStart:p.hostEnd])) {
			t.Fatalf("Normalize(%q) = %q has upper case in its scheme or host", in, n)
		}
		path := n[p.pathStart:p.pathEnd]
		if hasDotSegment(path) || strings.Contains(path+"/", "/./") || strings.Contains(path+"/", "/../") {
			t.Fatalf("Normalize(%q) = %q holds a dot segment", in, n)
		}
		crossCheck(t, n)
	})
}
