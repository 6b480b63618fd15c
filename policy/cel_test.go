package policy

import (
	"errors"
	"strings"
	"testing"

	"github.com/gatewaystack/gatewaystack/auth"
)

// analyst is a tenant member with claims, roles and scopes.
func analyst(roles ...string) auth.Identity {
	return auth.Identity{
		Subject: "alice",
		Tenant:  "acme",
		Roles:   roles,
		Scopes:  []string{"tool:read"},
		Claims:  map[string]any{"sub": "alice", "org_id": "acme", "plan": "pro", "level": float64(3)},
	}
}

func call(name, args string) Action {
	return Action{Name: name, Upstream: "finance", Arguments: []byte(args), ArgsKnown: true}
}

func list(name string) Action { return Action{Name: name, Upstream: "finance"} }

func TestConditionsFromTheIssueDecideCalls(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		when   string
		who    auth.Identity
		act    Action
		effect Effect
		reason string
	}{
		{"a role condition allows a finance analyst", `"finance-analyst" in identity.roles`, analyst("finance-analyst"), call("finance__report", `{}`), Allow, ReasonAllowed},
		{"a role condition hides the tool from others", `"finance-analyst" in identity.roles`, analyst("sales"), call("finance__report", `{}`), Hidden, ReasonConditionFalse},
		{"a claim condition allows a listed plan", `identity.claims["plan"] in ["pro", "enterprise"]`, analyst(), call("finance__report", `{}`), Allow, ReasonAllowed},
		{"a claim condition refuses another plan", `identity.claims["plan"] in ["enterprise"]`, analyst(), call("finance__report", `{}`), Hidden, ReasonConditionFalse},
		{"an argument condition allows the caller's own tenant", `request.arguments.account_id.startsWith(identity.tenant + "-")`, analyst(), call("finance__get_account", `{"account_id":"acme-42"}`), Allow, ReasonAllowed},
		{"an argument condition refuses another tenant's account", `request.arguments.account_id.startsWith(identity.tenant + "-")`, analyst(), call("finance__get_account", `{"account_id":"globex-7"}`), Hidden, ReasonConditionFalse},
		{"a missing argument fails closed", `request.arguments.account_id.startsWith(identity.tenant + "-")`, analyst(), call("finance__get_account", `{}`), Hidden, ReasonConditionError},
		{"arguments that are not an object fail closed", `request.arguments.account_id == "x"`, analyst(), call("finance__get_account", `[1,2]`), Hidden, ReasonConditionError},
		{"absent arguments are an empty object", `size(request.arguments) == 0`, analyst(), call("finance__get_account", ``), Allow, ReasonAllowed},
		{"a missing claim fails closed", `identity.claims["department"] == "finance"`, analyst(), call("finance__report", `{}`), Hidden, ReasonConditionError},
		{"a JSON number compares with an int literal", `identity.claims["level"] >= 3`, analyst(), call("finance__report", `{}`), Allow, ReasonAllowed},
		{"request.tool and request.upstream are readable", `request.tool == "finance__report" && request.upstream == "finance"`, analyst(), call("finance__report", `{}`), Allow, ReasonAllowed},
		{"identity.sub, tenant and scopes are readable", `identity.sub == "alice" && identity.tenant == "acme" && "tool:read" in identity.scopes`, analyst(), call("finance__report", `{}`), Allow, ReasonAllowed},
		{"an unbounded computation exceeds the cost limit and fails closed", `[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, [1,2,3,4,5,6,7,8,9,10].all(e, a+b+c+d+e > 0)))))`, analyst(), call("finance__report", `{}`), Hidden, ReasonConditionError},
		{"a condition that does not compile fails closed", `identity.roles.contains(`, analyst(), call("finance__report", `{}`), Hidden, ReasonConditionError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := New(map[string]Rule{"finance__*": {Scopes: []string{"tool:read"}, When: tt.when}}, nil, nil)
			d := a.Decide(tt.who, tt.act)
			if d.Effect != tt.effect || d.Reason != tt.reason || d.Rule != "finance__*" {
				t.Fatalf("got %s/%s rule %q (%s), want %s/%s", d.Effect, d.Reason, d.Rule, d.Detail, tt.effect, tt.reason)
			}
			if d.Effect != Allow && d.Detail == "" {
				t.Fatal("a refusal must say why in Detail")
			}
			if d.Partial {
				t.Fatal("a call with arguments and upstream known is never partial")
			}
		})
	}
}

