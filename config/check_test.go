package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// check runs Check on body (written to a file) with env m.
func check(t *testing.T, body string, m map[string]string) Report {
	t.Helper()
	r, err := Check(writeConfig(t, body), env(m), CheckOptions{})
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return r
}

// located is an expected problem: its field, substrings of its message,
// and its line (0: no line).
type located struct {
	field string
	msg   []string
	line  int
}

// expectExactly fails unless ps holds exactly the problems of want, in
// any order.
func expectExactly(t *testing.T, what string, ps Problems, want []located) {
	t.Helper()
	left := slices.Clone(ps)
	for _, w := range want {
		i := slices.IndexFunc(left, func(p Problem) bool {
			if p.Field != w.field || p.Line != w.line {
				return false
			}
			for _, m := range w.msg {
				if !strings.Contains(p.Message, m) {
					return false
				}
			}
			return true
		})
		if i < 0 {
			t.Errorf("%s: no %s (line %d) with %q in:\n%s", what, w.field, w.line, w.msg, render(ps))
			continue
		}
		left = slices.Delete(left, i, i+1)
	}
	if len(left) > 0 {
		t.Errorf("%s: unexpected:\n%s", what, render(left))
	}
}

func render(ps Problems) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "  %s\n", p)
	}
	return b.String()
}

// manyMistakes has a mistake of every kind the decoder knows, and
// semantic ones; line numbers matter to the test.
const manyMistakes = `listen: "127.0.0.1:8080"
auth:
  isuer: "http://127.0.0.1:5051"
  audience: "http://127.0.0.1:8080/mcp"
  clock_skew: 1 minute
  algorithms: RS256
upstreams:
  - name: notes
    mcp:
      ulr: "http://127.0.0.1:5052/mcp"
  - name: crm
    url: "http://127.0.0.1:5053/mcp"
policy:
  tools:
    "notes__*": { scopes: ["tool:read"], rolse: [reader] }
server:
  max_body_bytes: 4MiB
  upstream_timeout: 30
  metrics: maybe
log:
  level: verbose
  acess: false
OAUTH_AUDIENCE: x
`

// Regression invariant: one run reports every decoding problem (each with
// line:column and a fix or a suggestion) together with the semantic ones,
// and leaves out what only repeats a decoding problem (auth.issuer is not
// "required": its key is misspelled).
func TestCheckReportsEveryProblemAtOnceWithSuggestions(t *testing.T) {
	t.Parallel()
	r := check(t, manyMistakes, nil)
	expectExactly(t, "problems", r.Problems, []located{
		{"auth.isuer", []string{"unknown setting", "did you mean issuer?"}, 3},
		{"auth.clock_skew", []string{`"1 minute" is not a duration`, "like 1m"}, 5},
		{"auth.algorithms", []string{"want a list", "[RS256]"}, 6},
		{"upstreams[0].mcp.ulr", []string{"unknown setting", "did you mean url?"}, 10},
		{"upstreams[1].url", []string{"url is a setting of upstreams[].mcp", "move it there"}, 12},
		{"upstreams[1]", []string{"set exactly one upstream kind"}, 11},
		{`policy.tools["notes__*"].rolse`, []string{"did you mean roles?"}, 15},
		{"server.max_body_bytes", []string{"write the number of bytes: 4194304"}, 17},
		{"server.upstream_timeout", []string{"has no unit", "30s"}, 18},
		{"server.metrics", []string{`"maybe" is not a boolean`, "true or false"}, 19},
		{"log.level", []string{`"verbose" is not one of`}, 21},
		{"log.acess", []string{"did you mean access?"}, 22},
		{"OAUTH_AUDIENCE", []string{"environment variable", "write auth.audience"}, 23},
	})
	for _, p := range r.Problems {
		if p.Line > 0 && p.Column == 0 {
			t.Errorf("%s has a line but no column", p.Field)
		}
	}
	// Load refuses the same file with the same decoding problems, all of
	// them, not only the first.
	_, err := Load(writeConfig(t, manyMistakes), nil)
	for _, want := range []string{"did you mean issuer?", "like 1m", "did you mean url?", "did you mean access?", "(line 22:3)"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Load error does not contain %q: %v", want, err)
		}
	}
}

