package config

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatewaystack/gatewaystack/policy"
)

// Problem is one thing wrong with a configuration: the field path and what to
// do about it.
type Problem struct {
	// Field is the setting's path, e.g. upstreams[0].mcp.url or
	// policy.tools["notes__*"]; for an environment variable, its name.
	Field string
	// Message says what is wrong and how to fix it.
	Message string
	// Line and Column locate the setting in the file (1-based) when known;
	// 0 otherwise.
	Line, Column int
	// Env names the environment variable the value came from, when one
	// overrode the file.
	Env string
}

// String renders "field: message", followed by where the value is: the
// file's line:column, or the environment variable that set it.
func (p Problem) String() string {
	s := p.Field + ": " + p.Message
	switch {
	case p.Env != "":
		s += " (set by " + p.Env + ")"
	case p.Line > 0 && p.Column > 0:
		s += fmt.Sprintf(" (line %d:%d)", p.Line, p.Column)
	case p.Line > 0:
		s += fmt.Sprintf(" (line %d)", p.Line)
	}
	return s
}

// Problems is every problem found in a configuration; it is an error.
type Problems []Problem

// Error lists every problem, one per line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return "invalid configuration:\n  " + strings.Join(lines, "\n  ")
}

var (
	upstreamName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	scopeToken   = regexp.MustCompile(`^[\x21\x23-\x5b\x5d-\x7e]+$`)
	roleToken    = regexp.MustCompile(`^[\x21-\x7e]+$`)
	allowedAlgs  = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)