func TestListTimeUsesPartialEvaluation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		when    string
		who     auth.Identity
		listed  bool
		partial bool
		reason  string
	}{
		{"a condition on arguments that could hold lists the tool", `request.arguments.account_id.startsWith(identity.tenant + "-")`, analyst(), true, true, ReasonAllowed},
		{"a condition false whatever the arguments hides the tool", `"finance-analyst" in identity.roles && request.arguments.amount < 100`, analyst("sales"), false, false, ReasonConditionFalse},
		{"identity part true, arguments unknown: listed", `"finance-analyst" in identity.roles && request.arguments.amount < 100`, analyst("finance-analyst"), true, true, ReasonAllowed},
		{"true whatever the arguments: listed and decided", `"finance-analyst" in identity.roles || request.arguments.amount < 100`, analyst("finance-analyst"), true, false, ReasonAllowed},
		{"a condition without arguments is decided at list time", `identity.claims["plan"] in ["enterprise"]`, analyst(), false, false, ReasonConditionFalse},
		{"an erroring condition hides the tool at list time", `identity.claims["department"] == "finance"`, analyst(), false, false, ReasonConditionError},
		// CEL: error && unknown is unknown; the call then fails closed.
		{"an error beside an unknown argument is left to the call", `identity.claims["department"] == "finance" && request.arguments.x == 1`, analyst(), true, true, ReasonAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := New(map[string]Rule{"finance__*": {When: tt.when}}, nil, nil)
			d := a.Decide(tt.who, list("finance__get_account"))
			if d.Listed() != tt.listed || d.Partial != tt.partial || d.Reason != tt.reason {
				t.Fatalf("got listed=%v partial=%v reason=%s (%s), want listed=%v partial=%v reason=%s",
					d.Listed(), d.Partial, d.Reason, d.Detail, tt.listed, tt.partial, tt.reason)
			}
		})
	}
}

func TestUnknownUpstreamIsPartialUntilResolved(t *testing.T) {
	t.Parallel()
	a := New(map[string]Rule{"*": {When: `request.upstream == "finance"`}}, nil, nil)
	act := Action{Name: "get_account", ArgsKnown: true}
	if d := a.Decide(analyst(), act); d.Effect != Allow || !d.Partial {
		t.Fatalf("before resolving: got %s partial=%v, want a partial allow", d.Effect, d.Partial)
	}
	act.Upstream = "crm"
	if d := a.Decide(analyst(), act); d.Effect != Hidden || d.Reason != ReasonConditionFalse {
		t.Fatalf("resolved to crm: got %s/%s, want hidden/condition_false", d.Effect, d.Reason)
	}
}

func TestConditionIsCheckedAfterScopesAndBeforeStepUp(t *testing.T) {
	t.Parallel()
	a := New(map[string]Rule{
		"finance__pay": {Scopes: []string{"tool:read", "tool:write"}, When: `request.arguments.amount < 1000`},
	}, []string{"tool:write"}, nil)
	if d := a.Decide(analyst(), call("finance__pay", `{"amount": 5000}`)); d.Effect != Hidden || d.Reason != ReasonConditionFalse {
		t.Fatalf("false condition with a step-up scope missing: got %s/%s, want hidden/condition_false", d.Effect, d.Reason)
	}
	d := a.Decide(analyst(), call("finance__pay", `{"amount": 5}`))
	if d.Effect != StepUp || d.Reason != ReasonScopeMissing || !strings.Contains(d.Detail, "tool:write") {
		t.Fatalf("true condition with a step-up scope missing: got %s/%s (%s), want step_up naming tool:write", d.Effect, d.Reason, d.Detail)
	}
}

