package mcp

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatewaystack/gatewaystack/audit"
	"github.com/gatewaystack/gatewaystack/upstream"
)

// Admin API paths (JSON, behind the admin scope) and the admin page.
const (
	AdminPagePath     = "/admin"
	AdminOverviewPath = "/admin/api/overview"
	AdminAuditPath    = "/admin/api/audit"
	AdminDemoToken    = "/admin/api/demo-token"
)

// AdminOverview is the answer of GET /admin/api/overview.
type AdminOverview struct {
	Time          string            `json:"time"`
	Version       string            `json:"version"`
	Resource      string            `json:"resource"`
	PolicyVersion string            `json:"policy_version"`
	JWKSReady     bool              `json:"jwks_ready"`
	Ready         bool              `json:"ready"`
	Upstreams     []AdminUpstream   `json:"upstreams"`
	LimitsStore   StoreHealth       `json:"limits_store"`
	AuditSinks    []audit.SinkStats `json:"audit_sinks"`
	// SessionsActive made a request in the last 5 minutes (this replica).
	SessionsActive int `json:"sessions_active"`
	// Today is this replica's per-tenant usage since 00:00 UTC.
	Today []TenantDay `json:"today"`
}

// AdminUpstream is one upstream with its health and tools.
type AdminUpstream struct {
	upstream.Health
	// Tools are the names clients see, of the tools the upstream has
	// listed to callers so far.
	Tools []string `json:"tools"`
}

// TenantDay counts one tenant's decisions today.
type TenantDay struct {
	Tenant  string `json:"tenant"`
	Calls   int64  `json:"calls"`
	Allowed int64  `json:"allowed"`
	Denied  int64  `json:"denied"`
	Limited int64  `json:"limited"`
	Errors  int64  `json:"errors"`
	Cost    int64  `json:"cost"`
}

// maxTenantsPerDay bounds the per-tenant counters.
const maxTenantsPerDay = 10_000

// tenantDays counts decisions per tenant for the current UTC day.
type tenantDays struct {
	mu  sync.Mutex
	day string
	m   map[string]*TenantDay
}

func (t *tenantDays) add(e *audit.Event) {
	day := e.Time.UTC().Format(time.DateOnly)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.day != day || t.m == nil {
		t.day, t.m = day, make(map[string]*TenantDay)
	}
	key := e.Tenant
	if key == "" {
		key = "-"
	}
	d := t.m[key]
	if d == nil {
		if len(t.m) >= maxTenantsPerDay {
			return
		}
		d = &TenantDay{Tenant: key}
		t.m[key] = d
	}
	d.Calls++
	switch e.Decision {
	case audit.Allow:
		d.Allowed++
	case audit.Deny:
		d.Denied++
	case audit.Limited:
		d.Limited++
	case audit.Error:
		d.Errors++
	}
	d.Cost += e.Cost
}

func (t *tenantDays) snapshot(now time.Time) []TenantDay {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := []TenantDay{}
	if t.day != now.UTC().Format(time.DateOnly) {
		return out
	}
	for _, d := range t.m {
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b TenantDay) int {
		return cmp.Or(cmp.Compare(b.Calls, a.Calls), cmp.Compare(a.Tenant, b.Tenant))
	})
	return out
}

// serveAdminOverview answers GET /admin/api/overview.
func (g *Gateway) serveAdminOverview(w http.ResponseWriter, r *http.Request) {
	st, ok := g.adminAuth(w, r, "admin/overview")
	if !ok {
		return
	}
	now := time.Now()
	ov := AdminOverview{
		Time: now.UTC().Format(time.RFC3339), Version: g.o.Version, Resource: g.o.Endpoint.Resource,
		JWKSReady: g.ready(), LimitsStore: g.storeHealth(), SessionsActive: g.ActiveSessions(),
		Today: g.days.snapshot(now), AuditSinks: []audit.SinkStats{},
	}
	if v := g.policyVersion.Load(); v != nil {
		ov.PolicyVersion = *v
	}
	if g.o.Audit.Stats != nil {
		ov.AuditSinks = g.o.Audit.Stats()
	}
	// The tools the upstreams have listed to callers so far: listing them
	// here would need a caller's identity, which upstreams may require.
	tools := g.o.Router.KnownTools()
	ov.Ready = ov.JWKSReady
	for _, h := range g.o.Router.Health() {
		ov.Ready = ov.Ready && h.Status == "up"
		ov.Upstreams = append(ov.Upstreams, AdminUpstream{Health: h, Tools: append([]string{}, tools[h.Name]...)})
	}
	g.audit(st, audit.Allow, "admin", http.StatusOK)
	writeJSON(w, http.StatusOK, ov)
}

