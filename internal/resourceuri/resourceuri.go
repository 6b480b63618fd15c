// Package resourceuri gives each MCP resource URI one spelling, so that the
// URI a policy decision reads, the URI forwarded upstream and the Mcp-Name
// header are one string: Normalize computes the normal form of a URI and
// refuses what the gateway never forwards; Check accepts a URI only when it
// is already in normal form.
//
// Normalize performs these steps (RFC 3986 §6.2.2, syntax-based
// normalization, on a hand-written split of the generic syntax of §3):
//
//  1. Refuse a URI longer than MaxLen bytes (ErrTooLong), and one without a
//     scheme (ErrNoScheme): resource URIs are absolute, scheme ":" ….
//  2. Split it into scheme, authority (userinfo, host, port), path, query
//     and fragment. Refuse (ErrForbidden) an authority that is ambiguous to
//     parsers: more than one '@', an unclosed '[', a '[' or ']' outside an
//     IP literal, a port that is not digits.
//  3. Refuse (ErrForbidden) a raw '\', NUL or other control character
//     (U+0000–U+001F, U+007F) anywhere, a '%' not followed by two hex
//     digits, and the encoded forms of '/', '\' and NUL (%2F, %5C, %00, in
//     either case) anywhere: an encoded separator is one path to the
//     gateway and another to a server that decodes it.
//  4. Lowercase the scheme and the host.
//  5. Percent-encoding, in every component: decode %XX when it encodes an
//     unreserved character (ALPHA / DIGIT / "-" / "." / "_" / "~"; in the
//     host, a decoded letter is lowercased), write the hex digits of every
//     other %XX in upper case, and encode as %XX (UTF-8, upper case) each
//     byte outside RFC 3986's character set (space, '"', '<', '>', '^',
//     '`', '{', '|', '}' and every non-ASCII byte: the IRI-to-URI mapping
//     of RFC 3987 §3.1). Decoding happens once: "%252e" is "%25" followed by
//     "2e" and stays "%252e".
//  6. Remove dot segments (RFC 3986 §5.2.4, remove_dot_segments) from a
//     path that starts with '/' — every path after an authority, and an
//     absolute path without one — after step 5, so "%2e%2e" and ".%2E" are
//     removed as ".." is. Queries and fragments keep their dots.
//  7. A path that does not start with '/' (a rootless path: "urn:example:a/b",
//     "a:b") is opaque to the gateway and kept as it is after step 5; one
//     holding a "." or ".." segment is refused (ErrForbidden), because
//     removing it would turn it into an absolute path ("urn:example:a/../b"
//     would become "urn:/b") and keeping it would forward a traversal.
//  8. Refuse (ErrForbidden) a result whose path would read as an authority
//     (no authority and a path starting with "//", as "a:/..//b" becomes)
//     or that still holds a dot segment, and (ErrTooLong) one longer than
//     MaxLen.
//
// Scheme-based normalization (RFC 3986 §6.2.3: default ports, an empty path
// as "/") is not done: "http://example.com:80" and "http://example.com/"
// stay as sent. Neither are the reserved characters touched: "%3A" and ":"
// stay two spellings, as RFC 3986 has them.
//
// A URI that is already normal and holds no '%', no byte to encode and no
// dot segment is returned as it is, without allocating.
package resourceuri

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxLen is the longest resource URI, sent or normalized, in bytes.
const MaxLen = 8192

// Errors of Normalize and Check, tested with errors.Is. The errors returned
// say what and where in their text; these are what they wrap.
var (
	// ErrTooLong: the URI, or its normal form, is longer than MaxLen bytes.
	ErrTooLong = errors.New("resourceuri: URI too long")
	// ErrNoScheme: the URI does not start with a scheme and ':'.
	ErrNoScheme = errors.New("resourceuri: URI has no scheme")
	// ErrForbidden: the URI holds what the gateway never forwards, in any
	// spelling: an encoded '/', '\' or NUL, a raw '\' or control character,
	// a malformed percent-encoding or authority, or a dot segment that
	// normalization does not remove.
	ErrForbidden = errors.New("resourceuri: forbidden URI")
	// ErrNotNormal: the URI is valid but not in normal form (Check only);
	// the error's text names the normal form.
	ErrNotNormal = errors.New("resourceuri: URI not in normal form")
)

// uriError is the error this package returns: its text for the client, and
// the sentinel it wraps.
type uriError struct {
	msg string
	err error
}

