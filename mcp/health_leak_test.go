package mcp_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatewaystack/gatewaystack/config"
)

// Invariant: nothing unauthenticated reveals internal addresses. /health,
// /health/ready and /health/idp answer states and reason codes to anyone;
// the upstream errors (which name addresses and dial errors) and the
// identity provider's URLs need a token with the admin scope. The admin
// API checks Origin like /mcp.
func TestUnauthenticatedHealthRevealsNoInternals(t *testing.T) {
	t.Parallel()
	down := closedPortURL(t)
	downHost := strings.TrimPrefix(strings.TrimSuffix(down, "/mcp"), "http://")
	g := newGateway(t, gatewayOptions{
		upstreams: []config.Upstream{{Name: "gone", MCP: &config.MCPUpstream{URL: down}}},
		policy:    map[string]config.ToolRule{"gone__*": {Scopes: []string{baselineScope}}},
		configure: func(c *config.Config) { c.Admin.Scope = "gateway:admin" },
	})
	admin := http.Header{"Authorization": {bearer(g.minter.token("ops", "gateway:admin"))}}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(string(do(t, g.client, http.MethodGet, g.URL+"/health", admin, nil).body), "last_error") {
		if time.Now().After(deadline) {
			t.Fatal("the down upstream never reported an error")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, path := range []string{"/health", "/health/ready"} {
		anon := do(t, g.client, http.MethodGet, g.URL+path, nil, nil)
		for _, leak := range []string{downHost, "refused", `"last_error":`, "dial"} {
			if strings.Contains(string(anon.body), leak) {
				t.Errorf("%s without credentials shows %q: %s", path, leak, anon.body)
			}
		}
		if !strings.Contains(string(anon.body), `"status":"down"`) {
			t.Errorf("%s without credentials lacks the upstream's state: %s", path, anon.body)
		}
		// A token without the admin scope is no better than none.
		user := do(t, g.client, http.MethodGet, g.URL+path, http.Header{"Authorization": {bearer(g.minter.token("alice", baselineScope))}}, nil)
		if strings.Contains(string(user.body), downHost) {
			t.Errorf("%s with a non-admin token shows the address: %s", path, user.body)
		}
		if detail := do(t, g.client, http.MethodGet, g.URL+path, admin, nil); !strings.Contains(string(detail.body), downHost) {
			t.Errorf("%s with the admin scope lacks the upstream's error: %s", path, detail.body)
		}
	}
	anon := do(t, g.client, http.MethodGet, g.URL+"/health/idp", nil, nil)
	if strings.Contains(string(anon.body), g.jwks.URL) || strings.Contains(string(anon.body), testIssuer) {
		t.Errorf("/health/idp without credentials shows the IdP's URLs: %s", anon.body)
	}
	if !strings.Contains(string(anon.body), `"loaded":true`) {
		t.Errorf("/health/idp without credentials lacks the key set's state: %s", anon.body)
	}
	if detail := do(t, g.client, http.MethodGet, g.URL+"/health/idp", admin, nil); !strings.Contains(string(detail.body), g.jwks.URL) {
		t.Errorf("/health/idp with the admin scope lacks the JWKS URL: %s", detail.body)
	}

	// The admin API refuses a foreign Origin, even with an admin token.
	h := admin.Clone()
	h.Set("Origin", "https://evil.example")
	if r := do(t, g.client, http.MethodGet, g.URL+"/admin/api/overview", h, nil); r.StatusCode != http.StatusForbidden || !strings.Contains(string(r.body), "origin_not_allowed") {
		t.Errorf("admin API from a foreign origin: %d %s", r.StatusCode, r.body)
	}
	if r := do(t, g.client, http.MethodGet, g.URL+"/admin/api/overview", admin, nil); r.StatusCode != http.StatusOK {
		t.Errorf("admin API without Origin: %d %s", r.StatusCode, r.body)
	}
}
