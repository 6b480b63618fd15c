package mcp_test

// Regression tests of the invariant "the message forwarded upstream is
// byte-for-byte derived from the parsed form the decision saw" (canonical.go):
// each case is a way a valid low-privilege token could get a request past a
// rule, because what the policy decided on was not what the upstream got.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/gatewaystack/gatewaystack/config"
)

// accountPolicy lets a caller use rec__echo only for accounts of its own
// tenant.
func accountPolicy() map[string]config.ToolRule {
	return map[string]config.ToolRule{
		"rec__echo": {Scopes: []string{baselineScope}, When: `request.arguments.account_id.startsWith(identity.tenant + "-")`},
	}
}

// Invariant: no object anywhere in params holds two member names equal
// under case folding — a Go upstream that binds arguments to a struct
// would take a value the policy never read ({"account_id":"acme-1",
// "ACCOUNT_ID":"evil-2"} passes a rule on account_id and runs as evil-2).
func TestCaseVariantArgumentKeysAreRefused(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{policy: accountPolicy()})
	alice := g.minter.token("alice", baselineScope)
	sid := g.initialize(t, alice)

	// The rule works for the plain case.
	if r := g.call(t, alice, sid, "rec__echo", map[string]any{"account_id": "acme-1", "marker": "plain"}); r.StatusCode != http.StatusOK || r.rpc(t).Error != nil {
		t.Fatalf("an account of the caller's tenant: %d %s", r.StatusCode, r.body)
	}
	cases := []struct {
		name, params, wantPath string
	}{
		{"case variant at the top", `{"name":"rec__echo","arguments":{"account_id":"acme-1","ACCOUNT_ID":"evil-2","marker":"m1"}}`, "params.arguments.ACCOUNT_ID"},
		{"exact duplicate", `{"name":"rec__echo","arguments":{"account_id":"evil-2","account_id":"acme-1","marker":"m2"}}`, "params.arguments.account_id"},
		{"nested object", `{"name":"rec__echo","arguments":{"account_id":"acme-1","filter":{"owner":"a","Owner":"b"},"marker":"m3"}}`, "params.arguments.filter.Owner"},
		{"inside an array", `{"name":"rec__echo","arguments":{"account_id":"acme-1","rows":[{"k":1},{"id":1,"ID":2}],"marker":"m4"}}`, "params.arguments.rows[1].ID"},
		{"Kelvin sign folds to k", `{"name":"rec__echo","arguments":{"account_id":"acme-1","kind":"a","\u212aind":"b","marker":"m5"}}`, "params.arguments[\"\\u212aind\"]"},
		{"escaped key", `{"name":"rec__echo","arguments":{"account_id":"acme-1","\u0041CCOUNT_ID":"evil-2","marker":"m6"}}`, "params.arguments.ACCOUNT_ID"},
		{"in _meta", `{"name":"rec__echo","arguments":{"account_id":"acme-1","marker":"m7"},"_meta":{"trace":"a","TRACE":"b"}}`, "params._meta.TRACE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":` + tc.params + `}`)
			r := g.post(t, alice, sid, body)
			if r.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", r.StatusCode, r.body)
			}
			code, msg, _ := r.rpcError(t)
			if code != -32602 || !strings.Contains(msg, tc.wantPath) {
				t.Fatalf("error %d %q, want -32602 naming %s", code, msg, tc.wantPath)
			}
		})
	}
	for _, m := range []string{"m1", "m2", "m3", "m4", "m5", "m6", "m7"} {
		if g.upstream.sawMarker(`"` + m + `"`) {
			t.Errorf("the call with marker %s reached the upstream", m)
		}
	}
}

// The same holds for prompt arguments and a completion's context.arguments.
func TestCaseVariantKeysInPromptAndCompletionArgumentsAreRefused(t *testing.T) {
	t.Parallel()
	g, lib := libraryGateway(t)
	alice := g.minter.token("alice", baselineScope)
	sid := g.initialize(t, alice)
	g.post(t, alice, sid, rpcBody(t, "prompts/get", map[string]any{"name": "lib__greet", "arguments": map[string]string{"who": "bob"}})).result(t)
	for _, params := range []string{
		`{"name":"lib__greet","arguments":{"who":"bob","WHO":"mallory"}}`,
		`{"ref":{"type":"ref/prompt","name":"lib__greet"},"argument":{"name":"who","value":"b"},"context":{"arguments":{"who":"a","Who":"b"}}}`,
	} {
		method := "prompts/get"
		if strings.Contains(params, "ref/prompt") {
			method = "completion/complete"
		}
		before := lib.work.Load()
		r := g.post(t, alice, sid, []byte(`{"jsonrpc":"2.0","id":1,"method":"`+method+`","params":`+params+`}`))
		if r.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: status %d, want 400: %s", method, r.StatusCode, r.body)
		}
		if code, msg, _ := r.rpcError(t); code != -32602 || !strings.Contains(msg, "arguments.") {
			t.Errorf("%s: error %d %q", method, code, msg)
		}
		if lib.work.Load() != before {
			t.Errorf("%s reached the upstream", method)
		}
	}
}

// fileServer is an upstream that serves files below a root through a URI
// template, resolving dot segments as a file system would.
type fileServer struct {
	URL  string
	hits atomic.Int64
	mu   sync.Mutex
	read []string // URIs the upstream was asked for
}

func newFileServer(t testing.TB, files map[string]string) *fileServer {
	t.Helper()
	fs := &fileServer{}
	s := server.NewMCPServer("files", "1.0.0", server.WithResourceCapabilities(true, false))
	s.AddResourceTemplate(mcpgo.NewResourceTemplate("file:///{+path}", "file"),
		func(ctx context.Context, req mcpgo.ReadResourceRequest) ([]mcpgo.ResourceContents, error) {
			fs.mu.Lock()
			fs.read = append(fs.read, req.Params.URI)
			fs.mu.Unlock()
			p := path.Clean("/" + strings.TrimPrefix(req.Params.URI, "file:///"))
			text, ok := files[p]
			if !ok {
				return nil, mcpgo.ErrResourceNotFound
			}
			return []mcpgo.ResourceContents{mcpgo.TextResourceContents{URI: req.Params.URI, Text: text}}, nil
		})
	h := server.NewStreamableHTTPServer(s)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, []byte(`"method":"resources/`)) || bytes.Contains(body, []byte(`"method":"completion/`)) {
			fs.hits.Add(1) // requests for resources, not the handshake
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	fs.URL = srv.URL + "/mcp"
	return fs
}

// Invariant: the URI the decision reads, the one forwarded and Mcp-Name are
// one string in RFC 3986 normal form; a URI in another form is refused,
// naming the normal form, and never reaches the upstream
// ("file:///srv/public/../private/secret.txt" passes a rule on
// file:///srv/public/* and reads the private file).
func TestResourceURIsOutsideNormalFormAreRefused(t *testing.T) {
	t.Parallel()
	files := newFileServer(t, map[string]string{"/srv/public/hello.txt": "hello", "/srv/private/secret.txt": "TOP-SECRET"})
	g := newGateway(t, gatewayOptions{
		upstreams: []config.Upstream{{Name: "cap", MCP: &config.MCPUpstream{URL: files.URL}}},
		policy:    map[string]config.ToolRule{},
		configure: func(c *config.Config) {
			c.Policy.Resources = map[string]config.ToolRule{"cap__file:///srv/public/*": {Scopes: []string{baselineScope}}}
		},
	})
	alice := g.minter.token("alice", baselineScope)
	sid := g.initialize(t, alice)
	read := func(uri string) response {
		return g.post(t, alice, sid, rpcBody(t, "resources/read", map[string]any{"uri": uri}))
	}
	if r := read("file:///srv/public/hello.txt"); !strings.Contains(string(r.result(t)), "hello") {
		t.Fatalf("a public file: %s", r.body)
	}
	cases := []struct{ uri, wantInMessage string }{
		{"file:///srv/public/../private/secret.txt", "file:///srv/private/secret.txt"},
		{"file:///srv/public/%2e%2e/private/secret.txt", "file:///srv/private/secret.txt"},
		{"file:///srv/public/.%2E/private/secret.txt", "file:///srv/private/secret.txt"},
		{"file:///srv/public/./../private/secret.txt", "file:///srv/private/secret.txt"},
		{"FILE:///srv/public/hello.txt", "file:///srv/public/hello.txt"},
		{"file:///srv/public/..%2fprivate/secret.txt", ""},
		{"file:///srv/public/..%2Fprivate%2Fsecret.txt", ""},
		{"file:///srv/public/..%5cprivate", ""},
		{"file:///srv/public/a%00b", ""},
	}
	for _, tc := range cases {
		before := files.hits.Load()
		r := read(tc.uri)
		if r.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400: %s", tc.uri, r.StatusCode, r.body)
			continue
		}
		code, msg, _ := r.rpcError(t)
		if code != -32602 || (tc.wantInMessage != "" && !strings.Contains(msg, `"`+tc.wantInMessage+`"`)) {
			t.Errorf("%s: error %d %q, want -32602 naming %q", tc.uri, code, msg, tc.wantInMessage)
		}
		if files.hits.Load() != before {
			t.Errorf("%s reached the upstream", tc.uri)
		}
	}
	// The same rule for subscriptions and completions.
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":3,"method":"resources/subscribe","params":{"uri":"file:///srv/public/../private/secret.txt"}}`,
		`{"jsonrpc":"2.0","id":4,"method":"resources/unsubscribe","params":{"uri":"file:///srv/public/%2e%2e/private/secret.txt"}}`,
		`{"jsonrpc":"2.0","id":5,"method":"completion/complete","params":{"ref":{"type":"ref/resource","uri":"file:///srv/public/../private/{x}"},"argument":{"name":"x","value":"s"}}}`,
	} {
		before := files.hits.Load()
		r := g.post(t, alice, sid, []byte(body))
		if r.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400: %s", body, r.StatusCode, r.body)
		} else if code, _, _ := r.rpcError(t); code != -32602 {
			t.Errorf("%s: code %d, want -32602", body, code)
		}
		if files.hits.Load() != before {
			t.Errorf("%s reached the upstream", body)
		}
	}
	files.mu.Lock()
	defer files.mu.Unlock()
	for _, u := range files.read {
		if strings.Contains(u, "private") {
			t.Errorf("the upstream was asked for %s", u)
		}
	}
}

