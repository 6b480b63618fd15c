// Package mcp is the gateway's MCP front: the streamable-HTTP endpoint that
// MCP clients talk to, and the one place where the pipeline is wired.
//
// The hot methods (tools/list, tools/call) are handled here as raw JSON, so
// that tool definitions and results pass through exactly as upstreams send
// them; everything else of the protocol (initialize, ping, the GET stream,
// DELETE, the stateless era's server/discover) is served by mcp-go's
// StreamableHTTPServer, which shares this package's session ids.
package mcp

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/rs/zerolog"

	"github.com/gatewaystack/gatewaystack/audit"
	"github.com/gatewaystack/gatewaystack/auth"
	"github.com/gatewaystack/gatewaystack/config"
	"github.com/gatewaystack/gatewaystack/internal/bounded"
	"github.com/gatewaystack/gatewaystack/metrics"
	"github.com/gatewaystack/gatewaystack/policy"
	"github.com/gatewaystack/gatewaystack/proxy"
	"github.com/gatewaystack/gatewaystack/upstream"
)

// Verifier turns a bearer token into an Identity (auth.Verifier).
type Verifier interface {
	Verify(ctx context.Context, raw string) (auth.Identity, error)
}

// Options configures a Gateway: a few small structs, one per concern.
type Options struct {
	// Endpoint is what the MCP endpoint is and advertises.
	Endpoint EndpointOptions
	// Verifier verifies tokens; Ready reports whether it has loaded keys
	// (for /health).
	Verifier Verifier
	Ready    func() bool
	// Policy decides access to tools, prompts and resources.
	Policy PolicyOptions
	// Router reaches upstreams; IdentityHeaders names the headers injected
	// upstream.
	Router          *upstream.Router
	IdentityHeaders upstream.HeaderNames
	// Sessions issues and checks session ids.
	Sessions *Sessions
	// HTTP bounds what one request, caller and replica may take.
	HTTP HTTPOptions
	// Limits are the rate limits, budgets and loop guard (zero value: none).
	Limits Limits
	// Audit receives one event per decision.
	Audit AuditOptions
	// Admin serves the admin page and API and the identity provider's
	// health.
	Admin AdminOptions
	// Proxy is the plain HTTP pass-through served at /proxy/ (nil: off).
	Proxy *proxy.Proxy
	// Metrics records decisions and upstream times and is served at
	// /metrics (nil: no metrics).
	Metrics *metrics.Metrics
	// Version is reported by /health and in serverInfo.
	Version string
	// Logger for operational logs (never tokens).
	Logger zerolog.Logger
}

// EndpointOptions is what the MCP endpoint is and advertises.
type EndpointOptions struct {
	// Resource is the public URL of the MCP endpoint (the token audience).
	Resource string
	// Path is the URL path the endpoint is served at (e.g. /mcp).
	Path string
	// AuthorizationServers is advertised in the Protected Resource Metadata.
	AuthorizationServers []string
	// BaselineScopes is the scope of a 401 challenge.
	BaselineScopes []string
	// StepUpScopes are grantable on demand.
	StepUpScopes []string
}

// PolicyOptions are the policy tables in force.
type PolicyOptions struct {
	// Tools decides tool access.
	Tools *policy.Authorizer
	// Prompts decides prompt access (patterns over exposed prompt names).
	Prompts *policy.Authorizer
	// Resources decides resource access (patterns over "<upstream>__<uri>").
	Resources *policy.Authorizer
	// Version identifies the policy in force (see PolicyVersion).
	Version string
}

// HTTPOptions bound what one request, caller and replica may take, and
// which browsers and hosts are served.
type HTTPOptions struct {
	// MaxBodyBytes bounds request bodies.
	MaxBodyBytes int64
	// ReadTimeout bounds reading a request body (0: none).
	ReadTimeout time.Duration
	// AllowedOrigins for CORS; empty means loopback origins only.
	AllowedOrigins []string
	// AllowedHosts for the Host check (DNS-rebinding protection).
	AllowedHosts []string
	// AllowLoopbackHosts also accepts loopback Host names (localhost,
	// 127.0.0.1, [::1]): on when the public URL itself is on loopback (the
	// demo, local development).
	AllowLoopbackHosts bool
	// AccessLog writes one log line per HTTP request.
	AccessLog bool
	// MaxConcurrent bounds this replica's requests in progress (event
	// streams excluded; 0: no cap); MaxConcurrentPerSubject one subject's.
	MaxConcurrent, MaxConcurrentPerSubject int
	// MaxStreamsPerSession and MaxStreamsPerSubject cap the event streams
	// held open (0: the defaults, 4 and 32).
	MaxStreamsPerSession, MaxStreamsPerSubject int
}

