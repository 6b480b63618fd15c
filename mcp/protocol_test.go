package mcp_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/gatewaystack/gatewaystack/config"
)

// TestSessions: a session belongs to the subject that created it, on every
// verb, and ends for good with DELETE. The rejected requests must not reach
// the upstream at all, so the subtests run in order on their own gateway and
// compare the upstream's request count around each one.
func TestSessions(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{})
	alice := g.minter.token("alice", baselineScope)
	bob := g.minter.token("bob", baselineScope)
	sid := g.initialize(t, alice)
	g.list(t, alice, sid).result(t) // the upstream session exists from here on
	// The gateway's listening stream to the upstream opens in the background
	// once the upstream session exists; let it, so it is not counted below.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if slices.ContainsFunc(g.upstream.httpRequests(), func(r recordedHTTP) bool { return r.Method == http.MethodGet }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the gateway never opened its listening stream to the upstream")
		}
	}

	untouched := func(t *testing.T, send func(t *testing.T) response, wantStatus int) response {
		t.Helper()
		before := len(g.upstream.httpRequests())
		r := send(t)
		if r.StatusCode != wantStatus {
			t.Fatalf("status = %d, want %d: %s", r.StatusCode, wantStatus, r.body)
		}
		if after := len(g.upstream.httpRequests()); after != before {
			t.Fatalf("the upstream received %d requests, want none", after-before)
		}
		return r
	}
	withSession := func(verb, token, session string) func(t *testing.T) response {
		return func(t *testing.T) response {
			h := hdr("Authorization", bearer(token), "Mcp-Session-Id", session, "Mcp-Protocol-Version", legacyVersion)
			var body []byte
			if verb == http.MethodPost {
				body = rpcBody(t, "tools/call", map[string]any{"name": "rec__echo", "arguments": map[string]any{"marker": "session"}})
			}
			return do(t, g.client, verb, g.MCP, h, body)
		}
	}

	for _, verb := range []string{http.MethodPost, http.MethodGet, http.MethodDelete} {
		t.Run(verb+" with alice's session and bob's token is 404", func(t *testing.T) {
			untouched(t, withSession(verb, bob, sid), http.StatusNotFound)
		})
	}
	t.Run("bob's tools/list and ping on alice's session are 404", func(t *testing.T) {
		for _, m := range []string{"tools/list", "ping"} {
			untouched(t, func(t *testing.T) response { return g.post(t, bob, sid, rpcBody(t, m, nil)) }, http.StatusNotFound)
		}
	})
	t.Run("alice's session still works after bob's attempts, including his DELETE", func(t *testing.T) {
		g.call(t, alice, sid, "rec__echo", nil).result(t)
	})

	garbage := []string{"garbage", strings.Repeat("A", 80), sid[:len(sid)-2] + flip(sid[len(sid)-2:]), ""}
	for i, bad := range garbage[:3] {
		for _, verb := range []string{http.MethodPost, http.MethodGet, http.MethodDelete} {
			t.Run(verb+" with a forged session id is 404 #"+string(rune('a'+i)), func(t *testing.T) {
				untouched(t, withSession(verb, alice, bad), http.StatusNotFound)
			})
		}
	}

	t.Run("tools/list and tools/call without Mcp-Session-Id in the session era are 400", func(t *testing.T) {
		r := untouched(t, func(t *testing.T) response { return g.post(t, alice, "", rpcBody(t, "tools/list", nil)) }, http.StatusBadRequest)
		if code, _, _ := r.rpcError(t); code != -32600 {
			t.Fatalf("code = %d, want -32600", code)
		}
		untouched(t, func(t *testing.T) response {
			return g.post(t, alice, "", rpcBody(t, "tools/call", map[string]any{"name": "rec__echo"}))
		}, http.StatusBadRequest)
	})

	t.Run("a DELETEd session is rejected afterwards on every verb", func(t *testing.T) {
		own := g.initialize(t, alice)
		g.call(t, alice, own, "rec__echo", nil).result(t)
		if r := withSession(http.MethodDelete, alice, own)(t); r.StatusCode != http.StatusOK {
			t.Fatalf("DELETE own session: %d %s", r.StatusCode, r.body)
		}
		for _, verb := range []string{http.MethodPost, http.MethodGet, http.MethodDelete} {
			untouched(t, withSession(verb, alice, own), http.StatusNotFound)
		}
		untouched(t, func(t *testing.T) response { return g.post(t, alice, own, rpcBody(t, "tools/list", nil)) }, http.StatusNotFound)
	})
}

