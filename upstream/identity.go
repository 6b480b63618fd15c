package upstream

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gatewaystack/gatewaystack/auth"
)

// HeaderNames names the headers that carry the verified identity upstream.
type HeaderNames struct {
	User   string
	Tenant string
	Scopes string
}

// IdentityHeaders returns the identity headers for id, each value encoded
// by EncodeIdentityValue: the subject, the tenant, and the scopes, each
// scope encoded on its own and the results joined by single spaces. Empty
// values are sent as absent, never as empty strings.
func IdentityHeaders(n HeaderNames, id auth.Identity) map[string]string {
	h := make(map[string]string, 3)
	h[n.User] = EncodeIdentityValue(id.Subject)
	if id.Tenant != "" {
		h[n.Tenant] = EncodeIdentityValue(id.Tenant)
	}
	if len(id.Scopes) > 0 {
		var b strings.Builder
		for i, s := range id.Scopes {
			if i > 0 {
				b.WriteByte(' ')
			}
			writeIdentityValue(&b, s)
		}
		h[n.Scopes] = b.String()
	}
	return h
}

// ErrIdentityValue is what DecodeIdentityValue wraps when its input is not
// the output of EncodeIdentityValue.
var ErrIdentityValue = errors.New("upstream: not an encoded identity value")

const upperHex = "0123456789ABCDEF"

// identityLiteral reports whether EncodeIdentityValue keeps byte c as it
// is: visible ASCII (0x21-0x7E) other than ',' and '%'.
func identityLiteral(c byte) bool {
	return c >= 0x21 && c <= 0x7e && c != ',' && c != '%'
}

// EncodeIdentityValue returns s as it is written into an identity header
// or an injected query parameter sent upstream. The rule: every byte of s
// that is visible ASCII (0x21-0x7E) other than ',' and '%' is kept; every
// other byte (space, control bytes, ',', '%', and each byte of the UTF-8
// encoding of a non-ASCII character) becomes '%' followed by its value in
// two uppercase hexadecimal digits. So "alice", "acme" and "auth0|123" are
// sent unchanged, "cn=alice,ou=people" as "cn=alice%2Cou=people" and
// "José" as "Jos%C3%A9". The result is never empty unless s is, holds only
// visible ASCII without ',', so HTTP neither trims nor splits it, and
// DecodeIdentityValue (or any percent-decoder, e.g. decodeURIComponent or
// urllib.parse.unquote) gives s back exactly. In a query parameter, the
// URL's own escaping applies on top: the parameter's decoded value is
// this encoding.
func EncodeIdentityValue(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !identityLiteral(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	writeIdentityValue(&b, s)
	return b.String()
}

// writeIdentityValue writes s to b encoded by EncodeIdentityValue's rule.
func writeIdentityValue(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if identityLiteral(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&0xf])
	}
}

// DecodeIdentityValue reverses EncodeIdentityValue: each "%XX" (two
// uppercase hexadecimal digits) becomes the byte it names. It accepts
// exactly what EncodeIdentityValue produces, so each value has one
// spelling: any other byte outside visible ASCII, a raw ',', a '%' not
// followed by two uppercase hexadecimal digits, or an escape of a byte the
// encoding keeps as it is ("%41" for "A") is refused with an error
// wrapping ErrIdentityValue. For DecodeIdentityValue(v) == s to hold, v
// must be one value: split the scopes header at its spaces first.
func DecodeIdentityValue(v string) (string, error) {
	n := strings.IndexByte(v, '%')
	for i := 0; i < len(v); i++ {
		if c := v[i]; c != '%' && !identityLiteral(c) {
			return "", fmt.Errorf("%w: byte 0x%02X at offset %d must be percent-encoded", ErrIdentityValue, c, i)
		}
	}
	if n < 0 {
		return v, nil
	}
	b := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		if i+2 >= len(v) {
			return "", fmt.Errorf("%w: '%%' at offset %d is not followed by two hexadecimal digits", ErrIdentityValue, i)
		}
		hi, lo := unhexUpper(v[i+1]), unhexUpper(v[i+2])
		if hi < 0 || lo < 0 {
			return "", fmt.Errorf("%w: '%%' at offset %d is not followed by two uppercase hexadecimal digits", ErrIdentityValue, i)
		}
		d := byte(hi<<4 | lo)
		if identityLiteral(d) {
			return "", fmt.Errorf("%w: %q at offset %d escapes a byte that is sent as it is", ErrIdentityValue, v[i:i+3], i)
		}
		b = append(b, d)
		i += 2
	}
	return string(b), nil
}

// unhexUpper returns the value of an uppercase hexadecimal digit, or -1.
func unhexUpper(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// identityKey carries the verified identity of a call in a context.
type identityKey struct{}

// WithIdentity returns ctx carrying the verified identity for upstream calls:
// HTTP upstreams get it as the headers named by n (derived once, here),
// stdio upstreams in the request's _meta, REST tools as headers and query.
func WithIdentity(ctx context.Context, n HeaderNames, id auth.Identity) context.Context {
	ctx = context.WithValue(ctx, identityKey{}, identityCarrier{id: id, names: n})
	return WithHeaders(ctx, IdentityHeaders(n, id))
}

type identityCarrier struct {
	id    auth.Identity
	names HeaderNames
}

// IdentityFrom returns the identity and header names put in ctx by
// WithIdentity.
func IdentityFrom(ctx context.Context) (auth.Identity, HeaderNames, bool) {
	c, ok := ctx.Value(identityKey{}).(identityCarrier)
	return c.id, c.names, ok
}