// AuditOptions are where decisions are recorded.
type AuditOptions struct {
	// Sink receives one event per decision.
	Sink audit.Sink
	// Recent keeps the latest audit events for the admin page (nil: none).
	Recent *audit.Ring
	// Stats reports the audit sinks' queues (nil: none).
	Stats func() []audit.SinkStats
	// RawArguments lists tool and prompt patterns whose raw arguments go
	// into audit events (others get only a digest).
	RawArguments []string
}

// AdminOptions configure the operators' endpoints.
type AdminOptions struct {
	// Scope is the scope the admin endpoints require (empty: no admin
	// endpoints).
	Scope string
	// DemoAdminToken, set by the demo only, mints a token for the demo's
	// admin user; the admin page offers it to loopback clients.
	DemoAdminToken func(ctx context.Context) (string, error)
	// IdP configures /health/idp and /health/auth0 (nil: not served).
	IdP *IdPOptions
	// Auth0Webhook serves POST /webhooks/auth0/logs (nil: not served).
	Auth0Webhook http.Handler
}

// Gateway is the MCP front of the gateway.
type Gateway struct {
	o          Options
	prmURL     string
	challenge  string // the 401 challenge without error
	mcpServer  *server.MCPServer
	streamable *server.StreamableHTTPServer
	cors       *corsPolicy
	handler    http.Handler

	progress      progressRouter
	logLevels     logLevels
	subs          subscriptions
	inflight      inflight
	clientAnswers clientAnswers

	// failOpenLogged is when a fail-open pass was last logged (unix ns).
	failOpenLogged atomic.Int64
	// policyVersion is the version of the policy in force.
	policyVersion atomic.Pointer[string]
	// sessions counts sessions seen recently (the sessions_active metric).
	sessions recentSessions
	// days counts decisions per tenant today (the admin page).
	days tenantDays
	// caps bounds the requests in progress.
	caps *concurrency
	// streams bounds the event streams held open.
	streams *streamCaps
	// tools caches decoded tool definitions (paramHeadersMatch).
	tools sync.Map
}

// New builds the gateway and wires its pipeline.
func New(o Options) (*Gateway, error) {
	prmURL, err := auth.PRMURL(o.Endpoint.Resource)
	if err != nil {
		return nil, err
	}
	g := &Gateway{o: o, prmURL: prmURL}
	g.challenge = auth.Challenge{Scope: joinScopes(o.Endpoint.BaselineScopes), ResourceMetadata: prmURL}.String()
	hooks := &server.Hooks{}
	// The level a session-era client sets with logging/setLevel (answered
	// by mcp-go) decides which upstream log messages it gets.
	hooks.AddAfterSetLevel(func(ctx context.Context, _ any, req *mcpgo.SetLevelRequest, _ *mcpgo.EmptyResult) {
		if cs := server.ClientSessionFromContext(ctx); cs != nil {
			g.logLevels.set(cs.SessionID(), req.Params.Level)
		}
	})
	hooks.AddOnUnregisterSession(func(_ context.Context, cs server.ClientSession) { g.logLevels.forget(cs.SessionID()) })
	g.mcpServer = server.NewMCPServer("gatewaystack", o.Version,
		server.WithHooks(hooks),
		server.WithToolCapabilities(true),
		server.WithPromptCapabilities(true),
		server.WithResourceCapabilities(true, true),
		server.WithCompletions(),
		server.WithLogging(),
		server.WithInstructions("Tools of the upstream MCP servers behind Gatewaystack; each caller sees only the tools its token allows."),
	)
	g.streamable = server.NewStreamableHTTPServer(g.mcpServer,
		server.WithEndpointPath(o.Endpoint.Path),
		server.WithSessionIdManagerResolver(resolver{s: o.Sessions}),
		// Host and Origin are checked by our outer layer against the
		// configured allow-lists, which also cover non-loopback deployments.
		server.WithDisableLocalhostProtection(true),
		server.WithStreamableHTTPLogger(slog.New(zerolog.NewSlogHandler(o.Logger))),
	)
	g.cors = newCORSPolicy(o.HTTP.AllowedOrigins, g.refuse)
	o.Router.OnNotification(g.onUpstreamNotification)
	g.caps = newConcurrency(o.HTTP.MaxConcurrent, o.HTTP.MaxConcurrentPerSubject)
	g.streams = newStreamCaps(o.HTTP.MaxStreamsPerSession, o.HTTP.MaxStreamsPerSubject)
	if g.handler, err = g.routes(); err != nil {
		return nil, err
	}
	if o.HTTP.AccessLog {
		g.handler = accessLog(g.handler, o.Logger)
	}
	g.SetPolicyVersion(o.Policy.Version)
	return g, nil
}

