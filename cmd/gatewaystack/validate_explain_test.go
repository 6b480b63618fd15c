package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gatewaystack/gatewaystack/auth"
	"github.com/gatewaystack/gatewaystack/config"
	"github.com/gatewaystack/gatewaystack/mcp"
	"github.com/gatewaystack/gatewaystack/policy"
)

// severalMistakes has decoding mistakes, semantic ones, an unset variable
// and a rule that can never decide.
const severalMistakes = `listen: "127.0.0.1:%[1]d"
outbound: { allow_http_loopback: true }
auth:
  isuer: "http://127.0.0.1:5051"
  audience: "http://127.0.0.1:%[1]d/mcp"
  clock_skew: 1 minute
upstreams:
  - name: notes
    mcp:
      ulr: "http://127.0.0.1:5052/mcp"
      headers: { Authorization: "Bearer ${GS_TEST_NOTES_KEY}" }
policy:
  tools:
    "notes__*": { scopes: ["tool:read"] }
    "crm?__*": { scopes: ["crm:read"] }
log:
  level: verbose
`

// Regression invariant: validate lists every problem of a configuration
// in one run — decoding problems with line:column and a suggestion,
// semantic problems, variables serve would need — with warnings apart on
// stderr; serve refuses the same file with the same list.
func TestValidateReportsEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	port := freePorts(t, 1)[0]
	file := writeFile(t, "mistakes.yaml", fmt.Sprintf(severalMistakes, port))
	v := runCmd(t, childEnv(), "validate", "--config", file)
	want := []string{
		"auth.isuer: unknown setting; did you mean issuer? (line 4:3)",
		`auth.clock_skew: "1 minute" is not a duration; write a Go duration like 1m (line 6:15)`,
		"upstreams[0].mcp.ulr: unknown setting; did you mean url? (line 10:7)",
		`log.level: "verbose" is not one of debug, info, warn, error`,
		"upstreams[0].mcp.headers.Authorization: environment variable GS_TEST_NOTES_KEY is not set",
	}
	problems := problemLines(v.stdout)
	if v.code != 1 || len(problems) != len(want) || !strings.Contains(v.stdout, fmt.Sprintf("%d problem(s)", len(want))) {
		t.Errorf("exit %d, want 1 and %d problems:\n%s", v.code, len(want), v.stdout)
	}
	for _, w := range want {
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.HasPrefix(p, w) }) {
			t.Errorf("validate does not list %q:\n%s", w, v.stdout)
		}
	}
	if !strings.Contains(v.stderr, `warning: policy.tools["crm?__*"]: matches no tool of any upstream`) {
		t.Errorf("validate does not warn about the dead rule:\n%s", v.stderr)
	}
	s := runCmd(t, childEnv(), "serve", "--config", file)
	if got := problemLines(s.stderr); s.code != 1 || !slices.Equal(got, problems) {
		t.Errorf("serve: exit %d, problems %q, want 1 and validate's %q", s.code, got, problems)
	}
}

// Regression invariant: warnings alone keep validate's exit code 0, and a
// configuration that exposes nothing is no longer plainly "valid".
func TestValidateWarningsKeepExitCodeZero(t *testing.T) {
	t.Parallel()
	cfg := strings.Replace(gatewayConfig(18081, 15051, "http://127.0.0.1:5052/mcp"), `policy:
  tools:
    "notes__*": { scopes: ["tool:read"] }
    notes__write_note: { scopes: ["tool:write"] }
    notes__delete_all_notes: { scopes: ["notes:admin"] }
`, "", 1)
	v := runCmd(t, childEnv(), "validate", "--config", writeFile(t, "nothing.yaml", cfg))
	if v.code != 0 || !strings.Contains(v.stdout, "configuration is valid") ||
		!strings.Contains(v.stderr, "warning: policy.tools: no rules, so no tool of any upstream is listed or callable") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", v.code, v.stdout, v.stderr)
	}
}