func (e *uriError) Error() string { return e.msg }
func (e *uriError) Unwrap() error { return e.err }

// Check returns uri when it is in normal form. Otherwise it returns the
// error Normalize returns, or, for a URI that normalizes to another string,
// an error wrapping ErrNotNormal whose text names the normal form, so a
// client can send it instead:
//
//	resource URI is not in normal form; send "file:///srv/private/secret.txt"
//
// (the normal form quoted up to 256 bytes, then …(N bytes)).
func Check(uri string) (string, error) {
	n, err := Normalize(uri)
	if err != nil {
		return "", err
	}
	if n != uri {
		return "", &uriError{
			msg: "resource URI is not in normal form; send " + Quote(n),
			err: ErrNotNormal,
		}
	}
	return n, nil
}

// Normalize returns the normal form of uri, following the steps in the
// package documentation, or an error wrapping ErrTooLong, ErrNoScheme or
// ErrForbidden. Normalize is idempotent: the normal form of a normal form
// is itself. The errors' texts read, for example:
//
//	resource URI is 9000 bytes, longer than 8192
//	resource URI "srv/a.txt" has no scheme; send an absolute URI (scheme:...)
//	resource URI "file:///srv/a%2fb" holds %2f (an encoded "/") at byte 13
//	resource URI "urn:x:a/../b" holds a "." or ".." segment in a path without a root
func Normalize(uri string) (string, error) {
	if len(uri) > MaxLen {
		return "", &uriError{
			msg: "resource URI is " + strconv.Itoa(len(uri)) + " bytes, longer than " + strconv.Itoa(MaxLen),
			err: ErrTooLong,
		}
	}
	p, err := split(uri)
	if err != nil {
		return "", err
	}
	plain := true
	for i := 0; i < len(uri); i++ {
		switch class[uri[i]] {
		case control:
			return "", forbidden(uri, "holds a control character at byte "+strconv.Itoa(i))
		case backslash:
			return "", forbidden(uri, `holds a "\" at byte `+strconv.Itoa(i))
		case percent, encode:
			plain = false
		}
	}
	if plain && !hasUpper(uri[:p.schemeEnd]) && !hasUpper(uri[p.hostStart:p.hostEnd]) && !hasDotSegment(uri[p.pathStart:p.pathEnd]) {
		return uri, nil
	}
	return normalize(uri, p)
}

// parts are the bounds of the components of a URI: scheme is
// uri[:schemeEnd]; authority, when hasAuthority, is uri[schemeEnd+3:pathStart]
// with its host at uri[hostStart:hostEnd]; the path uri[pathStart:pathEnd];
// the query, when hasQuery, uri[pathEnd+1:queryEnd]; the fragment, when
// hasFragment, uri[queryEnd+1:].
type parts struct {
	schemeEnd          int
	hasAuthority       bool
	hostStart, hostEnd int
	pathStart, pathEnd int
	hasQuery           bool
	queryEnd           int
	hasFragment        bool
}

func split(uri string) (parts, error) {
	var p parts
	// scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"
	i := 0
	for ; i < len(uri); i++ {
		c := uri[i]
		if isAlpha(c) || i > 0 && (isDigit(c) || c == '+' || c == '-' || c == '.') {
			continue
		}
		break
	}
	if i == 0 || i == len(uri) || uri[i] != ':' {
		return p, &uriError{
			msg: "resource URI " + Quote(uri) + " has no scheme; send an absolute URI (scheme:...)",
			err: ErrNoScheme,
		}
	}
	p.schemeEnd = i
	i++
	p.pathStart = i
	if strings.HasPrefix(uri[i:], "//") {
		p.hasAuthority = true
		start := i + 2
		end := start
		for end < len(uri) && uri[end] != '/' && uri[end] != '?' && uri[end] != '#' {
			end++
		}
		hs, he, err := host(uri, start, end)
		if err != nil {
			return p, err
		}
		p.hostStart, p.hostEnd = hs, he
		p.pathStart = end
	}
	end := p.pathStart
	for end < len(uri) && uri[end] != '?' && uri[end] != '#' {
		end++
	}
	p.pathEnd = end
	p.queryEnd = end
	if end < len(uri) && uri[end] == '?' {
		p.hasQuery = true
		end++
		for end < len(uri) && uri[end] != '#' {
			end++
		}
		p.queryEnd = end
	}
	p.hasFragment = end < len(uri)
	return p, nil
}