func TestDecodeSuggestsTheFix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want located
	}{
		{"a misspelled key gets the nearest known key",
			"upstreams:\n  - name: a\n    mcp: { ulr: \"http://x/mcp\" }\n",
			located{"upstreams[0].mcp.ulr", []string{"did you mean url?"}, 3}},
		{"a swapped pair of letters is one edit",
			"auth:\n  tenant_cliam: org\n",
			located{"auth.tenant_cliam", []string{"did you mean tenant_claim?"}, 2}},
		{"letter case does not hide a key",
			"LISTEN: \":1\"\n",
			located{"LISTEN", []string{"did you mean listen?"}, 1}},
		{"a key far from every known key lists them",
			"auth:\n  bananas: 1\n",
			located{"auth.bananas", []string{"remove it, or use one of: issuer, audience"}, 2}},
		{"a key of another section says where it belongs",
			"baseline_scopes: [a]\n",
			located{"baseline_scopes", []string{"is a setting of auth"}, 1}},
		{"an environment variable written as a key names its setting",
			"TOOL_SCOPES_JSON: '{}'\n",
			located{"TOOL_SCOPES_JSON", []string{"in this file write policy.tools"}, 1}},
		{"a duration in words gets the Go spelling",
			"server:\n  upstream_timeout: 2 hours\n",
			located{"server.upstream_timeout", []string{"like 2h"}, 2}},
		{"days become hours",
			"limits:\n  budgets: { per_tenant: { units: 5, period: 1 day } }\n",
			located{"limits.budgets.per_tenant.period", []string{"24h"}, 2}},
		{"a single mapping where a list is wanted",
			"upstreams:\n  name: notes\n",
			located{"upstreams", []string{"want a list", `"- "`}, 2}},
		{"a list where a mapping of settings is wanted",
			"auth: [a]\n",
			located{"auth", []string{"want a mapping of settings"}, 1}},
		{"a whole number too large for its setting",
			"limits: {per_subject: {requests: 99999999999999999999999}}\n",
			located{"limits.per_subject.requests", []string{"not a whole number this setting can hold"}, 1}},
		{"a duplicate key points at the first",
			"listen: \":1\"\nlisten: \":2\"\n",
			located{"listen", []string{"written twice (first at line 1)"}, 2}},
		{"a key merged in with << is checked too",
			"base: &b {issuer: x}\n",
			located{"base", []string{"unknown setting"}, 1}},
		{"a key written in a merged mapping is checked where it lands",
			"auth:\n  <<: {isuer: x}\n",
			located{"auth.isuer", []string{"did you mean issuer?"}, 2}},
		{"a second document",
			"listen: \":1\"\n---\nlisten: \":2\"\n",
			located{"yaml", []string{"second YAML document"}, 2}},
		{"a tab in the indentation",
			"auth:\n\tissuer: x\n",
			located{"yaml", []string{"indent with spaces"}, 2}},
		{"broken syntax stops with its line",
			"auth:\n  issuer: [x\n",
			located{"yaml", []string{"fix the YAML syntax"}, 0}},
		{"a document that is not a mapping",
			"- a\n- b\n",
			located{"configuration", []string{"want a mapping of settings"}, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var c Config
			err := Decode([]byte(tt.yaml), &c)
			var ps Problems
			if !errorsAs(err, &ps) {
				t.Fatalf("Decode = %v, want Problems", err)
			}
			want := tt.want
			if want.line == 0 && len(ps) == 1 {
				want.line = ps[0].Line // syntax errors: the library's line
			}
			expectExactly(t, tt.yaml, ps, []located{want})
		})
	}
}

