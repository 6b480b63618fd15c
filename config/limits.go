package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatewaystack/gatewaystack/policy"
)

// Limits configures rate limiting. Each limit allows Burst requests at once
// and then Requests per Window, smoothly (GCRA: no window edges).
type Limits struct {
	// Store keeps the counters of rate limits, budgets and the loop guard,
	// and the list of ended sessions: "memory" (the default; each replica
	// keeps its own) or a Redis URL, redis://[user:password@]host:port[/db]
	// or rediss:// (TLS), shared by every replica pointed at it
	// (GATEWAYSTACK_LIMITS_STORE).
	Store string `yaml:"store"`
	// OnStoreError is what a request gets when a shared store cannot be
	// reached: fail_closed (the default: refused with 503) or fail_open
	// (allowed, uncounted, and logged).
	OnStoreError string `yaml:"on_store_error"`
	// StoreTimeout bounds each store command, connecting included (default
	// 250ms).
	StoreTimeout time.Duration `yaml:"store_timeout"`
	// PerSubject limits each verified subject on every MCP request (default
	// 600 per minute; RATE_LIMIT_MAX / RATE_LIMIT_WINDOW_MS).
	PerSubject Rate `yaml:"per_subject"`
	// PerTenant limits all subjects of a tenant together (default 6000 per
	// minute); requests without a tenant are not counted.
	PerTenant Rate `yaml:"per_tenant"`
	// PerIP limits unauthenticated traffic per client IP (IPv6 per /64):
	// every request whose credentials are missing or fail verification
	// counts, and once an IP is over its limit its requests are refused
	// before any token is verified (default 1200 per minute).
	PerIP Rate `yaml:"per_ip"`
	// PerTool limits tools/call per subject for the tools a pattern matches
	// (exact name or glob; the most specific pattern decides). No default.
	PerTool map[string]Rate `yaml:"per_tool"`
	// TrustedProxies lists the CIDRs (or addresses) of reverse proxies whose
	// X-Forwarded-For / Forwarded headers name the client IP. From any other
	// peer the headers are ignored and the peer address is the client IP.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// MaxKeys bounds the keys each limit keeps in memory (default 100000);
	// idle keys are dropped first.
	MaxKeys int `yaml:"max_keys"`
	// Budgets are quotas of cost units per tenant and per subject per
	// period, charged by tools/call. Off unless units are set.
	Budgets Budgets `yaml:"budgets"`
	// LoopGuard refuses a subject's identical tools/call (same tool, same
	// arguments) repeated more than MaxRepeats times within Window.
	LoopGuard LoopGuard `yaml:"loop_guard"`
}

// Budgets configures the per-tenant and per-subject budgets.
type Budgets struct {
	// PerTenant is shared by all subjects of a tenant (calls without a
	// tenant are not charged here).
	PerTenant Budget `yaml:"per_tenant"`
	// PerSubject is each verified subject's own.
	PerSubject Budget `yaml:"per_subject"`
	// Costs maps tool-name patterns (exact or glob; the most specific
	// decides) to the units a tools/call costs. Default cost: 1; 0 is free.
	Costs map[string]int64 `yaml:"costs"`
}

// Budget is Units per Period. Units 0 (or unset) turns it off.
type Budget struct {
	Units int64 `yaml:"units"`
	// Period is a fixed window aligned to multiples of Period since the Unix
	// epoch, UTC (24h resets at midnight UTC). Default 24h.
	Period time.Duration `yaml:"period"`
}

// Enabled reports whether the budget is on.
func (b Budget) Enabled() bool { return b.Units > 0 }

// LoopGuard configures the runaway-agent guard.
type LoopGuard struct {
	// MaxRepeats identical calls are allowed within Window; the next is
	// refused. 0 disables the guard; unset means DefaultLoopMaxRepeats.
	MaxRepeats *int `yaml:"max_repeats"`
	// Window is the sliding window (default 1m).
	Window time.Duration `yaml:"window"`
	// PerTool overrides MaxRepeats and Window for the tools a pattern
	// matches (the most specific pattern decides); max_repeats 0 exempts
	// them.
	PerTool map[string]LoopRule `yaml:"per_tool"`
}

