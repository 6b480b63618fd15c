package interop

// The MCP clients of the fidelity tests. Each sends one JSON-RPC request at
// a time and hands back the raw JSON of the result, exactly as it arrived:
//
//   - httpSession: a session-era client written on raw HTTP (initialize,
//     Mcp-Session-Id, Mcp-Protocol-Version; answers as application/json or
//     text/event-stream), used directly against HTTP upstreams and against
//     the gateway;
//   - stdioSession: a session-era client over a child's stdin/stdout
//     (newline-delimited JSON-RPC), used directly against stdio upstreams;
//   - modernClient: mark3labs/mcp-go's client negotiating 2026-07-28 with
//     the gateway (no initialize, per-request _meta, Mcp-Method and
//     Mcp-Name headers, all produced by the client itself), with its HTTP
//     traffic captured so that the raw result on the wire is compared, not
//     mcp-go's lossy typed structs.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
)

const (
	// sessionVersion is the protocol version the session-era clients ask for.
	sessionVersion = "2025-11-25"
	// modernVersion is the stateless protocol version.
	modernVersion = mcpgo.ProtocolVersion20260728
	// callTimeout bounds one request.
	callTimeout = 20 * time.Second
	// maxBody bounds a response body read by the tests.
	maxBody = 16 << 20
)

// clientCapabilities are what every test client declares: those of a
// full-featured client (sampling, elicitation, roots), which is also what
// the gateway declares to its upstreams on behalf of its callers. The
// capabilities matter: server-everything registers some tools only for
// clients that declare them.
func clientCapabilities() map[string]any {
	return map[string]any{"sampling": map[string]any{}, "elicitation": map[string]any{}, "roots": map[string]any{}}
}

// mcpClient sends one request and returns the raw result, or an error; a
// JSON-RPC error answer is an *rpcError.
type mcpClient interface {
	request(ctx context.Context, method string, params map[string]any) (json.RawMessage, error)
}

// rpcError is a JSON-RPC error answer.
type rpcError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *rpcError) Error() string {
	if len(e.Data) > 0 {
		return fmt.Sprintf("JSON-RPC error %d: %s (data %s)", e.Code, e.Message, e.Data)
	}
	return fmt.Sprintf("JSON-RPC error %d: %s", e.Code, e.Message)
}

// rpcMessage is any JSON-RPC message.
type rpcMessage struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *rpcError       `json:"error,omitempty"`
}

// answer returns m's result or error.
func (m rpcMessage) answer() (json.RawMessage, error) {
	if m.Error != nil {
		return nil, m.Error
	}
	if len(m.Result) == 0 {
		return nil, fmt.Errorf("JSON-RPC response without result or error")
	}
	return m.Result, nil
}

// isResponseTo reports whether m answers the request with the given id.
func (m rpcMessage) isResponseTo(id int64) bool {
	if m.Method != "" || len(m.ID) == 0 {
		return false
	}
	return string(bytes.TrimSpace(m.ID)) == strconv.FormatInt(id, 10)
}

// excerpt shortens b for error messages.
func excerpt(b []byte) string {
	const n = 2000
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// sseData returns the data of every event of a text/event-stream body
// (events without data, such as priming events, are left out).
func sseData(body []byte) [][]byte {
	var out [][]byte
	var data []byte
	has := false
	flush := func() {
		if has && len(bytes.TrimSpace(data)) > 0 {
			out = append(out, data)
		}
		data, has = nil, false
	}
	for _, line := range bytes.Split(body, []byte("\n")) {
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			flush()
			continue
		}
		if v, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			v = bytes.TrimPrefix(v, []byte(" "))
			if has {
				data = append(data, '\n')
			}
			data = append(data, v...)
			has = true
		}
	}
	flush()
	return out
}

// findResponse finds the response to id in an HTTP answer body, plain JSON
// or an event stream (where notifications may come first).
func findResponse(contentType string, body []byte, id int64) (rpcMessage, error) {
	var candidates [][]byte
	if strings.HasPrefix(strings.ToLower(contentType), "text/event-stream") {
		candidates = sseData(body)
	} else {
		candidates = [][]byte{body}
	}
	for _, c := range candidates {
		var m rpcMessage
		if err := json.Unmarshal(c, &m); err != nil {
			return rpcMessage{}, fmt.Errorf("not a JSON-RPC message (%v): %s", err, excerpt(c))
		}
		if m.isResponseTo(id) {
			return m, nil
		}
	}
	return rpcMessage{}, fmt.Errorf("no response to request id %d in the %q answer: %s", id, contentType, excerpt(body))
}

// ---------------------------------------------------------------------------
// Session era over HTTP.

// httpSession is a session-era MCP client on raw HTTP.
type httpSession struct {
	url     string
	token   string // sent as a bearer token when set
	hc      *http.Client
	session string // Mcp-Session-Id, when the server issued one
	version string // negotiated protocol version
	ids     atomic.Int64
}

