// Package config loads the gateway's YAML configuration, applies environment
// overrides (including the original project's variable names such as
// OAUTH_ISSUER and TOOL_SCOPES_JSON), fills defaults and validates the result,
// reporting every problem at once with the field path and how to fix it.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is the whole gateway configuration. Every field has a default; see
// gatewaystack.example.yaml for a commented example.
type Config struct {
	// Listen is the TCP address the gateway binds (default 127.0.0.1:8080).
	Listen string `yaml:"listen"`
	// PublicURL is the externally visible base URL of the gateway
	// (default http://<listen>). The MCP resource is PublicURL + "/mcp".
	PublicURL string `yaml:"public_url"`
	// Auth configures token verification and OAuth discovery.
	Auth Auth `yaml:"auth"`
	// IdentityHeaders names the headers upstreams receive the verified
	// identity in.
	IdentityHeaders IdentityHeaders `yaml:"identity_headers"`
	// Upstreams lists the MCP servers the gateway fronts.
	Upstreams []Upstream `yaml:"upstreams"`
	// Policy maps tool-name patterns to what a caller needs.
	Policy Policy `yaml:"policy"`
	// Proxy is the plain HTTP pass-through at /proxy/*.
	Proxy Proxy `yaml:"proxy"`
	// Limits configures rate limits (limits.go).
	Limits Limits `yaml:"limits"`
	// Admin configures the operator endpoints under /admin/.
	Admin Admin `yaml:"admin"`
	// Audit configures the file and webhook audit sinks.
	Audit Audit `yaml:"audit"`
	// TLS serves HTTPS directly when set.
	TLS TLS `yaml:"tls"`
	// Outbound restricts what the gateway fetches from URLs (JWKS,
	// authorization-server metadata): SSRF protection.
	Outbound Outbound `yaml:"outbound"`
	// Auth0 configures the Auth0 log-stream (DCR) webhook.
	Auth0 Auth0 `yaml:"auth0"`
	// Server holds HTTP-level settings.
	Server Server `yaml:"server"`
	// Log configures logging and the audit stream.
	Log Log `yaml:"log"`

	// toolsFromEnv are the policy.tools patterns TOOL_SCOPES_JSON set
	// (sorted), for messages.
	toolsFromEnv []string
	// advertised are the baseline scopes auth.advertise_tool_scopes added
	// (SetDefaults), for messages.
	advertised []string
}

// Auth configures the identify stage.
type Auth struct {
	Issuer   string `yaml:"issuer"`
	Audience string `yaml:"audience"`
	// JWKSURI defaults to <issuer>/.well-known/jwks.json.
	JWKSURI    string        `yaml:"jwks_uri"`
	Algorithms []string      `yaml:"algorithms"`
	ClockSkew  time.Duration `yaml:"clock_skew"`
	// TenantClaim names the claim that holds the tenant (default org_id).
	TenantClaim string `yaml:"tenant_claim"`
	// RolesClaim names the claim that holds roles (default roles).
	RolesClaim string `yaml:"roles_claim"`
	// AuthorizationServers is advertised in the Protected Resource
	// Metadata (default: [issuer]).
	AuthorizationServers []string `yaml:"authorization_servers"`
	// BaselineScopes is what a client should request first (the 401's scope).
	BaselineScopes []string `yaml:"baseline_scopes"`
	// StepUpScopes may be granted later on demand; tools needing them are
	// listed, and calling them answers 403 insufficient_scope.
	StepUpScopes []string `yaml:"step_up_scopes"`
	// AdvertiseToolScopes adds every scope policy.tools names (scopes and
	// any_scopes) that is not a step-up scope to BaselineScopes, so the 401
	// challenge and scopes_supported list them, as the original gateway
	// did with TOOL_SCOPES_JSON (ADVERTISE_TOOL_SCOPES=1). Default false:
	// the MCP specification asks for a minimal scope set.
	AdvertiseToolScopes bool `yaml:"advertise_tool_scopes"`
	// JWKSRefetchCooldown bounds refetches caused by unknown key ids.
	JWKSRefetchCooldown time.Duration `yaml:"jwks_refetch_cooldown"`
	// MaxTokenLifetime refuses tokens whose exp − iat (or exp − now without
	// iat) exceeds it (default 24h).
	MaxTokenLifetime time.Duration `yaml:"max_token_lifetime"`
	// TokenTypes, when set, lists the accepted JOSE header "typ" values
	// (e.g. at+jwt, JWT); a token with another or no typ is refused.
	// Default: any.
	TokenTypes []string `yaml:"token_types"`
	// JWKSMaxStale is how long the last good key set keeps verifying
	// tokens while the JWKS endpoint fails; after it, requests are refused
	// with 503 until a fetch succeeds (default 1h).
	JWKSMaxStale time.Duration `yaml:"jwks_max_stale"`
}

