package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// env returns a getenv function backed by m, so tests stay parallel and
// never read the process environment.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// writeConfig writes body to a fresh file and returns its path.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gatewaystack.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const minimalYAML = `
outbound: { allow_http_loopback: true }
auth:
  issuer: "http://127.0.0.1:5051"
  audience: "http://127.0.0.1:8080/mcp"
upstreams:
  - name: notes
    mcp: { url: "http://127.0.0.1:5052/mcp" }
policy:
  tools:
    "notes__*": { scopes: ["tool:read"] }
`

func TestDecodeIsStrict(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		// wantErr lists substrings the error must contain; empty means success.
		wantErr []string
	}{
		{name: "an empty document decodes to the zero config", yaml: ""},
		{name: "a comment-only document decodes to the zero config", yaml: "# nothing\n"},
		{name: "a known field decodes", yaml: "listen: \"127.0.0.1:9999\"\n"},
		{
			name:    "an unknown top-level field is an error with its line number",
			yaml:    "listen: \"127.0.0.1:8080\"\nlistne: \":1\"\n",
			wantErr: []string{"line 2", "listne"},
		},
		{
			name:    "an unknown nested field is an error with its line number",
			yaml:    "auth:\n  issuer: \"http://x\"\n  isuer: \"http://y\"\n",
			wantErr: []string{"line 3", "isuer"},
		},
		{
			name:    "an unknown field inside an upstream list item is an error",
			yaml:    "upstreams:\n  - name: a\n    mcp: { url: \"http://x/mcp\", header: {} }\n",
			wantErr: []string{"line 3", "header"},
		},
		{
			name:    "a duplicate key is an error",
			yaml:    "listen: \":1\"\nlisten: \":2\"\n",
			wantErr: []string{"line 2", "listen"},
		},
		{
			name:    "a bare number for a duration is an error, not nanoseconds",
			yaml:    "auth:\n  clock_skew: 60\n",
			wantErr: []string{"line 2"},
		},
		{
			name:    "a second YAML document is an error",
			yaml:    "listen: \":1\"\n---\nlisten: \":2\"\n",
			wantErr: []string{"line 2", "second YAML document"}, // the "---" line
		},
		{
			name:    "a scalar where a list is expected is an error",
			yaml:    "auth:\n  algorithms: RS256\n",
			wantErr: []string{"line 2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var c Config
			err := Decode([]byte(tt.yaml), &c)
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Decode: unexpected error %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Decode: want an error containing %q, got none", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Decode error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadFillsDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(writeConfig(t, minimalYAML), nil)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		field string
		got   any
		want  any
	}{
		{"listen", c.Listen, "127.0.0.1:8080"},
		{"public_url", c.PublicURL, "http://127.0.0.1:8080"},
		{"auth.jwks_uri", c.Auth.JWKSURI, "http://127.0.0.1:5051/.well-known/jwks.json"},
		{"auth.algorithms", c.Auth.Algorithms, []string{"RS256"}},
		{"auth.clock_skew", c.Auth.ClockSkew, 60 * time.Second},
		{"auth.tenant_claim", c.Auth.TenantClaim, "org_id"},
		{"auth.roles_claim", c.Auth.RolesClaim, "roles"},
		{"auth.authorization_servers", c.Auth.AuthorizationServers, []string{"http://127.0.0.1:5051"}},
		{"auth.jwks_refetch_cooldown", c.Auth.JWKSRefetchCooldown, 30 * time.Second},
		{"identity_headers.user", c.IdentityHeaders.User, "X-User-Id"},
		{"identity_headers.tenant", c.IdentityHeaders.Tenant, "X-Org-Id"},
		{"identity_headers.scopes", c.IdentityHeaders.Scopes, "X-User-Scopes"},
		{"policy.default", c.Policy.Default, "deny"},
		{"server.max_body_bytes", c.Server.MaxBodyBytes, int64(4 << 20)},
		{"server.upstream_timeout", c.Server.UpstreamTimeout, 30 * time.Second},
		{"server.session_ttl", c.Server.SessionTTL, 24 * time.Hour},
		{"log.level", c.Log.Level, "info"},
		{"log.audit", c.Log.AuditEnabled(), true},
		{"upstreams[0].timeout", c.Upstreams[0].Timeout, 30 * time.Second},
		{"upstreams[0].prefix", c.Upstreams[0].Prefixed(), true},
		{"resource", c.Resource(), "http://127.0.0.1:8080/mcp"},
		{"mcp path", c.MCPPath(), "/mcp"},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %#v, want %#v", ck.field, ck.got, ck.want)
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("the minimal config with defaults does not validate: %v", err)
	}
}

func TestSetDefaultsKeepsExplicitValues(t *testing.T) {
	t.Parallel()
	f := false
	zero, seven := 0, 7
	c := Config{
		Listen:    "10.0.0.1:9000",
		PublicURL: "https://gw.example.com/",
		Auth: Auth{
			Issuer: "https://idp.example.com/", JWKSURI: "https://keys.example.com/jwks",
			Algorithms: []string{"PS256"}, ClockSkew: 5 * time.Second, TenantClaim: "tid", RolesClaim: "groups",
			AuthorizationServers: []string{"https://as.example.com"}, JWKSRefetchCooldown: time.Minute,
			MaxTokenLifetime: time.Hour, TokenTypes: []string{"at+jwt"}, JWKSMaxStale: 2 * time.Hour,
		},
		IdentityHeaders: IdentityHeaders{User: "X-Sub", Tenant: "X-Tenant", Scopes: "X-Scopes"},
		Upstreams:       []Upstream{{Name: "a", Prefix: &f, Timeout: 2 * time.Second, MCP: &MCPUpstream{URL: "http://a/mcp"}}},
		Server: Server{MaxBodyBytes: 2048, UpstreamTimeout: 3 * time.Second, SessionTTL: time.Hour, MaxSessionsPerSubject: 9, MaxStreamsPerSession: 2, MaxStreamsPerSubject: 5,
			ReadHeaderTimeout: time.Second, ReadTimeout: 2 * time.Second, IdleTimeout: 3 * time.Second,
			MaxHeaderBytes: 8192, MaxConcurrent: 10, MaxConcurrentPerSubject: 2, GCPercent: 300},
		Log: Log{Level: "debug", Audit: &f},
		Limits: Limits{Store: "redis://127.0.0.1:6379", OnStoreError: FailOpen, StoreTimeout: time.Second, PerSubject: Rate{Requests: &zero, Window: time.Second, Burst: 1},
			PerTenant: Rate{Requests: &seven, Window: time.Hour, Burst: 2}, PerIP: Rate{Requests: &seven, Window: time.Second, Burst: 3},
			PerTool: map[string]Rate{"a__x": {Requests: &seven, Window: time.Minute, Burst: 1}}, MaxKeys: 10,
			Budgets:   Budgets{PerTenant: Budget{Units: 7, Period: time.Hour}, PerSubject: Budget{Period: 720 * time.Hour}, Costs: map[string]int64{"a__*": 0}},
			LoopGuard: LoopGuard{MaxRepeats: &zero, Window: time.Second, PerTool: map[string]LoopRule{"a__*": {MaxRepeats: &seven, Window: time.Hour}}}},
		Admin: Admin{Scope: "ops"},
		Audit: Audit{File: AuditFile{Path: "/var/log/gs.jsonl", MaxBytes: 4096, MaxFiles: 3}, QueueSize: 5, CheckpointEvery: 50,
			Webhook: AuditWebhook{URL: "https://siem.example.com/in", BatchSize: 7, FlushInterval: time.Second, Timeout: time.Second, MaxBackoff: time.Minute}},
		Auth0:    Auth0{Domain: "x.auth0.com", ManagementURL: "https://mgmt.example.com", Connection: "corp", Audience: "https://api.example.com"},
		TLS:      TLS{CertFile: "c.pem", KeyFile: "k.pem"},
		Outbound: Outbound{AllowHTTPLoopback: true, AllowCIDRs: []string{"10.0.0.0/8"}},
	}
	want := c
	want.PublicURL = "https://gw.example.com" // the trailing slash is trimmed
	want.Policy.Default = "deny"
	c.SetDefaults()
	if !reflect.DeepEqual(c, want) {
		t.Errorf("SetDefaults changed explicit values:\n got %#v\nwant %#v", c, want)
	}
	if c.Upstreams[0].Prefixed() || c.Log.AuditEnabled() {
		t.Error("explicit false for prefix/audit was not kept")
	}
}

func TestDefaultPublicURLUsesOneLoopbackSpelling(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, listen, want string
	}{
		{"an empty host becomes 127.0.0.1", ":9090", "http://127.0.0.1:9090"},
		{"0.0.0.0 becomes 127.0.0.1", "0.0.0.0:8080", "http://127.0.0.1:8080"},
		{"[::] becomes 127.0.0.1", "[::]:8080", "http://127.0.0.1:8080"},
		{"a named host is kept", "localhost:8080", "http://localhost:8080"},
		{"an IPv6 loopback keeps its brackets", "[::1]:8080", "http://[::1]:8080"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Config{Listen: tt.listen}
			c.SetDefaults()
			if c.PublicURL != tt.want {
				t.Errorf("listen %q: public_url = %q, want %q", tt.listen, c.PublicURL, tt.want)
			}
		})
	}
}

func TestResourceAndMCPPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, publicURL, resource, path string
	}{
		{"a root public URL serves /mcp", "https://gw.example.com", "https://gw.example.com/mcp", "/mcp"},
		{"a trailing slash is not doubled", "https://gw.example.com/", "https://gw.example.com/mcp", "/mcp"},
		{"a public path prefixes /mcp", "https://gw.example.com/gw", "https://gw.example.com/gw/mcp", "/gw/mcp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Config{PublicURL: tt.publicURL}
			if got := c.Resource(); got != tt.resource {
				t.Errorf("Resource() = %q, want %q", got, tt.resource)
			}
			if got := c.MCPPath(); got != tt.path {
				t.Errorf("MCPPath() = %q, want %q", got, tt.path)
			}
		})
	}
}

func TestLoadAppliesEnvironmentOverrides(t *testing.T) {
	t.Parallel()
	const file = `
