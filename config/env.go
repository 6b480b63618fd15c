package config

import (
	"slices"
	"strconv"
	"strings"
)

// Environment variables added for the original project's behaviour.
const (
	// EnvAdvertiseToolScopes sets auth.advertise_tool_scopes (1 or true).
	EnvAdvertiseToolScopes = "ADVERTISE_TOOL_SCOPES"
	// EnvProxyDefaultScopes sets the scopes of proxy.default_route.
	EnvProxyDefaultScopes = "PROXY_DEFAULT_SCOPES"
)

// EnvVar is an environment variable the gateway reads.
type EnvVar struct {
	// Name of the variable.
	Name string
	// Field is the setting it overrides, as a field path (list items as
	// []); empty when it is not a setting of the file.
	Field string
	// DemoOnly: read only with DEMO_MODE=true.
	DemoOnly bool
	// Doc says what it does, in one line.
	Doc string
}

// envVars is every variable, in documentation order. applyEnv and its
// helpers read them; a test keeps the two in step.
var envVars = []EnvVar{
	{Name: "GATEWAYSTACK_CONFIG", Doc: "path of the configuration file when --config is not given"},
	{Name: "GATEWAYSTACK_LISTEN", Field: "listen", Doc: "the address the gateway binds"},
	{Name: "GATEWAYSTACK_PUBLIC_URL", Field: "public_url", Doc: "the URL clients use"},
	{Name: "OAUTH_ISSUER", Field: "auth.issuer", Doc: "the tokens' issuer"},
	{Name: "OAUTH_AUDIENCE", Field: "auth.audience", Doc: "the tokens' audience (public_url + /mcp)"},
	{Name: "OAUTH_JWKS_URI", Field: "auth.jwks_uri", Doc: "the issuer's key set"},
	{Name: "OAUTH_ENFORCE_ALG", Field: "auth.algorithms", Doc: `accepted algorithms, comma- or space-separated ("RS256,PS256")`},
	{Name: "DEMO_MODE", Doc: "true: the OAUTH_*_DEMO variables win over OAUTH_*"},
	{Name: "OAUTH_ISSUER_DEMO", Field: "auth.issuer", DemoOnly: true, Doc: "auth.issuer with DEMO_MODE=true"},
	{Name: "OAUTH_AUDIENCE_DEMO", Field: "auth.audience", DemoOnly: true, Doc: "auth.audience with DEMO_MODE=true"},
	{Name: "OAUTH_JWKS_URI_DEMO", Field: "auth.jwks_uri", DemoOnly: true, Doc: "auth.jwks_uri with DEMO_MODE=true"},
	{Name: "OAUTH_SCOPES_DEMO", Field: "auth.baseline_scopes", DemoOnly: true, Doc: "auth.baseline_scopes (space-separated) with DEMO_MODE=true"},
	{Name: EnvAdvertiseToolScopes, Field: "auth.advertise_tool_scopes", Doc: "1: advertise every tool scope in scopes_supported and the 401 challenge"},
	{Name: "TOOL_SCOPES_JSON", Field: "policy.tools", Doc: `merged into policy.tools, e.g. {"notes__read_note":["tool:read"]}`},
	{Name: "LOG_LEVEL", Field: "log.level", Doc: "debug, info, warn or error"},
	{Name: "PROXY_TARGET", Field: "proxy.target", Doc: "the /proxy backend"},
	{Name: "PROXY_INJECT_HEADER", Field: "identity_headers.user", Doc: "the header carrying the verified user id"},
	{Name: "PROXY_INJECT_QUERY", Field: "proxy.inject_query", Doc: "also send the user id as this query parameter (and to REST upstreams that set none)"},
	{Name: EnvProxyDefaultScopes, Field: "proxy.default_route.scopes", Doc: "opt in to forwarding every /proxy path to callers with these scopes"},
	{Name: "RATE_LIMIT_MAX", Field: "limits.per_subject.requests", Doc: "requests per window per subject (0 disables)"},
	{Name: "RATE_LIMIT_WINDOW_MS", Field: "limits.per_subject.window", Doc: "the per-subject window in milliseconds"},
	{Name: "GATEWAYSTACK_LIMITS_STORE", Field: "limits.store", Doc: "memory or a redis:// URL"},
	{Name: EnvAuditChainKey, Field: "audit.chain_key", Doc: "the audit chain key"},
	{Name: EnvAuditCheckpointKey, Field: "audit.checkpoint_key", Doc: "the audit checkpoint signing key"},
	{Name: "AUTH0_DOMAIN", Field: "auth0.domain", Doc: "the Auth0 tenant domain (or MGMT_DOMAIN)"},
	{Name: "MGMT_DOMAIN", Field: "auth0.domain", Doc: "the Auth0 tenant domain"},
	{Name: "AUTH0_MGMT_CLIENT_ID", Field: "auth0.client_id", Doc: "the Management API client (or MGMT_CLIENT_ID)"},
	{Name: "MGMT_CLIENT_ID", Field: "auth0.client_id", Doc: "the Management API client"},
	{Name: "AUTH0_MGMT_CLIENT_SECRET", Field: "auth0.client_secret", Doc: "its secret (or MGMT_CLIENT_SECRET)"},
	{Name: "MGMT_CLIENT_SECRET", Field: "auth0.client_secret", Doc: "its secret"},
	{Name: "LOG_WEBHOOK_SECRET", Field: "auth0.webhook_secret", Doc: "the log-stream webhook secret (or WEBHOOK_SHARED_SECRET)"},
	{Name: "WEBHOOK_SHARED_SECRET", Field: "auth0.webhook_secret", Doc: "the log-stream webhook secret"},
	{Name: "GOOGLE_CONNECTION_NAME", Field: "auth0.connection", Doc: "the connection enabled for promoted clients"},
}

// EnvVars lists every environment variable the configuration reads, with
// the setting each overrides, in documentation order.
func EnvVars() []EnvVar { return slices.Clone(envVars) }

// envSource names the environment variable whose value a problem at field
// is about, or "": the variable set in getenv that overrides field or a
// section holding it. For policy.tools only the patterns TOOL_SCOPES_JSON
// set count.
func (c *Config) envSource(field string, getenv func(string) string) string {
	if getenv == nil {
		return ""
	}
	demo, _ := strconv.ParseBool(strings.TrimSpace(getenv("DEMO_MODE")))
	// With DEMO_MODE the *_DEMO variables win, so they are looked at first.
	ordered := slices.Clone(envVars)
	slices.SortStableFunc(ordered, func(a, b EnvVar) int { return boolRank(b.DemoOnly) - boolRank(a.DemoOnly) })
	for _, ev := range ordered {
		if ev.Field == "" || (ev.DemoOnly && !demo) || strings.TrimSpace(getenv(ev.Name)) == "" {
			continue
		}
		if ev.Name == "TOOL_SCOPES_JSON" {
			for _, p := range c.toolsFromEnv {
				if under(field, "policy.tools["+strconv.Quote(p)+"]") {
					return ev.Name
				}
			}
			continue
		}
		if under(field, ev.Field) {
			return ev.Name
		}
	}
	return ""
}

// under reports whether field is path or a setting inside it.
func under(field, path string) bool {
	return field == path || strings.HasPrefix(field, path+".") || strings.HasPrefix(field, path+"[")
}