// LoopRule is a per-tool loop-guard setting.
type LoopRule struct {
	// MaxRepeats identical calls pass within Window; required (0 exempts).
	MaxRepeats *int `yaml:"max_repeats"`
	// Window defaults to the guard's window.
	Window time.Duration `yaml:"window"`
}

// N returns MaxRepeats (0 when unset).
func (l LoopRule) N() int {
	if l.MaxRepeats == nil {
		return 0
	}
	return *l.MaxRepeats
}

// Enabled reports whether the loop guard is on for some tool.
func (l LoopGuard) Enabled() bool {
	if l.MaxRepeats != nil && *l.MaxRepeats > 0 {
		return true
	}
	for _, r := range l.PerTool {
		if r.N() > 0 {
			return true
		}
	}
	return false
}

// N returns MaxRepeats (0 when unset).
func (l LoopGuard) N() int {
	if l.MaxRepeats == nil {
		return 0
	}
	return *l.MaxRepeats
}

// Rate is one limit. Requests 0 turns it off.
type Rate struct {
	// Requests per Window; 0 disables the limit. Unset means the default.
	Requests *int `yaml:"requests"`
	// Window is the period Requests refill over (default 1m).
	Window time.Duration `yaml:"window"`
	// Burst is how many requests may arrive at once (default Requests).
	Burst int `yaml:"burst"`
}

// Enabled reports whether the limit is on.
func (r Rate) Enabled() bool { return r.Requests != nil && *r.Requests > 0 }

// N returns Requests (0 when unset).
func (r Rate) N() int {
	if r.Requests == nil {
		return 0
	}
	return *r.Requests
}

// Default limits.
const (
	DefaultPerSubject = 600
	DefaultPerTenant  = 6000
	DefaultPerIP      = 1200
	DefaultMaxKeys    = 100_000
	// DefaultLoopMaxRepeats identical calls per DefaultLoopWindow pass the
	// loop guard; the next is refused.
	DefaultLoopMaxRepeats = 5
	DefaultLoopWindow     = time.Minute
	// DefaultBudgetPeriod is a budget's period when unset.
	DefaultBudgetPeriod = 24 * time.Hour
	// MaxBudgetPeriod bounds a budget's period (a year).
	MaxBudgetPeriod = 366 * 24 * time.Hour
	// DefaultStoreTimeout bounds each shared-store command.
	DefaultStoreTimeout = 250 * time.Millisecond
)

// Failure modes of limits.on_store_error.
const (
	FailClosed = "fail_closed"
	FailOpen   = "fail_open"
)

// RedisStore reports whether the store is a Redis URL.
func (l Limits) RedisStore() bool {
	return strings.HasPrefix(l.Store, "redis://") || strings.HasPrefix(l.Store, "rediss://")
}

func (r *Rate) setDefaults(requests int) {
	if r.Requests == nil {
		r.Requests = &requests
	}
	if r.Window == 0 {
		r.Window = time.Minute
	}
	if r.Burst == 0 && r.Requests != nil {
		r.Burst = *r.Requests
	}
}

func (l *Limits) setDefaults() {
	if l.Store == "" {
		l.Store = "memory"
	}
	if l.OnStoreError == "" {
		l.OnStoreError = FailClosed
	}
	if l.StoreTimeout == 0 {
		l.StoreTimeout = DefaultStoreTimeout
	}
	l.PerSubject.setDefaults(DefaultPerSubject)
	l.PerTenant.setDefaults(DefaultPerTenant)
	l.PerIP.setDefaults(DefaultPerIP)
	for p, r := range l.PerTool {
		r.setDefaults(0)
		l.PerTool[p] = r
	}
	if l.MaxKeys == 0 {
		l.MaxKeys = DefaultMaxKeys
	}
	for _, b := range []*Budget{&l.Budgets.PerTenant, &l.Budgets.PerSubject} {
		if b.Period == 0 {
			b.Period = DefaultBudgetPeriod
		}
	}
	if l.LoopGuard.MaxRepeats == nil {
		n := DefaultLoopMaxRepeats
		l.LoopGuard.MaxRepeats = &n
	}
	if l.LoopGuard.Window == 0 {
		l.LoopGuard.Window = DefaultLoopWindow
	}
	for p, r := range l.LoopGuard.PerTool {
		if r.Window == 0 {
			r.Window = l.LoopGuard.Window
		}
		l.LoopGuard.PerTool[p] = r
	}
}

