package policy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/cel-go/cel"

	"github.com/gatewaystack/gatewaystack/auth"
)

// fuzzIdentity is the fixed caller every fuzzed condition is evaluated for:
// it holds the scope the fuzzed rule requires, so the condition alone
// decides.
func fuzzIdentity() auth.Identity {
	return auth.Identity{
		Subject: "alice",
		Tenant:  "acme",
		Roles:   []string{"finance-analyst", "admin"},
		Scopes:  []string{"tool:read", "tool:write"},
		Claims: map[string]any{
			"sub": "alice", "org_id": "acme", "plan": "pro", "level": float64(3), "big": 1e308,
			"neg": float64(-9007199254740993), "flag": true, "none": nil,
			"groups": []any{"a", "b", float64(1), nil, map[string]any{"x": "y"}},
			"nested": map[string]any{"a": map[string]any{"b": []any{"c"}}},
		},
	}
}

// fuzzArguments is the fixed tools/call arguments object.
const fuzzArguments = `{"account_id":"acme-42","amount":5000,"big":1e308,"tiny":-1e-308,"int":9223372036854775807,` +
	`"list":[1,"two",null,true,{"k":[]}],"obj":{"a":{"b":{"c":"d"}}},"empty":{},"s":"caf\u00e9 \u0000 \ud83d\ude00"}`

// conditionSeeds are hand-written attack conditions: valid ones, cost bombs,
// deep nesting, huge numbers, overflow, odd encodings and syntax errors.
func conditionSeeds() []string {
	nest := func(open, close string, n int) string {
		return strings.Repeat(open, n) + "true" + strings.Repeat(close, n)
	}
	ten := "[1,2,3,4,5,6,7,8,9,10]"
	return []string{
		`"finance-analyst" in identity.roles`,
		`identity.claims["plan"] in ["pro", "enterprise"]`,
		`request.arguments.account_id.startsWith(identity.tenant + "-")`,
		`request.arguments.amount < 1000`,
		`request.tool == "finance__report" && request.upstream == "finance"`,
		`identity.sub == "alice" && identity.tenant == "acme" && "tool:read" in identity.scopes`,
		`identity.claims["level"] >= 3`,
		`size(request.arguments) == 0`,
		`has(request.arguments.obj.a.b.c)`,
		`request.arguments.list.exists(x, x == "two")`,
		`identity.claims.groups.all(g, type(g) == string)`,
		`identity.claims.exists_one(k, k == "sub")`,
		`identity.claims.nested.a.b[0] == "c"`,
		`request.arguments.s.matches("^caf")`,
		`identity.roles.exists(r, r.matches("(a*)*b"))`,
		// cost bombs
		ten + `.all(a, ` + ten + `.all(b, ` + ten + `.all(c, ` + ten + `.all(d, ` + ten + `.all(e, a+b+c+d+e > 0)))))`,
		ten + `.map(a, ` + ten + `.map(b, ` + ten + `.map(c, ` + ten + `.map(d, string(a) + string(b) + string(c) + string(d))))).size() > 0`,
		`[` + strings.Repeat(`"aaaaaaaaaaaaaaaa",`, 200) + `"a"].map(x, x + x + x + x).all(y, y.size() > 0)`,
		`request.arguments.s + request.arguments.s + request.arguments.s == ""`,
		// deep nesting
		nest("(", ")", 100),
		nest("(", ")", 1000),
		nest("!", "", 1001),
		nest("[", "][0]", 60),
		strings.Repeat("true && ", 500) + "true",
		strings.Repeat("1 + ", 1000) + "1 == 0",
		// numbers
		`9223372036854775807 + 1 > 0`,
		`-9223372036854775808 - 1 < 0`,
		`-(-9223372036854775808) > 0`,
		`18446744073709551615u + 1u > 0u`,
		`18446744073709551616 > 0`,
		`1e309 > 0.0`,
		`0x7fffffffffffffff * 2 > 0`,
		`1 / 0 == 0`,
		`1 % 0 == 0`,
		`int(1e308) > 0`,
		`uint(-1) > 0u`,
		`double("NaN") != double("NaN")`,
		`int("99999999999999999999") > 0`,
		`request.arguments.int + 1 > 0`,
		`identity.claims.big * 10.0 > 0.0`,
		// time and types
		`timestamp("9999-12-31T23:59:59Z") > timestamp("0001-01-01T00:00:00Z")`,
		`duration("1000000000000h") > duration("1s")`,
		`timestamp("2030-01-01T00:00:00Z") + duration("87600000h") > timestamp("2030-01-01T00:00:00Z")`,
		`type(identity) == map`,
		`dyn(identity.claims.none) == null`,
		`b"\xff" == b"\xff"`,
		// not bool, errors, syntax
		`1`,
		`"true"`,
		`identity`,
		`null`,
		``,
		`   `,
		`// only a comment`,
		"true // trailing comment\n",
		"true\n&&\nfalse",
		"identity.roles.contains(",
		"identity.)",
		"\"unterminated",
		"'\\xff' == 'x'",
		"\xff\xfe",
		"true\x00",
		"identity.claims[\"\xff\"] == 1",
		`__proto__ == 1`,
		`request.arguments["__proto__"] == 1`,
		`identity.claims.undefined_claim == "x"`,
		`request.unknown == 1`,
		`undeclared == 1`,
		`identity.claims.sub.size() > 0 ? true : 1`,
		`[identity.claims.map(k, k)][0].size() > 0`,
		`{1: 2, "a": true}.size() == 2`,
		`{"a": 1, "a": 2}.size() == 1`,
		`cel.bind(x, 1, x == 1)`,
	}
}