func TestAnyScopesNeedsAtLeastOne(t *testing.T) {
	t.Parallel()
	a := New(map[string]Rule{
		"crm__export":  {AnyScopes: []string{"crm:export", "crm:admin"}},
		"crm__promote": {Scopes: []string{"tool:read"}, AnyScopes: []string{"crm:admin", "tool:write"}},
	}, []string{"tool:write"}, nil)
	who := func(scopes ...string) auth.Identity { return auth.Identity{Subject: "bob", Scopes: scopes} }
	tests := []struct {
		name   string
		who    auth.Identity
		tool   string
		effect Effect
		reason string
	}{
		{"one of the scopes allows", who("crm:admin"), "crm__export", Allow, ReasonAllowed},
		{"the other one allows too", who("crm:export"), "crm__export", Allow, ReasonAllowed},
		{"none of them hides the tool", who("tool:read"), "crm__export", Hidden, ReasonEntitlementMissing},
		{"none held but one is step-up: step up", who("tool:read"), "crm__promote", StepUp, ReasonScopeMissing},
		{"all-of scopes still apply", who("crm:admin"), "crm__promote", Hidden, ReasonEntitlementMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := a.Decide(tt.who, Action{Name: tt.tool, ArgsKnown: true})
			if d.Effect != tt.effect || d.Reason != tt.reason {
				t.Fatalf("got %s/%s (%s), want %s/%s", d.Effect, d.Reason, d.Detail, tt.effect, tt.reason)
			}
		})
	}
	d := a.Decide(who("tool:read"), Action{Name: "crm__promote", ArgsKnown: true})
	if got := a.ChallengeScope(who("tool:read"), d); got != "tool:read tool:write" {
		t.Fatalf("the step-up challenge asks for %q, want the rule's scopes plus the step-up any-scope", got)
	}
}

func TestCompileConditionReportsPositions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, expr string
		line, col  int
		msg        string
	}{
		{"a syntax error", `"a" in identity.roles &&`, 1, 25, "Syntax error"},
		{"an undeclared variable", `user.roles.size() > 0`, 1, 1, "undeclared reference to 'user'"},
		{"an unknown function", "identity.sub == \"a\" &&\n  identity.tenant.shout()", 2, 24, "undeclared reference to 'shout'"},
		{"a non-bool result", `identity.sub + "x"`, 1, 1, "must be a bool"},
		{"an empty condition", ` `, 1, 1, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := CompileCondition(tt.expr)
			var ce *ConditionError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *ConditionError", err)
			}
			if ce.Line != tt.line || ce.Column != tt.col || !strings.Contains(ce.Message, tt.msg) {
				t.Fatalf("got %d:%d %q, want %d:%d containing %q", ce.Line, ce.Column, ce.Message, tt.line, tt.col, tt.msg)
			}
		})
	}
	for _, ok := range []string{
		`"finance-analyst" in identity.roles`,
		`identity.claims["plan"] in ["pro", "enterprise"]`,
		`request.arguments.account_id.startsWith(identity.tenant + "-")`,
	} {
		if err := CompileCondition(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

func TestPatternsAndDecidePattern(t *testing.T) {
	t.Parallel()
	a := demo()
	ps := a.Patterns()
	if len(ps) != 6 || ps[0] != "crm__export" || ps[len(ps)-1] != "notes__*" && ps[len(ps)-1] != "crm__*" {
		t.Fatalf("patterns: %v", ps)
	}
	d := a.DecidePattern(id("tool:read"), "notes__*", Action{Name: "notes__*"})
	if d.Effect != Allow || d.Rule != "notes__*" {
		t.Fatalf("got %s rule %q", d.Effect, d.Rule)
	}
	if d := a.DecidePattern(id(), "nope__*", Action{}); d.Reason != ReasonToolUnknown {
		t.Fatalf("unknown pattern: %s", d.Reason)
	}
}

func BenchmarkDecideWithCondition(b *testing.B) {
	a := New(map[string]Rule{"finance__*": {Scopes: []string{"tool:read"}, When: `"finance-analyst" in identity.roles && request.arguments.account_id.startsWith(identity.tenant + "-")`}}, nil, nil)
	who := analyst("finance-analyst")
	act := call("finance__get_account", `{"account_id":"acme-42"}`)
	b.ReportAllocs()
	for b.Loop() {
		if a.Decide(who, act).Effect != Allow {
			b.Fatal("not allowed")
		}
	}
}

func TestReplaceSwapsTheWholeTableAtomically(t *testing.T) {
	t.Parallel()
	a := New(map[string]Rule{"x__*": {Scopes: []string{"tool:read"}}}, nil, nil)
	who := id("tool:read")
	if d := a.Decide(who, Action{Name: "x__a"}); d.Effect != Allow {
		t.Fatalf("before: %s", d.Effect)
	}
	a.Replace(New(map[string]Rule{"y__*": {}}, nil, nil))
	if d := a.Decide(who, Action{Name: "x__a"}); d.Reason != ReasonToolUnknown {
		t.Fatalf("after: the old rule still decides: %s", d.Reason)
	}
	if d := a.Decide(who, Action{Name: "y__b"}); d.Effect != Allow || d.Rule != "y__*" {
		t.Fatalf("after: the new rule does not decide: %s %q", d.Effect, d.Rule)
	}
}
