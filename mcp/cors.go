package mcp

import (
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatewaystack/gatewaystack/audit"
)

// CORS: allowed request headers of MCP clients running in browsers.
const (
	corsAllowHeaders  = "Authorization, Content-Type, Accept, Mcp-Session-Id, Mcp-Protocol-Version, MCP-Protocol-Version, Last-Event-ID, Mcp-Method, Mcp-Name"
	corsExposeHeaders = "Mcp-Session-Id, Mcp-Protocol-Version, WWW-Authenticate, X-Request-Id"
	corsAllowMethods  = "GET, POST, DELETE, OPTIONS"
)

// corsPolicy is the outermost layer of the MCP endpoint and the metadata:
// preflights never need credentials, and every response — 401 and 403
// included — carries the CORS headers for an allowed origin.
type corsPolicy struct {
	origins []string // empty: loopback origins only
	// refuse answers a request from an origin that is not allowed.
	refuse func(w http.ResponseWriter, r *http.Request, reason, description string)
}

func newCORSPolicy(origins []string, refuse func(w http.ResponseWriter, r *http.Request, reason, description string)) *corsPolicy {
	norm := make([]string, 0, len(origins))
	for _, o := range origins {
		norm = append(norm, strings.ToLower(strings.TrimSuffix(o, "/")))
	}
	return &corsPolicy{origins: norm, refuse: refuse}
}

// allowed reports whether a browser origin may call the gateway.
func (c *corsPolicy) allowed(origin string) bool {
	o := strings.ToLower(origin)
	if slices.Contains(c.origins, o) {
		return true
	}
	if len(c.origins) > 0 {
		return false
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Path != "" {
		return false
	}
	return isLoopbackHost(u.Hostname())
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (c *corsPolicy) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if origin != "" {
			if !c.allowed(origin) {
				c.refuse(w, r, "origin_not_allowed", "this origin is not allowed; add it to server.allowed_origins")
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		}
		if r.Method == http.MethodOptions {
			h := w.Header()
			h.Set("Allow", corsAllowMethods)
			if preflight {
				h.Set("Access-Control-Allow-Methods", corsAllowMethods)
				h.Set("Access-Control-Allow-Headers", allowHeaders(r.Header.Get("Access-Control-Request-Headers")))
				h.Set("Access-Control-Max-Age", "600")
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// allowHeaders is the fixed list plus any requested Mcp-Param-* headers
// (tool parameters mirrored into headers by the 2026-07-28 protocol).
func allowHeaders(requested string) string {
	out := corsAllowHeaders
	for _, h := range strings.Split(requested, ",") {
		h = strings.TrimSpace(h)
		if len(h) > len("mcp-param-") && strings.EqualFold(h[:len("mcp-param-")], "mcp-param-") && validToken(h) {
			out += ", " + h
		}
	}
	return out
}

func validToken(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// refuse answers a request refused before identification (origin or Host
// not allowed) with 403: one audit line and a JSON error carrying a request
// id, like every other decision.
func (g *Gateway) refuse(w http.ResponseWriter, r *http.Request, reason, description string) {
	st := &requestState{start: time.Now()}
	st.event.RequestID = newRequestID()
	st.event.Method = r.Method
	w.Header().Set("X-Request-Id", st.event.RequestID)
	g.audit(st, audit.Deny, reason, http.StatusForbidden)
	writeJSON(w, http.StatusForbidden, map[string]string{"error": reason, "error_description": description})
}

// hostCheck refuses requests whose Host header is not this gateway's
// (DNS-rebinding protection): loopback names and the configured hosts pass.
func (g *Gateway) hostCheck(next http.Handler) http.Handler {
	allowed := make([]string, 0, len(g.o.HTTP.AllowedHosts))
	for _, h := range g.o.HTTP.AllowedHosts {
		allowed = append(allowed, strings.ToLower(h))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := strings.ToLower(r.Host)
		name := host
		if h, _, err := net.SplitHostPort(host); err == nil {
			name = h
		}
		name = strings.Trim(name, "[]")
		if !(g.o.HTTP.AllowLoopbackHosts && isLoopbackHost(name)) && !slices.Contains(allowed, host) && !slices.Contains(allowed, name) {
			g.refuse(w, r, "host_not_allowed", "this Host is not served here; add it to server.allowed_hosts")
			return
		}
		next.ServeHTTP(w, r)
	})
}