// FuzzCompileCondition compiles an arbitrary `when` condition through the
// entry point the config loader uses (CompileCondition) and the one the
// authorizer uses (New with a Rule's When), and evaluates what compiles
// against a fixed identity and arguments. Properties: no panic, in
// compiling or in evaluating (cel-go's evaluator is also called directly,
// without the authorizer's recover); the two entry points agree on
// whether a condition compiles; a compile error is a *ConditionError with a
// position inside the expression and a message, and such a condition fails
// closed (hidden, condition_error) for calls and listings alike; an
// evaluation that succeeds stays within CostLimit, and evaluation takes
// bounded time; a decision is one the rule can produce (the caller holds
// the rule's scope: allowed, condition_false or condition_error), and a
// refusal says why.
func FuzzCompileCondition(f *testing.F) {
	for _, s := range conditionSeeds() {
		f.Add(s)
	}
	id := fuzzIdentity()
	f.Fuzz(func(t *testing.T, expr string) {
		// A condition that never finishes compiling or evaluating crashes
		// the worker with the input, so the fuzzer records it.
		watchdog := time.AfterFunc(30*time.Second, func() {
			panic(fmt.Sprintf("condition %s did not compile and evaluate within 30s", brief(expr)))
		})
		defer watchdog.Stop()
		cerr := CompileCondition(expr)
		prg, err := compile(expr)
		if (cerr == nil) != (err == nil) {
			t.Fatalf("CompileCondition(%s) = %v but compile = %v", brief(expr), cerr, err)
		}
		az := New(map[string]Rule{"fin__*": {Scopes: []string{"tool:read"}, When: expr}}, nil, nil)
		call := Action{Name: "fin__pay", Upstream: "fin", Arguments: []byte(fuzzArguments), ArgsKnown: true}
		listing := Action{Name: "fin__pay"}
		if cerr != nil {
			var ce *ConditionError
			if !errors.As(cerr, &ce) {
				t.Fatalf("CompileCondition(%s): %v (%T) is not a *ConditionError", brief(expr), cerr, cerr)
			}
			if ce.Message == "" || ce.Line < 1 || ce.Column < 1 || ce.Line > strings.Count(expr, "\n")+1 {
				t.Fatalf("CompileCondition(%s): position outside the expression (1-based line and column) or no message: %+v", brief(expr), ce)
			}
			if expr == "" {
				return // an empty When is no condition at all
			}
			for _, act := range []Action{call, listing} {
				d := az.Decide(id, act)
				if d.Effect != Hidden || d.Reason != ReasonConditionError || d.Detail == "" || d.Partial {
					t.Fatalf("condition %s does not compile (%v) but %s (arguments known: %v) is decided %s/%s partial=%v (%s)",
						brief(expr), cerr, act.Name, act.ArgsKnown, d.Effect, d.Reason, d.Partial, d.Detail)
				}
			}
			return
		}

		// cel-go directly: no recover, cost tracked.
		args, err := decodeArguments([]byte(fuzzArguments))
		if err != nil {
			t.Fatal(err)
		}
		vars := map[string]any{
			"identity": identityVars(id),
			"request":  map[string]any{"tool": call.Name, "upstream": call.Upstream, "arguments": args},
		}
		partial, err := cel.PartialVars(map[string]any{"identity": identityVars(id), "request": map[string]any{"tool": listing.Name}},
			unknownArguments, unknownUpstream)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range []any{vars, partial} {
			start := time.Now()
			v, det, err := evalNoRecover(t, expr, prg, in)
			if el := time.Since(start); el > 10*time.Second {
				t.Fatalf("condition %s took %v to evaluate", brief(expr), el)
			}
			if err == nil {
				if c := det.ActualCost(); c == nil || *c > CostLimit {
					t.Fatalf("condition %s evaluated to %v at cost %v, over the limit %d", brief(expr), v, c, CostLimit)
				}
			}
		}

		// The authorizer.
		for _, act := range []Action{call, listing} {
			d := az.Decide(id, act)
			switch {
			case d.Effect == Allow && d.Reason == ReasonAllowed:
			case d.Effect == Hidden && (d.Reason == ReasonConditionFalse || d.Reason == ReasonConditionError):
				if d.Detail == "" {
					t.Fatalf("condition %s: %s (arguments known: %v) is refused without a detail", brief(expr), act.Name, act.ArgsKnown)
				}
			default:
				t.Fatalf("condition %s: %s (arguments known: %v) is decided %s/%s (%s)", brief(expr), act.Name, act.ArgsKnown, d.Effect, d.Reason, d.Detail)
			}
			if d.Partial && act.ArgsKnown {
				t.Fatalf("condition %s: a call with arguments and upstream known is decided partially", brief(expr))
			}
			if d.Rule != "fin__*" {
				t.Fatalf("condition %s: decided by rule %q", brief(expr), d.Rule)
			}
		}
	})
}

// evalNoRecover runs prg; a panic in cel-go fails the test with the
// condition (the authorizer would turn it into condition_error, but it is
// still a crash to report).
func evalNoRecover(t *testing.T, expr string, prg cel.Program, in any) (v any, det *cel.EvalDetails, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("condition %s: cel-go panicked in evaluation: %v", brief(expr), r)
		}
	}()
	return prg.Eval(in)
}

// brief quotes s for a failure message, cut to 120 bytes.
func brief(s string) string {
	if len(s) <= 120 {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q…(%d bytes)", s[:120], len(s))
}
