package auth

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// Regression invariant: the subject, tenant and client id that name the
// caller have one spelling. A value that HTTP would change on the way
// upstream (padding, which header parsing trims), that is empty, or that
// hides characters (controls, bidi and zero-width format characters, the
// replacement character) is refused with 401 invalid_token and reason
// claim_invalid, and so is a tenant claim that is not a string. Nothing
// is trimmed or cleaned: upstreams, the audit log, limits and sessions
// all see the one verified value.
func TestVerifyRefusesIdentityValuesWithoutOneSpelling(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, pubKey{"kid-a", keyA()})
	clk := newClock()
	v := verifierFor(t, srv, clk, nil)
	base := srv.settle(t, v)
	now := clk.Now()
	with := func(name string, value any) string {
		c := claims(now)
		c[name] = value
		return mint(keyA(), "kid-a", c)
	}
	const hdrJSON = `{"alg":"RS256","typ":"JWT","kid":"kid-a"}`
	subJSON := func(literal string) string {
		return signRawJSON(keyA(), hdrJSON, strings.Replace(claimsJSON(now, ""), `"sub":"alice"`, `"sub":`+literal, 1))
	}

	tests := []struct {
		name  string
		token string
		value string // the refused value, which the description must not quote
	}{
		{"a subject padded on both sides", with("sub", " alice "), "alice"},
		{"a subject with a trailing space", with("sub", "alice "), "alice"},
		{"a subject with a leading space", with("sub", " alice"), "alice"},
		{"a subject with a trailing tab", with("sub", "alice\t"), "alice"},
		{"a subject with a leading no-break space", with("sub", "\u00a0alice"), "alice"},
		{"a subject with a trailing ideographic space", with("sub", "alice\u3000"), "alice"},
		{"a subject of spaces only", with("sub", "   "), ""},
		{"an empty subject", with("sub", ""), ""},
		{"a subject with a zero-width space", with("sub", "al\u200bice"), "ice"},
		{"a subject with a zero-width joiner", with("sub", "al\u200dice"), "ice"},
		{"a subject with a byte order mark", with("sub", "\ufeffalice"), "alice"},
		{"a subject with a right-to-left override", with("sub", "\u202eecila"), "ecila"},
		{"a subject with a left-to-right isolate", with("sub", "alice\u2066x"), "alice"},
		{"a subject with NUL", with("sub", "a\x00b"), ""},
		{"a subject with ESC", with("sub", "alice\x1b[0m"), "alice"},
		{"a subject with a paragraph separator", with("sub", "alice\u2029"), "alice"},
		{"a subject of a lone surrogate escape", subJSON(`"\udc80"`), ""},
		{"a subject with an escaped lone surrogate inside", subJSON(`"ali\ud800ce"`), ""},
		{"a tenant that is a number", with("org_id", 42), ""},
		{"a tenant that is an object", with("org_id", map[string]any{"a": 1}), ""},
		{"a tenant that is an array", with("org_id", []any{"acme"}), ""},
		{"a tenant that is a boolean", with("org_id", true), ""},
		{"a tenant of spaces only", with("org_id", "  "), ""},
		{"an empty tenant", with("org_id", ""), ""},
		{"a tenant padded with a space", with("org_id", "acme "), "acme"},
		{"a tenant with a right-to-left override", with("org_id", "acme\u202e"), "acme"},
		{"a tenant with a zero-width space", with("org_id", "ac\u200bme"), "me"},
		{"a client_id padded with a space", with("client_id", " app"), "app"},
		{"a client_id with a zero-width non-joiner", with("client_id", "ap\u200cp"), ""},
		{"an empty client_id", with("client_id", ""), ""},
		{"an azp of spaces only", with("azp", "   "), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := v.Verify(context.Background(), tt.token)
			authError(t, err, http.StatusUnauthorized, CodeInvalidToken, ReasonClaimInvalid)
			if id.Subject != "" {
				t.Errorf("a refused token returned an identity: %+v", id)
			}
			var ae *Error
			if errors.As(err, &ae) {
				if len(ae.Description) > 160 {
					t.Errorf("description of %d bytes, want a short one: %q", len(ae.Description), ae.Description)
				}
				if len(tt.value) >= 3 && strings.Contains(ae.Description, tt.value) {
					t.Errorf("description %q quotes the refused value", ae.Description)
				}
				if !strings.Contains(ae.Description, "identity provider") {
					t.Errorf("description %q does not say where to fix the claim", ae.Description)
				}
			}
		})
	}
	t.Run("bytes that are not UTF-8 make the whole payload malformed", func(t *testing.T) {
		t.Parallel()
		tok := signRawJSON(keyA(), hdrJSON, strings.Replace(claimsJSON(now, ""), `"sub":"alice"`, "\"sub\":\"al\xffice\"", 1))
		_, err := v.Verify(context.Background(), tok)
		authError(t, err, http.StatusUnauthorized, CodeInvalidToken, ReasonTokenMalformed)
	})
	if got := srv.fetches.Load() - base; got != 0 {
		t.Errorf("refused identity values caused %d JWKS fetches, want 0", got)
	}
}

