// Package proxy is the gateway's plain HTTP pass-through (/proxy/*, the
// original PROXY_TARGET): an authenticated, identity-injecting reverse proxy
// in front of one HTTP backend. Its one job is to forward a request whose
// caller the gateway has already verified, and nothing of the caller's
// credentials.
//
// For each request, Serve:
//
//  1. takes the path under the mount (/proxy/accounts/7 → /accounts/7) and
//     refuses paths backends may read differently than the policy does:
//     "." or ".." segments, empty segments, backslashes, ';' and control
//     characters (400);
//  2. reads the verified identity from the request context
//     (upstream.WithIdentity), failing closed without one;
//  3. authorizes by route: the route with the longest prefix matching the
//     path on a segment boundary decides ("/accounts" matches /accounts and
//     /accounts/7, not /accountsX); no route → 403; a role or entitlement
//     scope missing → 403; a method the route does not list → 405 with
//     Allow; only step-up scopes missing → 403 with the insufficient_scope
//     challenge, like tools;
//  4. bounds the body (413 beyond the cap) and forwards it as a stream,
//     both ways at once (full duplex), flushing every write of the answer;
//  5. rewrites the request (httputil.ReverseProxy with Rewrite): target URL
//     and path, Authorization, Proxy-Authorization and Cookie removed, every
//     copy of an identity header removed in any letter case and with '_'
//     for '-', then the static headers and the identity headers of the
//     verified caller set, and the subject set as a query parameter when
//     configured (replacing any the caller sent); identity values are
//     encoded by upstream.EncodeIdentityValue, in the headers and in the
//     query parameter alike. Hop-by-hop headers, those the caller names in
//     Connection included, are dropped before this, so "Connection:
//     X-User-Id" cannot remove the injected header;
//  6. answers a backend that cannot be reached with 502 (504 when it did
//     not answer in time), as JSON that names the backend but no address;
//  7. reports one Result per request for the audit line.
package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/gatewaystack/gatewaystack/audit"
	"github.com/gatewaystack/gatewaystack/auth"
	"github.com/gatewaystack/gatewaystack/policy"
	"github.com/gatewaystack/gatewaystack/upstream"
)

// DefaultMaxBodyBytes bounds request bodies when Options.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 64 << 20

// BackendName names the backend in errors and audit lines.
const BackendName = "proxy"

// Reason codes of the proxy, next to the policy's and auth's.
const (
	ReasonAllowed          = policy.ReasonAllowed
	ReasonRouteUnknown     = "route_unknown"
	ReasonMethodNotAllowed = "method_not_allowed"
	ReasonPathInvalid      = "path_invalid"
	ReasonBodyTooLarge     = "body_too_large"
	ReasonUnavailable      = "upstream_unavailable"
	ReasonTimeout          = "upstream_timeout"
	ReasonClientClosed     = "client_closed"
	ReasonStreamAborted    = "stream_aborted"
	ReasonNoIdentity       = auth.ReasonCredentialsMissing
	// ReasonRefusedByLimits: Options.Admit refused the request (its own
	// reason is in the audit line it wrote).
	ReasonRefusedByLimits = "refused_by_limits"
)

// Route authorizes the requests under a path prefix.
type Route struct {
	// Prefix is a path under the mount, e.g. "/accounts".
	Prefix string
	// Methods lists allowed methods; empty allows every method.
	Methods []string
	// Scopes are all required.
	Scopes []string
	// Roles, when set, require one of them.
	Roles []string
	// Cost is what one request charges the caller's budgets (see
	// Options.Admit).
	Cost int64
}

