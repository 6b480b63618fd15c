package mcp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/gatewaystack/gatewaystack/config"
)

// library is an upstream with prompts, resources, a resource template and
// completions, counting the requests that reach it.
type library struct {
	URL  string
	hits atomic.Int64
	// work counts the requests for entries (lists, reads, prompts,
	// completions): what a caller's request can make the gateway ask for,
	// unlike the connection's handshake and listening stream.
	work atomic.Int64
	// lastUser is the X-User-Id of the last resource read.
	lastUser atomic.Value
}

type userKey struct{}

func newLibrary(t testing.TB) *library {
	t.Helper()
	lib := &library{}
	s := server.NewMCPServer("library", "1.0.0",
		server.WithPromptCapabilities(false),
		server.WithResourceCapabilities(false, false),
		server.WithCompletions(),
		server.WithPromptCompletionProvider(completer{}),
	)
	s.AddPrompt(mcpgo.NewPrompt("greet", mcpgo.WithPromptDescription("Greets someone"), mcpgo.WithArgument("who")),
		func(ctx context.Context, req mcpgo.GetPromptRequest) (*mcpgo.GetPromptResult, error) {
			return mcpgo.NewGetPromptResult("greeting", []mcpgo.PromptMessage{
				mcpgo.NewPromptMessage(mcpgo.RoleUser, mcpgo.NewTextContent("hello "+req.Params.Arguments["who"])),
			}), nil
		})
	s.AddPrompt(mcpgo.NewPrompt("secret_prompt"), func(ctx context.Context, req mcpgo.GetPromptRequest) (*mcpgo.GetPromptResult, error) {
		return mcpgo.NewGetPromptResult("secret", nil), nil
	})
	read := func(ctx context.Context, req mcpgo.ReadResourceRequest) ([]mcpgo.ResourceContents, error) {
		if u, _ := ctx.Value(userKey{}).(string); u != "" {
			lib.lastUser.Store(u)
		}
		return []mcpgo.ResourceContents{mcpgo.TextResourceContents{URI: req.Params.URI, MIMEType: "text/plain", Text: "contents of " + req.Params.URI}}, nil
	}
	s.AddResource(mcpgo.NewResource("lib://docs/guide/readme", "readme", mcpgo.WithMIMEType("text/plain")), read)
	s.AddResource(mcpgo.NewResource("lib://admin/keys", "keys"), read)
	s.AddResourceTemplate(mcpgo.NewResourceTemplate("lib://users/{id}", "user"), read)

	h := server.NewStreamableHTTPServer(s, server.WithHTTPContextFunc(func(ctx context.Context, r *http.Request) context.Context {
		return context.WithValue(ctx, userKey{}, r.Header.Get("X-User-Id"))
	}))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lib.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, []byte(`"method":"resources/`)) || bytes.Contains(body, []byte(`"method":"prompts/`)) ||
			bytes.Contains(body, []byte(`"method":"completion/`)) {
			lib.work.Add(1)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	lib.URL = srv.URL + "/mcp"
	return lib
}

type completer struct{}

func (completer) CompletePromptArgument(_ context.Context, prompt string, arg mcpgo.CompleteArgument, _ mcpgo.CompleteContext) (*mcpgo.Completion, error) {
	return &mcpgo.Completion{Values: []string{prompt + ":" + arg.Name + ":" + arg.Value + "-done"}}, nil
}

func libraryGateway(t *testing.T) (*gateway, *library) {
	lib := newLibrary(t)
	g := newGateway(t, gatewayOptions{
		upstreams: []config.Upstream{{Name: "lib", MCP: &config.MCPUpstream{URL: lib.URL}}},
		policy:    map[string]config.ToolRule{},
		configure: func(c *config.Config) {
			c.Policy.Prompts = map[string]config.ToolRule{
				"lib__greet":         {Scopes: []string{baselineScope}},
				"lib__secret_prompt": {Scopes: []string{entitleScope}},
			}
			c.Policy.Resources = map[string]config.ToolRule{
				"lib__lib://docs/*":  {Scopes: []string{baselineScope}},
				"lib__lib://admin/*": {Scopes: []string{entitleScope}},
				"lib__lib://users/*": {Scopes: []string{stepUpScope}},
			}
		},
	})
	return g, lib
}

