// Package policy is the gateway's authorize stage: a deny-by-default table
// from tool-name patterns to the scopes and roles a caller needs. One
// decision function serves tools/list (what a caller may see) and tools/call
// (what a caller may run).
//
// Patterns and precedence. Every table of the gateway that maps names to
// something uses one matcher, Table: policy tools, prompts and resources,
// limits.per_tool, limits.budgets.costs, limits.loop_guard.per_tool,
// audit.raw_arguments and /proxy routes. Patterns follow path.Match
// syntax:
//
//	'*'          any sequence of characters, '/' included
//	'?'          any single character, '/' included
//	'[' ['^'] { range } ']'
//	             a character class (a range is c, \c or lo-hi)
//	c            the character c (c not '*', '?', '\\' or '[')
//	'\\' c       the character c
//
// Unlike path.Match, '*' and '?' also match '/', so a resource pattern such
// as "files__file:///data/*" covers every file below /data; a literal '/'
// still matches only '/'. When several patterns match a name, the most
// specific one decides: an exact name (no '*', '?', '[' or '\\') beats
// every glob; between globs, the one with the longer literal prefix (the
// text before its first '*', '?' or '[', an escaped character counting as
// one) wins, then the one with more literal characters (wildcards and
// [...] classes count as none), then the lexically smaller pattern, so the
// outcome never depends on map order.
//
// A rule is checked in this order; the first failure decides:
//   - roles (when set, one of them): else Hidden, role_missing;
//   - scopes (all of them) and any_scopes (at least one): a missing scope
//     that is not a step-up scope makes the tool Hidden, entitlement_missing;
//   - the CEL condition (when set): false is Hidden, condition_false; an
//     evaluation error (or exceeding CostLimit) is Hidden, condition_error —
//     fail closed;
//   - only step-up scopes missing: StepUp, scope_missing — the tool is listed
//     so a model can try it, and a call answers 403 insufficient_scope so the
//     client asks the user for more;
//   - otherwise Allow, allowed.
//
// Hidden means the tool is not listed and a call looks exactly like an
// unknown tool. A tool without a rule is Hidden with reason tool_unknown.
//
// One function decides list and call: Decide with Action.ArgsKnown false
// (tools/list) evaluates the condition with request.arguments unknown (CEL
// partial evaluation). A condition that is false whatever the arguments hides
// the tool; one that could still hold leaves it listed (Decision.Partial), and
// the call decides for real with the arguments. An empty Action.Upstream is
// likewise unknown.
package policy

import (
	"slices"
	"strings"
	"sync/atomic"

	"github.com/gatewaystack/gatewaystack/auth"
)

// Reason codes of the authorize stage.
const (
	ReasonAllowed            = "allowed"
	ReasonToolUnknown        = "tool_unknown"
	ReasonScopeMissing       = "scope_missing"
	ReasonEntitlementMissing = "entitlement_missing"
	ReasonRoleMissing        = "role_missing"
	ReasonConditionFalse     = "condition_false"
	ReasonConditionError     = "condition_error"
)

// Effect is what a decision means for the caller.
type Effect int

const (
	// Hidden: not listed, and calls answer like an unknown tool.
	Hidden Effect = iota
	// StepUp: listed, and calls answer 403 insufficient_scope.
	StepUp
	// Allow: listed and callable.
	Allow
)

// String names the effect.
func (e Effect) String() string {
	switch e {
	case Allow:
		return "allow"
	case StepUp:
		return "step_up"
	default:
		return "hidden"
	}
}

// Rule says what a caller needs for the tools matching a pattern.
type Rule struct {
	// Scopes are all required.
	Scopes []string
	// AnyScopes, when non-empty, require at least one of them.
	AnyScopes []string
	// Roles, when non-empty, require at least one of them.
	Roles []string
	// When is an optional CEL condition over identity and request (see
	// CompileCondition). One that does not compile fails closed.
	When string
}

// Action is what a caller asks to do: see (list) or use (call) an entry.
type Action struct {
	// Name is the name the client sees (for resources, <upstream>__<uri>).
	Name string
	// Upstream is the owning upstream's name; "" when not known yet.
	Upstream string
	// Arguments is the call's arguments object (JSON), read only when
	// ArgsKnown and the deciding rule has a condition.
	Arguments []byte
	// ArgsKnown is true for a call and false for a listing, where
	// conditions on request.arguments are evaluated with them unknown.
	ArgsKnown bool
}

// Decision is the outcome for one caller and one tool.
type Decision struct {
	Effect Effect
	// Reason is a machine-readable code (see the Reason constants).
	Reason string
	// Rule is the pattern that decided; empty for tool_unknown.
	Rule string
	// Required is the deciding rule's scopes.
	Required []string
	// Missing is the required scopes the caller lacks.
	Missing []string
	// Detail says in words why (which scope, role or condition failed);
	// for explain and logs.
	Detail string
	// Partial is true when the condition could not be decided with what
	// the Action left unknown (arguments or upstream) and may still hold:
	// the tool is listed, and the call must be decided with them known.
	Partial bool
}

// Listed reports whether the tool appears in the caller's tools/list.
func (d Decision) Listed() bool { return d.Effect != Hidden }

// entry is one rule with its compiled condition.
type entry struct {
	rule Rule
	cond *condition
}

// Authorizer decides tool access. It is safe for concurrent use; its table
// is immutable and replaced whole, atomically, by Replace (policy reload).
type Authorizer struct {
	cur atomic.Pointer[table]
}

// Replace makes a decide as b does from now on, atomically: a decision in
// flight finishes under the old table, every later one uses b's.
func (a *Authorizer) Replace(b *Authorizer) { a.cur.Store(b.cur.Load()) }