// The seed's settings keep working, safely: PROXY_TARGET alone forwards
// nothing and validate says how to add routes; PROXY_DEFAULT_SCOPES opts in
// to forwarding every path.
func TestValidateExplainsProxyTargetAlone(t *testing.T) {
	t.Parallel()
	good := writeFile(t, "good.yaml", gatewayConfig(18082, 15051, "http://127.0.0.1:5052/mcp"))
	v := runCmd(t, childEnv("PROXY_TARGET=http://127.0.0.1:9090"), "validate", "--config", good)
	if v.code != 1 || !strings.Contains(v.stdout, "proxy.routes: none, so every /proxy request is refused") ||
		!strings.Contains(v.stdout, "PROXY_DEFAULT_SCOPES=proxy:use") {
		t.Errorf("PROXY_TARGET alone: exit %d\n%s", v.code, v.stdout)
	}
	v = runCmd(t, childEnv("PROXY_TARGET=http://127.0.0.1:9090", "PROXY_DEFAULT_SCOPES=proxy:use"), "validate", "--config", good)
	if v.code != 0 || !strings.Contains(v.stdout, "entitlement scopes (not advertised: tools needing them are hidden from callers whose tokens lack them): notes:admin proxy:use") {
		t.Errorf("with PROXY_DEFAULT_SCOPES: exit %d\n%s%s", v.code, v.stdout, v.stderr)
	}
}

// seedConfig is a configuration written for the original gateway: no
// baseline scopes, the tools' scopes in TOOL_SCOPES_JSON.
func seedConfig(gwPort int) string {
	return fmt.Sprintf(`listen: "%[1]s"
outbound: { allow_http_loopback: true }
auth:
  issuer: "http://127.0.0.1:1"
  audience: "%[2]s/mcp"
upstreams:
  - name: notes
    mcp: { url: "http://127.0.0.1:1/mcp" }
`, addr(gwPort), baseURL(gwPort))
}

