package conformance

// The official MCP Inspector's CLI (@modelcontextprotocol/inspector, pinned
// in npm/) against a real `gatewaystack demo`.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// inspectorTimeout bounds one Inspector CLI run.
const inspectorTimeout = time.Minute

// Inspector CLI exit codes (INTEROP.md): 0 ok, 3 auth required.
const (
	inspectorOK           = 0
	inspectorAuthRequired = 3
)

// TestInspectorCLI: with a minted token the Inspector lists the tools
// through the gateway and calls one; without a token it exits with its
// auth-required code.
func TestInspectorCLI(t *testing.T) {
	t.Parallel()
	tl := requireTools(t)
	d := startDemo(t)

	inspect := func(t *testing.T, args ...string) (int, string) {
		t.Helper()
		args = append([]string{tl.inspector, "--cli", d.gateway, "--transport", "http", "--format", "json", "-q"}, args...)
		p := startProc(t, "inspector --cli", "", minimalEnv(t), tl.node, args...)
		p.wait(t, inspectorTimeout)
		return p.exitCode(), p.stdout.String() + p.output.String()
	}

	t.Run("tools/list with a token", func(t *testing.T) {
		t.Parallel()
		tok := mintToken(t, d.issuer, "alice", "tool:read")
		code, out := inspect(t, "--method", "tools/list", "--header", "Authorization: Bearer "+tok)
		if code != inspectorOK {
			t.Fatalf("exit code %d, want %d: %s", code, inspectorOK, out)
		}
		var res struct {
			Result struct {
				Tools []struct {
					Name string `json:"name"`
				} `json:"tools"`
			} `json:"result"`
		}
		if err := json.Unmarshal([]byte(firstJSONObject(out)), &res); err != nil {
			t.Fatalf("output is not the JSON result (%v): %s", err, out)
		}
		var names []string
		for _, tool := range res.Result.Tools {
			names = append(names, tool.Name)
		}
		slices.Sort(names)
		// write_note needs the step-up scope: listed; delete_all_notes
		// needs an entitlement: hidden.
		if want := []string{"notes__list_notes", "notes__read_note", "notes__write_note"}; !slices.Equal(names, want) {
			t.Errorf("tools = %v, want %v", names, want)
		}
	})

	t.Run("tools/call with a token", func(t *testing.T) {
		t.Parallel()
		tok := mintToken(t, d.issuer, "carol", "tool:read tool:write")
		code, out := inspect(t, "--method", "tools/call", "--tool-name", "notes__write_note",
			"--tool-arg", "title=from-inspector", "--tool-arg", "text=hello", "--header", "Authorization: Bearer "+tok)
		if code != inspectorOK {
			t.Fatalf("exit code %d, want %d: %s", code, inspectorOK, out)
		}
		if !strings.Contains(out, "saved note") || strings.Contains(out, `"isError":true`) {
			t.Errorf("unexpected result: %s", out)
		}
	})

	t.Run("without a token", func(t *testing.T) {
		t.Parallel()
		code, out := inspect(t, "--method", "tools/list")
		if code != inspectorAuthRequired {
			t.Fatalf("exit code %d, want %d (auth required): %s", code, inspectorAuthRequired, out)
		}
		if !strings.Contains(out, "auth_required") {
			t.Errorf("output does not say auth_required: %s", out)
		}
	})
}

// mintToken asks the demo issuer's /mint for a token.
func mintToken(t *testing.T, issuer, sub, scope string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"sub": sub, "scope": scope, "expires_in": 600})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, issuer+"/mint", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("mint: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var mr struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &mr) != nil || mr.AccessToken == "" {
		t.Fatalf("mint: HTTP %d: %s", resp.StatusCode, b)
	}
	return mr.AccessToken
}

// firstJSONObject returns the text from the first '{' on (the Inspector may
// print warnings before its JSON).
func firstJSONObject(s string) string {
	if i := strings.IndexByte(s, '{'); i >= 0 {
		return strings.TrimSpace(s[i:])
	}
	return s
}