// Handler returns the gateway's HTTP handler.
func (g *Gateway) Handler() http.Handler { return g.handler }

// Close ends the streams mcp-go holds open.
func (g *Gateway) Close(ctx context.Context) error {
	g.streamable.CloseSessions(ctx)
	return nil
}

// routes declares the endpoints. The stages of /mcp are declared, in
// order, in mcpPipeline (pipeline.go):
//
//	CORS → Host/Origin allow-list → per-IP flood limit (peek; only failed
//	or missing credentials and too-slow bodies count) → declared body size
//	→ identify (from the headers; authentication slots in total and per IP)
//	→ concurrency caps (replica, subject) → body read (size,
//	server.read_timeout) → JSON-RPC envelope → per-subject and per-tenant
//	limits → session guard → canonicalize params (canonical.go) →
//	authorize (tools/list filter, tools/call decision, before any upstream
//	is asked) → per-tool limit → loop guard → budgets → route upstream
//	(params encoded from the canonical form) → audit (every decision)
//
// and for /proxy/ (when proxy.target is set): CORS → Host allow-list →
// per-IP flood limit → concurrency cap → identify → per-subject and
// per-tenant limits → subject cap → route policy → budgets (the route's
// cost) → body cap → reverse proxy → audit.
func (g *Gateway) routes() (http.Handler, error) {
	prm, err := auth.PRMHandler(auth.ProtectedResourceMetadata{
		Resource:               g.o.Endpoint.Resource,
		AuthorizationServers:   g.o.Endpoint.AuthorizationServers,
		ScopesSupported:        scopesSupported(g.o.Endpoint.BaselineScopes, g.o.Endpoint.StepUpScopes),
		BearerMethodsSupported: []string{"header"},
		ResourceName:           "Gatewaystack MCP gateway",
	})
	if err != nil {
		return nil, err
	}
	suffixed, root, err := auth.PRMPaths(g.o.Endpoint.Resource)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(suffixed, g.cors.wrap(prm))
	if root != suffixed {
		mux.Handle(root, g.cors.wrap(prm))
	}
	mux.Handle(g.o.Endpoint.Path, g.cors.wrap(g.hostCheck(http.HandlerFunc(g.serveMCP))))
	mux.HandleFunc("/health", g.serveHealth)
	mux.HandleFunc("/health/ready", g.serveReady)
	if g.o.Metrics != nil {
		mux.Handle("/metrics", g.o.Metrics.Handler())
	}
	if g.o.Admin.IdP != nil {
		h := &idpHealth{o: *g.o.Admin.IdP, details: g.healthDetails}
		for _, p := range IdPHealthPaths {
			mux.Handle(p, h)
		}
	}
	if g.o.Admin.Auth0Webhook != nil {
		mux.Handle(Auth0WebhookPath, g.hostCheck(g.o.Admin.Auth0Webhook))
	}
	if g.o.Admin.Scope != "" {
		// The admin API checks Origin as /mcp does: a page on another
		// origin cannot drive it with an operator's browser.
		mux.Handle(AdminUsagePath, g.cors.wrap(g.hostCheck(http.HandlerFunc(g.serveAdminUsage))))
		mux.Handle(AdminOverviewPath, g.cors.wrap(g.hostCheck(http.HandlerFunc(g.serveAdminOverview))))
		mux.Handle(AdminAuditPath, g.cors.wrap(g.hostCheck(http.HandlerFunc(g.serveAdminAudit))))
		mux.Handle(AdminPagePath, g.cors.wrap(g.hostCheck(http.HandlerFunc(g.serveAdminPage))))
		if g.o.Admin.DemoAdminToken != nil {
			mux.Handle(AdminDemoToken, g.cors.wrap(g.hostCheck(http.HandlerFunc(g.serveDemoToken))))
		}
	}
	if g.o.Proxy != nil {
		mux.Handle(ProxyMount+"/", g.cors.wrap(g.hostCheck(http.HandlerFunc(g.serveProxy))))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "error_description": "no such endpoint; the MCP endpoint is " + g.o.Endpoint.Path})
	})
	return mux, nil
}

