package mcp_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/gatewaystack/gatewaystack/config"
)

// celPolicy puts the conditions on the rec upstream's tools.
func celPolicy() map[string]config.ToolRule {
	return map[string]config.ToolRule{
		// Depends on the arguments: listed, decided per call.
		"rec__echo": {Scopes: []string{baselineScope}, When: `request.arguments.text.startsWith(identity.tenant + "-")`},
		// Depends on the identity alone: decided at list time.
		"rec__fancy": {Scopes: []string{baselineScope}, When: `"finance-analyst" in identity.roles`},
		// Reads a claim the token may lack: an error, which fails closed.
		"rec__adder": {Scopes: []string{baselineScope}, When: `identity.claims["plan"] in ["pro", "enterprise"]`},
		// Reads the upstream, known only once the tool is resolved.
		"rec__write_thing": {AnyScopes: []string{"crm:read", baselineScope}, When: `request.upstream == "rec"`},
	}
}

func TestCELConditionsDecideListAndCall(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{policy: celPolicy()})
	plain := g.minter.token("alice", baselineScope)
	c := g.minter.claims("bob", baselineScope)
	c["roles"] = []string{"finance-analyst"}
	c["plan"] = "pro"
	analyst := g.minter.sign(c)

	t.Run("tools/list shows a tool whose condition could still hold for some arguments", func(t *testing.T) {
		sid := g.initialize(t, plain)
		names := toolNames(t, g.list(t, plain, sid).result(t))
		if !slices.Contains(names, "rec__echo") || !slices.Contains(names, "rec__write_thing") {
			t.Fatalf("listed %v, want rec__echo and rec__write_thing", names)
		}
		if slices.Contains(names, "rec__fancy") || slices.Contains(names, "rec__adder") {
			t.Fatalf("listed %v: a condition that cannot hold (or errs) must hide the tool", names)
		}
	})
	t.Run("tools/list shows identity-conditioned tools to whom they hold", func(t *testing.T) {
		sid := g.initialize(t, analyst)
		names := toolNames(t, g.list(t, analyst, sid).result(t))
		for _, want := range []string{"rec__echo", "rec__fancy", "rec__adder", "rec__write_thing"} {
			if !slices.Contains(names, want) {
				t.Errorf("listed %v, want %s", names, want)
			}
		}
	})

	sid := g.initialize(t, plain)
	tests := []struct {
		name   string
		token  string
		tool   string
		args   map[string]any
		ok     bool
		reason string
	}{
		{"a call whose arguments satisfy the condition runs", plain, "rec__echo", map[string]any{"text": "acme-hello"}, true, "allowed"},
		{"a call whose arguments fail the condition looks like an unknown tool", plain, "rec__echo", map[string]any{"text": "globex-hello"}, false, "condition_false"},
		{"a call missing the argument fails closed", plain, "rec__echo", map[string]any{}, false, "condition_error"},
		{"an identity condition that is false refuses the call", plain, "rec__fancy", nil, false, "condition_false"},
		{"a missing claim refuses the call", plain, "rec__adder", nil, false, "condition_error"},
		{"a condition on the upstream is decided once it is resolved", plain, "rec__write_thing", nil, true, "allowed"},
		{"the analyst may call the identity-conditioned tool", analyst, "rec__fancy", nil, true, "allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := sid
			if tt.token != plain {
				s = g.initialize(t, tt.token)
			}
			r := g.call(t, tt.token, s, tt.tool, tt.args)
			if tt.ok {
				r.result(t)
			} else {
				_, msg, _ := r.rpcError(t)
				if msg != "Unknown tool: "+tt.tool {
					t.Fatalf("error %q, want the unknown-tool answer", msg)
				}
			}
			lines := g.audit.forRequest(t, r.Header.Get("X-Request-Id"))
			if len(lines) != 1 || lines[0]["reason"] != tt.reason || lines[0]["rule"] != tt.tool {
				t.Fatalf("audit %v, want reason %s and rule %s", lines, tt.reason, tt.tool)
			}
		})
	}
	if n := g.upstream.toolRunsNamed("echo"); n != 1 {
		t.Fatalf("the upstream ran echo %d times, want only the allowed call", n)
	}
}

func TestBuildRefusesABadCondition(t *testing.T) {
	t.Parallel()
	cfg := &config.Config{}
	cfg.Auth.Issuer = testIssuer
	cfg.Auth.Audience = "http://127.0.0.1:8080/mcp"
	cfg.Upstreams = []config.Upstream{{Name: "rec", MCP: &config.MCPUpstream{URL: "http://127.0.0.1:1/mcp"}}}
	cfg.Policy.Tools = map[string]config.ToolRule{"rec__*": {When: `identity.roles.contains(`}}
	cfg.SetDefaults()
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), `policy.tools["rec__*"].when`) || !strings.Contains(err.Error(), "1:") {
		t.Fatalf("got %v, want a problem naming the rule's when and a position", err)
	}
}

func TestReloadPolicyAppliesAGoodPolicyAndKeepsTheOldOnABadOne(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{policy: map[string]config.ToolRule{"rec__echo": {Scopes: []string{baselineScope}}}})
	tok := g.minter.token("alice", baselineScope)
	sid := g.initialize(t, tok)
	listed := func() []string { return toolNames(t, g.list(t, tok, sid).result(t)) }
	if got := listed(); !slices.Equal(got, []string{"rec__echo"}) {
		t.Fatalf("before: %v", got)
	}
	next := func(tools map[string]config.ToolRule) *config.Config {
		c := *g.srv.Config()
		c.Policy.Tools = tools
		return &c
	}

	bad := next(map[string]config.ToolRule{"rec__*": {When: `identity.roles.contains(`}})
	if err := g.srv.ReloadPolicy(bad); err == nil || !strings.Contains(err.Error(), `policy.tools["rec__*"].when`) {
		t.Fatalf("a bad policy: got %v, want its problems", err)
	}
	if got := listed(); !slices.Equal(got, []string{"rec__echo"}) {
		t.Fatalf("after a rejected reload the old policy must stay: %v", got)
	}

	good := next(map[string]config.ToolRule{"rec__fancy": {Scopes: []string{baselineScope}}})
	if err := g.srv.ReloadPolicy(good); err != nil {
		t.Fatal(err)
	}
	if got := listed(); !slices.Equal(got, []string{"rec__fancy"}) {
		t.Fatalf("after reload: %v", got)
	}
	if _, msg, _ := g.call(t, tok, sid, "rec__echo", map[string]any{"text": "x"}).rpcError(t); msg != "Unknown tool: rec__echo" {
		t.Fatalf("a tool the new policy drops must be refused: %q", msg)
	}
	g.call(t, tok, sid, "rec__fancy", nil).result(t)
}
