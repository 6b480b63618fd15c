package config

import (
	"errors"
	"strings"
	"testing"
)

// validREST returns the base config with a valid REST upstream and proxy.
func validREST() *Config {
	c := valid()
	c.Upstreams = append(c.Upstreams, Upstream{Name: "billing", REST: &RESTUpstream{
		BaseURL:     "http://127.0.0.1:9090/v1",
		Headers:     map[string]string{"Authorization": "Bearer ${BILLING_API_KEY}"},
		InjectQuery: "user_id",
		Tools: []RESTTool{
			{Name: "get_invoice", Path: "/invoices/{id}", Query: []string{"expand"},
				InputSchema: map[string]any{"type": "object", "properties": map[string]any{"id": map[string]any{}, "expand": map[string]any{}}}},
			{Name: "create_invoice", Method: "post", Path: "/invoices", Body: []string{"*"}, Headers: map[string]string{"Content-Type": "application/merge-patch+json"}},
		},
	}})
	c.Proxy = Proxy{
		Target: "http://127.0.0.1:9090", InjectQuery: "uid", Headers: map[string]string{"X-Api-Key": "${K}", "Authorization": "Bearer x"},
		Routes: []ProxyRoute{{Prefix: "/"}, {Prefix: "/accounts/", Methods: []string{"get", "PROPFIND"}, Scopes: []string{"tool:read"}, Roles: []string{"sales"}}},
	}
	c.SetDefaults()
	return c
}

func TestValidateAcceptsRESTAndProxy(t *testing.T) {
	t.Parallel()
	c := validREST()
	if err := c.Validate(); err != nil {
		t.Fatalf("valid REST upstream and proxy refused: %v", err)
	}
	if c.Proxy.MaxBodyBytes != 64<<20 {
		t.Errorf("proxy.max_body_bytes default = %d, want 64 MiB", c.Proxy.MaxBodyBytes)
	}
	off := valid()
	if off.Proxy.MaxBodyBytes != 0 {
		t.Errorf("without a target the proxy gets no defaults: %+v", off.Proxy)
	}
}

