package mcp

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gatewaystack/gatewaystack/audit"
	"github.com/gatewaystack/gatewaystack/auth"
	"github.com/gatewaystack/gatewaystack/config"
	"github.com/gatewaystack/gatewaystack/limit"
	"github.com/gatewaystack/gatewaystack/policy"
)

// codeRateLimited is the JSON-RPC error code of a rate-limit refusal, in
// the implementation-defined server-error range (-32000 to -32099); 029
// echoes HTTP 429.
const codeRateLimited = -32029

// reasonRateLimited is the reason code of every rate-limit refusal.
const reasonRateLimited = "rate_limited"

// Limit scopes, as they appear in refusals.
const (
	ScopeSubject = "subject"
	ScopeTenant  = "tenant"
	ScopeIP      = "ip"
	ScopeTool    = "tool"
)

// RateLimit is one configured limit.
type RateLimit struct {
	// Scope is subject, tenant, ip or tool.
	Scope string
	// Rule names the configuration entry, e.g. limits.per_subject.
	Rule string
	// Rate is what Limiter enforces (for the refusal's data).
	Rate limit.Rate
	// Limiter keeps the state.
	Limiter limit.Limiter
}

// Limits are the rate limits of the pipeline; a nil limit is off.
type Limits struct {
	PerSubject, PerTenant, PerIP *RateLimit
	// PerTool is applied to tools/call per subject; the most specific
	// matching pattern decides (policy.Table; nil: none).
	PerTool *policy.Table[*RateLimit]
	// TrustedProxies may name the client in X-Forwarded-For / Forwarded.
	TrustedProxies []netip.Prefix
	// Budgets are charged by authorized tools/call (nil: none).
	Budgets *Budgets
	// LoopGuard refuses identical tools/call repeated too often (nil: off).
	LoopGuard *LoopGuard
	// FailOpen lets requests through, uncounted, while a shared store is
	// unreachable (limits.on_store_error: fail_open); otherwise they are
	// refused with 503.
	FailOpen bool
	// Shared is the Redis store every limit keeps its state in (nil: each
	// limit has its own in-memory store), for health reports.
	Shared *limit.Redis
}

// BuildLimits turns the limits section of a validated configuration into
// limiters. With shared nil each limit gets its own in-memory store; else
// all keep their state in shared, each under its own key namespace (its
// rule name). now is the clock of the in-memory stores (nil: time.Now).
func BuildLimits(c config.Limits, shared *limit.Redis, now func() time.Time) (Limits, error) {
	out := Limits{FailOpen: c.OnStoreError == config.FailOpen, Shared: shared}
	st := stores{shared: shared, maxKeys: c.MaxKeys, now: now}
	mk := func(scope, rule string, r config.Rate) (*RateLimit, error) {
		if !r.Enabled() {
			return nil, nil
		}
		rate := limit.Rate{Requests: r.N(), Window: r.Window, Burst: r.Burst}
		l, err := limit.New(rate, st.rate(rule))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rule, err)
		}
		return &RateLimit{Scope: scope, Rule: rule, Rate: rate, Limiter: l}, nil
	}
	var err error
	if out.PerSubject, err = mk(ScopeSubject, "limits.per_subject", c.PerSubject); err != nil {
		return out, err
	}
	if out.PerTenant, err = mk(ScopeTenant, "limits.per_tenant", c.PerTenant); err != nil {
		return out, err
	}
	if out.PerIP, err = mk(ScopeIP, "limits.per_ip", c.PerIP); err != nil {
		return out, err
	}
	perTool := map[string]*RateLimit{}
	for p, r := range c.PerTool {
		rl, err := mk(ScopeTool, fmt.Sprintf("limits.per_tool[%q]", p), r)
		if err != nil {
			return out, err
		}
		if rl != nil {
			perTool[p] = rl
		}
	}
	if len(perTool) > 0 {
		if out.PerTool, err = policy.NewTable(perTool); err != nil {
			return out, fmt.Errorf("limits.per_tool: %w", err)
		}
	}
	if out.Budgets, err = buildBudgets(c, st); err != nil {
		return out, err
	}
	if out.LoopGuard, err = buildLoopGuard(c, st); err != nil {
		return out, err
	}
	for _, s := range c.TrustedProxies {
		p, err := config.ParseTrustedProxy(s)
		if err != nil {
			return out, fmt.Errorf("limits.trusted_proxies: %w", err)
		}
		out.TrustedProxies = append(out.TrustedProxies, p)
	}
	return out, nil
}

// stores hands each limit its store: a namespace of the shared Redis, or a
// new in-memory store.
type stores struct {
	shared  *limit.Redis
	maxKeys int
	now     func() time.Time
}

func (s stores) rate(rule string) limit.Store {
	if s.shared != nil {
		return s.shared.Namespace(rule + ":")
	}
	return limit.NewMemory(limit.MemoryOptions{MaxKeys: s.maxKeys, Now: s.now})
}

