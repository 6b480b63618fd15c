package mcp_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatewaystack/gatewaystack/config"
)

// buildStdioServer builds the test MCP server of the upstream package (a
// real child process that reports what it received).
func buildStdioServer(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the stdio test server:", err)
	}
	out := filepath.Join(t.TempDir(), "stdioserver")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, "../upstream/testdata/stdioserver")
	cmd.Env = append(os.Environ(), "GOPROXY=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// A stdio upstream behind the gateway: its tools are listed with the
// prefix, calls reach the child with the caller's verified identity in
// _meta (in both protocol eras), and the child's environment holds what
// the configuration lists and none of the gateway's secrets. (t.Setenv:
// not parallel.)
func TestStdioUpstreamThroughTheGateway(t *testing.T) {
	t.Setenv("GATEWAYSTACK_TEST_SECRET", "hunter2")
	t.Setenv("GATEWAYSTACK_TEST_SHARED", "shared-value")
	bin := buildStdioServer(t)
	g := newGateway(t, gatewayOptions{
		upstreams: []config.Upstream{{Name: "kid", Stdio: &config.StdioUpstream{
			Command:    bin,
			InheritEnv: []string{"GATEWAYSTACK_TEST_SHARED"},
			Env:        map[string]string{"FROM_CONFIG": "${GATEWAYSTACK_TEST_SHARED}/x"},
			StopGrace:  time.Second,
		}}},
		policy: map[string]config.ToolRule{"kid__*": {Scopes: []string{baselineScope}}},
	})
	token := g.minter.token("alice", baselineScope)
	sid := g.initialize(t, token)

	names := toolNames(t, g.list(t, token, sid).result(t))
	for _, want := range []string{"kid__whoami", "kid__env", "kid__sleep"} {
		if !slices.Contains(names, want) {
			t.Errorf("tools/list = %q, want %s", names, want)
		}
	}

	wantID := `{"sub":"alice","tenant":"acme","scopes":["tool:read"],"client_id":"test-client"}`
	structured := func(t *testing.T, result json.RawMessage) map[string]json.RawMessage {
		t.Helper()
		var res struct {
			StructuredContent map[string]json.RawMessage `json:"structuredContent"`
		}
		if err := json.Unmarshal(result, &res); err != nil {
			t.Fatalf("tools/call result: %v: %s", err, result)
		}
		return res.StructuredContent
	}

	t.Run("session era", func(t *testing.T) {
		out := structured(t, g.call(t, token, sid, "kid__whoami", map[string]any{"marker": "legacy"}).result(t))
		if !jsonEqual(t, out["identity"], []byte(wantID)) {
			t.Errorf("identity in _meta = %s, want %s", out["identity"], wantID)
		}
	})
	t.Run("2026-07-28 era", func(t *testing.T) {
		out := structured(t, g.modernCall(t, token, "kid__whoami", map[string]any{"marker": "modern"}).result(t))
		if !jsonEqual(t, out["meta"], []byte(`{"io.gatewaystack/identity":`+wantID+`}`)) {
			t.Errorf("_meta = %s, want only the identity (the era keys removed)", out["meta"])
		}
	})
	t.Run("environment", func(t *testing.T) {
		var env []string
		if err := json.Unmarshal(structured(t, g.call(t, token, sid, "kid__env", nil).result(t))["env"], &env); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"GATEWAYSTACK_TEST_SHARED=shared-value", "FROM_CONFIG=shared-value/x"} {
			if !slices.Contains(env, want) {
				t.Errorf("child environment %q lacks %s", env, want)
			}
		}
		for _, kv := range env {
			name, _, _ := strings.Cut(kv, "=")
			if !slices.Contains([]string{"PATH", "HOME", "GATEWAYSTACK_TEST_SHARED", "FROM_CONFIG"}, name) {
				t.Errorf("child environment has %s, which the configuration does not list", name)
			}
		}
	})
	t.Run("a crash is a JSON-RPC error naming the upstream; the next call is served by a new process", func(t *testing.T) {
		code, msg, _ := g.call(t, token, sid, "kid__crash", nil).rpcError(t)
		if code != -32603 || !strings.Contains(msg, "upstream kid") {
			t.Errorf("crash answered %d %q, want an internal error naming upstream kid", code, msg)
		}
		out := structured(t, g.call(t, token, sid, "kid__whoami", nil).result(t))
		if !jsonEqual(t, out["identity"], []byte(wantID)) {
			t.Errorf("after the restart: identity = %s", out["identity"])
		}
	})
}