public_url: "http://127.0.0.1:8080"
auth:
  issuer: "http://file-issuer"
  audience: "http://127.0.0.1:8080/mcp"
  jwks_uri: "http://file-issuer/jwks"
upstreams:
  - name: notes
    mcp: { url: "http://127.0.0.1:5052/mcp" }
policy:
  tools:
    "notes__*": { scopes: ["tool:read"] }
    "notes__write_note": { scopes: ["tool:write"], roles: ["editor"] }
`
	tests := []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, c *Config)
	}{
		{
			name: "without environment the file wins",
			env:  nil,
			check: func(t *testing.T, c *Config) {
				eq(t, "auth.issuer", c.Auth.Issuer, "http://file-issuer")
				eq(t, "auth.algorithms", c.Auth.Algorithms, []string{"RS256"})
			},
		},
		{
			name: "OAUTH_ISSUER, OAUTH_AUDIENCE and OAUTH_JWKS_URI override the file",
			env: map[string]string{
				"OAUTH_ISSUER": "https://idp.example.com/", "OAUTH_AUDIENCE": "https://gw.example.com/mcp",
				"OAUTH_JWKS_URI": "https://idp.example.com/keys",
			},
			check: func(t *testing.T, c *Config) {
				eq(t, "auth.issuer", c.Auth.Issuer, "https://idp.example.com/")
				eq(t, "auth.audience", c.Auth.Audience, "https://gw.example.com/mcp")
				eq(t, "auth.jwks_uri", c.Auth.JWKSURI, "https://idp.example.com/keys")
			},
		},
		{
			name: "OAUTH_ENFORCE_ALG=RS256 pins one algorithm",
			env:  map[string]string{"OAUTH_ENFORCE_ALG": "RS256"},
			check: func(t *testing.T, c *Config) {
				eq(t, "auth.algorithms", c.Auth.Algorithms, []string{"RS256"})
			},
		},
		{
			name: "OAUTH_ENFORCE_ALG=RS256,PS256 allows both",
			env:  map[string]string{"OAUTH_ENFORCE_ALG": "RS256,PS256"},
			check: func(t *testing.T, c *Config) {
				eq(t, "auth.algorithms", c.Auth.Algorithms, []string{"RS256", "PS256"})
			},
		},
		{
			name: "OAUTH_ENFORCE_ALG tolerates spaces after commas",
			env:  map[string]string{"OAUTH_ENFORCE_ALG": " RS256, PS256 "},
			check: func(t *testing.T, c *Config) {
				eq(t, "auth.algorithms", c.Auth.Algorithms, []string{"RS256", "PS256"})
			},
		},
		{
			name: "TOOL_SCOPES_JSON adds a rule and replaces the scopes of an existing one, keeping its roles",
			env:  map[string]string{"TOOL_SCOPES_JSON": `{"notes__read_note":["tool:read"],"notes__write_note":["tool:write","notes:edit"]}`},
			check: func(t *testing.T, c *Config) {
				eq(t, "policy.tools", c.Policy.Tools, map[string]ToolRule{
					"notes__*":          {Scopes: []string{"tool:read"}},
					"notes__read_note":  {Scopes: []string{"tool:read"}},
					"notes__write_note": {Scopes: []string{"tool:write", "notes:edit"}, Roles: []string{"editor"}},
				})
			},
		},
		{
			name: "TOOL_SCOPES_JSON with an empty list means authentication only",
			env:  map[string]string{"TOOL_SCOPES_JSON": `{"notes__ping":[]}`},
			check: func(t *testing.T, c *Config) {
				r, ok := c.Policy.Tools["notes__ping"]
				if !ok || r.Scopes == nil || len(r.Scopes) != 0 {
					t.Errorf("notes__ping rule = %#v (present %v), want an empty, non-nil scope list", r, ok)
				}
			},
		},
		{
			name: "DEMO_MODE=true makes OAUTH_*_DEMO win over OAUTH_*",
			env: map[string]string{
				"DEMO_MODE":    "true",
				"OAUTH_ISSUER": "https://prod-idp/", "OAUTH_ISSUER_DEMO": "http://127.0.0.1:5051",
				"OAUTH_AUDIENCE": "https://prod/mcp", "OAUTH_AUDIENCE_DEMO": "http://127.0.0.1:8080/mcp",
				"OAUTH_JWKS_URI": "https://prod-idp/jwks", "OAUTH_JWKS_URI_DEMO": "http://127.0.0.1:5051/.well-known/jwks.json",
				"OAUTH_SCOPES_DEMO": "tool:read  tool:list",
			},
			check: func(t *testing.T, c *Config) {
				eq(t, "auth.issuer", c.Auth.Issuer, "http://127.0.0.1:5051")
				eq(t, "auth.audience", c.Auth.Audience, "http://127.0.0.1:8080/mcp")
				eq(t, "auth.jwks_uri", c.Auth.JWKSURI, "http://127.0.0.1:5051/.well-known/jwks.json")
				eq(t, "auth.baseline_scopes", c.Auth.BaselineScopes, []string{"tool:read", "tool:list"})
			},
		},
		{
			name: "DEMO_MODE=true falls back to OAUTH_* where no demo variant is set",
			env:  map[string]string{"DEMO_MODE": "TRUE", "OAUTH_ISSUER": "https://prod-idp/"},
			check: func(t *testing.T, c *Config) {
				eq(t, "auth.issuer", c.Auth.Issuer, "https://prod-idp/")
				eq(t, "auth.jwks_uri", c.Auth.JWKSURI, "http://file-issuer/jwks")
			},
		},
		{
			name: "without DEMO_MODE the demo variants are ignored",
			env:  map[string]string{"OAUTH_ISSUER_DEMO": "http://127.0.0.1:5051", "OAUTH_SCOPES_DEMO": "tool:read"},
			check: func(t *testing.T, c *Config) {
				eq(t, "auth.issuer", c.Auth.Issuer, "http://file-issuer")
				eq(t, "auth.baseline_scopes", c.Auth.BaselineScopes, []string(nil))
			},
		},
		{
			name: "DEMO_MODE=false ignores the demo variants",
			env:  map[string]string{"DEMO_MODE": "false", "OAUTH_ISSUER_DEMO": "http://127.0.0.1:5051"},
			check: func(t *testing.T, c *Config) {
				eq(t, "auth.issuer", c.Auth.Issuer, "http://file-issuer")
			},
		},
		{
			name: "GATEWAYSTACK_LISTEN, GATEWAYSTACK_PUBLIC_URL and LOG_LEVEL override the file",
			env:  map[string]string{"GATEWAYSTACK_LISTEN": ":9999", "GATEWAYSTACK_PUBLIC_URL": "https://gw.example.com", "LOG_LEVEL": "debug"},
			check: func(t *testing.T, c *Config) {
				eq(t, "listen", c.Listen, ":9999")
				eq(t, "public_url", c.PublicURL, "https://gw.example.com")
				eq(t, "log.level", c.Log.Level, "debug")
			},
		},
	}
	path := writeConfig(t, file)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Load(path, env(tt.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func TestLoadDerivesJWKSURIFromEnvironmentIssuer(t *testing.T) {
	t.Parallel()
	c, err := Load("", env(map[string]string{"OAUTH_ISSUER": "https://idp.example.com/"}))
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "auth.jwks_uri", c.Auth.JWKSURI, "https://idp.example.com/.well-known/jwks.json")
	eq(t, "auth.authorization_servers", c.Auth.AuthorizationServers, []string{"https://idp.example.com/"})
}

func TestLoadRejectsBadEnvironment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		wantErr []string
	}{
		{"malformed TOOL_SCOPES_JSON names the variable and the expected shape",
			map[string]string{"TOOL_SCOPES_JSON": `{"notes__read_note": ["tool:read"`},
			[]string{"TOOL_SCOPES_JSON", `{"notes__read_note":["tool:read"]}`}},
		{"TOOL_SCOPES_JSON with a string instead of a list is refused",
			map[string]string{"TOOL_SCOPES_JSON": `{"notes__read_note": "tool:read"}`},
			[]string{"TOOL_SCOPES_JSON"}},
		{"TOOL_SCOPES_JSON as a list is refused",
			map[string]string{"TOOL_SCOPES_JSON": `[["tool:read"]]`},
			[]string{"TOOL_SCOPES_JSON"}},
		// Regression invariant: TOOL_SCOPES_JSON is exactly one JSON object; anything after it is an error.
		{"TOOL_SCOPES_JSON with trailing data is refused",
			map[string]string{"TOOL_SCOPES_JSON": `{"a__b":["s"]} {"a__c":[]}`},
			[]string{"TOOL_SCOPES_JSON", "after the object"}},
		// Regression invariant: a null scope list never becomes a rule that admits every caller.
		{"TOOL_SCOPES_JSON mapping a tool to null is refused",
			map[string]string{"TOOL_SCOPES_JSON": `{"notes__delete_all_notes": null}`},
			[]string{"TOOL_SCOPES_JSON", "notes__delete_all_notes", "null"}},
		{"TOOL_SCOPES_JSON=null is refused",
			map[string]string{"TOOL_SCOPES_JSON": `null`},
			[]string{"TOOL_SCOPES_JSON", "null"}},
		{"DEMO_MODE that is not a boolean is refused",
			map[string]string{"DEMO_MODE": "yes please"},
			[]string{"DEMO_MODE", "true or false"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load("", env(tt.env))
			if err == nil {
				t.Fatalf("Load: want an error, got none")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadReportsAMissingFile(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := Load(missing, nil)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Load(missing) = %v, want an os.ErrNotExist naming the path", err)
	}
}

func TestLoadReportsTheFileOfADecodeError(t *testing.T) {
	t.Parallel()
	p := writeConfig(t, "listen: \":1\"\nbogus: true\n")
	_, err := Load(p, nil)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("Load = %v, want an error naming %s and line 2", err, p)
	}
}

func eq(t *testing.T, field string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", field, got, want)
	}
}

// server.gc_percent defaults to 400 and is bounded: 0 means the default, a
// value outside 25..10000 is a problem naming the field.
func TestGCPercent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		set     int
		problem bool
	}{{0, false}, {25, false}, {10000, false}, {24, true}, {-1, true}, {10001, true}} {
		c := validREST()
		c.Server.GCPercent = tc.set
		c.SetDefaults()
		err := c.Validate()
		if tc.set == 0 && c.Server.GCPercent != DefaultGCPercent {
			t.Errorf("gc_percent 0 defaulted to %d, want %d", c.Server.GCPercent, DefaultGCPercent)
		}
		got := err != nil && strings.Contains(err.Error(), "server.gc_percent")
		if got != tc.problem {
			t.Errorf("gc_percent %d: Validate = %v, want a server.gc_percent problem: %v", tc.set, err, tc.problem)
		}
	}
}
