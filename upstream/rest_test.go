package upstream_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewaystack/gatewaystack/auth"
	"github.com/gatewaystack/gatewaystack/upstream"
)

// received is one request a REST backend got, as it arrived.
type received struct {
	Method  string
	RawPath string // escaped path
	Query   string // raw query
	Header  http.Header
	Body    string
}

// restBackend is a real HTTP API on loopback that records every request
// and answers with what the test routes say.
type restBackend struct {
	URL string
	mu  sync.Mutex
	got []received
}

func newRESTBackend(t *testing.T, answer http.HandlerFunc) *restBackend {
	t.Helper()
	b := &restBackend{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.got = append(b.got, received{Method: r.Method, RawPath: r.URL.EscapedPath(), Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: string(body)})
		b.mu.Unlock()
		answer(w, r)
	}))
	t.Cleanup(srv.Close)
	b.URL = srv.URL
	return b
}

func (b *restBackend) requests() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.got...)
}

func (b *restBackend) last(t *testing.T) received {
	t.Helper()
	got := b.requests()
	if len(got) == 0 {
		t.Fatal("the backend received no request")
	}
	return got[len(got)-1]
}

var (
	testNames = upstream.HeaderNames{User: "X-User-Id", Tenant: "X-Org-Id", Scopes: "X-User-Scopes"}
	alice     = auth.Identity{Subject: "alice", Tenant: "acme", Scopes: []string{"crm:read", "tool:read"}}
)

func asAlice() context.Context {
	return upstream.WithIdentity(context.Background(), testNames, alice)
}

