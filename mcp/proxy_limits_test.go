package mcp_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewaystack/gatewaystack/config"
)

// proxyLimitedGateway is a gateway with /proxy routes and the limits set
// by set (the others off).
func proxyLimitedGateway(t *testing.T, b *proxyBackend, set func(c *config.Config)) *gateway {
	t.Helper()
	cost := int64(3)
	return newGateway(t, gatewayOptions{configure: func(c *config.Config) {
		c.Limits.PerSubject.Requests = intp(0)
		c.Limits.PerTenant.Requests = intp(0)
		c.Limits.PerIP.Requests = intp(0)
		c.Proxy = config.Proxy{Target: b.URL, Routes: []config.ProxyRoute{
			{Prefix: "/accounts", Scopes: []string{baselineScope}},
			{Prefix: "/reports", Scopes: []string{baselineScope}, Cost: &cost},
			{Prefix: "/slow", Scopes: []string{baselineScope}},
		}}
		set(c)
	}})
}

// plainRefusal asserts a plain-JSON limit refusal with status and reason.
func plainRefusal(t *testing.T, r response, status int, reason string) map[string]any {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", r.StatusCode, status, r.body)
	}
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("refusal is not JSON: %s", r.body)
	}
	if body["error"] != reason || body["reason"] != reason || body["error_description"] == "" {
		t.Fatalf("refusal %s, want error and reason %q with a description", r.body, reason)
	}
	if _, isRPC := body["jsonrpc"]; isRPC {
		t.Fatalf("a /proxy refusal is JSON-RPC: %s", r.body)
	}
	return body
}