// host returns the bounds of the host in the authority uri[start:end]:
// [ userinfo "@" ] host [ ":" port ].
func host(uri string, start, end int) (int, int, error) {
	auth := uri[start:end]
	hs := start
	if at := strings.IndexByte(auth, '@'); at >= 0 {
		if strings.IndexByte(auth[at+1:], '@') >= 0 {
			return 0, 0, forbidden(uri, `holds more than one "@" in its authority`)
		}
		if strings.ContainsAny(auth[:at], "[]") {
			return 0, 0, forbidden(uri, `holds "[" or "]" in its userinfo`)
		}
		hs = start + at + 1
	}
	he := end
	rest := uri[hs:end]
	if strings.HasPrefix(rest, "[") {
		cl := strings.IndexByte(rest, ']')
		if cl < 0 {
			return 0, 0, forbidden(uri, `holds an unclosed "[" in its host`)
		}
		he = hs + cl + 1
		if strings.ContainsAny(rest[1:cl], "[") {
			return 0, 0, forbidden(uri, `holds "[" inside an IP literal`)
		}
	} else {
		if strings.ContainsAny(rest, "[]") {
			return 0, 0, forbidden(uri, `holds "[" or "]" outside an IP literal`)
		}
		if c := strings.IndexByte(rest, ':'); c >= 0 {
			he = hs + c
		}
	}
	if he < end {
		if uri[he] != ':' {
			return 0, 0, forbidden(uri, `holds characters after the IP literal in its host`)
		}
		for i := he + 1; i < end; i++ {
			if !isDigit(uri[i]) {
				return 0, 0, forbidden(uri, "has a port that is not a number")
			}
		}
	}
	return hs, he, nil
}

// normalize builds the normal form of uri, split as p.
func normalize(uri string, p parts) (string, error) {
	out := make([]byte, 0, len(uri)+16)
	for i := 0; i < p.schemeEnd; i++ {
		out = append(out, lower(uri[i]))
	}
	out = append(out, ':')
	var err error
	if p.hasAuthority {
		out = append(out, "//"...)
		if out, err = appendNormal(out, uri, p.schemeEnd+3, p.hostStart, false); err != nil {
			return "", err
		}
		if out, err = appendNormal(out, uri, p.hostStart, p.hostEnd, true); err != nil {
			return "", err
		}
		out = append(out, uri[p.hostEnd:p.pathStart]...) // ":" port, digits only
	}
	pathStart := len(out)
	if out, err = appendNormal(out, uri, p.pathStart, p.pathEnd, false); err != nil {
		return "", err
	}
	path := string(out[pathStart:])
	if strings.HasPrefix(path, "/") {
		path = removeDotSegments(path)
		if !p.hasAuthority && strings.HasPrefix(path, "//") {
			return "", forbidden(uri, `has a path that, with its dot segments removed, starts with "//" and would read as an authority`)
		}
	}
	if hasDotSegment(path) {
		if strings.HasPrefix(path, "/") {
			return "", forbidden(uri, `holds a "." or ".." segment that normalization leaves`)
		}
		return "", forbidden(uri, `holds a "." or ".." segment in a path without a root`)
	}
	out = append(out[:pathStart], path...)
	if p.hasQuery {
		out = append(out, '?')
		if out, err = appendNormal(out, uri, p.pathEnd+1, p.queryEnd, false); err != nil {
			return "", err
		}
	}
	if p.hasFragment {
		out = append(out, '#')
		if out, err = appendNormal(out, uri, p.queryEnd+1, len(uri), false); err != nil {
			return "", err
		}
	}
	if len(out) > MaxLen {
		return "", &uriError{
			msg: "resource URI is " + strconv.Itoa(len(out)) + " bytes in normal form, longer than " + strconv.Itoa(MaxLen),
			err: ErrTooLong,
		}
	}
	return string(out), nil
}