// serveHealth answers liveness. Without credentials it carries states and
// reason codes only; the details an operator needs (upstream and audit
// errors, which name addresses) need a bearer token with the admin scope
// (healthDetails).
func (g *Gateway) serveHealth(w http.ResponseWriter, r *http.Request) {
	details := g.healthDetails(r)
	writeHealth(w, http.StatusOK, map[string]any{
		"ok":           true,
		"version":      g.o.Version,
		"upstreams":    g.o.Router.Names(),
		"jwks_ready":   g.ready(),
		"resource":     g.o.Endpoint.Resource,
		"upstream":     g.upstreamHealth(details),
		"limits_store": g.storeHealthFor(details),
		"audit_sinks":  g.auditSinks(details),
		"warnings":     g.auditWarnings(details),
	})
}

// healthDetails reports whether r may see the health details: it carries
// a bearer token that verifies and holds the admin scope. A missing or
// failing token is not an error here (health probes carry none): the
// answer is then the summary.
func (g *Gateway) healthDetails(r *http.Request) bool {
	if g.o.Admin.Scope == "" || r.Header.Get("Authorization") == "" {
		return false
	}
	id, aerr := g.verifyBearer(r)
	return aerr == nil && id.HasScope(g.o.Admin.Scope)
}

// writeHealth writes a health answer, never cached (it depends on the
// caller's credentials).
func writeHealth(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Add("Vary", "Authorization")
	writeJSON(w, status, v)
}

// upstreamHealth is the upstreams' state, without their errors (which name
// addresses) unless details.
func (g *Gateway) upstreamHealth(details bool) []upstream.Health {
	hs := g.o.Router.Health()
	if !details {
		for i := range hs {
			hs[i].LastError = ""
		}
	}
	return hs
}

// auditSinks reports the audit sinks' queues (empty when unknown), without
// their errors unless details.
func (g *Gateway) auditSinks(details bool) []audit.SinkStats {
	if g.o.Audit.Stats == nil {
		return []audit.SinkStats{}
	}
	out := g.o.Audit.Stats()
	if !details {
		for i := range out {
			out[i].LastError = ""
		}
	}
	return out
}

// auditWarnings names the audit sinks that lost events or are failing; they
// do not make the gateway unready (requests are still served and audited
// elsewhere), but an operator must see them. The failure itself is named
// only with details.
func (g *Gateway) auditWarnings(details bool) []string {
	out := []string{}
	if g.o.Audit.Stats == nil {
		return out
	}
	for _, s := range g.o.Audit.Stats() {
		if s.Dropped > 0 {
			out = append(out, fmt.Sprintf("audit sink %s dropped %d event(s)", s.Name, s.Dropped))
		}
		if s.LastError != "" && s.Queued > 0 {
			msg := fmt.Sprintf("audit sink %s is failing (%d queued)", s.Name, s.Queued)
			if details {
				msg += ": " + s.LastError
			}
			out = append(out, msg)
		}
	}
	return out
}

// StoreHealth is the state of the limit store, as /health reports it.
type StoreHealth struct {
	// Kind is memory or redis.
	Kind string `json:"kind"`
	// OK: the store answered its last command (always true for memory).
	OK bool `json:"ok"`
	// OnStoreError is fail_closed or fail_open.
	OnStoreError string `json:"on_store_error"`
	// Errors counts failed store commands since start.
	Errors uint64 `json:"errors"`
	// LastError is the last failure (no credentials).
	LastError string `json:"last_error,omitempty"`
	// LastErrorAt and LastOKAt are RFC 3339 times.
	LastErrorAt string `json:"last_error_at,omitempty"`
	LastOKAt    string `json:"last_ok_at,omitempty"`
}

// storeHealthFor is storeHealth without the store's last error (which may
// name its address) unless details.
func (g *Gateway) storeHealthFor(details bool) StoreHealth {
	h := g.storeHealth()
	if !details {
		h.LastError = ""
	}
	return h
}