func (s stores) budget(rule string) limit.BudgetStore {
	if s.shared != nil {
		return s.shared.Namespace(rule + ":")
	}
	return limit.NewBudgetMemory(limit.BudgetMemoryOptions{MaxKeys: s.maxKeys, Now: s.now})
}

func (s stores) repeat(rule string) limit.RepeatStore {
	if s.shared != nil {
		return s.shared.Namespace(rule + ":")
	}
	return limit.NewRepeatMemory(limit.BudgetMemoryOptions{MaxKeys: s.maxKeys, Now: s.now})
}

// toolLimit returns the per-tool limit of the most specific pattern that
// matches tool (nil: none).
func (l *Limits) toolLimit(tool string) *RateLimit {
	rl, _, _ := l.PerTool.Match(tool)
	return rl
}

// clientIP is the address the per-IP limit keys on: the peer, or — when
// the peer is a trusted proxy — the rightmost address of X-Forwarded-For
// (else of Forwarded's for=) that is not itself a trusted proxy. Entries
// left of it were written by the client and are never believed.
func (l *Limits) clientIP(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	peer := ap.Addr().Unmap()
	if !l.trusted(peer) {
		return peer
	}
	hops := forwardedFor(r.Header.Values("X-Forwarded-For"), false)
	if len(hops) == 0 {
		hops = forwardedFor(r.Header.Values("Forwarded"), true)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := parseHop(hops[i])
		if err != nil {
			return client // garbage from beyond the last trusted hop
		}
		client = a
		if !l.trusted(a) {
			return a
		}
	}
	return client
}