func flip(s string) string {
	b := []byte(s)
	for i := range b {
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
	}
	return string(b)
}

// TestBodyLimit: bodies beyond server.max_body_bytes are refused with 413
// and a JSON-RPC error before anything else looks at them.
func TestBodyLimit(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{})
	tok := g.minter.token("alice", baselineScope)

	// callOfSize builds a stateless tools/call of exactly n bytes.
	callOfSize := func(t *testing.T, marker string, n int) []byte {
		pad := ""
		for {
			// A fixed id: the shared id counter may gain a digit between
			// two rounds while other tests run in parallel.
			b := mustJSON(t, map[string]any{"jsonrpc": "2.0", "id": 7, "method": "tools/call",
				"params": modernParams(map[string]any{"name": "rec__echo",
					"arguments": map[string]any{"marker": marker, "text": pad}})})
			if len(b) == n {
				return b
			}
			if len(b) > n {
				t.Fatalf("cannot build a body of %d bytes", n)
			}
			pad += strings.Repeat("x", n-len(b))
		}
	}
	send := func(token string, body []byte) response {
		h := hdr("Mcp-Protocol-Version", modernVersion, "Mcp-Method", "tools/call", "Mcp-Name", "rec__echo")
		if token != "" {
			h.Set("Authorization", bearer(token))
		}
		return do(t, g.client, http.MethodPost, g.MCP, h, body)
	}

	t.Run("a body one byte over the limit is 413 with a JSON-RPC error and never reaches the upstream", func(t *testing.T) {
		t.Parallel()
		marker := "big-" + randomHex(4)
		r := send(tok, callOfSize(t, marker, testBodyLimit+1))
		if r.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("status = %d, want 413: %s", r.StatusCode, r.body)
		}
		r.rpcError(t)
		if g.upstream.sawMarker(marker) {
			t.Fatal("an oversized body reached the upstream")
		}
	})
	t.Run("a much larger body without credentials is 413 too", func(t *testing.T) {
		t.Parallel()
		r := send("", callOfSize(t, "huge", 64<<10))
		if r.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("status = %d, want 413", r.StatusCode)
		}
		r.rpcError(t)
	})
	t.Run("a body of exactly the limit is served", func(t *testing.T) {
		t.Parallel()
		marker := "edge-" + randomHex(4)
		send(tok, callOfSize(t, marker, testBodyLimit)).result(t)
		if len(g.upstream.runs(marker)) != 1 {
			t.Fatal("a body at the limit did not reach the upstream")
		}
	})
}