// dialHTTPSession runs initialize and notifications/initialized, declaring
// clientCapabilities. It opens no GET stream: server requests outside a call
// (server-everything asks for roots after initialization) are not received.
func dialHTTPSession(ctx context.Context, url, token string) (*httpSession, error) {
	c := &httpSession{url: url, token: token, hc: &http.Client{Timeout: callTimeout}}
	id := c.ids.Add(1)
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": "initialize", "params": map[string]any{
		"protocolVersion": sessionVersion, "capabilities": clientCapabilities(),
		"clientInfo": map[string]any{"name": "gatewaystack-interop", "version": "1"},
	}})
	if err != nil {
		return nil, err
	}
	resp, rb, err := c.post(ctx, body)
	if err != nil {
		return nil, fmt.Errorf("initialize: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("initialize: HTTP %d: %s", resp.StatusCode, excerpt(rb))
	}
	m, err := findResponse(resp.Header.Get("Content-Type"), rb, id)
	if err != nil {
		return nil, fmt.Errorf("initialize: %w", err)
	}
	res, err := m.answer()
	if err != nil {
		return nil, fmt.Errorf("initialize: %w", err)
	}
	var ir struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	if err := json.Unmarshal(res, &ir); err != nil || ir.ProtocolVersion == "" {
		return nil, fmt.Errorf("initialize: no protocolVersion in %s", excerpt(res))
	}
	c.version = ir.ProtocolVersion
	c.session = resp.Header.Get("Mcp-Session-Id")
	resp, rb, err = c.post(ctx, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`))
	if err != nil {
		return nil, fmt.Errorf("notifications/initialized: %w", err)
	}
	if resp.StatusCode != http.StatusAccepted {
		return nil, fmt.Errorf("notifications/initialized: HTTP %d, want 202: %s", resp.StatusCode, excerpt(rb))
	}
	return c, nil
}

// post sends one JSON-RPC message and reads the whole answer.
func (c *httpSession) post(ctx context.Context, body []byte) (*http.Response, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.session != "" {
		req.Header.Set("Mcp-Session-Id", c.session)
	}
	if c.version != "" {
		req.Header.Set("Mcp-Protocol-Version", c.version)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, nil, fmt.Errorf("read answer: %w", err)
	}
	return resp, rb, nil
}

func (c *httpSession) request(ctx context.Context, method string, params map[string]any) (json.RawMessage, error) {
	id := c.ids.Add(1)
	msg := map[string]any{"jsonrpc": "2.0", "id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return nil, err
	}
	resp, rb, err := c.post(ctx, body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		// A JSON-RPC error may come with a 4xx status: show both.
		if m, ferr := findResponse(resp.Header.Get("Content-Type"), rb, id); ferr == nil && m.Error != nil {
			return nil, fmt.Errorf("HTTP %d: %w", resp.StatusCode, m.Error)
		}
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, excerpt(rb))
	}
	m, err := findResponse(resp.Header.Get("Content-Type"), rb, id)
	if err != nil {
		return nil, err
	}
	return m.answer()
}

// close ends the session (DELETE), best effort.
func (c *httpSession) close() {
	if c.session == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, c.url, nil)
	if err != nil {
		return
	}
	req.Header.Set("Mcp-Session-Id", c.session)
	req.Header.Set("Mcp-Protocol-Version", c.version)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if resp, err := c.hc.Do(req); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
}

// ---------------------------------------------------------------------------
// Session era over stdio.

// stdioSession is a session-era MCP client over a child process's stdin and
// stdout. One request at a time.
type stdioSession struct {
	p     *proc
	stdin io.WriteCloser
	lines chan []byte   // stdout, one JSON-RPC message per line
	done  chan struct{} // closed when the test ends
	ids   atomic.Int64
	mu    sync.Mutex
}

// startStdioSession starts bin with args as a stdio MCP server and runs
// initialize and notifications/initialized, declaring clientCapabilities.
func startStdioSession(t *testing.T, name string, env []string, bin string, args ...string) *stdioSession {
	t.Helper()
	c := &stdioSession{lines: make(chan []byte, 64), done: make(chan struct{})}
	// Our own pipe for stdout (not StdoutPipe, which Wait closes while the
	// reader may still be reading).
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c.p = startProc(t, name, env, func(cmd *exec.Cmd) {
		var err error
		if c.stdin, err = cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		cmd.Stdout = pw
	}, bin, args...)
	_ = pw.Close() // the child has its copy
	go func() {
		defer close(c.lines)
		defer pr.Close()
		r := bufio.NewReaderSize(pr, 1<<20)
		for {
			line, err := r.ReadBytes('\n')
			if len(bytes.TrimSpace(line)) > 0 {
				select {
				case c.lines <- line:
				case <-c.done:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { // runs before the process is stopped
		close(c.done)
		_ = c.stdin.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if _, err := c.request(ctx, "initialize", map[string]any{
		"protocolVersion": sessionVersion, "capabilities": clientCapabilities(),
		"clientInfo": map[string]any{"name": "gatewaystack-interop", "version": "1"},
	}); err != nil {
		t.Fatalf("%s: initialize: %v\n%s", name, err, c.p.describe())
	}
	if err := c.write([]byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)); err != nil {
		t.Fatalf("%s: notifications/initialized: %v", name, err)
	}
	return c
}

func (c *stdioSession) write(msg []byte) error {
	_, err := c.stdin.Write(append(append([]byte(nil), msg...), '\n'))
	return err
}

func (c *stdioSession) request(ctx context.Context, method string, params map[string]any) (json.RawMessage, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	id := c.ids.Add(1)
	msg := map[string]any{"jsonrpc": "2.0", "id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return nil, err
	}
	if err := c.write(body); err != nil {
		return nil, fmt.Errorf("write %s: %w", method, err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: no answer: %w", method, ctx.Err())
		case line, ok := <-c.lines:
			if !ok {
				return nil, fmt.Errorf("%s: %w", method, errProcessGone)
			}
			var m rpcMessage
			if err := json.Unmarshal(line, &m); err != nil {
				return nil, fmt.Errorf("%s: stdout line is not JSON-RPC (%v): %s", method, err, excerpt(line))
			}
			if m.isResponseTo(id) {
				return m.answer()
			}
			if m.Method != "" && len(m.ID) > 0 {
				// A server request: roots/list gets no roots, anything
				// else a refusal, so that the server is never left waiting.
				answer := map[string]any{"jsonrpc": "2.0", "id": m.ID,
					"error": map[string]any{"code": -32601, "message": "not supported by the test client"}}
				if m.Method == "roots/list" {
					answer = map[string]any{"jsonrpc": "2.0", "id": m.ID, "result": map[string]any{"roots": []any{}}}
				}
				reply, _ := json.Marshal(answer)
				_ = c.write(reply)
			}
			// notifications are ignored
		}
	}
}

// ---------------------------------------------------------------------------
// 2026-07-28 through mcp-go's client.

// exchange is one HTTP request the modern client made and the part of the
// answer it read.
type exchange struct {
	method      string      // JSON-RPC method of the request
	id          int64       // JSON-RPC id (0 for notifications)
	header      http.Header // request headers
	status      int
	contentType string
	mu          sync.Mutex
	body        bytes.Buffer
}

func (e *exchange) bytes() []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]byte(nil), e.body.Bytes()...)
}

// captureTransport records every request's JSON-RPC method and id and
// every byte of the answer the client reads.
type captureTransport struct {
	base http.RoundTripper
	mu   sync.Mutex
	log  []*exchange
}

func (c *captureTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ex := &exchange{header: req.Header.Clone()}
	if req.Body != nil && req.GetBody != nil {
		if rc, err := req.GetBody(); err == nil {
			b, _ := io.ReadAll(io.LimitReader(rc, maxBody))
			_ = rc.Close()
			var m struct {
				ID     json.RawMessage `json:"id"`
				Method string          `json:"method"`
			}
			if json.Unmarshal(b, &m) == nil {
				ex.method = m.Method
				ex.id, _ = strconv.ParseInt(string(bytes.TrimSpace(m.ID)), 10, 64)
			}
		}
	}
	resp, err := c.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	ex.status = resp.StatusCode
	ex.contentType = resp.Header.Get("Content-Type")
	resp.Body = &teeBody{rc: resp.Body, ex: ex}
	c.mu.Lock()
	c.log = append(c.log, ex)
	c.mu.Unlock()
	return resp, nil
}

// last returns the most recent exchange of a request with method.
func (c *captureTransport) last(method string) *exchange {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.log) - 1; i >= 0; i-- {
		if c.log[i].method == method && c.log[i].id != 0 {
			return c.log[i]
		}
	}
	return nil
}

type teeBody struct {
	rc io.ReadCloser
	ex *exchange
}

func (b *teeBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.ex.mu.Lock()
		b.ex.body.Write(p[:n])
		b.ex.mu.Unlock()
	}
	return n, err
}

func (b *teeBody) Close() error { return b.rc.Close() }

// modernClient is mcp-go's client on protocol version 2026-07-28.
type modernClient struct {
	c   *client.Client
	cap *captureTransport
}

// dialModern connects mcp-go's client to url with a bearer token and
// requires it to have negotiated 2026-07-28 (server/discover): its silent
// fallback to initialize would otherwise turn this into a session-era test.
func dialModern(ctx context.Context, url, token string) (*modernClient, error) {
	base := http.DefaultTransport.(*http.Transport).Clone()
	capt := &captureTransport{base: base}
	c, err := client.NewStreamableHttpClient(url,
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}),
		transport.WithHTTPBasicClient(&http.Client{Transport: capt, Timeout: callTimeout}))
	if err != nil {
		return nil, fmt.Errorf("mcp-go client: %w", err)
	}
	if err := c.Start(ctx); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("mcp-go client start: %w", err)
	}
	init := mcpgo.InitializeRequest{}
	init.Params.ProtocolVersion = modernVersion
	init.Params.ClientInfo = mcpgo.Implementation{Name: "gatewaystack-interop-modern", Version: "1"}
	// clientCapabilities, sent in every request's _meta.
	init.Params.Capabilities.Sampling = &mcpgo.SamplingCapability{}
	init.Params.Capabilities.Elicitation = &mcpgo.ElicitationCapability{}
	init.Params.Capabilities.Roots = &struct {
		ListChanged bool `json:"listChanged,omitempty"`
	}{}
	if _, err := c.Initialize(ctx, init); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("mcp-go client connect: %w", err)
	}
	if v := c.ProtocolVersion(); v != modernVersion {
		var detail string
		if ex := capt.last("server/discover"); ex != nil {
			detail = fmt.Sprintf(" (server/discover answered HTTP %d: %s)", ex.status, excerpt(ex.bytes()))
		}
		_ = c.Close()
		return nil, fmt.Errorf("mcp-go client negotiated %q, want %s%s", v, modernVersion, detail)
	}
	return &modernClient{c: c, cap: capt}, nil
}

func (m *modernClient) close() { _ = m.c.Close() }

func (m *modernClient) request(ctx context.Context, method string, params map[string]any) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	str := func(k string) string { s, _ := params[k].(string); return s }
	page := mcpgo.PaginatedRequest{}
	page.Params.Cursor = mcpgo.Cursor(str("cursor"))
	var err error
	switch method {
	case "tools/list":
		_, err = m.c.ListToolsByPage(ctx, mcpgo.ListToolsRequest{PaginatedRequest: page})
	case "resources/list":
		_, err = m.c.ListResourcesByPage(ctx, mcpgo.ListResourcesRequest{PaginatedRequest: page})
	case "resources/templates/list":
		_, err = m.c.ListResourceTemplatesByPage(ctx, mcpgo.ListResourceTemplatesRequest{PaginatedRequest: page})
	case "prompts/list":
		_, err = m.c.ListPromptsByPage(ctx, mcpgo.ListPromptsRequest{PaginatedRequest: page})
	case "tools/call":
		req := mcpgo.CallToolRequest{}
		req.Params.Name = str("name")
		req.Params.Arguments = params["arguments"]
		_, err = m.c.CallTool(ctx, req)
	case "resources/read":
		req := mcpgo.ReadResourceRequest{}
		req.Params.URI = str("uri")
		_, err = m.c.ReadResource(ctx, req)
	case "prompts/get":
		req := mcpgo.GetPromptRequest{}
		req.Params.Name = str("name")
		if a, ok := params["arguments"].(map[string]string); ok {
			req.Params.Arguments = a
		}
		_, err = m.c.GetPrompt(ctx, req)
	default:
		return nil, fmt.Errorf("modern client: method %s not wired", method)
	}
	ex := m.cap.last(method)
	if ex == nil {
		if err != nil {
			return nil, fmt.Errorf("mcp-go client: %w", err)
		}
		return nil, fmt.Errorf("mcp-go client sent no %s request", method)
	}
	// The client must really have spoken 2026-07-28 on the wire.
	if v, mm := ex.header.Get("Mcp-Protocol-Version"), ex.header.Get("Mcp-Method"); v != modernVersion || mm != method || ex.header.Get("Mcp-Session-Id") != "" {
		return nil, fmt.Errorf("mcp-go client sent %s with Mcp-Protocol-Version %q, Mcp-Method %q, Mcp-Session-Id %q: not a 2026-07-28 request",
			method, v, mm, ex.header.Get("Mcp-Session-Id"))
	}
	raw := ex.bytes()
	msg, ferr := findResponse(ex.contentType, raw, ex.id)
	switch {
	case ferr != nil && err != nil:
		return nil, fmt.Errorf("mcp-go client: %w (HTTP %d: %s)", err, ex.status, excerpt(raw))
	case ferr != nil:
		return nil, fmt.Errorf("HTTP %d: %w", ex.status, ferr)
	case msg.Error != nil:
		return nil, fmt.Errorf("HTTP %d: %w", ex.status, msg.Error)
	case err != nil:
		// The wire carried a result, but the real client refused it.
		return nil, fmt.Errorf("mcp-go client rejected the result: %w: %s", err, excerpt(msg.Result))
	}
	return msg.answer()
}