func listField(t *testing.T, r response, field, key string) []string {
	t.Helper()
	var res map[string][]map[string]any
	if err := json.Unmarshal(r.result(t), &res); err != nil {
		t.Fatalf("decode %s: %v", field, err)
	}
	var out []string
	for _, e := range res[field] {
		s, _ := e[key].(string)
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// Prompts and resources are filtered by their own policy tables with the
// same deny-by-default rules as tools: entitlement entries are hidden,
// step-up entries listed.
func TestPromptsAndResourcesAreListedByPolicy(t *testing.T) {
	t.Parallel()
	g, _ := libraryGateway(t)
	alice := g.minter.token("alice", baselineScope)
	admin := g.minter.token("admin", baselineScope+" "+entitleScope)

	for _, tc := range []struct {
		name, token, method, field, key string
		want                            []string
	}{
		{"prompts are prefixed and entitlement prompts hidden", alice, "prompts/list", "prompts", "name", []string{"lib__greet"}},
		{"an entitled caller sees every prompt", admin, "prompts/list", "prompts", "name", []string{"lib__greet", "lib__secret_prompt"}},
		{"resources keep their URIs and entitlement resources are hidden", alice, "resources/list", "resources", "uri", []string{"lib://docs/guide/readme"}},
		{"an entitled caller sees every resource", admin, "resources/list", "resources", "uri", []string{"lib://admin/keys", "lib://docs/guide/readme"}},
		{"step-up templates are listed", alice, "resources/templates/list", "resourceTemplates", "uriTemplate", []string{"lib://users/{id}"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sid := g.initialize(t, tc.token)
			got := listField(t, g.post(t, tc.token, sid, rpcBody(t, tc.method, nil)), tc.field, tc.key)
			if !slices.Equal(got, tc.want) {
				t.Errorf("%s: got %v, want %v", tc.method, got, tc.want)
			}
		})
	}
}

// prompts/get and resources/read reach the owning upstream with the
// caller's identity; hidden entries answer exactly like missing ones, and
// step-up entries answer 403 with the challenge.
func TestPromptsGetAndResourcesReadAreAuthorized(t *testing.T) {
	t.Parallel()
	g, lib := libraryGateway(t)
	alice := g.minter.token("alice", baselineScope)
	sid := g.initialize(t, alice)

	r := g.post(t, alice, sid, rpcBody(t, "prompts/get", map[string]any{"name": "lib__greet", "arguments": map[string]string{"who": "bob"}}))
	if !strings.Contains(string(r.result(t)), "hello bob") {
		t.Errorf("prompts/get result: %s", r.body)
	}

	r = g.post(t, alice, sid, rpcBody(t, "resources/read", map[string]any{"uri": "lib://docs/guide/readme"}))
	if !strings.Contains(string(r.result(t)), "contents of lib://docs/guide/readme") {
		t.Errorf("resources/read result: %s", r.body)
	}
	if u, _ := lib.lastUser.Load().(string); u != "alice" {
		t.Errorf("the upstream saw X-User-Id %q, want alice", u)
	}

	hidden := func(method string, params map[string]any) (int, string) {
		before := lib.hits.Load()
		r := g.post(t, alice, sid, rpcBody(t, method, params))
		code, msg, _ := r.rpcError(t)
		if lib.hits.Load() != before {
			t.Errorf("%s %v reached the upstream", method, params)
		}
		return code, msg
	}
	// Invariant: a hidden prompt is indistinguishable from a missing one.
	c1, m1 := hidden("prompts/get", map[string]any{"name": "lib__secret_prompt"})
	c2, m2 := hidden("prompts/get", map[string]any{"name": "lib__no_such_prompt"})
	if c1 != c2 || strings.ReplaceAll(m1, "secret_prompt", "X") != strings.ReplaceAll(m2, "no_such_prompt", "X") {
		t.Errorf("hidden prompt answered %d %q, missing prompt %d %q", c1, m1, c2, m2)
	}
	// Invariant: a hidden resource is indistinguishable from a missing one.
	c1, m1 = hidden("resources/read", map[string]any{"uri": "lib://admin/keys"})
	c2, m2 = hidden("resources/read", map[string]any{"uri": "lib://nope/x"})
	if c1 != -32002 || c1 != c2 || strings.ReplaceAll(m1, "lib://admin/keys", "X") != strings.ReplaceAll(m2, "lib://nope/x", "X") {
		t.Errorf("hidden resource answered %d %q, missing resource %d %q", c1, m1, c2, m2)
	}

	before := lib.hits.Load()
	r = g.post(t, alice, sid, rpcBody(t, "resources/read", map[string]any{"uri": "lib://users/42"}))
	if r.StatusCode != http.StatusForbidden {
		t.Fatalf("step-up resource: status %d, body %s", r.StatusCode, r.body)
	}
	wantChallenge(t, r, map[string]string{"realm": "mcp", "error": "insufficient_scope", "scope": stepUpScope + " " + baselineScope, "resource_metadata": g.PRM})
	if lib.hits.Load() != before {
		t.Error("the step-up resource read reached the upstream")
	}
}

// completion/complete reaches the upstream with the prompt's own name.
func TestCompletionIsRoutedWithTheUpstreamName(t *testing.T) {
	t.Parallel()
	g, _ := libraryGateway(t)
	alice := g.minter.token("alice", baselineScope)
	sid := g.initialize(t, alice)
	r := g.post(t, alice, sid, rpcBody(t, "completion/complete", map[string]any{
		"ref":      map[string]any{"type": "ref/prompt", "name": "lib__greet"},
		"argument": map[string]any{"name": "who", "value": "bo"},
	}))
	if !strings.Contains(string(r.result(t)), "greet:who:bo-done") {
		t.Errorf("completion result: %s", r.body)
	}
	r = g.post(t, alice, sid, rpcBody(t, "completion/complete", map[string]any{
		"ref":      map[string]any{"type": "ref/prompt", "name": "lib__secret_prompt"},
		"argument": map[string]any{"name": "x", "value": "y"},
	}))
	if code, _, _ := r.rpcError(t); code != -32602 {
		t.Errorf("completion of a hidden prompt: %s", r.body)
	}
}

// In the 2026-07-28 era, per-caller filtered lists are marked private.
func TestModernListsArePrivate(t *testing.T) {
	t.Parallel()
	g, _ := libraryGateway(t)
	alice := g.minter.token("alice", baselineScope)
	for _, method := range []string{"tools/list", "prompts/list", "resources/list", "resources/templates/list"} {
		h := hdr("Mcp-Protocol-Version", modernVersion, "Mcp-Method", method, "Authorization", bearer(alice))
		r := do(t, g.client, http.MethodPost, g.MCP, h, rpcBody(t, method, modernParams(nil)))
		var res struct {
			CacheScope string `json:"cacheScope"`
			TTLMs      *int   `json:"ttlMs"`
		}
		if err := json.Unmarshal(r.result(t), &res); err != nil || res.CacheScope != "private" || res.TTLMs == nil {
			t.Errorf("%s: %s", method, r.body)
		}
	}
}
