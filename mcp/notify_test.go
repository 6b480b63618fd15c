package mcp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/gatewaystack/gatewaystack/config"
)

// chatty is an upstream that reports progress, can be cancelled, and changes
// its tool list.
type chatty struct {
	URL       string
	srv       *server.MCPServer
	cancelled atomic.Int64
	started   chan struct{}
}

func newChatty(t testing.TB) *chatty {
	t.Helper()
	c := &chatty{started: make(chan struct{}, 8)}
	c.srv = server.NewMCPServer("chatty", "1.0.0", server.WithToolCapabilities(true))
	c.srv.AddTool(mcpgo.NewTool("progress"), func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		if req.Params.Meta == nil || req.Params.Meta.ProgressToken == nil {
			return mcpgo.NewToolResultText("done without progress"), nil
		}
		token := req.Params.Meta.ProgressToken
		for i := 1; i <= 3; i++ {
			_ = server.ServerFromContext(ctx).SendNotificationToClient(ctx, "notifications/progress",
				map[string]any{"progressToken": token, "progress": i, "total": 3})
			// mcp-go's server writes notifications asynchronously; let each
			// reach the stream before the next one and before the result.
			time.Sleep(20 * time.Millisecond)
		}
		return mcpgo.NewToolResultText("done"), nil
	})
	c.srv.AddTool(mcpgo.NewTool("block"), func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		c.started <- struct{}{}
		select {
		case <-ctx.Done():
			c.cancelled.Add(1)
			return nil, ctx.Err()
		case <-time.After(10 * time.Second):
			return mcpgo.NewToolResultText("not cancelled"), nil
		}
	})
	h := server.NewStreamableHTTPServer(c.srv)
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	c.URL = s.URL + "/mcp"
	return c
}

func chattyGateway(t *testing.T) (*gateway, *chatty) {
	c := newChatty(t)
	g := newGateway(t, gatewayOptions{
		upstreams: []config.Upstream{{Name: "ch", MCP: &config.MCPUpstream{URL: c.URL}}},
		policy:    map[string]config.ToolRule{"ch__*": {Scopes: []string{baselineScope}}},
	})
	return g, c
}

// sseMessages reads every "data:" message of an event stream.
func sseMessages(t *testing.T, body string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("bad event %q: %v", line, err)
			}
			out = append(out, m)
		}
	}
	return out
}

// Progress reaches the caller that asked for it, under the caller's own
// token (the upstream saw a gateway token), before the result.
func TestProgressReachesTheCallerWithItsOwnToken(t *testing.T) {
	t.Parallel()
	g, _ := chattyGateway(t)
	alice := g.minter.token("alice", baselineScope)
	sid := g.initialize(t, alice)
	r := g.post(t, alice, sid, rpcBody(t, "tools/call", map[string]any{
		"name": "ch__progress", "arguments": map[string]any{}, "_meta": map[string]any{"progressToken": "alice-token-1"},
	}))
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("content type %q, body %s", ct, r.body)
	}
	msgs := sseMessages(t, string(r.body))
	if len(msgs) != 4 {
		t.Fatalf("want 3 progress notifications and a result, got %d: %s", len(msgs), r.body)
	}
	// mcp-go's server may emit the three notifications in any order; the
	// gateway relays them as they come, all before the result.
	seen := map[float64]bool{}
	for i, m := range msgs[:3] {
		params, _ := m["params"].(map[string]any)
		if m["method"] != "notifications/progress" || params["progressToken"] != "alice-token-1" {
			t.Errorf("message %d: %v", i, m)
		}
		p, _ := params["progress"].(float64)
		seen[p] = true
	}
	if !seen[1] || !seen[2] || !seen[3] {
		t.Errorf("progress values %v, want 1, 2 and 3", seen)
	}
	if _, ok := msgs[3]["result"]; !ok {
		t.Errorf("last message is not the result: %v", msgs[3])
	}
}

