package config

import "strings"

// applyProxyEnv applies the original project's proxy variables:
//
//   - PROXY_TARGET sets proxy.target (turning /proxy on);
//   - PROXY_INJECT_HEADER sets identity_headers.user, the header that
//     carries the verified user id to /proxy, REST and MCP upstreams alike
//     (the original injected the user id under this name);
//   - PROXY_INJECT_QUERY sets proxy.inject_query, and the inject_query of
//     every REST upstream that does not set its own.
func (c *Config) applyProxyEnv(getenv func(string) string) {
	if v := strings.TrimSpace(getenv("PROXY_TARGET")); v != "" {
		c.Proxy.Target = v
	}
	if v := strings.TrimSpace(getenv("PROXY_INJECT_HEADER")); v != "" {
		c.IdentityHeaders.User = v
	}
	if v := strings.TrimSpace(getenv("PROXY_INJECT_QUERY")); v != "" {
		c.Proxy.InjectQuery = v
		for i := range c.Upstreams {
			if r := c.Upstreams[i].REST; r != nil && r.InjectQuery == "" {
				r.InjectQuery = v
			}
		}
	}
}
