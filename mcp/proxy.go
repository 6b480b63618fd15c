package mcp

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gatewaystack/gatewaystack/audit"
	"github.com/gatewaystack/gatewaystack/auth"
	"github.com/gatewaystack/gatewaystack/config"
	"github.com/gatewaystack/gatewaystack/internal/bounded"
	"github.com/gatewaystack/gatewaystack/proxy"
	"github.com/gatewaystack/gatewaystack/upstream"
)

// ProxyMount is where the plain HTTP pass-through is served.
const ProxyMount = "/proxy"

// newProxy builds the /proxy pass-through from the configuration, or nil
// when proxy.target is empty. Static headers get ${VAR} expanded. It gets
// its own transport (the shared pool's settings) that waits at most
// server.upstream_timeout for the backend's response headers (a body may
// stream for longer) and passes bodies through without decompressing them.
func newProxy(cfg *config.Config, o BuildOptions) (*proxy.Proxy, error) {
	if cfg.Proxy.Target == "" {
		return nil, nil
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	headers := make(map[string]string, len(cfg.Proxy.Headers))
	for k, val := range cfg.Proxy.Headers {
		expanded, err := expandEnv(val, o.Getenv)
		if err != nil {
			return nil, fmt.Errorf("proxy.headers.%s: %w", k, err)
		}
		headers[k] = expanded
	}
	prm, err := auth.PRMURL(cfg.Resource())
	if err != nil {
		return nil, fmt.Errorf("build proxy: %w", err)
	}
	t := UpstreamHTTPClient().Transport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = cfg.Server.UpstreamTimeout
	t.DisableCompression = true
	routes := make([]proxy.Route, len(cfg.Proxy.Routes))
	for i, r := range cfg.Proxy.Routes {
		routes[i] = proxy.Route{Prefix: r.Prefix, Methods: r.Methods, Scopes: r.Scopes, Roles: r.Roles, Cost: r.Units()}
	}
	p, err := proxy.New(proxy.Options{
		Target:           cfg.Proxy.Target,
		Mount:            ProxyMount,
		InjectQuery:      cfg.Proxy.InjectQuery,
		Headers:          headers,
		Routes:           routes,
		StepUpScopes:     cfg.Auth.StepUpScopes,
		BaselineScopes:   cfg.Auth.BaselineScopes,
		ResourceMetadata: prm,
		Transport:        t,
		MaxBodyBytes:     cfg.Proxy.MaxBodyBytes,
		Logger:           o.Logger,
		Admit:            admitProxyRequest,
	})
	if err != nil {
		return nil, fmt.Errorf("build proxy: %w", err)
	}
	return p, nil
}

// serveProxy runs the pipeline of one /proxy request, with the same
// limits as /mcp in the same order: per-IP flood limit (only failed or
// missing credentials count) → the replica's concurrency cap → identify →
// per-subject and per-tenant rate limits → the subject's concurrency cap →
// route policy → budgets (the route's cost, charged once the route allowed
// the request) → body cap → reverse proxy → audit. One audit line per
// request (tool "proxy:<route prefix>", rule the route prefix or the limit
// that refused, upstream "proxy"); refusals are plain JSON with a reason.
func (g *Gateway) serveProxy(w http.ResponseWriter, r *http.Request) {
	st := &requestState{start: time.Now(), plain: true}
	st.event.RequestID = newRequestID()
	w.Header().Set("X-Request-Id", st.event.RequestID)
	st.event.Method = r.Method
	st.event.Tool = "proxy:" + bounded.String(strings.TrimPrefix(r.URL.Path, ProxyMount))

	ip := g.o.Limits.clientIP(r)
	if g.ipRefused(w, r, st, ip) {
		return
	}
	if !g.caps.enter() {
		g.refuseOverloaded(w, st)
		return
	}
	defer g.caps.leave()

	id, aerr := g.identifyProxyCaller(r)
	if aerr != nil {
		g.chargeIP(r.Context(), ip)
		g.audit(st, audit.Deny, aerr.Reason, aerr.Status)
		g.writeAuthError(w, aerr)
		return
	}
	st.event.Subject, st.event.Tenant, st.event.ClientID, st.event.TokenID = id.Subject, id.Tenant, id.ClientID, id.TokenID
	if g.requestLimited(r.Context(), w, st, nil, id) {
		return
	}
	if !g.caps.enterSubject(id.Subject) {
		g.refuseTooManyConcurrent(w, st, nil)
		return
	}
	defer g.caps.leaveSubject(id.Subject)

	ctx := upstream.WithIdentity(r.Context(), g.o.IdentityHeaders, id)
	admit := func(w http.ResponseWriter, r *http.Request, route proxy.Route) bool {
		st.event.Tool = "proxy:" + route.Prefix
		return g.render(w, st, nil, g.budgetDecision(r.Context(), st, id, st.event.Tool, route.Cost))
	}
	g.o.Proxy.Serve(w, r.WithContext(withProxyAdmit(ctx, admit)), func(res proxy.Result) {
		if st.audited {
			return // a limit refused the request, and audited it
		}
		st.event.Tool = "proxy:" + res.Route
		if res.Route == "" {
			st.event.Tool = "proxy:" + bounded.String(res.Path)
		}
		st.event.Rule = res.Route
		if res.Decision != audit.Deny {
			st.event.Upstream = proxy.BackendName
		}
		g.audit(st, res.Decision, res.Reason, res.Status)
	})
}

// proxyAdmitFunc is the limit stage of one /proxy request (serveProxy).
type proxyAdmitFunc func(w http.ResponseWriter, r *http.Request, route proxy.Route) bool

type proxyAdmitKey struct{}

// withProxyAdmit carries a request's limit stage to admitProxyRequest.
func withProxyAdmit(ctx context.Context, f proxyAdmitFunc) context.Context {
	return context.WithValue(ctx, proxyAdmitKey{}, f)
}

// admitProxyRequest is the proxy's Admit hook: it runs the limit stage
// serveProxy put in the request's context. A request without one was not
// served by serveProxy: refused (fail closed).
func admitProxyRequest(w http.ResponseWriter, r *http.Request, route proxy.Route) bool {
	f, ok := r.Context().Value(proxyAdmitKey{}).(proxyAdmitFunc)
	if !ok {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "internal_error", "error_description": "the request has no limit stage"})
		return true
	}
	return f(w, r, route)
}

// identifyProxyCaller is the identify stage: the bearer token of the
// Authorization header, verified.
func (g *Gateway) identifyProxyCaller(r *http.Request) (auth.Identity, *auth.Error) {
	return g.verifyBearer(r)
}
