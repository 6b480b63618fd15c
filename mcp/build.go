package mcp

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/gatewaystack/gatewaystack/audit"
	"github.com/gatewaystack/gatewaystack/auth"
	"github.com/gatewaystack/gatewaystack/auth0"
	"github.com/gatewaystack/gatewaystack/config"
	"github.com/gatewaystack/gatewaystack/limit"
	"github.com/gatewaystack/gatewaystack/metrics"
	"github.com/gatewaystack/gatewaystack/policy"
	"github.com/gatewaystack/gatewaystack/proxy"
	"github.com/gatewaystack/gatewaystack/safehttp"
	"github.com/gatewaystack/gatewaystack/upstream"
)

// Server is a gateway built from a configuration, with everything it owns.
type Server struct {
	Gateway  *Gateway
	Verifier *auth.Verifier
	Router   *upstream.Router
	cfg      *config.Config
	stop     context.CancelFunc // ends the upstream probes
	shared   *limit.Redis       // the Redis limit store (nil: memory)
	auditor  *audit.Auditor     // every audit sink's queue
	dcr      *auth0.Webhook     // the Auth0 log-stream webhook (nil: off)
}

// BuildOptions are the process-level inputs of Build.
type BuildOptions struct {
	// Version of the binary.
	Version string
	// Logger for operational logs.
	Logger zerolog.Logger
	// AuditWriter receives audit lines (default os.Stdout).
	AuditWriter io.Writer
	// DemoAdminToken, set by the demo only, mints a token for the demo's
	// admin user, offered by the admin page to loopback clients.
	DemoAdminToken func(ctx context.Context) (string, error)
	// Getenv resolves ${VAR} in upstream headers (default os.Getenv).
	Getenv func(string) string
}

