package mcp_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatewaystack/gatewaystack/config"
)

type healthDoc struct {
	Ready     bool     `json:"ready"`
	JWKSReady bool     `json:"jwks_ready"`
	Problems  []string `json:"problems"`
	Upstream  []struct {
		Name     string `json:"name"`
		Status   string `json:"status"`
		InFlight int    `json:"in_flight"`
	} `json:"upstream"`
}

func getHealth(t *testing.T, g *gateway, path string) (int, healthDoc) {
	t.Helper()
	r := do(t, g.client, http.MethodGet, g.URL+path, nil, nil)
	var h healthDoc
	if err := json.Unmarshal(r.body, &h); err != nil {
		t.Fatalf("%s: %v: %s", path, err, r.body)
	}
	return r.StatusCode, h
}

// An upstream that is down at start-up does not stop the gateway: it is
// reported down in /health and /health/ready (503), the other upstream
// reported up, and its tools keep working.
func TestHealthReportsUpstreamsDownAtStart(t *testing.T) {
	t.Parallel()
	c := newChatty(t)
	g := newGateway(t, gatewayOptions{
		upstreams: []config.Upstream{
			{Name: "ch", MCP: &config.MCPUpstream{URL: c.URL}},
			{Name: "gone", MCP: &config.MCPUpstream{URL: closedPortURL(t)}},
		},
		policy: map[string]config.ToolRule{"ch__*": {Scopes: []string{baselineScope}}, "gone__*": {Scopes: []string{baselineScope}}},
	})
	deadline := time.Now().Add(5 * time.Second)
	var status int
	var h healthDoc
	for {
		status, h = getHealth(t, g, "/health/ready")
		if h.JWKSReady && len(h.Upstream) == 2 && h.Upstream[0].Status == "up" && h.Upstream[1].Status == "down" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("upstream states never settled: %+v", h)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if status != http.StatusServiceUnavailable || h.Ready || len(h.Problems) != 1 || !strings.Contains(h.Problems[0], "gone is down") {
		t.Errorf("readiness %d %+v", status, h)
	}
	if status, _ := getHealth(t, g, "/health"); status != http.StatusOK {
		t.Errorf("/health (liveness) answered %d", status)
	}
	alice := g.minter.token("alice", baselineScope)
	sid := g.initialize(t, alice)
	if names := toolNames(t, g.list(t, alice, sid).result(t)); len(names) != 2 {
		t.Errorf("tools of the healthy upstream: %v", names)
	}
}

// With max_concurrency 1, a second call waits for the slot no longer than
// the upstream's timeout and then gets "busy", while the first call is
// unaffected.
func TestConcurrencyCapBoundsWaiting(t *testing.T) {
	t.Parallel()
	c := newChatty(t)
	g := newGateway(t, gatewayOptions{
		upstreams: []config.Upstream{{Name: "ch", MCP: &config.MCPUpstream{URL: c.URL}, MaxConcurrency: 1, Timeout: 2 * time.Second}},
		policy:    map[string]config.ToolRule{"ch__*": {Scopes: []string{baselineScope}}},
	})
	alice := g.minter.token("alice", baselineScope)
	sid := g.initialize(t, alice)
	first := make(chan response, 1)
	go func() { first <- g.call(t, alice, sid, "ch__block", map[string]any{}) }()
	select {
	case <-c.started:
	case <-time.After(5 * time.Second):
		t.Fatal("the first call never started")
	}
	start := time.Now()
	r := g.call(t, alice, sid, "ch__progress", map[string]any{})
	took := time.Since(start)
	code, msg, data := r.rpcError(t)
	if code != -32603 || !strings.Contains(string(data), "upstream_busy") || !strings.Contains(msg, "busy") {
		t.Errorf("second call: %s", r.body)
	}
	if took > 4*time.Second {
		t.Errorf("the second call waited %s", took)
	}
	_, h := getHealth(t, g, "/health")
	if len(h.Upstream) != 1 || h.Upstream[0].InFlight != 1 {
		t.Errorf("in-flight calls: %+v", h.Upstream)
	}
	<-first
}
