package mcp_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/gatewaystack/gatewaystack/config"
	gsmcp "github.com/gatewaystack/gatewaystack/mcp"
)

const adminScope = "gateway:admin"

func usage(t *testing.T, g *gateway, token, query string) (response, gsmcp.UsageReport) {
	t.Helper()
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", bearer(token))
	}
	r := do(t, g.client, http.MethodGet, g.URL+gsmcp.AdminUsagePath+query, h, nil)
	var rep gsmcp.UsageReport
	if r.StatusCode == http.StatusOK {
		if err := json.Unmarshal(r.body, &rep); err != nil {
			t.Fatalf("usage body %s: %v", r.body, err)
		}
	}
	return r, rep
}

func TestAdminUsage(t *testing.T) {
	t.Parallel()
	o := budgeted(func(b *config.Budgets) {
		b.PerTenant = config.Budget{Units: 100, Period: 24 * time.Hour}
		b.PerSubject = config.Budget{Units: 10, Period: time.Hour}
		b.Costs = map[string]int64{"rec__fancy": 3}
	})
	inner := o.configure
	o.configure = func(c *config.Config) {
		inner(c)
		c.Admin.Scope = adminScope
		c.Limits.PerSubject = config.Rate{Requests: intp(50), Window: time.Minute}
	}
	g := newGateway(t, o)
	alice, bob := g.minter.token("alice", baselineScope), g.minter.token("bob", baselineScope)
	g.modernCall(t, alice, "rec__echo", nil).result(t)
	g.modernCall(t, alice, "rec__fancy", nil).result(t)
	g.modernCall(t, bob, "rec__echo", nil).result(t)
	admin := g.minter.token("ops", baselineScope+" "+adminScope)

	r, rep := usage(t, g, admin, "")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("usage: %d %s", r.StatusCode, r.body)
	}
	if len(rep.Budgets) != 2 || rep.Store != "memory" {
		t.Fatalf("report %+v, want two budgets in memory", rep)
	}
	tenant, subject := rep.Budgets[0], rep.Budgets[1]
	if tenant.Rule != "limits.budgets.per_tenant" || len(tenant.Usage) != 1 || tenant.Usage[0].Key != "acme" || tenant.Usage[0].Used != 5 || tenant.Usage[0].Remaining != 95 {
		t.Errorf("tenant budget %+v, want acme with 5 used", tenant)
	}
	if subject.Period != "1h" || len(subject.Usage) != 2 || subject.Usage[0].Key != "alice" || subject.Usage[0].Used != 4 || subject.Usage[1].Key != "bob" || subject.Usage[1].Used != 1 {
		t.Errorf("subject budget %+v, want alice 4 then bob 1", subject)
	}
	if u := subject.Usage[0]; u.ResetAfter < 1 || u.ResetAfter > 3600 {
		t.Errorf("reset_after %d, want within the hour", u.ResetAfter)
	}

	// One subject: its budget and its rate-limit state, nothing consumed.
	for range 2 {
		_, rep = usage(t, g, admin, "?subject=alice&tenant=acme")
	}
	if len(rep.Budgets[1].Usage) != 1 || rep.Budgets[1].Usage[0].Used != 4 {
		t.Errorf("alice's budget %+v", rep.Budgets[1])
	}
	if len(rep.RateLimits) != 1 || rep.RateLimits[0].Rule != "limits.per_subject" || rep.RateLimits[0].Key != "alice" || rep.RateLimits[0].Remaining != 48 {
		t.Errorf("alice's rate limits %+v, want 48 of 50 remaining (asking consumed nothing)", rep.RateLimits)
	}

	// Without the admin scope: 403 with a step-up challenge; without a
	// token: 401; both audited.
	r, _ = usage(t, g, alice, "")
	if r.StatusCode != http.StatusForbidden {
		t.Fatalf("without the admin scope: %d %s", r.StatusCode, r.body)
	}
	if c := parseChallenge(t, r.Header.Get("WWW-Authenticate")); c.Params["error"] != "insufficient_scope" || c.Params["scope"] != adminScope {
		t.Errorf("challenge %v", c)
	}
	if l := g.audit.forRequest(t, r.Header.Get("X-Request-Id")); len(l) != 1 || l[0]["decision"] != "deny" || l[0]["subject"] != "alice" {
		t.Errorf("audit %v", l)
	}
	if r, _ = usage(t, g, "", ""); r.StatusCode != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("without a token: %d %v", r.StatusCode, r.Header)
	}
	if r, _ = usage(t, g, admin, "?limit=0"); r.StatusCode != http.StatusBadRequest {
		t.Errorf("limit=0: %d %s", r.StatusCode, r.body)
	}
	post := do(t, g.client, http.MethodPost, g.URL+gsmcp.AdminUsagePath, hdr("Authorization", bearer(admin)), nil)
	if post.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", post.StatusCode)
	}
}

// Without admin.scope there are no admin endpoints.
func TestAdminEndpointsOffByDefault(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{})
	r, _ := usage(t, g, g.minter.token("ops", adminScope), "")
	if r.StatusCode != http.StatusNotFound {
		t.Errorf("usage without admin.scope: %d, want 404", r.StatusCode)
	}
}