// A client's notifications/cancelled stops the upstream call, and the
// upstream is told (its handler's context ends).
func TestCancellationReachesTheUpstream(t *testing.T) {
	t.Parallel()
	g, c := chattyGateway(t)
	alice := g.minter.token("alice", baselineScope)
	sid := g.initialize(t, alice)
	done := make(chan response, 1)
	go func() {
		done <- g.post(t, alice, sid, []byte(`{"jsonrpc":"2.0","id":"call-77","method":"tools/call","params":{"name":"ch__block","arguments":{}}}`))
	}()
	select {
	case <-c.started:
	case <-time.After(5 * time.Second):
		t.Fatal("the blocking tool never started")
	}
	r := g.post(t, alice, sid, []byte(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"call-77","reason":"user"}}`))
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("notifications/cancelled: %d %s", r.StatusCode, r.body)
	}
	select {
	case res := <-done:
		code, _, data := res.rpcError(t)
		if code != -32603 || !strings.Contains(string(data), "cancelled") {
			t.Errorf("cancelled call answered %s", res.body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the cancelled call did not return")
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.cancelled.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the upstream never saw the cancellation")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Bob cannot cancel Alice's request: cancellation is keyed by session.
func TestCancellationIsScopedToTheCallersSession(t *testing.T) {
	t.Parallel()
	g, c := chattyGateway(t)
	alice := g.minter.token("alice", baselineScope)
	bob := g.minter.token("bob", baselineScope)
	aliceSID, bobSID := g.initialize(t, alice), g.initialize(t, bob)
	done := make(chan response, 1)
	go func() {
		done <- g.post(t, alice, aliceSID, []byte(`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"ch__block","arguments":{}}}`))
	}()
	<-c.started
	g.post(t, bob, bobSID, []byte(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":5}}`))
	select {
	case res := <-done:
		t.Fatalf("bob cancelled alice's call: %s", res.body)
	case <-time.After(300 * time.Millisecond):
	}
	g.post(t, alice, aliceSID, []byte(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":5}}`))
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("alice's own cancellation did not stop the call")
	}
}

// A tool list change at the upstream reaches a connected client's stream,
// and the new tool becomes callable at once.
func TestToolListChangesReachClients(t *testing.T) {
	t.Parallel()
	g, c := chattyGateway(t)
	alice := g.minter.token("alice", baselineScope)
	sid := g.initialize(t, alice)
	// Connect the gateway to the upstream (and its listening stream).
	if names := toolNames(t, g.list(t, alice, sid).result(t)); len(names) != 2 {
		t.Fatalf("tools: %v", names)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.MCP, nil)
	req.Header.Set("Authorization", bearer(alice))
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET stream: %d", resp.StatusCode)
	}
	got := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "list_changed") {
				got <- sc.Text()
				return
			}
		}
	}()
	// Give the gateway's own listening stream to the upstream time to open.
	time.Sleep(300 * time.Millisecond)
	c.srv.AddTool(mcpgo.NewTool("fresh"), func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		return mcpgo.NewToolResultText("fresh"), nil
	})
	select {
	case line := <-got:
		if !strings.Contains(line, "notifications/tools/list_changed") {
			t.Errorf("stream line %q", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no list_changed reached the client")
	}
	r := g.call(t, alice, sid, "ch__fresh", map[string]any{})
	if !strings.Contains(string(r.result(t)), "fresh") {
		t.Errorf("the new tool: %s", r.body)
	}
}

// newLogger is an upstream whose "log" tool sends two log messages
// (notifications/message) carrying its marker on the call's own response
// stream, once the first `concurrent` calls are all in flight.
//
// mcp-go v1.2.1 puts a request's notifications on that request's stream
// only when every POST is a session of its own: stateless, and without a
// listening stream (a GET without a session id registers a session "" that
// every stateless POST then joins). With one shared session it writes them
// on whichever of the session's open streams reads them first, so tests of
// per-call delivery use such an upstream with listen: false.
func newLogger(t *testing.T, concurrent int) string {
	t.Helper()
	s := server.NewMCPServer("logger", "1.0.0", server.WithToolCapabilities(false), server.WithLogging())
	var arrived atomic.Int64
	all := make(chan struct{})
	s.AddTool(mcpgo.NewTool("log", mcpgo.WithString("marker")), func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		if arrived.Add(1) == int64(concurrent) {
			close(all)
		}
		select {
		case <-all:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		marker := req.GetString("marker", "")
		for _, level := range []string{"debug", "warning"} {
			_ = server.ServerFromContext(ctx).SendNotificationToClient(ctx, "notifications/message",
				map[string]any{"level": level, "logger": "tool", "data": marker + "-" + level})
			time.Sleep(10 * time.Millisecond)
		}
		return mcpgo.NewToolResultText("logged " + marker), nil
	})
	srv := httptest.NewServer(server.NewStreamableHTTPServer(s, server.WithEndpointPath("/mcp"), server.WithStateLess(true)))
	t.Cleanup(srv.Close)
	return srv.URL + "/mcp"
}

// logData returns the data of every notifications/message in msgs.
func logData(msgs []map[string]any) []string {
	var out []string
	for _, m := range msgs {
		if m["method"] == "notifications/message" {
			params, _ := m["params"].(map[string]any)
			data, _ := params["data"].(string)
			out = append(out, data)
		}
	}
	return out
}

// A log message an upstream sends on a call's own response stream reaches
// the client that made that call, on that call's stream, before the
// result, if it is at or above the client's level (set with
// logging/setLevel, else info); a concurrent caller of the same upstream
// does not see it.
func TestLogMessagesReachOnlyTheirCallsClient(t *testing.T) {
	t.Parallel()
	url := newLogger(t, 2)
	g := newGateway(t, gatewayOptions{
		upstreams: []config.Upstream{{Name: "lg", MCP: &config.MCPUpstream{URL: url, Listen: new(false)}}},
		policy:    map[string]config.ToolRule{"lg__*": {Scopes: []string{baselineScope}}},
	})
	type result struct {
		who string
		r   response
	}
	results := make(chan result, 2)
	var wg sync.WaitGroup
	want := map[string][]string{"alice": {"alice-debug", "alice-warning"}, "bob": {"bob-warning"}}
	for _, who := range []string{"alice", "bob"} {
		tok := g.minter.token(who, baselineScope)
		sid := g.initialize(t, tok)
		if who == "alice" {
			g.post(t, tok, sid, rpcBody(t, "logging/setLevel", map[string]any{"level": "debug"})).result(t)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := send(g.client, http.MethodPost, g.MCP,
				hdr("Authorization", bearer(tok), "Mcp-Session-Id", sid, "Mcp-Protocol-Version", legacyVersion),
				mustJSON(t, map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call",
					"params": map[string]any{"name": "lg__log", "arguments": map[string]any{"marker": who}}}))
			if err != nil {
				t.Error(err)
				return
			}
			results <- result{who, r}
		}()
	}
	wg.Wait()
	close(results)
	for res := range results {
		if ct := res.r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
			t.Fatalf("%s: content type %q, body %s", res.who, ct, res.r.body)
		}
		msgs := sseMessages(t, string(res.r.body))
		if got, want := logData(msgs), want[res.who]; !slices.Equal(got, want) {
			t.Errorf("%s got log messages %q, want %q", res.who, got, want)
		}
		last := msgs[len(msgs)-1]
		if _, ok := last["result"]; !ok || !strings.Contains(string(res.r.body), "logged "+res.who) {
			t.Errorf("%s: the stream does not end with its result: %s", res.who, res.r.body)
		}
	}
}

