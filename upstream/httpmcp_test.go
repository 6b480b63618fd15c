package upstream

// Tests of the streamable-HTTP client (httpmcp.go) against real mcp-go
// servers on httptest, and against hand-written servers where a test needs
// bytes no SDK writes (odd but valid event streams, error statuses).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
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
)

// upstreamServer is an httptest server in front of an MCP handler that
// records every request and counts the TCP connections clients open.
type upstreamServer struct {
	URL      string
	srv      *httptest.Server
	newConns atomic.Int64

	mu       sync.Mutex
	requests []seenRequest
}

type seenRequest struct {
	Verb   string
	Method string // the JSON-RPC method of a POST, if any
	Header http.Header
	Body   []byte
}

func startUpstream(t *testing.T, h http.Handler) *upstreamServer {
	t.Helper()
	u := &upstreamServer{}
	u.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var m struct {
			Method string `json:"method"`
		}
		_ = json.Unmarshal(body, &m)
		u.mu.Lock()
		u.requests = append(u.requests, seenRequest{Verb: r.Method, Method: m.Method, Header: r.Header.Clone(), Body: body})
		u.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	}))
	u.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			u.newConns.Add(1)
		}
	}
	u.srv.Start()
	t.Cleanup(u.srv.Close)
	u.URL = u.srv.URL + "/mcp"
	return u
}

// seen returns the requests with the given verb and JSON-RPC method ("" for
// any).
func (u *upstreamServer) seen(verb, method string) []seenRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []seenRequest
	for _, r := range u.requests {
		if r.Verb == verb && (method == "" || r.Method == method) {
			out = append(out, r)
		}
	}
	return out
}

// tunedClient is a keep-alive client like the gateway's shared one.
func tunedClient(t *testing.T) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func newTestClient(t *testing.T, url string, mod ...func(*MCPClientOptions)) *MCPClient {
	t.Helper()
	o := MCPClientOptions{Name: "up", URL: url, HTTPClient: tunedClient(t), Timeout: 5 * time.Second, Version: "test"}
	for _, m := range mod {
		m(&o)
	}
	c := NewMCPClient(o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// toolText returns the text of a tools/call result.
func toolText(t *testing.T, resp Response) string {
	t.Helper()
	if resp.Error != nil {
		t.Fatalf("JSON-RPC error: %+v", resp.Error)
	}
	var r struct {
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
	}
	if err := json.Unmarshal(resp.Result, &r); err != nil || len(r.Content) == 0 {
		t.Fatalf("result %s: %v", resp.Result, err)
	}
	return r.Content[0].Text
}

func callTool(ctx context.Context, c *MCPClient, name string, args map[string]any) (Response, error) {
	params, _ := json.Marshal(map[string]any{"name": name, "arguments": args})
	return c.Call(ctx, "tools/call", params)
}

// chattyServer is an mcp-go server whose "talk" tool sends notifications on
// the call's own stream before answering.
func chattyServer(t *testing.T, opts ...server.StreamableHTTPOption) (*server.MCPServer, *upstreamServer) {
	s := server.NewMCPServer("chatty", "1.0.0", server.WithToolCapabilities(true))
	s.AddTool(mcpgo.NewTool("talk"), func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		marker := req.GetString("marker", "")
		srv := server.ServerFromContext(ctx)
		for i := range req.GetInt("count", 1) {
			_ = srv.SendNotificationToClient(ctx, "notifications/message",
				map[string]any{"level": "info", "data": fmt.Sprintf("%s-%d", marker, i)})
			// mcp-go writes notifications asynchronously; let each reach
			// the stream before the next and before the result.
			time.Sleep(5 * time.Millisecond)
		}
		return mcpgo.NewToolResultText("said " + marker), nil
	})
	s.AddTool(mcpgo.NewTool("quiet"), func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		return mcpgo.NewToolResultText("quiet"), nil
	})
	return s, startUpstream(t, server.NewStreamableHTTPServer(s, append([]server.StreamableHTTPOption{server.WithEndpointPath("/mcp")}, opts...)...))
}

// notes collects notifications.
type notes struct {
	mu  sync.Mutex
	got []string // "method data"
}

func (n *notes) add(method string, params json.RawMessage) {
	var p struct {
		Data string `json:"data"`
	}
	_ = json.Unmarshal(params, &p)
	n.mu.Lock()
	n.got = append(n.got, strings.TrimSpace(method+" "+p.Data))
	n.mu.Unlock()
}