// TestCORS: browsers can discover and call the gateway from allowed origins;
// everything else is refused before authentication.
func TestCORS(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{})
	tok := g.minter.token("alice", baselineScope)
	requested := "authorization, content-type, mcp-session-id, mcp-protocol-version, last-event-id, mcp-method, mcp-name, mcp-param-foo"

	headerList := func(v string) []string {
		var out []string
		for _, f := range strings.Split(v, ",") {
			out = append(out, strings.ToLower(strings.TrimSpace(f)))
		}
		return out
	}
	preflight := func(url, origin string) response {
		return do(t, g.client, http.MethodOptions, url, http.Header{
			"Origin": {origin}, "Access-Control-Request-Method": {"POST"}, "Access-Control-Request-Headers": {requested},
		}, nil)
	}

	for _, path := range []string{"/mcp", "/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"} {
		t.Run("a preflight to "+path+" from an allowed origin is 204 without authentication", func(t *testing.T) {
			t.Parallel()
			r := preflight(g.URL+path, browserOrigin)
			if r.StatusCode != http.StatusNoContent {
				t.Fatalf("status = %d, want 204: %s", r.StatusCode, r.body)
			}
			if r.Header.Get("WWW-Authenticate") != "" {
				t.Fatal("a preflight was challenged")
			}
			if got := r.Header.Get("Access-Control-Allow-Origin"); got != browserOrigin {
				t.Fatalf("Access-Control-Allow-Origin = %q", got)
			}
			allowed := headerList(r.Header.Get("Access-Control-Allow-Headers"))
			for _, want := range headerList("Authorization, Content-Type, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name, Mcp-Param-Foo") {
				if !slices.Contains(allowed, want) {
					t.Errorf("Access-Control-Allow-Headers %q lacks %s", r.Header.Get("Access-Control-Allow-Headers"), want)
				}
			}
			exposed := headerList(r.Header.Get("Access-Control-Expose-Headers"))
			for _, want := range []string{"mcp-session-id", "www-authenticate"} {
				if !slices.Contains(exposed, want) {
					t.Errorf("Access-Control-Expose-Headers %q lacks %s", r.Header.Get("Access-Control-Expose-Headers"), want)
				}
			}
			methods := headerList(r.Header.Get("Access-Control-Allow-Methods"))
			for _, want := range []string{"get", "post", "delete"} {
				if !slices.Contains(methods, want) {
					t.Errorf("Access-Control-Allow-Methods %q lacks %s", r.Header.Get("Access-Control-Allow-Methods"), want)
				}
			}
		})
	}

	t.Run("a 401 to a browser carries the CORS headers and exposes WWW-Authenticate", func(t *testing.T) {
		t.Parallel()
		r := do(t, g.client, http.MethodPost, g.MCP, hdr("Origin", browserOrigin), rpcBody(t, "tools/list", nil))
		if r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status = %d", r.StatusCode)
		}
		if r.Header.Get("Access-Control-Allow-Origin") != browserOrigin || !slices.Contains(headerList(r.Header.Get("Access-Control-Expose-Headers")), "www-authenticate") {
			t.Fatalf("401 without CORS headers: %v", r.Header)
		}
		if !slices.Contains(r.Header.Values("Vary"), "Origin") {
			t.Errorf("Vary = %q, want Origin", r.Header.Values("Vary"))
		}
	})

	t.Run("a 403 step-up challenge to a browser carries the CORS headers", func(t *testing.T) {
		t.Parallel()
		r := g.modernCall(t, tok, "rec__write_thing", nil, "Origin", browserOrigin)
		if r.StatusCode != http.StatusForbidden || r.Header.Get("Access-Control-Allow-Origin") != browserOrigin {
			t.Fatalf("status %d, Access-Control-Allow-Origin %q", r.StatusCode, r.Header.Get("Access-Control-Allow-Origin"))
		}
	})

	// Regression: the origin refusal is a decision and is audited like one.
	t.Run("a disallowed origin is 403 on preflight and on requests, with or without a token", func(t *testing.T) {
		t.Parallel()
		for _, r := range []response{
			preflight(g.MCP, "https://evil.example"),
			preflight(g.PRM, "https://evil.example"),
			do(t, g.client, http.MethodPost, g.MCP, hdr("Origin", "https://evil.example", "Authorization", bearer(tok)),
				rpcBody(t, "tools/call", modernParams(map[string]any{"name": "rec__echo", "arguments": map[string]any{"marker": "evil-origin"}}))),
		} {
			if r.StatusCode != http.StatusForbidden {
				t.Errorf("%s %s: status %d, want 403", r.Request.Method, r.Request.URL.Path, r.StatusCode)
			}
			if r.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("a disallowed origin got Access-Control-Allow-Origin")
			}
			if lines := g.audit.forRequest(t, r.Header.Get("X-Request-Id")); len(lines) != 1 || lines[0]["reason"] != "origin_not_allowed" || lines[0]["decision"] != "deny" {
				t.Errorf("audit of a disallowed origin = %v", lines)
			}
		}
		if g.upstream.sawMarker("evil-origin") {
			t.Fatal("a request from a disallowed origin reached the upstream")
		}
	})

	t.Run("a foreign Host header is 403 (DNS rebinding), even with a valid token", func(t *testing.T) {
		t.Parallel()
		r := do(t, g.client, http.MethodPost, g.MCP, hdr("Host", "evil.example.com", "Authorization", bearer(tok),
			"Mcp-Protocol-Version", modernVersion, "Mcp-Method", "tools/call", "Mcp-Name", "rec__echo"),
			rpcBody(t, "tools/call", modernParams(map[string]any{"name": "rec__echo", "arguments": map[string]any{"marker": "rebind"}})))
		if r.StatusCode != http.StatusForbidden {
			t.Fatalf("status = %d, want 403: %s", r.StatusCode, r.body)
		}
		if g.upstream.sawMarker("rebind") {
			t.Fatal("a rebinding request reached the upstream")
		}
		if lines := g.audit.forRequest(t, r.Header.Get("X-Request-Id")); len(lines) != 1 || lines[0]["reason"] != "host_not_allowed" {
			t.Errorf("audit of a foreign Host = %v", lines)
		}
	})
}