// serveAdminAudit answers GET /admin/api/audit?subject=&tenant=&tool=&decision=&since=&limit=&include_admin=
// with the latest audit events of this replica, newest first, without the
// admin API's own requests unless include_admin=1.
func (g *Gateway) serveAdminAudit(w http.ResponseWriter, r *http.Request) {
	st, ok := g.adminAuth(w, r, "admin/audit")
	if !ok {
		return
	}
	q := r.URL.Query()
	f := audit.Filter{Subject: q.Get("subject"), Tenant: q.Get("tenant"), Tool: q.Get("tool"), Decision: q.Get("decision"), Limit: 100}
	bad := func(msg string) {
		g.audit(st, audit.Deny, "bad_request", http.StatusBadRequest)
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": msg})
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			bad("limit must be a whole number from 1 to 1000")
			return
		}
		f.Limit = n
	}
	if v := q.Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			bad("since must be an RFC 3339 time, e.g. 2026-11-28T09:00:00Z")
			return
		}
		f.Since = t
	}
	// The admin API's own requests (the page polls) are left out unless
	// include_admin=1.
	includeAdmin := q.Get("include_admin") == "1"
	limit := f.Limit
	if !includeAdmin {
		f.Limit = 0
	}
	events := []AdminEvent{}
	if g.o.Audit.Recent != nil {
		for _, e := range g.o.Audit.Recent.Query(f) {
			if !includeAdmin && strings.HasPrefix(e.Method, "admin/") {
				continue
			}
			events = append(events, adminEvent(e))
			if len(events) == limit {
				break
			}
		}
	}
	g.audit(st, audit.Allow, "admin", http.StatusOK)
	writeJSON(w, http.StatusOK, map[string]any{"events": events})
}

// AdminEvent is an audit event as the admin API shows it.
type AdminEvent struct {
	Time      string  `json:"time"`
	RequestID string  `json:"request_id"`
	Subject   string  `json:"subject,omitempty"`
	Tenant    string  `json:"tenant,omitempty"`
	Method    string  `json:"method"`
	Target    string  `json:"target,omitempty"`
	Upstream  string  `json:"upstream,omitempty"`
	Decision  string  `json:"decision"`
	Reason    string  `json:"reason"`
	Rule      string  `json:"rule,omitempty"`
	Status    int     `json:"status"`
	LatencyMS float64 `json:"latency_ms"`
}

func adminEvent(e audit.Event) AdminEvent {
	return AdminEvent{
		Time: e.Time.UTC().Format(time.RFC3339Nano), RequestID: e.RequestID, Subject: e.Subject, Tenant: e.Tenant,
		Method: e.Method, Target: cmp.Or(e.Tool, e.Prompt, e.Resource), Upstream: e.Upstream,
		Decision: e.Decision, Reason: e.Reason, Rule: e.Rule, Status: e.Status,
		LatencyMS: float64(e.Latency.Microseconds()) / 1000,
	}
}

// serveDemoToken hands the admin page a token for the demo's admin user.
// It exists only when the demo wires DemoAdminToken, and answers only when
// the gateway's public URL is on loopback (AllowLoopbackHosts) and then
// only loopback peers. The peer alone proves nothing: behind a local
// tunnel every visitor's connection comes from loopback.
func (g *Gateway) serveDemoToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method_not_allowed", "error_description": "use POST"})
		return
	}
	if !g.o.HTTP.AllowLoopbackHosts {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden", "error_description": "the demo admin token is offered only when the gateway's public URL is on loopback"})
		return
	}
	if ip := g.o.Limits.clientIP(r); !ip.IsLoopback() {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden", "error_description": "the demo admin token is offered to loopback clients only"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	tok, err := g.o.Admin.DemoAdminToken(ctx)
	if err != nil {
		g.o.Logger.Warn().Err(err).Msg("demo admin token")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable", "error_description": "the demo issuer did not issue a token"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"access_token": tok, "token_type": "Bearer"})
}