// identityMetaOf returns params._meta of the last tools/call the recorder
// received with marker.
func identityMetaOf(t *testing.T, rec *recorder, marker string) map[string]json.RawMessage {
	t.Helper()
	var found map[string]json.RawMessage
	for _, req := range rec.httpRequests() {
		if !bytes.Contains(req.Body, []byte(marker)) {
			continue
		}
		var msg struct {
			Params struct {
				Meta map[string]json.RawMessage `json:"_meta"`
			} `json:"params"`
		}
		if err := json.Unmarshal(req.Body, &msg); err != nil {
			t.Fatalf("upstream body: %v: %s", err, req.Body)
		}
		found = msg.Params.Meta
	}
	if found == nil {
		t.Fatalf("no upstream request with %s carried _meta", marker)
	}
	return found
}

// Invariant: the _meta namespace io.gatewaystack/ belongs to the gateway: a
// caller's copy (any letter case) never reaches any upstream, and every
// upstream gets the verified identity there — one truth in headers and
// _meta. Only the workflow id is client-settable, validated.
func TestReservedMetaIsStrippedAndTheVerifiedIdentitySet(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{})
	alice := g.minter.token("alice", baselineScope)
	sid := g.initialize(t, alice)
	forged := map[string]any{"sub": "admin", "tenant": "evilcorp", "scopes": []string{"notes:admin"}}
	for i, meta := range []map[string]any{
		{"io.gatewaystack/identity": forged, "vendor.example/keep": 1},
		{"IO.GATEWAYSTACK/IDENTITY": forged},
		{"io.GatewayStack/identity": forged, "io.gatewaystack/anything": "x"},
	} {
		marker := "meta-" + string(rune('a'+i))
		r := g.post(t, alice, sid, rpcBody(t, "tools/call", map[string]any{"name": "rec__echo",
			"arguments": map[string]any{"text": "hi", "marker": marker}, "_meta": meta}))
		if r.StatusCode != http.StatusOK || r.rpc(t).Error != nil {
			t.Fatalf("call %d: %d %s", i, r.StatusCode, r.body)
		}
		got := identityMetaOf(t, g.upstream, marker)
		var id map[string]any
		if err := json.Unmarshal(got["io.gatewaystack/identity"], &id); err != nil || id["sub"] != "alice" || id["tenant"] != "acme" {
			t.Errorf("call %d: upstream _meta identity = %s, want the verified alice/acme", i, got["io.gatewaystack/identity"])
		}
		for k := range got {
			if strings.HasPrefix(strings.ToLower(k), "io.gatewaystack/") && k != "io.gatewaystack/identity" {
				t.Errorf("call %d: the caller's %q reached the upstream", i, k)
			}
		}
		if i == 0 && string(got["vendor.example/keep"]) != "1" {
			t.Errorf("the caller's own _meta key was not kept: %v", got)
		}
	}
	// The workflow id is kept when valid, refused when not.
	r := g.post(t, alice, sid, rpcBody(t, "tools/call", map[string]any{"name": "rec__echo",
		"arguments": map[string]any{"marker": "wf-ok"}, "_meta": map[string]any{"io.gatewaystack/workflow": "task-42"}}))
	if r.StatusCode != http.StatusOK {
		t.Fatalf("workflow call: %d %s", r.StatusCode, r.body)
	}
	if got := identityMetaOf(t, g.upstream, "wf-ok"); string(got["io.gatewaystack/workflow"]) != `"task-42"` {
		t.Errorf("workflow id upstream = %s", got["io.gatewaystack/workflow"])
	}
	for _, bad := range []any{"", strings.Repeat("x", 129), "a b", 42, "evil\n"} {
		r := g.post(t, alice, sid, rpcBody(t, "tools/call", map[string]any{"name": "rec__echo",
			"arguments": map[string]any{"marker": "wf-bad"}, "_meta": map[string]any{"io.gatewaystack/workflow": bad}}))
		if r.StatusCode != http.StatusBadRequest {
			t.Errorf("workflow %q: status %d, want 400: %s", bad, r.StatusCode, r.body)
		}
	}
	if g.upstream.sawMarker("wf-bad") {
		t.Error("a call with an invalid workflow id reached the upstream")
	}
}

