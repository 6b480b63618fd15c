package mcp_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatewaystack/gatewaystack/config"
)

// budgetRefusal is the data of a budget_exhausted or loop_detected error.
type budgetRefusal struct {
	Reason     string `json:"reason"`
	Scope      string `json:"scope"`
	Remaining  int    `json:"remaining"`
	ResetAfter int    `json:"reset_after"`
	RetryAfter int    `json:"retryAfter"`
	Cost       int    `json:"cost"`
	Limit      struct {
		Rule       string `json:"rule"`
		Units      int    `json:"units"`
		Period     string `json:"period"`
		MaxRepeats int    `json:"max_repeats"`
		Window     string `json:"window"`
	} `json:"limit"`
}

// wantRefused asserts a -32029 refusal with reason and rule, its audit line,
// and returns its message and data.
func wantRefused(t *testing.T, g *gateway, r response, reason, rule string) (string, budgetRefusal) {
	t.Helper()
	if r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429: %s", r.StatusCode, r.body)
	}
	code, msg, raw := r.rpcError(t)
	if code != -32029 {
		t.Fatalf("JSON-RPC code %d, want -32029", code)
	}
	var d budgetRefusal
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("data %s: %v", raw, err)
	}
	if d.Reason != reason || d.Limit.Rule != rule || d.RetryAfter < 1 {
		t.Fatalf("data %+v, want reason %s, rule %s, retryAfter ≥ 1", d, reason, rule)
	}
	if ra := r.Header.Get("Retry-After"); ra != strconv.Itoa(d.RetryAfter) {
		t.Fatalf("Retry-After %q, data.retryAfter %d", ra, d.RetryAfter)
	}
	lines := g.audit.forRequest(t, r.Header.Get("X-Request-Id"))
	if len(lines) != 1 {
		t.Fatalf("audit lines %v, want one", lines)
	}
	if l := lines[0]; l["decision"] != "limited" || l["reason"] != reason || l["status"] != float64(429) || l["rule"] != rule || l["tool"] == nil {
		t.Fatalf("audit %v, want decision limited, reason %s, status 429, rule %s, the tool", l, reason, rule)
	}
	return msg, d
}

func budgeted(set func(b *config.Budgets)) gatewayOptions {
	return limited(func(l *config.Limits) {
		l.LoopGuard.MaxRepeats = intp(0)
		set(&l.Budgets)
	})
}

func TestTenantBudgetSpansSubjects(t *testing.T) {
	t.Parallel()
	g := newGateway(t, budgeted(func(b *config.Budgets) {
		b.PerTenant = config.Budget{Units: 4, Period: 24 * time.Hour}
		b.PerSubject = config.Budget{Units: 100, Period: 24 * time.Hour}
	}))
	alice, bob := g.minter.token("alice", baselineScope), g.minter.token("bob", baselineScope)
	for i := range 2 {
		g.modernCall(t, alice, "rec__echo", map[string]any{"i": i}).result(t)
		g.modernCall(t, bob, "rec__echo", map[string]any{"i": i}).result(t)
	}
	_, d := wantRefused(t, g, g.modernCall(t, alice, "rec__echo", map[string]any{"i": 9}), "budget_exhausted", "limits.budgets.per_tenant")
	if d.Scope != "tenant" || d.Remaining != 0 || d.ResetAfter < 1 || d.ResetAfter > 86400 || d.ResetAfter != d.RetryAfter || d.Limit.Units != 4 || d.Limit.Period != "24h" {
		t.Errorf("data %+v, want scope tenant, 0 remaining, reset within a day, 4 units per 24h", d)
	}
	// Another tenant has its own budget.
	c := g.minter.claims("dave", baselineScope)
	c["org_id"] = "globex"
	g.modernCall(t, g.minter.sign(c), "rec__echo", nil).result(t)
	if n := g.upstream.toolRunsNamed("echo"); n != 5 {
		t.Errorf("the upstream ran echo %d times, want 5: a refused call must not reach it", n)
	}
}