// Validate checks c without side effects and returns every problem found, or
// nil when the configuration is usable.
func (c *Config) Validate() error {
	var ps Problems
	add := func(field, format string, args ...any) {
		ps = append(ps, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
	}

	if _, port, err := net.SplitHostPort(c.Listen); err != nil || !validPort(port) {
		add("listen", "%q is not host:port with a port from 0 to 65535; set it like 127.0.0.1:8080 or :8080", c.Listen)
	}
	pub, err := url.Parse(c.PublicURL)
	if err != nil || (pub.Scheme != "http" && pub.Scheme != "https") || pub.Hostname() == "" || pub.User != nil || pub.RawQuery != "" || pub.Fragment != "" {
		add("public_url", "%q is not an absolute http(s) URL with a host and without credentials, query or fragment; set it to the URL clients use, e.g. https://gateway.example.com", c.PublicURL)
	}

	// auth
	if c.Auth.Issuer == "" {
		add("auth.issuer", "required; set it to the issuer URL of your authorization server (the tokens' iss), or OAUTH_ISSUER")
	} else if !isHTTPURL(c.Auth.Issuer) {
		add("auth.issuer", "%q is not an absolute http(s) URL", c.Auth.Issuer)
	}
	switch {
	case c.Auth.Audience == "":
		add("auth.audience", "required; set it to the public URL of /mcp: %s (or OAUTH_AUDIENCE)", c.Resource())
	case c.Auth.Audience != c.Resource():
		add("auth.audience", "%q does not match the MCP resource %q; MCP clients request tokens for the resource URL, so set the audience (and your API identifier at the IdP) to %s, or change public_url", c.Auth.Audience, c.Resource(), c.Resource())
	}
	if c.Auth.JWKSURI != "" && !isHTTPURL(c.Auth.JWKSURI) {
		add("auth.jwks_uri", "%q is not an absolute http(s) URL", c.Auth.JWKSURI)
	}
	for i, a := range c.Auth.Algorithms {
		if !slices.Contains(allowedAlgs, a) {
			add(fmt.Sprintf("auth.algorithms[%d]", i), "%q is not allowed; use asymmetric algorithms only (%s), never none or HS*", a, strings.Join(allowedAlgs, ", "))
		}
	}
	if c.Auth.ClockSkew < 0 || c.Auth.ClockSkew > 10*time.Minute {
		add("auth.clock_skew", "%s is out of range; use 0s to 10m (0 means the default, 60s)", c.Auth.ClockSkew)
	}
	if c.Auth.JWKSRefetchCooldown < 0 {
		add("auth.jwks_refetch_cooldown", "%s is negative; use a positive duration such as 30s (the default): it bounds JWKS fetches caused by unknown key ids", c.Auth.JWKSRefetchCooldown)
	}
	for i, s := range c.Auth.AuthorizationServers {
		if !isHTTPURL(s) {
			add(fmt.Sprintf("auth.authorization_servers[%d]", i), "%q is not an absolute http(s) URL", s)
		}
	}
	checkScopes := func(field string, scopes []string) {
		for i, s := range scopes {
			f := fmt.Sprintf("%s[%d]", field, i)
			switch {
			case !scopeToken.MatchString(s):
				add(f, "%q is not a valid scope token (printable ASCII, no spaces, quotes or backslashes)", s)
			case s == "offline_access":
				add(f, "offline_access is never advertised by a resource; remove it")
			}
		}
	}
	checkScopes("auth.baseline_scopes", c.Auth.BaselineScopes)
	checkScopes("auth.step_up_scopes", c.Auth.StepUpScopes)
	for i, s := range c.Auth.StepUpScopes {
		if slices.Contains(c.Auth.BaselineScopes, s) {
			add(fmt.Sprintf("auth.step_up_scopes[%d]", i), "%q is also a baseline scope; a scope is either requested first or granted on demand", s)
		}
	}

	// identity headers
	hdrs := map[string]string{"identity_headers.user": c.IdentityHeaders.User, "identity_headers.tenant": c.IdentityHeaders.Tenant, "identity_headers.scopes": c.IdentityHeaders.Scopes}
	seen := map[string]string{}
	for _, f := range []string{"identity_headers.user", "identity_headers.tenant", "identity_headers.scopes"} {
		h := hdrs[f]
		canon := http.CanonicalHeaderKey(h)
		switch {
		case !validHeaderName(h):
			add(f, "%q is not a valid HTTP header name", h)
		case isReservedHeader(canon) || isCredentialHeader(canon):
			add(f, "%q is reserved by HTTP or MCP; pick a name like X-User-Id", h)
		case seen[canon] != "":
			add(f, "%q is also used by %s; each identity header needs its own name", h, seen[canon])
		}
		seen[canon] = f
	}

	// upstreams
	if len(c.Upstreams) == 0 {
		add("upstreams", "at least one upstream is required; add e.g. {name: notes, mcp: {url: http://127.0.0.1:5052/mcp}}")
	}
	names := map[string]bool{}
	for i, u := range c.Upstreams {
		f := fmt.Sprintf("upstreams[%d]", i)
		switch {
		case !upstreamName.MatchString(u.Name):
			add(f+".name", "%q must be lowercase letters, digits and '-', starting with a letter or digit (it prefixes tool names as <name>__tool)", u.Name)
		case names[u.Name]:
			add(f+".name", "%q is used twice; upstream names must be unique", u.Name)
		}
		names[u.Name] = true
		if u.Timeout < 0 {
			add(f+".timeout", "must be positive, e.g. 30s")
		}
		if u.MaxConcurrency < 0 || u.MaxConcurrency > 10000 {
			add(f+".max_concurrency", "%d is out of range; use 1 to 10000 (default 64)", u.MaxConcurrency)
		}
		switch u.Kind() {
		case "":
			add(f, "set exactly one upstream kind: mcp: {url: ...}, stdio: {command: ...} or rest: {base_url: ..., tools: [...]}")
			continue
		case "stdio":
			validateStdio(f+".stdio", u.Stdio, add)
			continue
		case "rest":
			validateREST(f+".rest", u.REST, seen, add)
			continue
		}
		if mu, err := url.Parse(u.MCP.URL); err != nil || (mu.Scheme != "http" && mu.Scheme != "https") || mu.Hostname() == "" || mu.Fragment != "" {
			add(f+".mcp.url", "%q is not an absolute http(s) URL of an MCP endpoint, e.g. http://127.0.0.1:5052/mcp", u.MCP.URL)
		}
		// Static headers carry the upstream's own credentials (an API key,
		// often as Authorization: the caller's token is never forwarded, so
		// this is the only Authorization the upstream sees). They must not
		// forge the identity headers nor break the MCP transport.
		keys := make([]string, 0, len(u.MCP.Headers))
		for k := range u.MCP.Headers {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			canon := http.CanonicalHeaderKey(k)
			hf := f + ".mcp.headers." + k
			switch {
			case !validHeaderName(k):
				add(hf, "not a valid HTTP header name")
			case seen[canon] != "":
				add(hf, "%s is the identity header set from %s; the gateway sets it from the verified token, remove it", canon, seen[canon])
			case isReservedHeader(canon):
				add(hf, "the gateway or the MCP transport sets this header itself; remove it")
			}
			if strings.ContainsFunc(u.MCP.Headers[k], func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) {
				add(hf, "the value contains control characters; write it on one line")
			}
		}
	}

	validateProxy("proxy", &c.Proxy, seen, add)
	validateLimits(&c.Limits, add)
	validateAudit(&c.Audit, c.Outbound, add)
	c.validateHardening(add)
	validateAuth0(&c.Auth0, add)

	// policy
	if c.Policy.Default != "deny" {
		add("policy.default", "%q is not supported; the gateway is deny-by-default, set it to deny or leave it out", c.Policy.Default)
	}
	for _, table := range []struct {
		field, noun, example string
		rules                map[string]ToolRule
		uris                 bool
	}{
		{"policy.tools", "tool", "notes__read_note or a glob like notes__*", c.Policy.Tools, false},
		{"policy.prompts", "prompt", "notes__summarize or a glob like notes__*", c.Policy.Prompts, false},
		{"policy.resources", "resource", `notes__notes://alice/1 or a glob like "notes__notes://*"`, c.Policy.Resources, true},
	} {
		patterns := make([]string, 0, len(table.rules))
		for p := range table.rules {
			patterns = append(patterns, p)
		}
		slices.Sort(patterns)
		for _, p := range patterns {
			r := table.rules[p]
			f := fmt.Sprintf("%s[%q]", table.field, p)
			if p == "" {
				add(f, "empty pattern; use %s", table.example)
				continue
			}
			if err := policy.ValidatePattern(p); err != nil {
				add(f, "invalid glob: %v", err)
			}
			if msg := patternTargetProblem(c, names, p, table.noun, table.uris); msg != "" {
				add(f, "%s", msg)
			}
			checkScopes(f+".scopes", r.Scopes)
			checkScopes(f+".any_scopes", r.AnyScopes)
			if r.AnyScopes != nil && len(r.AnyScopes) == 0 {
				add(f+".any_scopes", "an empty list requires nothing; list at least one scope, or leave any_scopes out")
			}
			if r.When != "" {
				if err := policy.CompileCondition(r.When); err != nil {
					add(f+".when", "invalid CEL condition at %v; conditions read identity.sub, identity.tenant, identity.client_id, identity.roles, identity.scopes, identity.claims[\"...\"], request.tool, request.upstream and request.arguments, and must be true or false", err)
				}
			}
			for i, role := range r.Roles {
				if !roleToken.MatchString(role) {
					add(fmt.Sprintf("%s.roles[%d]", f, i), "%q is not a valid role name", role)
				}
			}
		}
	}

	// server
	if c.Server.MaxBodyBytes < 1024 || c.Server.MaxBodyBytes > 64<<20 {
		add("server.max_body_bytes", "%d is out of range; use 1024 to 67108864 (default 4194304)", c.Server.MaxBodyBytes)
	}
	if c.Server.UpstreamTimeout <= 0 {
		add("server.upstream_timeout", "must be positive, e.g. 30s")
	}
	for i, o := range c.Server.AllowedOrigins {
		u, err := url.Parse(o)
		if o == "*" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(u.Host, "*") {
			add(fmt.Sprintf("server.allowed_origins[%d]", i), "%q is not an origin; use scheme://host[:port], e.g. https://app.example.com (wildcards are not allowed)", o)
		}
	}
	if c.Server.SessionKey != "" {
		if k, err := base64.StdEncoding.DecodeString(c.Server.SessionKey); err != nil || len(k) != 32 {
			add("server.session_key", "must be 32 random bytes in base64; generate one with: openssl rand -base64 32")
		}
	}
	if c.Server.SessionTTL < 0 {
		add("server.session_ttl", "must be positive, e.g. 24h")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", "%q is not one of debug, info, warn, error; set one of them (default info)", c.Log.Level)
	}
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// patternTargetProblem says why pattern p of a policy table cannot name
// anything of the configured upstreams, or "": it names an upstream that
// does not exist, or lacks the <upstream>__ prefix every upstream's names
// carry. names holds the upstream names; uris is true for
// policy.resources, whose patterns always carry the prefix.
func patternTargetProblem(c *Config, names map[string]bool, p, noun string, uris bool) string {
	if p == "" {
		return ""
	}
	up, _, hasSep := strings.Cut(p, "__")
	glob := strings.ContainsAny(p, "*?[\\")
	switch {
	case hasSep && !strings.ContainsAny(up, "*?[\\") && !names[up] && (uris || !unprefixedTool(c, p)):
		return fmt.Sprintf("references unknown upstream %q; define it under upstreams or fix the name", up)
	case uris && !hasSep && !glob:
		return fmt.Sprintf("resource patterns match <upstream>__<uri>; write e.g. %s__%s", firstUpstream(c), p)
	case !uris && !hasSep && !glob && len(c.Upstreams) > 0 && !unprefixedTool(c, p):
		return fmt.Sprintf("matches no %s: every upstream prefixes its names as <upstream>__<name>; write e.g. %s__%s, or set prefix: false on the upstream", noun, c.Upstreams[0].Name, p)
	}
	return ""
}

// unprefixedTool reports whether p could name a tool of an upstream whose
// prefix is turned off (its own name may then contain "__").
func unprefixedTool(c *Config, _ string) bool {
	for _, u := range c.Upstreams {
		if !u.Prefixed() {
			return true
		}
	}
	return false
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func validHeaderName(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 0 && n <= 65535 && p != "" && p[0] != '+' && p[0] != '-'
}

// isReservedHeader reports whether a header is owned by HTTP or by the MCP
// transport (Host, Connection and the other hop-by-hop headers, Content-*,
// Accept, Mcp-*): neither an identity header nor a static upstream header
// may use it.
func isReservedHeader(canon string) bool {
	switch canon {
	case "Host", "Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
		"Accept", "Accept-Encoding", "Last-Event-Id":
		return true
	}
	return strings.HasPrefix(canon, "Content-") || strings.HasPrefix(canon, "Mcp-")
}

// isCredentialHeader reports whether a header carries credentials. An
// upstream may legitimately receive its own API key in one (a static
// header), but an identity header must never be named like one.
func isCredentialHeader(canon string) bool {
	switch canon {
	case "Authorization", "Proxy-Authorization", "Cookie":
		return true
	}
	return false
}

// firstUpstream names the first upstream, for examples in messages.
func firstUpstream(c *Config) string {
	if len(c.Upstreams) == 0 {
		return "notes"
	}
	return c.Upstreams[0].Name
}
