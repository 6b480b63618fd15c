package mcp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gatewaystack/gatewaystack/auth"
	"github.com/gatewaystack/gatewaystack/config"
	"github.com/gatewaystack/gatewaystack/internal/jsonscan"
	"github.com/gatewaystack/gatewaystack/limit"
	"github.com/gatewaystack/gatewaystack/policy"
)

// Reason codes of budget and loop-guard refusals.
const (
	reasonBudgetExhausted = "budget_exhausted"
	reasonLoopDetected    = "loop_detected"
)

// Budget is one configured budget (per tenant or per subject).
type Budget struct {
	// Scope is tenant or subject.
	Scope string
	// Rule names the configuration entry, e.g. limits.budgets.per_tenant.
	Rule   string
	Budget limit.Budget
	Store  limit.BudgetStore
}

// Budgets are the budgets tools/call is charged against; a nil budget is
// off.
type Budgets struct {
	PerTenant, PerSubject *Budget
	// Costs are the units of a call by tool-name pattern: the most
	// specific matching pattern decides (policy.Table); default 1.
	Costs *policy.Table[int64]
}

// LoopGuard refuses a subject's identical tools/call (same tool, same
// canonical arguments) beyond its rule for the tool.
type LoopGuard struct {
	// Repeat is the rule of tools no per-tool pattern matches (Max 0: off).
	Repeat limit.Repeat
	// PerTool are the rules by tool-name pattern: the most specific
	// matching pattern decides (policy.Table; nil: none).
	PerTool *policy.Table[ToolRepeat]
	Store   limit.RepeatStore
}

// ToolRepeat is the loop-guard rule of the tools a pattern matches; Off
// exempts them.
type ToolRepeat struct {
	Repeat limit.Repeat
	Off    bool
}

// rule returns the loop-guard rule for tool and its config path (ok false:
// the tool is exempt).
func (lg *LoopGuard) rule(tool string) (r limit.Repeat, name string, ok bool) {
	if t, p, found := lg.PerTool.Match(tool); found {
		return t.Repeat, fmt.Sprintf("limits.loop_guard.per_tool[%q]", p), !t.Off
	}
	return lg.Repeat, "limits.loop_guard", lg.Repeat.Max > 0
}

// buildBudgets builds the budgets (nil when none is enabled).
func buildBudgets(c config.Limits, st stores) (*Budgets, error) {
	cb := c.Budgets
	if !cb.PerTenant.Enabled() && !cb.PerSubject.Enabled() {
		return nil, nil
	}
	out := &Budgets{}
	mk := func(scope, rule string, b config.Budget) (*Budget, error) {
		if !b.Enabled() {
			return nil, nil
		}
		lb := limit.Budget{Units: b.Units, Period: b.Period}
		if err := lb.Validate(); err != nil {
			return nil, fmt.Errorf("%s: %w", rule, err)
		}
		return &Budget{Scope: scope, Rule: rule, Budget: lb, Store: st.budget(rule)}, nil
	}
	var err error
	if out.PerTenant, err = mk(ScopeTenant, "limits.budgets.per_tenant", cb.PerTenant); err != nil {
		return nil, err
	}
	if out.PerSubject, err = mk(ScopeSubject, "limits.budgets.per_subject", cb.PerSubject); err != nil {
		return nil, err
	}
	if len(cb.Costs) > 0 {
		if out.Costs, err = policy.NewTable(cb.Costs); err != nil {
			return nil, fmt.Errorf("limits.budgets.costs: %w", err)
		}
	}
	return out, nil
}

// buildLoopGuard builds the loop guard (nil when off for every tool).
func buildLoopGuard(c config.Limits, st stores) (*LoopGuard, error) {
	if !c.LoopGuard.Enabled() {
		return nil, nil
	}
	lg := &LoopGuard{Store: st.repeat("limits.loop_guard")}
	if n := c.LoopGuard.N(); n > 0 {
		lg.Repeat = limit.Repeat{Max: n, Window: c.LoopGuard.Window}
		if err := lg.Repeat.Validate(); err != nil {
			return nil, fmt.Errorf("limits.loop_guard: %w", err)
		}
	}
	perTool := make(map[string]ToolRepeat, len(c.LoopGuard.PerTool))
	for p, r := range c.LoopGuard.PerTool {
		t := ToolRepeat{Off: r.N() == 0}
		if !t.Off {
			t.Repeat = limit.Repeat{Max: r.N(), Window: r.Window}
			if err := t.Repeat.Validate(); err != nil {
				return nil, fmt.Errorf("limits.loop_guard.per_tool[%q]: %w", p, err)
			}
		}
		perTool[p] = t
	}
	if len(perTool) > 0 {
		var err error
		if lg.PerTool, err = policy.NewTable(perTool); err != nil {
			return nil, fmt.Errorf("limits.loop_guard.per_tool: %w", err)
		}
	}
	return lg, nil
}

// Cost returns what a tools/call of tool costs: the units of the most
// specific matching pattern, else 1.
func (b *Budgets) Cost(tool string) int64 {
	if units, _, ok := b.Costs.Match(tool); ok {
		return units
	}
	return 1
}

// recordsRawArguments reports whether audit.raw_arguments (patterns) asks
// for the arguments of name in its audit events: whether any pattern
// matches it (policy.MatchPattern, the matcher of every pattern table).
func recordsRawArguments(patterns []string, name string) bool {
	return policy.MatchAny(patterns, name)
}

