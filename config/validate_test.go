package config

import (
	"errors"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// valid returns a fresh configuration that validates cleanly; each test case
// breaks one thing in it.
func valid() *Config {
	c := &Config{
		Listen:    "127.0.0.1:8080",
		PublicURL: "http://127.0.0.1:8080",
		Auth: Auth{
			Issuer:         "http://127.0.0.1:5051",
			Audience:       "http://127.0.0.1:8080/mcp",
			BaselineScopes: []string{"tool:read"},
			StepUpScopes:   []string{"tool:write"},
		},
		Outbound: Outbound{AllowHTTPLoopback: true},
		Upstreams: []Upstream{
			{Name: "notes", MCP: &MCPUpstream{URL: "http://127.0.0.1:5052/mcp"}},
			{Name: "crm", MCP: &MCPUpstream{URL: "http://127.0.0.1:5053/mcp", Headers: map[string]string{"Authorization": "Bearer ${CRM_API_KEY}"}}},
		},
		Policy: Policy{Tools: map[string]ToolRule{
			"notes__*":          {Scopes: []string{"tool:read"}},
			"notes__write_note": {Scopes: []string{"tool:write"}},
			"crm__*":            {Scopes: []string{"crm:read"}, Roles: []string{"sales"}},
		}},
	}
	c.SetDefaults()
	return c
}

func TestValidAcceptsTheBaseConfig(t *testing.T) {
	t.Parallel()
	if err := valid().Validate(); err != nil {
		t.Fatalf("the base config must be valid, or every case below proves nothing: %v", err)
	}
}

// problem is an expected Problem: the exact field path and substrings of
// the message.
type problem struct {
	field string
	msg   []string
}

func TestValidateReportsEachProblemWithFieldAndFix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(c *Config)
		want   []problem // exactly these problems, in any order; nil: valid
	}{
		// audit
		{"a malformed raw_arguments glob is reported, not left to match nothing",
			func(c *Config) { c.Audit.RawArguments = []string{"notes__[", "notes__*"} },
			[]problem{{"audit.raw_arguments", []string{`"notes__["`}}}},
		// auth
		{"an empty audience is required and names the expected URL",
			func(c *Config) { c.Auth.Audience = "" },
			[]problem{{"auth.audience", []string{"required", "http://127.0.0.1:8080/mcp", "OAUTH_AUDIENCE"}}}},
		{"an audience other than public_url+/mcp names the expected URL",
			func(c *Config) { c.Auth.Audience = "https://gateway.local/api" },
			[]problem{{"auth.audience", []string{`"https://gateway.local/api"`, "set the audience", "to http://127.0.0.1:8080/mcp"}}}},
		{"an audience with a trailing slash is a mismatch",
			func(c *Config) { c.Auth.Audience = "http://127.0.0.1:8080/mcp/" },
			[]problem{{"auth.audience", []string{"http://127.0.0.1:8080/mcp"}}}},
		{"an audience under a public path must include it",
			func(c *Config) {
				c.PublicURL = "https://gw.example.com/gw"
				c.Auth.Audience = "https://gw.example.com/mcp"
			},
			[]problem{{"auth.audience", []string{"https://gw.example.com/gw/mcp"}}}},
		{"an empty issuer is required",
			func(c *Config) { c.Auth.Issuer = ""; c.Auth.AuthorizationServers = nil },
			[]problem{{"auth.issuer", []string{"required", "OAUTH_ISSUER"}}}},
		{"a relative issuer is refused",
			func(c *Config) { c.Auth.Issuer = "idp.example.com" },
			[]problem{{"auth.issuer", []string{"absolute http(s) URL"}}}},
		{"a non-http jwks_uri is refused",
			func(c *Config) { c.Auth.JWKSURI = "file:///etc/jwks.json" },
			[]problem{{"auth.jwks_uri", []string{"absolute http(s) URL"}}}},
		{"alg none is refused",
			func(c *Config) { c.Auth.Algorithms = []string{"RS256", "none"} },
			[]problem{{"auth.algorithms[1]", []string{`"none"`, "never none or HS*"}}}},
		{"HS256 is refused",
			func(c *Config) { c.Auth.Algorithms = []string{"HS256"} },
			[]problem{{"auth.algorithms[0]", []string{`"HS256"`, "asymmetric"}}}},
		{"algorithm names are case-sensitive",
			func(c *Config) { c.Auth.Algorithms = []string{"rs256"} },
			[]problem{{"auth.algorithms[0]", []string{`"rs256"`}}}},
		{"RS256 and PS256 together are fine",
			func(c *Config) { c.Auth.Algorithms = []string{"RS256", "PS256"} },
			nil},
		{"a negative clock skew is refused",
			func(c *Config) { c.Auth.ClockSkew = -time.Second },
			[]problem{{"auth.clock_skew", []string{"0s to 10m"}}}},
		{"a clock skew over 10m is refused",
			func(c *Config) { c.Auth.ClockSkew = 11 * time.Minute },
			[]problem{{"auth.clock_skew", []string{"0s to 10m"}}}},
		{"a negative JWKS refetch cooldown is refused",
			func(c *Config) { c.Auth.JWKSRefetchCooldown = -time.Second },
			[]problem{{"auth.jwks_refetch_cooldown", []string{"positive"}}}},
		{"a relative authorization server is refused",
			func(c *Config) { c.Auth.AuthorizationServers = []string{"http://ok", "nope"} },
			[]problem{{"auth.authorization_servers[1]", []string{`"nope"`}}}},
		{"a step-up scope that is also baseline is refused",
			func(c *Config) { c.Auth.StepUpScopes = []string{"tool:write", "tool:read"} },
			[]problem{{"auth.step_up_scopes[1]", []string{`"tool:read"`, "also a baseline scope"}}}},
		{"offline_access in baseline scopes is refused",
			func(c *Config) { c.Auth.BaselineScopes = []string{"tool:read", "offline_access"} },
			[]problem{{"auth.baseline_scopes[1]", []string{"offline_access", "remove it"}}}},
		{"offline_access in step-up scopes is refused",
			func(c *Config) { c.Auth.StepUpScopes = []string{"offline_access"} },
			[]problem{{"auth.step_up_scopes[0]", []string{"offline_access"}}}},
		{"offline_access in a tool rule is refused",
			func(c *Config) { c.Policy.Tools["notes__sync"] = ToolRule{Scopes: []string{"offline_access"}} },
			[]problem{{`policy.tools["notes__sync"].scopes[0]`, []string{"offline_access"}}}},
		{"a scope with a space or quote is refused",
			func(c *Config) { c.Auth.BaselineScopes = []string{"tool read", `tool"x`} },
			[]problem{
				{"auth.baseline_scopes[0]", []string{"not a valid scope token"}},
				{"auth.baseline_scopes[1]", []string{"not a valid scope token"}},
			}},

		// listen and public_url
		{"a listen address without a port is refused",
			func(c *Config) { c.Listen = "127.0.0.1" },
			[]problem{{"listen", []string{`"127.0.0.1"`, "127.0.0.1:8080"}}}},
		// Regression invariant: listen has a numeric port from 0 to 65535.
		{"a listen port that is not a number is refused",
			func(c *Config) { c.Listen = "127.0.0.1:http" },
			[]problem{{"listen", []string{"0 to 65535"}}}},
		{"a listen port over 65535 is refused",
			func(c *Config) { c.Listen = ":99999" },
			[]problem{{"listen", []string{"0 to 65535"}}}},
		{"a listen address with only a port is fine",
			func(c *Config) { c.Listen = ":8080" },
			nil},
		// Regression invariant: public_url names a host (":8080" used to default to "http://:8080" and pass).
		{"a public URL without a host is refused",
			func(c *Config) { c.PublicURL = "http://:8080"; c.Auth.Audience = c.Resource() },
			[]problem{{"public_url", []string{"with a host"}}}},
		{"a public URL with a query is refused",
			func(c *Config) { c.PublicURL = "http://127.0.0.1:8080?x=1"; c.Auth.Audience = c.Resource() },
			[]problem{{"public_url", []string{"query"}}}},
		{"a public URL with credentials is refused",
			func(c *Config) { c.PublicURL = "http://u:p@127.0.0.1:8080"; c.Auth.Audience = c.Resource() },
			[]problem{{"public_url", []string{"credentials"}}}},

		// identity headers
		{"an identity header named Authorization is refused",
			func(c *Config) { c.IdentityHeaders.User = "authorization" },
			[]problem{
				{"identity_headers.user", []string{"reserved"}},
				// and the crm upstream's static Authorization now collides with it
				{"upstreams[1].mcp.headers.Authorization", []string{"identity header"}},
			}},
		{"an identity header named like an MCP header is refused",
			func(c *Config) { c.IdentityHeaders.Tenant = "Mcp-Tenant" },
			[]problem{{"identity_headers.tenant", []string{"reserved"}}}},
		{"two identity headers with one name (in any case) are refused",
			func(c *Config) { c.IdentityHeaders.Scopes = "x-user-id" },
			[]problem{{"identity_headers.scopes", []string{"also used by identity_headers.user"}}}},
		{"an identity header with a space is refused",
			func(c *Config) { c.IdentityHeaders.User = "X User" },
			[]problem{{"identity_headers.user", []string{"not a valid HTTP header name"}}}},

		// upstreams
		{"no upstream is refused",
			func(c *Config) { c.Upstreams = nil; c.Policy.Tools = nil },
			[]problem{{"upstreams", []string{"at least one upstream"}}}},
		{"duplicate upstream names are refused",
			func(c *Config) { c.Upstreams[1].Name = "notes"; delete(c.Policy.Tools, "crm__*") },
			[]problem{{"upstreams[1].name", []string{`"notes"`, "used twice"}}}},
		{"an upstream name with capitals or underscores is refused",
			func(c *Config) { c.Upstreams[1].Name = "CRM_x"; delete(c.Policy.Tools, "crm__*") },
			[]problem{{"upstreams[1].name", []string{"lowercase"}}}},
		{"an upstream without a kind is refused",
			func(c *Config) { c.Upstreams[1].MCP = nil },
			[]problem{{"upstreams[1]", []string{"mcp: {url"}}}},
		{"a relative upstream URL is refused",
			func(c *Config) { c.Upstreams[0].MCP.URL = "127.0.0.1:5052/mcp" },
			[]problem{{"upstreams[0].mcp.url", []string{"http://127.0.0.1:5052/mcp"}}}},
		{"an upstream URL with another scheme is refused",
			func(c *Config) { c.Upstreams[0].MCP.URL = "ftp://127.0.0.1/mcp" },
			[]problem{{"upstreams[0].mcp.url", []string{"absolute http(s) URL"}}}},
		{"an upstream URL without a host is refused",
			func(c *Config) { c.Upstreams[0].MCP.URL = "http://:5052/mcp" },
			[]problem{{"upstreams[0].mcp.url", []string{"absolute http(s) URL"}}}},
		// Regression invariant: every field of an upstream is checked, even when another is broken.
		{"a negative upstream timeout is refused even when the kind is missing too",
			func(c *Config) { c.Upstreams[1].MCP = nil; c.Upstreams[1].Timeout = -time.Second },
			[]problem{{"upstreams[1].timeout", []string{"positive"}}, {"upstreams[1]", []string{"set exactly one upstream kind"}}}},
		// Regression invariant: an upstream may receive its own credentials as static Authorization/Cookie headers.
		{"an upstream's own Authorization header is allowed",
			func(c *Config) {
				c.Upstreams[0].MCP.Headers = map[string]string{"authorization": "Bearer k", "X-Api-Key": "k", "Cookie": "s=1"}
			},
			nil},
		{"a static header forging the user identity header (any case) is refused",
			func(c *Config) { c.Upstreams[1].MCP.Headers["x-user-id"] = "admin" },
			[]problem{{"upstreams[1].mcp.headers.x-user-id", []string{"X-User-Id is the identity header", "identity_headers.user"}}}},
		{"a static header forging a renamed identity header is refused",
			func(c *Config) {
				c.IdentityHeaders.Tenant = "X-Tenant"
				c.Upstreams[1].MCP.Headers["X-Tenant"] = "acme"
			},
			[]problem{{"upstreams[1].mcp.headers.X-Tenant", []string{"identity header", "identity_headers.tenant"}}}},
		{"static Mcp-*, Host, Content-* and Connection headers are refused",
			func(c *Config) {
				for _, h := range []string{"Mcp-Session-Id", "mcp-protocol-version", "Mcp-Param-Id", "Host", "Content-Type", "content-length", "Connection", "Transfer-Encoding"} {
					c.Upstreams[0].MCP.Headers = mapWith(c.Upstreams[0].MCP.Headers, h, "x")
				}
			},
			[]problem{
				{"upstreams[0].mcp.headers.Connection", []string{"sets this header itself"}},
				{"upstreams[0].mcp.headers.Content-Type", []string{"sets this header itself"}},
				{"upstreams[0].mcp.headers.Host", []string{"sets this header itself"}},
				{"upstreams[0].mcp.headers.Mcp-Param-Id", []string{"sets this header itself"}},
				{"upstreams[0].mcp.headers.Mcp-Session-Id", []string{"sets this header itself"}},
				{"upstreams[0].mcp.headers.Transfer-Encoding", []string{"sets this header itself"}},
				{"upstreams[0].mcp.headers.content-length", []string{"sets this header itself"}},
				{"upstreams[0].mcp.headers.mcp-protocol-version", []string{"sets this header itself"}},
			}},
		{"a static header value with CR/LF is refused",
			func(c *Config) { c.Upstreams[1].MCP.Headers["X-Api-Key"] = "k\r\nX-User-Id: admin" },
			[]problem{{"upstreams[1].mcp.headers.X-Api-Key", []string{"control characters"}}}},
		{"a static header with an invalid name is refused",
			func(c *Config) { c.Upstreams[1].MCP.Headers["X Api"] = "k" },
			[]problem{{"upstreams[1].mcp.headers.X Api", []string{"not a valid HTTP header name"}}}},

		// policy
		{"a policy pattern referencing an unknown upstream is refused",
			func(c *Config) { c.Policy.Tools["files__read"] = ToolRule{Scopes: []string{"tool:read"}} },
			[]problem{{`policy.tools["files__read"]`, []string{`unknown upstream "files"`}}}},
		{"a glob pattern referencing an unknown upstream is refused",
			func(c *Config) { c.Policy.Tools["nots__*"] = ToolRule{} },
			[]problem{{`policy.tools["nots__*"]`, []string{`unknown upstream "nots"`}}}},
		{"a glob over upstream names is not checked against them",
			func(c *Config) { c.Policy.Tools["*__ping"] = ToolRule{} },
			nil},
		// Regression invariant: an exact policy name must be able to match a tool of some upstream.
		{"an exact tool name without an upstream prefix is refused when every upstream prefixes",
			func(c *Config) { c.Policy.Tools["read_note"] = ToolRule{Scopes: []string{"tool:read"}} },
			[]problem{{`policy.tools["read_note"]`, []string{"matches no tool", "notes__read_note"}}}},
		{"unprefixed names are fine when an upstream is unprefixed",
			func(c *Config) {
				f := false
				c.Upstreams[0].Prefix = &f
				c.Policy.Tools["read_note"] = ToolRule{}
				c.Policy.Tools["other__thing"] = ToolRule{}
			},
			nil},
		{"an invalid glob is refused",
			func(c *Config) { c.Policy.Tools["notes__[a"] = ToolRule{} },
			[]problem{{`policy.tools["notes__[a"]`, []string{"invalid glob"}}}},
		{"an empty pattern is refused",
			func(c *Config) { c.Policy.Tools[""] = ToolRule{} },
			[]problem{{`policy.tools[""]`, []string{"empty pattern"}}}},
		{"a role with a space is refused",
			func(c *Config) { c.Policy.Tools["crm__*"] = ToolRule{Roles: []string{"sales team"}} },
			[]problem{{`policy.tools["crm__*"].roles[0]`, []string{"not a valid role"}}}},
		{"a policy default other than deny is refused",
			func(c *Config) { c.Policy.Default = "allow" },
			[]problem{{"policy.default", []string{"deny-by-default"}}}},

		// server
		{"a wildcard origin is refused",
			func(c *Config) { c.Server.AllowedOrigins = []string{"*"} },
			[]problem{{"server.allowed_origins[0]", []string{"wildcards are not allowed"}}}},
		{"a wildcard subdomain origin is refused",
			func(c *Config) { c.Server.AllowedOrigins = []string{"https://*.example.com"} },
			[]problem{{"server.allowed_origins[0]", []string{"not an origin"}}}},
		{"an origin with a path is refused",
			func(c *Config) { c.Server.AllowedOrigins = []string{"https://app.example.com/app"} },
			[]problem{{"server.allowed_origins[0]", []string{"scheme://host[:port]"}}}},
		// Regression invariant: an allowed origin is scheme://host[:port] and nothing else.
		{"an origin with a query is refused",
			func(c *Config) { c.Server.AllowedOrigins = []string{"https://app.example.com?x=1"} },
			[]problem{{"server.allowed_origins[0]", []string{"not an origin"}}}},
		{"an origin without a scheme is refused",
			func(c *Config) { c.Server.AllowedOrigins = []string{"app.example.com"} },
			[]problem{{"server.allowed_origins[0]", []string{"not an origin"}}}},
		{"origins with ports and a trailing slash are fine",
			func(c *Config) {
				c.Server.AllowedOrigins = []string{"http://localhost:6274", "https://app.example.com/"}
			},
			nil},
		{"a session key that is not base64 is refused",
			func(c *Config) { c.Server.SessionKey = "not base64!" },
			[]problem{{"server.session_key", []string{"openssl rand -base64 32"}}}},
		{"a session key of 16 bytes is refused",
			func(c *Config) { c.Server.SessionKey = "AAAAAAAAAAAAAAAAAAAAAA==" },
			[]problem{{"server.session_key", []string{"32 random bytes"}}}},
		{"a session key of 32 bytes is fine",
			func(c *Config) { c.Server.SessionKey = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" },
			nil},
		{"a body limit under 1 KiB is refused",
			func(c *Config) { c.Server.MaxBodyBytes = 10 },
			[]problem{{"server.max_body_bytes", []string{"1024 to 67108864"}}}},
		{"a zero upstream timeout is refused",
			func(c *Config) { c.Server.UpstreamTimeout = 0 },
			[]problem{{"server.upstream_timeout", []string{"positive"}}}},
		{"an unknown log level is refused",
			func(c *Config) { c.Log.Level = "verbose" },
			[]problem{{"log.level", []string{"debug, info, warn, error"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := valid()
			tt.mutate(c)
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: want no problem, got %v", err)
				}
				return
			}
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("Validate = %v (%T), want Problems", err, err)
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

func mapWith(m map[string]string, k, v string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	m[k] = v
	return m
}

func TestValidateReportsEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	c := valid()
	c.Listen = "nope"
	c.Auth.Audience = ""
	c.Auth.Algorithms = []string{"none", "HS256"}
	c.Auth.StepUpScopes = []string{"tool:read"}
	c.Auth.BaselineScopes = []string{"tool:read", "offline_access"}
	c.Upstreams = append(c.Upstreams, Upstream{Name: "notes", MCP: &MCPUpstream{URL: "::bad"}})
	c.Policy.Tools["ghost__x"] = ToolRule{}
	c.Server.AllowedOrigins = []string{"*"}
	c.Server.SessionKey = "short"
	err := c.Validate()
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Validate = %v, want Problems", err)
	}
	wantFields := []string{
		"listen", "auth.audience", "auth.algorithms[0]", "auth.algorithms[1]",
		"auth.baseline_scopes[1]", "auth.step_up_scopes[0]", "upstreams[2].name", "upstreams[2].mcp.url",
		`policy.tools["ghost__x"]`, "server.allowed_origins[0]", "server.session_key",
	}
	var gotFields []string
	for _, p := range ps {
		gotFields = append(gotFields, p.Field)
		if p.Message == "" {
			t.Errorf("%s: empty message; every problem must say how to fix it", p.Field)
		}
	}
	slices.Sort(gotFields)
	slices.Sort(wantFields)
	if !slices.Equal(gotFields, wantFields) {
		t.Errorf("problem fields:\n got %q\nwant %q", gotFields, wantFields)
	}
	text := err.Error()
	if !strings.HasPrefix(text, "invalid configuration:\n  ") {
		t.Errorf("Error() = %q, want the invalid configuration header", text)
	}
	for _, p := range ps {
		if !strings.Contains(text, "\n  "+p.Field+": "+p.Message) {
			t.Errorf("Error() does not list %q on its own line", p.String())
		}
	}
}

func TestValidateHasNoSideEffectsAndIsDeterministic(t *testing.T) {
	t.Parallel()
	c := valid()
	c.Upstreams[0].MCP.Headers = map[string]string{"Host": "x", "Mcp-Name": "y", "Connection": "z", "Content-Type": "w", "X-User-Id": "v"}
	c.Policy.Tools["a__x"] = ToolRule{}
	c.Policy.Tools["b__x"] = ToolRule{}
	before := clone(c)
	first := c.Validate()
	if first == nil {
		t.Fatal("want problems")
	}
	if !reflect.DeepEqual(c, before) {
		t.Errorf("Validate changed the config:\n got %#v\nwant %#v", c, before)
	}
	for range 20 {
		if again := c.Validate(); again.Error() != first.Error() {
			t.Fatalf("Validate is not deterministic:\n%v\n---\n%v", first, again)
		}
	}
}

func clone(c *Config) *Config {
	d := *c
	d.Upstreams = slices.Clone(c.Upstreams)
	for i, u := range d.Upstreams {
		if u.MCP != nil {
			m := *u.MCP
			m.Headers = maps.Clone(u.MCP.Headers)
			d.Upstreams[i].MCP = &m
		}
	}
	d.Policy.Tools = maps.Clone(c.Policy.Tools)
	return &d
}

// The shipped example must load and validate cleanly with no environment
// at all, and show what it promises to show.
func TestExampleConfigLoadsAndValidates(t *testing.T) {
	t.Parallel()
	c, err := Load("../gatewaystack.example.yaml", env(nil))
	if err != nil {
		t.Fatalf("Load example: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("the example config does not validate:\n%v", err)
	}
	eq(t, "resource", c.Resource(), c.Auth.Audience)
	if len(c.Upstreams) < 2 {
		t.Fatalf("upstreams = %d, want notes and crm first", len(c.Upstreams))
	}
	eq(t, "upstreams[0]", [2]string{c.Upstreams[0].Name, c.Upstreams[0].MCP.URL}, [2]string{"notes", "http://127.0.0.1:5052/mcp"})
	eq(t, "upstreams[1]", [2]string{c.Upstreams[1].Name, c.Upstreams[1].MCP.URL}, [2]string{"crm", "http://127.0.0.1:5053/mcp"})
	eq(t, "crm headers", c.Upstreams[1].MCP.Headers, map[string]string{"Authorization": "Bearer ${CRM_API_KEY}"})
	if len(c.Auth.BaselineScopes) == 0 || len(c.Auth.StepUpScopes) == 0 {
		t.Error("the example must show baseline and step-up scopes")
	}
	var exact, glob bool
	for p := range c.Policy.Tools {
		if strings.ContainsAny(p, "*?[") {
			glob = true
		} else {
			exact = true
		}
	}
	if !exact || !glob {
		t.Errorf("the example policy must show exact and glob patterns; got %v", slices.Collect(maps.Keys(c.Policy.Tools)))
	}
}

// Every field of Config must be documented in the example: a field added to
// the struct without a line in the example fails here.
func TestExampleConfigMentionsEveryField(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../gatewaystack.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	var walk func(tp reflect.Type, path string)
	walk = func(tp reflect.Type, path string) {
		for f := range tp.Fields() {
			tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			p := path + tag
			if !strings.Contains(text, tag+":") {
				t.Errorf("the example does not document %s", p)
			}
			ft := f.Type
			for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Duration]() {
				walk(ft, p+".")
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
}