// jsonAnswer answers every request with status and body as JSON.
func jsonAnswer(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func newREST(t *testing.T, o upstream.RESTOptions) *upstream.RESTClient {
	t.Helper()
	if o.Name == "" {
		o.Name = "crm"
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	c, err := upstream.NewRESTClient(o)
	if err != nil {
		t.Fatalf("NewRESTClient: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// toolResult is a decoded tools/call result.
type toolResult struct {
	Content []struct {
		Type     string `json:"type"`
		Text     string `json:"text"`
		Data     string `json:"data"`
		MimeType string `json:"mimeType"`
	} `json:"content"`
	StructuredContent json.RawMessage `json:"structuredContent"`
	IsError           bool            `json:"isError"`
}

func call(t *testing.T, c upstream.Caller, ctx context.Context, tool string, args any) toolResult {
	t.Helper()
	params, err := json.Marshal(map[string]any{"name": tool, "arguments": args})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Call(ctx, "tools/call", params)
	if err != nil {
		t.Fatalf("tools/call %s: %v", tool, err)
	}
	if resp.Error != nil {
		t.Fatalf("tools/call %s: JSON-RPC error %d %s", tool, resp.Error.Code, resp.Error.Message)
	}
	var res toolResult
	if err := json.Unmarshal(resp.Result, &res); err != nil {
		t.Fatalf("tools/call %s: result is not a tool result: %s", tool, resp.Result)
	}
	if len(res.Content) == 0 {
		t.Fatalf("tools/call %s: result without content: %s", tool, resp.Result)
	}
	return res
}

func jsonEq(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: not JSON: %s", what, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: bad expectation: %s", what, want)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got  %s\n want %s", what, got, want)
	}
}

func TestRESTToolsListComesFromTheConfiguration(t *testing.T) {
	t.Parallel()
	c := newREST(t, upstream.RESTOptions{BaseURL: "http://127.0.0.1:1", Tools: []upstream.RESTTool{
		{Name: "get_account", Title: "Account", Description: "Read one account.", Path: "/accounts/{id}",
			InputSchema: json.RawMessage(`{"type":"object","properties":{"id":{"type":"string"}},"required":["id"]}`)},
		{Name: "ping_api", Path: "/ping"},
	}})
	resp, err := c.Call(context.Background(), "tools/list", nil)
	if err != nil || resp.Error != nil {
		t.Fatalf("tools/list: %v %v", err, resp.Error)
	}
	jsonEq(t, "tools/list", resp.Result, `{"tools":[
		{"name":"get_account","title":"Account","description":"Read one account.",
		 "inputSchema":{"type":"object","properties":{"id":{"type":"string"}},"required":["id"]}},
		{"name":"ping_api","inputSchema":{"type":"object"}}]}`)
}

func TestRESTAnswersOnlyToolsAndPing(t *testing.T) {
	t.Parallel()
	c := newREST(t, upstream.RESTOptions{BaseURL: "http://127.0.0.1:1", Tools: []upstream.RESTTool{{Name: "t", Path: "/"}}})
	resp, err := c.Call(context.Background(), "ping", nil)
	if err != nil || resp.Error != nil || string(resp.Result) != "{}" {
		t.Errorf("ping = %s %v %v, want {}", resp.Result, resp.Error, err)
	}
	for _, m := range []string{"resources/list", "prompts/list", "resources/templates/list", "completion/complete"} {
		resp, err := c.Call(context.Background(), m, nil)
		if err != nil || resp.Error == nil || resp.Error.Code != -32601 {
			t.Errorf("%s = %+v %v, want JSON-RPC error -32601", m, resp, err)
		}
	}
	resp, err = c.Call(asAlice(), "tools/call", json.RawMessage(`{"name":"nope","arguments":{}}`))
	if err != nil || resp.Error == nil || resp.Error.Code != -32602 {
		t.Errorf("unknown tool = %+v %v, want JSON-RPC error -32602", resp, err)
	}
}

// The request is built from the mapping alone: path arguments escaped,
// query arguments (arrays repeated), the JSON body, static headers of the
// upstream and the tool, and the verified identity as headers and query.
func TestRESTCallBuildsTheRequestFromTheMapping(t *testing.T) {
	t.Parallel()
	b := newRESTBackend(t, jsonAnswer(200, `{"ok":true}`))
	c := newREST(t, upstream.RESTOptions{
		BaseURL:     b.URL + "/v1/?api-version=2&user_id=spoofed",
		Headers:     map[string]string{"Authorization": "Bearer api-key-123", "X-Static": "upstream"},
		InjectQuery: "user_id",
		Tools: []upstream.RESTTool{
			{Name: "get_account", Path: "/accounts/{id}/notes/{note}", Query: []string{"tag", "limit", "verbose", "absent", "nothing"},
				Headers: map[string]string{"X-Static": "tool", "X-Tool": "yes"}},
			{Name: "update_account", Method: "patch", Path: "/accounts/{id}", Query: []string{"dry_run"}, Body: []string{"*"}},
			{Name: "rename", Method: "POST", Path: "/accounts/{id}/rename", Body: []string{"name", "id", "missing"}},
			{Name: "raw_post", Method: "POST", Path: "/raw", Body: []string{"*"}, Headers: map[string]string{"Content-Type": "application/merge-patch+json"}},
		},
	})

	t.Run("path arguments are path-escaped and query arguments mapped", func(t *testing.T) {
		res := call(t, c, asAlice(), "get_account", map[string]any{
			"id": "a/b c?d", "note": 42, "tag": []any{"x y", 7, true, nil}, "limit": 10.5, "verbose": false, "nothing": nil, "unmapped": "dropped",
		})
		if res.IsError {
			t.Fatalf("isError: %+v", res)
		}
		got := b.last(t)
		if got.Method != "GET" {
			t.Errorf("method = %s, want GET", got.Method)
		}
		if want := "/v1/accounts/a%2Fb%20c%3Fd/notes/42"; got.RawPath != want {
			t.Errorf("path = %s, want %s", got.RawPath, want)
		}
		if want := "api-version=2&tag=x+y&tag=7&tag=true&limit=10.5&verbose=false&user_id=alice"; got.Query != want {
			t.Errorf("query = %s, want %s", got.Query, want)
		}
		if got.Body != "" {
			t.Errorf("a GET without body mapping sent a body: %q", got.Body)
		}
		wantHeaders := map[string]string{
			"Authorization": "Bearer api-key-123", "X-Static": "tool", "X-Tool": "yes",
			"X-User-Id": "alice", "X-Org-Id": "acme", "X-User-Scopes": "crm:read tool:read", "Accept": "application/json",
		}
		for k, v := range wantHeaders {
			if g := got.Header.Values(k); len(g) != 1 || g[0] != v {
				t.Errorf("header %s = %q, want [%q]", k, g, v)
			}
		}
	})

	t.Run("body * sends every argument not in the path or query, raw", func(t *testing.T) {
		call(t, c, asAlice(), "update_account", map[string]any{
			"id": "7", "dry_run": true, "name": "ACME", "meta": map[string]any{"n": 12345678901234567, "list": []any{1, "a"}},
		})
		got := b.last(t)
		if got.Method != "PATCH" || got.RawPath != "/v1/accounts/7" || got.Query != "api-version=2&dry_run=true&user_id=alice" {
			t.Errorf("request = %s %s?%s", got.Method, got.RawPath, got.Query)
		}
		if ct := got.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q, want application/json", ct)
		}
		jsonEq(t, "body", []byte(got.Body), `{"name":"ACME","meta":{"n":12345678901234567,"list":[1,"a"]}}`)
		if !strings.Contains(got.Body, "12345678901234567") {
			t.Errorf("a large integer was not passed through exactly: %s", got.Body)
		}
	})

	t.Run("named body arguments are sent when present, path ones included", func(t *testing.T) {
		call(t, c, asAlice(), "rename", map[string]any{"id": "7", "name": "New", "other": 1})
		jsonEq(t, "body", []byte(b.last(t).Body), `{"name":"New","id":"7"}`)
	})

	t.Run("a configured Content-Type is kept", func(t *testing.T) {
		call(t, c, asAlice(), "raw_post", map[string]any{"a": 1})
		got := b.last(t)
		if ct := got.Header.Get("Content-Type"); ct != "application/merge-patch+json" {
			t.Errorf("Content-Type = %q", ct)
		}
		jsonEq(t, "body", []byte(got.Body), `{"a":1}`)
	})
}

// Arguments that do not fit the mapping are tool errors, and nothing is
// sent to the API.
func TestRESTCallRefusesArgumentsThatDoNotFit(t *testing.T) {
	t.Parallel()
	b := newRESTBackend(t, jsonAnswer(200, `{}`))
	c := newREST(t, upstream.RESTOptions{BaseURL: b.URL, Tools: []upstream.RESTTool{
		{Name: "get_account", Path: "/accounts/{id}", Query: []string{"tag"}},
	}})
	tests := []struct {
		name string
		args any
		want string
	}{
		{"a missing path argument", map[string]any{}, `missing required argument "id"`},
		{"a null path argument", map[string]any{"id": nil}, `missing required argument "id"`},
		{"no arguments at all", nil, `missing required argument "id"`},
		{"an object as path argument", map[string]any{"id": map[string]any{"a": 1}}, `"id" must be a string, number or boolean`},
		{"an array as path argument", map[string]any{"id": []any{1}}, `"id" must be a string, number or boolean`},
		{"an empty path argument", map[string]any{"id": ""}, `"id" must not be empty`},
		{"a dot-dot path argument", map[string]any{"id": ".."}, `"id" must not be empty, "." or ".."`},
		{"an object as query argument", map[string]any{"id": "1", "tag": map[string]any{}}, `"tag" must be a string, number, boolean or an array`},
		{"nested arrays as query argument", map[string]any{"id": "1", "tag": []any{[]any{1}}}, `"tag" must be a string, number, boolean or an array`},
		{"arguments that are not an object", []any{1}, "arguments must be a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := call(t, c, asAlice(), "get_account", tt.args)
			if !res.IsError || !strings.Contains(res.Content[0].Text, tt.want) {
				t.Errorf("result = %+v, want isError with %q", res, tt.want)
			}
		})
	}
	if n := len(b.requests()); n != 0 {
		t.Errorf("the backend received %d requests for calls that did not fit", n)
	}
}

// Without a verified identity in the context the call fails closed: the
// API would otherwise see an anonymous request.
func TestRESTCallWithoutIdentityFailsClosed(t *testing.T) {
	t.Parallel()
	b := newRESTBackend(t, jsonAnswer(200, `{}`))
	c := newREST(t, upstream.RESTOptions{BaseURL: b.URL, Tools: []upstream.RESTTool{{Name: "t", Path: "/t"}}})
	_, err := c.Call(context.Background(), "tools/call", json.RawMessage(`{"name":"t","arguments":{}}`))
	if !errors.Is(err, upstream.ErrUnavailable) {
		t.Errorf("err = %v, want ErrUnavailable", err)
	}
	if n := len(b.requests()); n != 0 {
		t.Errorf("the backend received %d requests", n)
	}
}

// 2xx answers: a JSON object is structuredContent plus its text; an array
// or scalar is wrapped in {"result": ...}; other text is a text block.
func TestRESTCallMapsSuccessfulAnswers(t *testing.T) {
	t.Parallel()
	answers := map[string]struct {
		ct, body string
		status   int
	}{
		"/object":   {"application/json; charset=utf-8", `{"id":"7","big":12345678901234567,"nested":{"a":[1,null]}}`, 200},
		"/array":    {"application/json", `[1,"two",{"three":3}]`, 200},
		"/scalar":   {"application/json", `42`, 201},
		"/string":   {"application/problem+json", `"done"`, 200},
		"/null":     {"application/json", `null`, 200},
		"/untyped":  {"", `{"a":1}`, 200},
		"/text":     {"text/plain; charset=utf-8", "plain words", 200},
		"/badjson":  {"application/json", `{"a":`, 200},
		"/empty":    {"", "", 204},
		"/image":    {"image/png", "\x89PNG\r\n", 200},
		"/binary":   {"application/octet-stream", "\xff\xfe\x00", 200},
		"/jsontext": {"text/plain", `{"looks":"like json"}`, 200},
	}
	b := newRESTBackend(t, func(w http.ResponseWriter, r *http.Request) {
		a := answers[r.URL.Path]
		if a.ct != "" {
			w.Header().Set("Content-Type", a.ct)
		} else {
			w.Header()["Content-Type"] = nil // no sniffing
		}
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	})
	var tools []upstream.RESTTool
	for p := range answers {
		tools = append(tools, upstream.RESTTool{Name: strings.TrimPrefix(p, "/"), Path: p})
	}
	c := newREST(t, upstream.RESTOptions{BaseURL: b.URL, Tools: tools})

	tests := []struct {
		tool       string
		structured string // "" = none
		text       string
		typ        string
	}{
		{"object", `{"id":"7","big":12345678901234567,"nested":{"a":[1,null]}}`, `{"id":"7","big":12345678901234567,"nested":{"a":[1,null]}}`, "text"},
		{"array", `{"result":[1,"two",{"three":3}]}`, `[1,"two",{"three":3}]`, "text"},
		{"scalar", `{"result":42}`, `42`, "text"},
		{"string", `{"result":"done"}`, `"done"`, "text"},
		{"null", `{"result":null}`, `null`, "text"},
		{"untyped", `{"a":1}`, `{"a":1}`, "text"},
		{"text", "", "plain words", "text"},
		{"badjson", "", `{"a":`, "text"},
		{"jsontext", "", `{"looks":"like json"}`, "text"},
		{"empty", "", "GET /empty answered 204 with no content", "text"},
		{"binary", "", "GET /binary answered 200 with 3 bytes of application/octet-stream, which cannot be shown as text", "text"},
	}
	for _, tt := range tests {
		t.Run(tt.tool, func(t *testing.T) {
			res := call(t, c, asAlice(), tt.tool, map[string]any{})
			if res.IsError {
				t.Fatalf("isError: %+v", res)
			}
			if len(res.Content) != 1 || res.Content[0].Type != tt.typ || res.Content[0].Text != tt.text {
				t.Errorf("content = %+v, want one %s block %q", res.Content, tt.typ, tt.text)
			}
			if tt.structured == "" {
				if res.StructuredContent != nil {
					t.Errorf("structuredContent = %s, want none", res.StructuredContent)
				}
				return
			}
			jsonEq(t, "structuredContent", res.StructuredContent, tt.structured)
			if !strings.Contains(string(res.StructuredContent), "12345678901234567") && tt.tool == "object" {
				t.Errorf("a large integer was not passed through exactly: %s", res.StructuredContent)
			}
		})
	}
	t.Run("image", func(t *testing.T) {
		res := call(t, c, asAlice(), "image", map[string]any{})
		if len(res.Content) != 1 || res.Content[0].Type != "image" || res.Content[0].MimeType != "image/png" || res.Content[0].Data != "iVBORw0K" {
			t.Errorf("content = %+v, want one image/png block", res.Content)
		}
	})
}

// A non-2xx answer is a tool error with the request, the status and the
// start of the body; a redirect is not followed (the credential and the
// identity would go to another host).
func TestRESTCallReportsErrorStatuses(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 3000) // 6000 bytes
	b := newRESTBackend(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/accounts/missing":
			jsonAnswer(404, `{"error":"no such account"}`)(w, r)
		case "/long":
			w.WriteHeader(500)
			_, _ = io.WriteString(w, long)
		case "/moved":
			http.Redirect(w, r, "http://example.invalid/elsewhere", http.StatusFound)
		}
	})
	c := newREST(t, upstream.RESTOptions{BaseURL: b.URL, Tools: []upstream.RESTTool{
		{Name: "get_account", Path: "/accounts/{id}"},
		{Name: "long", Method: "DELETE", Path: "/long"},
		{Name: "moved", Path: "/moved"},
	}})

	res := call(t, c, asAlice(), "get_account", map[string]any{"id": "missing"})
	if want := `GET /accounts/missing answered 404: {"error":"no such account"}`; !res.IsError || res.Content[0].Text != want {
		t.Errorf("404 = %+v, want isError %q", res, want)
	}

	res = call(t, c, asAlice(), "long", nil)
	text := res.Content[0].Text
	if !res.IsError || !strings.HasPrefix(text, "DELETE /long answered 500: éé") || !strings.HasSuffix(text, " …") {
		t.Errorf("500 = isError %v, text %.80q…", res.IsError, text)
	}
	if n := len(strings.TrimSuffix(strings.TrimPrefix(text, "DELETE /long answered 500: "), " …")); n > 2048 || n < 2040 {
		t.Errorf("excerpt is %d bytes, want at most 2048 (cut on a character)", n)
	}
	if strings.ContainsRune(text, '\uFFFD') {
		t.Error("the excerpt cut a character in half")
	}

	res = call(t, c, asAlice(), "moved", nil)
	if !res.IsError || !strings.HasPrefix(res.Content[0].Text, "GET /moved answered 302") {
		t.Errorf("302 = %+v, want isError naming 302", res)
	}
	if n := len(b.requests()); n != 3 {
		t.Errorf("backend got %d requests, want 3 (the redirect must not be followed)", n)
	}
}