// The same rules hold for claims handed to IdentityFromClaims directly
// (policy explain), where nothing has checked the JSON text: bytes that are
// not UTF-8 are refused there as claim_invalid.
func TestIdentityFromClaimsRefusesValuesWithoutOneSpelling(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		claims map[string]any
		reason string
	}{
		{"a subject that is not UTF-8", map[string]any{"sub": "al\xffice"}, ReasonClaimInvalid},
		{"a tenant that is not UTF-8", map[string]any{"sub": "alice", "org_id": "\xc3"}, ReasonClaimInvalid},
		{"a client_id that is not UTF-8", map[string]any{"sub": "alice", "client_id": "\xed\xa0\x80"}, ReasonClaimInvalid},
		{"a padded subject", map[string]any{"sub": " alice "}, ReasonClaimInvalid},
		{"a tenant that is a number", map[string]any{"sub": "alice", "org_id": 42.0}, ReasonClaimInvalid},
		{"a tenant of the configured claim that is an object", map[string]any{"sub": "alice", "tid": map[string]any{}}, ReasonClaimInvalid},
		{"no subject", map[string]any{"org_id": "acme"}, ReasonClaimMissing},
		{"a null subject", map[string]any{"sub": nil}, ReasonClaimMissing},
		{"a subject that is a number", map[string]any{"sub": 7.0}, ReasonClaimInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tenant := ""
			if _, ok := tt.claims["tid"]; ok {
				tenant = "tid"
			}
			_, err := IdentityFromClaims(tt.claims, tenant, "")
			authError(t, err, http.StatusUnauthorized, CodeInvalidToken, tt.reason)
		})
	}
}

// Values that are legitimate, but that a header cannot carry raw (a comma,
// letters outside ASCII, an inner space), are accepted and kept exactly as
// the token has them; a null tenant counts as absent.
func TestVerifyKeepsLegitimateIdentityValuesExactly(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, pubKey{"kid-a", keyA()})
	clk := newClock()
	v := verifierFor(t, srv, clk, nil)
	now := clk.Now()
	tests := []struct {
		name                  string
		sub, client           string
		tenant                any
		wantTenant            string
		wantTenantAbsentClaim bool
	}{
		{name: "an LDAP distinguished name", sub: "cn=alice,ou=people", tenant: "acme, evilcorp", wantTenant: "acme, evilcorp"},
		{name: "a name with an accent", sub: "José", tenant: "Zürich AG", wantTenant: "Zürich AG", client: "app é"},
		{name: "an Auth0 subject", sub: "auth0|123", tenant: "org_123", wantTenant: "org_123"},
		{name: "an inner space and a percent sign", sub: "alice smith 100%", tenant: nil, wantTenant: ""},
		{name: "no tenant claim", sub: "bob", wantTenantAbsentClaim: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := claims(now)
			c["sub"] = tt.sub
			if !tt.wantTenantAbsentClaim {
				c["org_id"] = tt.tenant
			}
			if tt.client != "" {
				c["client_id"] = tt.client
			}
			id, err := v.Verify(context.Background(), mint(keyA(), "kid-a", c))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if id.Subject != tt.sub || id.Tenant != tt.wantTenant || id.ClientID != tt.client {
				t.Errorf("identity %q / %q / %q, want %q / %q / %q", id.Subject, id.Tenant, id.ClientID, tt.sub, tt.wantTenant, tt.client)
			}
		})
	}
}
