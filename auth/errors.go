package auth

import (
	"errors"
	"fmt"
	"net/http"
)

// Reason codes of the identify stage. They flow into the HTTP response body,
// the audit event and the logs.
const (
	// ReasonCredentialsMissing: no Authorization header (401, no error code).
	ReasonCredentialsMissing = "credentials_missing"
	// ReasonSchemeUnsupported: an Authorization scheme other than Bearer.
	ReasonSchemeUnsupported = "scheme_unsupported"
	// ReasonCredentialsDuplicate: two Authorization headers, or a header
	// and an access_token query parameter (400 invalid_request).
	ReasonCredentialsDuplicate = "credentials_duplicate"
	// ReasonTokenInQuery: a token only in the access_token query parameter.
	ReasonTokenInQuery = "token_in_query"
	// ReasonTokenTooLarge: the Authorization header or the token exceeds
	// its bound; refused before anything is split or decoded.
	ReasonTokenTooLarge = "token_too_large"
	// ReasonTokenMalformed: not a compact JWS of base64url parts whose
	// header and payload are UTF-8 JSON objects, or a header parameter of
	// the wrong type or size (kid, typ).
	ReasonTokenMalformed = "token_malformed"
	// ReasonTokenEncrypted: a five-part JWE.
	ReasonTokenEncrypted = "token_encrypted"
	// ReasonAlgNotAllowed: the header alg is missing, not a string or not
	// one of the configured algorithms.
	ReasonAlgNotAllowed = "alg_not_allowed"
	// ReasonHeaderNotAllowed: the header carries crit, b64 or a
	// key-carrying parameter (jku, x5u, jwk, x5c); none is ever fetched.
	ReasonHeaderNotAllowed = "header_not_allowed"
	// ReasonTokenTypeNotAllowed: VerifierConfig.TokenTypes is set and the
	// header typ is absent or not one of them.
	ReasonTokenTypeNotAllowed = "token_type_not_allowed"
	// ReasonKidMissing: the token names no kid while the issuer publishes
	// more than one key, so the signing key would have to be guessed.
	ReasonKidMissing = "kid_missing"
	// ReasonKeyUnknown: no usable key of the issuer's JWKS has the token's
	// kid (keys for encryption, of another type or algorithm, or RSA keys
	// under 2048 bits are not usable).
	ReasonKeyUnknown = "key_unknown"
	// ReasonSignatureInvalid: the signature does not verify.
	ReasonSignatureInvalid = "signature_invalid"
	// ReasonTokenExpired: exp is past, beyond the clock skew.
	ReasonTokenExpired = "token_expired"
	// ReasonTokenNotYetValid: nbf or iat is in the future, beyond the skew.
	ReasonTokenNotYetValid = "token_not_yet_valid"
	// ReasonIssuerMismatch: iss is not the configured issuer.
	ReasonIssuerMismatch = "issuer_mismatch"
	// ReasonAudienceMismatch: aud does not name this resource.
	ReasonAudienceMismatch = "audience_mismatch"
	// ReasonClaimMissing: exp or sub is absent.
	ReasonClaimMissing = "claim_missing"
	// ReasonClaimInvalid: a claim has the wrong type or an unacceptable
	// value (time claims that are not numbers in range, exp of 0, a sub,
	// tenant or client id that is empty or blank, padded with whitespace,
	// holds control or invisible format characters or is over 256 bytes, a
	// tenant claim that is not a string, a scope or scp claim of the wrong
	// type).
	ReasonClaimInvalid = "claim_invalid"
	// ReasonClaimDuplicate: a claim name appears twice, two top-level
	// claim names differ only in letter case, or a registered claim name
	// is spelt in another letter case ("Sub").
	ReasonClaimDuplicate = "claim_duplicate"
	// ReasonTokenLifetimeTooLong: exp − iat (exp − now without iat)
	// exceeds VerifierConfig.MaxLifetime.
	ReasonTokenLifetimeTooLong = "token_lifetime_too_long"
	// ReasonIDTokenPresented: the token carries nonce, at_hash or c_hash,
	// the marks of an OpenID Connect ID token, not of an access token.
	ReasonIDTokenPresented = "id_token_presented"
	// ReasonJWKSUnavailable: the issuer's keys were never loaded, or the
	// last successful fetch is older than VerifierConfig.MaxStale (503).
	ReasonJWKSUnavailable = "jwks_unavailable"
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