// applyLimitsEnv maps the original project's RATE_LIMIT_MAX (requests, 0
// disables) and RATE_LIMIT_WINDOW_MS (window in milliseconds) onto
// limits.per_subject, and returns the problems of malformed values.
func (c *Config) applyLimitsEnv(getenv func(string) string) Problems {
	var ps Problems
	if v := strings.TrimSpace(getenv("RATE_LIMIT_MAX")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			ps = append(ps, Problem{Field: "RATE_LIMIT_MAX", Message: fmt.Sprintf("%q is not a whole number of requests; set it like 600 (0 disables the per-subject limit)", v)})
		} else {
			c.Limits.PerSubject.Requests = &n
			c.Limits.PerSubject.Burst = 0 // follows the new maximum
		}
	}
	if v := strings.TrimSpace(getenv("GATEWAYSTACK_LIMITS_STORE")); v != "" {
		c.Limits.Store = v
	}
	if v := strings.TrimSpace(getenv("RATE_LIMIT_WINDOW_MS")); v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms <= 0 {
			ps = append(ps, Problem{Field: "RATE_LIMIT_WINDOW_MS", Message: fmt.Sprintf("%q is not a positive number of milliseconds; set it like 60000", v)})
		} else {
			c.Limits.PerSubject.Window = time.Duration(ms) * time.Millisecond
		}
	}
	return ps
}

// redactedURL quotes a store setting with any password in it replaced, so
// that a problem report never shows a credential.
func redactedURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return strconv.Quote(u.String())
		}
	}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		return strconv.Quote("…" + s[i:])
	}
	return strconv.Quote(s)
}

