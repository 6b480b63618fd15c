package mcp_test

// Test fixtures shared by the HTTP-level tests of the gateway: an RSA signing
// key with a JWKS endpoint we control (and whose fetches we count), a token
// minter that can also build every kind of bad token by hand, a recording
// upstream MCP server built on mcp-go, and a gateway assembled with
// gsmcp.Build from a real *config.Config, served on 127.0.0.1.

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/rs/zerolog"

	"github.com/gatewaystack/gatewaystack/config"
	"github.com/gatewaystack/gatewaystack/demo"
	gsmcp "github.com/gatewaystack/gatewaystack/mcp"
)

const (
	testIssuer     = "https://issuer.gatewaystack.test/"
	legacyVersion  = "2025-06-18"
	modernVersion  = mcpgo.ProtocolVersion20260728
	baselineScope  = "tool:read"
	stepUpScope    = "tool:write"
	entitleScope   = "notes:admin"
	browserOrigin  = "http://localhost:6274"
	upstreamRec    = "rec"
	upstreamNotes  = "notes"
	testBodyLimit  = 2048
	defaultTimeout = 5 * time.Second
)

// ---------------------------------------------------------------------------
// Keys, JWKS and tokens.

// rsaKeys are generated once per test binary: 2048-bit keys are slow to make
// (even more so under -race) and immutable once made.
var rsaKeys = sync.OnceValue(func() [2]*rsa.PrivateKey {
	var ks [2]*rsa.PrivateKey
	for i := range ks {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		ks[i] = k
	}
	return ks
})

// signingKey is the issuer's key (published in the JWKS); strangerKey is a
// key nobody published.
func signingKey() *rsa.PrivateKey  { return rsaKeys()[0] }
func strangerKey() *rsa.PrivateKey { return rsaKeys()[1] }

const signingKID = "gw-test-key-1"

// jwksServer serves the issuer's public key set and counts every fetch.
type jwksServer struct {
	URL     string
	fetches atomic.Int64
	body    []byte
	// fault makes the endpoint misbehave: jwksOK, jwks500, jwksGarbage or
	// jwksHang (no answer until the client gives up, at most 30 s).
	fault atomic.Int32
}

// JWKS endpoint behaviours.
const (
	jwksOK int32 = iota
	jwks500
	jwksGarbage
	jwksHang
)