// A slow API and an unreachable one are tool errors that name the
// upstream, not the address.
func TestRESTCallReportsTimeoutsAndUnreachableAPIs(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	slow := newRESTBackend(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	_ = ln.Close()

	c := newREST(t, upstream.RESTOptions{Name: "crm", BaseURL: slow.URL, Timeout: 200 * time.Millisecond,
		Tools: []upstream.RESTTool{{Name: "slow", Path: "/slow"}}})
	start := time.Now()
	res := call(t, c, asAlice(), "slow", nil)
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("the timeout took %s", el)
	}
	if want := "upstream crm did not answer GET /slow within 200ms"; !res.IsError || res.Content[0].Text != want {
		t.Errorf("timeout = %+v, want isError %q", res, want)
	}

	d := newREST(t, upstream.RESTOptions{Name: "billing", BaseURL: closed, Tools: []upstream.RESTTool{{Name: "t", Path: "/t"}}})
	res = call(t, d, asAlice(), "t", nil)
	if want := "upstream billing is unavailable (GET /t)"; !res.IsError || res.Content[0].Text != want {
		t.Errorf("unreachable = %+v, want isError %q", res, want)
	}

	// A caller that gave up gets an error, not a tool result.
	ctx, cancel := context.WithCancel(asAlice())
	cancel()
	_, err = c.Call(ctx, "tools/call", json.RawMessage(`{"name":"slow"}`))
	if !errors.Is(err, upstream.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("canceled caller: err = %v", err)
	}
}