// ParseTrustedProxy reads one limits.trusted_proxies entry: a CIDR or a
// single address.
func ParseTrustedProxy(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func validateLimits(l *Limits, add func(field, format string, args ...any)) {
	switch {
	case l.Store == "memory":
	case l.RedisStore():
		if u, err := url.Parse(l.Store); err != nil || u.Host == "" {
			add("limits.store", "%s is not a usable Redis URL; write redis://host:6379/0 (or rediss:// for TLS)", redactedURL(l.Store))
		}
	default:
		add("limits.store", "%s is not a store; use memory (each replica keeps its own counters) or a Redis URL like redis://127.0.0.1:6379/0 (shared by all replicas)", redactedURL(l.Store))
	}
	if l.OnStoreError != FailClosed && l.OnStoreError != FailOpen {
		add("limits.on_store_error", "%q is not a failure mode; use fail_closed (refuse while the store is unreachable) or fail_open (allow, uncounted)", l.OnStoreError)
	}
	if l.StoreTimeout < time.Millisecond || l.StoreTimeout > 10*time.Second {
		add("limits.store_timeout", "%s is out of range; use a duration from 1ms to 10s, e.g. 250ms", l.StoreTimeout)
	}
	check := func(f string, r Rate, optional bool) {
		switch n := r.N(); {
		case n < 0 || n > 1_000_000_000:
			add(f+".requests", "%d is out of range; use 1 to 1000000000, or 0 to turn the limit off", n)
			return
		case n == 0 && !optional:
			add(f+".requests", "required; set how many requests per window, e.g. 60 (remove the entry to drop the limit)")
			return
		case n == 0:
			return
		}
		if r.Window <= 0 || r.Window > 24*time.Hour {
			add(f+".window", "%s is out of range; use a duration from 1ms to 24h, e.g. 1m", r.Window)
		} else if r.Window/time.Duration(r.N()) < time.Microsecond {
			add(f, "%d requests per %s is finer than one per microsecond; raise the window or lower requests", r.N(), r.Window)
		}
		if r.Burst < 0 || r.Burst > 1_000_000_000 {
			add(f+".burst", "%d is out of range; use 1 to 1000000000 (default: requests)", r.Burst)
		}
	}
	check("limits.per_subject", l.PerSubject, true)
	check("limits.per_tenant", l.PerTenant, true)
	check("limits.per_ip", l.PerIP, true)
	eachToolPattern("limits.per_tool", l.PerTool, add, func(f string, r Rate) { check(f, r, false) })
	for i, s := range l.TrustedProxies {
		if _, err := ParseTrustedProxy(s); err != nil {
			add(fmt.Sprintf("limits.trusted_proxies[%d]", i), "%q is not a CIDR or IP address; write e.g. 10.0.0.0/8 or 192.0.2.10", s)
		}
	}
	if l.MaxKeys < 0 || l.MaxKeys > 100_000_000 {
		add("limits.max_keys", "%d is out of range; use 1 to 100000000 (default 100000)", l.MaxKeys)
	}
	validateBudgets(&l.Budgets, add)
	validateLoopGuard(l.LoopGuard, add)
}

func validateBudgets(b *Budgets, add func(field, format string, args ...any)) {
	check := func(f string, b Budget) {
		if b.Units < 0 || b.Units > 1_000_000_000_000 {
			add(f+".units", "%d is out of range; use 1 to 1000000000000 units per period, or 0 to turn the budget off", b.Units)
			return
		}
		if b.Units == 0 {
			return
		}
		if b.Period < time.Second || b.Period > MaxBudgetPeriod || b.Period%time.Second != 0 {
			add(f+".period", "%s is out of range; use whole seconds from 1s to 8784h, e.g. 24h (a day) or 720h (30 days)", b.Period)
		}
	}
	check("limits.budgets.per_tenant", b.PerTenant)
	check("limits.budgets.per_subject", b.PerSubject)
	eachToolPattern("limits.budgets.costs", b.Costs, add, func(f string, c int64) {
		if c < 0 || c > maxCost {
			add(f, "cost %d is out of range; use 0 (free) to %d units per call (default 1)", c, maxCost)
		}
	})
}

// maxCost bounds the budget cost of one call or request.
const maxCost = 1_000_000_000

func validateLoopGuard(g LoopGuard, add func(field, format string, args ...any)) {
	check := func(f string, n int, set bool, window time.Duration) {
		switch {
		case !set:
			add(f+".max_repeats", "required; set how many identical calls pass per window, e.g. 10 (0 exempts the tools)")
			return
		case n < 0 || n > 10_000:
			add(f+".max_repeats", "%d is out of range; use 1 to 10000 identical calls per window, or 0 to turn the loop guard off", n)
			return
		case n == 0:
			return
		}
		if window < time.Millisecond || window > 24*time.Hour {
			add(f+".window", "%s is out of range; use a duration from 1ms to 24h, e.g. 1m", window)
		}
	}
	check("limits.loop_guard", g.N(), true, g.Window)
	eachToolPattern("limits.loop_guard.per_tool", g.PerTool, add, func(f string, r LoopRule) {
		check(f, r.N(), r.MaxRepeats != nil, r.Window)
	})
}

// eachToolPattern checks every tool-name pattern of m (sorted, so problems
// come out in a stable order) and hands the usable ones to fn with their
// field path.
func eachToolPattern[V any](field string, m map[string]V, add func(field, format string, args ...any), fn func(f string, v V)) {
	patterns := make([]string, 0, len(m))
	for p := range m {
		patterns = append(patterns, p)
	}
	slices.Sort(patterns)
	for _, p := range patterns {
		f := fmt.Sprintf("%s[%q]", field, p)
		if p == "" {
			add(f, "empty pattern; use a tool name like notes__write_note or a glob like notes__*")
			continue
		}
		if err := policy.ValidatePattern(p); err != nil {
			add(f, "invalid glob: %v", err)
		}
		fn(f, m[p])
	}
}
