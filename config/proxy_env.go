package config

import "strings"

// applyProxyEnv applies the original project's proxy variables:
//
//   - PROXY_TARGET sets proxy.target (turning /proxy on);
//   - PROXY_INJECT_HEADER sets identity_headers.user, the header that
//     carries the verified user id to /proxy, REST and MCP upstreams alike
//     (the original injected the user id under this name);
//   - PROXY_INJECT_QUERY sets proxy.inject_query, and the inject_query of
//     every REST upstream that does not set its own;
//   - PROXY_DEFAULT_SCOPES (comma- or space-separated) sets the scopes of
//     proxy.default_route, creating it: the opt-in to forwarding every
//     path, as the original gateway did with PROXY_TARGET alone.
func (c *Config) applyProxyEnv(getenv func(string) string) {
	if v := strings.TrimSpace(getenv("PROXY_TARGET")); v != "" {
		c.Proxy.Target = v
	}
	if v := strings.TrimSpace(getenv(EnvProxyDefaultScopes)); v != "" {
		if c.Proxy.DefaultRoute == nil {
			c.Proxy.DefaultRoute = &ProxyDefaultRoute{}
		}
		c.Proxy.DefaultRoute.Scopes = strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
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
