package mcp_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/gatewaystack/gatewaystack/upstream"
)

// Regression invariant: a verified subject or tenant that a header cannot
// carry raw (a comma, as in an LDAP DN, or letters outside ASCII) reaches
// an HTTP upstream as exactly one header value in the encoding of
// upstream.EncodeIdentityValue, which decodes back to the verified value;
// the audit line carries the verified value itself, and the demo notes
// server, which decodes the header, files the notes under it.
func TestIdentityValuesReachUpstreamsEncodedAndTheAuditRaw(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{})
	tests := []struct{ name, sub, tenant string }{
		{"an LDAP distinguished name and a tenant with a comma", "cn=alice,ou=people", "acme, evilcorp"},
		{"a subject and a tenant outside ASCII", "José", "Zürich AG"},
		{"plain values are sent unchanged", "auth0|123", "acme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := g.minter.claims(tt.sub, baselineScope)
			c["org_id"] = tt.tenant
			tok := g.minter.sign(c)
			marker := "idval-" + randomHex(4)
			r := g.modernCall(t, tok, "rec__echo", map[string]any{"marker": marker})
			r.result(t)

			runs := g.upstream.runs(marker)
			if len(runs) != 1 {
				t.Fatalf("upstream ran the call %d times, want 1", len(runs))
			}
			for name, raw := range map[string]string{"X-User-Id": tt.sub, "X-Org-Id": tt.tenant} {
				want := upstream.EncodeIdentityValue(raw)
				vs := runs[0].Header.Values(name)
				if !slices.Equal(vs, []string{want}) {
					t.Fatalf("upstream saw %s = %q, want exactly [%q]", name, vs, want)
				}
				if dec, err := upstream.DecodeIdentityValue(vs[0]); err != nil || dec != raw {
					t.Errorf("%s %q decodes to %q, %v, want %q", name, vs[0], dec, err, raw)
				}
			}
			if tt.sub == "auth0|123" && runs[0].Header.Get("X-User-Id") != tt.sub {
				t.Errorf("a plain subject was changed: %q", runs[0].Header.Get("X-User-Id"))
			}

			lines := g.audit.forRequest(t, r.Header.Get("X-Request-Id"))
			if len(lines) != 1 || lines[0]["subject"] != tt.sub || lines[0]["tenant"] != tt.tenant {
				t.Errorf("audit = %v, want subject %q and tenant %q as verified", lines, tt.sub, tt.tenant)
			}

			var notes struct {
				StructuredContent struct {
					User  string `json:"user"`
					OrgID string `json:"org_id"`
				} `json:"structuredContent"`
			}
			res := g.modernCall(t, tok, "notes__list_notes", map[string]any{}).result(t)
			if err := json.Unmarshal(res, &notes); err != nil {
				t.Fatalf("list_notes result %s: %v", res, err)
			}
			if notes.StructuredContent.User != tt.sub || notes.StructuredContent.OrgID != tt.tenant {
				t.Errorf("the notes server saw user %q org %q, want %q %q", notes.StructuredContent.User, notes.StructuredContent.OrgID, tt.sub, tt.tenant)
			}
		})
	}
}

// Regression invariant: a subject or tenant without one spelling (padded,
// blank, with invisible characters) or a tenant that is not a string is
// refused at the door with 401 invalid_token; the audit line says
// claim_invalid and no upstream is reached.
func TestIdentityValuesWithoutOneSpellingAreRefusedAtTheDoor(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{})
	tests := []struct {
		name  string
		claim string
		value any
	}{
		{"a padded subject", "sub", " alice "},
		{"a subject of spaces", "sub", "   "},
		{"a subject with a zero-width space", "sub", "al\u200bice"},
		{"a subject with a right-to-left override", "sub", "\u202eecila"},
		{"a tenant that is a number", "org_id", 42},
		{"a tenant of spaces", "org_id", "  "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := g.minter.claims("alice", baselineScope)
			c[tt.claim] = tt.value
			marker := "refused-" + randomHex(4)
			r := g.modernCall(t, g.minter.sign(c), "rec__echo", map[string]any{"marker": marker})
			if r.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", r.StatusCode, r.body)
			}
			if ch := parseChallenge(t, r.Header.Get("WWW-Authenticate")); ch.Params["error"] != "invalid_token" {
				t.Errorf("challenge %v, want error invalid_token", ch)
			}
			lines := g.audit.forRequest(t, r.Header.Get("X-Request-Id"))
			if len(lines) != 1 || lines[0]["reason"] != "claim_invalid" || lines[0]["decision"] != "deny" {
				t.Errorf("audit = %v, want one deny with reason claim_invalid", lines)
			}
			if n := len(g.upstream.runs(marker)); n != 0 {
				t.Errorf("the upstream ran the call %d times", n)
			}
		})
	}
}
