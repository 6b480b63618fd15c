package config

import (
	"strings"
	"testing"
	"time"
)

func intp(n int) *int { return &n }

func TestLimitDefaults(t *testing.T) {
	t.Parallel()
	c := valid()
	l := c.Limits
	eq(t, "store", l.Store, "memory")
	eq(t, "per_subject", [3]any{l.PerSubject.N(), l.PerSubject.Window, l.PerSubject.Burst}, [3]any{600, time.Minute, 600})
	eq(t, "per_tenant", [3]any{l.PerTenant.N(), l.PerTenant.Window, l.PerTenant.Burst}, [3]any{6000, time.Minute, 6000})
	eq(t, "per_ip", [3]any{l.PerIP.N(), l.PerIP.Window, l.PerIP.Burst}, [3]any{1200, time.Minute, 1200})
	eq(t, "max_keys", l.MaxKeys, 100_000)
	eq(t, "budgets off", [2]bool{l.Budgets.PerTenant.Enabled(), l.Budgets.PerSubject.Enabled()}, [2]bool{false, false})
	eq(t, "budget period", l.Budgets.PerSubject.Period, 24*time.Hour)
	eq(t, "loop_guard", [2]any{l.LoopGuard.N(), l.LoopGuard.Window}, [2]any{5, time.Minute})
}