// Invariant: /proxy is governed by the same limits as /mcp — per-IP (for
// failed credentials), per-subject and per-tenant rate limits (which the
// seed's RATE_LIMIT_MAX / RATE_LIMIT_WINDOW_MS set), budgets charged the
// route's cost, and the concurrency caps — and what they refuse never
// reaches the backend.
func TestProxyIsLimitedLikeMCP(t *testing.T) {
	t.Parallel()
	get := func(g *gateway, token, path string) response {
		h := http.Header{}
		if token != "" {
			h.Set("Authorization", bearer(token))
		}
		return do(t, g.client, http.MethodGet, g.URL+"/proxy"+path, h, nil)
	}

	t.Run("per subject, shared with /mcp", func(t *testing.T) {
		t.Parallel()
		b := newProxyBackend(t)
		g := proxyLimitedGateway(t, b, func(c *config.Config) {
			c.Limits.PerSubject = config.Rate{Requests: intp(4), Window: time.Hour}
		})
		alice := g.minter.token("alice", baselineScope)
		g.initialize(t, alice) // two of alice's four: initialize and notifications/initialized
		for range 2 {
			if r := get(g, alice, "/accounts/1"); r.StatusCode != http.StatusOK {
				t.Fatalf("within the limit: %d %s", r.StatusCode, r.body)
			}
		}
		r := get(g, alice, "/accounts/1")
		body := plainRefusal(t, r, http.StatusTooManyRequests, "rate_limited")
		if body["scope"] != "subject" || r.Header.Get("Retry-After") == "" {
			t.Errorf("refusal %s, Retry-After %q", r.body, r.Header.Get("Retry-After"))
		}
		if n := len(b.requests()); n != 2 {
			t.Errorf("the backend got %d requests, want 2", n)
		}
		if l := g.audit.forRequest(t, r.Header.Get("X-Request-Id")); len(l) != 1 || l[0]["decision"] != "limited" || l[0]["reason"] != "rate_limited" {
			t.Errorf("audit of the refusal: %v", l)
		}
		// Another subject is not affected.
		if r := get(g, g.minter.token("bob", baselineScope), "/accounts/1"); r.StatusCode != http.StatusOK {
			t.Errorf("bob: %d %s", r.StatusCode, r.body)
		}
	})

	t.Run("per tenant", func(t *testing.T) {
		t.Parallel()
		b := newProxyBackend(t)
		g := proxyLimitedGateway(t, b, func(c *config.Config) {
			c.Limits.PerTenant = config.Rate{Requests: intp(2), Window: time.Hour}
		})
		get(g, g.minter.token("alice", baselineScope), "/accounts/1")
		get(g, g.minter.token("bob", baselineScope), "/accounts/1")
		body := plainRefusal(t, get(g, g.minter.token("carol", baselineScope), "/accounts/1"), http.StatusTooManyRequests, "rate_limited")
		if body["scope"] != "tenant" {
			t.Errorf("refusal %v", body)
		}
	})

	t.Run("per IP counts failed credentials", func(t *testing.T) {
		t.Parallel()
		b := newProxyBackend(t)
		g := proxyLimitedGateway(t, b, func(c *config.Config) {
			c.Limits.PerIP = config.Rate{Requests: intp(2), Window: time.Hour}
		})
		for range 2 {
			if r := get(g, "not-a-token", "/accounts/1"); r.StatusCode != http.StatusUnauthorized {
				t.Fatalf("bad token: %d", r.StatusCode)
			}
		}
		plainRefusal(t, get(g, g.minter.token("alice", baselineScope), "/accounts/1"), http.StatusTooManyRequests, "rate_limited")
		if n := len(b.requests()); n != 0 {
			t.Errorf("the backend got %d requests", n)
		}
	})

	t.Run("budgets charge the route's cost", func(t *testing.T) {
		t.Parallel()
		b := newProxyBackend(t)
		g := proxyLimitedGateway(t, b, func(c *config.Config) {
			c.Limits.Budgets.PerSubject = config.Budget{Units: 7, Period: 24 * time.Hour}
		})
		alice := g.minter.token("alice", baselineScope)
		costs := 0.0
		for _, p := range []string{"/reports/1", "/reports/2", "/accounts/1"} { // 3 + 3 + 1
			r := get(g, alice, p)
			if r.StatusCode != http.StatusOK {
				t.Fatalf("%s within the budget: %d %s", p, r.StatusCode, r.body)
			}
			// Audit lines are written by a queue: wait for this one.
			for _, l := range g.audit.forRequest(t, r.Header.Get("X-Request-Id")) {
				if c, ok := l["cost"].(float64); ok {
					costs += c
				}
			}
		}
		r := get(g, alice, "/accounts/2")
		body := plainRefusal(t, r, http.StatusTooManyRequests, "budget_exhausted")
		if body["cost"] != float64(1) || body["remaining"] != float64(0) {
			t.Errorf("refusal %s", r.body)
		}
		if n := len(b.requests()); n != 3 {
			t.Errorf("the backend got %d requests, want 3", n)
		}
		if costs != 7 {
			t.Errorf("audited costs sum to %v, want 7", costs)
		}
	})

	t.Run("concurrency cap per subject", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		hold := newBlockingBackend(t, release)
		g2 := proxyLimitedGateway(t, hold.proxyBackend, func(c *config.Config) { c.Server.MaxConcurrentPerSubject = 1 })
		alice := g2.minter.token("alice", baselineScope)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := http.Header{"Authorization": {bearer(alice)}}
			_, _ = send(g2.client, http.MethodGet, g2.URL+"/proxy/slow", h, nil)
		}()
		deadline := time.Now().Add(5 * time.Second)
		for hold.waiting() == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		r := get(g2, alice, "/accounts/1")
		close(release)
		wg.Wait()
		plainRefusal(t, r, http.StatusTooManyRequests, "too_many_concurrent")
	})
}

// blockingBackend is a proxy backend whose /slow holds each request until
// release is closed.
type blockingBackend struct {
	*proxyBackend
	mu      sync.Mutex
	blocked int
}

func (b *blockingBackend) waiting() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.blocked
}

func newBlockingBackend(t *testing.T, release <-chan struct{}) *blockingBackend {
	t.Helper()
	b := &blockingBackend{proxyBackend: &proxyBackend{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/slow") {
			b.mu.Lock()
			b.blocked++
			b.mu.Unlock()
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	b.URL = srv.URL
	return b
}
