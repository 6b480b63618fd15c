package mcp_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"testing"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/gatewaystack/gatewaystack/config"
)

// newEchoUpstream is a minimal mcp-go MCP server with one echo tool.
func newEchoUpstream(b testing.TB) string {
	s := server.NewMCPServer("echo", "1.0.0", server.WithToolCapabilities(false))
	s.AddTool(mcpgo.NewTool("echo", mcpgo.WithString("text")), func(_ context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		return mcpgo.NewToolResultText(req.GetString("text", "")), nil
	})
	srv := httptest.NewServer(server.NewStreamableHTTPServer(s, server.WithEndpointPath("/mcp")))
	b.Cleanup(srv.Close)
	return srv.URL + "/mcp"
}

// benchClient is a keep-alive client shared by every sub-benchmark, so the
// direct and the gateway figures differ only by the gateway.
func benchClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	return &http.Client{Transport: t, Timeout: 30 * time.Second}
}

// runCalls posts the same request b.N times and checks every answer.
func runCalls(b *testing.B, c *http.Client, url string, h http.Header, body []byte) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header = h
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || n == 0 {
			b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
		}
	}
}

// BenchmarkToolsCall measures one session-era tools/call straight to an
// mcp-go echo upstream and the same call through the gateway with a real
// RS256 token (verified once, then served from the verified-token cache),
// over the same raw HTTP client with pre-initialized sessions. A stateless
// (2026-07-28) call through the gateway is measured too.
func BenchmarkToolsCall(b *testing.B) {
	echoURL := newEchoUpstream(b)
	g := newGateway(b, gatewayOptions{
		upstreams: []config.Upstream{{Name: "echo", MCP: &config.MCPUpstream{URL: echoURL}}},
		policy:    map[string]config.ToolRule{"echo__*": {Scopes: []string{baselineScope}}},
		auditTo:   io.Discard,
		// b.N calls of one subject would trip the default per-subject
		// limit: measure the pipeline, with the limit checks still run.
		configure: func(c *config.Config) {
			n := 1_000_000_000
			c.Limits.PerSubject = config.Rate{Requests: &n, Window: time.Hour}
			c.Limits.PerTenant = config.Rate{Requests: &n, Window: time.Hour}
			c.Limits.LoopGuard.MaxRepeats = intp(0) // the same call b.N times is the point
		},
	})
	c := benchClient()
	tok := g.minter.token("alice", baselineScope)
	args := map[string]any{"text": "hello"}

	b.Run("direct", func(b *testing.B) {
		direct := &gateway{MCP: echoURL, client: c}
		sid := direct.initialize(b, "")
		body := rpcBody(b, "tools/call", map[string]any{"name": "echo", "arguments": args})
		direct.post(b, "", sid, body).result(b)
		h := hdr("Mcp-Session-Id", sid, "Mcp-Protocol-Version", legacyVersion, "X-User-Id", "alice")
		runCalls(b, c, echoURL, h, body)
	})
	b.Run("gateway", func(b *testing.B) {
		gw := &gateway{MCP: g.MCP, client: c}
		sid := gw.initialize(b, tok)
		body := rpcBody(b, "tools/call", map[string]any{"name": "echo__echo", "arguments": args})
		gw.post(b, tok, sid, body).result(b) // warm: upstream session, catalog
		h := hdr("Authorization", bearer(tok), "Mcp-Session-Id", sid, "Mcp-Protocol-Version", legacyVersion)
		runCalls(b, c, g.MCP, h, body)
	})
	b.Run("gateway_stateless", func(b *testing.B) {
		h, body := g.modernRequest(tok, "echo__echo", args)
		g.modernCall(b, tok, "echo__echo", args).result(b)
		runCalls(b, c, g.MCP, h, body)
	})
}

// BenchmarkIdleSessionHeap opens GATEWAYSTACK_SESSIONS sessions (default
// 1000; the figure in BENCHMARKS.md uses 10000) through the gateway, each
// with initialize, notifications/initialized and one tools/list, then
// reports the live heap the gateway holds per idle session.
func BenchmarkIdleSessionHeap(b *testing.B) {
	n := 1000
	if v := os.Getenv("GATEWAYSTACK_SESSIONS"); v != "" {
		if _, err := fmt.Sscan(v, &n); err != nil {
			b.Fatalf("GATEWAYSTACK_SESSIONS=%q: %v", v, err)
		}
	}
	echoURL := newEchoUpstream(b)
	g := newGateway(b, gatewayOptions{
		upstreams: []config.Upstream{{Name: "echo", MCP: &config.MCPUpstream{URL: echoURL}}},
		policy:    map[string]config.ToolRule{"echo__*": {Scopes: []string{baselineScope}}},
		auditTo:   io.Discard,
		configure: func(c *config.Config) {
			m := 1_000_000_000
			c.Limits.PerSubject = config.Rate{Requests: &m, Window: time.Hour}
			c.Limits.PerTenant = config.Rate{Requests: &m, Window: time.Hour}
		},
	})
	tok := g.minter.token("alice", baselineScope)
	g.list(b, tok, g.initialize(b, tok)).result(b) // warm: upstream session, catalog
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	sids := make([]string, 0, n)
	for range n {
		sid := g.initialize(b, tok)
		g.list(b, tok, sid).result(b)
		sids = append(sids, sid)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	per := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
	b.ReportMetric(per/1024, "KiB/session")
	b.ReportMetric(float64(n), "sessions")
	runtime.KeepAlive(sids)
}