// TestProtocol: both protocol eras on /mcp, driven by mcp-go's real client
// and by raw HTTP, and the transport's error answers.
func TestProtocol(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{})
	tok := g.minter.token("alice", baselineScope)
	auth := transport.WithHTTPHeaders(map[string]string{"Authorization": bearer(tok)})

	exercise := func(t *testing.T, c *client.Client, wantVersion string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		if _, err := c.Initialize(ctx, mcpgo.InitializeRequest{Params: mcpgo.InitializeParams{
			ClientInfo: mcpgo.Implementation{Name: "gateway-test", Version: "1"},
		}}); err != nil {
			t.Fatalf("initialize: %v", err)
		}
		if got := c.ProtocolVersion(); got != wantVersion {
			t.Fatalf("negotiated %q, want %q", got, wantVersion)
		}
		tools, err := c.ListTools(ctx, mcpgo.ListToolsRequest{})
		if err != nil {
			t.Fatalf("ListTools: %v", err)
		}
		var names []string
		for _, tl := range tools.Tools {
			names = append(names, tl.Name)
		}
		sort.Strings(names)
		if !slices.Contains(names, "rec__echo") || !slices.Contains(names, "notes__list_notes") || slices.Contains(names, "rec__purge") {
			t.Fatalf("ListTools = %q", names)
		}
		marker := "client-" + randomHex(4)
		res, err := c.CallTool(ctx, mcpgo.CallToolRequest{Params: mcpgo.CallToolParams{Name: "rec__echo", Arguments: map[string]any{"text": "hi", "marker": marker}}})
		if err != nil {
			t.Fatalf("CallTool: %v", err)
		}
		if res.IsError || len(res.Content) != 1 || res.Content[0].(mcpgo.TextContent).Text != "echo hi" {
			t.Fatalf("CallTool result = %+v", res)
		}
		runs := g.upstream.runs(marker)
		if len(runs) != 1 || runs[0].Header.Get("X-User-Id") != "alice" {
			t.Fatalf("upstream runs for the call: %+v", runs)
		}
		// A step-up tool is an error for the client, not a result.
		if _, err := c.CallTool(ctx, mcpgo.CallToolRequest{Params: mcpgo.CallToolParams{Name: "rec__write_thing"}}); err == nil {
			t.Fatal("calling a step-up tool succeeded")
		}
	}

	// Regression: stateless calls used to forward the client's _meta protocol
	// version to the upstream session (2025-06-18), which refused them.
	t.Run("mcp-go's default client speaks the stateless 2026-07-28 era without a session", func(t *testing.T) {
		t.Parallel()
		c, err := client.NewStreamableHttpClient(g.MCP, auth)
		if err != nil {
			t.Fatal(err)
		}
		exercise(t, c, modernVersion)
		if sid := c.GetSessionId(); sid != "" {
			t.Fatalf("a stateless client got session id %q", sid)
		}
	})

	t.Run("mcp-go's client pinned to 2025-06-18 speaks the session era", func(t *testing.T) {
		t.Parallel()
		tr, err := transport.NewStreamableHTTP(g.MCP, auth)
		if err != nil {
			t.Fatal(err)
		}
		c := client.NewClient(tr, client.WithProtocolVersion(legacyVersion))
		exercise(t, c, legacyVersion)
		if c.GetSessionId() == "" {
			t.Fatal("no session id in the session era")
		}
	})

	// Regression: a DELETE is authenticated like every other verb, so one
	// without credentials (mcp-go's client sends its DELETE without the
	// static headers) cannot end anybody's session.
	t.Run("a DELETE without credentials is 401 and the session survives", func(t *testing.T) {
		t.Parallel()
		sid := g.initialize(t, tok)
		r := do(t, g.client, http.MethodDelete, g.MCP, http.Header{"Mcp-Session-Id": {sid}, "Mcp-Protocol-Version": {legacyVersion}}, nil)
		if r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("DELETE without a token: %d %s", r.StatusCode, r.body)
		}
		g.list(t, tok, sid).result(t)
	})

	t.Run("raw session era: initialize, Mcp-Session-Id, tools/list, tools/call", func(t *testing.T) {
		t.Parallel()
		sid := g.initialize(t, tok)
		if !slices.Contains(toolNames(t, g.list(t, tok, sid).result(t)), "rec__echo") {
			t.Fatal("rec__echo not listed")
		}
		var res struct {
			Content []struct{ Text string }
		}
		if err := json.Unmarshal(g.call(t, tok, sid, "rec__echo", map[string]any{"text": "raw"}).result(t), &res); err != nil || res.Content[0].Text != "echo raw" {
			t.Fatalf("tools/call: %+v %v", res, err)
		}
	})

	t.Run("a stateless tools/list needs no initialize", func(t *testing.T) {
		t.Parallel()
		r := g.post(t, tok, "", rpcBody(t, "tools/list", modernParams(nil)), "Mcp-Protocol-Version", modernVersion, "Mcp-Method", "tools/list")
		if !slices.Contains(toolNames(t, r.result(t)), "rec__echo") {
			t.Fatalf("stateless tools/list: %s", r.body)
		}
		if r.Header.Get("Mcp-Session-Id") != "" {
			t.Fatal("a stateless answer minted a session id")
		}
	})

	headerCases := []struct {
		name  string
		extra []string
		code  int
	}{
		{"an Mcp-Name header that differs from params.name is 400 -32020", []string{"Mcp-Name", "rec__purge"}, mcpgo.HEADER_MISMATCH},
		{"an Mcp-Method header that differs from the method is 400 -32020", []string{"Mcp-Method", "tools/list"}, mcpgo.HEADER_MISMATCH},
		{"a missing Mcp-Name header is 400 -32020", []string{"Mcp-Name", ""}, mcpgo.HEADER_MISMATCH},
		{"a protocol version header that differs from _meta is 400 -32020", []string{"Mcp-Protocol-Version", "2026-08-01"}, mcpgo.HEADER_MISMATCH},
	}
	for _, tc := range headerCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			marker := "hdr-" + randomHex(4)
			h := hdr("Authorization", bearer(tok), "Mcp-Protocol-Version", modernVersion, "Mcp-Method", "tools/call", "Mcp-Name", "rec__echo")
			for i := 0; i < len(tc.extra); i += 2 {
				if tc.extra[i+1] == "" {
					h.Del(tc.extra[i])
				} else {
					h.Set(tc.extra[i], tc.extra[i+1])
				}
			}
			r := do(t, g.client, http.MethodPost, g.MCP, h,
				rpcBody(t, "tools/call", modernParams(map[string]any{"name": "rec__echo", "arguments": map[string]any{"marker": marker}})))
			if r.StatusCode != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400: %s", r.StatusCode, r.body)
			}
			if code, _, _ := r.rpcError(t); code != tc.code {
				t.Fatalf("code = %d, want %d", code, tc.code)
			}
			if g.upstream.sawMarker(marker) {
				t.Fatal("a request with mismatching headers reached the upstream")
			}
		})
	}

	t.Run("an Mcp-Name header in the base64 form matches params.name", func(t *testing.T) {
		t.Parallel()
		// Clients send header values that are not plain ASCII tokens as
		// =?base64?...?=; the check compares the decoded name.
		encoded := "=?base64?" + base64.StdEncoding.EncodeToString([]byte("rec__echo")) + "?="
		marker := "b64-" + randomHex(4)
		h := hdr("Authorization", bearer(tok), "Mcp-Protocol-Version", modernVersion, "Mcp-Method", "tools/call", "Mcp-Name", encoded)
		do(t, g.client, http.MethodPost, g.MCP, h,
			rpcBody(t, "tools/call", modernParams(map[string]any{"name": "rec__echo", "arguments": map[string]any{"marker": marker}}))).result(t)
		if len(g.upstream.runs(marker)) != 1 {
			t.Fatal("the call did not reach the upstream")
		}
	})

	t.Run("GET /mcp is a stream in the session era and 405 in the stateless era, never 404", func(t *testing.T) {
		t.Parallel()
		sid := g.initialize(t, tok)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.MCP, nil)
		req.Header.Set("Authorization", bearer(tok))
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Mcp-Session-Id", sid)
		req.Header.Set("Mcp-Protocol-Version", legacyVersion)
		resp, err := g.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("session-era GET: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		cancel()
		_ = resp.Body.Close()

		r := do(t, g.client, http.MethodGet, g.MCP, http.Header{"Authorization": {bearer(tok)}, "Accept": {"text/event-stream"},
			"Mcp-Protocol-Version": {modernVersion}}, nil)
		if r.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("stateless GET: %d, want 405: %s", r.StatusCode, r.body)
		}
	})

	t.Run("a JSON-RPC batch is 400 with a JSON-RPC error", func(t *testing.T) {
		t.Parallel()
		batch := "[" + string(rpcBody(t, "tools/list", nil)) + "," + string(rpcBody(t, "ping", nil)) + "]"
		r := g.post(t, tok, "", []byte(" \n"+batch))
		if r.StatusCode != http.StatusBadRequest {
			t.Fatalf("status = %d: %s", r.StatusCode, r.body)
		}
		if code, _, _ := r.rpcError(t); code != -32600 {
			t.Fatalf("code = %d, want -32600", code)
		}
	})

	t.Run("malformed JSON is a parse error", func(t *testing.T) {
		t.Parallel()
		r := g.post(t, tok, "", []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"`))
		if r.StatusCode != http.StatusBadRequest {
			t.Fatalf("status = %d: %s", r.StatusCode, r.body)
		}
		if code, _, _ := r.rpcError(t); code != -32700 {
			t.Fatalf("code = %d, want -32700", code)
		}
	})

	t.Run("other HTTP methods are 405 with Allow", func(t *testing.T) {
		t.Parallel()
		r := do(t, g.client, http.MethodPut, g.MCP, http.Header{"Authorization": {bearer(tok)}}, []byte("{}"))
		if r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Allow") == "" {
			t.Fatalf("PUT: %d Allow=%q", r.StatusCode, r.Header.Get("Allow"))
		}
	})
}