func newJWKSServer(t testing.TB) *jwksServer {
	t.Helper()
	pub := signingKey().PublicKey
	doc := map[string]any{"keys": []map[string]any{{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": signingKID,
		"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes()),
	}}}
	js := &jwksServer{}
	var err error
	if js.body, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		js.fetches.Add(1)
		switch js.fault.Load() {
		case jwks500:
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		case jwksGarbage:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"keys":[{"kty":"RSA","n":"%%%","e":`))
			return
		case jwksHang:
			select {
			case <-r.Context().Done():
			case <-time.After(30 * time.Second):
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(js.body)
	}))
	t.Cleanup(srv.Close)
	js.URL = srv.URL + "/.well-known/jwks.json"
	return js
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signRS256 returns the RS256 signature of input by key.
func signRS256(t testing.TB, key *rsa.PrivateKey, input string) []byte {
	t.Helper()
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// compactJWS builds header.payload.signature by hand; sign gets the signing
// input and returns the raw signature.
func compactJWS(t testing.TB, header, claims any, sign func(input string) []byte) string {
	t.Helper()
	input := b64(mustJSON(t, header)) + "." + b64(mustJSON(t, claims))
	return input + "." + b64(sign(input))
}

// tokenMinter mints tokens for one gateway (its audience). It is used from
// subtests and goroutines alike, so it panics instead of failing a test: it
// cannot fail for the claim sets built here.
type tokenMinter struct {
	audience string
}

// claims returns a valid claim set for sub with the given scope.
func (m tokenMinter) claims(sub, scope string) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss": testIssuer, "aud": m.audience, "sub": sub,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		"jti": randomHex(8), "org_id": "acme", "client_id": "test-client",
	}
	if scope != "" {
		c["scope"] = scope
	}
	return c
}

// sign signs claims with the issuer's key under the published kid.
func (m tokenMinter) sign(claims map[string]any) string {
	h, err := json.Marshal(map[string]any{"alg": "RS256", "typ": "JWT", "kid": signingKID})
	if err != nil {
		panic(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		panic(err)
	}
	input := b64(h) + "." + b64(c)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, signingKey(), crypto.SHA256, sum[:])
	if err != nil {
		panic(err)
	}
	return input + "." + b64(sig)
}

// token returns a valid token for sub with scope.
func (m tokenMinter) token(sub, scope string) string { return m.sign(m.claims(sub, scope)) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ---------------------------------------------------------------------------
// Audit capture.

// syncBuffer is a goroutine-safe audit writer.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines decodes every audit line; a line that is not a JSON object fails t.
func (b *syncBuffer) lines(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(b.String()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("audit line is not a JSON object: %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// forRequest returns the audit lines of one request (by X-Request-Id),
// waiting up to 3 s for the first to be written.
func (b *syncBuffer) forRequest(t testing.TB, requestID string) []map[string]any {
	t.Helper()
	if requestID == "" {
		t.Fatal("response has no X-Request-Id")
	}
	// Audit sinks are asynchronous: wait (bounded) for the line to land.
	deadline := time.Now().Add(3 * time.Second)
	for {
		var out []map[string]any
		for _, l := range b.lines(t) {
			if l["request_id"] == requestID {
				out = append(out, l)
			}
		}
		if len(out) > 0 || time.Now().After(deadline) {
			return out
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// The recording upstream.

// recordedHTTP is one HTTP request an upstream received, as it arrived.
type recordedHTTP struct {
	Method string
	Header http.Header
	Body   []byte
}

// recordedCall is one tools/call a tool handler ran, with the headers the
// transport handed it through WithHTTPContextFunc.
type recordedCall struct {
	Tool   string
	Header http.Header
	Args   map[string]any
}

type headerCtxKey struct{}

// recorder is a real mcp-go MCP server that records every raw HTTP request
// (headers and body) and every tool call.
type recorder struct {
	URL   string // the MCP endpoint
	calls atomic.Int64

	mu       sync.Mutex
	requests []recordedHTTP
	toolRuns []recordedCall
}

// Tool definitions of the recording upstream. fancy carries fields that
// mcp-go's typed client structs would drop or reshape.
var (
	fancyInputSchema = json.RawMessage(`{"type":"object","$defs":{"unit":{"enum":["c","f"]}},` +
		`"properties":{"city":{"type":"string","x-vendor-hint":"a <city> & region"},"unit":{"$ref":"#/$defs/unit"}},` +
		`"required":["city"],"additionalProperties":false,"x-extension":{"nested":[1,2.5,"three",null,true]}}`)
	fancyOutputSchema = json.RawMessage(`{"type":"object","properties":{"temp":{"type":"number"},"unit":{"type":"string"}},"required":["temp"]}`)
)

// newRecorder starts a recording upstream; opts go to mcp-go's
// StreamableHTTPServer (e.g. a stateful session manager).
func newRecorder(t testing.TB, opts ...server.StreamableHTTPOption) *recorder {
	t.Helper()
	rec := &recorder{}
	s := server.NewMCPServer("recorder", "1.0.0", server.WithToolCapabilities(false))

	handler := func(name string, result func(req mcpgo.CallToolRequest) *mcpgo.CallToolResult) server.ToolHandlerFunc {
		return func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
			rec.calls.Add(1)
			h, _ := ctx.Value(headerCtxKey{}).(http.Header)
			rec.mu.Lock()
			rec.toolRuns = append(rec.toolRuns, recordedCall{Tool: name, Header: h, Args: req.GetArguments()})
			rec.mu.Unlock()
			return result(req), nil
		}
	}
	echo := func(req mcpgo.CallToolRequest) *mcpgo.CallToolResult {
		args := req.GetArguments()
		return &mcpgo.CallToolResult{
			Result: mcpgo.Result{Meta: mcpgo.NewMetaFromMap(map[string]any{
				"vendor.example/trace": "t-123", "nested": map[string]any{"a": []any{1, "b", nil}},
			})},
			Content: []mcpgo.Content{mcpgo.TextContent{Type: "text", Text: fmt.Sprintf("echo %v", args["text"]),
				Annotated: mcpgo.Annotated{Annotations: &mcpgo.Annotations{Audience: []mcpgo.Role{"user"}}},
				Meta:      mcpgo.NewMetaFromMap(map[string]any{"vendor.example/part": 1})}},
			StructuredContent: map[string]any{"echoed": args, "html": "<b>&amp;</b>", "big": 12345678901234567},
		}
	}
	ok := func(req mcpgo.CallToolRequest) *mcpgo.CallToolResult {
		return mcpgo.NewToolResultText("ok " + req.Params.Name)
	}
	add := func(tool mcpgo.Tool, res func(mcpgo.CallToolRequest) *mcpgo.CallToolResult) {
		s.AddTool(tool, handler(tool.Name, res))
	}
	add(mcpgo.NewTool("echo", mcpgo.WithDescription("Echo the arguments back."),
		mcpgo.WithString("text", mcpgo.Description("what to echo")),
		mcpgo.WithString("marker", mcpgo.Description("test marker"))), echo)
	fancy := mcpgo.NewTool("fancy",
		mcpgo.WithDescription("A tool with unusual fields."),
		mcpgo.WithTitleAnnotation("Fancy <weather> & co"),
		mcpgo.WithReadOnlyHintAnnotation(true),
		mcpgo.WithRawInputSchema(fancyInputSchema),
		mcpgo.WithRawOutputSchema(fancyOutputSchema),
	)
	fancy.InputSchema = mcpgo.ToolInputSchema{} // the raw schema replaces it
	fancy.Title = "Fancy tool"
	fancy.Meta = mcpgo.NewMetaFromMap(map[string]any{"vendor.example/ui": map[string]any{"icon": "sun", "order": 3}})
	add(fancy, func(mcpgo.CallToolRequest) *mcpgo.CallToolResult {
		return mcpgo.NewToolResultStructured(map[string]any{"temp": 21.5, "unit": "c"}, `{"temp":21.5,"unit":"c"}`)
	})
	for _, name := range []string{"write_thing", "purge", "unlisted", "adder", "admin_panel"} {
		add(mcpgo.NewTool(name, mcpgo.WithDescription("The "+name+" tool.")), ok)
	}

	streamable := server.NewStreamableHTTPServer(s, append([]server.StreamableHTTPOption{
		server.WithEndpointPath("/mcp"),
		server.WithHTTPContextFunc(func(ctx context.Context, r *http.Request) context.Context {
			return context.WithValue(ctx, headerCtxKey{}, r.Header.Clone())
		}),
	}, opts...)...)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.requests = append(rec.requests, recordedHTTP{Method: r.Method, Header: r.Header.Clone(), Body: body})
		rec.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		streamable.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	rec.URL = srv.URL + "/mcp"
	return rec
}

// httpRequests returns a copy of every raw request received so far.
func (r *recorder) httpRequests() []recordedHTTP {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recordedHTTP(nil), r.requests...)
}

// runs returns the tool calls whose arguments carry marker.
func (r *recorder) runs(marker string) []recordedCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []recordedCall
	for _, c := range r.toolRuns {
		if c.Args["marker"] == marker {
			out = append(out, c)
		}
	}
	return out
}

// toolRunsNamed counts the runs of one tool.
func (r *recorder) toolRunsNamed(tool string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.toolRuns {
		if c.Tool == tool {
			n++
		}
	}
	return n
}

// sawMarker reports whether any raw request body contained marker.
func (r *recorder) sawMarker(marker string) bool {
	for _, req := range r.httpRequests() {
		if bytes.Contains(req.Body, []byte(marker)) {
			return true
		}
	}
	return false
}

// newSlowUpstream is an mcp-go server whose "nap" tool sleeps far longer than
// any upstream timeout in these tests (until the caller goes away).
func newSlowUpstream(t testing.TB) string {
	t.Helper()
	s := server.NewMCPServer("slow", "1.0.0", server.WithToolCapabilities(false))
	s.AddTool(mcpgo.NewTool("nap", mcpgo.WithDescription("Sleeps.")), func(ctx context.Context, _ mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
		}
		return mcpgo.NewToolResultText("woke up"), nil
	})
	srv := httptest.NewServer(server.NewStreamableHTTPServer(s, server.WithEndpointPath("/mcp")))
	t.Cleanup(srv.Close)
	return srv.URL + "/mcp"
}

// closedPortURL returns an MCP URL on 127.0.0.1 where nothing listens.
func closedPortURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "http://" + addr + "/mcp"
}

// ---------------------------------------------------------------------------
// The gateway.

// gateway is a running gateway built by gsmcp.Build.
type gateway struct {
	URL      string // base URL, = public_url
	MCP      string // the MCP endpoint (= resource = audience)
	PRM      string // the path-suffixed metadata URL
	jwks     *jwksServer
	audit    *syncBuffer
	minter   tokenMinter
	srv      *gsmcp.Server
	client   *http.Client
	upstream *recorder // the "rec" upstream, when present
}

// gatewayOptions adjusts the default test configuration.
type gatewayOptions struct {
	// upstreams replaces the default single "rec" upstream.
	upstreams []config.Upstream
	// policy replaces the default policy.
	policy map[string]config.ToolRule
	// configure runs last, before SetDefaults.
	configure func(*config.Config)
	// auditTo replaces the audit buffer (benchmarks discard audit lines).
	auditTo io.Writer
	// pathPrefix is appended to the public URL (e.g. "/gw": the MCP
	// endpoint is then /gw/mcp).
	pathPrefix string
	// demoAdminToken is handed to BuildOptions.DemoAdminToken.
	demoAdminToken func(ctx context.Context) (string, error)
}

// defaultPolicy: exact names for the rec upstream, so rec__unlisted has no
// entry at all, and two overlapping globs (rec__ad* and rec__admin_*) to
// show that the longer literal prefix decides.
func defaultPolicy() map[string]config.ToolRule {
	return map[string]config.ToolRule{
		"rec__echo":               {Scopes: []string{baselineScope}},
		"rec__fancy":              {Scopes: []string{baselineScope}},
		"rec__write_thing":        {Scopes: []string{stepUpScope}},
		"rec__purge":              {Scopes: []string{entitleScope}},
		"rec__ad*":                {Scopes: []string{baselineScope}},
		"rec__admin_*":            {Scopes: []string{entitleScope}},
		"notes__*":                {Scopes: []string{baselineScope}},
		"notes__write_note":       {Scopes: []string{stepUpScope}},
		"notes__delete_all_notes": {Scopes: []string{entitleScope}},
	}
}

func newGateway(t testing.TB, o gatewayOptions) *gateway {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	g := &gateway{URL: base, MCP: base + o.pathPrefix + "/mcp", PRM: base + "/.well-known/oauth-protected-resource" + o.pathPrefix + "/mcp",
		jwks: newJWKSServer(t), audit: &syncBuffer{}}
	g.minter = tokenMinter{audience: g.MCP}

	cfg := &config.Config{Listen: ln.Addr().String(), PublicURL: base + o.pathPrefix}
	cfg.Auth.Issuer = testIssuer
	cfg.Auth.Audience = g.MCP
	cfg.Auth.JWKSURI = g.jwks.URL
	cfg.Outbound.AllowHTTPLoopback = true // the test JWKS is plain http on loopback
	cfg.Auth.BaselineScopes = []string{baselineScope}
	cfg.Auth.StepUpScopes = []string{stepUpScope}
	cfg.Auth.JWKSRefetchCooldown = time.Minute
	cfg.Server.MaxBodyBytes = testBodyLimit
	cfg.Server.UpstreamTimeout = defaultTimeout
	cfg.Policy.Tools = o.policy
	if cfg.Policy.Tools == nil {
		cfg.Policy.Tools = defaultPolicy()
	}
	cfg.Upstreams = o.upstreams
	if cfg.Upstreams == nil {
		g.upstream = newRecorder(t)
		cfg.Upstreams = []config.Upstream{{Name: upstreamRec, MCP: &config.MCPUpstream{URL: g.upstream.URL}}}
		// The demo notes server: per-user data keyed by the injected identity.
		notes := httptest.NewServer(demo.NewNotes(demo.NotesOptions{}).Handler())
		t.Cleanup(notes.Close)
		cfg.Upstreams = append(cfg.Upstreams, config.Upstream{Name: upstreamNotes, MCP: &config.MCPUpstream{URL: notes.URL + demo.NotesEndpoint}})
	}
	if o.configure != nil {
		o.configure(cfg)
	}
	cfg.SetDefaults()

	var auditTo io.Writer = g.audit
	if o.auditTo != nil {
		auditTo = o.auditTo
	}
	srv, err := gsmcp.Build(context.Background(), cfg, gsmcp.BuildOptions{
		Version: "test", Logger: zerolog.Nop(), AuditWriter: auditTo, DemoAdminToken: o.demoAdminToken,
	})
	if err != nil {
		_ = ln.Close()
		t.Fatalf("build gateway: %v", err)
	}
	g.srv = srv
	hs := httptest.NewUnstartedServer(srv.Gateway.Handler())
	_ = hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Close(ctx)
		hs.CloseClientConnections()
		hs.Close()
	})
	g.client = &http.Client{Timeout: 20 * time.Second}
	return g
}

// ---------------------------------------------------------------------------
// Raw HTTP and JSON-RPC.

// response is an HTTP answer with its body read.
type response struct {
	*http.Response
	body []byte
}

// rpcMessage is a decoded JSON-RPC response.
type rpcMessage struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

// rpc decodes the body as one JSON-RPC message (plain JSON or the last
// message of an SSE stream).
func (r response) rpc(t testing.TB) rpcMessage {
	t.Helper()
	data := r.body
	if strings.HasPrefix(r.Header.Get("Content-Type"), "text/event-stream") {
		var last []byte
		for _, line := range bytes.Split(data, []byte("\n")) {
			if d, ok := bytes.CutPrefix(line, []byte("data:")); ok {
				last = bytes.TrimSpace(d)
			}
		}
		data = last
	}
	var m rpcMessage
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("status %d: body is not a JSON-RPC message: %q: %v", r.StatusCode, r.body, err)
	}
	if m.JSONRPC != "2.0" {
		t.Fatalf("status %d: body is not a JSON-RPC 2.0 message: %q", r.StatusCode, r.body)
	}
	return m
}

// rpcError asserts the body is a JSON-RPC error and returns it.
func (r response) rpcError(t testing.TB) (code int, message string, data json.RawMessage) {
	t.Helper()
	m := r.rpc(t)
	if m.Error == nil {
		t.Fatalf("status %d: want a JSON-RPC error, got %s", r.StatusCode, r.body)
	}
	return m.Error.Code, m.Error.Message, m.Error.Data
}

// result asserts a 200 JSON-RPC result and returns it.
func (r response) result(t testing.TB) json.RawMessage {
	t.Helper()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", r.StatusCode, r.body)
	}
	m := r.rpc(t)
	if m.Error != nil || len(m.Result) == 0 {
		t.Fatalf("want a JSON-RPC result, got %s", r.body)
	}
	return m.Result
}

// do sends one request and reads the whole answer; a transport error fails
// t. Only for the test's own goroutine: elsewhere use send.
func do(t testing.TB, c *http.Client, method, url string, header http.Header, body []byte) response {
	t.Helper()
	r, err := send(c, method, url, header, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// send sends one request and reads the whole answer.
func send(c *http.Client, method, url string, header http.Header, body []byte) (response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	// A GET may open an event stream that never ends: bound it, so a
	// gateway that wrongly opens one fails the test instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if method != http.MethodGet {
		ctx = context.Background()
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return response{}, err
	}
	for k, vs := range header {
		req.Header[k] = append([]string(nil), vs...)
	}
	if host := header.Get("Host"); host != "" {
		req.Host = host
	}
	resp, err := c.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: read body: %w", method, url, err)
	}
	return response{Response: resp, body: b}, nil
}

var rpcIDs atomic.Int64

// rpcBody encodes a JSON-RPC request with a fresh numeric id.
func rpcBody(t testing.TB, method string, params any) []byte {
	t.Helper()
	m := map[string]any{"jsonrpc": "2.0", "id": rpcIDs.Add(1), "method": method}
	if params != nil {
		m["params"] = params
	}
	return mustJSON(t, m)
}

// hdr builds a header set for a JSON-RPC POST; pairs are name, value.
func hdr(pairs ...string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json, text/event-stream")
	for i := 0; i+1 < len(pairs); i += 2 {
		h.Add(pairs[i], pairs[i+1])
	}
	return h
}

func bearer(token string) string { return "Bearer " + token }

// post sends a JSON-RPC request to the gateway's MCP endpoint.
func (g *gateway) post(t testing.TB, token, sessionID string, body []byte, extra ...string) response {
	t.Helper()
	h := hdr(extra...)
	if token != "" {
		h.Set("Authorization", bearer(token))
	}
	if sessionID != "" {
		h.Set("Mcp-Session-Id", sessionID)
		h.Set("Mcp-Protocol-Version", legacyVersion)
	}
	return do(t, g.client, http.MethodPost, g.MCP, h, body)
}

// initialize runs the session-era handshake and returns the session id.
func (g *gateway) initialize(t testing.TB, token string) string {
	t.Helper()
	r := g.post(t, token, "", rpcBody(t, "initialize", map[string]any{
		"protocolVersion": legacyVersion, "capabilities": map[string]any{},
		"clientInfo": map[string]any{"name": "gateway-test", "version": "1"},
	}))
	r.result(t)
	sid := r.Header.Get("Mcp-Session-Id")
	if sid == "" {
		t.Fatalf("initialize: no Mcp-Session-Id in the answer: %v", r.Header)
	}
	n := g.post(t, token, sid, mustJSON(t, map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized"}))
	if n.StatusCode != http.StatusAccepted {
		t.Fatalf("notifications/initialized: status %d: %s", n.StatusCode, n.body)
	}
	return sid
}

// call sends a session-era tools/call.
func (g *gateway) call(t testing.TB, token, sessionID, tool string, args map[string]any) response {
	t.Helper()
	return g.post(t, token, sessionID, rpcBody(t, "tools/call", map[string]any{"name": tool, "arguments": args}))
}

// list sends a session-era tools/list.
func (g *gateway) list(t testing.TB, token, sessionID string) response {
	t.Helper()
	return g.post(t, token, sessionID, rpcBody(t, "tools/list", nil))
}

// modernParams adds the 2026-07-28 _meta protocol version to params.
func modernParams(params map[string]any) map[string]any {
	if params == nil {
		params = map[string]any{}
	}
	params["_meta"] = map[string]any{mcpgo.MetaKeyProtocolVersion: modernVersion}
	return params
}

// modernCall sends a stateless (2026-07-28) tools/call with matching headers.
func (g *gateway) modernCall(t testing.TB, token, tool string, args map[string]any, extra ...string) response {
	t.Helper()
	h, body := g.modernRequest(token, tool, args, extra...)
	return do(t, g.client, http.MethodPost, g.MCP, h, body)
}

// modernRequest builds the headers and body of a stateless tools/call.
func (g *gateway) modernRequest(token, tool string, args map[string]any, extra ...string) (http.Header, []byte) {
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": rpcIDs.Add(1), "method": "tools/call",
		"params": modernParams(map[string]any{"name": tool, "arguments": args})})
	if err != nil {
		panic(err) // plain maps of strings always encode
	}
	h := hdr(append([]string{"Mcp-Protocol-Version", modernVersion, "Mcp-Method", "tools/call", "Mcp-Name", tool}, extra...)...)
	if token != "" {
		h.Set("Authorization", bearer(token))
	}
	return h, body
}

// toolNames returns the names of a tools/list result.
func toolNames(t testing.TB, result json.RawMessage) []string {
	t.Helper()
	var res struct {
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(result, &res); err != nil {
		t.Fatalf("tools/list result: %v: %s", err, result)
	}
	names := make([]string, len(res.Tools))
	for i, tl := range res.Tools {
		names[i] = tl.Name
	}
	return names
}

// jsonEqual reports whether two JSON texts are semantically equal (numbers
// compared by their literal text, key order ignored).
func jsonEqual(t testing.TB, a, b []byte) bool {
	t.Helper()
	return reflect.DeepEqual(decodeJSON(t, a), decodeJSON(t, b))
}

func decodeJSON(t testing.TB, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not JSON: %v: %s", err, b)
	}
	return v
}

// ---------------------------------------------------------------------------
// WWW-Authenticate.

// challenge is a parsed Bearer challenge.
type challenge struct {
	Scheme string
	Params map[string]string
}

// parseChallenge parses one challenge strictly: auth-params separated by
// ", ", values quoted strings that must not contain '"' or '\'.
func parseChallenge(t testing.TB, v string) challenge {
	t.Helper()
	scheme, rest, _ := strings.Cut(v, " ")
	c := challenge{Scheme: scheme, Params: map[string]string{}}
	for rest != "" {
		name, after, ok := strings.Cut(rest, `="`)
		if !ok || name == "" || strings.ContainsAny(name, ` ,"`) {
			t.Fatalf("malformed challenge %q at %q", v, rest)
		}
		end := strings.IndexByte(after, '"')
		if end < 0 {
			t.Fatalf("unterminated quoted value in %q", v)
		}
		val := after[:end]
		if strings.ContainsRune(val, '\\') {
			t.Fatalf("challenge value contains a backslash: %q", v)
		}
		if _, dup := c.Params[name]; dup {
			t.Fatalf("challenge repeats %s: %q", name, v)
		}
		c.Params[name] = val
		rest = after[end+1:]
		if rest != "" {
			var ok bool
			if rest, ok = strings.CutPrefix(rest, ", "); !ok {
				t.Fatalf("malformed challenge %q: expected \", \" before %q", v, rest)
			}
		}
	}
	return c
}

// wantChallenge asserts the response's single WWW-Authenticate header is a
// Bearer challenge with exactly the given params.
func wantChallenge(t testing.TB, r response, want map[string]string) {
	t.Helper()
	vs := r.Header.Values("WWW-Authenticate")
	if len(vs) != 1 {
		t.Fatalf("want exactly one WWW-Authenticate header, got %q", vs)
	}
	c := parseChallenge(t, vs[0])
	if c.Scheme != "Bearer" {
		t.Fatalf("challenge scheme = %q, want Bearer: %q", c.Scheme, vs[0])
	}
	// error_description accompanies every error code, and only error codes;
	// its wording is not pinned (the parser already refused '"' and '\').
	desc, hasDesc := c.Params["error_description"]
	_, hasError := want["error"]
	switch {
	case hasError && (!hasDesc || desc == ""):
		t.Errorf("challenge with an error code lacks error_description: %q", vs[0])
	case !hasError && hasDesc:
		t.Errorf("challenge without an error code has error_description: %q", vs[0])
	}
	delete(c.Params, "error_description")
	if !reflect.DeepEqual(c.Params, want) {
		t.Fatalf("challenge params:\n got  %q\n want %q\n header %q", c.Params, want, vs[0])
	}
}
