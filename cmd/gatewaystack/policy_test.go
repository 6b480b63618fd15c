package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const explainConfig = `listen: 127.0.0.1:18080
auth:
  issuer: https://issuer.example/
  audience: http://127.0.0.1:18080/mcp
  baseline_scopes: ["tool:read"]
  step_up_scopes: ["tool:write"]
upstreams:
  - name: finance
    mcp: { url: "http://127.0.0.1:5055/mcp" }
  - name: notes
    mcp: { url: "http://127.0.0.1:5056/mcp" }
policy:
  tools:
    "finance__*": { scopes: ["tool:read"] }
    "finance__report": { scopes: ["tool:read"], when: '"finance-analyst" in identity.roles' }
    "finance__get_account":
      scopes: ["tool:read"]
      when: 'request.arguments.account_id.startsWith(identity.tenant + "-")'
    "finance__pay": { scopes: ["tool:write"] }
    "finance__plan_*": { any_scopes: ["tool:read"], when: 'identity.claims["plan"] in ["pro", "enterprise"]' }
  prompts:
    "finance__summary": { scopes: ["tool:read"] }
    "finance__audit_*": { scopes: ["finance:audit"] }
    "finance__close": { scopes: ["tool:write"] }
    "notes__brief":
      scopes: ["tool:read"]
      when: 'request.arguments.tenant == identity.tenant'
  resources:
    "notes__notes://acme/*": { scopes: ["tool:read"] }
    "notes__notes://acme/private/*": { scopes: ["tool:read"], roles: ["admin"] }
    "finance__ledger://*": { scopes: ["finance:ledger"] }
`