// IdentityHeaders names the headers that carry the verified identity upstream.
type IdentityHeaders struct {
	User   string `yaml:"user"`
	Tenant string `yaml:"tenant"`
	Scopes string `yaml:"scopes"`
}

// Upstream is one MCP server behind the gateway.
type Upstream struct {
	// Name identifies the upstream and prefixes its tools (<name>__<tool>).
	Name string `yaml:"name"`
	// Prefix turns the <name>__ tool-name prefix on or off (default on).
	Prefix *bool `yaml:"prefix"`
	// MCP is an MCP server over streamable HTTP.
	MCP *MCPUpstream `yaml:"mcp"`
	// Stdio is a local MCP server the gateway starts as a child process.
	Stdio *StdioUpstream `yaml:"stdio"`
	// REST is a set of tools the gateway maps onto a plain HTTP API.
	REST *RESTUpstream `yaml:"rest"`
	// Timeout bounds each call to this upstream (default server.upstream_timeout).
	Timeout time.Duration `yaml:"timeout"`
	// MaxConcurrency caps the calls in flight to this upstream at once, so a
	// slow upstream cannot take every worker (default 64; a call beyond it
	// waits for a slot up to half the upstream's timeout, then gets an
	// "upstream busy" error).
	MaxConcurrency int `yaml:"max_concurrency"`
}

// Kind names the upstream's kind: "mcp", "stdio" or "rest" ("" when none
// or several are set; Validate reports that).
func (u Upstream) Kind() string {
	n, kind := 0, ""
	if u.MCP != nil {
		n, kind = n+1, "mcp"
	}
	if u.Stdio != nil {
		n, kind = n+1, "stdio"
	}
	if u.REST != nil {
		n, kind = n+1, "rest"
	}
	if n != 1 {
		return ""
	}
	return kind
}

// StdioUpstream is an MCP server spoken to over the stdin/stdout of a child
// process. The child gets an explicit, minimal environment: only PATH and
// HOME of the gateway (unless overridden), the variables named in
// InheritEnv, the files in EnvFiles, and Env — never the rest of the
// gateway's environment.
type StdioUpstream struct {
	// Command is the program to run (looked up in PATH).
	Command string `yaml:"command"`
	// Args are its arguments.
	Args []string `yaml:"args"`
	// Dir is its working directory (default: the gateway's).
	Dir string `yaml:"dir"`
	// Env sets variables; values may reference ${VAR} of the gateway's
	// environment.
	Env map[string]string `yaml:"env"`
	// EnvFiles are files of KEY=VALUE lines loaded into the environment
	// (before Env).
	EnvFiles []string `yaml:"env_files"`
	// InheritEnv names gateway variables passed through unchanged.
	InheritEnv []string `yaml:"inherit_env"`
	// MaxRestarts caps restarts after crashes (or failed starts) within a
	// rolling 10-minute window, 0 to 100 (default 5; 0 means the default);
	// beyond it the upstream stays down until the gateway restarts.
	MaxRestarts int `yaml:"max_restarts"`
	// StopGrace is how long the child's process group gets after SIGTERM
	// before SIGKILL, 0s to 5m (default 5s; 0 means the default).
	StopGrace time.Duration `yaml:"stop_grace"`
}