// TestUpstreamFailures: an upstream that is down or slow costs its own
// callers a prompt JSON-RPC error naming it, and nobody else anything.
func TestUpstreamFailures(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	rec := newRecorder(t)
	g := newGateway(t, gatewayOptions{
		upstreams: []config.Upstream{
			{Name: "rec", MCP: &config.MCPUpstream{URL: rec.URL}},
			{Name: "down", MCP: &config.MCPUpstream{URL: closedPortURL(t)}, Timeout: timeout},
			{Name: "slow", MCP: &config.MCPUpstream{URL: newSlowUpstream(t)}, Timeout: timeout},
		},
		policy: map[string]config.ToolRule{
			"rec__echo": {Scopes: []string{baselineScope}},
			"down__*":   {Scopes: []string{baselineScope}},
			"slow__*":   {Scopes: []string{baselineScope}},
		},
	})
	g.upstream = rec
	tok := g.minter.token("alice", baselineScope)
	sid := g.initialize(t, tok)

	t.Run("tools/list leaves out the upstream that is down and keeps the others", func(t *testing.T) {
		start := time.Now()
		got := toolNames(t, g.list(t, tok, sid).result(t))
		if !slices.Equal(got, []string{"rec__echo", "slow__nap"}) {
			t.Fatalf("tools = %q", got)
		}
		if el := time.Since(start); el > 3*timeout {
			t.Fatalf("tools/list took %s", el)
		}
	})

	failures := []struct {
		name, tool, upstream, reason string
	}{
		{"a call to an upstream that is down is a JSON-RPC error naming it", "down__anything", "down", "upstream_unavailable"},
		{"a call to an upstream slower than its timeout is a JSON-RPC error naming it", "slow__nap", "slow", "upstream_timeout"},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			for attempt := 0; attempt < 2; attempt++ { // and again: nothing is cached wrongly
				start := time.Now()
				r := g.call(t, tok, sid, tc.tool, nil)
				el := time.Since(start)
				if el > 3*timeout {
					t.Fatalf("the error took %s, want under %s", el, 3*timeout)
				}
				_, msg, data := r.rpcError(t)
				if !strings.Contains(msg, tc.upstream) {
					t.Errorf("message %q does not name upstream %q", msg, tc.upstream)
				}
				var d struct{ Reason, Upstream string }
				if err := json.Unmarshal(data, &d); err != nil || d.Upstream != tc.upstream || d.Reason != tc.reason {
					t.Errorf("error data = %s, want upstream %s, reason %s", data, tc.upstream, tc.reason)
				}
				// Regression: the transport error, with the upstream's URL, used to be
				// the message.
				if strings.Contains(msg, "127.0.0.1") || strings.Contains(msg, "http://") {
					t.Errorf("message %q reveals the upstream's address", msg)
				}
				lines := g.audit.forRequest(t, r.Header.Get("X-Request-Id"))
				if len(lines) != 1 || lines[0]["upstream"] != tc.upstream || lines[0]["reason"] != tc.reason || lines[0]["decision"] != "error" {
					t.Errorf("audit = %v", lines)
				}
			}
		})
	}

	t.Run("a healthy upstream keeps answering while another hangs", func(t *testing.T) {
		var wg sync.WaitGroup
		slowDone := make(chan time.Duration, 4)
		slowCall := rpcBody(t, "tools/call", map[string]any{"name": "slow__nap"})
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				h := hdr("Authorization", bearer(tok), "Mcp-Session-Id", sid, "Mcp-Protocol-Version", legacyVersion)
				if _, err := send(g.client, http.MethodPost, g.MCP, h, slowCall); err != nil {
					t.Error(err)
				}
				slowDone <- time.Since(start)
			}()
		}
		time.Sleep(20 * time.Millisecond)
		// Were healthy calls queued behind the hanging ones, every one of
		// them would take at least the slow upstream's timeout; on a loaded
		// machine a single call may be slow for other reasons, so the
		// fastest of five is what must stay below it.
		fastest := time.Hour
		for range 5 {
			start := time.Now()
			g.call(t, tok, sid, "rec__echo", map[string]any{"text": "still here"}).result(t)
			fastest = min(fastest, time.Since(start))
		}
		if fastest >= timeout {
			t.Errorf("the fastest of 5 healthy calls took %s while the slow upstream hung", fastest)
		}
		wg.Wait()
		close(slowDone)
		for el := range slowDone {
			if el > 3*timeout {
				t.Errorf("a concurrent slow call took %s", el)
			}
		}
	})
}