// explainFiles writes the configuration and a claims file; it returns their
// paths and an unsigned token carrying the same claims.
func explainFiles(t *testing.T) (cfg, claims, token string) {
	t.Helper()
	dir := t.TempDir()
	cfg = filepath.Join(dir, "gatewaystack.yaml")
	if err := os.WriteFile(cfg, []byte(explainConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	c := map[string]any{"sub": "alice", "org_id": "acme", "scope": "tool:read", "roles": []string{"sales"}, "plan": "pro"}
	data, _ := json.Marshal(c)
	claims = filepath.Join(dir, "claims.json")
	if err := os.WriteFile(claims, data, 0o600); err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	token = enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc(data) + "." + enc([]byte("not-a-signature"))
	return cfg, claims, token
}

func TestPolicyExplain(t *testing.T) {
	t.Parallel()
	cfg, claims, token := explainFiles(t)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     []string // in stdout (or stderr for usage errors)
	}{
		{"an allowed tool names the rule and exits 0",
			[]string{"--claims", claims, "--tool", "finance__list"}, 0,
			[]string{"decision: allow", "rule: finance__*", "reason: allowed", "claims file"}},
		{"a false identity condition is hidden, says which condition, exits 1",
			[]string{"--claims", claims, "--tool", "finance__report"}, 1,
			[]string{"decision: hidden", "rule: finance__report", "reason: condition_false", `why: condition is false: "finance-analyst" in identity.roles`}},
		{"a token is decoded without verification and says so",
			[]string{"--token", token, "--tool", "finance__list"}, 0,
			[]string{"decision: allow", "WITHOUT signature verification"}},
		{"without --args the tools/list view lists an argument condition",
			[]string{"--claims", claims, "--tool", "finance__get_account"}, 0,
			[]string{"view: tools/list", "decision: allow", "decided at call time"}},
		{"with --args the call is decided: own tenant allowed",
			[]string{"--claims", claims, "--tool", "finance__get_account", "--args", `{"account_id":"acme-1"}`}, 0,
			[]string{"view: tools/call", "decision: allow"}},
		{"with --args the call is decided: another tenant hidden",
			[]string{"--claims", claims, "--tool", "finance__get_account", "--args", `{"account_id":"globex-1"}`}, 1,
			[]string{"decision: hidden", "reason: condition_false"}},
		{"a missing argument fails closed",
			[]string{"--claims", claims, "--tool", "finance__get_account", "--args", `{}`}, 1,
			[]string{"decision: hidden", "reason: condition_error"}},
		{"a missing step-up scope is step_up and names the scope",
			[]string{"--claims", claims, "--tool", "finance__pay"}, 1,
			[]string{"decision: step_up", "reason: scope_missing", "tool:write"}},
		{"a tool no pattern matches is tool_unknown",
			[]string{"--claims", claims, "--tool", "crm__x"}, 1,
			[]string{"decision: hidden", "reason: tool_unknown", "rule: -"}},
		{"an allowed prompt names the rule and exits 0",
			[]string{"--claims", claims, "--prompt", "finance__summary"}, 0,
			[]string{"prompt: finance__summary", "view: prompts/list", "decision: allow", "rule: finance__summary", "reason: allowed", "why: every requirement of the rule is met"}},
		{"a prompt whose scope is missing is hidden and names the scope, exits 1",
			[]string{"--claims", claims, "--prompt", "finance__audit_q1"}, 1,
			[]string{"prompt: finance__audit_q1", "decision: hidden", "rule: finance__audit_*", "reason: entitlement_missing", "why: missing scope finance:audit"}},
		{"a prompt missing only a step-up scope is step_up",
			[]string{"--token", token, "--prompt", "finance__close"}, 1,
			[]string{"decision: step_up", "rule: finance__close", "reason: scope_missing", "why: missing step-up scope tool:write"}},
		{"a prompt's --args decide a prompts/get: own tenant allowed",
			[]string{"--claims", claims, "--prompt", "notes__brief", "--args", `{"tenant":"acme"}`}, 0,
			[]string{`view: prompts/get with arguments {"tenant":"acme"}`, "decision: allow", "rule: notes__brief"}},
		{"a prompt's --args decide a prompts/get: another tenant hidden",
			[]string{"--claims", claims, "--prompt", "notes__brief", "--args", `{"tenant":"globex"}`}, 1,
			[]string{"view: prompts/get", "decision: hidden", "reason: condition_false"}},
		{"a prompt is decided by policy.prompts, not policy.tools",
			[]string{"--claims", claims, "--prompt", "finance__list"}, 1,
			[]string{"decision: hidden", "reason: tool_unknown", "rule: -", "why: no policy pattern matches finance__list"}},
		{"an allowed resource is matched as <upstream>__<uri> and exits 0",
			[]string{"--claims", claims, "--resource", "notes://acme/1", "--upstream", "notes"}, 0,
			[]string{"resource: notes://acme/1", "upstream: notes", "matched as: notes__notes://acme/1", "view: resources/read",
				"decision: allow", "rule: notes__notes://acme/*", "reason: allowed"}},
		{"a resource whose scope is missing is hidden, exits 1",
			[]string{"--claims", claims, "--resource", "ledger://2024/q1", "--upstream", "finance"}, 1,
			[]string{"matched as: finance__ledger://2024/q1", "decision: hidden", "rule: finance__ledger://*", "reason: entitlement_missing", "why: missing scope finance:ledger"}},
		{"a resource under a more specific pattern needs its role",
			[]string{"--claims", claims, "--resource", "notes://acme/private/x", "--upstream", "notes"}, 1,
			[]string{"decision: hidden", "rule: notes__notes://acme/private/*", "reason: role_missing", "why: needs one of the roles admin"}},
		{"a resource no pattern matches is tool_unknown",
			[]string{"--claims", claims, "--resource", "notes://globex/1", "--upstream", "notes"}, 1,
			[]string{"decision: hidden", "reason: tool_unknown", "rule: -"}},
		{"--list prints every pattern's list decision, labelled with its kind",
			[]string{"--claims", claims, "--list"}, 0,
			[]string{"KIND PATTERN LIST EFFECT REASON WHY",
				`tool finance__report hidden hidden condition_false condition is false: "finance-analyst" in identity.roles`,
				"tool finance__get_account listed allow allowed", "tool finance__pay listed step_up scope_missing", "tool finance__plan_*",
				"prompt finance__summary listed allow allowed", "prompt finance__audit_* hidden hidden entitlement_missing missing scope finance:audit",
				"prompt finance__close listed step_up scope_missing", "prompt notes__brief listed allow allowed",
				"resource notes__notes://acme/* listed allow allowed", "resource notes__notes://acme/private/* hidden hidden role_missing",
				"resource finance__ledger://* hidden hidden entitlement_missing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			code := run(append([]string{"policy", "explain", "--config", cfg}, tt.args...), &out, &errb)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, out.String(), errb.String())
			}
			// Compared line by line with runs of blanks made one space,
			// so --list's table columns read as words.
			got := singleSpaced(out.String())
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestPolicyExplainUsageErrors(t *testing.T) {
	t.Parallel()
	cfg, claims, _ := explainFiles(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no subcommand", []string{"policy"}, "want a subcommand: explain"},
		{"an unknown subcommand", []string{"policy", "why"}, "want a subcommand: explain"},
		{"neither token nor claims", []string{"policy", "explain", "--config", cfg, "--tool", "x"}, "exactly one of --token JWT and --claims FILE"},
		{"none of tool, prompt, resource and list", []string{"policy", "explain", "--config", cfg, "--claims", claims}, "exactly one of --tool NAME, --prompt NAME, --resource URI and --list"},
		{"tool and prompt", []string{"policy", "explain", "--config", cfg, "--claims", claims, "--tool", "x", "--prompt", "y"}, "exactly one of --tool NAME, --prompt NAME, --resource URI and --list"},
		{"prompt and resource", []string{"policy", "explain", "--config", cfg, "--claims", claims, "--prompt", "y", "--resource", "notes://acme/1"}, "exactly one of --tool NAME, --prompt NAME, --resource URI and --list"},
		{"resource and list", []string{"policy", "explain", "--config", cfg, "--claims", claims, "--resource", "notes://acme/1", "--list"}, "exactly one of --tool NAME, --prompt NAME, --resource URI and --list"},
		{"args with list", []string{"policy", "explain", "--config", cfg, "--claims", claims, "--list", "--args", "{}"}, "--args goes with --tool or --prompt, not --list"},
		{"args with resource", []string{"policy", "explain", "--config", cfg, "--claims", claims, "--resource", "notes://acme/1", "--upstream", "notes", "--args", "{}"}, "--args goes with --tool or --prompt, not --resource"},
		{"prompt arguments that are not an object", []string{"policy", "explain", "--config", cfg, "--claims", claims, "--prompt", "notes__brief", "--args", `"acme"`}, "--args must be a JSON object"},
		{"a resource without its upstream among several", []string{"policy", "explain", "--config", cfg, "--claims", claims, "--resource", "notes://acme/1"}, "--resource needs --upstream NAME"},
		{"a resource under an unknown upstream", []string{"policy", "explain", "--config", cfg, "--claims", claims, "--resource", "notes://acme/1", "--upstream", "crm"}, `--upstream "crm" is not an upstream of the configuration (finance, notes)`},
		{"arguments that are not an object", []string{"policy", "explain", "--config", cfg, "--claims", claims, "--tool", "x", "--args", "[1]"}, "--args must be a JSON object"},
		{"a token that is not a JWT", []string{"policy", "explain", "--config", cfg, "--token", "abc", "--tool", "x"}, "not a compact JWT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			if code := run(tt.args, &out, &errb); code != 2 || !strings.Contains(errb.String(), tt.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 and %q", code, errb.String(), tt.want)
			}
		})
	}
}

// singleSpaced returns s with every line's runs of blanks made one space.
func singleSpaced(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}

func TestPolicyExplainResourceOfTheOnlyUpstream(t *testing.T) {
	t.Parallel()
	cfg, claims, _ := explainFiles(t)
	data, _ := os.ReadFile(cfg)
	one := strings.Replace(string(data), "  - name: notes\n    mcp: { url: \"http://127.0.0.1:5056/mcp\" }\n", "", 1)
	one = strings.Replace(one, `    "notes__brief":
      scopes: ["tool:read"]
      when: 'request.arguments.tenant == identity.tenant'
`, "", 1)
	one = strings.Replace(one, `    "notes__notes://acme/*": { scopes: ["tool:read"] }
    "notes__notes://acme/private/*": { scopes: ["tool:read"], roles: ["admin"] }
`, "", 1)
	if one == string(data) || strings.Contains(one, "notes") {
		t.Fatalf("the configuration was not cut down to one upstream:\n%s", one)
	}
	if err := os.WriteFile(cfg, []byte(one), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"policy", "explain", "--config", cfg, "--claims", claims, "--resource", "ledger://2024/q1"}, &out, &errb)
	for _, w := range []string{"upstream: finance", "matched as: finance__ledger://2024/q1", "decision: hidden", "reason: entitlement_missing"} {
		if code != 1 || !strings.Contains(out.String(), w) {
			t.Fatalf("exit %d, want 1 and %q in stdout:\n%s\nstderr:\n%s", code, w, out.String(), errb.String())
		}
	}
}

func TestPolicyExplainRejectsAnInvalidConfig(t *testing.T) {
	t.Parallel()
	cfg, claims, _ := explainFiles(t)
	data, _ := os.ReadFile(cfg)
	bad := strings.Replace(string(data), `'"finance-analyst" in identity.roles'`, `'"finance-analyst" in identity.roles &&'`, 1)
	if err := os.WriteFile(cfg, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"policy", "explain", "--config", cfg, "--claims", claims, "--tool", "finance__report"}, &out, &errb)
	if code != 1 || !strings.Contains(out.String(), `policy.tools["finance__report"].when: invalid CEL condition at 1:`) {
		t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
}