// storeHealth is the limit store's state with every detail (the admin API).
func (g *Gateway) storeHealth() StoreHealth {
	mode := "fail_closed"
	if g.o.Limits.FailOpen {
		mode = "fail_open"
	}
	sh := g.o.Limits.Shared
	if sh == nil {
		return StoreHealth{Kind: "memory", OK: true, OnStoreError: mode}
	}
	h := sh.Health()
	out := StoreHealth{Kind: "redis", OK: h.OK, OnStoreError: mode, Errors: h.Errors, LastError: h.LastError}
	if !h.LastErrorAt.IsZero() {
		out.LastErrorAt = h.LastErrorAt.UTC().Format(time.RFC3339Nano)
	}
	if !h.LastOKAt.IsZero() {
		out.LastOKAt = h.LastOKAt.UTC().Format(time.RFC3339Nano)
	}
	return out
}

// serveReady answers 200 when the gateway can serve: keys loaded and every
// upstream reachable; 503 otherwise, saying what is missing.
func (g *Gateway) serveReady(w http.ResponseWriter, r *http.Request) {
	var problems []string
	if !g.ready() {
		problems = append(problems, "the issuer's signing keys are not loaded yet")
	}
	details := g.healthDetails(r)
	health := g.upstreamHealth(details)
	for _, h := range health {
		if h.Status != "up" {
			problems = append(problems, "upstream "+h.Name+" is "+h.Status)
		}
	}
	if sh := g.o.Limits.Shared; sh != nil {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		err := sh.Ping(ctx)
		cancel()
		if err != nil && !g.o.Limits.FailOpen {
			problems = append(problems, "the Redis limit store does not answer; requests are refused until it does (limits.on_store_error: fail_closed)")
		}
	}
	status := http.StatusOK
	if len(problems) > 0 {
		status = http.StatusServiceUnavailable
	}
	writeHealth(w, status, map[string]any{"ready": len(problems) == 0, "problems": problems, "jwks_ready": g.ready(), "upstream": health, "limits_store": g.storeHealthFor(details),
		"audit_sinks": g.auditSinks(details), "warnings": g.auditWarnings(details)})
}

func (g *Gateway) ready() bool { return g.o.Ready == nil || g.o.Ready() }

// requestState follows one request through the pipeline into its audit event.
type requestState struct {
	start time.Time
	event audit.Event
	// owner names whose request this is, for cancellation: the session id,
	// or "sub:<subject>" without a session.
	owner string
	// caps is what the client declared at initialize (session era).
	caps ClientCaps
	// modern: the request uses the stateless 2026-07-28 era.
	modern bool
	// plain: the request is a /proxy request, whose refusals are plain
	// JSON ({"error":…,"error_description":…,"reason":…}), not JSON-RPC.
	plain bool
	// audited: the request's audit event has been written.
	audited bool
	// argsDigest is the SHA-256 of the canonical arguments of a tools/call
	// or prompts/get (set by auditArguments; the loop guard keys on it).
	argsDigest [sha256.Size]byte
}

// maxAuditArgs bounds the raw arguments an audit event records
// (audit.raw_arguments); larger ones are left out — the event still has
// their digest — so no caller can make an audit line longer than 16 KiB.
const maxAuditArgs = 8 << 10

// boundEvent bounds every caller-supplied value of e before it is stored
// or written: strings to bounded.MaxRunes characters (with their length and
// digest), raw arguments to maxAuditArgs bytes.
func boundEvent(e *audit.Event) {
	e.Method = bounded.String(e.Method)
	e.SessionID = bounded.String(e.SessionID)
	e.TokenID = bounded.String(e.TokenID)
	e.Tool = bounded.String(e.Tool)
	e.Prompt = bounded.String(e.Prompt)
	e.Resource = bounded.String(e.Resource)
	e.Workflow = bounded.String(e.Workflow)
	if len(e.Args) > maxAuditArgs {
		e.Args = nil
	}
}