// Invariant: with two or more upstreams a hidden resource answers exactly
// like a made-up one — same code, message and status — and neither makes
// the gateway ask any upstream (no listing to resolve an undecided URI).
func TestHiddenAndMissingResourcesAnswerAlikeWithoutUpstreamWork(t *testing.T) {
	t.Parallel()
	lib, other := newLibrary(t), newLibrary(t)
	g := newGateway(t, gatewayOptions{
		upstreams: []config.Upstream{{Name: "lib", MCP: &config.MCPUpstream{URL: lib.URL}}, {Name: "other", MCP: &config.MCPUpstream{URL: other.URL}}},
		policy:    map[string]config.ToolRule{},
		configure: func(c *config.Config) {
			c.Policy.Resources = map[string]config.ToolRule{
				"lib__lib://docs/*":  {Scopes: []string{baselineScope}},
				"lib__lib://admin/*": {Scopes: []string{entitleScope}},
			}
		},
	})
	alice := g.minter.token("alice", baselineScope)
	sid := g.initialize(t, alice)
	// Warm the catalog, as a client that lists first would.
	g.post(t, alice, sid, rpcBody(t, "resources/list", nil)).result(t)

	type answer struct {
		status, code int
		msg          string
	}
	ask := func(uri string) answer {
		before := lib.work.Load() + other.work.Load()
		r := g.post(t, alice, sid, rpcBody(t, "resources/read", map[string]any{"uri": uri}))
		code, msg, _ := r.rpcError(t)
		if n := lib.work.Load() + other.work.Load() - before; n != 0 {
			t.Errorf("%s: %d upstream request(s) before any positive decision", uri, n)
		}
		return answer{r.StatusCode, code, strings.ReplaceAll(msg, uri, "URI")}
	}
	hidden := ask("lib://admin/keys")
	for _, uri := range []string{"lib://made/up", "lib://admin/nope", "other://x", "lib://users/7"} {
		if got := ask(uri); got != hidden {
			t.Errorf("%s answered %+v, the hidden resource %+v", uri, got, hidden)
		}
	}
	if hidden.code != -32002 {
		t.Errorf("hidden resource code %d, want -32002", hidden.code)
	}
}