func TestValidateReportsRESTAndProxyProblems(t *testing.T) {
	t.Parallel()
	rest := func(c *Config) *RESTUpstream { return c.Upstreams[2].REST }
	tool := func(c *Config) *RESTTool { return &c.Upstreams[2].REST.Tools[0] }
	const r = "upstreams[2].rest"
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   []problem
	}{
		{"a REST base URL that is not http(s)", func(c *Config) { rest(c).BaseURL = "ftp://x" },
			[]problem{{r + ".base_url", []string{"absolute http(s) URL"}}}},
		{"credentials in the REST base URL", func(c *Config) { rest(c).BaseURL = "https://u:p@api.example.com" },
			[]problem{{r + ".base_url", []string{"headers"}}}},
		{"the base URL query sets the injected parameter", func(c *Config) { rest(c).BaseURL = "http://h/?user_id=x" },
			[]problem{{r + ".base_url", []string{"user_id", "inject_query"}}}},
		{"a REST upstream without tools", func(c *Config) { rest(c).Tools = nil },
			[]problem{{r + ".tools", []string{"at least one tool"}}}},
		{"a bad and a duplicate tool name", func(c *Config) {
			rest(c).Tools[1].Name = "get_invoice"
			tool(c).Name = "bad name"
		}, []problem{{r + ".tools[0].name", []string{"letters, digits"}}}},
		{"a duplicate tool name", func(c *Config) { rest(c).Tools[1].Name = "get_invoice" },
			[]problem{{r + ".tools[1].name", []string{"used twice"}}}},
		{"an unknown method", func(c *Config) { tool(c).Method = "FETCH" },
			[]problem{{r + ".tools[0].method", []string{"GET, HEAD, POST"}}}},
		{"a missing path", func(c *Config) { tool(c).Path = "" },
			[]problem{{r + ".tools[0].path", []string{"required", "/accounts/{id}"}}}},
		{"a relative path", func(c *Config) { tool(c).Path = "invoices" },
			[]problem{{r + ".tools[0].path", []string{"must start with /"}}}},
		{"a query in the path", func(c *Config) { tool(c).Path = "/invoices?x=1" },
			[]problem{{r + ".tools[0].path", []string{"under query"}}}},
		{"an unclosed placeholder", func(c *Config) { tool(c).Path = "/invoices/{id" },
			[]problem{{r + ".tools[0].path", []string{"matching }"}}}},
		{"a stray }", func(c *Config) { tool(c).Path = "/invoices/id}" },
			[]problem{{r + ".tools[0].path", []string{"} without {"}}}},
		{"a placeholder that is not a name", func(c *Config) { tool(c).Path = "/invoices/{a b}" },
			[]problem{{r + ".tools[0].path", []string{"{a b} is not an argument name"}}}},
		{"a bad escape in the path", func(c *Config) { tool(c).Path = "/a%zz/{id}" },
			[]problem{{r + ".tools[0].path", []string{"escape"}}}},
		{"a query argument that is the injected parameter", func(c *Config) { tool(c).Query = []string{"expand", "user_id"} },
			[]problem{{r + ".tools[0].query[1]", []string{"inject_query", "verified subject"}}, {r + ".tools[0].input_schema.properties", []string{`"user_id"`}}}},
		{"a repeated query argument", func(c *Config) { tool(c).Query = []string{"expand", "expand"} },
			[]problem{{r + ".tools[0].query[1]", []string{"twice"}}}},
		{"a body on a GET", func(c *Config) { tool(c).Body = []string{"*"} },
			[]problem{{r + ".tools[0].body", []string{"GET request carries no body"}}}},
		{"a body entry that is not a name", func(c *Config) { rest(c).Tools[1].Body = []string{"a b"} },
			[]problem{{r + ".tools[1].body[0]", []string{`"*"`}}}},
		{"an input schema that is not an object schema", func(c *Config) { tool(c).InputSchema = map[string]any{"type": "string"} },
			[]problem{{r + ".tools[0].input_schema.type", []string{"object"}}}},
		{"an input schema that does not declare a path argument", func(c *Config) {
			tool(c).InputSchema = map[string]any{"type": "object", "properties": map[string]any{"expand": map[string]any{}}}
		}, []problem{{r + ".tools[0].input_schema.properties", []string{`"id"`}}}},
		{"an input schema JSON cannot encode", func(c *Config) {
			tool(c).InputSchema = map[string]any{"type": "object", "x": map[any]any{1: 2}}
		}, []problem{{r + ".tools[0].input_schema", []string{"JSON"}}}},
		{"a REST header that forges the identity (any spelling)", func(c *Config) { rest(c).Headers["x-USER-id"] = "admin" },
			[]problem{{r + ".headers.x-USER-id", []string{"identity header", "identity_headers.user"}}}},
		{"a REST tool header the transport owns", func(c *Config) { tool(c).Headers = map[string]string{"Transfer-Encoding": "chunked"} },
			[]problem{{r + ".tools[0].headers.Transfer-Encoding", []string{"transport"}}}},
		{"a REST header with a newline", func(c *Config) { rest(c).Headers["X-K"] = "a\r\nX-User-Id: admin" },
			[]problem{{r + ".headers.X-K", []string{"control characters"}}}},
		{"an injected query name that is not plain", func(c *Config) { rest(c).InjectQuery = "a&b" },
			[]problem{{r + ".inject_query", []string{"plain query parameter"}}}},

		{"proxy settings without a target", func(c *Config) { c.Proxy.Target = "" },
			[]problem{{"proxy.target", []string{"required", "PROXY_TARGET"}}}},
		{"a proxy target that is not http(s)", func(c *Config) { c.Proxy.Target = "unix:///x" },
			[]problem{{"proxy.target", []string{"absolute http(s) URL"}}}},
		{"credentials in the proxy target", func(c *Config) { c.Proxy.Target = "http://u:p@h" },
			[]problem{{"proxy.target", []string{"proxy.headers"}}}},
		{"a proxy without routes", func(c *Config) { c.Proxy.Routes = nil },
			[]problem{{"proxy.routes", []string{"at least one route"}}}},
		{"a relative prefix", func(c *Config) { c.Proxy.Routes[1].Prefix = "accounts" },
			[]problem{{"proxy.routes[1].prefix", []string{"must start with /"}}}},
		{"a wildcard prefix", func(c *Config) { c.Proxy.Routes[1].Prefix = "/accounts/*" },
			[]problem{{"proxy.routes[1].prefix", []string{"no wildcards"}}}},
		{"a prefix with dot segments", func(c *Config) { c.Proxy.Routes[1].Prefix = "/a/../b" },
			[]problem{{"proxy.routes[1].prefix", []string{`".."`}}}},
		{"the same prefix twice, trailing slash aside", func(c *Config) { c.Proxy.Routes = append(c.Proxy.Routes, ProxyRoute{Prefix: "/accounts"}) },
			[]problem{{"proxy.routes[2].prefix", []string{"used twice"}}}},
		{"a method that is not a token", func(c *Config) { c.Proxy.Routes[1].Methods = []string{"GET POST"} },
			[]problem{{"proxy.routes[1].methods[0]", []string{"not an HTTP method"}}}},
		{"a bad scope and role", func(c *Config) {
			c.Proxy.Routes[1].Scopes = []string{"a b"}
			c.Proxy.Routes[1].Roles = []string{"x y"}
		}, []problem{{"proxy.routes[1].scopes[0]", []string{"scope token"}}, {"proxy.routes[1].roles[0]", []string{"role"}}}},
		{"a proxy header that forges the identity", func(c *Config) { c.Proxy.Headers["X-Org-Id"] = "acme" },
			[]problem{{"proxy.headers.X-Org-Id", []string{"identity_headers.tenant"}}}},
		{"a proxy Content-* header", func(c *Config) { c.Proxy.Headers["Content-Type"] = "text/plain" },
			[]problem{{"proxy.headers.Content-Type", []string{"transport"}}}},
		{"a proxy body cap out of range", func(c *Config) { c.Proxy.MaxBodyBytes = 10 },
			[]problem{{"proxy.max_body_bytes", []string{"1024"}}}},
		{"the target query sets the injected parameter", func(c *Config) { c.Proxy.Target = "http://h/?uid=1" },
			[]problem{{"proxy.target", []string{"uid"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validREST()
			tt.mutate(c)
			err := c.Validate()
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("Validate = %v, want problems", err)
			}
			got := map[string]string{}
			for _, p := range ps {
				got[p.Field] = p.Message
			}
			for _, w := range tt.want {
				msg, ok := got[w.field]
				if !ok {
					t.Errorf("no problem reported for %s; got %v", w.field, ps)
					continue
				}
				for _, s := range w.msg {
					if !strings.Contains(msg, s) {
						t.Errorf("%s: message %q does not contain %q", w.field, msg, s)
					}
				}
			}
			if len(ps) != len(tt.want) {
				t.Errorf("got %d problems, want %d:\n%v", len(ps), len(tt.want), err)
			}
		})
	}
}