// writeRefusal renders a refusal of the limit stages (rate limits,
// budgets, loop guard, concurrency caps, an unavailable store): a JSON-RPC
// error on /mcp, and on /proxy a plain JSON body with the same message and
// data, "error" being the data's reason code.
func (g *Gateway) writeRefusal(w http.ResponseWriter, st *requestState, status int, rid json.RawMessage, code int, msg string, data map[string]any) {
	if !st.plain {
		writeRPCError(w, status, rid, code, msg, data)
		return
	}
	body := make(map[string]any, len(data)+2)
	for k, v := range data {
		body[k] = v
	}
	body["error"], _ = data["reason"].(string)
	body["error_description"] = msg
	writeJSON(w, status, body)
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (g *Gateway) audit(st *requestState, decision, reason string, status int) {
	st.audited = true
	boundEvent(&st.event)
	st.event.Decision = decision
	st.event.Reason = reason
	st.event.Status = status
	st.event.Time = time.Now()
	st.event.Latency = st.event.Time.Sub(st.start)
	st.event.EventID = newRequestID()
	if v := g.policyVersion.Load(); v != nil {
		st.event.PolicyVersion = *v
	}
	g.o.Audit.Sink.Write(st.event)
	if m := g.o.Metrics; m != nil {
		// Only names of tools that reached an upstream become labels, so
		// names made up by callers cannot grow the label set.
		tool := ""
		if st.event.Upstream != "" {
			tool = cmp.Or(st.event.Tool, st.event.Prompt)
		}
		m.Decision(metricMethod(st.event.Method), tool, st.event.Upstream, decision, reason, st.event.Latency)
	}
	if !strings.HasPrefix(st.event.Method, "admin/") {
		// The admin page polls; its own requests are audited but are not
		// tenant usage.
		g.days.add(&st.event)
	}
	if st.event.SessionID != "" && decision == audit.Allow {
		g.sessions.seen(st.event.SessionID, st.event.Time)
	}
}

// auditArguments records the digest of a call's arguments (over their
// canonical JSON, so the same arguments in another key order or spacing
// have the same digest) — and, when name matches audit.raw_arguments, the
// arguments themselves exactly as the decision read them and as they are
// forwarded (canonical.go).
func (g *Gateway) auditArguments(st *requestState, name string, args json.RawMessage) {
	canon := canonicalJSON(args)
	st.argsDigest = sha256.Sum256(canon)
	st.event.ArgsSHA256 = hex.EncodeToString(st.argsDigest[:])
	if len(args) > 0 && recordsRawArguments(g.o.Audit.RawArguments, name) {
		st.event.Args = args
	}
}

// knownMethods are the methods metrics name; any other is "other".
var knownMethods = map[string]bool{
	"initialize": true, "ping": true, "tools/list": true, "tools/call": true,
	"prompts/list": true, "prompts/get": true, "resources/list": true, "resources/templates/list": true,
	"resources/read": true, "resources/subscribe": true, "resources/unsubscribe": true,
	"completion/complete": true, "logging/setLevel": true, "notifications/initialized": true,
	"notifications/cancelled": true, "notifications/roots/list_changed": true, "admin/usage": true,
	http.MethodGet: true, http.MethodPost: true, http.MethodDelete: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodOptions: true, http.MethodHead: true,
}

// metricMethod bounds the method label to known methods.
func metricMethod(m string) string {
	if knownMethods[m] {
		return m
	}
	return "other"
}

// Auth0WebhookPath receives Auth0 log-stream batches.
const Auth0WebhookPath = "/webhooks/auth0/logs"

// SetPolicyVersion records the version of the policy in force.
func (g *Gateway) SetPolicyVersion(v string) { g.policyVersion.Store(&v) }

// PolicyVersion identifies a policy: the first 12 hex digits of the SHA-256
// of its JSON encoding (map keys sorted, so equal policies hash alike).
func PolicyVersion(p config.Policy) string {
	b, err := json.Marshal(p)
	if err != nil {
		return "unknown"
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// recentSessions remembers when each session last made an allowed request,
// so that the number of sessions active in the last 5 minutes can be
// reported; it holds at most maxTracked sessions.
type recentSessions struct {
	mu   sync.Mutex
	last map[string]time.Time
}

const (
	activeWindow = 5 * time.Minute
	maxTracked   = 100_000
)

func (r *recentSessions) seen(id string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last = make(map[string]time.Time)
	}
	if _, ok := r.last[id]; !ok && len(r.last) >= maxTracked {
		r.sweepLocked(now)
		if len(r.last) >= maxTracked {
			return
		}
	}
	r.last[id] = now
}

func (r *recentSessions) sweepLocked(now time.Time) {
	for k, t := range r.last {
		if now.Sub(t) > activeWindow {
			delete(r.last, k)
		}
	}
}

// active returns how many sessions made a request in the last 5 minutes.
func (r *recentSessions) active(now time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sweepLocked(now)
	return len(r.last)
}

// ActiveSessions returns how many sessions made an allowed request in the
// last 5 minutes on this replica.
func (g *Gateway) ActiveSessions() int { return g.sessions.active(time.Now()) }

func joinScopes(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out
}

func scopesSupported(baseline, stepUp []string) []string {
	out := make([]string, 0, len(baseline)+len(stepUp))
	seen := map[string]bool{}
	for _, s := range append(append([]string{}, baseline...), stepUp...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
