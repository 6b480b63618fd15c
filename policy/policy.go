// Package policy is the gateway's authorize stage: a deny-by-default table
// from tool-name patterns to the scopes and roles a caller needs. One
// decision function serves tools/list (what a caller may see) and tools/call
// (what a caller may run).
//
// Precedence: when several patterns match a tool, the most specific one
// decides. An exact name beats every glob; between globs, the one with the
// longer literal prefix (the text before its first '*', '?' or '[', an
// escaped character counting as one) wins, then the one with more literal
// characters (wildcards and [...] classes count as none), then the lexically
// smaller pattern, so the outcome never depends on map order. Globs follow
// path.Match syntax, except that '*' and '?' also match '/', so a resource
// pattern such as "files__file:///data/*" covers every file below /data.
//
// Outcomes for a tool with a rule:
//   - all required scopes and (if roles are set) one of the roles present:
//     Allow;
//   - only step-up scopes missing: StepUp — the tool is listed so a model can
//     try it, and a call answers 403 insufficient_scope so the client asks
//     the user for more;
//   - anything else missing (an entitlement scope or a role): Hidden — the
//     tool is not listed and a call looks exactly like an unknown tool.
//
// A tool without a rule is Hidden with reason tool_unknown.
package policy

import (
	"path"
	"slices"
	"strings"

	"github.com/gatewaystack/gatewaystack/auth"
)

// Reason codes of the authorize stage.
const (
	ReasonAllowed            = "allowed"
	ReasonToolUnknown        = "tool_unknown"
	ReasonScopeMissing       = "scope_missing"
	ReasonEntitlementMissing = "entitlement_missing"
	ReasonRoleMissing        = "role_missing"
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
	// Roles, when non-empty, require at least one of them.
	Roles []string
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
}

// Listed reports whether the tool appears in the caller's tools/list.
func (d Decision) Listed() bool { return d.Effect != Hidden }

type entry struct {
	pattern string
	matcher string // pattern as matched (see slashless)
	glob    bool
	prefix  int
	literal int
	rule    Rule
}

// Authorizer decides tool access. It is immutable and safe for concurrent use.
type Authorizer struct {
	exact  map[string]entry
	globs  []entry
	stepUp map[string]bool
	known  map[string]bool
}

// New builds an Authorizer from pattern rules and the step-up scopes (scopes
// a user may grant on demand). Patterns must be valid path.Match globs; the
// config package validates them. The rules are copied: changing them after
// New does not change the Authorizer.
func New(rules map[string]Rule, stepUp, baseline []string) *Authorizer {
	a := &Authorizer{exact: map[string]entry{}, stepUp: map[string]bool{}, known: map[string]bool{}}
	for _, s := range stepUp {
		a.stepUp[s] = true
		a.known[s] = true
	}
	for _, s := range baseline {
		a.known[s] = true
	}
	for p, r := range rules {
		r = Rule{Scopes: slices.Clip(slices.Clone(r.Scopes)), Roles: slices.Clone(r.Roles)}
		for _, s := range r.Scopes {
			a.known[s] = true
		}
		glob, prefix, literal := specificity(p)
		if !glob {
			a.exact[p] = entry{pattern: p, rule: r}
			continue
		}
		a.globs = append(a.globs, entry{pattern: p, matcher: slashless(p), glob: true, prefix: prefix, literal: literal, rule: r})
	}
	slices.SortFunc(a.globs, func(x, y entry) int {
		if x.prefix != y.prefix {
			return y.prefix - x.prefix
		}
		if x.literal != y.literal {
			return y.literal - x.literal
		}
		return strings.Compare(x.pattern, y.pattern)
	})
	return a
}

// specificity reads a path.Match pattern: whether it is a glob (has '*', '?',
// a '[...]' class or a '\' escape), the length of its literal prefix (the
// characters it matches before its first wildcard or class, an escaped
// character counting as one) and its number of literal characters (a class
// and a wildcard count as none).
func specificity(p string) (glob bool, prefix, literal int) {
	inPrefix := true
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '*', '?':
			glob, inPrefix = true, false
		case '[':
			glob, inPrefix = true, false
			// skip the class up to its closing, unescaped ']'
			j := i + 1
			for j < len(p) && p[j] != ']' {
				if p[j] == '\\' {
					j++
				}
				j++
			}
			i = j
		case '\\':
			glob = true
			i++
			literal++
			if inPrefix {
				prefix++
			}
		default:
			literal++
			if inPrefix {
				prefix++
			}
		}
	}
	return glob, prefix, literal
}

// match returns the most specific entry for tool.
func (a *Authorizer) match(tool string) (entry, bool) {
	if e, ok := a.exact[tool]; ok {
		return e, true
	}
	name := slashless(tool)
	for _, e := range a.globs {
		if ok, _ := path.Match(e.matcher, name); ok {
			return e, true
		}
	}
	return entry{}, false
}

// slashless maps '/' to NUL in a pattern or a name, so that path.Match's
// wildcards, which stop at '/', run across it; a literal '/' in a pattern
// still matches only '/'.
func slashless(s string) string {
	if !strings.Contains(s, "/") {
		return s
	}
	return strings.ReplaceAll(s, "/", "\x00")
}

// Decide returns the decision for id on tool (the name the client sees).
func (a *Authorizer) Decide(id auth.Identity, tool string) Decision {
	e, ok := a.match(tool)
	if !ok {
		return Decision{Effect: Hidden, Reason: ReasonToolUnknown}
	}
	// Required is clipped, so a caller appending to it cannot write into
	// the rule; its elements are shared and must be treated as read-only.
	d := Decision{Rule: e.pattern, Required: e.rule.Scopes}
	for _, s := range e.rule.Scopes {
		if !id.HasScope(s) {
			d.Missing = append(d.Missing, s)
		}
	}
	if len(e.rule.Roles) > 0 && !slices.ContainsFunc(e.rule.Roles, id.HasRole) {
		d.Effect, d.Reason = Hidden, ReasonRoleMissing
		return d
	}
	if len(d.Missing) == 0 {
		d.Effect, d.Reason = Allow, ReasonAllowed
		return d
	}
	for _, s := range d.Missing {
		if !a.stepUp[s] {
			d.Effect, d.Reason = Hidden, ReasonEntitlementMissing
			return d
		}
	}
	d.Effect, d.Reason = StepUp, ReasonScopeMissing
	return d
}

// ChallengeScope is the scope of a step-up challenge for d: the tool's
// required scopes followed by the caller's current scopes that this gateway
// knows. The union matters because clients replace their requested scope
// with the challenge's, and must not lose what they already hold.
func (a *Authorizer) ChallengeScope(id auth.Identity, d Decision) string {
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