// Build validates cfg and assembles the gateway, one part after another:
// the outbound client, verifier (JWKS fetched in the background), /proxy,
// upstream router, sessions, audit sinks, the identity provider's checks,
// the shared limit store and limits, metrics and the MCP front. When a part
// fails, the parts built before it are closed.
func Build(ctx context.Context, cfg *config.Config, o BuildOptions) (srv *Server, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.AuditWriter == nil {
		o.AuditWriter = os.Stdout
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	p := &parts{}
	if p.outbound, err = buildOutbound(cfg); err != nil {
		return nil, err
	}
	if p.verifier, err = buildVerifier(ctx, cfg, o, p.outbound); err != nil {
		return nil, err
	}
	undo = append(undo, func() { _ = p.verifier.Close() })
	if p.proxy, err = newProxy(cfg, o); err != nil {
		return nil, err
	}
	if p.router, err = buildRouter(ctx, cfg, o); err != nil {
		return nil, err
	}
	undo = append(undo, func() { _ = p.router.Close() })
	if p.sessions, err = buildSessions(cfg); err != nil {
		return nil, err
	}
	if p.auditor, p.recent, err = buildAuditor(cfg, o, p.outbound); err != nil {
		return nil, err
	}
	undo = append(undo, func() { _ = p.auditor.Close(context.Background()) })
	if p.dcr, p.idp, err = buildIdP(cfg, o, p.outbound, p.verifier); err != nil {
		return nil, err
	}
	if p.dcr != nil {
		undo = append(undo, func() { _ = p.dcr.Close() })
	}
	if p.shared, err = buildSharedStore(ctx, cfg, o, p.sessions); err != nil {
		return nil, err
	}
	if p.shared != nil {
		undo = append(undo, func() { _ = p.shared.Close() })
	}
	if p.limits, err = BuildLimits(cfg.Limits, p.shared, nil); err != nil {
		return nil, err
	}
	var gwRef atomic.Pointer[Gateway]
	p.metrics = buildMetrics(cfg, p, &gwRef)
	gw, err := New(gatewayOptions(cfg, o, p))
	if err != nil {
		return nil, fmt.Errorf("build gateway: %w", err)
	}
	gwRef.Store(gw)
	// What the gateway keeps per session goes when the session ends.
	p.sessions.OnEnd(gw.endSession)
	probes, stop := context.WithCancel(context.WithoutCancel(ctx))
	p.router.Start(probes)
	return &Server{Gateway: gw, Verifier: p.verifier, Router: p.router, cfg: cfg, stop: stop, shared: p.shared, auditor: p.auditor, dcr: p.dcr}, nil
}

// parts are what Build assembles the gateway from.
type parts struct {
	outbound *safehttp.Client
	verifier *auth.Verifier
	proxy    *proxy.Proxy
	router   *upstream.Router
	sessions *Sessions
	auditor  *audit.Auditor
	recent   *audit.Ring
	dcr      *auth0.Webhook
	idp      *IdPOptions
	shared   *limit.Redis
	limits   Limits
	metrics  *metrics.Metrics
}

// buildOutbound is the one SSRF-safe client for everything the gateway
// fetches from a configured URL (the JWKS, the issuer's metadata, the
// audit webhook).
func buildOutbound(cfg *config.Config) (*safehttp.Client, error) {
	allow, err := safehttp.ParsePrefixes(cfg.Outbound.AllowCIDRs)
	if err != nil {
		return nil, fmt.Errorf("outbound.allow_cidrs: %w", err)
	}
	return safehttp.New(safehttp.Options{
		AllowHTTPLoopback:        cfg.Outbound.AllowHTTPLoopback,
		AllowCIDRs:               allow,
		Timeout:                  10 * time.Second,
		AllowCIDRsSetting:        "outbound.allow_cidrs",
		AllowHTTPLoopbackSetting: "outbound.allow_http_loopback",
	}), nil
}

// buildVerifier is the token verifier of the auth section.
func buildVerifier(ctx context.Context, cfg *config.Config, o BuildOptions, outbound *safehttp.Client) (*auth.Verifier, error) {
	v, err := auth.NewVerifier(ctx, auth.VerifierConfig{
		Issuer:          cfg.Auth.Issuer,
		Audience:        cfg.Auth.Audience,
		JWKSURI:         cfg.Auth.JWKSURI,
		Algorithms:      cfg.Auth.Algorithms,
		Skew:            cfg.Auth.ClockSkew,
		TenantClaim:     cfg.Auth.TenantClaim,
		RolesClaim:      cfg.Auth.RolesClaim,
		RefetchCooldown: cfg.Auth.JWKSRefetchCooldown,
		HTTPClient:      outbound.HTTPClient(),
		MaxLifetime:     cfg.Auth.MaxTokenLifetime,
		TokenTypes:      cfg.Auth.TokenTypes,
		MaxStale:        cfg.Auth.JWKSMaxStale,
		Logger:          o.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("build verifier: %w", err)
	}
	return v, nil
}

// buildRouter connects the upstreams (closing those already made when one
// fails).
func buildRouter(ctx context.Context, cfg *config.Config, o BuildOptions) (*upstream.Router, error) {
	hc := UpstreamHTTPClient()
	ups := make([]upstream.Upstream, 0, len(cfg.Upstreams))
	for _, u := range cfg.Upstreams {
		caller, err := newCaller(ctx, u, hc, o)
		if err != nil {
			for _, made := range ups {
				_ = made.Close()
			}
			return nil, err
		}
		ups = append(ups, upstream.Upstream{Caller: caller, Prefixed: u.Prefixed(),
			MaxConcurrency: u.MaxConcurrency, QueueWait: u.Timeout / 2})
	}
	return upstream.NewRouter(ups), nil
}

// buildSessions is the session ids' sealer and store.
func buildSessions(cfg *config.Config) (*Sessions, error) {
	var key []byte
	if cfg.Server.SessionKey != "" {
		var err error
		if key, err = base64.StdEncoding.DecodeString(cfg.Server.SessionKey); err != nil {
			return nil, fmt.Errorf("decode server.session_key: %w", err)
		}
	}
	sessions, err := NewSessions(key, cfg.Server.SessionTTL)
	if err != nil {
		return nil, err
	}
	sessions.LimitPerSubject(cfg.Server.MaxSessionsPerSubject)
	return sessions, nil
}

// buildIdP is /health/idp's checks and, when configured, the Auth0 log
// stream webhook (nil otherwise).
func buildIdP(cfg *config.Config, o BuildOptions, outbound *safehttp.Client, v *auth.Verifier) (*auth0.Webhook, *IdPOptions, error) {
	idp := &IdPOptions{Issuer: cfg.Auth.Issuer, JWKSURI: cfg.Auth.JWKSURI,
		HTTPClient: outbound.HTTPClient(), JWKS: v.JWKSStats}
	if !cfg.Auth0.Enabled() {
		return nil, idp, nil
	}
	a0 := cfg.Auth0
	if len(a0.Scopes) == 0 {
		a0.Scopes = policyScopes(cfg)
	}
	dcr, err := auth0.New(auth0.Options{Auth0: a0, Logger: o.Logger})
	if err != nil {
		return nil, nil, fmt.Errorf("auth0: %w", err)
	}
	idp.Extra = func(ctx context.Context) (string, bool, any) {
		h := dcr.Health(ctx)
		return "auth0_webhook", h.OK, h
	}
	return dcr, idp, nil
}

// buildSharedStore connects the Redis limit store (nil with the memory
// store) and shares ended sessions through it. A Redis that does not answer
// yet is not fatal: the failure mode applies until it does.
func buildSharedStore(ctx context.Context, cfg *config.Config, o BuildOptions, sessions *Sessions) (*limit.Redis, error) {
	if !cfg.Limits.RedisStore() {
		return nil, nil
	}
	shared, err := limit.NewRedis(limit.RedisOptions{URL: cfg.Limits.Store, Timeout: cfg.Limits.StoreTimeout})
	if err != nil {
		return nil, fmt.Errorf("limits.store: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	if err := shared.Ping(pctx); err != nil {
		o.Logger.Warn().Err(err).Str("on_store_error", cfg.Limits.OnStoreError).Msg("the Redis limit store does not answer yet")
	}
	cancel()
	sessions.ShareRevocations(shared.Namespace("sessions:"), cfg.Limits.OnStoreError == config.FailOpen)
	return shared, nil
}

// buildMetrics is /metrics with its scrape-time sources (nil when off);
// gw is the gateway once built.
func buildMetrics(cfg *config.Config, p *parts, gw *atomic.Pointer[Gateway]) *metrics.Metrics {
	if !cfg.Server.MetricsEnabled() {
		return nil
	}
	return metrics.New(metrics.Sources{
		Upstreams: func() []metrics.UpstreamState {
			hs := p.router.Health()
			out := make([]metrics.UpstreamState, len(hs))
			for i, h := range hs {
				out[i] = metrics.UpstreamState{Name: h.Name, Up: h.Status == "up", InFlight: h.InFlight}
			}
			return out
		},
		JWKS: func() metrics.JWKSState {
			j := p.verifier.JWKSStats()
			return metrics.JWKSState{Fetches: j.Fetches, Failures: j.Failures, Keys: j.Keys, Ready: j.Ready}
		},
		Store: func() metrics.StoreState {
			if p.limits.Shared == nil {
				return metrics.StoreState{Kind: "memory", Up: true}
			}
			h := p.limits.Shared.Health()
			return metrics.StoreState{Kind: "redis", Up: h.OK, Errors: h.Errors}
		},
		Sinks: func() []metrics.SinkState {
			st := p.auditor.Stats()
			out := make([]metrics.SinkState, len(st))
			for i, x := range st {
				out[i] = metrics.SinkState{Name: x.Name, Queued: x.Queued, Delivered: x.Delivered, Dropped: x.Dropped, Failed: x.Failed}
			}
			return out
		},
		Sessions: func() int {
			if g := gw.Load(); g != nil {
				return g.ActiveSessions()
			}
			return 0
		},
		Streams: func() int {
			if g := gw.Load(); g != nil {
				return g.OpenStreams()
			}
			return 0
		},
	})
}

// gatewayOptions are the MCP front's options from cfg and the parts.
func gatewayOptions(cfg *config.Config, o BuildOptions, p *parts) Options {
	hosts := append([]string{}, cfg.Server.AllowedHosts...)
	loopbackHosts := false
	if pu, err := url.Parse(cfg.PublicURL); err == nil {
		hosts = append(hosts, pu.Host)
		loopbackHosts = isLoopbackHost(pu.Hostname())
	}
	var dcrHandler http.Handler
	if p.dcr != nil {
		dcrHandler = p.dcr
	}
	v := p.verifier
	return Options{
		Endpoint: EndpointOptions{
			Resource:             cfg.Resource(),
			Path:                 cfg.MCPPath(),
			AuthorizationServers: cfg.Auth.AuthorizationServers,
			BaselineScopes:       cfg.Auth.BaselineScopes,
			StepUpScopes:         cfg.Auth.StepUpScopes,
		},
		Verifier: v,
		Ready:    func() bool { return v.Ready() && !v.JWKSStats().Stale },
		Policy: PolicyOptions{
			Tools:     NewAuthorizer(cfg.Policy.Tools, cfg),
			Prompts:   NewAuthorizer(cfg.Policy.Prompts, cfg),
			Resources: NewAuthorizer(cfg.Policy.Resources, cfg),
			Version:   PolicyVersion(cfg.Policy),
		},
		Router:          p.router,
		IdentityHeaders: upstream.HeaderNames{User: cfg.IdentityHeaders.User, Tenant: cfg.IdentityHeaders.Tenant, Scopes: cfg.IdentityHeaders.Scopes},
		Sessions:        p.sessions,
		HTTP: HTTPOptions{
			MaxBodyBytes:            cfg.Server.MaxBodyBytes,
			ReadTimeout:             cfg.Server.ReadTimeout,
			AllowedOrigins:          cfg.Server.AllowedOrigins,
			AllowedHosts:            hosts,
			AllowLoopbackHosts:      loopbackHosts,
			AccessLog:               cfg.Log.AccessEnabled(),
			MaxConcurrent:           cfg.Server.MaxConcurrent,
			MaxConcurrentPerSubject: cfg.Server.MaxConcurrentPerSubject,
			MaxStreamsPerSession:    cfg.Server.MaxStreamsPerSession,
			MaxStreamsPerSubject:    cfg.Server.MaxStreamsPerSubject,
		},
		Limits: p.limits,
		Audit: AuditOptions{
			Sink:         p.auditor,
			Recent:       p.recent,
			Stats:        p.auditor.Stats,
			RawArguments: cfg.Audit.RawArguments,
		},
		Admin: AdminOptions{
			Scope:          cfg.Admin.Scope,
			DemoAdminToken: o.DemoAdminToken,
			IdP:            p.idp,
			Auth0Webhook:   dcrHandler,
		},
		Proxy:   p.proxy,
		Metrics: p.metrics,
		Version: o.Version,
		Logger:  o.Logger,
	}
}

// Close releases the verifier's, upstreams' and limit store's resources,
// then flushes every audit sink: it waits, bounded by ctx, until each
// queued event is delivered, and reports the events it could not deliver.
// Call it after the HTTP server has stopped (no new events).
func (s *Server) Close(ctx context.Context) error {
	s.stop()
	errs := []error{s.Gateway.Close(ctx), s.Router.Close(), s.Verifier.Close()}
	if s.shared != nil {
		errs = append(errs, s.shared.Close())
	}
	if s.dcr != nil {
		errs = append(errs, s.dcr.Close())
	}
	if err := s.auditor.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("flush audit events: %w", err))
	}
	return errors.Join(errs...)
}

// AuditStats reports every audit sink's queue.
func (s *Server) AuditStats() []audit.SinkStats { return s.auditor.Stats() }

// policyScopes is every scope the gateway asks for or the policy names
// (sorted), what the Auth0 webhook grants promoted clients by default.
func policyScopes(cfg *config.Config) []string {
	seen := map[string]bool{}
	for _, sc := range append(append([]string{}, cfg.Auth.BaselineScopes...), cfg.Auth.StepUpScopes...) {
		seen[sc] = true
	}
	p := cfg.Policy
	for _, table := range []map[string]config.ToolRule{p.Tools, p.Prompts, p.Resources} {
		for _, r := range table {
			for _, sc := range append(append([]string{}, r.Scopes...), r.AnyScopes...) {
				seen[sc] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for sc := range seen {
		out = append(out, sc)
	}
	slices.Sort(out)
	return out
}

// recentEvents is how many of the latest audit events the admin page sees.
const recentEvents = 1000

// buildAuditor creates the audit sinks of cfg behind one Auditor: the ring
// the admin page reads, stdout (log.audit), the hash-chained file (keyed,
// with checkpoints to stdout and the webhook, when its keys are set) and
// the webhook, sent through the outbound client. Each has its own bounded
// queue, so none slows a request.
func buildAuditor(cfg *config.Config, o BuildOptions, outbound *safehttp.Client) (*audit.Auditor, *audit.Ring, error) {
	ring := audit.NewRing(audit.RingOptions{Size: recentEvents})
	dests := []audit.Destination{ring}
	closeAll := func() {
		for _, d := range dests {
			_ = d.Close(context.Background())
		}
	}
	if cfg.Log.AuditEnabled() {
		ws, err := audit.NewWriterSink(audit.WriterOptions{Writer: o.AuditWriter})
		if err != nil {
			return nil, nil, fmt.Errorf("audit stdout: %w", err)
		}
		dests = append(dests, ws)
	}
	for _, w := range cfg.AuditWarnings() {
		o.Logger.Warn().Msg(w)
	}
	if f := cfg.Audit.File; f.Path != "" {
		chainKey, err := cfg.Audit.LoadChainKey()
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		cpKey, err := cfg.Audit.LoadCheckpointKey()
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		logger := o.Logger
		fs, err := audit.NewFileSink(audit.FileOptions{Path: f.Path, MaxBytes: f.MaxBytes, MaxFiles: f.MaxFiles,
			ChainKey: chainKey, CheckpointKey: cpKey, CheckpointEvery: cfg.Audit.CheckpointEvery, Logger: &logger})
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("audit.file: %w", err)
		}
		dests = append(dests, fs)
	}
	if wh := cfg.Audit.Webhook; wh.URL != "" {
		headers := make(map[string]string, len(wh.Headers))
		for k, val := range wh.Headers {
			expanded, err := expandEnv(val, o.Getenv)
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("audit.webhook.headers.%s: %w", k, err)
			}
			headers[k] = expanded
		}
		ws, err := audit.NewWebhookSink(audit.WebhookOptions{URL: wh.URL, Headers: headers, BatchSize: wh.BatchSize,
			FlushInterval: wh.FlushInterval, Timeout: wh.Timeout, MaxBackoff: wh.MaxBackoff, Client: outbound})
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("audit.webhook: %w", err)
		}
		dests = append(dests, ws)
	}
	logger := o.Logger
	return audit.NewAuditor(audit.Options{QueueSize: cfg.Audit.QueueSize, Logger: &logger}, dests...), ring, nil
}

// Serve serves the gateway on ln until ctx is done, then shuts down
// gracefully: the listener closes, open event streams end, and requests in
// flight get up to 10 s to finish.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	var tc *tls.Config
	if s.cfg.TLS.Enabled() {
		var err error
		if tc, err = NewTLSConfig(s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile, s.Gateway.o.Logger); err != nil {
			return err
		}
	}
	err := ServeHTTPWith(ctx, ln, s.Gateway.Handler(), ServeOptions{
		Grace: 10 * time.Second,
		OnShutdown: func() {
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = s.Gateway.Close(cctx)
		},
		ReadHeaderTimeout: s.cfg.Server.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.Server.IdleTimeout,
		MaxHeaderBytes:    s.cfg.Server.MaxHeaderBytes,
		TLS:               tc,
	})
	if err != nil {
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	}
	return nil
}

