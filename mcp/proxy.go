package mcp

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gatewaystack/gatewaystack/audit"
	"github.com/gatewaystack/gatewaystack/auth"
	"github.com/gatewaystack/gatewaystack/config"
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
		routes[i] = proxy.Route{Prefix: r.Prefix, Methods: r.Methods, Scopes: r.Scopes, Roles: r.Roles}
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
	})
	if err != nil {
		return nil, fmt.Errorf("build proxy: %w", err)
	}
	return p, nil
}

// serveProxy runs the pipeline of one /proxy request: identify with the
// same bearer tokens as /mcp, then hand the request to the pass-through
// with the verified identity in its context; one audit line per request
// (tool "proxy:<route prefix>", rule the route prefix, upstream "proxy").
func (g *Gateway) serveProxy(w http.ResponseWriter, r *http.Request) {
	st := &requestState{start: time.Now()}
	st.event.RequestID = newRequestID()
	w.Header().Set("X-Request-Id", st.event.RequestID)
	st.event.Method = r.Method
	st.event.Tool = "proxy:" + strings.TrimPrefix(r.URL.Path, ProxyMount)

	id, aerr := g.identifyProxyCaller(r)
	if aerr != nil {
		g.audit(st, audit.Deny, aerr.Reason, aerr.Status)
		g.writeAuthError(w, aerr)
		return
	}
	st.event.Subject, st.event.Tenant, st.event.ClientID, st.event.TokenID = id.Subject, id.Tenant, id.ClientID, id.TokenID
	ctx := upstream.WithIdentity(r.Context(), g.o.IdentityHeaders, id)
	g.o.Proxy.Serve(w, r.WithContext(ctx), func(res proxy.Result) {
		st.event.Tool = "proxy:" + res.Route
		if res.Route == "" {
			st.event.Tool = "proxy:" + res.Path
		}
		st.event.Rule = res.Route
		if res.Decision != audit.Deny {
			st.event.Upstream = proxy.BackendName
		}
		g.audit(st, res.Decision, res.Reason, res.Status)
	})
}

// identifyProxyCaller is the identify stage: the bearer token of the
// Authorization header, verified.
func (g *Gateway) identifyProxyCaller(r *http.Request) (auth.Identity, *auth.Error) {
	token, aerr := auth.BearerToken(r)
	if aerr != nil {
		return auth.Identity{}, aerr
	}
	id, err := g.o.Verifier.Verify(r.Context(), token)
	if err != nil {
		if !errors.As(err, &aerr) {
			aerr = &auth.Error{Status: http.StatusUnauthorized, Code: auth.CodeInvalidToken, Reason: auth.ReasonSignatureInvalid, Description: "the token could not be verified"}
		}
		return auth.Identity{}, aerr
	}
	return id, nil
}
