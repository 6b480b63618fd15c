package auth

import (
	"net/http"
	"strings"
)

// MaxAuthorizationHeaderBytes bounds the Authorization header; anything
// longer is refused before it is split or decoded.
const MaxAuthorizationHeaderBytes = 16 << 10

// BearerToken extracts the bearer token of r. Tokens are accepted only in the
// Authorization header (RFC 6750 §2.1): a request with two Authorization
// headers, or with a header and an access_token query parameter, is a 400
// invalid_request; a token only in the query string is treated as missing
// credentials (401 without an error code), so clients are sent to log in
// properly instead of leaking tokens into URLs.
func BearerToken(r *http.Request) (string, *Error) {
	values := r.Header.Values("Authorization")
	inQuery := r.URL != nil && r.URL.Query().Has("access_token")
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
	h = strings.TrimSpace(h)
	scheme, rest, found := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", &Error{Status: http.StatusUnauthorized, Reason: ReasonSchemeUnsupported,
			Description: "only the Bearer authorization scheme is accepted"}
	}
	token := strings.TrimSpace(rest)
	if !found || token == "" || strings.ContainsAny(token, " \t") {
		return "", invalidToken(ReasonTokenMalformed, "the bearer token is empty or malformed", nil)
	}
	return token, nil
}