// table is one immutable policy table.
type table struct {
	rules  *Table[entry]
	stepUp map[string]bool
	known  map[string]bool
}

// New builds an Authorizer from pattern rules and the step-up scopes (scopes
// a user may grant on demand). Patterns must be valid (ValidatePattern; the
// config package validates them): one that is not matches nothing. The
// rules are copied: changing them after New does not change the Authorizer.
func New(rules map[string]Rule, stepUp, baseline []string) *Authorizer {
	a := &table{stepUp: map[string]bool{}, known: map[string]bool{}}
	for _, s := range stepUp {
		a.stepUp[s] = true
		a.known[s] = true
	}
	for _, s := range baseline {
		a.known[s] = true
	}
	entries := make(map[string]entry, len(rules))
	for p, r := range rules {
		r = Rule{Scopes: slices.Clip(slices.Clone(r.Scopes)), AnyScopes: slices.Clone(r.AnyScopes), Roles: slices.Clone(r.Roles), When: r.When}
		for _, s := range r.Scopes {
			a.known[s] = true
		}
		for _, s := range r.AnyScopes {
			a.known[s] = true
		}
		var cond *condition
		if r.When != "" {
			cond = newCondition(r.When)
		}
		entries[p] = entry{rule: r, cond: cond}
	}
	a.rules, _ = compileTable(entries)
	au := &Authorizer{}
	au.cur.Store(a)
	return au
}

// Decide returns the decision for id on act: the one decision function of
// listing (act.ArgsKnown false) and calling (true).
func (au *Authorizer) Decide(id auth.Identity, act Action) Decision {
	a := au.cur.Load()
	e, pattern, ok := a.rules.Match(act.Name)
	if !ok {
		return Decision{Effect: Hidden, Reason: ReasonToolUnknown, Detail: "no policy pattern matches " + act.Name}
	}
	return a.decide(pattern, &e, id, act)
}

// Patterns returns the table's patterns, most specific first (exact names,
// then globs in precedence order).
func (au *Authorizer) Patterns() []string {
	return au.cur.Load().rules.Patterns()
}

// DecidePattern decides act under the rule of pattern itself, whether or not
// it is the most specific match for act.Name (explain's listing of every
// rule). An unknown pattern is Hidden, tool_unknown.
func (au *Authorizer) DecidePattern(id auth.Identity, pattern string, act Action) Decision {
	a := au.cur.Load()
	if e, ok := a.rules.Lookup(pattern); ok {
		return a.decide(pattern, &e, id, act)
	}
	return Decision{Effect: Hidden, Reason: ReasonToolUnknown, Detail: "no policy pattern " + pattern}
}

func (a *table) decide(pattern string, e *entry, id auth.Identity, act Action) Decision {
	// Required is clipped, so a caller appending to it cannot write into
	// the rule; its elements are shared and must be treated as read-only.
	d := Decision{Rule: pattern, Required: e.rule.Scopes}
	for _, s := range e.rule.Scopes {
		if !id.HasScope(s) {
			d.Missing = append(d.Missing, s)
		}
	}
	if len(e.rule.Roles) > 0 && !slices.ContainsFunc(e.rule.Roles, id.HasRole) {
		d.Effect, d.Reason = Hidden, ReasonRoleMissing
		d.Detail = "needs one of the roles " + strings.Join(e.rule.Roles, ", ")
		return d
	}
	for _, s := range d.Missing {
		if !a.stepUp[s] {
			d.Effect, d.Reason = Hidden, ReasonEntitlementMissing
			d.Detail = "missing scope " + s
			return d
		}
	}
	if len(e.rule.AnyScopes) > 0 && !slices.ContainsFunc(e.rule.AnyScopes, id.HasScope) {
		i := slices.IndexFunc(e.rule.AnyScopes, func(s string) bool { return a.stepUp[s] })
		if i < 0 {
			d.Effect, d.Reason = Hidden, ReasonEntitlementMissing
			d.Detail = "needs one of the scopes " + strings.Join(e.rule.AnyScopes, ", ")
			return d
		}
		// Step-up can grant one of them: challenge for the first such.
		s := e.rule.AnyScopes[i]
		d.Required = append(d.Required, s)
		d.Missing = append(d.Missing, s)
	}
	if e.cond != nil {
		out, detail := e.cond.eval(id, act)
		switch out {
		case condFalse:
			d.Effect, d.Reason, d.Detail = Hidden, ReasonConditionFalse, detail
			return d
		case condError:
			d.Effect, d.Reason, d.Detail = Hidden, ReasonConditionError, detail
			return d
		case condUnknown:
			d.Partial, d.Detail = true, detail
		}
	}
	if len(d.Missing) == 0 {
		d.Effect, d.Reason = Allow, ReasonAllowed
		return d
	}
	d.Effect, d.Reason = StepUp, ReasonScopeMissing
	if d.Detail == "" {
		d.Detail = "missing step-up scope " + strings.Join(d.Missing, ", ")
	}
	return d
}

// ChallengeScope is the scope of a step-up challenge for d: the tool's
// required scopes followed by the caller's current scopes that this gateway
// knows. The union matters because clients replace their requested scope
// with the challenge's, and must not lose what they already hold.
func (au *Authorizer) ChallengeScope(id auth.Identity, d Decision) string {
	a := au.cur.Load()
	out := make([]string, 0, len(d.Required)+len(id.Scopes))
	for _, s := range d.Required {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, s := range id.Scopes {
		if a.known[s] && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return strings.Join(out, " ")
}