// appendNormal appends uri[start:end] with its percent-encoding normalized (step
// 5), and its letters lowercased when lowerCase is set.
func appendNormal(out []byte, uri string, start, end int, lowerCase bool) ([]byte, error) {
	const hexUpper = "0123456789ABCDEF"
	for i := start; i < end; i++ {
		c := uri[i]
		switch class[c] {
		case percent:
			if i+2 >= end || !isHex(uri[i+1]) || !isHex(uri[i+2]) {
				return nil, forbidden(uri, `holds "%" not followed by two hex digits at byte `+strconv.Itoa(i))
			}
			v := unhex(uri[i+1])<<4 | unhex(uri[i+2])
			switch v {
			case '/':
				return nil, forbidden(uri, "holds "+uri[i:i+3]+` (an encoded "/") at byte `+strconv.Itoa(i))
			case '\\':
				return nil, forbidden(uri, "holds "+uri[i:i+3]+` (an encoded "\") at byte `+strconv.Itoa(i))
			case 0:
				return nil, forbidden(uri, "holds %00 (an encoded NUL) at byte "+strconv.Itoa(i))
			}
			if class[v] == unreserved {
				if lowerCase {
					v = lower(v)
				}
				out = append(out, v)
			} else {
				out = append(out, '%', hexUpper[v>>4], hexUpper[v&0xf])
			}
			i += 2
		case encode:
			out = append(out, '%', hexUpper[c>>4], hexUpper[c&0xf])
		default:
			if lowerCase {
				c = lower(c)
			}
			out = append(out, c)
		}
	}
	return out, nil
}

// removeDotSegments is remove_dot_segments of RFC 3986 §5.2.4.
func removeDotSegments(in string) string {
	out := make([]byte, 0, len(in))
	for len(in) > 0 {
		switch {
		case strings.HasPrefix(in, "../"):
			in = in[3:]
		case strings.HasPrefix(in, "./"):
			in = in[2:]
		case strings.HasPrefix(in, "/./"):
			in = in[2:]
		case in == "/.":
			in = "/"
		case strings.HasPrefix(in, "/../"):
			in = in[3:]
			out = dropLastSegment(out)
		case in == "/..":
			in = "/"
			out = dropLastSegment(out)
		case in == "." || in == "..":
			in = ""
		default:
			n := strings.IndexByte(in[1:], '/') + 1
			if n == 0 {
				n = len(in)
			}
			out = append(out, in[:n]...)
			in = in[n:]
		}
	}
	return string(out)
}

// dropLastSegment removes the last segment of out and the '/' before it.
func dropLastSegment(out []byte) []byte {
	for i := len(out) - 1; i >= 0; i-- {
		if out[i] == '/' {
			return out[:i]
		}
	}
	return out[:0]
}

// hasDotSegment reports whether the path holds a segment "." or "..".
func hasDotSegment(path string) bool {
	for len(path) > 0 {
		seg := path
		if i := strings.IndexByte(path, '/'); i >= 0 {
			seg, path = path[:i], path[i+1:]
		} else {
			path = ""
		}
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

func forbidden(uri, what string) error {
	return &uriError{msg: "resource URI " + Quote(uri) + " " + what, err: ErrForbidden}
}

// maxQuoted is how many bytes of a URI an error quotes.
const maxQuoted = 256

// Quote returns uri as a quoted string for an error or a log line: Go
// syntax with non-ASCII and control characters escaped, at most 256 bytes
// of uri, followed by …(N bytes) when uri is longer.
func Quote(uri string) string {
	if len(uri) <= maxQuoted {
		return strconv.QuoteToASCII(uri)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(uri[cut]) {
		cut--
	}
	return strconv.QuoteToASCII(uri[:cut]) + "…(" + strconv.Itoa(len(uri)) + " bytes)"
}

// Byte classes, the values of class.
const (
	unreserved = iota // ALPHA / DIGIT / "-" / "." / "_" / "~"
	reserved          // gen-delims and sub-delims
	percent           // '%'
	encode            // outside RFC 3986's set: encoded by Normalize
	control           // U+0000–U+001F, U+007F: refused
	backslash         // '\': refused
)

// class is the class of each byte; read-only.
var class = func() (t [256]byte) {
	for c := range 256 {
		switch {
		case c < 0x20 || c == 0x7f:
			t[c] = control
		case c == '\\':
			t[c] = backslash
		case c == '%':
			t[c] = percent
		case isAlpha(byte(c)) || isDigit(byte(c)) || strings.IndexByte("-._~", byte(c)) >= 0:
			t[c] = unreserved
		case strings.IndexByte(":/?#[]@!$&'()*+,;=", byte(c)) >= 0:
			t[c] = reserved
		default:
			t[c] = encode
		}
	}
	return t
}()

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isHex(c byte) bool   { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}