// RESTUpstream maps declared tools onto HTTP requests to BaseURL.
type RESTUpstream struct {
	// BaseURL is the API's base (http or https).
	BaseURL string `yaml:"base_url"`
	// Headers are static headers sent on every request, e.g. the API's
	// credential: {Authorization: "Bearer ${CRM_API_KEY}"}. Never shown to
	// clients.
	Headers map[string]string `yaml:"headers"`
	// InjectQuery, when set, also sends the verified subject as this query
	// parameter (the original PROXY_INJECT_QUERY).
	InjectQuery string `yaml:"inject_query"`
	// Tools are the tools this upstream offers.
	Tools []RESTTool `yaml:"tools"`
}

// RESTTool is one tool mapped onto one HTTP request.
type RESTTool struct {
	Name        string `yaml:"name"`
	Title       string `yaml:"title"`
	Description string `yaml:"description"`
	// InputSchema is the tool's JSON Schema (an object schema).
	InputSchema map[string]any `yaml:"input_schema"`
	// Method is the HTTP method (default GET).
	Method string `yaml:"method"`
	// Path is a template relative to BaseURL; {arg} is replaced by the
	// (path-escaped) argument of that name.
	Path string `yaml:"path"`
	// Query lists arguments sent as query parameters.
	Query []string `yaml:"query"`
	// Body lists arguments sent as the JSON object body; "*" sends every
	// argument not used in the path or query.
	Body []string `yaml:"body"`
	// Headers are static headers of this tool only.
	Headers map[string]string `yaml:"headers"`
}

// Proxy is the plain HTTP pass-through at /proxy/* (the original
// PROXY_TARGET).
type Proxy struct {
	// Target is the backend's base URL; empty turns /proxy off.
	Target string `yaml:"target"`
	// InjectQuery, when set, also sends the verified subject as this query
	// parameter (PROXY_INJECT_QUERY).
	InjectQuery string `yaml:"inject_query"`
	// Headers are static headers sent to the backend (credentials).
	Headers map[string]string `yaml:"headers"`
	// Routes authorize requests by path prefix and method; the longest
	// matching prefix decides, and a request no route matches is denied.
	Routes []ProxyRoute `yaml:"routes"`
	// DefaultRoute, when set, adds a route for prefix "/" (every path not
	// under a longer prefix) with its requirements: the original
	// PROXY_TARGET behaviour, opted into explicitly (PROXY_DEFAULT_SCOPES
	// sets its scopes). Default: none, so only the routes listed are
	// forwarded.
	DefaultRoute *ProxyDefaultRoute `yaml:"default_route"`
	// MaxBodyBytes bounds request bodies, which are streamed to the
	// backend (default 64 MiB when target is set); beyond it: 413.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
}

// ProxyRoute authorizes the requests under a path prefix.
type ProxyRoute struct {
	// Prefix is a path under /proxy, e.g. "/accounts" for /proxy/accounts/...
	Prefix string `yaml:"prefix"`
	// Methods lists allowed methods (default: all).
	Methods []string `yaml:"methods"`
	// Scopes are all required.
	Scopes []string `yaml:"scopes"`
	// Roles, when set, require at least one of them.
	Roles []string `yaml:"roles"`
	// Cost is what one request charges the budgets (limits.budgets), like
	// a tool's cost (default 1; 0: free).
	Cost *int64 `yaml:"cost"`

	// fromDefault marks the route SetDefaults made from proxy.default_route.
	fromDefault bool
}

// ProxyDefaultRoute is what proxy.default_route requires of every request
// no listed route matches.
type ProxyDefaultRoute struct {
	// Methods lists allowed methods (default: all).
	Methods []string `yaml:"methods"`
	// Scopes are all required.
	Scopes []string `yaml:"scopes"`
	// Roles, when set, require at least one of them.
	Roles []string `yaml:"roles"`
	// Cost is what one request charges the budgets (default 1; 0: free).
	Cost *int64 `yaml:"cost"`
}

// Units returns the route's budget cost (default 1).
func (r ProxyRoute) Units() int64 {
	if r.Cost == nil {
		return 1
	}
	return *r.Cost
}

// Prefixed reports whether the upstream's tool names get the <name>__ prefix.
func (u Upstream) Prefixed() bool { return u.Prefix == nil || *u.Prefix }