// Invariant: a tool or prompt whose condition reads request.upstream is
// decided, for a name not in the catalog, against every upstream that could
// own it — before any of them is asked — so a made-up name the caller could
// not use anyway costs no upstream listing.
func TestUpstreamConditionsAreDecidedBeforeResolving(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{policy: map[string]config.ToolRule{
		"rec__echo": {Scopes: []string{baselineScope}},
		"rec__*":    {Scopes: []string{baselineScope}, When: `request.upstream == "elsewhere"`},
	}})
	alice := g.minter.token("alice", baselineScope)
	sid := g.initialize(t, alice)
	before := len(g.upstream.httpRequests())
	for i := range 5 {
		name := "rec__made_up_" + string(rune('a'+i))
		r := g.call(t, alice, sid, name, nil)
		if code, msg, _ := r.rpcError(t); code != -32602 || msg != "Unknown tool: "+name {
			t.Errorf("%s: %d %q", name, code, msg)
		}
	}
	// (The upstream's health probe may run meanwhile: only tool methods
	// count.)
	for _, req := range g.upstream.httpRequests()[before:] {
		if bytes.Contains(req.Body, []byte(`"tools/`)) {
			t.Errorf("a made-up name under a rule false for every owner made an upstream request: %s", req.Body)
		}
	}
}

