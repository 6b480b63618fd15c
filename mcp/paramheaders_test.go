package mcp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/gatewaystack/gatewaystack/config"
)

// In the 2026-07-28 era, Mcp-Param-* headers must agree with the arguments
// their x-mcp-header annotations name, before the call goes anywhere.
func TestParamHeadersMustMatchTheArguments(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	s := server.NewMCPServer("regional", "1.0.0", server.WithToolCapabilities(false))
	s.AddTool(mcpgo.NewToolWithRawSchema("lookup", "by region", json.RawMessage(
		`{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"}},"required":["region"]}`)),
		func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
			calls.Add(1)
			return mcpgo.NewToolResultText("ok"), nil
		})
	up := httptest.NewServer(server.NewStreamableHTTPServer(s, server.WithStateLess(true)))
	t.Cleanup(up.Close)
	g := newGateway(t, gatewayOptions{
		upstreams: []config.Upstream{{Name: "geo", MCP: &config.MCPUpstream{URL: up.URL + "/mcp", Listen: new(false)}}},
		policy:    map[string]config.ToolRule{"geo__*": {Scopes: []string{baselineScope}}},
	})
	alice := g.minter.token("alice", baselineScope)
	// The catalog learns the tool's annotations from a listing.
	sid := g.initialize(t, alice)
	g.list(t, alice, sid).result(t)

	r := g.modernCall(t, alice, "geo__lookup", map[string]any{"region": "eu"}, "Mcp-Param-Region", "eu")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("matching header: %d %s", r.StatusCode, r.body)
	}
	r.result(t)
	before := calls.Load()
	for _, tc := range []struct{ name, header string }{
		{"a header that disagrees with the argument", "us"},
		{"a missing header for an annotated argument", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var extra []string
			if tc.header != "" {
				extra = []string{"Mcp-Param-Region", tc.header}
			}
			r := g.modernCall(t, alice, "geo__lookup", map[string]any{"region": "eu"}, extra...)
			code, _, _ := r.rpcError(t)
			if r.StatusCode != http.StatusBadRequest || code != -32020 {
				t.Errorf("status %d code %d: %s", r.StatusCode, code, r.body)
			}
		})
	}
	if calls.Load() != before {
		t.Errorf("a mismatched call reached the upstream")
	}
}