// MCPUpstream is an MCP server reached over streamable HTTP.
type MCPUpstream struct {
	URL string `yaml:"url"`
	// Headers are static headers sent on every request (e.g. an API key).
	// Values of the form ${VAR} are read from the environment.
	Headers map[string]string `yaml:"headers"`
	// Listen keeps a listening stream (GET) open to receive notifications
	// not tied to a request, such as list changes (default true). Turn it
	// off for upstreams that refuse the stream.
	Listen *bool `yaml:"listen"`
}

// Listening reports whether the listening stream is wanted.
func (m MCPUpstream) Listening() bool { return m.Listen == nil || *m.Listen }

// Policy is the authorization table.
type Policy struct {
	// Default must be "deny" (the only mode): a tool without a rule is
	// never listed and never callable.
	Default string `yaml:"default"`
	// Tools maps a tool-name pattern (exact name or glob with * and ?) to
	// its rule. When several patterns match, the most specific decides.
	Tools map[string]ToolRule `yaml:"tools"`
	// Resources maps patterns over "<upstream>__<uri>" to rules, with the
	// same precedence; resources and templates without a rule are hidden.
	Resources map[string]ToolRule `yaml:"resources"`
	// Prompts maps prompt-name patterns (exposed names) to rules.
	Prompts map[string]ToolRule `yaml:"prompts"`
}

// ToolRule says what a caller needs to use a tool.
type ToolRule struct {
	// Scopes are all required.
	Scopes []string `yaml:"scopes"`
	// AnyScopes, when set, require at least one of them.
	AnyScopes []string `yaml:"any_scopes"`
	// Roles, when set, require at least one of them.
	Roles []string `yaml:"roles"`
	// When is an optional CEL condition over identity (sub, tenant, roles,
	// scopes, claims) and request (tool, upstream, arguments); the rule
	// allows only when it is true. Compiled and type-checked at load.
	When string `yaml:"when"`
}

// Server holds HTTP settings.
type Server struct {
	// MaxBodyBytes bounds request bodies (default 4 MiB); beyond it: 413.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// UpstreamTimeout bounds each upstream call (default 30 s).
	UpstreamTimeout time.Duration `yaml:"upstream_timeout"`
	// AllowedOrigins lists browser origins allowed by CORS and the Origin
	// check. Default: loopback origins only.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// AllowedHosts lists Host header values accepted (DNS-rebinding
	// protection). Default: the host of public_url and loopback names.
	AllowedHosts []string `yaml:"allowed_hosts"`
	// SessionKey is a base64 32-byte key sealing session ids, shared by all
	// replicas; when empty a random key is generated at start-up.
	SessionKey string `yaml:"session_key"`
	// SessionTTL is the lifetime of a session id from its creation (default
	// 24h); after it the client gets 404 and starts a new session.
	SessionTTL time.Duration `yaml:"session_ttl"`
	// MaxSessionsPerSubject caps the sessions one subject has in use on a
	// replica (default 256, 1 to 100000): a subject that starts one more
	// ends its least recently used session, whose client gets 404 and
	// starts a new one.
	MaxSessionsPerSubject int `yaml:"max_sessions_per_subject"`
	// MaxStreamsPerSession caps the event streams (GET /mcp) one session
	// holds open (default 4, 1 to 1000); beyond it 429.
	MaxStreamsPerSession int `yaml:"max_streams_per_session"`
	// MaxStreamsPerSubject caps the event streams one subject holds open
	// across its sessions (default 32, 1 to 100000, at least
	// max_streams_per_session); beyond it 429.
	MaxStreamsPerSubject int `yaml:"max_streams_per_subject"`
	// Metrics serves Prometheus metrics at /metrics (default on).
	Metrics *bool `yaml:"metrics"`
	// ReadHeaderTimeout bounds reading a request's headers (default 10s).
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a request body on routes that do not
	// stream (default 30s).
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// IdleTimeout closes keep-alive connections idle this long (default
	// 120s).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes bounds request headers (default 32768).
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxConcurrent bounds requests in progress on this replica; beyond it
	// 503 with Retry-After (default 1024; event streams not counted).
	MaxConcurrent int `yaml:"max_concurrent"`
	// MaxConcurrentPerSubject bounds one subject's requests in progress;
	// beyond it 429 with Retry-After (default 64).
	MaxConcurrentPerSubject int `yaml:"max_concurrent_per_subject"`
	// GCPercent is the garbage collector's target (GOGC) the gateway runs
	// with, unless the GOGC environment variable is set (default 400: the
	// gateway's live heap is a few MiB, so collecting less often costs
	// tens of MiB and saves CPU on every call).
	GCPercent int `yaml:"gc_percent"`
}