func TestBudgetsAndLoopGuardYAML(t *testing.T) {
	t.Parallel()
	p := writeConfig(t, `
limits:
  budgets:
    per_tenant: { units: 1000 }
    per_subject: { units: 50, period: 720h }
    costs: { "notes__*": 2, "notes__free": 0 }
  loop_guard: { max_repeats: 0 }
`)
	c, err := Load(p, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	b := c.Limits.Budgets
	eq(t, "per_tenant", [2]any{b.PerTenant.Units, b.PerTenant.Period}, [2]any{int64(1000), 24 * time.Hour})
	eq(t, "per_subject", [2]any{b.PerSubject.Units, b.PerSubject.Period}, [2]any{int64(50), 720 * time.Hour})
	eq(t, "costs", b.Costs, map[string]int64{"notes__*": 2, "notes__free": 0})
	if c.Limits.LoopGuard.Enabled() {
		t.Error("max_repeats: 0 must turn the loop guard off")
	}
}

func TestLimitYAMLZeroDisablesAndBurstFollowsRequests(t *testing.T) {
	t.Parallel()
	p := writeConfig(t, `
limits:
  per_subject: { requests: 0 }
  per_tenant: { requests: 50, window: 10s }
  per_tool:
    "notes__*": { requests: 5 }
  trusted_proxies: ["10.0.0.0/8", "192.0.2.7", "::1"]
`)
	c, err := Load(p, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits.PerSubject.Enabled() {
		t.Error("requests: 0 must turn per_subject off")
	}
	eq(t, "per_tenant", [3]any{c.Limits.PerTenant.N(), c.Limits.PerTenant.Window, c.Limits.PerTenant.Burst}, [3]any{50, 10 * time.Second, 50})
	eq(t, "per_tool", [3]any{c.Limits.PerTool["notes__*"].N(), c.Limits.PerTool["notes__*"].Window, c.Limits.PerTool["notes__*"].Burst}, [3]any{5, time.Minute, 5})
	for _, s := range c.Limits.TrustedProxies {
		if _, err := ParseTrustedProxy(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
}

// The original project's RATE_LIMIT_MAX / RATE_LIMIT_WINDOW_MS keep working
// and map onto the per-subject limit.
func TestRateLimitEnvironmentVariables(t *testing.T) {
	t.Parallel()
	p := writeConfig(t, "limits:\n  per_subject: { requests: 10, burst: 3 }\n")
	c, err := Load(p, env(map[string]string{"RATE_LIMIT_MAX": "100", "RATE_LIMIT_WINDOW_MS": "15000"}))
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "per_subject", [3]any{c.Limits.PerSubject.N(), c.Limits.PerSubject.Window, c.Limits.PerSubject.Burst}, [3]any{100, 15 * time.Second, 100})
	c, err = Load("", env(map[string]string{"RATE_LIMIT_MAX": "0"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits.PerSubject.Enabled() {
		t.Error("RATE_LIMIT_MAX=0 must turn the per-subject limit off")
	}
	for _, bad := range []map[string]string{{"RATE_LIMIT_MAX": "ten"}, {"RATE_LIMIT_MAX": "-1"}, {"RATE_LIMIT_WINDOW_MS": "0"}, {"RATE_LIMIT_WINDOW_MS": "1m"}} {
		if _, err := Load("", env(bad)); err == nil {
			t.Errorf("%v was accepted", bad)
		}
	}
}

func TestRedisStoreConfig(t *testing.T) {
	t.Parallel()
	p := writeConfig(t, "limits:\n  store: redis://:pw@127.0.0.1:6380/2\n  on_store_error: fail_open\n  store_timeout: 100ms\n  loop_guard:\n    per_tool:\n      \"a__*\": { max_repeats: 0 }\n")
	c, err := Load(p, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	full := valid()
	full.Limits = c.Limits
	if err := full.Validate(); err != nil {
		t.Fatal(err)
	}
	if !c.Limits.RedisStore() || c.Limits.OnStoreError != FailOpen || c.Limits.StoreTimeout != 100*time.Millisecond {
		t.Errorf("limits = %+v", c.Limits)
	}
	if r := c.Limits.LoopGuard.PerTool["a__*"]; r.N() != 0 || r.Window != DefaultLoopWindow {
		t.Errorf("per-tool loop rule = %+v, want exempt with the guard's window", r)
	}
	c, err = Load(p, env(map[string]string{"GATEWAYSTACK_LIMITS_STORE": "memory"}))
	if err != nil || c.Limits.Store != "memory" || c.Limits.OnStoreError != FailOpen {
		t.Errorf("GATEWAYSTACK_LIMITS_STORE=memory: %+v, %v", c.Limits, err)
	}
	d, _ := Load("", env(nil))
	if d.Limits.Store != "memory" || d.Limits.OnStoreError != FailClosed || d.Limits.StoreTimeout != DefaultStoreTimeout {
		t.Errorf("defaults = %q %q %s", d.Limits.Store, d.Limits.OnStoreError, d.Limits.StoreTimeout)
	}
}

func TestValidateLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(l *Limits)
		field  string
		msg    string
	}{
		{"an unknown store", func(l *Limits) { l.Store = "memcached://127.0.0.1:11211" }, "limits.store", "use memory"},
		{"a redis URL without a host", func(l *Limits) { l.Store = "redis://" }, "limits.store", "redis://host:6379/0"},
		{"a bad store URL never shows its password", func(l *Limits) { l.Store = "redis://u:s3cret@%zz" }, "limits.store", "not a usable Redis URL"},
		{"an unknown failure mode", func(l *Limits) { l.OnStoreError = "retry" }, "limits.on_store_error", "fail_closed"},
		{"a store timeout beyond 10s", func(l *Limits) { l.StoreTimeout = time.Minute }, "limits.store_timeout", "1ms to 10s"},
		{"a per-tool loop rule without max_repeats", func(l *Limits) {
			l.LoopGuard.PerTool = map[string]LoopRule{"notes__*": {Window: time.Minute}}
		}, `limits.loop_guard.per_tool["notes__*"].max_repeats`, "required"},
		{"a per-tool loop rule with a bad window", func(l *Limits) {
			l.LoopGuard.PerTool = map[string]LoopRule{"notes__*": {MaxRepeats: intp(3), Window: 48 * time.Hour}}
		}, `limits.loop_guard.per_tool["notes__*"].window`, "1ms to 24h"},
		{"negative requests", func(l *Limits) { l.PerSubject.Requests = intp(-1) }, "limits.per_subject.requests", "0 to turn the limit off"},
		{"a window beyond a day", func(l *Limits) { l.PerTenant.Window = 48 * time.Hour }, "limits.per_tenant.window", "1ms to 24h"},
		{"a rate finer than a microsecond", func(l *Limits) { l.PerIP.Requests = intp(1_000_000); l.PerIP.Window = time.Millisecond }, "limits.per_ip", "finer than one per microsecond"},
		{"negative burst", func(l *Limits) { l.PerSubject.Burst = -2 }, "limits.per_subject.burst", "out of range"},
		{"per-tool needs requests", func(l *Limits) { l.PerTool = map[string]Rate{"notes__*": {Window: time.Minute}} }, `limits.per_tool["notes__*"].requests`, "required"},
		{"per-tool bad glob", func(l *Limits) {
			l.PerTool = map[string]Rate{"notes__[": {Requests: intp(1), Window: time.Minute, Burst: 1}}
		}, `limits.per_tool["notes__["]`, "invalid glob"},
		{"a trusted proxy that is not an address", func(l *Limits) { l.TrustedProxies = []string{"10.0.0.0/8", "proxy.internal"} }, "limits.trusted_proxies[1]", "not a CIDR or IP"},
		{"max_keys out of range", func(l *Limits) { l.MaxKeys = -1 }, "limits.max_keys", "out of range"},
		{"negative budget units", func(l *Limits) { l.Budgets.PerTenant.Units = -1 }, "limits.budgets.per_tenant.units", "0 to turn the budget off"},
		{"a budget period beyond a year", func(l *Limits) { l.Budgets.PerSubject = Budget{Units: 10, Period: 9000 * time.Hour} }, "limits.budgets.per_subject.period", "1s to 8784h"},
		{"a budget period of fractional seconds", func(l *Limits) { l.Budgets.PerSubject = Budget{Units: 10, Period: 1500 * time.Millisecond} }, "limits.budgets.per_subject.period", "whole seconds"},
		{"a negative cost", func(l *Limits) { l.Budgets.Costs = map[string]int64{"notes__*": -1} }, `limits.budgets.costs["notes__*"]`, "0 (free)"},
		{"a cost with a bad glob", func(l *Limits) { l.Budgets.Costs = map[string]int64{"notes__[": 1} }, `limits.budgets.costs["notes__["]`, "invalid glob"},
		{"negative loop repeats", func(l *Limits) { l.LoopGuard.MaxRepeats = intp(-1) }, "limits.loop_guard.max_repeats", "0 to turn the loop guard off"},
		{"a loop window beyond a day", func(l *Limits) { l.LoopGuard.Window = 25 * time.Hour }, "limits.loop_guard.window", "1ms to 24h"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := valid()
			tc.mutate(&c.Limits)
			err := c.Validate()
			ps, ok := err.(Problems)
			if !ok || len(ps) != 1 {
				t.Fatalf("want exactly one problem, got %v", err)
			}
			if ps[0].Field != tc.field || !strings.Contains(ps[0].Message, tc.msg) {
				t.Fatalf("got %s, want %s: ...%s...", ps[0], tc.field, tc.msg)
			}
			if strings.Contains(ps[0].Message, "s3cret") {
				t.Fatalf("the problem shows the password: %s", ps[0])
			}
		})
	}
}