// loopKey identifies a call for the loop guard: subject, tool and the
// SHA-256 of the canonical JSON of the arguments (object keys sorted,
// insignificant whitespace dropped; numbers kept as written), computed once
// per call for the audit event.
func loopKey(subject, tool string, digest [sha256.Size]byte) string {
	return subject + "\x00" + tool + "\x00" + string(digest[:16])
}

// canonicalJSON re-encodes v with sorted keys; input that does not parse is
// returned as it is (it then only matches itself byte for byte).
func canonicalJSON(v json.RawMessage) []byte {
	if len(bytes.TrimSpace(v)) == 0 {
		return []byte("null")
	}
	if out, ok := jsonscan.Canonical(make([]byte, 0, len(v)), v); ok {
		return out
	}
	// What the scanner leaves to encoding/json (repeated names, deep
	// nesting): decode and encode again.
	d := json.NewDecoder(bytes.NewReader(v))
	d.UseNumber()
	var x any
	if d.Decode(&x) != nil {
		return v
	}
	out, err := json.Marshal(x)
	if err != nil {
		return v
	}
	return out
}

// loopDecision applies the loop guard to an authorized tools/call: nil, or
// 429 when the same call (tool and canonical arguments) came too often.
func (g *Gateway) loopDecision(ctx context.Context, st *requestState, id auth.Identity, tool string) *refusal {
	lg := g.o.Limits.LoopGuard
	if lg == nil {
		return nil
	}
	repeat, rule, on := lg.rule(tool)
	if !on {
		return nil
	}
	res, err := lg.Store.Record(ctx, loopKey(id.Subject, tool, st.argsDigest), repeat)
	if err != nil {
		return g.storeDecision(st, rule, err)
	}
	if res.Allowed {
		return nil
	}
	retry := ceilSeconds(res.RetryAfter)
	return &refusal{
		Status: http.StatusTooManyRequests, Code: codeRateLimited, Reason: reasonLoopDetected, Rule: rule, RetryAfter: retry,
		Message: fmt.Sprintf("loop detected: the same call (%s with the same arguments) was made %d times in %s; change the arguments or wait %d s",
			tool, res.Count, shortDuration(repeat.Window), retry),
		Data: map[string]any{
			"reason":     reasonLoopDetected,
			"scope":      ScopeSubject,
			"retryAfter": retry,
			"limit": map[string]any{
				"rule": rule, "max_repeats": repeat.Max, "window": shortDuration(repeat.Window),
			},
		},
	}
}

// budgetDecision charges what (a tool, or a /proxy route) cost units
// against the tenant's and the subject's budgets: nil when both took it,
// else the refusal of the one that did not. The charge is all or nothing:
// when the subject's budget refuses, the tenant's charge is refunded.
func (g *Gateway) budgetDecision(ctx context.Context, st *requestState, id auth.Identity, what string, cost int64) *refusal {
	bs := g.o.Limits.Budgets
	if bs == nil || cost <= 0 {
		return nil
	}
	var charged *Budget
	var chargedKey string
	for _, b := range []*Budget{bs.PerTenant, bs.PerSubject} {
		key := id.Subject
		if b == bs.PerTenant {
			key = id.Tenant
		}
		if b == nil || key == "" {
			continue
		}
		res, err := b.Store.Spend(ctx, key, b.Budget, cost)
		if err == nil && res.Allowed {
			charged, chargedKey = b, key
			continue
		}
		if charged != nil {
			if rerr := charged.Store.Refund(ctx, chargedKey, charged.Budget, cost); rerr != nil {
				g.o.Logger.Warn().Str("request_id", st.event.RequestID).Str("limit", charged.Rule).Err(rerr).Msg("budget refund failed")
			}
		}
		if err != nil {
			if r := g.storeDecision(st, b.Rule, err); r != nil {
				return r
			}
			charged = nil // fail open: nothing more is charged
			continue
		}
		return budgetRefusal(b, res, what, cost)
	}
	if charged != nil {
		st.event.Cost = cost
	}
	return nil
}

// budgetRefusal is a budget's refusal: 429 with Retry-After (when the
// period resets), data {reason, scope, remaining, reset_after, retryAfter,
// cost, limit}.
func budgetRefusal(b *Budget, res limit.BudgetResult, what string, cost int64) *refusal {
	reset := ceilSeconds(res.ResetAfter)
	return &refusal{
		Status: http.StatusTooManyRequests, Code: codeRateLimited, Reason: reasonBudgetExhausted, Rule: b.Rule, RetryAfter: reset,
		Message: fmt.Sprintf("budget exhausted (%s): %s costs %d units and %d of %d remain this period; the budget resets in %d s",
			b.Scope, what, cost, res.Remaining, res.Limit, reset),
		Data: map[string]any{
			"reason":      reasonBudgetExhausted,
			"scope":       b.Scope,
			"remaining":   res.Remaining,
			"reset_after": reset,
			"retryAfter":  reset,
			"cost":        cost,
			"limit": map[string]any{
				"rule": b.Rule, "units": b.Budget.Units, "period": shortDuration(b.Budget.Period),
			},
		},
	}
}

// shortDuration writes d without trailing zero units: 1m, 24h, 1h30m.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
