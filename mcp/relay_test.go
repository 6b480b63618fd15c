package mcp_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/gatewaystack/gatewaystack/config"
)

var noListen = false

// newAsker is an upstream whose tool asks its client for input
// (elicitation/create, which mcp-go sends on the call's own stream) and
// returns what the client answered.
func newAsker(t *testing.T) string {
	t.Helper()
	s := server.NewMCPServer("asker", "1.0.0", server.WithToolCapabilities(false), server.WithElicitation())
	s.AddTool(mcpgo.NewTool("ask"), func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		res, err := server.ServerFromContext(ctx).RequestElicitation(ctx, mcpgo.ElicitationRequest{
			Params: mcpgo.ElicitationParams{
				Message:         "what is 6*7?",
				RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{"answer": map[string]any{"type": "string"}}},
			},
		})
		if err != nil {
			return mcpgo.NewToolResultError("elicitation failed: " + err.Error()), nil
		}
		answer, _ := res.Content.(map[string]any)
		return mcpgo.NewToolResultText(fmt.Sprintf("the client said %v (%s)", answer["answer"], res.Action)), nil
	})
	srv := httptest.NewServer(server.NewStreamableHTTPServer(s))
	t.Cleanup(srv.Close)
	return srv.URL + "/mcp"
}

// initializeWith opens a session declaring capabilities.
func (g *gateway) initializeWith(t *testing.T, token string, caps map[string]any) string {
	t.Helper()
	r := g.post(t, token, "", rpcBody(t, "initialize", map[string]any{
		"protocolVersion": legacyVersion, "capabilities": caps,
		"clientInfo": map[string]any{"name": "relay-test", "version": "1"},
	}))
	r.result(t)
	sid := r.Header.Get("Mcp-Session-Id")
	g.post(t, token, sid, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`))
	return sid
}

// An upstream's request to its client reaches the client that made the
// call, on that call's stream, and the client's answer goes back to the
// upstream.
func TestElicitationIsRelayedToTheCallingClient(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{
		upstreams: []config.Upstream{{Name: "ask", MCP: &config.MCPUpstream{URL: newAsker(t), Listen: &noListen}}},
		policy:    map[string]config.ToolRule{"ask__*": {Scopes: []string{baselineScope}}},
	})
	alice := g.minter.token("alice", baselineScope)
	sid := g.initializeWith(t, alice, map[string]any{"elicitation": map[string]any{}})

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.MCP,
		bytes.NewReader([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ask__ask","arguments":{}}}`)))
	for k, v := range hdr("Authorization", bearer(alice), "Mcp-Session-Id", sid, "Mcp-Protocol-Version", legacyVersion) {
		req.Header[k] = v
	}
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	var result string
	for sc.Scan() && result == "" {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(data), &m); err != nil {
			t.Fatalf("event %q: %v", data, err)
		}
		var method string
		_ = json.Unmarshal(m["method"], &method)
		switch {
		case method == "elicitation/create":
			answer := mustJSON(t, map[string]any{"jsonrpc": "2.0", "id": m["id"], "result": map[string]any{
				"action": "accept", "content": map[string]any{"answer": "42"}}})
			if r := g.post(t, alice, sid, answer); r.StatusCode != http.StatusAccepted {
				t.Fatalf("posting the answer: %d %s", r.StatusCode, r.body)
			}
		case m["result"] != nil:
			result = string(m["result"])
		}
	}
	if !strings.Contains(result, "the client said 42 (accept)") {
		t.Fatalf("result %q", result)
	}
}

// A client that did not declare elicitation is never asked: the upstream
// gets an error and the call still completes.
func TestElicitationIsRefusedForClientsWithoutTheCapability(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{
		upstreams: []config.Upstream{{Name: "ask", MCP: &config.MCPUpstream{URL: newAsker(t), Listen: &noListen}}},
		policy:    map[string]config.ToolRule{"ask__*": {Scopes: []string{baselineScope}}},
	})
	alice := g.minter.token("alice", baselineScope)
	sid := g.initialize(t, alice)
	r := g.call(t, alice, sid, "ask__ask", map[string]any{})
	if strings.Contains(string(r.body), `"method":"elicitation/create"`) || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("the client was asked although it did not declare elicitation: %s", r.body)
	}
	if !strings.Contains(string(r.result(t)), "elicitation failed") || !strings.Contains(string(r.body), "did not declare support") {
		t.Errorf("result %s", r.body)
	}
}

// Bob cannot answer a request that was relayed to Alice.
func TestRelayedRequestsOnlyAcceptTheirOwnersAnswer(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{
		upstreams: []config.Upstream{{Name: "ask", MCP: &config.MCPUpstream{URL: newAsker(t), Listen: &noListen}}},
		policy:    map[string]config.ToolRule{"ask__*": {Scopes: []string{baselineScope}}},
	})
	bob := g.minter.token("bob", baselineScope)
	bobSID := g.initialize(t, bob)
	// An answer to an id nobody is waiting for is not taken as a relay
	// answer (mcp-go gets it, and accepts or drops it without effect).
	r := g.post(t, bob, bobSID, []byte(`{"jsonrpc":"2.0","id":"gs-000000000000000000000000","result":{"role":"assistant","model":"x","content":{"type":"text","text":"evil"}}}`))
	if r.StatusCode >= 500 {
		t.Errorf("stray answer: %d %s", r.StatusCode, r.body)
	}
}