// In the stateless 2026-07-28 era a request gets log messages only at or
// above the level its _meta asks for, and none when it asks for none.
func TestModernLogMessagesFollowTheRequestedLevel(t *testing.T) {
	t.Parallel()
	url := newLogger(t, 1)
	g := newGateway(t, gatewayOptions{
		upstreams: []config.Upstream{{Name: "lg", MCP: &config.MCPUpstream{URL: url, Listen: new(false)}}},
		policy:    map[string]config.ToolRule{"lg__*": {Scopes: []string{baselineScope}}},
	})
	tok := g.minter.token("alice", baselineScope)
	meta := map[string]any{mcpgo.MetaKeyProtocolVersion: modernVersion}
	for _, tc := range []struct {
		level string
		want  []string
	}{{"", nil}, {"warning", []string{"m-warning"}}, {"debug", []string{"m-debug", "m-warning"}}} {
		if tc.level != "" {
			meta[mcpgo.MetaKeyLogLevel] = tc.level
		}
		h, _ := g.modernRequest(tok, "lg__log", nil)
		body := mustJSON(t, map[string]any{"jsonrpc": "2.0", "id": 9, "method": "tools/call",
			"params": map[string]any{"name": "lg__log", "arguments": map[string]any{"marker": "m"}, "_meta": meta}})
		r := do(t, g.client, http.MethodPost, g.MCP, h, body)
		var got []string
		if strings.HasPrefix(r.Header.Get("Content-Type"), "text/event-stream") {
			got = logData(sseMessages(t, string(r.body)))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("level %q: log messages %q, want %q (body %s)", tc.level, got, tc.want, r.body)
		}
		r.result(t)
	}
}