// randomArguments is a random JSON object text with random insignificant
// space, escapes, non-ASCII and HTML-special text, and integers beyond
// float64's exact range.
func randomArguments(r *rand.Rand, marker string) string {
	var b strings.Builder
	var value func(depth int)
	sp := func() { b.WriteString([]string{"", " ", "\n\t", ""}[r.IntN(4)]) }
	value = func(depth int) {
		sp()
		switch k := r.IntN(7); {
		case k == 0:
			b.WriteString([]string{"true", "false", "null"}[r.IntN(3)])
		case k == 1:
			b.WriteString([]string{"9007199254740993", "-0", "1e300", "0.10", "18446744073709551616", "42"}[r.IntN(6)])
		case k == 2 && depth < 3:
			b.WriteString("[")
			for i := range r.IntN(3) {
				if i > 0 {
					b.WriteString(",")
				}
				value(depth + 1)
			}
			b.WriteString("]")
		case k == 3 && depth < 3:
			b.WriteString("{")
			for i := range r.IntN(3) {
				if i > 0 {
					b.WriteString(",")
				}
				fmt.Fprintf(&b, `"n%d%s":`, i, []string{"", "é", `\u00e9`, "<x>"}[r.IntN(4)])
				value(depth + 1)
			}
			b.WriteString("}")
		default:
			b.WriteString(`"`)
			for range r.IntN(4) {
				b.WriteString([]string{"plain", "<b>&amp;</b>", `\u003c`, `\n`, `\"`, "é", `\ud83d\ude00`, `\/`}[r.IntN(8)])
			}
			b.WriteString(`"`)
		}
		sp()
	}
	b.WriteString(`{ "marker" : "` + marker + `"`)
	for i := range r.IntN(4) {
		fmt.Fprintf(&b, `, "a%d":`, i)
		value(0)
	}
	b.WriteString("}")
	return b.String()
}