func TestRESTCallCapsTheAnswer(t *testing.T) {
	t.Parallel()
	b := newRESTBackend(t, jsonAnswer(200, `{"a":"`+strings.Repeat("x", 2000)+`"}`))
	c := newREST(t, upstream.RESTOptions{BaseURL: b.URL, MaxResponseBytes: 1024, Tools: []upstream.RESTTool{{Name: "big", Path: "/big"}}})
	res := call(t, c, asAlice(), "big", nil)
	if !res.IsError || !strings.Contains(res.Content[0].Text, "larger than 1024 bytes") {
		t.Errorf("oversized answer = %+v, want isError", res)
	}
}

func TestNewRESTClientRefusesBadTemplates(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"accounts", "/a/{id", "/a/}", "/a/{}", "/a/{b c}", "/a?x=1", "/a/%zz"} {
		_, err := upstream.NewRESTClient(upstream.RESTOptions{Name: "x", BaseURL: "http://127.0.0.1:1", Tools: []upstream.RESTTool{{Name: "t", Path: p}}})
		if !errors.Is(err, upstream.ErrRESTConfig) {
			t.Errorf("path %q: err = %v, want ErrRESTConfig", p, err)
		}
	}
	if _, err := upstream.NewRESTClient(upstream.RESTOptions{Name: "x", BaseURL: "ftp://h"}); !errors.Is(err, upstream.ErrRESTConfig) {
		t.Errorf("ftp base URL: err = %v", err)
	}
}

// Probe reports whether the API answers HTTP at all (for /health).
func TestRESTProbe(t *testing.T) {
	t.Parallel()
	b := newRESTBackend(t, jsonAnswer(404, `{}`))
	c := newREST(t, upstream.RESTOptions{BaseURL: b.URL + "/v1", Headers: map[string]string{"Authorization": "Bearer k"}, Tools: []upstream.RESTTool{{Name: "t", Path: "/t"}}})
	if err := c.Probe(context.Background()); err != nil {
		t.Errorf("Probe of a live API = %v (any status counts)", err)
	}
	if got := b.last(t); got.Method != "HEAD" || got.RawPath != "/v1" || got.Header.Get("Authorization") != "" || got.Header.Get("X-User-Id") != "" {
		t.Errorf("probe request = %+v", got)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	_ = ln.Close()
	d := newREST(t, upstream.RESTOptions{BaseURL: down, Tools: []upstream.RESTTool{{Name: "t", Path: "/t"}}})
	if err := d.Probe(context.Background()); !errors.Is(err, upstream.ErrUnavailable) {
		t.Errorf("Probe of a closed port = %v, want ErrUnavailable", err)
	}
}
