package mcp_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatewaystack/gatewaystack/config"
	"github.com/gatewaystack/gatewaystack/internal/redistest"
)

// sharedSessionKey lets two test gateways accept each other's session ids,
// as replicas do.
const sharedSessionKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

// replicas starts two gateways sharing one Redis store and one session key,
// with limits set by set (unset limits off).
func replicas(t *testing.T, url string, set func(l *config.Limits)) (a, b *gateway) {
	t.Helper()
	o := limited(func(l *config.Limits) {
		l.Store = url
		l.LoopGuard.MaxRepeats = intp(0)
		set(l)
	})
	inner := o.configure
	o.configure = func(c *config.Config) {
		inner(c)
		c.Server.SessionKey = sharedSessionKey
	}
	return newGateway(t, o), newGateway(t, o)
}

func readyz(t *testing.T, g *gateway) (int, map[string]any) {
	t.Helper()
	r := do(t, g.client, http.MethodGet, g.URL+"/health/ready", nil, nil)
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("/health/ready body %s: %v", r.body, err)
	}
	return r.StatusCode, body
}

// Limits, budgets and the loop guard count across replicas sharing Redis.
func TestRedisStoreIsSharedByReplicas(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	a, b := replicas(t, srv.URL(), func(l *config.Limits) {
		l.PerSubject = config.Rate{Requests: intp(6), Window: time.Hour}
		l.Budgets.PerTenant = config.Budget{Units: 100, Period: 24 * time.Hour}
		l.LoopGuard = config.LoopGuard{MaxRepeats: intp(2), Window: time.Minute,
			PerTool: map[string]config.LoopRule{"rec__fancy": {MaxRepeats: intp(0)}}}
	})
	ta, tb := a.minter.token("alice", baselineScope), b.minter.token("alice", baselineScope)
	args := map[string]any{"text": "same"}
	a.modernCall(t, ta, "rec__echo", args).result(t)
	r := b.modernCall(t, tb, "rec__echo", args)
	r.result(t)
	if got := r.Header.Get("RateLimit-Remaining"); got != "4" {
		t.Errorf("RateLimit-Remaining on the second call = %q, want 4 (the first replica's call counted)", got)
	}
	if r.Header.Get("RateLimit-Limit") != "6" || r.Header.Get("RateLimit-Reset") == "" {
		t.Errorf("RateLimit headers = %v", r.Header)
	}
	// The loop guard saw both calls: the third identical one is refused on
	// either replica.
	wantRefused(t, a, a.modernCall(t, ta, "rec__echo", args), "loop_detected", "limits.loop_guard")
	// rec__fancy is exempt from the loop guard by its per-tool rule.
	for range 2 {
		b.modernCall(t, tb, "rec__fancy", args).result(t)
	}
	// 5 requests so far; the 6th passes, the 7th is refused on either.
	a.modernCall(t, ta, "rec__echo", map[string]any{"text": "other"}).result(t)
	wantLimited(t, b, b.modernCall(t, tb, "rec__echo", nil), "subject", "limits.per_subject")
	wantLimited(t, a, a.modernCall(t, ta, "rec__echo", nil), "subject", "limits.per_subject")

	// A session ended on one replica is ended on the other.
	bob := a.minter.token("bob", baselineScope)
	sid := a.initialize(t, bob)
	bobB := b.minter.token("bob", baselineScope)
	b.list(t, bobB, sid).result(t)
	del := do(t, a.client, http.MethodDelete, a.MCP, hdr("Authorization", bearer(bob), "Mcp-Session-Id", sid, "Mcp-Protocol-Version", legacyVersion), nil)
	if del.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %d %s", del.StatusCode, del.body)
	}
	if r := b.list(t, bobB, sid); r.StatusCode != http.StatusNotFound {
		t.Errorf("the other replica still serves the ended session: %d %s", r.StatusCode, r.body)
	}
	if code, body := readyz(t, a); code != http.StatusOK || body["limits_store"].(map[string]any)["kind"] != "redis" {
		t.Errorf("/health/ready = %d %v", code, body)
	}
}

// With fail_closed (the default) requests are refused with 503 while Redis
// is down, readiness fails, and both recover when it returns; with
// fail_open they pass uncounted and readiness holds.
func TestRedisDownFailureModes(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	closed, _ := replicas(t, srv.URL(), func(l *config.Limits) {
		l.PerSubject = config.Rate{Requests: intp(1000), Window: time.Minute}
	})
	open, _ := replicas(t, srv.URL(), func(l *config.Limits) {
		l.PerSubject = config.Rate{Requests: intp(1000), Window: time.Minute}
		l.OnStoreError = config.FailOpen
	})
	tc, to := closed.minter.token("alice", baselineScope), open.minter.token("alice", baselineScope)
	closed.modernCall(t, tc, "rec__echo", nil).result(t)
	open.modernCall(t, to, "rec__echo", nil).result(t)

	srv.Stop()
	r := closed.modernCall(t, tc, "rec__echo", nil)
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
		t.Fatalf("fail_closed with Redis down: %d %s, want 503 with Retry-After", r.StatusCode, r.body)
	}
	if _, _, data := r.rpcError(t); !strings.Contains(string(data), "limit_unavailable") {
		t.Errorf("data %s, want reason limit_unavailable", data)
	}
	if l := closed.audit.forRequest(t, r.Header.Get("X-Request-Id")); len(l) != 1 || l[0]["reason"] != "limit_unavailable" {
		t.Errorf("audit %v", l)
	}
	code, body := readyz(t, closed)
	if store := body["limits_store"].(map[string]any); code != http.StatusServiceUnavailable || store["ok"] != false || store["on_store_error"] != "fail_closed" || store["last_error"] == "" {
		t.Errorf("/health/ready with Redis down = %d %v, want 503 reporting the store", code, body)
	}
	open.modernCall(t, to, "rec__echo", map[string]any{"n": 1}).result(t)
	code, body = readyz(t, open)
	if store := body["limits_store"].(map[string]any); code != http.StatusOK || store["ok"] != false || store["on_store_error"] != "fail_open" {
		t.Errorf("fail_open /health/ready with Redis down = %d %v, want 200 reporting the store down", code, body)
	}

	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r = closed.modernCall(t, tc, "rec__echo", map[string]any{"n": 2})
		if r.StatusCode == http.StatusOK || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.result(t)
	if code, _ := readyz(t, closed); code != http.StatusOK {
		t.Errorf("/health/ready after Redis returned = %d", code)
	}
}