// Property, end to end (no transform configured): for random tool calls
// and resource reads, the arguments and URI the decision read — recorded
// in the audit event (audit.raw_arguments; the resource) — are exactly what
// the upstream received.
func TestWhatTheUpstreamReceivesIsWhatWasDecided(t *testing.T) {
	t.Parallel()
	files := newFileServer(t, map[string]string{})
	rec := newRecorder(t)
	g := newGateway(t, gatewayOptions{
		upstreams: []config.Upstream{{Name: upstreamRec, MCP: &config.MCPUpstream{URL: rec.URL}}, {Name: "cap", MCP: &config.MCPUpstream{URL: files.URL}}},
		policy:    map[string]config.ToolRule{"rec__echo": {Scopes: []string{baselineScope}}},
		configure: func(c *config.Config) {
			c.Audit.RawArguments = []string{"*"}
			c.Policy.Resources = map[string]config.ToolRule{"cap__file:///srv/*": {Scopes: []string{baselineScope}}}
		},
	})
	alice := g.minter.token("alice", baselineScope)
	sid := g.initialize(t, alice)
	r := rand.New(rand.NewPCG(7, 11))
	compared := 0
	for i := range 60 {
		marker := fmt.Sprintf("prop-%d", i)
		args := randomArguments(r, marker)
		body := []byte(`{"jsonrpc":"2.0","id":` + fmt.Sprint(i+1) + `,"method":"tools/call","params":{"name":"rec__echo","arguments":` + args + `}}`)
		resp := g.post(t, alice, sid, body)
		if resp.StatusCode != http.StatusOK {
			continue // refused (e.g. a number the upstream's decoder rejects): nothing to compare
		}
		var decided struct {
			Args json.RawMessage `json:"args"`
		}
		lines := g.audit.forRequest(t, resp.Header.Get("X-Request-Id"))
		if len(lines) != 1 {
			t.Fatalf("audit lines %v", lines)
		}
		// The decoded line has args as a map: read the raw bytes instead.
		for _, line := range strings.Split(g.audit.String(), "\n") {
			if strings.Contains(line, resp.Header.Get("X-Request-Id")) {
				if err := json.Unmarshal([]byte(line), &decided); err != nil {
					t.Fatalf("audit line: %v", err)
				}
			}
		}
		var received []byte
		for _, req := range rec.httpRequests() {
			if !bytes.Contains(req.Body, []byte(marker+`"`)) {
				continue
			}
			var msg struct {
				Params struct {
					Arguments json.RawMessage `json:"arguments"`
				} `json:"params"`
			}
			if err := json.Unmarshal(req.Body, &msg); err != nil {
				t.Fatalf("upstream body: %v", err)
			}
			received = msg.Params.Arguments
		}
		if !bytes.Equal(decided.Args, received) {
			t.Fatalf("call %d: decided on %s, the upstream received %s (sent %s)", i, decided.Args, received, args)
		}
		compared++
	}
	if compared < 50 {
		t.Fatalf("only %d of 60 random calls were forwarded", compared)
	}
	for i := range 30 {
		uri := fmt.Sprintf("file:///srv/d%d/%s", i, []string{"a.txt", "b%20c.txt", "%C3%A9.txt", "x~y", "q?v=%2A"}[r.IntN(5)])
		resp := g.post(t, alice, sid, rpcBody(t, "resources/read", map[string]any{"uri": uri}))
		lines := g.audit.forRequest(t, resp.Header.Get("X-Request-Id"))
		if len(lines) != 1 || lines[0]["resource"] != uri {
			t.Fatalf("audit of %s: %v", uri, lines)
		}
	}
	files.mu.Lock()
	defer files.mu.Unlock()
	if len(files.read) != 30 {
		t.Fatalf("the upstream read %d URIs, want 30", len(files.read))
	}
	for i, u := range files.read {
		if !strings.HasPrefix(u, fmt.Sprintf("file:///srv/d%d/", i)) {
			t.Fatalf("read %d: the upstream received %q", i, u)
		}
	}
}