func TestProxyEnvironmentVariables(t *testing.T) {
	t.Parallel()
	const file = `
public_url: "http://127.0.0.1:8080"
auth:
  issuer: "https://issuer"
  audience: "http://127.0.0.1:8080/mcp"
upstreams:
  - name: api
    rest:
      base_url: "http://127.0.0.1:9090"
      tools: [{name: t, path: /t}]
  - name: own
    rest:
      base_url: "http://127.0.0.1:9091"
      inject_query: mine
      tools: [{name: t, path: /t}]
proxy:
  routes: [{prefix: /}]
`
	c, err := Load(writeConfig(t, file), env(map[string]string{
		"PROXY_TARGET": "http://127.0.0.1:7000", "PROXY_INJECT_HEADER": "X-Auth-User", "PROXY_INJECT_QUERY": "user_id",
	}))
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "proxy.target", c.Proxy.Target, "http://127.0.0.1:7000")
	eq(t, "identity_headers.user", c.IdentityHeaders.User, "X-Auth-User")
	eq(t, "proxy.inject_query", c.Proxy.InjectQuery, "user_id")
	eq(t, "upstreams[0].rest.inject_query", c.Upstreams[0].REST.InjectQuery, "user_id")
	eq(t, "upstreams[1].rest.inject_query (its own wins)", c.Upstreams[1].REST.InjectQuery, "mine")
	eq(t, "proxy.max_body_bytes", c.Proxy.MaxBodyBytes, int64(64<<20))
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}

	c, err = Load(writeConfig(t, file), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "proxy.target: required") {
		t.Errorf("routes without PROXY_TARGET: %v", err)
	}
}