func (n *notes) list() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.got)
}

func TestSSEReader(t *testing.T) {
	t.Parallel()
	type ev struct{ event, data string }
	cases := []struct {
		name   string
		stream string
		want   []ev
		lastID string
		retry  time.Duration
	}{
		{"one event", "event: message\ndata: {}\n\n", []ev{{"message", "{}"}}, "", 0},
		{"unnamed event is a message", "data: x\n\n", []ev{{"message", "x"}}, "", 0},
		{"multi-line data is joined with LF", "data: a\ndata: b\ndata:c\n\n", []ev{{"message", "a\nb\nc"}}, "", 0},
		{"comments and unknown fields are ignored", ": hi\nfoo: bar\ndata: x\n:\n\n", []ev{{"message", "x"}}, "", 0},
		{"CRLF lines", "event: message\r\ndata: x\r\n\r\ndata: y\r\n\r\n", []ev{{"message", "x"}, {"message", "y"}}, "", 0},
		{"lone CR lines", "data: x\rdata: y\r\rdata: z\r\r", []ev{{"message", "x\ny"}, {"message", "z"}}, "", 0},
		{"only one leading space is dropped", "data:  two\n\n", []ev{{"message", " two"}}, "", 0},
		{"a field without colon has an empty value", "data\ndata\n\n", []ev{{"message", "\n"}}, "", 0},
		{"an event without data is not dispatched, its id counts", "id: 7\n\ndata: x\n\n", []ev{{"message", "x"}}, "7", 0},
		{"an id with NUL is ignored", "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n", []ev{{"message", "a"}, {"message", "b"}}, "1", 0},
		{"retry takes digits only", "retry: 250\nretry: 1x\ndata: a\n\n", []ev{{"message", "a"}}, "", 250 * time.Millisecond},
		{"event type resets after dispatch", "event: ping\ndata: 1\n\ndata: 2\n\n", []ev{{"ping", "1"}, {"message", "2"}}, "", 0},
		{"an unterminated last event is still dispatched", "data: a\n\ndata: last", []ev{{"message", "a"}, {"message", "last"}}, "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// One byte at a time, so that every line spans buffer refills.
			for _, r := range []io.Reader{strings.NewReader(tc.stream), &oneByte{s: tc.stream}} {
				sr := newSSEReader(r)
				var got []ev
				for {
					e, d, err := sr.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, ev{string(e), string(d)})
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("events %q, want %q", got, tc.want)
				}
				if sr.LastEventID != tc.lastID || sr.Retry != tc.retry {
					t.Errorf("last id %q retry %s, want %q %s", sr.LastEventID, sr.Retry, tc.lastID, tc.retry)
				}
			}
		})
	}
	t.Run("an event larger than the bound is an error", func(t *testing.T) {
		t.Parallel()
		big := "data: " + strings.Repeat("x", maxMessageBytes) + "\n\n"
		if _, _, err := newSSEReader(strings.NewReader(big)).Next(); !errors.Is(err, errEventTooLarge) {
			t.Fatalf("err = %v", err)
		}
	})
}

type oneByte struct {
	s string
	i int
}

func (o *oneByte) Read(p []byte) (int, error) {
	if o.i >= len(o.s) {
		return 0, io.EOF
	}
	p[0] = o.s[o.i]
	o.i++
	return 1, nil
}

