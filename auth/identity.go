package auth

import (
	"slices"
	"strings"
	"time"
)

// Identity is the canonical, verified caller of a request. It is built once
// per token by the Verifier and is read-only afterwards.
type Identity struct {
	// Subject is the token's "sub" claim, exactly as verified: never
	// blank, padded or holding control or invisible format characters (see
	// IdentityFromClaims). Where it is written into a header or query
	// upstream it is encoded (upstream.EncodeIdentityValue); everywhere
	// else (audit, limits, sessions, stdio _meta) it is this value.
	Subject string
	// Tenant is the organisation of the subject, from the configured tenant
	// claim ("org_id" by default), checked like Subject; empty when the
	// token has none (or null).
	Tenant string
	// Scopes is the union of the "scope" and "scp" claims (each a
	// space-separated string or an array of strings) and the "permissions"
	// array, without duplicates, in token order; see IdentityFromClaims
	// for the rule. Entries that are not RFC 6749 scope tokens (empty, or
	// containing spaces, control characters, '"' or '\') are dropped.
	Scopes []string
	// Roles comes from the configured roles claim ("roles" by default).
	Roles []string
	// ClientID is the OAuth client that obtained the token ("client_id" or "azp").
	ClientID string
	// TokenID is the token's "jti"; it is what logs and audit events carry,
	// never the token itself.
	TokenID string
	// ExpiresAt is the token's "exp".
	ExpiresAt time.Time
	// Claims holds every claim of the token as decoded JSON.
	Claims map[string]any
}

// HasScope reports whether the identity holds scope s.
func (i Identity) HasScope(s string) bool { return slices.Contains(i.Scopes, s) }

// HasRole reports whether the identity holds role r.
func (i Identity) HasRole(r string) bool { return slices.Contains(i.Roles, r) }

// ScopeString returns the scopes joined by single spaces.
func (i Identity) ScopeString() string { return strings.Join(i.Scopes, " ") }