// MetricsEnabled reports whether /metrics is served.
func (s Server) MetricsEnabled() bool { return s.Metrics == nil || *s.Metrics }

// Log configures logs and audit lines.
type Log struct {
	// Level is debug, info, warn or error (default info).
	Level string `yaml:"level"`
	// Audit turns the audit stream (one JSON line per decision on stdout)
	// on or off (default on).
	Audit *bool `yaml:"audit"`
	// Access writes one log line per HTTP request at info level (default
	// on).
	Access *bool `yaml:"access"`
}

// AccessEnabled reports whether access lines are written.
func (l Log) AccessEnabled() bool { return l.Access == nil || *l.Access }

// AuditEnabled reports whether audit lines are written.
func (l Log) AuditEnabled() bool { return l.Audit == nil || *l.Audit }

// Resource returns the public URL of the MCP endpoint: the expected token
// audience and the PRM "resource".
func (c *Config) Resource() string {
	return strings.TrimSuffix(c.PublicURL, "/") + "/mcp"
}

// MCPPath returns the URL path the MCP endpoint is served at.
func (c *Config) MCPPath() string {
	u, err := url.Parse(c.Resource())
	if err != nil || u.Path == "" {
		return "/mcp"
	}
	return u.Path
}

// Load reads path (YAML), applies environment overrides from getenv (use
// os.Getenv; nil means no overrides) and fills defaults. It reports every
// decoding problem at once (unknown fields with a suggestion, values of the
// wrong type with the form to write, each with line:column) and every
// malformed environment override, as Problems; call Validate for semantic
// checks, or Check for everything validate reports.
func Load(path string, getenv func(string) string) (*Config, error) {
	var c Config
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("load config %s: %w", path, err)
		}
		if err := Decode(data, &c); err != nil {
			return nil, fmt.Errorf("load config %s: %w", path, err)
		}
	}
	if getenv != nil {
		if ps := c.applyEnv(getenv); len(ps) > 0 {
			return nil, fmt.Errorf("load config: environment: %w", ps)
		}
	}
	c.SetDefaults()
	return &c, nil
}

// Decode strictly decodes YAML into c: unknown fields (with the nearest
// known field as a suggestion), duplicate keys, values of the wrong type
// (a duration must be written like 30s) and a second YAML document are
// errors. It reports all of them at once, as Problems with line:column.
func Decode(data []byte, c *Config) error {
	d := decodeDocument(data, c)
	if len(d.problems) > 0 {
		return fmt.Errorf("decode yaml: %w", d.problems)
	}
	return nil
}