// Options configures a Proxy.
type Options struct {
	// Target is the backend's base URL; request paths are appended to its
	// path, and its query is kept.
	Target string
	// Mount is the path the proxy is served under (default /proxy).
	Mount string
	// InjectQuery, when set, sends the verified subject as this query
	// parameter: its value, once the URL's own escaping is undone, is the
	// subject encoded by upstream.EncodeIdentityValue.
	InjectQuery string
	// Headers are static headers sent to the backend (its credential).
	Headers map[string]string
	// Routes authorize requests; a request no route matches is refused.
	Routes []Route
	// StepUpScopes and BaselineScopes are the gateway's scopes: a route
	// missing only step-up scopes answers with a step-up challenge.
	StepUpScopes, BaselineScopes []string
	// ResourceMetadata is the Protected Resource Metadata URL put in
	// challenges.
	ResourceMetadata string
	// Transport reaches the backend (default http.DefaultTransport).
	Transport http.RoundTripper
	// MaxBodyBytes bounds request bodies (default 64 MiB).
	MaxBodyBytes int64
	// Logger receives backend errors (with addresses, which responses
	// never show).
	Logger zerolog.Logger
	// Admit, when set, is the limit stage of an authorized request: it is
	// called once the route has allowed the request and before anything is
	// sent to the backend, and reports whether it refused the request (it
	// has then written the answer, with its reason in the audit line it
	// wrote itself).
	Admit func(w http.ResponseWriter, r *http.Request, route Route) (refused bool)
}

// Result is the outcome of one request, for its audit line.
type Result struct {
	// Decision is audit.Allow, audit.Deny or audit.Error.
	Decision string
	// Reason is a machine-readable code.
	Reason string
	// Route is the deciding route's prefix ("" when none matched).
	Route string
	// Path is the request path under the mount.
	Path string
	// Status is the HTTP status answered (the backend's when forwarded;
	// 499 when the client went away first).
	Status int
}

// Proxy is the pass-through handler. It is safe for concurrent use.
type Proxy struct {
	o      Options
	target *url.URL
	routes *policy.Table[*Route] // per route prefix P: "P" and "P/*" (routePatterns)
	az     *policy.Authorizer
	rp     *httputil.ReverseProxy
}

// ErrConfig: the options are unusable.
var ErrConfig = errors.New("proxy: invalid configuration")