// Regression invariant: a semantic problem points at its line in the file
// unless an environment variable set the value, which it then names.
func TestCheckLocatesSemanticProblems(t *testing.T) {
	t.Parallel()
	body := strings.Replace(minimalYAML, `audience: "http://127.0.0.1:8080/mcp"`, `audience: "https://elsewhere/mcp"`, 1)
	r := check(t, body, nil)
	expectExactly(t, "from the file", r.Problems, []located{{"auth.audience", []string{"does not match the MCP resource"}, 5}})
	r = check(t, minimalYAML, map[string]string{"OAUTH_AUDIENCE": "https://elsewhere/mcp"})
	if len(r.Problems) != 1 || r.Problems[0].Env != "OAUTH_AUDIENCE" || r.Problems[0].Line != 0 ||
		!strings.HasSuffix(r.Problems[0].String(), "(set by OAUTH_AUDIENCE)") {
		t.Errorf("from the environment: %s", render(r.Problems))
	}
	r = check(t, minimalYAML, map[string]string{"TOOL_SCOPES_JSON": `{"notes__x":["bad scope"]}`, "RATE_LIMIT_MAX": "many"})
	expectExactly(t, "environment", r.Problems, []located{
		{`policy.tools["notes__x"].scopes[0]`, []string{"not a valid scope token"}, 0},
		{"RATE_LIMIT_MAX", []string{`"many" is not a whole number`}, 0},
	})
	for _, p := range r.Problems {
		if p.Field != "RATE_LIMIT_MAX" && p.Env != "TOOL_SCOPES_JSON" {
			t.Errorf("%s does not name TOOL_SCOPES_JSON", p)
		}
	}
}