// applyEnv overrides fields from the environment and returns the problems
// of malformed values, each under the variable's name (it applies every
// variable it can). The original project's names keep working:
// OAUTH_ISSUER, OAUTH_AUDIENCE, OAUTH_JWKS_URI, OAUTH_ENFORCE_ALG (comma- or
// space-separated) and TOOL_SCOPES_JSON (a JSON object of tool name or
// pattern to scope list, merged into policy.tools; it replaces the scopes of
// an existing rule and keeps its roles). With DEMO_MODE=true the
// OAUTH_*_DEMO variants take precedence over OAUTH_*, and OAUTH_SCOPES_DEMO
// (space-separated) sets auth.baseline_scopes. EnvVars lists every
// variable.
func (c *Config) applyEnv(getenv func(string) string) Problems {
	var ps Problems
	bad := func(name, format string, args ...any) {
		ps = append(ps, Problem{Field: name, Message: fmt.Sprintf(format, args...)})
	}
	set := func(dst *string, names ...string) {
		for _, n := range names {
			if v := strings.TrimSpace(getenv(n)); v != "" {
				*dst = v
				return
			}
		}
	}
	demo := false
	if v := strings.TrimSpace(getenv("DEMO_MODE")); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad("DEMO_MODE", "%q is not a boolean; set it to true or false", v)
		}
		demo = b
	}
	set(&c.Listen, "GATEWAYSTACK_LISTEN")
	set(&c.PublicURL, "GATEWAYSTACK_PUBLIC_URL")
	if demo {
		set(&c.Auth.Issuer, "OAUTH_ISSUER_DEMO", "OAUTH_ISSUER")
		set(&c.Auth.Audience, "OAUTH_AUDIENCE_DEMO", "OAUTH_AUDIENCE")
		set(&c.Auth.JWKSURI, "OAUTH_JWKS_URI_DEMO", "OAUTH_JWKS_URI")
		if v := getenv("OAUTH_SCOPES_DEMO"); strings.TrimSpace(v) != "" {
			c.Auth.BaselineScopes = strings.Fields(v)
		}
	} else {
		set(&c.Auth.Issuer, "OAUTH_ISSUER")
		set(&c.Auth.Audience, "OAUTH_AUDIENCE")
		set(&c.Auth.JWKSURI, "OAUTH_JWKS_URI")
	}
	if v := getenv("OAUTH_ENFORCE_ALG"); strings.TrimSpace(v) != "" {
		c.Auth.Algorithms = strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
	}
	if v := strings.TrimSpace(getenv(EnvAdvertiseToolScopes)); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad(EnvAdvertiseToolScopes, "%q is not a boolean; set it to 1 (or true) to advertise every tool scope, 0 (or false) not to", v)
		}
		c.Auth.AdvertiseToolScopes = b
	}
	set(&c.Log.Level, "LOG_LEVEL")
	c.applyProxyEnv(getenv)
	c.applyAuth0Env(getenv)
	c.applyAuditEnv(getenv)
	ps = append(ps, c.applyLimitsEnv(getenv)...)
	if v := getenv("TOOL_SCOPES_JSON"); strings.TrimSpace(v) != "" {
		m, err := parseToolScopes(v)
		if err != nil {
			bad("TOOL_SCOPES_JSON", "%s", strings.TrimPrefix(err.Error(), "TOOL_SCOPES_JSON: "))
		}
		if c.Policy.Tools == nil && len(m) > 0 {
			c.Policy.Tools = make(map[string]ToolRule, len(m))
		}
		c.toolsFromEnv = c.toolsFromEnv[:0]
		for tool, scopes := range m {
			r := c.Policy.Tools[tool]
			r.Scopes = scopes
			c.Policy.Tools[tool] = r
			c.toolsFromEnv = append(c.toolsFromEnv, tool)
		}
		slices.Sort(c.toolsFromEnv)
	}
	return ps
}

// parseToolScopes decodes TOOL_SCOPES_JSON: exactly one JSON object whose
// values are lists of scopes. A null list is refused rather than read as "no
// scopes needed", which would open the tool to every authenticated caller;
// write [] for that.
func parseToolScopes(v string) (map[string][]string, error) {
	const want = `TOOL_SCOPES_JSON: want a JSON object of tool name to scope list, e.g. {"notes__read_note":["tool:read"]}`
	var raw map[string]*[]string
	dec := json.NewDecoder(strings.NewReader(v))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%s: %w", want, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: unexpected data after the object", want)
	}
	if raw == nil {
		return nil, fmt.Errorf("%s: got null", want)
	}
	m := make(map[string][]string, len(raw))
	for tool, scopes := range raw {
		if scopes == nil {
			return nil, fmt.Errorf("%s: %q maps to null; give it a list of scopes ([] for none)", want, tool)
		}
		m[tool] = *scopes
	}
	return m, nil
}