// handshake answers initialize and notifications/initialized like an MCP
// server and reports false; other requests are left to the caller.
func handshake(w http.ResponseWriter, r *http.Request, session string) (handled bool) {
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	_ = json.Unmarshal(body, &m)
	switch {
	case r.Method == http.MethodPost && m.Method == "initialize":
		w.Header().Set("Content-Type", "application/json")
		if session != "" {
			w.Header().Set("Mcp-Session-Id", session)
		}
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"raw","version":"1"}}}`, m.ID)
		return true
	case r.Method == http.MethodPost && m.Method == "notifications/initialized":
		w.WriteHeader(http.StatusAccepted)
		return true
	case r.Method == http.MethodDelete:
		return true
	}
	return false
}

// requestID returns the JSON-RPC id of a request body.
func requestID(r *http.Request) string {
	var m struct {
		ID json.RawMessage `json:"id"`
	}
	body, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(body, &m)
	return string(m.ID)
}

// A response stream written with CRLF and lone CR line ends, comments,
// multi-line data and ids is read as the SSE standard says: the
// notification and the response on it both arrive intact.
func TestCallReadsOddButValidEventStreams(t *testing.T) {
	t.Parallel()
	u := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if handshake(w, r, "s-1") || r.Method == http.MethodGet {
			if r.Method == http.MethodGet {
				w.WriteHeader(http.StatusMethodNotAllowed)
			}
			return
		}
		id := requestID(r)
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, ": keep-alive comment\r\n")
		fmt.Fprint(w, "id: e1\r\nevent: message\r\n")
		fmt.Fprint(w, "data: {\"jsonrpc\":\"2.0\",\r\ndata: \"method\":\"notifications/message\",\r\n")
		fmt.Fprint(w, "data: \"params\":{\"level\":\"info\",\"data\":\"multi\\nline\"}}\r\n\r\n")
		w.(http.Flusher).Flush()
		fmt.Fprintf(w, "id: e2\rdata: {\"jsonrpc\":\"2.0\",\"id\":%s,\rdata: \"result\":{\"content\":[{\"type\":\"text\",\"text\":\"ok\"}]}}\r\r", id)
	}))
	c := newTestClient(t, u.URL)
	var got notes
	ctx := WithCallNotifications(context.Background(), got.add)
	resp, err := callTool(ctx, c, "x", nil)
	if err != nil {
		t.Fatal(err)
	}
	if txt := toolText(t, resp); txt != "ok" {
		t.Errorf("text %q", txt)
	}
	if n := got.list(); !slices.Equal(n, []string{"notifications/message multi\nline"}) {
		t.Errorf("notifications %q", n)
	}
}

// Two concurrent calls each get exactly their own notifications through
// their own sinks; the global handler gets none of them, except list
// changes, which it always gets as well (the router invalidates there).
func TestCallNotificationsGoToTheirOwnCall(t *testing.T) {
	t.Parallel()
	// Stateless: each POST is its own mcp-go session, so the server puts a
	// request's notifications on that request's stream. (With a shared
	// session mcp-go writes them on whichever stream of it is open.)
	s, u := chattyServer(t, server.WithStateLess(true))
	both := make(chan struct{})
	var arrived sync.WaitGroup
	arrived.Add(2)
	go func() { arrived.Wait(); close(both) }()
	s.AddTool(mcpgo.NewTool("together"), func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		arrived.Done()
		<-both // both calls are in flight before either talks
		marker := req.GetString("marker", "")
		srv := server.ServerFromContext(ctx)
		for i := range 5 {
			_ = srv.SendNotificationToClient(ctx, "notifications/message", map[string]any{"level": "info", "data": fmt.Sprintf("%s-%d", marker, i)})
			time.Sleep(2 * time.Millisecond)
		}
		_ = srv.SendNotificationToClient(ctx, "notifications/tools/list_changed", nil)
		time.Sleep(5 * time.Millisecond)
		return mcpgo.NewToolResultText(marker), nil
	})
	c := newTestClient(t, u.URL)
	var global notes
	c.SetNotificationHandler(global.add)

	sinks := map[string]*notes{"alice": {}, "bob": {}}
	var wg sync.WaitGroup
	for marker, sink := range sinks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := WithCallNotifications(context.Background(), sink.add)
			resp, err := callTool(ctx, c, "together", map[string]any{"marker": marker})
			if err != nil {
				t.Error(err)
				return
			}
			if txt := toolText(t, resp); txt != marker {
				t.Errorf("%s got the answer %q", marker, txt)
			}
		}()
	}
	wg.Wait()
	for marker, sink := range sinks {
		var want []string
		for i := range 5 {
			want = append(want, fmt.Sprintf("notifications/message %s-%d", marker, i))
		}
		want = append(want, "notifications/tools/list_changed")
		if got := sink.list(); !slices.Equal(got, want) {
			t.Errorf("%s's sink got %q, want %q", marker, got, want)
		}
	}
	if got := global.list(); !slices.Equal(got, []string{"notifications/tools/list_changed", "notifications/tools/list_changed"}) {
		t.Errorf("the global handler got %q, want only the two list changes", got)
	}
}

// Without a sink, notifications on a call's stream go to the global
// handler, as before.
func TestCallNotificationsWithoutASinkGoToTheGlobalHandler(t *testing.T) {
	t.Parallel()
	_, u := chattyServer(t, server.WithStateLess(true))
	c := newTestClient(t, u.URL)
	var global notes
	c.SetNotificationHandler(global.add)
	if _, err := callTool(context.Background(), c, "talk", map[string]any{"marker": "m", "count": 2}); err != nil {
		t.Fatal(err)
	}
	if got := global.list(); !slices.Equal(got, []string{"notifications/message m-0", "notifications/message m-1"}) {
		t.Errorf("global handler got %q", got)
	}
}

// Regression (DESIGN §10: mcp-go's client closed event streams before their
// end and dialled again on ≈13 % of calls): every response stream is read to
// its end, so sequential calls — with event-stream and JSON answers — all
// travel on the one keep-alive connection.
func TestCallsReuseTheConnection(t *testing.T) {
	t.Parallel()
	_, u := chattyServer(t)
	c := newTestClient(t, u.URL)
	ctx := WithCallNotifications(context.Background(), func(string, json.RawMessage) {})
	for i := range 40 {
		tool := "talk"
		if i%2 == 1 {
			tool = "quiet"
		}
		if _, err := callTool(ctx, c, tool, map[string]any{"marker": "m", "count": 1}); err != nil {
			t.Fatal(err)
		}
	}
	if streams := len(u.seen(http.MethodPost, "tools/call")); streams != 40 {
		t.Fatalf("%d calls reached the upstream", streams)
	}
	if n := u.newConns.Load(); n != 1 {
		t.Errorf("40 sequential calls opened %d connections, want 1", n)
	}
}

// An upstream that forgets the session (404) is re-initialized once and the
// call retried; the retried call carries the new session id.
func TestSessionLossReinitializesOnceAndRetries(t *testing.T) {
	t.Parallel()
	_, u := chattyServer(t, server.WithStateful(true))
	c := newTestClient(t, u.URL)
	if _, err := callTool(context.Background(), c, "quiet", nil); err != nil {
		t.Fatal(err)
	}
	old := u.seen(http.MethodPost, "tools/call")[0].Header.Get("Mcp-Session-Id")
	req, _ := http.NewRequest(http.MethodDelete, u.URL, nil)
	req.Header.Set("Mcp-Session-Id", old)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	resp2, err := callTool(context.Background(), c, "quiet", nil)
	if err != nil {
		t.Fatal(err)
	}
	toolText(t, resp2)
	calls := u.seen(http.MethodPost, "tools/call")
	if len(calls) != 3 {
		t.Fatalf("tools/call reached the upstream %d times, want 3 (first, refused, retried)", len(calls))
	}
	if got := calls[2].Header.Get("Mcp-Session-Id"); got == "" || got == old {
		t.Errorf("the retry used session %q (old %q)", got, old)
	}
	if n := len(u.seen(http.MethodPost, "initialize")); n != 2 {
		t.Errorf("%d initialize requests, want 2", n)
	}
	if v := calls[2].Header.Get("Mcp-Protocol-Version"); v != ProtocolVersion {
		t.Errorf("Mcp-Protocol-Version %q", v)
	}
}

// An upstream that answers 404 again after re-initializing fails the call
// (retried once, not forever).
func TestSessionLossIsRetriedOnlyOnce(t *testing.T) {
	t.Parallel()
	var sessions atomic.Int64
	u := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if handshake(w, r, fmt.Sprintf("s-%d", sessions.Add(1))) {
			return
		}
		http.Error(w, "no such session", http.StatusNotFound)
	}))
	c := newTestClient(t, u.URL)
	_, err := callTool(context.Background(), c, "x", nil)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "upstream up") || !strings.Contains(err.Error(), "404") {
		t.Fatalf("err = %v", err)
	}
	if n := len(u.seen(http.MethodPost, "tools/call")); n != 2 {
		t.Errorf("tools/call sent %d times, want 2", n)
	}
}

// 401 and 403 are ErrUnavailable errors that name the upstream and the
// status, never the body; they are about the caller's identity, so the
// session is kept (no new initialize), and the upstream counts as reachable.
func TestUnauthorizedNamesTheStatusNotTheBody(t *testing.T) {
	t.Parallel()
	mcpHandler := server.NewStreamableHTTPServer(server.NewMCPServer("guarded", "1.0.0"), server.WithEndpointPath("/mcp"))
	u := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-User") == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="x"`)
			http.Error(w, "secret-body-marker", http.StatusUnauthorized)
			return
		}
		if r.Header.Get("X-User") == "mallory" {
			http.Error(w, "secret-body-marker", http.StatusForbidden)
			return
		}
		mcpHandler.ServeHTTP(w, r)
	}))
	c := newTestClient(t, u.URL)
	err := c.Probe(context.Background())
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "upstream up") || !strings.Contains(err.Error(), "401") ||
		strings.Contains(err.Error(), "secret-body-marker") {
		t.Fatalf("probe err = %v", err)
	}
	if unreachable(err) {
		t.Errorf("an upstream that answers 401 counts as unreachable: %v", err)
	}

	alice := WithHeaders(context.Background(), map[string]string{"X-User": "alice"})
	if _, err := c.Call(alice, "ping", nil); err != nil {
		t.Fatal(err)
	}
	mallory := WithHeaders(context.Background(), map[string]string{"X-User": "mallory"})
	_, err = c.Call(mallory, "ping", nil)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "403") || strings.Contains(err.Error(), "secret-body-marker") {
		t.Fatalf("call err = %v", err)
	}
	if _, err := c.Call(alice, "ping", nil); err != nil {
		t.Fatal(err)
	}
	if n := len(u.seen(http.MethodPost, "initialize")); n != 2 {
		t.Errorf("%d initialize requests, want 2 (the probe's refused one, alice's)", n)
	}
}

