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
policy:
  tools:
    "finance__*": { scopes: ["tool:read"] }
    "finance__report": { scopes: ["tool:read"], when: '"finance-analyst" in identity.roles' }
    "finance__get_account":
      scopes: ["tool:read"]
      when: 'request.arguments.account_id.startsWith(identity.tenant + "-")'
    "finance__pay": { scopes: ["tool:write"] }
    "finance__plan_*": { any_scopes: ["tool:read"], when: 'identity.claims["plan"] in ["pro", "enterprise"]' }
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
		{"--list prints every pattern's tools/list decision",
			[]string{"--claims", claims, "--list"}, 0,
			[]string{"PATTERN", "finance__report", "condition_false", "finance__get_account", "listed", "finance__pay", "step_up", "finance__plan_*"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			code := run(append([]string{"policy", "explain", "--config", cfg}, tt.args...), &out, &errb)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, out.String(), errb.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
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
		{"neither tool nor list", []string{"policy", "explain", "--config", cfg, "--claims", claims}, "exactly one of --tool NAME and --list"},
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
