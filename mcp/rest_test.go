package mcp_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewaystack/gatewaystack/config"
)

// apiRequest is one request the REST backend received, as it arrived.
type apiRequest struct {
	Method, Path, Query string
	Header              http.Header
	Body                string
}

// restAPI is a plain HTTP API (not MCP) on loopback that records what it
// receives.
type restAPI struct {
	URL string
	mu  sync.Mutex
	got []apiRequest
}

func (a *restAPI) last(t testing.TB) apiRequest {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.got) == 0 {
		t.Fatal("the REST API received nothing")
	}
	return a.got[len(a.got)-1]
}

func newRESTAPI(t testing.TB) *restAPI {
	t.Helper()
	a := &restAPI{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.got = append(a.got, apiRequest{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: string(body)})
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/api/accounts/gone":
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":"account gone"}`)
		case r.URL.Path == "/api/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		case strings.HasPrefix(r.URL.Path, "/api/accounts/"):
			_, _ = io.WriteString(w, `{"id":`+restQuote(strings.TrimPrefix(r.URL.Path, "/api/accounts/"))+`,"owner":`+restQuote(r.Header.Get("X-User-Id"))+`}`)
		case r.URL.Path == "/api/notes":
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `["n1","n2"]`)
		}
	}))
	t.Cleanup(srv.Close)
	a.URL = srv.URL + "/api"
	return a
}

func restQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// A REST upstream's tools are listed (prefixed, filtered by policy) and
// called through the gateway like any other; the API receives the verified
// identity and the gateway's own credential, never the caller's token nor
// the identity headers the caller tried to send.
func TestRESTUpstreamThroughTheGateway(t *testing.T) {
	// Not parallel: the credential comes from the environment (${VAR}).
	t.Setenv("GATEWAYSTACK_TEST_CRM_KEY", "crm-secret-123")
	api := newRESTAPI(t)
	g := newGateway(t, gatewayOptions{
		upstreams: []config.Upstream{{Name: "crm", Timeout: 500 * time.Millisecond, REST: &config.RESTUpstream{
			BaseURL:     api.URL,
			Headers:     map[string]string{"Authorization": "Bearer ${GATEWAYSTACK_TEST_CRM_KEY}"},
			InjectQuery: "user_id",
			Tools: []config.RESTTool{
				{Name: "get_account", Title: "Account", Description: "Read one account.", Path: "/accounts/{id}",
					InputSchema: map[string]any{"type": "object", "properties": map[string]any{"id": map[string]any{"type": "string"}}, "required": []any{"id"}}},
				{Name: "add_note", Method: "POST", Path: "/notes", Body: []string{"*"}},
				{Name: "slow", Path: "/slow"},
				{Name: "admin_purge", Method: "DELETE", Path: "/accounts"},
			},
		}}},
		policy: map[string]config.ToolRule{
			"crm__*":           {Scopes: []string{baselineScope}},
			"crm__admin_purge": {Scopes: []string{entitleScope}},
		},
	})
	token := g.minter.token("alice", baselineScope)
	sid := g.initialize(t, token)

	t.Run("tools are listed from the configuration, prefixed and filtered", func(t *testing.T) {
		res := g.list(t, token, sid).result(t)
		if got := toolNames(t, res); strings.Join(got, ",") != "crm__get_account,crm__add_note,crm__slow" {
			t.Fatalf("tools = %v", got)
		}
		var list struct{ Tools []json.RawMessage }
		_ = json.Unmarshal(res, &list)
		want := `{"name":"crm__get_account","title":"Account","description":"Read one account.",` +
			`"inputSchema":{"type":"object","properties":{"id":{"type":"string"}},"required":["id"]}}`
		if !jsonEqual(t, list.Tools[0], []byte(want)) {
			t.Errorf("definition = %s\nwant %s", list.Tools[0], want)
		}
	})

	t.Run("a call carries the verified identity and the gateway's credential only", func(t *testing.T) {
		r := g.post(t, token, sid, rpcBody(t, "tools/call", map[string]any{"name": "crm__get_account", "arguments": map[string]any{"id": "a/b"}}),
			"X-User-Id", "mallory", "X-Org-Id", "evil", "Cookie", "s=1")
		var res struct {
			Content           []map[string]any `json:"content"`
			StructuredContent json.RawMessage  `json:"structuredContent"`
			IsError           bool             `json:"isError"`
		}
		if err := json.Unmarshal(r.result(t), &res); err != nil || res.IsError {
			t.Fatalf("result: %s", r.body)
		}
		if !jsonEqual(t, res.StructuredContent, []byte(`{"id":"a/b","owner":"alice"}`)) {
			t.Errorf("structuredContent = %s", res.StructuredContent)
		}
		got := api.last(t)
		if got.Method != "GET" || got.Path != "/api/accounts/a%2Fb" || got.Query != "user_id=alice" {
			t.Errorf("request = %s %s?%s", got.Method, got.Path, got.Query)
		}
		want := map[string]string{"X-User-Id": "alice", "X-Org-Id": "acme", "X-User-Scopes": baselineScope, "Authorization": "Bearer crm-secret-123"}
		for k, v := range want {
			if vs := got.Header.Values(k); len(vs) != 1 || vs[0] != v {
				t.Errorf("header %s = %q, want [%q]", k, vs, v)
			}
		}
		for _, k := range []string{"Cookie", "Mcp-Session-Id", "Mcp-Protocol-Version"} {
			if v := got.Header.Values(k); len(v) != 0 {
				t.Errorf("the caller's %s reached the API: %q", k, v)
			}
		}
		if strings.Contains(strings.Join(got.Header.Values("Authorization"), ""), token) {
			t.Error("the caller's token reached the API")
		}
	})

	t.Run("an array answer is wrapped, and the 2026-07-28 era works too", func(t *testing.T) {
		r := g.modernCall(t, token, "crm__add_note", map[string]any{"text": "hi", "tags": []any{"a"}})
		var res struct {
			StructuredContent json.RawMessage `json:"structuredContent"`
		}
		_ = json.Unmarshal(r.result(t), &res)
		if !jsonEqual(t, res.StructuredContent, []byte(`{"result":["n1","n2"]}`)) {
			t.Errorf("structuredContent = %s", res.StructuredContent)
		}
		if got := api.last(t); got.Method != "POST" || !jsonEqual(t, []byte(got.Body), []byte(`{"text":"hi","tags":["a"]}`)) {
			t.Errorf("request = %s %s", got.Method, got.Body)
		}
	})

	t.Run("errors of the API and missing arguments are tool errors", func(t *testing.T) {
		for _, c := range []struct {
			tool string
			args map[string]any
			want string
		}{
			{"crm__get_account", map[string]any{"id": "gone"}, `GET /accounts/gone answered 404: {"error":"account gone"}`},
			{"crm__get_account", map[string]any{}, `missing required argument "id"`},
			{"crm__slow", nil, "upstream crm did not answer GET /slow within 500ms"},
		} {
			r := g.call(t, token, sid, c.tool, c.args)
			var res struct {
				Content []struct{ Text string } `json:"content"`
				IsError bool                    `json:"isError"`
			}
			if err := json.Unmarshal(r.result(t), &res); err != nil || !res.IsError || len(res.Content) != 1 || !strings.Contains(res.Content[0].Text, c.want) {
				t.Errorf("%s %v: %s, want isError with %q", c.tool, c.args, r.body, c.want)
			}
		}
	})

	t.Run("a hidden REST tool is unknown", func(t *testing.T) {
		code, msg, _ := g.call(t, token, sid, "crm__admin_purge", nil).rpcError(t)
		if code != -32602 || msg != "Unknown tool: crm__admin_purge" {
			t.Errorf("error = %d %s", code, msg)
		}
	})
}