// Other error statuses carry the upstream's JSON-RPC error when the body is
// one, and else a short excerpt of the body.
func TestErrorStatuses(t *testing.T) {
	t.Parallel()
	u := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if handshake(w, r, "") {
			return
		}
		var m struct {
			Method string `json:"method"`
		}
		_ = json.NewDecoder(r.Body).Decode(&m)
		if m.Method == "rpc" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"bad request shape"}}`)
			return
		}
		http.Error(w, "upstream exploded\n"+strings.Repeat("x", 10000), http.StatusBadGateway)
	}))
	c := newTestClient(t, u.URL)
	resp, err := c.Call(context.Background(), "rpc", nil)
	if err != nil || resp.Error == nil || resp.Error.Code != -32600 || resp.Error.Message != "bad request shape" {
		t.Fatalf("resp %+v err %v", resp, err)
	}
	_, err = c.Call(context.Background(), "other", nil)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "502") || !strings.Contains(err.Error(), "upstream exploded") || len(err.Error()) > 400 {
		t.Fatalf("err = %v", err)
	}
}

// The listening stream retries a failing upstream with doubling delays,
// logged at debug level only, and stops quietly at 405.
func TestListeningStreamBacksOff(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var gets []time.Time
	u := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if handshake(w, r, "s-1") {
			return
		}
		if r.Method == http.MethodGet {
			mu.Lock()
			gets = append(gets, time.Now())
			mu.Unlock()
			http.Error(w, "not now", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{}}`, requestID(r))
	}))
	var logs recordingHandler
	c := newTestClient(t, u.URL, func(o *MCPClientOptions) { o.Listen = true; o.Logger = slog.New(&logs) })
	c.backoffMin, c.backoffMax = 40*time.Millisecond, 160*time.Millisecond
	if _, err := c.Call(context.Background(), "ping", nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(900 * time.Millisecond)
	mu.Lock()
	at := slices.Clone(gets)
	mu.Unlock()
	if len(at) < 5 {
		t.Fatalf("only %d GETs in 900 ms", len(at))
	}
	// Delays never come early: 40, 80, 160, then capped at 160 ms.
	want := []time.Duration{40, 80, 160, 160}
	for i, w := range want {
		if gap := at[i+1].Sub(at[i]); gap < w*time.Millisecond*9/10 {
			t.Errorf("retry %d came after %s, want ≥ %d ms", i+1, gap, w)
		}
	}
	if len(at) > 9 {
		t.Errorf("%d GETs in 900 ms: the retries do not back off", len(at))
	}
	if lv := logs.maxLevel(); lv > slog.LevelDebug {
		t.Errorf("retries logged at %s", lv)
	}
}