// New checks the options and builds the proxy.
func New(o Options) (*Proxy, error) {
	target, err := url.Parse(o.Target)
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" || target.User != nil {
		return nil, fmt.Errorf("%w: target %q is not an absolute http(s) URL without credentials", ErrConfig, o.Target)
	}
	target.Fragment, target.RawFragment = "", ""
	if o.Mount == "" {
		o.Mount = "/proxy"
	}
	o.Mount = strings.TrimSuffix(o.Mount, "/")
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Transport == nil {
		o.Transport = http.DefaultTransport
	}
	p := &Proxy{o: o, target: target}
	rules := make(map[string]policy.Rule, len(o.Routes))
	routes := make(map[string]*Route, 2*len(o.Routes))
	for _, r := range o.Routes {
		r.Prefix = NormalizePrefix(r.Prefix)
		if !strings.HasPrefix(r.Prefix, "/") || strings.ContainsAny(r.Prefix, `*?[\`) || !cleanPath(r.Prefix) {
			return nil, fmt.Errorf("%w: route prefix %q must be a clean path starting with / without *, ?, [ or \\", ErrConfig, r.Prefix)
		}
		if _, dup := rules[r.Prefix]; dup {
			return nil, fmt.Errorf("%w: route prefix %q is declared twice", ErrConfig, r.Prefix)
		}
		rules[r.Prefix] = policy.Rule{Scopes: r.Scopes, Roles: r.Roles}
		methods := make([]string, len(r.Methods))
		for i, m := range r.Methods {
			methods[i] = strings.ToUpper(m)
		}
		r.Methods = methods
		for _, pattern := range routePatterns(r.Prefix) {
			routes[pattern] = &r
		}
	}
	if p.routes, err = policy.NewTable(routes); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	p.az = policy.New(rules, o.StepUpScopes, o.BaselineScopes)
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      o.Transport,
		FlushInterval:  -1,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.errorHandler,
		ErrorLog:       log.New(o.Logger.With().Str("upstream", BackendName).Logger(), "", 0),
	}
	return p, nil
}

// NormalizePrefix drops a trailing slash ("/accounts/" is "/accounts");
// "" and "/" are the root.
func NormalizePrefix(prefix string) string {
	if prefix == "" || prefix == "/" {
		return "/"
	}
	return strings.TrimRight(prefix, "/")
}

// state follows one forwarded request through the reverse proxy's hooks.
type state struct {
	status   atomic.Int64
	tooLarge atomic.Bool
	reason   atomic.Value // string, set by the error handler
}

type stateKey struct{}

func stateFrom(r *http.Request) *state {
	st, _ := r.Context().Value(stateKey{}).(*state)
	if st == nil {
		st = &state{}
	}
	return st
}

// ServeHTTP serves one request, without reporting.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.Serve(w, r, nil)
}

// Serve serves one request and calls report exactly once with its
// outcome, also when the answer is aborted mid-stream (the handler then
// panics with http.ErrAbortHandler after report, as net/http expects).
func (p *Proxy) Serve(w http.ResponseWriter, r *http.Request, report func(Result)) {
	res := Result{Decision: audit.Deny}
	st := &state{}
	defer func() {
		rec := recover()
		if rec != nil {
			res.Decision, res.Reason = audit.Error, ReasonStreamAborted
			if s := int(st.status.Load()); s != 0 {
				res.Status = s
			}
		}
		if report != nil {
			report(res)
		}
		if rec != nil {
			panic(rec)
		}
	}()

	rel, ok := strings.CutPrefix(r.URL.Path, p.o.Mount)
	if rel == "" {
		rel = "/"
	}
	res.Path = rel
	if !ok || !strings.HasPrefix(rel, "/") {
		res.Reason, res.Status = ReasonRouteUnknown, http.StatusNotFound
		writeError(w, res.Status, "not_found", "no such endpoint", res.Reason)
		return
	}
	if !cleanPath(rel) {
		res.Reason, res.Status = ReasonPathInvalid, http.StatusBadRequest
		writeError(w, res.Status, "invalid_request", `the path must not contain "." or ".." segments, empty segments, backslashes, ';' or control characters`, res.Reason)
		return
	}
	id, _, ok := upstream.IdentityFrom(r.Context())
	if !ok || id.Subject == "" {
		res.Reason, res.Status = ReasonNoIdentity, http.StatusUnauthorized
		writeError(w, res.Status, "unauthorized", "no verified identity", res.Reason)
		return
	}

	route, found := p.match(rel)
	if !found {
		res.Reason, res.Status = ReasonRouteUnknown, http.StatusForbidden
		writeError(w, res.Status, "forbidden", "no "+p.o.Mount+" route allows this path", res.Reason)
		return
	}
	res.Route = route.Prefix
	d := p.az.Decide(id, policy.Action{Name: route.Prefix, ArgsKnown: true})
	if d.Effect == policy.Hidden {
		res.Reason, res.Status = d.Reason, http.StatusForbidden
		writeError(w, res.Status, "forbidden", "the token does not allow this route", res.Reason)
		return
	}
	if len(route.Methods) > 0 && !slices.Contains(route.Methods, r.Method) {
		res.Reason, res.Status = ReasonMethodNotAllowed, http.StatusMethodNotAllowed
		w.Header().Set("Allow", strings.Join(route.Methods, ", "))
		writeError(w, res.Status, "method_not_allowed", "this route allows "+strings.Join(route.Methods, ", "), res.Reason)
		return
	}
	if d.Effect == policy.StepUp {
		scope := p.az.ChallengeScope(id, d)
		w.Header().Set("WWW-Authenticate", auth.Challenge{Error: auth.CodeInsufficientScope,
			Description: "this route needs more scope", Scope: scope, ResourceMetadata: p.o.ResourceMetadata}.String())
		res.Reason, res.Status = d.Reason, http.StatusForbidden
		writeJSON(w, res.Status, map[string]any{
			"error":             auth.CodeInsufficientScope,
			"error_description": "this route needs scope " + strings.Join(d.Missing, " ") + "; ask the user to grant it",
			"reason":            d.Reason,
			"scope":             scope,
		})
		return
	}

	if p.o.Admit != nil && p.o.Admit(w, r, route) {
		res.Decision, res.Reason, res.Status = "", ReasonRefusedByLimits, 0
		return
	}
	if r.ContentLength > p.o.MaxBodyBytes {
		res.Reason, res.Status = ReasonBodyTooLarge, http.StatusRequestEntityTooLarge
		writeError(w, res.Status, "request_too_large", fmt.Sprintf("the request body exceeds %d bytes", p.o.MaxBodyBytes), res.Reason)
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &limitedBody{ReadCloser: http.MaxBytesReader(w, r.Body, p.o.MaxBodyBytes), st: st}
	}
	// Read the request while the answer streams: without this, net/http
	// discards the unread rest of an HTTP/1 request body as soon as the
	// answer starts, cutting off what the backend receives.
	_ = http.NewResponseController(w).EnableFullDuplex()

	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), stateKey{}, st)))

	res.Decision, res.Reason, res.Status = audit.Allow, ReasonAllowed, int(st.status.Load())
	if reason, _ := st.reason.Load().(string); reason != "" {
		res.Reason = reason
		res.Decision = audit.Error
		if reason == ReasonBodyTooLarge {
			res.Decision = audit.Deny
		}
	}
}

// routePatterns are the patterns of a route prefix P in the gateway's one
// pattern table (policy.Table): P itself, exactly, and "P/*" for every path
// below it ('*' crosses '/'), with P's own '*', '?', '[' and '\' escaped.
// With the table's precedence (an exact name first, then the longer literal
// prefix) a path goes to the route with the longest prefix that matches it
// on a segment boundary: "/accounts" takes /accounts and /accounts/7, not
// /accountsX.
func routePatterns(prefix string) []string {
	base := policy.EscapePattern(strings.TrimSuffix(prefix, "/"))
	if base == "" {
		return []string{"/", "/*"}
	}
	return []string{base, base + "/*"}
}

// match returns the route with the longest prefix that matches rel on a
// segment boundary.
func (p *Proxy) match(rel string) (Route, bool) {
	r, _, ok := p.routes.Match(rel)
	if !ok {
		return Route{}, false
	}
	return *r, true
}

// cleanPath reports whether a decoded path is one every backend reads the
// same way as the route match does.
func cleanPath(p string) bool {
	if !strings.HasPrefix(p, "/") {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f || c == '\\' || c == ';' {
			return false
		}
	}
	segs := strings.Split(p[1:], "/")
	for i, s := range segs {
		if s == "." || s == ".." || (s == "" && i != len(segs)-1) {
			return false
		}
	}
	return true
}

// rewrite builds the outbound request.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	in, out := pr.In, pr.Out
	rel := strings.TrimPrefix(in.URL.Path, p.o.Mount)
	if rel == "" {
		rel = "/"
	}
	out.URL.Path, out.URL.RawPath = rel, ""
	if esc := in.URL.EscapedPath(); strings.HasPrefix(esc, p.o.Mount) {
		rawRel := strings.TrimPrefix(esc, p.o.Mount)
		if dec, err := url.PathUnescape(rawRel); err == nil && dec == rel && rawRel != rel {
			out.URL.RawPath = rawRel
		}
	}
	pr.SetURL(p.target)
	pr.SetXForwarded()

	id, names, _ := upstream.IdentityFrom(in.Context())
	identity := []string{headerKey(names.User), headerKey(names.Tenant), headerKey(names.Scopes)}
	for k := range out.Header {
		switch http.CanonicalHeaderKey(k) {
		case "Authorization", "Proxy-Authorization", "Cookie":
			delete(out.Header, k)
			continue
		}
		if slices.Contains(identity, headerKey(k)) {
			delete(out.Header, k)
		}
	}
	for k, v := range p.o.Headers {
		out.Header.Set(k, v)
	}
	for k, v := range upstream.IdentityHeaders(names, id) {
		if k != "" {
			out.Header.Set(k, v)
		}
	}
	if p.o.InjectQuery != "" {
		out.URL.RawQuery = setQuery(out.URL.RawQuery, p.o.InjectQuery, upstream.EncodeIdentityValue(id.Subject))
	}
}

// headerKey folds a header name the way lenient backends do (CGI maps both
// '-' and '_' to '_', and names are case-insensitive), so that X_User_Id
// and x-user-id count as copies of X-User-Id.
func headerKey(h string) string {
	if h == "" {
		return "\x00"
	}
	return strings.ToLower(strings.ReplaceAll(h, "_", "-"))
}

// setQuery returns raw with every name parameter removed and name=value
// appended; the other parameters keep their order and spelling.
func setQuery(raw, name, value string) string {
	var kept []string
	if raw != "" {
		for _, kv := range strings.Split(raw, "&") {
			k, _, _ := strings.Cut(kv, "=")
			if dk, err := url.QueryUnescape(k); k == name || err == nil && dk == name {
				continue
			}
			kept = append(kept, kv)
		}
	}
	kept = append(kept, url.QueryEscape(name)+"="+url.QueryEscape(value))
	return strings.Join(kept, "&")
}

func (p *Proxy) modifyResponse(resp *http.Response) error {
	stateFrom(resp.Request).status.Store(int64(resp.StatusCode))
	return nil
}

// errorHandler answers when the backend could not be reached or the
// request body could not be sent.
func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	st := stateFrom(r)
	var ne net.Error
	switch {
	case st.tooLarge.Load():
		st.reason.Store(ReasonBodyTooLarge)
		st.status.Store(http.StatusRequestEntityTooLarge)
		writeError(w, http.StatusRequestEntityTooLarge, "request_too_large", fmt.Sprintf("the request body exceeds %d bytes", p.o.MaxBodyBytes), ReasonBodyTooLarge)
	case r.Context().Err() != nil:
		// The client went away: nobody reads an answer.
		st.reason.Store(ReasonClientClosed)
		st.status.Store(499)
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		p.o.Logger.Warn().Str("upstream", BackendName).Err(err).Msg("proxy backend timed out")
		st.reason.Store(ReasonTimeout)
		st.status.Store(http.StatusGatewayTimeout)
		writeJSON(w, http.StatusGatewayTimeout, map[string]string{"error": "gateway_timeout",
			"error_description": "the " + p.o.Mount + " backend did not answer in time", "upstream": BackendName, "reason": ReasonTimeout})
	default:
		p.o.Logger.Warn().Str("upstream", BackendName).Err(err).Msg("proxy backend unavailable")
		st.reason.Store(ReasonUnavailable)
		st.status.Store(http.StatusBadGateway)
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": "bad_gateway",
			"error_description": "the " + p.o.Mount + " backend is unavailable", "upstream": BackendName, "reason": ReasonUnavailable})
	}
}

// limitedBody records that the body cap was hit, so the answer can be 413.
type limitedBody struct {
	io.ReadCloser
	st *state
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var mbe *http.MaxBytesError
	if err != nil && errors.As(err, &mbe) {
		b.st.tooLarge.Store(true)
	}
	return n, err
}

// writeError writes a JSON error with a reason code.
func writeError(w http.ResponseWriter, status int, code, description, reason string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": description, "reason": reason})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b, status = []byte(`{"error":"internal_error"}`), http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