func (l *Limits) trusted(a netip.Addr) bool {
	for _, p := range l.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedFor splits X-Forwarded-For lines (or the for= parameters of
// Forwarded lines) into hops, leftmost first.
func forwardedFor(lines []string, rfc7239 bool) []string {
	var hops []string
	for _, line := range lines {
		for elem := range strings.SplitSeq(line, ",") {
			elem = strings.TrimSpace(elem)
			if !rfc7239 {
				hops = append(hops, elem)
				continue
			}
			for pair := range strings.SplitSeq(elem, ";") {
				k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(k, "for") {
					hops = append(hops, strings.Trim(v, `"`))
				}
			}
		}
	}
	return hops
}

// parseHop reads 192.0.2.1, 192.0.2.1:80, [2001:db8::1] or [2001:db8::1]:80.
func parseHop(s string) (netip.Addr, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), nil
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	return a.Unmap(), err
}

// ipKey is the per-IP key: the IPv4 address, or the IPv6 /64 (one host
// usually holds a whole /64).
func ipKey(a netip.Addr) string {
	if a.Is4() {
		b := a.As4()
		return string(b[:])
	}
	b := a.As16()
	return string(b[:8])
}

// ipRefused is the flood check that runs before identify: when the client
// IP has spent its allowance of unauthenticated requests, the request is
// refused without verifying any token. It consumes nothing.
func (g *Gateway) ipRefused(w http.ResponseWriter, r *http.Request, st *requestState, ip netip.Addr) bool {
	rl := g.o.Limits.PerIP
	if rl == nil || !ip.IsValid() {
		return false
	}
	res, err := rl.Limiter.Allow(r.Context(), ipKey(ip), 0)
	return g.render(w, st, nil, g.rateDecision(st, rl, res, err))
}

// chargeIP counts one unauthenticated request (missing or failed
// credentials, a body slower than server.read_timeout) against the client
// IP.
func (g *Gateway) chargeIP(ctx context.Context, ip netip.Addr) {
	if rl := g.o.Limits.PerIP; rl != nil && ip.IsValid() {
		_, _ = rl.Limiter.Allow(ctx, ipKey(ip), 1)
	}
}

// requestLimited applies the per-subject and per-tenant limits to a
// request whose identity is verified, and renders a refusal.
//
// An allowed request carries the RateLimit-Limit, RateLimit-Remaining and
// RateLimit-Reset headers of the limit closest to refusing it, so clients
// can slow down before they are refused.
func (g *Gateway) requestLimited(ctx context.Context, w http.ResponseWriter, st *requestState, rid []byte, id auth.Identity) bool {
	var tightest limit.Result
	have := false
	check := func(rl *RateLimit, key string) *refusal {
		res, err := rl.Limiter.Allow(ctx, key, 1)
		if r := g.rateDecision(st, rl, res, err); r != nil {
			return r
		}
		if err == nil && (!have || res.Remaining < tightest.Remaining) {
			tightest, have = res, true
		}
		return nil
	}
	if rl := g.o.Limits.PerSubject; rl != nil {
		if r := check(rl, id.Subject); r != nil {
			return g.render(w, st, rid, r)
		}
	}
	if rl := g.o.Limits.PerTenant; rl != nil && id.Tenant != "" {
		if r := check(rl, id.Tenant); r != nil {
			return g.render(w, st, rid, r)
		}
	}
	if have {
		h := w.Header()
		h.Set("RateLimit-Limit", strconv.Itoa(tightest.Limit))
		h.Set("RateLimit-Remaining", strconv.Itoa(tightest.Remaining))
		h.Set("RateLimit-Reset", strconv.FormatInt(int64((tightest.ResetAfter+time.Second-1)/time.Second), 10))
	}
	return false
}

// callLimited is the one entry point of the limit stage of an authorized
// tools/call: the per-tool rate limit, then the loop guard, then the
// budgets. A stage that refuses first charges nothing after it: the loop
// guard counts only calls the rate limits let through, and the budgets only
// calls the loop guard let through. It renders a refusal and reports
// whether there was one.
func (g *Gateway) callLimited(ctx context.Context, w http.ResponseWriter, st *requestState, rid []byte, id auth.Identity, tool string) bool {
	r := g.toolDecision(ctx, st, id, tool)
	if r == nil {
		r = g.loopDecision(ctx, st, id, tool)
	}
	if r == nil {
		if bs := g.o.Limits.Budgets; bs != nil {
			r = g.budgetDecision(ctx, st, id, tool, bs.Cost(tool))
		}
	}
	return g.render(w, st, rid, r)
}

// toolDecision applies the per-tool limit (per subject) to an authorized
// tools/call.
func (g *Gateway) toolDecision(ctx context.Context, st *requestState, id auth.Identity, tool string) *refusal {
	rl := g.o.Limits.toolLimit(tool)
	if rl == nil {
		return nil
	}
	res, err := rl.Limiter.Allow(ctx, id.Subject+"\x00"+tool, 1)
	return g.rateDecision(st, rl, res, err)
}

// rateDecision is a rate limit's outcome: nil when res allows, else 429
// with Retry-After and the RateLimit-* headers of the IETF draft, data
// naming the limit; a store that fails refuses (fail closed) with 503, or
// lets the request through uncounted (fail_open: storeDecision).
func (g *Gateway) rateDecision(st *requestState, rl *RateLimit, res limit.Result, err error) *refusal {
	if err != nil {
		return g.storeDecision(st, rl.Rule, err)
	}
	if res.Allowed {
		return nil
	}
	retry := ceilSeconds(res.RetryAfter)
	return &refusal{
		Status: http.StatusTooManyRequests, Code: codeRateLimited, Reason: reasonRateLimited, Rule: rl.Rule,
		Message:    fmt.Sprintf("rate limit exceeded (%s); retry after %d s", rl.Scope, retry),
		RetryAfter: retry, RateLimit: &[2]int{res.Limit, res.Remaining},
		Data: map[string]any{
			"reason":     reasonRateLimited,
			"scope":      rl.Scope,
			"retryAfter": retry,
			"limit": map[string]any{
				"rule": rl.Rule, "requests": rl.Rate.Requests, "window": rl.Rate.Window.String(), "burst": rl.Rate.Capacity(),
			},
		},
	}
}

// storeDecision applies the configured failure mode when a limit's store
// failed: fail_open lets the request through uncounted (nil; logged, at
// most once a second); fail_closed refuses it with 503.
func (g *Gateway) storeDecision(st *requestState, rule string, err error) *refusal {
	if !g.o.Limits.FailOpen {
		g.o.Logger.Warn().Str("request_id", st.event.RequestID).Str("limit", rule).Err(err).Msg("limit store failed; refusing")
		return unavailable(rule)
	}
	if g.o.Metrics != nil {
		g.o.Metrics.FailOpen()
	}
	now := time.Now().UnixNano()
	if last := g.failOpenLogged.Load(); now-last >= int64(time.Second) && g.failOpenLogged.CompareAndSwap(last, now) {
		g.o.Logger.Warn().Str("request_id", st.event.RequestID).Str("limit", rule).Err(err).
			Msg("limit store failed; letting requests through uncounted (limits.on_store_error: fail_open)")
	}
	return nil
}

// unavailable is the fail-closed refusal of a store that failed: 503.
func unavailable(rule string) *refusal {
	return &refusal{Status: http.StatusServiceUnavailable, Code: codeInternalError, Decision: audit.Error,
		Reason: "limit_unavailable", Rule: rule, RetryAfter: 1,
		Message: "the rate limiter is unavailable; retry shortly", Data: map[string]any{"reason": "limit_unavailable"}}
}

// limitUnavailable refuses (fail closed) with 503 when a store failed.
func (g *Gateway) limitUnavailable(w http.ResponseWriter, st *requestState, rid []byte, rule string, err error) {
	g.o.Logger.Warn().Str("request_id", st.event.RequestID).Str("limit", rule).Err(err).Msg("limit store failed; refusing")
	g.render(w, st, rid, unavailable(rule))
}

// ceilSeconds rounds d up to whole seconds, at least 1.
func ceilSeconds(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	return max(s, 1)
}