// Regression invariant: validate reports every variable serve would need
// and not find, where serve would look for it, so a configuration that
// validates also starts.
func TestCheckReportsUnsetEnvironmentVariables(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	present := filepath.Join(dir, "present.env")
	if err := os.WriteFile(present, []byte("A=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	body := minimalYAML + `  prompts: {}
proxy:
  target: "http://127.0.0.1:9090"
  headers: { X-Api-Key: "${BACKEND_KEY}", X-Static: "plain $NOT_EXPANDED" }
  routes: [{prefix: /, scopes: [proxy:use]}]
audit:
  webhook: { url: "https://siem.example.com/in", headers: { Authorization: "Bearer ${SIEM_TOKEN}" } }
`
	body = strings.Replace(body, `    mcp: { url: "http://127.0.0.1:5052/mcp" }`, `    mcp: { url: "http://127.0.0.1:5052/mcp", headers: { Authorization: "Bearer ${NOTES_KEY}${NOTES_KEY2}" } }
  - name: files
    stdio:
      command: npx
      inherit_env: [LANG]
      env_files: [`+present+`, `+filepath.Join(dir, "missing.env")+`]
      env: { TOKEN: "${FILES_TOKEN}", PLAIN: "x" }
  - name: billing
    rest:
      base_url: "http://127.0.0.1:9091"
      headers: { Authorization: "Bearer ${BILLING_KEY}" }
      tools:
        - { name: get, path: /x, headers: { X-Tool: "${TOOL_KEY}" } }`, 1)
	body = strings.Replace(body, `"notes__*": { scopes: ["tool:read"] }`, `"*": { scopes: ["tool:read"] }`, 1)
	want := []located{
		{"upstreams[0].mcp.headers.Authorization", []string{"environment variables NOTES_KEY, NOTES_KEY2 are not set", "serve refuses to start"}, 8},
		{"upstreams[1].stdio.inherit_env[0]", []string{"environment variable LANG is not set"}, 12},
		{"upstreams[1].stdio.env_files[1]", []string{"cannot be read", "missing.env"}, 13},
		{"upstreams[1].stdio.env.TOKEN", []string{"environment variable FILES_TOKEN is not set"}, 14},
		{"upstreams[2].rest.headers.Authorization", []string{"BILLING_KEY"}, 18},
		{"upstreams[2].rest.tools[0].headers.X-Tool", []string{"TOOL_KEY"}, 20},
		{"proxy.headers.X-Api-Key", []string{"BACKEND_KEY"}, 0},
		{"audit.webhook.headers.Authorization", []string{"SIEM_TOKEN"}, 0},
	}
	r := check(t, body, nil)
	// Lines of the proxy and audit headers depend on the body above; take
	// them from the report, but require that they are there.
	for i := range want {
		if want[i].line == 0 {
			if j := slices.IndexFunc(r.Problems, func(p Problem) bool { return p.Field == want[i].field }); j >= 0 {
				if r.Problems[j].Line == 0 {
					t.Errorf("%s has no line", want[i].field)
				}
				want[i].line = r.Problems[j].Line
			}
		}
	}
	expectExactly(t, "empty environment", r.Problems, want)

	full := map[string]string{"NOTES_KEY": "a", "NOTES_KEY2": "b", "LANG": "C", "FILES_TOKEN": "c", "BILLING_KEY": "d",
		"TOOL_KEY": "e", "BACKEND_KEY": "f", "SIEM_TOKEN": "g"}
	r = check(t, strings.Replace(body, ", "+filepath.Join(dir, "missing.env"), "", 1), full)
	expectExactly(t, "full environment", r.Problems, nil)

	skip, err := Check(writeConfig(t, body), env(nil), CheckOptions{SkipEnvironment: true})
	if err != nil {
		t.Fatal(err)
	}
	expectExactly(t, "skipped", skip.Problems, nil)
}

// Regression invariant: validate no longer calls a configuration that
// exposes nothing simply "valid": each way of exposing nothing, or less
// than meant, is a warning naming the field and the fix — and a
// configuration that exposes what it declares has none.
func TestWarnings(t *testing.T) {
	t.Parallel()
	const base = `outbound: { allow_http_loopback: true }
auth:
  issuer: "http://127.0.0.1:5051"
  audience: "http://127.0.0.1:8080/mcp"
  baseline_scopes: [tool:read]
upstreams:
  - name: notes
    mcp: { url: "http://127.0.0.1:5052/mcp" }
  - name: billing
    rest:
      base_url: "http://127.0.0.1:9090"
      tools:
        - { name: get_invoice, path: "/accounts/{account_id}/invoices/{id}", input_schema: { type: object, properties: { account_id: {type: string}, id: {type: string} } } }
        - { name: list_invoices, path: /invoices }
`
	tests := []struct {
		name   string
		policy string
		extra  string
		env    map[string]string
		want   []located
	}{
		{"a policy that reaches every tool warns of nothing", `
policy:
  tools:
    "notes__*": { scopes: [tool:read] }
    "billing__*": { scopes: [tool:read] }
    "billing__get_invoice": { scopes: [tool:read], when: 'request.arguments.account_id.startsWith(identity.tenant)' }
  prompts: { "notes__*": { scopes: [tool:read] } }
  resources: { "notes__notes://*": { scopes: [tool:read] } }
`, "", nil, nil},
		{"no tool rule at all", "\n", "", nil, []located{
			{"policy.tools", []string{"no rules", "no tool of any upstream is listed or callable", `"notes__*"`}, 0}}},
		{"rules that match no upstream's tools", `
policy:
  tools:
    "crm?__*": { scopes: [tool:read] }
`, "", nil, []located{
			{"policy.tools", []string{"no rule matches a tool of any upstream"}, 17},
			{"upstreams[0]", []string{"notes: no policy.tools pattern can match its tools (named notes__<tool>)", `"notes__*"`}, 7},
			{"upstreams[1]", []string{"billing: no policy.tools pattern matches any of its tools"}, 9},
			{`policy.tools["crm?__*"]`, []string{"matches no tool of any upstream"}, 18},
		}},
		{"one REST tool without a rule", `
policy:
  tools:
    "notes__*": { scopes: [tool:read] }
    "billing__list_invoices": { scopes: [tool:read] }
`, "", nil, []located{
			{"upstreams[1].rest.tools[0]", []string{"billing__get_invoice: no policy.tools pattern matches it"}, 13}}},
		{"a glob whose every REST tool is decided by exact rules", `
policy:
  tools:
    "notes__*": { scopes: [tool:read] }
    "billing__*": { scopes: [tool:read] }
    "billing__get_invoice": { scopes: [tool:read] }
    "billing__list_invoices": { scopes: [tool:read] }
`, "", nil, []located{
			{`policy.tools["billing__*"]`, []string{"decided by a more specific pattern", "never decides"}, 19}}},
		{"a condition reading an argument the REST tool does not declare", `
policy:
  tools:
    "notes__*": { scopes: [tool:read] }
    "billing__*": { scopes: [tool:read], when: 'request.arguments["customer"] == identity.sub && (!has(request.arguments.page) || request.arguments.page > 0)' }
    "billing__get_invoice": { scopes: [tool:read], when: 'request.arguments.acount_id.startsWith(identity.tenant)' }
`, "", nil, []located{
			{`policy.tools["billing__get_invoice"].when`, []string{"reads request.arguments.acount_id", "billing__get_invoice (upstreams[1].rest.tools[0]) does not declare", "properties: account_id, id"}, 20},
		}},
		{"prompt and resource rules for an upstream that offers none", `
policy:
  tools: { "*": { scopes: [tool:read] } }
  prompts: { "billing__*": { scopes: [tool:read] } }
  resources: { "billing__db://*": { scopes: [tool:read] } }
`, "", nil, []located{
			{`policy.prompts["billing__*"]`, []string{"matches no prompt of an upstream that can offer prompts", "MCP and stdio upstreams: notes"}, 18},
			{`policy.resources["billing__db://*"]`, []string{"matches no resource"}, 19},
		}},
		{"an unprefixed MCP upstream can match any rule", `
policy:
  tools:
    "billing__*": { scopes: [tool:read] }
    "anything_at_all": { scopes: [tool:read] }
`, "", nil, nil},
		{"baseline scopes empty while TOOL_SCOPES_JSON sets rules", `
policy:
  tools: { "billing__*": { scopes: [tool:read] } }
`, "", map[string]string{"TOOL_SCOPES_JSON": `{"notes__*":["notes:read"]}`}, []located{
			{"auth.baseline_scopes", []string{"empty, so the 401 challenge asks for no scope", "notes:read tool:read",
				"TOOL_SCOPES_JSON sets the rules of notes__*", "auth.advertise_tool_scopes: true", "ADVERTISE_TOOL_SCOPES=1"}, 0}}},
		{"a default /proxy route that requires nothing", `
policy:
  tools: { "*": { scopes: [tool:read] } }
`, `proxy:
  target: "http://127.0.0.1:9191"
  default_route: {}
`, nil, []located{
			{"proxy.default_route", []string{"requires no scope or role", "every path under /proxy"}, 17}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := base + tt.extra + tt.policy
			if tt.name == "an unprefixed MCP upstream can match any rule" {
				body = strings.Replace(body, "  - name: notes\n", "  - name: notes\n    prefix: false\n", 1)
			}
			if tt.name == "baseline scopes empty while TOOL_SCOPES_JSON sets rules" {
				body = strings.Replace(body, "  baseline_scopes: [tool:read]\n", "", 1)
			}
			r := check(t, body, tt.env)
			expectExactly(t, "problems", r.Problems, nil)
			expectExactly(t, "warnings", r.Warnings, tt.want)
		})
	}
}

// Regression invariant: TOOL_SCOPES_JSON alone keeps working, and validate
// says which scopes are baseline, step-up and entitlements; advertising
// every tool scope (the original gateway's behaviour) is an explicit
// opt-in, in the file or the environment, and never makes a step-up scope
// baseline.
func TestToolScopesJSONAloneAndAdvertisingToolScopes(t *testing.T) {
	t.Parallel()
	const seed = `auth:
  issuer: "https://tenant.auth0.com/"
  audience: "http://127.0.0.1:8080/mcp"
upstreams:
  - name: notes
    mcp: { url: "http://127.0.0.1:5052/mcp" }
`
	toolScopes := map[string]string{"TOOL_SCOPES_JSON": `{"notes__read_note":["tool:read"],"notes__write_note":["tool:write","tool:read"],"notes__export":["tool:export"]}`}
	r := check(t, seed, toolScopes)
	expectExactly(t, "problems", r.Problems, nil)
	s := r.Config.Scopes()
	if len(s.Baseline) != 0 || len(s.StepUp) != 0 || !slices.Equal(s.Entitlements, []string{"tool:export", "tool:read", "tool:write"}) ||
		!slices.Equal(s.ToolsFromEnv, []string{"notes__export", "notes__read_note", "notes__write_note"}) {
		t.Errorf("scopes = %+v", s)
	}
	lines := strings.Join(s.Lines(), "\n")
	for _, want := range []string{"baseline scopes (the 401 challenge asks for them first; in scopes_supported): none",
		"entitlement scopes (not advertised: tools needing them are hidden from callers whose tokens lack them): tool:export tool:read tool:write",
		"TOOL_SCOPES_JSON set the scopes of: notes__export, notes__read_note, notes__write_note"} {
		if !strings.Contains(lines, want) {
			t.Errorf("scope lines lack %q:\n%s", want, lines)
		}
	}
	if len(r.Warnings) != 1 || r.Warnings[0].Field != "auth.baseline_scopes" {
		t.Errorf("warnings = %s", render(r.Warnings))
	}

	withStepUp := strings.Replace(seed, `  audience: "http://127.0.0.1:8080/mcp"`, `  audience: "http://127.0.0.1:8080/mcp"
  step_up_scopes: ["tool:write"]`, 1)
	for name, tc := range map[string]struct {
		body string
		env  map[string]string
	}{
		"in the file":            {strings.Replace(withStepUp, "  step_up_scopes", "  advertise_tool_scopes: true\n  step_up_scopes", 1), toolScopes},
		"in the environment (1)": {withStepUp, with(toolScopes, EnvAdvertiseToolScopes, "1")},
		"in the environment (true), over the file's false": {strings.Replace(withStepUp, "  step_up_scopes", "  advertise_tool_scopes: false\n  step_up_scopes", 1),
			with(toolScopes, EnvAdvertiseToolScopes, "true")},
	} {
		r := check(t, tc.body, tc.env)
		expectExactly(t, name, r.Problems, nil)
		c := r.Config
		if !slices.Equal(c.Auth.BaselineScopes, []string{"tool:export", "tool:read"}) || !slices.Equal(c.Auth.StepUpScopes, []string{"tool:write"}) {
			t.Errorf("%s: baseline %v, step-up %v; want the tool scopes that are not step-up as baseline", name, c.Auth.BaselineScopes, c.Auth.StepUpScopes)
		}
		if s := c.Scopes(); !slices.Equal(s.Advertised, []string{"tool:export", "tool:read"}) || len(s.Entitlements) != 0 ||
			!strings.Contains(s.Lines()[0], "of which tool:export tool:read from the tool rules (auth.advertise_tool_scopes)") {
			t.Errorf("%s: scopes %+v", name, s)
		}
		if len(r.Warnings) != 0 {
			t.Errorf("%s: warnings %s", name, render(r.Warnings))
		}
		again := *c
		again.SetDefaults()
		if !slices.Equal(again.Auth.BaselineScopes, c.Auth.BaselineScopes) {
			t.Errorf("%s: SetDefaults is not idempotent: %v", name, again.Auth.BaselineScopes)
		}
	}
	// Without the opt-in nothing is advertised.
	if c := check(t, withStepUp, toolScopes).Config; len(c.Auth.BaselineScopes) != 0 {
		t.Errorf("baseline %v without the opt-in", c.Auth.BaselineScopes)
	}
	r = check(t, seed, map[string]string{EnvAdvertiseToolScopes: "please"})
	expectExactly(t, "bad value", r.Problems, []located{{EnvAdvertiseToolScopes, []string{`"please" is not a boolean`}, 0}})
}

func with(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for a, b := range m {
		out[a] = b
	}
	return out
}

// Regression invariant: PROXY_TARGET alone forwards nothing (never an
// allow-all by default) and validate explains how to add routes; the
// explicit default route (file or PROXY_DEFAULT_SCOPES) forwards every
// path to callers holding its scopes.
func TestProxyTargetAloneAndTheDefaultRoute(t *testing.T) {
	t.Parallel()
	r := check(t, minimalYAML, map[string]string{"PROXY_TARGET": "http://127.0.0.1:9090"})
	expectExactly(t, "PROXY_TARGET alone", r.Problems, []located{{"proxy.routes", []string{
		"every /proxy request is refused", "add at least one route", "default_route: {scopes: [proxy:use]}", "PROXY_DEFAULT_SCOPES=proxy:use"}, 0}})
	if len(r.Config.Proxy.Routes) != 0 {
		t.Errorf("routes %+v without an opt-in", r.Config.Proxy.Routes)
	}

	r = check(t, minimalYAML, map[string]string{"PROXY_TARGET": "http://127.0.0.1:9090", EnvProxyDefaultScopes: "proxy:use, proxy:write"})
	expectExactly(t, "PROXY_DEFAULT_SCOPES", r.Problems, nil)
	want := []ProxyRoute{{Prefix: "/", Scopes: []string{"proxy:use", "proxy:write"}, fromDefault: true}}
	if !reflect.DeepEqual(r.Config.Proxy.Routes, want) {
		t.Errorf("routes = %+v, want %+v", r.Config.Proxy.Routes, want)
	}

	file := minimalYAML + `proxy:
  target: "http://127.0.0.1:9090"
  routes: [{prefix: /admin, scopes: [proxy:admin]}]
  default_route: { methods: [GET], scopes: [proxy:use], roles: [staff], cost: 2 }
`
	r = check(t, file, nil)
	expectExactly(t, "default_route in the file", r.Problems, nil)
	if got := r.Config.Proxy.Routes; len(got) != 2 || got[1].Prefix != "/" || !slices.Equal(got[1].Methods, []string{"GET"}) ||
		!slices.Equal(got[1].Roles, []string{"staff"}) || got[1].Units() != 2 {
		t.Errorf("routes = %+v", got)
	}

	r = check(t, minimalYAML+`proxy:
  target: "http://127.0.0.1:9090"
  routes: [{prefix: /, scopes: [proxy:admin]}]
  default_route: { scopes: ["bad scope"], methods: ["G T"] }
`, nil)
	expectExactly(t, "problems of the default route", r.Problems, []located{
		{"proxy.default_route", []string{"a route with prefix / already covers every path"}, 15},
		{"proxy.default_route.methods[0]", []string{"not an HTTP method"}, 15},
		{"proxy.default_route.scopes[0]", []string{"not a valid scope token"}, 15},
	})
	r = check(t, minimalYAML+"proxy: { default_route: { scopes: [a] } }\n", nil)
	expectExactly(t, "without a target", r.Problems, []located{{"proxy.target", []string{"default_route"}, 0}})
}

// The shipped example validates with no problem once the three API keys it
// references are set, and with no warning at all; without them, those
// three are its only problems.
func TestExampleConfigChecksClean(t *testing.T) {
	t.Parallel()
	const example = "../gatewaystack.example.yaml"
	keys := map[string]string{"CRM_API_KEY": "k1", "BILLING_API_KEY": "k2", "BACKEND_API_KEY": "k3"}
	r, err := Check(example, env(keys), CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	expectExactly(t, "problems", r.Problems, nil)
	// Warnings the example is allowed to have, each with its reason: none.
	expectExactly(t, "warnings", r.Warnings, nil)

	r, err = Check(example, env(nil), CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var fields []string
	for _, p := range r.Problems {
		if !strings.Contains(p.Message, "is not set") {
			t.Errorf("unexpected problem: %s", p)
		}
		fields = append(fields, p.Field)
	}
	if want := []string{"upstreams[1].mcp.headers.Authorization", "upstreams[2].rest.headers.Authorization", "proxy.headers.X-Api-Key"}; !slices.Equal(fields, want) {
		t.Errorf("problems without the API keys: %v, want %v", fields, want)
	}
}

// Every variable of EnvVars is read: setting it changes the loaded
// configuration (or, for the ones that are not settings, is accepted).
func TestEnvVarsAreRead(t *testing.T) {
	t.Parallel()
	values := map[string]string{
		"GATEWAYSTACK_LISTEN": "127.0.0.1:9", "GATEWAYSTACK_PUBLIC_URL": "https://g.example.com", "OAUTH_ISSUER": "https://i.example.com/",
		"OAUTH_AUDIENCE": "https://g.example.com/mcp", "OAUTH_JWKS_URI": "https://i.example.com/k", "OAUTH_ENFORCE_ALG": "PS256",
		"OAUTH_ISSUER_DEMO": "https://d.example.com/", "OAUTH_AUDIENCE_DEMO": "https://d.example.com/mcp", "OAUTH_JWKS_URI_DEMO": "https://d.example.com/k",
		"OAUTH_SCOPES_DEMO": "demo:read", EnvAdvertiseToolScopes: "1", "TOOL_SCOPES_JSON": `{"notes__x":["a"]}`, "LOG_LEVEL": "debug",
		"PROXY_TARGET": "http://127.0.0.1:9", "PROXY_INJECT_HEADER": "X-Who", "PROXY_INJECT_QUERY": "who", EnvProxyDefaultScopes: "p",
		"RATE_LIMIT_MAX": "7", "RATE_LIMIT_WINDOW_MS": "1000", "GATEWAYSTACK_LIMITS_STORE": "redis://127.0.0.1:6379/0",
		EnvAuditChainKey: "k", EnvAuditCheckpointKey: "k", "AUTH0_DOMAIN": "a.example.com", "MGMT_DOMAIN": "a.example.com",
		"AUTH0_MGMT_CLIENT_ID": "c", "MGMT_CLIENT_ID": "c", "AUTH0_MGMT_CLIENT_SECRET": "s", "MGMT_CLIENT_SECRET": "s",
		"LOG_WEBHOOK_SECRET": "w", "WEBHOOK_SHARED_SECRET": "w", "GOOGLE_CONNECTION_NAME": "g",
	}
	base, err := Load(writeConfig(t, minimalYAML), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range EnvVars() {
		if ev.Field == "" {
			continue
		}
		v, ok := values[ev.Name]
		if !ok {
			t.Errorf("no test value for %s", ev.Name)
			continue
		}
		m := map[string]string{ev.Name: v}
		if ev.DemoOnly {
			m["DEMO_MODE"] = "true"
		}
		c, err := Load(writeConfig(t, minimalYAML), env(m))
		if err != nil {
			t.Errorf("%s: %v", ev.Name, err)
			continue
		}
		if reflect.DeepEqual(c, base) {
			t.Errorf("%s=%s changes nothing", ev.Name, v)
		}
	}
}

// errorsAs is errors.As for Problems wrapped by Decode.
func errorsAs(err error, ps *Problems) bool { return errors.As(err, ps) }

// Regression invariant: a misspelled key hides the semantic problems that
// only repeat it (the field it meant is "required", the section it meant
// is missing), and only those.
func TestCheckLeavesOutProblemsThatRepeatADecodingProblem(t *testing.T) {
	t.Parallel()
	body := strings.Replace(minimalYAML, `    mcp: { url: "http://127.0.0.1:5052/mcp" }`, `    mpc: { url: "http://127.0.0.1:5052/mcp" }
  - name: crm
    mcp: { ulr: "http://127.0.0.1:5053/mcp" }
  - name: bad_name
    mcp: { url: "http://127.0.0.1:5054/mcp" }`, 1)
	body = strings.Replace(body, `  audience: "http://127.0.0.1:8080/mcp"`, `  audeince: "http://127.0.0.1:8080/mcp"
  clock_skew: soon`, 1)
	r := check(t, body, nil)
	expectExactly(t, "problems", r.Problems, []located{
		{"auth.audeince", []string{"did you mean audience?"}, 5},
		{"auth.clock_skew", []string{`"soon" is not a duration`}, 6},
		{"upstreams[0].mpc", []string{"did you mean mcp?"}, 9},
		{"upstreams[1].mcp.ulr", []string{"did you mean url?"}, 11},
		{"upstreams[2].name", []string{"must be lowercase letters"}, 12},
	})
}
