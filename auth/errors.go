package auth

import (
	"errors"
	"fmt"
	"net/http"
)

// Reason codes of the identify stage. They flow into the HTTP response body,
// the audit event and the logs.
const (
	ReasonCredentialsMissing   = "credentials_missing"
	ReasonSchemeUnsupported    = "scheme_unsupported"
	ReasonCredentialsDuplicate = "credentials_duplicate"
	ReasonTokenInQuery         = "token_in_query"
	ReasonTokenTooLarge        = "token_too_large"
	ReasonTokenMalformed       = "token_malformed"
	ReasonTokenEncrypted       = "token_encrypted"
	ReasonAlgNotAllowed        = "alg_not_allowed"
	ReasonHeaderNotAllowed     = "header_not_allowed"
	ReasonKeyUnknown           = "key_unknown"
	ReasonSignatureInvalid     = "signature_invalid"
	ReasonTokenExpired         = "token_expired"
	ReasonTokenNotYetValid     = "token_not_yet_valid"
	ReasonIssuerMismatch       = "issuer_mismatch"
	ReasonAudienceMismatch     = "audience_mismatch"
	ReasonClaimMissing         = "claim_missing"
	ReasonClaimInvalid         = "claim_invalid"
	ReasonJWKSUnavailable      = "jwks_unavailable"
)

// OAuth error codes used in WWW-Authenticate challenges (RFC 6750 §3.1).
const (
	CodeInvalidRequest    = "invalid_request"
	CodeInvalidToken      = "invalid_token"
	CodeInsufficientScope = "insufficient_scope"
)

// ErrUnauthorized is the sentinel every identify-stage failure wraps; test
// with errors.Is and read the details with errors.As into *Error.
var ErrUnauthorized = errors.New("auth: unauthorized")

// Error is an identify-stage failure. It carries everything the edge needs to
// render the response once: HTTP status, OAuth error code for the challenge
// (empty when the request simply had no credentials), a short description
// that is safe to show, and a machine-readable reason.
type Error struct {
	Status      int
	Code        string
	Reason      string
	Description string
	Err         error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("auth: %s: %s: %v", e.Reason, e.Description, e.Err)
	}
	return fmt.Sprintf("auth: %s: %s", e.Reason, e.Description)
}

// Unwrap lets errors.Is find ErrUnauthorized and the cause.
func (e *Error) Unwrap() []error { return []error{ErrUnauthorized, e.Err} }

func invalidToken(reason, desc string, cause error) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: CodeInvalidToken, Reason: reason, Description: desc, Err: cause}
}
