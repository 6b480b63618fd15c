package mcp_test

import (
	"context"
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

// The demo's admin token is offered to loopback clients by POST only; it
// opens the admin API. The admin API's own requests are audited but stay
// out of the latest-events view and of the tenants' usage.
func TestAdminDemoTokenAndOverview(t *testing.T) {
	t.Parallel()
	var g *gateway
	g = newGateway(t, gatewayOptions{
		configure: func(c *config.Config) { c.Admin.Scope = adminScope },
		demoAdminToken: func(context.Context) (string, error) {
			return g.minter.token("admin", adminScope), nil
		},
	})
	if r := do(t, g.client, http.MethodGet, g.URL+gsmcp.AdminDemoToken, nil, nil); r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET demo token: %d", r.StatusCode)
	}
	r := do(t, g.client, http.MethodPost, g.URL+gsmcp.AdminDemoToken, nil, nil)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(r.body, &tok); err != nil || r.StatusCode != http.StatusOK || tok.AccessToken == "" {
		t.Fatalf("POST demo token: %d %s", r.StatusCode, r.body)
	}
	g.modernCall(t, g.minter.token("alice", baselineScope), "rec__echo", nil).result(t)
	for range 3 {
		if r := do(t, g.client, http.MethodGet, g.URL+gsmcp.AdminOverviewPath, hdr("Authorization", bearer(tok.AccessToken)), nil); r.StatusCode != http.StatusOK {
			t.Fatalf("overview: %d %s", r.StatusCode, r.body)
		}
	}
	r = do(t, g.client, http.MethodGet, g.URL+gsmcp.AdminOverviewPath, hdr("Authorization", bearer(tok.AccessToken)), nil)
	var ov gsmcp.AdminOverview
	if err := json.Unmarshal(r.body, &ov); err != nil {
		t.Fatal(err)
	}
	if len(ov.Today) != 1 || ov.Today[0].Tenant != "acme" || ov.Today[0].Calls != 1 || ov.Today[0].Allowed != 1 {
		t.Errorf("today %+v, want acme with alice's one call only", ov.Today)
	}
	if len(ov.Upstreams) != 2 || ov.Upstreams[0].Name != "rec" || !slicesContains(ov.Upstreams[0].Tools, "rec__echo") {
		t.Errorf("upstreams %+v", ov.Upstreams)
	}
	waitEvents := func(query string, want int) []gsmcp.AdminEvent {
		t.Helper()
		var body struct {
			Events []gsmcp.AdminEvent `json:"events"`
		}
		deadline := time.Now().Add(3 * time.Second)
		for {
			r := do(t, g.client, http.MethodGet, g.URL+gsmcp.AdminAuditPath+query, hdr("Authorization", bearer(tok.AccessToken)), nil)
			if err := json.Unmarshal(r.body, &body); err != nil {
				t.Fatal(err)
			}
			if len(body.Events) >= want || time.Now().After(deadline) {
				return body.Events
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if ev := waitEvents("", 1); len(ev) != 1 || ev[0].Subject != "alice" || ev[0].Target != "rec__echo" {
		t.Errorf("events without admin requests = %+v, want alice's call only", ev)
	}
	if ev := waitEvents("?include_admin=1", 5); len(ev) < 5 || ev[0].Method != "admin/audit" && ev[0].Method != "admin/overview" {
		t.Errorf("events with admin requests = %d, newest %+v", len(ev), ev)
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