// NewAuthorizer builds one deny-by-default policy table (cfg.Policy.Tools,
// Prompts or Resources) as the gateway does; gatewaystack policy explain
// uses it too, so explain and serve decide alike.
func NewAuthorizer(table map[string]config.ToolRule, cfg *config.Config) *policy.Authorizer {
	rules := make(map[string]policy.Rule, len(table))
	for p, r := range table {
		rules[p] = policy.Rule{Scopes: r.Scopes, AnyScopes: r.AnyScopes, Roles: r.Roles, When: r.When}
	}
	return policy.New(rules, cfg.Auth.StepUpScopes, cfg.Auth.BaselineScopes)
}

// newCaller builds the connection to one upstream of any kind.
func newCaller(ctx context.Context, u config.Upstream, hc *http.Client, o BuildOptions) (upstream.Caller, error) {
	expand := func(field string, in map[string]string) (map[string]string, error) {
		out := make(map[string]string, len(in))
		for k, val := range in {
			expanded, err := expandEnv(val, o.Getenv)
			if err != nil {
				return nil, fmt.Errorf("upstreams[%s].%s.%s: %w", u.Name, field, k, err)
			}
			out[k] = expanded
		}
		return out, nil
	}
	switch u.Kind() {
	case "mcp":
		headers, err := expand("mcp.headers", u.MCP.Headers)
		if err != nil {
			return nil, err
		}
		return upstream.NewMCPClient(upstream.MCPClientOptions{
			Name: u.Name, URL: u.MCP.URL, Headers: headers, HTTPClient: hc, Timeout: u.Timeout, Version: o.Version,
			Listen: u.MCP.Listening(), Logger: slog.New(zerolog.NewSlogHandler(o.Logger)),
			// Every log message of the shared upstream session; each
			// client gets those at or above its own level (notify.go).
			LogLevel: "debug",
		}), nil
	case "stdio":
		env, err := stdioEnv(u.Name, u.Stdio, o.Getenv)
		if err != nil {
			return nil, err
		}
		return upstream.NewStdioClient(upstream.StdioOptions{
			Name: u.Name, Command: u.Stdio.Command, Args: u.Stdio.Args, Dir: u.Stdio.Dir, Env: env,
			Timeout: u.Timeout, MaxRestarts: u.Stdio.MaxRestarts, StopGrace: u.Stdio.StopGrace,
			Logger: o.Logger, Version: o.Version,
		}), nil
	case "rest":
		return newRESTCaller(u, hc, o, expand)
	default:
		return nil, fmt.Errorf("upstreams[%s]: kind %q is not supported yet", u.Name, u.Kind())
	}
}

// UpstreamHTTPClient is the tuned client shared by every upstream: a keep-
// alive pool large enough for concurrent calls (the default keeps only two
// idle connections per host and would dial on most calls).
func UpstreamHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	return &http.Client{Transport: t}
}

// expandEnv replaces ${VAR} references with values from getenv. A variable
// that is unset or empty is an error: an upstream credential that silently
// became "Bearer " would only surface as confusing upstream failures.
func expandEnv(s string, getenv func(string) string) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var missing []string
	out := os.Expand(s, func(name string) string {
		v := getenv(name)
		if v == "" {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("environment variable %s is not set; export it before starting the gateway", strings.Join(missing, ", "))
	}
	return out, nil
}