// Regression invariant: with only TOOL_SCOPES_JSON, validate and serve's
// start-up say which scopes are baseline, step-up and entitlements (and
// warn that clients are never asked for them); ADVERTISE_TOOL_SCOPES=1
// puts the tools' scopes in scopes_supported and the 401 challenge, as the
// original gateway did — and without it they are not advertised.
func TestToolScopesJSONAloneIsExplainedAndAdvertisedOnOptIn(t *testing.T) {
	t.Parallel()
	const toolScopes = `TOOL_SCOPES_JSON={"notes__read_note":["tool:read"],"notes__write_note":["tool:write"]}`
	v := runCmd(t, childEnv(toolScopes), "validate", "--config", writeFile(t, "seed.yaml", seedConfig(18083)))
	for _, want := range []string{
		"baseline scopes (the 401 challenge asks for them first; in scopes_supported): none",
		"entitlement scopes (not advertised: tools needing them are hidden from callers whose tokens lack them): tool:read tool:write",
		"TOOL_SCOPES_JSON set the scopes of: notes__read_note, notes__write_note",
	} {
		if v.code != 0 || !strings.Contains(v.stdout, want) {
			t.Errorf("validate: exit %d, stdout lacks %q:\n%s", v.code, want, v.stdout)
		}
	}
	if !strings.Contains(v.stderr, "warning: auth.baseline_scopes: empty") || !strings.Contains(v.stderr, "ADVERTISE_TOOL_SCOPES=1") {
		t.Errorf("validate does not warn about the empty baseline:\n%s", v.stderr)
	}

	for _, tc := range []struct {
		name      string
		env       []string
		advertise bool
	}{
		{"without the opt-in", []string{toolScopes}, false},
		{"with ADVERTISE_TOOL_SCOPES=1", []string{toolScopes, "ADVERTISE_TOOL_SCOPES=1"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			gw, ports := startServer(t, childEnv(tc.env...), 1, func(ports []int) []string {
				return []string{"serve", "--config", writeFile(t, "seed.yaml", seedConfig(ports[0]))}
			}, func(ports []int) string { return baseURL(ports[0]) + "/health" })
			resp, err := http.Get(baseURL(ports[0]) + "/.well-known/oauth-protected-resource/mcp")
			if err != nil {
				t.Fatal(err)
			}
			var prm struct {
				ScopesSupported []string `json:"scopes_supported"`
			}
			err = json.NewDecoder(resp.Body).Decode(&prm)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			resp, err = http.Post(baseURL(ports[0])+"/mcp", "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			scope := challengeParams(t, resp.Header.Get("WWW-Authenticate"))["scope"]
			want := []string{"tool:read", "tool:write"}
			if !tc.advertise {
				want = []string{}
			}
			if !slices.Equal(append([]string{}, prm.ScopesSupported...), want) || scope != strings.Join(want, " ") {
				t.Errorf("scopes_supported %v and challenge scope %q, want %v", prm.ScopesSupported, scope, want)
			}
			log := gw.stderr.String()
			if !strings.Contains(log, `"message":"scopes"`) || !strings.Contains(log, "baseline scopes (the 401 challenge asks for them first") {
				t.Errorf("serve does not explain the scopes at start-up:\n%s", log)
			}
			if warned := strings.Contains(log, "auth.baseline_scopes: empty"); warned == tc.advertise {
				t.Errorf("start-up warning about the empty baseline: %v, want %v:\n%s", warned, !tc.advertise, log)
			}
		})
	}
}

// witness is what makes a rule with a condition hold: extra claims (roles
// are added to the rule's) and the call's arguments.
type witness struct {
	claims map[string]any
	args   map[string]any
}

// conditionWitnesses holds one witness per rule of the example that has a
// condition; a rule with a condition added to the example needs one here.
var conditionWitnesses = map[string]witness{
	"crm__export_*":        {claims: map[string]any{"plan": "pro"}},
	"billing__get_invoice": {claims: map[string]any{"roles": []any{"finance-analyst"}}, args: map[string]any{"account_id": "acme-42", "id": "inv-7"}},
}

// Regression invariant: the shipped example is callable. Every tool it
// declares (its REST tools) and every tool name its patterns give each
// MCP or stdio upstream can be allowed for some identity, decided by the
// code of `gatewaystack policy explain` (the gateway's own authorizer),
// with arguments that the tool's input schema accepts.
func TestExampleConfigEveryToolCanBeAllowed(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(filepath.Join("..", "..", "gatewaystack.example.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	type tool struct {
		name   string
		schema map[string]any // REST tools only
	}
	var tools []tool
	for _, u := range cfg.Upstreams {
		prefix := u.Name + "__"
		switch u.Kind() {
		case "rest":
			for _, rt := range u.REST.Tools {
				tools = append(tools, tool{prefix + rt.Name, rt.InputSchema})
			}
		default:
			n := 0
			for p := range cfg.Policy.Tools {
				if !policy.MayMatchPrefix(p, prefix) {
					continue
				}
				if !strings.HasPrefix(p, prefix) || strings.ContainsAny(p, `?[\`) {
					t.Fatalf("pattern %q: extend this test to build a tool name of %s from it", p, u.Name)
				}
				tools = append(tools, tool{name: strings.ReplaceAll(p, "*", "any")})
				n++
			}
			if n == 0 {
				t.Errorf("no pattern can match a tool of %s", u.Name)
			}
		}
	}
	az := mcp.NewAuthorizer(cfg.Policy.Tools, cfg)
	for _, tl := range tools {
		decider := explainTool(cfg, az, auth.Identity{}, tl.name, "", nil)
		if decider.Reason == policy.ReasonToolUnknown {
			t.Errorf("%s: no rule decides it", tl.name)
			continue
		}
		rule := cfg.Policy.Tools[decider.Rule]
		scopes := slices.Clone(rule.Scopes)
		if len(rule.AnyScopes) > 0 {
			scopes = append(scopes, rule.AnyScopes[0])
		}
		claims := map[string]any{"sub": "witness", "org_id": "acme", "scope": strings.Join(scopes, " ")}
		var roles []any
		if len(rule.Roles) > 0 {
			roles = append(roles, rule.Roles[0])
		}
		args := map[string]any{}
		if rule.When != "" {
			w, ok := conditionWitnesses[decider.Rule]
			if !ok {
				t.Errorf("%s: rule %q has a condition; add a witness for it to conditionWitnesses", tl.name, decider.Rule)
				continue
			}
			for k, v := range w.claims {
				if k == "roles" {
					roles = append(roles, v.([]any)...)
				} else {
					claims[k] = v
				}
			}
			args = w.args
		}
		if roles != nil {
			claims["roles"] = roles
		}
		if tl.schema != nil {
			checkArgsFitSchema(t, tl.name, tl.schema, args)
		}
		id, err := explainIdentity(cfg, claims)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(args)
		if d := explainTool(cfg, az, id, tl.name, "", raw); d.Effect != policy.Allow {
			t.Errorf("%s: %s under rule %q for claims %v and arguments %s: %s", tl.name, d.Effect, d.Rule, claims, raw, d.Detail)
		}
	}
}

// checkArgsFitSchema fails unless args names only properties the schema
// declares and every property it requires; args gets a string for each
// required property it lacks.
func checkArgsFitSchema(t *testing.T, tool string, schema, args map[string]any) {
	t.Helper()
	props, _ := schema["properties"].(map[string]any)
	for k := range args {
		if _, ok := props[k]; !ok {
			t.Errorf("%s: the witness's argument %q is not in the tool's input_schema", tool, k)
		}
	}
	req, _ := schema["required"].([]any)
	for _, r := range req {
		if k, _ := r.(string); args[k] == nil {
			args[k] = "x"
		}
	}
}
