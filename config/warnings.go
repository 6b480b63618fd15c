package config

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/gatewaystack/gatewaystack/policy"
)

// upstreamSep joins an upstream's name and its tool, prompt or resource
// names (<upstream>__<name>).
const upstreamSep = "__"

// Warnings lists settings that are valid but probably do not do what was
// meant; validate prints them (exiting 0 when they are all it found) and
// serve logs them. Each names the field path and what to do. It decides
// from the configuration alone, without contacting upstreams, and does not
// include AuditWarnings.
//
//   - policy: no tool rule at all, or none that matches a tool of any
//     upstream (nothing is listed or callable); an upstream none of whose
//     tools any rule can match (for MCP and stdio upstreams, whose tools
//     are not listed here, decided from the patterns: no pattern can match
//     a name starting with <upstream>__; for REST upstreams, from their
//     declared tools); a rule that can match no tool, prompt or resource of
//     any upstream, or whose every match is decided by a more specific
//     pattern.
//   - a REST tool whose deciding rule's condition reads an argument that
//     the tool's input_schema does not declare (outside has()).
//   - auth.baseline_scopes empty while the policy needs scopes that are
//     not step-up scopes (TOOL_SCOPES_JSON alone, say): clients are never
//     asked for them.
//   - proxy.default_route without scopes or roles.
func (c *Config) Warnings() Problems {
	var ws Problems
	add := func(field, format string, args ...any) {
		ws = append(ws, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	names := map[string]bool{}
	for _, u := range c.Upstreams {
		names[u.Name] = true
	}
	c.toolRuleWarnings(names, add)
	c.entryRuleWarnings(names, add)
	c.conditionArgumentWarnings(add)
	c.scopeWarnings(add)
	if d := c.Proxy.DefaultRoute; d != nil && c.Proxy.Target != "" && len(d.Scopes) == 0 && len(d.Roles) == 0 {
		add("proxy.default_route", "requires no scope or role, so every caller with a valid token may use every path under /proxy; "+
			"list the scopes it needs, e.g. default_route: {scopes: [proxy:use]} (or %s=proxy:use)", EnvProxyDefaultScopes)
	}
	return ws
}

// validPatterns returns the patterns of table that are valid globs and
// name something of the configured upstreams (Validate reports the
// others), sorted.
func (c *Config) validPatterns(table map[string]ToolRule, names map[string]bool, noun string, uris bool) []string {
	var out []string
	for p := range table {
		if policy.ValidatePattern(p) == nil && patternTargetProblem(c, names, p, noun, uris) == "" {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// exposedRESTName is the name clients see for tool t of REST upstream u.
func exposedRESTName(u Upstream, t RESTTool) string {
	if u.Prefixed() {
		return u.Name + upstreamSep + t.Name
	}
	return t.Name
}

// toolRuleWarnings checks policy.tools against the upstreams.
func (c *Config) toolRuleWarnings(names map[string]bool, add func(field, format string, args ...any)) {
	if len(c.Upstreams) == 0 {
		return // Validate requires an upstream
	}
	if len(c.Policy.Tools) == 0 {
		add("policy.tools", "no rules, so no tool of any upstream is listed or callable (the gateway denies by default); "+
			"add a rule per upstream, e.g. %q: {scopes: [tool:read]}", c.Upstreams[0].Name+upstreamSep+"*")
		return
	}
	patterns := c.validPatterns(c.Policy.Tools, names, "tool", false)
	valid := make(map[string]ToolRule, len(patterns))
	for _, p := range patterns {
		valid[p] = c.Policy.Tools[p]
	}
	table, err := policy.NewTable(valid)
	if err != nil {
		return
	}
	live := map[string]bool{}     // patterns that can decide some tool
	matching := map[string]bool{} // patterns matching a declared tool, deciding or not
	for i, u := range c.Upstreams {
		f := fmt.Sprintf("upstreams[%d]", i)
		switch u.Kind() {
		case "rest":
			var unmatched []int
			for j, t := range u.REST.Tools {
				name := exposedRESTName(u, t)
				for _, p := range patterns {
					if policy.MatchPattern(p, name) {
						matching[p] = true
					}
				}
				if _, p, ok := table.Match(name); ok {
					live[p] = true
				} else {
					unmatched = append(unmatched, j)
				}
			}
			if len(unmatched) > 0 && len(unmatched) == len(u.REST.Tools) {
				add(f, "%s: no policy.tools pattern matches any of its tools, so none is listed or callable; add a rule, e.g. %q: {scopes: [...]}",
					u.Name, exposedRESTName(u, RESTTool{Name: "*"}))
				continue
			}
			for _, j := range unmatched {
				add(fmt.Sprintf("%s.rest.tools[%d]", f, j), "%s: no policy.tools pattern matches it, so it is never listed or callable; add a rule for it",
					exposedRESTName(u, u.REST.Tools[j]))
			}
		case "mcp", "stdio":
			if !u.Prefixed() {
				// Its tools keep their own names, which could be anything.
				for _, p := range patterns {
					live[p] = true
				}
				continue
			}
			prefix := u.Name + upstreamSep
			found := false
			for _, p := range patterns {
				if policy.MayMatchPrefix(p, prefix) {
					live[p], found = true, true
				}
			}
			if !found {
				add(f, "%s: no policy.tools pattern can match its tools (named %s<tool>), so none is listed or callable; add a rule, e.g. %q: {scopes: [tool:read]}",
					u.Name, prefix, prefix+"*")
			}
		}
	}
	if len(live) == 0 && len(patterns) > 0 {
		add("policy.tools", "no rule matches a tool of any upstream, so nothing is listed or callable; write patterns as <upstream>__<tool> or <upstream>__* (upstreams: %s)",
			strings.Join(slices.Sorted(maps.Keys(names)), ", "))
	}
	for _, p := range patterns {
		f := fmt.Sprintf("policy.tools[%q]", p)
		switch {
		case live[p]:
		case matching[p]:
			add(f, "every tool it matches is decided by a more specific pattern, so this rule never decides; remove it, or narrow the patterns that take its tools")
		default:
			add(f, "matches no tool of any upstream (tool names start with %s), so this rule never decides; fix the pattern or remove the rule", toolPrefixes(c))
		}
	}
}

// toolPrefixes describes how the upstreams' tool names start, for
// messages.
func toolPrefixes(c *Config) string {
	var out []string
	for _, u := range c.Upstreams {
		if u.Prefixed() {
			out = append(out, u.Name+upstreamSep)
		}
	}
	if len(out) == 0 {
		return "the upstreams' own names"
	}
	return strings.Join(out, ", ")
}

// entryRuleWarnings checks policy.prompts and policy.resources: only MCP
// and stdio upstreams offer prompts and resources.
func (c *Config) entryRuleWarnings(names map[string]bool, add func(field, format string, args ...any)) {
	var offering []Upstream
	for _, u := range c.Upstreams {
		if k := u.Kind(); k == "mcp" || k == "stdio" {
			offering = append(offering, u)
		}
	}
	for _, t := range []struct {
		field, noun string
		rules       map[string]ToolRule
		uris        bool
	}{
		{"policy.prompts", "prompt", c.Policy.Prompts, false},
		{"policy.resources", "resource", c.Policy.Resources, true},
	} {
		for _, p := range c.validPatterns(t.rules, names, t.noun, t.uris) {
			ok := slices.ContainsFunc(offering, func(u Upstream) bool {
				// Resources are always matched as <upstream>__<uri>; the
				// prompts of an unprefixed upstream keep their own names.
				return (!t.uris && !u.Prefixed()) || policy.MayMatchPrefix(p, u.Name+upstreamSep)
			})
			if !ok {
				var which []string
				for _, u := range offering {
					which = append(which, u.Name)
				}
				list := "none"
				if len(which) > 0 {
					list = strings.Join(which, ", ")
				}
				add(fmt.Sprintf("%s[%q]", t.field, p), "matches no %s of an upstream that can offer %ss (MCP and stdio upstreams: %s; REST upstreams offer tools only), so this rule never decides; fix the pattern or remove the rule",
					t.noun, t.noun, list)
			}
		}
	}
}

var (
	argDot     = regexp.MustCompile(`request\.arguments\.([A-Za-z_][A-Za-z0-9_]*)`)
	argIndex   = regexp.MustCompile(`request\.arguments\[\s*(?:"([^"\\]*)"|'([^'\\]*)')\s*\]`)
	argHasDot  = regexp.MustCompile(`has\(\s*request\.arguments\.([A-Za-z_][A-Za-z0-9_]*)\s*\)`)
	argHasIdx  = regexp.MustCompile(`has\(\s*request\.arguments\[\s*(?:"([^"\\]*)"|'([^'\\]*)')\s*\]\s*\)`)
	argInCheck = regexp.MustCompile(`(?:"([^"\\]*)"|'([^'\\]*)')\s+in\s+request\.arguments\b`)
)

// conditionArguments returns the request.arguments keys a CEL condition
// reads unconditionally: those it reads by name, except those it first
// tests with has() or "in".
func conditionArguments(expr string) []string {
	guarded := map[string]bool{}
	for _, re := range []*regexp.Regexp{argHasDot, argHasIdx, argInCheck} {
		for _, m := range re.FindAllStringSubmatch(expr, -1) {
			for _, g := range m[1:] {
				if g != "" {
					guarded[g] = true
				}
			}
		}
	}
	var out []string
	for _, re := range []*regexp.Regexp{argDot, argIndex} {
		for _, m := range re.FindAllStringSubmatch(expr, -1) {
			for _, g := range m[1:] {
				if g != "" && !guarded[g] && !slices.Contains(out, g) {
					out = append(out, g)
				}
			}
		}
	}
	return out
}

// conditionArgumentWarnings finds REST tools whose deciding rule's
// condition reads an argument their input_schema does not declare: a
// client following the schema never sends it, and the condition then
// fails closed, so the tool is never callable.
func (c *Config) conditionArgumentWarnings(add func(field, format string, args ...any)) {
	table, err := policy.NewTable(c.Policy.Tools)
	if err != nil {
		return // Validate reports the bad pattern
	}
	seen := map[string]bool{}
	for i, u := range c.Upstreams {
		if u.Kind() != "rest" {
			continue
		}
		for j, t := range u.REST.Tools {
			props, ok := t.InputSchema["properties"].(map[string]any)
			if !ok {
				continue
			}
			name := exposedRESTName(u, t)
			r, p, ok := table.Match(name)
			if !ok || r.When == "" {
				continue
			}
			for _, arg := range conditionArguments(r.When) {
				if _, declared := props[arg]; declared || seen[p+"\x00"+name+"\x00"+arg] {
					continue
				}
				seen[p+"\x00"+name+"\x00"+arg] = true
				add(fmt.Sprintf("policy.tools[%q].when", p),
					"reads request.arguments.%s, which %s (upstreams[%d].rest.tools[%d]) does not declare in its input_schema (properties: %s): clients following the schema never send it, so the condition fails and the tool is never callable; declare %s in the schema (and map it to the path, query or body), or read an argument it declares",
					arg, name, i, j, strings.Join(slices.Sorted(maps.Keys(props)), ", "), arg)
			}
		}
	}
}

// scopeWarnings warns when clients are never asked for the scopes the
// policy needs.
func (c *Config) scopeWarnings(add func(field, format string, args ...any)) {
	if len(c.Auth.BaselineScopes) > 0 {
		return
	}
	var unasked []string
	for _, s := range ruleScopes(c.Policy.Tools, c.Policy.Prompts, c.Policy.Resources) {
		if !slices.Contains(c.Auth.StepUpScopes, s) {
			unasked = append(unasked, s)
		}
	}
	if len(unasked) == 0 {
		return
	}
	from := ""
	if len(c.toolsFromEnv) > 0 {
		from = " (TOOL_SCOPES_JSON sets the rules of " + strings.Join(c.toolsFromEnv, ", ") + ")"
	}
	supported := "only the step-up scopes " + strings.Join(c.Auth.StepUpScopes, " ")
	if len(c.Auth.StepUpScopes) == 0 {
		supported = "nothing"
	}
	add("auth.baseline_scopes", "empty, so the 401 challenge asks for no scope and scopes_supported lists %s: clients are never asked for %s, which the policy needs%s, "+
		"and tools needing them stay hidden from callers whose tokens lack them (entitlements). "+
		"List the scopes clients should ask for first here, e.g. baseline_scopes: [%s], and those they may grant later under auth.step_up_scopes; "+
		"or set auth.advertise_tool_scopes: true (or %s=1) to advertise every tool scope in scopes_supported and the challenge, as the original gateway did",
		supported, strings.Join(unasked, " "), from, quoteFlow(unasked[0]), EnvAdvertiseToolScopes)
}