// TestUpstreamSessionLoss: an upstream that forgets the gateway's session
// (restart, idle expiry) answers 404; the gateway re-initializes and retries
// once, and the caller notices nothing.
func TestUpstreamSessionLoss(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, server.WithSessionIdManager(&server.InsecureStatefulSessionIdManager{}))
	g := newGateway(t, gatewayOptions{
		upstreams: []config.Upstream{{Name: "rec", MCP: &config.MCPUpstream{URL: rec.URL}}},
		policy:    map[string]config.ToolRule{"rec__echo": {Scopes: []string{baselineScope}}},
	})
	tok := g.minter.token("alice", baselineScope)
	g.modernCall(t, tok, "rec__echo", map[string]any{"marker": "before"}).result(t)

	upstreamSession := func() string {
		for _, req := range slices.Backward(rec.httpRequests()) {
			if sid := req.Header.Get("Mcp-Session-Id"); sid != "" {
				return sid
			}
		}
		t.Fatal("the gateway never used an upstream session")
		return ""
	}
	old := upstreamSession()
	r := do(t, g.client, http.MethodDelete, rec.URL, http.Header{"Mcp-Session-Id": {old}}, nil)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("terminating the upstream session: %d %s", r.StatusCode, r.body)
	}

	marker := "after-" + randomHex(4)
	g.modernCall(t, tok, "rec__echo", map[string]any{"marker": marker}).result(t)
	if len(rec.runs(marker)) != 1 {
		t.Fatal("the call after the upstream lost its session did not run")
	}
	if now := upstreamSession(); now == old {
		t.Fatal("the gateway kept using the terminated upstream session")
	}
}

