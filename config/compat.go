package config

import (
	"slices"
	"strings"
)

// setCompatDefaults applies the explicit opt-ins to the original gateway's
// behaviour. It is idempotent.
//
//   - auth.advertise_tool_scopes: every valid scope policy.tools names
//     (scopes and any_scopes) that is neither baseline nor step-up already
//     joins auth.baseline_scopes, so the 401 challenge asks for it and
//     scopes_supported lists it.
//   - proxy.default_route: a route for prefix "/" with its requirements
//     joins proxy.routes.
func (c *Config) setCompatDefaults() {
	if c.Auth.AdvertiseToolScopes {
		for _, s := range ruleScopes(c.Policy.Tools) {
			if slices.Contains(c.Auth.StepUpScopes, s) || slices.Contains(c.Auth.BaselineScopes, s) ||
				!scopeToken.MatchString(s) || s == "offline_access" {
				continue
			}
			c.Auth.BaselineScopes = append(c.Auth.BaselineScopes, s)
			c.advertised = append(c.advertised, s)
		}
	}
	if d := c.Proxy.DefaultRoute; d != nil && !slices.ContainsFunc(c.Proxy.Routes, func(r ProxyRoute) bool { return r.fromDefault }) {
		c.Proxy.Routes = append(c.Proxy.Routes, ProxyRoute{Prefix: "/", Methods: d.Methods, Scopes: d.Scopes,
			Roles: d.Roles, Cost: d.Cost, fromDefault: true})
	}
}

// ruleScopes is every scope the rules of tables name (scopes and
// any_scopes), sorted, without repeats.
func ruleScopes(tables ...map[string]ToolRule) []string {
	var out []string
	for _, t := range tables {
		for _, r := range t {
			out = append(out, r.Scopes...)
			out = append(out, r.AnyScopes...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ScopeSummary sorts the scopes a configuration names by what they mean to
// a client.
type ScopeSummary struct {
	// Baseline scopes are asked for first: the 401 challenge's scope, and
	// in scopes_supported (auth.baseline_scopes).
	Baseline []string
	// Advertised is the part of Baseline that auth.advertise_tool_scopes
	// added from the policy's tool rules.
	Advertised []string
	// StepUp scopes are granted on demand: tools needing them are listed,
	// and a call answers 403 insufficient_scope (auth.step_up_scopes); in
	// scopes_supported too.
	StepUp []string
	// Entitlements are the other scopes rules and proxy routes need: not
	// advertised, and tools needing them are hidden from callers whose
	// tokens lack them.
	Entitlements []string
	// ToolsFromEnv are the policy.tools patterns TOOL_SCOPES_JSON set.
	ToolsFromEnv []string
}

// Scopes returns the configuration's scopes by kind.
func (c *Config) Scopes() ScopeSummary {
	s := ScopeSummary{
		Baseline:     slices.Clone(c.Auth.BaselineScopes),
		Advertised:   slices.Clone(c.advertised),
		StepUp:       slices.Clone(c.Auth.StepUpScopes),
		ToolsFromEnv: slices.Clone(c.toolsFromEnv),
	}
	named := ruleScopes(c.Policy.Tools, c.Policy.Prompts, c.Policy.Resources)
	for _, r := range c.Proxy.Routes {
		named = append(named, r.Scopes...)
	}
	slices.Sort(named)
	for _, sc := range slices.Compact(named) {
		if !slices.Contains(s.Baseline, sc) && !slices.Contains(s.StepUp, sc) {
			s.Entitlements = append(s.Entitlements, sc)
		}
	}
	return s
}

// Lines says, one line per kind, which scopes are which and what that
// means to a client; validate prints them and serve logs them.
func (s ScopeSummary) Lines() []string {
	list := func(scopes []string) string {
		if len(scopes) == 0 {
			return "none"
		}
		return strings.Join(scopes, " ")
	}
	base := "baseline scopes (the 401 challenge asks for them first; in scopes_supported): " + list(s.Baseline)
	if len(s.Advertised) > 0 {
		base += " — of which " + list(s.Advertised) + " from the tool rules (auth.advertise_tool_scopes)"
	}
	out := []string{
		base,
		"step-up scopes (granted on demand: tools needing them are listed, and a call answers 403 insufficient_scope; in scopes_supported): " + list(s.StepUp),
		"entitlement scopes (not advertised: tools needing them are hidden from callers whose tokens lack them): " + list(s.Entitlements),
	}
	if len(s.ToolsFromEnv) > 0 {
		out = append(out, "TOOL_SCOPES_JSON set the scopes of: "+strings.Join(s.ToolsFromEnv, ", "))
	}
	return out
}