func TestListeningStreamStopsAt405(t *testing.T) {
	t.Parallel()
	var gets atomic.Int64
	u := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if handshake(w, r, "s-1") {
			return
		}
		if r.Method == http.MethodGet {
			gets.Add(1)
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{}}`, requestID(r))
	}))
	c := newTestClient(t, u.URL, func(o *MCPClientOptions) { o.Listen = true })
	c.backoffMin = 10 * time.Millisecond
	if _, err := c.Call(context.Background(), "ping", nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if n := gets.Load(); n != 1 {
		t.Errorf("%d GETs after a 405, want 1", n)
	}
}

// The listening stream brings notifications not tied to a call (list
// changes) to the global handler; it carries the session id, not the
// caller's identity.
func TestListeningStreamDeliversToTheGlobalHandler(t *testing.T) {
	t.Parallel()
	s, u := chattyServer(t)
	c := newTestClient(t, u.URL, func(o *MCPClientOptions) { o.Listen = true })
	got := make(chan string, 4)
	c.SetNotificationHandler(func(method string, _ json.RawMessage) { got <- method })
	alice := WithHeaders(context.Background(), map[string]string{"X-User": "alice"})
	if _, err := callTool(alice, c, "quiet", nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(u.seen(http.MethodGet, "")) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // the stream is open at the server
	s.AddTool(mcpgo.NewTool("fresh"), func(context.Context, mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		return mcpgo.NewToolResultText("fresh"), nil
	})
	select {
	case m := <-got:
		if m != "notifications/tools/list_changed" {
			t.Errorf("method %q", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no list change on the listening stream")
	}
	get := u.seen(http.MethodGet, "")[0]
	if get.Header.Get("Mcp-Session-Id") == "" || get.Header.Get("Accept") != "text/event-stream" || get.Header.Get("X-User") != "" {
		t.Errorf("GET headers %v", get.Header)
	}
}

// Every POST carries the protocol's headers, the static headers and the
// call's identity; Close stops the listening stream and ends the session
// with DELETE carrying only the static headers.
func TestHeadersAndClose(t *testing.T) {
	t.Parallel()
	_, u := chattyServer(t, server.WithStateful(true))
	c := newTestClient(t, u.URL, func(o *MCPClientOptions) {
		o.Listen = true
		o.Headers = map[string]string{"Authorization": "Bearer static-credential"}
	})
	alice := WithHeaders(context.Background(), map[string]string{"X-User": "alice"})
	if _, err := callTool(alice, c, "quiet", nil); err != nil {
		t.Fatal(err)
	}
	call := u.seen(http.MethodPost, "tools/call")[0].Header
	for k, want := range map[string]string{
		"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
		"Mcp-Protocol-Version": ProtocolVersion, "Authorization": "Bearer static-credential", "X-User": "alice",
	} {
		if got := call.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	sid := call.Get("Mcp-Session-Id")
	if sid == "" {
		t.Fatal("no session id on the call")
	}
	if init := u.seen(http.MethodPost, "initialize")[0].Header; init.Get("Mcp-Session-Id") != "" || init.Get("X-User") != "alice" {
		t.Errorf("initialize headers %v", init)
	}

	start := time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 2500*time.Millisecond {
		t.Errorf("Close took %s", el)
	}
	del := u.seen(http.MethodDelete, "")
	if len(del) != 1 || del[0].Header.Get("Mcp-Session-Id") != sid || del[0].Header.Get("Authorization") != "Bearer static-credential" ||
		del[0].Header.Get("X-User") != "" {
		t.Fatalf("DELETE requests %+v", del)
	}
	if _, err := callTool(alice, c, "quiet", nil); !errors.Is(err, ErrUnavailable) {
		t.Errorf("a call after Close: %v", err)
	}
}

// Concurrent first calls share one initialize.
func TestConnectingIsSingleFlight(t *testing.T) {
	t.Parallel()
	_, u := chattyServer(t)
	c := newTestClient(t, u.URL)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := callTool(context.Background(), c, "quiet", nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := len(u.seen(http.MethodPost, "initialize")); n != 1 {
		t.Errorf("%d initialize requests for 20 concurrent first calls", n)
	}
}

// A call whose context ends tells the upstream with notifications/cancelled
// naming the request's id, with the call's identity.
func TestCancelledCallIsCancelledUpstream(t *testing.T) {
	t.Parallel()
	s, u := chattyServer(t)
	started := make(chan struct{}, 1)
	s.AddTool(mcpgo.NewTool("block"), func(ctx context.Context, _ mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		started <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	})
	c := newTestClient(t, u.URL)
	ctx, cancel := context.WithCancel(WithHeaders(context.Background(), map[string]string{"X-User": "alice"}))
	go func() { <-started; cancel() }()
	_, err := callTool(ctx, c, "block", nil)
	if err == nil || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	var call struct {
		ID json.RawMessage `json:"id"`
	}
	_ = json.Unmarshal(u.seen(http.MethodPost, "tools/call")[0].Body, &call)
	deadline := time.Now().Add(3 * time.Second)
	for {
		if n := u.seen(http.MethodPost, "notifications/cancelled"); len(n) > 0 {
			var m struct {
				Params struct {
					RequestID json.RawMessage `json:"requestId"`
					Reason    string          `json:"reason"`
				} `json:"params"`
			}
			_ = json.Unmarshal(n[0].Body, &m)
			if string(m.Params.RequestID) != string(call.ID) || m.Params.Reason == "" || n[0].Header.Get("X-User") != "alice" {
				t.Errorf("notifications/cancelled %s headers %v", n[0].Body, n[0].Header)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no notifications/cancelled reached the upstream")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// recordingHandler is a slog handler that remembers the highest level.
type recordingHandler struct {
	mu  sync.Mutex
	max slog.Level
	any bool
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.any || r.Level > h.max {
		h.max, h.any = r.Level, true
	}
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }
func (h *recordingHandler) maxLevel() slog.Level {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.any {
		return slog.LevelDebug
	}
	return h.max
}

// A stream the upstream ends before the response, after priming it with an
// event id (SEP-1699), is resumed with GET and Last-Event-ID on the same
// session, after the retry time the upstream asked for.
func TestEndedStreamIsResumed(t *testing.T) {
	t.Parallel()
	u := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if handshake(w, r, "s-1") {
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		if r.Method == http.MethodPost {
			// Priming event: an id, no data; then the stream ends.
			fmt.Fprint(w, "id: p-1\nretry: 20\ndata:\n\n")
			return
		}
		if r.Header.Get("Last-Event-ID") != "p-1" {
			http.Error(w, "unexpected resume", http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, "id: p-2\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"resumed\"}]}}\n\n")
	}))
	c := newTestClient(t, u.URL)
	resp, err := callTool(WithHeaders(context.Background(), map[string]string{"X-User": "alice"}), c, "x", nil)
	if err != nil {
		t.Fatal(err)
	}
	if txt := toolText(t, resp); txt != "resumed" {
		t.Errorf("text %q", txt)
	}
	gets := u.seen(http.MethodGet, "")
	if len(gets) != 1 || gets[0].Header.Get("Mcp-Session-Id") != "s-1" || gets[0].Header.Get("X-User") != "alice" {
		t.Errorf("resume requests %+v", gets)
	}
}

// A stream the upstream keeps open after the response does not hold up the
// call: the answer is returned at once and the rest is read in the
// background, bounded.
func TestStreamThatGoesOnDoesNotDelayTheCall(t *testing.T) {
	t.Parallel()
	u := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if handshake(w, r, "s-1") {
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "data: {\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{}}\n\n", requestID(r))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	c := newTestClient(t, u.URL)
	start := time.Now()
	if _, err := c.Call(context.Background(), "ping", nil); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("the call took %s", el)
	}
}

// Requests the upstream sends on a call's stream are answered through the
// call's relay, or with "method not found" without one; the answer is
// POSTed back on the session with the call's identity.
func TestServerRequestsOnACallsStream(t *testing.T) {
	t.Parallel()
	answers := make(chan seenRequest, 4)
	u := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if handshake(w, r, "s-1") {
			return
		}
		body, _ := io.ReadAll(r.Body)
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		_ = json.Unmarshal(body, &m)
		if m.Method == "" { // an answer
			answers <- seenRequest{Header: r.Header.Clone(), Body: body}
			w.WriteHeader(http.StatusAccepted)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, `data: {"jsonrpc":"2.0","id":"up-7","method":"elicitation/create","params":{"message":"name?"}}`+"\n\n")
		w.(http.Flusher).Flush()
		select {
		case a := <-answers:
			answers <- a // for the test
		case <-time.After(5 * time.Second):
		}
		fmt.Fprintf(w, "data: {\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{}}\n\n", m.ID)
	}))
	c := newTestClient(t, u.URL)
	alice := WithHeaders(context.Background(), map[string]string{"X-User": "alice"})

	t.Run("without a relay the upstream gets method not found", func(t *testing.T) {
		if _, err := c.Call(alice, "tools/call", json.RawMessage(`{"name":"x"}`)); err != nil {
			t.Fatal(err)
		}
		a := <-answers
		if !bytes.Contains(a.Body, []byte(`"id":"up-7"`)) || !bytes.Contains(a.Body, []byte(`-32601`)) ||
			a.Header.Get("X-User") != "alice" || a.Header.Get("Mcp-Session-Id") != "s-1" {
			t.Errorf("answer %s headers %v", a.Body, a.Header)
		}
	})
	t.Run("with a relay the caller answers", func(t *testing.T) {
		var asked string
		ctx := WithServerRequests(alice, func(_ context.Context, method string, params json.RawMessage) (json.RawMessage, *RPCError, error) {
			asked = method + " " + string(params)
			return json.RawMessage(`{"action":"accept","content":{"name":"Alice"}}`), nil, nil
		})
		if _, err := c.Call(ctx, "tools/call", json.RawMessage(`{"name":"x"}`)); err != nil {
			t.Fatal(err)
		}
		a := <-answers
		if asked != `elicitation/create {"message":"name?"}` {
			t.Errorf("relay asked %q", asked)
		}
		if !bytes.Contains(a.Body, []byte(`"result":{"action":"accept","content":{"name":"Alice"}}`)) {
			t.Errorf("answer %s", a.Body)
		}
	})
}

// With LogLevel set, a new session asks an upstream that offers logging for
// that level (logging/setLevel, after notifications/initialized); an
// upstream without logging is not asked.
func TestLogLevelIsSetOnNewSessions(t *testing.T) {
	t.Parallel()
	for _, offers := range []bool{true, false} {
		opts := []server.ServerOption{server.WithToolCapabilities(false)}
		if offers {
			opts = append(opts, server.WithLogging())
		}
		u := startUpstream(t, server.NewStreamableHTTPServer(server.NewMCPServer("s", "1", opts...), server.WithEndpointPath("/mcp")))
		c := newTestClient(t, u.URL, func(o *MCPClientOptions) { o.LogLevel = "debug" })
		if err := c.Probe(context.Background()); err != nil {
			t.Fatal(err)
		}
		set := u.seen(http.MethodPost, "logging/setLevel")
		if !offers {
			if len(set) != 0 {
				t.Errorf("an upstream without logging was sent %s", set[0].Body)
			}
			continue
		}
		if len(set) != 1 || !bytes.Contains(set[0].Body, []byte(`"level":"debug"`)) || set[0].Header.Get("Mcp-Session-Id") == "" {
			t.Fatalf("logging/setLevel requests: %+v", set)
		}
	}
}

// An upstream that answers with a redirect does not send the call, and the
// identity headers that came with it, anywhere else: the redirect is an
// error and the other server sees nothing.
func TestRedirectsAreNotFollowed(t *testing.T) {
	t.Parallel()
	elsewhere := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	u := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if handshake(w, r, "") {
			return
		}
		http.Redirect(w, r, elsewhere.URL, http.StatusTemporaryRedirect)
	}))
	c := newTestClient(t, u.URL)
	ctx := WithHeaders(context.Background(), map[string]string{"X-User-Id": "alice"})
	_, err := callTool(ctx, c, "anything", nil)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "307") {
		t.Fatalf("call err = %v, want an unavailable upstream naming the 307", err)
	}
	if n := len(elsewhere.seen(http.MethodPost, "")); n != 0 {
		t.Fatalf("the redirect target received %d requests, want none", n)
	}
}

// A failure to reach the upstream — a peer that closes the connection, a
// certificate the gateway does not trust — counts as unreachable (the
// health checks and readiness depend on it), and a credential in the URL
// is sent as Basic authorization.
func TestTransportFailuresAreUnreachableAndURLCredentialsAreSent(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	tlsUp := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(tlsUp.Close)
	for name, u := range map[string]string{
		"a peer that closes":  "http://" + ln.Addr().String() + "/mcp",
		"an untrusted server": tlsUp.URL + "/mcp",
	} {
		err := newTestClient(t, u).Probe(context.Background())
		if err == nil || !unreachable(err) {
			t.Errorf("%s: probe err = %v, unreachable = %v; want an unreachable upstream", name, err, unreachable(err))
		}
	}

	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, pass, ok := r.BasicAuth(); !ok || user != "svc" || pass != "s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		handshake(w, r, "")
	}))
	withUser := strings.Replace(up.URL, "http://", "http://svc:s3cret@", 1)
	c := newTestClient(t, withUser)
	if err := c.Probe(context.Background()); err != nil {
		t.Fatalf("probe with credentials in the URL: %v", err)
	}
	// The password never appears in an error.
	_ = ln.Close()
	bad := newTestClient(t, "http://svc:s3cret@"+ln.Addr().String()+"/mcp")
	if err := bad.Probe(context.Background()); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("probe of a closed port: err = %v, want an error without the password", err)
	}
}