// SetDefaults fills every unset field with its default.
func (c *Config) SetDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://" + defaultPublicHost(c.Listen)
	}
	c.PublicURL = strings.TrimSuffix(c.PublicURL, "/")
	if c.Auth.JWKSURI == "" && c.Auth.Issuer != "" {
		c.Auth.JWKSURI = strings.TrimSuffix(c.Auth.Issuer, "/") + "/.well-known/jwks.json"
	}
	if len(c.Auth.Algorithms) == 0 {
		c.Auth.Algorithms = []string{"RS256"}
	}
	if c.Auth.ClockSkew == 0 {
		c.Auth.ClockSkew = 60 * time.Second
	}
	if c.Auth.TenantClaim == "" {
		c.Auth.TenantClaim = "org_id"
	}
	if c.Auth.RolesClaim == "" {
		c.Auth.RolesClaim = "roles"
	}
	if len(c.Auth.AuthorizationServers) == 0 && c.Auth.Issuer != "" {
		c.Auth.AuthorizationServers = []string{c.Auth.Issuer}
	}
	if c.Auth.JWKSRefetchCooldown == 0 {
		c.Auth.JWKSRefetchCooldown = 30 * time.Second
	}
	if c.IdentityHeaders.User == "" {
		c.IdentityHeaders.User = "X-User-Id"
	}
	if c.IdentityHeaders.Tenant == "" {
		c.IdentityHeaders.Tenant = "X-Org-Id"
	}
	if c.IdentityHeaders.Scopes == "" {
		c.IdentityHeaders.Scopes = "X-User-Scopes"
	}
	if c.Policy.Default == "" {
		c.Policy.Default = "deny"
	}
	if c.Server.MaxBodyBytes == 0 {
		c.Server.MaxBodyBytes = 4 << 20
	}
	if c.Server.UpstreamTimeout == 0 {
		c.Server.UpstreamTimeout = 30 * time.Second
	}
	if c.Server.SessionTTL == 0 {
		c.Server.SessionTTL = 24 * time.Hour
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	c.Limits.setDefaults()
	c.setHardeningDefaults()
	c.Audit.setDefaults()
	c.setAuth0Defaults()
	if c.Proxy.Target != "" && c.Proxy.MaxBodyBytes == 0 {
		c.Proxy.MaxBodyBytes = 64 << 20
	}
	c.setCompatDefaults()
	for i := range c.Upstreams {
		if c.Upstreams[i].MaxConcurrency == 0 {
			c.Upstreams[i].MaxConcurrency = 64
		}
		if c.Upstreams[i].Timeout == 0 {
			c.Upstreams[i].Timeout = c.Server.UpstreamTimeout
		}
		if s := c.Upstreams[i].Stdio; s != nil {
			if s.MaxRestarts == 0 {
				s.MaxRestarts = 5
			}
			if s.StopGrace == 0 {
				s.StopGrace = 5 * time.Second
			}
		}
	}
}

// defaultPublicHost turns a listen address into the host:port clients can
// use: an empty or unspecified host (":8080", "0.0.0.0:8080", "[::]:8080")
// becomes 127.0.0.1, the one loopback spelling the demo uses everywhere.
func defaultPublicHost(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// Admin configures the operator endpoints (/admin/usage).
type Admin struct {
	// Scope a verified token must carry to use them; empty turns them off
	// (404).
	Scope string `yaml:"scope"`
}

// TLS configures serving HTTPS directly (TLS 1.2 and later, modern cipher
// suites). The files are read again when they change, without a restart.
type TLS struct {
	// CertFile and KeyFile are PEM files; both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Enabled reports whether HTTPS is served.
func (t TLS) Enabled() bool { return t.CertFile != "" }

// Outbound restricts the gateway's own fetches from configured URLs: https
// only, no redirects, no proxy from the environment, bounded in time and
// size, and never to private, link-local, unique-local or IPv4-mapped
// addresses unless allowed here.
type Outbound struct {
	// AllowHTTPLoopback allows plain http to loopback addresses (local
	// development and the demo). Default false.
	AllowHTTPLoopback bool `yaml:"allow_http_loopback"`
	// AllowCIDRs lists address ranges that may be reached although private
	// or loopback (e.g. an in-cluster IdP at 10.0.0.0/8). Default none.
	AllowCIDRs []string `yaml:"allow_cidrs"`
}