func TestSubjectBudgetWithToolCosts(t *testing.T) {
	t.Parallel()
	g := newGateway(t, budgeted(func(b *config.Budgets) {
		b.PerTenant = config.Budget{Units: 1000, Period: time.Hour}
		b.PerSubject = config.Budget{Units: 7, Period: time.Hour}
		b.Costs = map[string]int64{"rec__*": 2, "rec__fancy": 5, "notes__*": 0}
	}))
	alice := g.minter.token("alice", baselineScope)
	g.modernCall(t, alice, "rec__fancy", nil).result(t) // 5: 2 left
	msg, d := wantRefused(t, g, g.modernCall(t, alice, "rec__fancy", nil), "budget_exhausted", "limits.budgets.per_subject")
	if d.Scope != "subject" || d.Remaining != 2 || d.Cost != 5 || d.Limit.Period != "1h" {
		t.Errorf("data %+v, want scope subject, 2 remaining, cost 5", d)
	}
	if !strings.Contains(msg, "costs 5 units") || !strings.Contains(msg, "2 of 7 remain") {
		t.Errorf("message %q does not say what the call costs and what remains", msg)
	}
	g.modernCall(t, alice, "rec__echo", nil).result(t) // the glob's 2 fit exactly
	wantRefused(t, g, g.modernCall(t, alice, "rec__echo", map[string]any{"x": 1}), "budget_exhausted", "limits.budgets.per_subject")
	// A free tool is never refused by the budget.
	for i := range 3 {
		g.modernCall(t, alice, "notes__list_notes", map[string]any{"i": i}).result(t)
	}
	// The subject's refusal charged the tenant nothing: bob's calls all fit
	// in what the tenant has left (1000 − 7).
	g.modernCall(t, g.minter.token("bob", baselineScope), "rec__fancy", nil).result(t)
	if n := g.upstream.toolRunsNamed("fancy"); n != 2 {
		t.Errorf("the upstream ran fancy %d times, want 2", n)
	}
	if n := g.upstream.toolRunsNamed("echo"); n != 1 {
		t.Errorf("the upstream ran echo %d times, want 1", n)
	}
}

// Calls refused by policy or by a rate limit are not charged.
func TestRefusedCallsAreNotCharged(t *testing.T) {
	t.Parallel()
	g := newGateway(t, limited(func(l *config.Limits) {
		l.LoopGuard.MaxRepeats = intp(0)
		l.PerTool = map[string]config.Rate{"rec__echo": {Requests: intp(1), Window: time.Hour, Burst: 1}}
		l.Budgets.PerSubject = config.Budget{Units: 2, Period: time.Hour}
	}))
	alice := g.minter.token("alice", baselineScope)
	g.modernCall(t, alice, "rec__echo", nil).result(t)
	for range 3 {
		wantLimited(t, g, g.modernCall(t, alice, "rec__echo", nil), "tool", `limits.per_tool["rec__echo"]`)
	}
	for range 3 { // step-up required: refused by policy
		if r := g.modernCall(t, alice, "rec__write_thing", nil); r.StatusCode != http.StatusForbidden {
			t.Fatalf("rec__write_thing: status %d, want 403", r.StatusCode)
		}
	}
	g.modernCall(t, alice, "rec__fancy", nil).result(t) // the second unit
	wantRefused(t, g, g.modernCall(t, alice, "rec__fancy", nil), "budget_exhausted", "limits.budgets.per_subject")
}

func TestLoopGuard(t *testing.T) {
	t.Parallel()
	g := newGateway(t, limited(func(l *config.Limits) {
		l.LoopGuard = config.LoopGuard{MaxRepeats: intp(3), Window: time.Minute}
	}))
	alice, bob := g.minter.token("alice", baselineScope), g.minter.token("bob", baselineScope)
	args := map[string]any{"text": "hi", "n": 1}
	for range 3 {
		g.modernCall(t, alice, "rec__echo", args).result(t)
	}
	msg, d := wantRefused(t, g, g.modernCall(t, alice, "rec__echo", args), "loop_detected", "limits.loop_guard")
	if d.Scope != "subject" || d.Limit.MaxRepeats != 3 || d.Limit.Window != "1m" || d.RetryAfter > 60 {
		t.Errorf("data %+v, want scope subject, 3 per 1m, retry within a minute", d)
	}
	if !strings.Contains(msg, "made 3 times in 1m") || !strings.Contains(msg, "change the arguments or wait") {
		t.Errorf("message %q does not tell the caller what to do", msg)
	}
	// The same arguments written differently (key order, spacing) are the
	// same call.
	h, body := g.modernRequest(alice, "rec__echo", args)
	body = []byte(strings.Replace(string(body), `"n":1,"text":"hi"`, `"text" : "hi", "n" : 1`, 1))
	if !strings.Contains(string(body), `"text" : "hi"`) {
		t.Fatalf("request body %s: could not reorder the arguments", body)
	}
	wantRefused(t, g, do(t, g.client, http.MethodPost, g.MCP, h, body), "loop_detected", "limits.loop_guard")
	// Different arguments, another tool or another subject are not loops.
	for i := range 5 {
		g.modernCall(t, alice, "rec__echo", map[string]any{"text": "hi", "n": i + 2}).result(t)
	}
	g.modernCall(t, alice, "rec__fancy", args).result(t)
	g.modernCall(t, bob, "rec__echo", args).result(t)
	if n := g.upstream.toolRunsNamed("echo"); n != 3+5+1 {
		t.Errorf("the upstream ran echo %d times, want 9: refused calls must not reach it", n)
	}
}

// The loop guard is on by default: 5 identical calls per minute.
func TestLoopGuardIsOnByDefault(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{})
	alice := g.minter.token("alice", baselineScope)
	for range 5 {
		g.modernCall(t, alice, "rec__echo", nil).result(t)
	}
	wantRefused(t, g, g.modernCall(t, alice, "rec__echo", nil), "loop_detected", "limits.loop_guard")
}