// TestAllUpstreamsDown: when no upstream answers tools/list, the caller gets
// one JSON-RPC error naming them, without their addresses.
func TestAllUpstreamsDown(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{
		upstreams: []config.Upstream{{Name: "down", MCP: &config.MCPUpstream{URL: closedPortURL(t)}, Timeout: 300 * time.Millisecond}},
		policy:    map[string]config.ToolRule{"down__*": {Scopes: []string{baselineScope}}},
	})
	tok := g.minter.token("alice", baselineScope)
	sid := g.initialize(t, tok)
	_, msg, data := g.list(t, tok, sid).rpcError(t)
	if !strings.Contains(msg, "down") || strings.Contains(msg, "127.0.0.1") {
		t.Fatalf("message = %q", msg)
	}
	var d struct {
		Reason    string
		Upstreams []string
	}
	if err := json.Unmarshal(data, &d); err != nil || d.Reason != "upstream_unavailable" || !slices.Equal(d.Upstreams, []string{"down"}) {
		t.Fatalf("data = %s", data)
	}
}

// TestCloseEndsStreams: closing the server ends open GET streams at once
// (regression: Close used to panic in mcp-go's CloseSessions, which resolves
// the session manager without a request).
func TestCloseEndsStreams(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{})
	tok := g.minter.token("alice", baselineScope)
	sid := g.initialize(t, tok)
	req, _ := http.NewRequest(http.MethodGet, g.MCP, nil)
	req.Header.Set("Authorization", bearer(tok))
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("Mcp-Protocol-Version", legacyVersion)
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET stream: %d", resp.StatusCode)
	}
	ended := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, resp.Body)
		close(ended)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.srv.Gateway.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ended:
	case <-time.After(3 * time.Second):
		t.Fatal("the stream stayed open after Close")
	}
	// The session was not revoked by the shutdown: its id stays valid for
	// a replica sharing the key (here: the same gateway).
	g.list(t, tok, sid).result(t)
}
