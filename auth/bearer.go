package auth

import (
	"net/http"
	"strings"
)

// MaxAuthorizationHeaderBytes bounds the Authorization header; anything
// longer is refused before it is split or decoded. The token inside is
// bounded again, more tightly, by VerifierConfig.MaxTokenBytes.
const MaxAuthorizationHeaderBytes = 16 << 10

// BearerToken extracts the bearer token of r. Tokens are accepted only in the
// Authorization header (RFC 6750 §2.1): a request with two Authorization
// headers, or with a header and an access_token query parameter, is a 400
// invalid_request; a token only in the query string is treated as missing
// credentials (401 without an error code), so clients are sent to log in
// properly instead of leaking tokens into URLs.
//
// The header is read as follows, and nothing else is accepted:
//
//   - it is refused as too large (token_too_large) when it exceeds
//     MaxAuthorizationHeaderBytes, before it is split or inspected;
//   - the scheme is "Bearer" in any letter case ("bearer", "BEARER"); any
//     other scheme is scheme_unsupported (401 without an error code);
//   - the scheme and the token are separated by one or more spaces, as
//     RFC 9110 §11.4 writes it (1*SP; RFC 6750 shows exactly one): extra
//     spaces cannot change what the token is. A tab or any other byte
//     right after the scheme makes it another scheme (scheme_unsupported).
//     Spaces and tabs around the whole value (optional whitespace, RFC
//     9110 §5.6.3) are ignored;
//   - the token is one RFC 6750 b64token: ALPHA, DIGIT, "-", ".", "_",
//     "~", "+" and "/", then optional trailing "=". Anything else (inner
//     whitespace, a second token, commas, quotes, braces as in a JWS JSON
//     serialization, control or non-ASCII bytes) is token_malformed.
func BearerToken(r *http.Request) (string, *Error) {
	values := r.Header.Values("Authorization")
	inQuery := r.URL != nil && r.URL.RawQuery != "" && r.URL.Query().Has("access_token")
	switch {
	case len(values) > 1:
		return "", &Error{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Reason: ReasonCredentialsDuplicate,
			Description: "send exactly one Authorization header"}
	case len(values) == 1 && inQuery:
		return "", &Error{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Reason: ReasonCredentialsDuplicate,
			Description: "send the token only in the Authorization header, not also as access_token"}
	case len(values) == 0 && inQuery:
		return "", &Error{Status: http.StatusUnauthorized, Reason: ReasonTokenInQuery,
			Description: "access tokens are accepted only in the Authorization header"}
	case len(values) == 0:
		return "", &Error{Status: http.StatusUnauthorized, Reason: ReasonCredentialsMissing,
			Description: "an Authorization: Bearer token is required"}
	}
	h := values[0]
	if len(h) > MaxAuthorizationHeaderBytes {
		return "", invalidToken(ReasonTokenTooLarge, "the Authorization header is too large", nil)
	}
	h = strings.Trim(h, " \t")
	scheme, rest, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", &Error{Status: http.StatusUnauthorized, Reason: ReasonSchemeUnsupported,
			Description: "only the Bearer authorization scheme is accepted"}
	}
	token := strings.TrimLeft(rest, " ")
	if !isB64Token(token) {
		return "", invalidToken(ReasonTokenMalformed, "the bearer token is empty or malformed", nil)
	}
	return token, nil
}

// b64TokenByte marks the bytes of a b64token before its padding.
var b64TokenByte = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
	}
	return t
}()

// isB64Token reports whether s is an RFC 6750 b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		if !b64TokenByte[body[i]] {
			return false
		}
	}
	return true
}
