package conformance

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// allCheckIDs are the checks Run performs, in order. A check that
// disappears from the report fails the tests.
var allCheckIDs = []string{
	"challenge-no-token", "challenge-not-bearer", "prm-path", "prm-root", "health", "token-valid",
	"token-expired", "token-wrong-audience", "token-wrong-issuer", "token-unknown-key", "token-alg-none",
	"token-alg-hs256-confusion", "token-tampered-payload", "token-expired-signed",
	"step-up-403", "step-up-granted",
}

func checkIDs(r Report) []string {
	ids := make([]string, len(r.Checks))
	for i, c := range r.Checks {
		ids[i] = c.ID
	}
	return ids
}

// TestRunAgainstDemo runs the checks against a real `gatewaystack demo`
// process, in-process through Run and through the `gatewaystack
// conformance` command: every check passes, except the correctly signed
// expired token, which is skipped unless asked for.
func TestRunAgainstDemo(t *testing.T) {
	t.Parallel()
	d := startDemo(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Run("in-process", func(t *testing.T) {
		rep, err := Run(ctx, Options{URL: d.gateway, Issuer: d.issuer})
		if err != nil {
			t.Fatal(err)
		}
		if got := checkIDs(rep); !reflect.DeepEqual(got, allCheckIDs) {
			t.Errorf("checks = %v, want %v", got, allCheckIDs)
		}
		for _, c := range rep.Checks {
			want := Pass
			if c.ID == "token-expired-signed" {
				want = Skip
			}
			if c.Status != want {
				t.Errorf("%s (%s): %s, want %s: %s", c.ID, c.Name, c.Status, want, c.Detail)
			}
		}
		if rep.Passed != len(allCheckIDs)-1 || rep.Failed != 0 || rep.Skipped != 1 || !rep.OK() {
			t.Errorf("counts: %d passed, %d failed, %d skipped", rep.Passed, rep.Failed, rep.Skipped)
		}
		// Against the demo the step-up tool is write_note, and the challenge
		// holds the step-up scope and the token's baseline scope.
		c, _ := rep.Check("step-up-403")
		if !strings.Contains(c.Detail, "notes__write_note") || !strings.Contains(c.Detail, `error="insufficient_scope"`) {
			t.Errorf("step-up-403 detail: %s", c.Detail)
		}
		ch, _ := parseBearerChallenge([]string{c.Detail[strings.Index(c.Detail, "Bearer"):]})
		if scope, _ := ch.get("scope"); !slices.Contains(strings.Fields(scope), "tool:write") || !slices.Contains(strings.Fields(scope), "tool:read") {
			t.Errorf("step-up challenge scope %q, want tool:write and tool:read", scope)
		}
		for _, id := range []string{"token-expired", "token-wrong-audience", "token-wrong-issuer", "token-unknown-key", "token-alg-none", "token-alg-hs256-confusion", "token-tampered-payload"} {
			if c, _ := rep.Check(id); !strings.Contains(c.Detail, "401 invalid_token") {
				t.Errorf("%s detail: %s", id, c.Detail)
			}
		}
		if t.Failed() {
			var b strings.Builder
			_ = rep.WriteTable(&b)
			t.Logf("report:\n%s", b.String())
		}
	})

	t.Run("command", func(t *testing.T) {
		out := t.TempDir()
		cmd := exec.CommandContext(ctx, gatewaystackBinary(t), "conformance", "--url", d.gateway, "--issuer", d.issuer, "--out", out)
		cmd.Env = minimalEnv(t)
		cmd.WaitDelay = 5 * time.Second
		stdout, err := cmd.Output()
		if err != nil {
			t.Fatalf("gatewaystack conformance: %v\n%s", err, stdout)
		}
		for _, want := range []string{"PASS", "15 passed, 0 failed, 1 skipped", "report.json"} {
			if !strings.Contains(string(stdout), want) {
				t.Errorf("output lacks %q:\n%s", want, stdout)
			}
		}
		data, err := os.ReadFile(filepath.Join(out, "report.json"))
		if err != nil {
			t.Fatal(err)
		}
		var rep Report
		if err := json.Unmarshal(data, &rep); err != nil {
			t.Fatalf("report.json: %v", err)
		}
		if rep.Failed != 0 || rep.URL != d.gateway || rep.Version == "" || !reflect.DeepEqual(checkIDs(rep), allCheckIDs) {
			t.Errorf("report.json: failed %d, url %q, version %q, checks %v", rep.Failed, rep.URL, rep.Version, checkIDs(rep))
		}
		md, err := os.ReadFile(filepath.Join(out, "report.md"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(md), "| check | id | result | detail |") || !strings.Contains(string(md), "`token-alg-none` | pass |") {
			t.Errorf("report.md:\n%s", md)
		}
	})
}

// TestRunDetectsBrokenGateway runs the checks against a fake gateway that
// accepts any token and publishes wrong metadata: the checks must fail, and
// the command must exit 1.
func TestRunDetectsBrokenGateway(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	issuer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/mint" {
			http.NotFound(w, r)
			return
		}
		tok, err := signRS256(key, map[string]any{"kid": "k1", "typ": "JWT"}, map[string]any{"sub": "x", "exp": time.Now().Add(time.Hour).Unix()})
		if err != nil {
			t.Error(err)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok})
	}))
	defer issuer.Close()
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/.well-known/oauth-protected-resource"):
			_ = json.NewEncoder(w).Encode(map[string]any{"resource": "http://localhost/mcp", "authorization_servers": []string{issuer.URL}})
		case r.URL.Path == "/health":
			_, _ = io.WriteString(w, `{"ok":true}`)
		case r.URL.Path == "/mcp":
			var msg struct {
				ID     any    `json:"id"`
				Method string `json:"method"`
			}
			_ = json.NewDecoder(r.Body).Decode(&msg)
			if msg.ID == nil {
				w.WriteHeader(http.StatusAccepted)
				return
			}
			result := map[string]any{}
			switch msg.Method {
			case "initialize":
				result = map[string]any{"protocolVersion": protocolVersion, "capabilities": map[string]any{}, "serverInfo": map[string]any{"name": "fake", "version": "1"}}
			case "tools/list":
				result = map[string]any{"tools": []any{map[string]any{"name": "anything", "inputSchema": map[string]any{"type": "object"}}}}
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": msg.ID, "result": result})
		default:
			http.NotFound(w, r)
		}
	}))
	defer gw.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := Run(ctx, Options{URL: gw.URL + "/mcp", Issuer: issuer.URL})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Status{
		"challenge-no-token": Fail, "challenge-not-bearer": Fail, "prm-path": Fail, "prm-root": Pass, "health": Pass,
		"token-valid": Pass, "token-expired": Fail, "token-wrong-audience": Fail, "token-wrong-issuer": Fail,
		"token-unknown-key": Fail, "token-alg-none": Fail, "token-alg-hs256-confusion": Fail,
		"token-tampered-payload": Fail, "token-expired-signed": Skip,
		// The metadata lists no scope beyond the baseline, and the
		// challenge gave none: there is no step-up to check.
		"step-up-403": Skip, "step-up-granted": Skip,
	}
	for _, c := range rep.Checks {
		if c.Status != want[c.ID] {
			t.Errorf("%s: %s, want %s: %s", c.ID, c.Status, want[c.ID], c.Detail)
		}
	}
	if rep.OK() {
		t.Error("report is OK for a gateway that accepts every token")
	}

	// The command exits 1 and still writes the report.
	out := t.TempDir()
	cmd := exec.CommandContext(ctx, gatewaystackBinary(t), "conformance", "--url", gw.URL+"/mcp", "--issuer", issuer.URL, "--out", out)
	cmd.Env = minimalEnv(t)
	stdout, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("exit: %v, want code 1\n%s", err, stdout)
	}
	if !strings.Contains(string(stdout), "FAIL") {
		t.Errorf("output lacks FAIL:\n%s", stdout)
	}
	if _, err := os.Stat(filepath.Join(out, "report.json")); err != nil {
		t.Errorf("report.json not written: %v", err)
	}
}

// TestRunOptions: unusable options are an error, not a report.
func TestRunOptions(t *testing.T) {
	t.Parallel()
	for _, o := range []Options{{URL: "", Issuer: "http://127.0.0.1:1"}, {URL: "127.0.0.1:8080/mcp", Issuer: "http://127.0.0.1:1"}, {URL: "http://127.0.0.1:1/mcp", Issuer: "ftp://x"}} {
		if _, err := Run(context.Background(), o); err == nil {
			t.Errorf("Run(%+v) = nil error", o)
		}
	}
}

func TestParseBearerChallenge(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		values []string
		want   map[string]string
		ok     bool
	}{
		{"quoted and token values", []string{`Bearer realm="mcp", error=invalid_token, scope="a b"`}, map[string]string{"realm": "mcp", "error": "invalid_token", "scope": "a b"}, true},
		{"escaped quote and comma inside quotes", []string{`Bearer error_description="bad \"x\", y", realm="r"`}, map[string]string{"error_description": `bad "x", y`, "realm": "r"}, true},
		{"another scheme first in one header", []string{`Basic realm="b", Bearer realm="mcp", scope="s"`}, map[string]string{"realm": "mcp", "scope": "s"}, true},
		{"another scheme in its own header", []string{`Basic realm="b"`, `bearer scope="s"`}, map[string]string{"scope": "s"}, true},
		{"no bearer", []string{`Basic realm="b"`}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch, ok := parseBearerChallenge(tc.values)
			if ok != tc.ok || (ok && !reflect.DeepEqual(ch.params, tc.want)) {
				t.Errorf("got %v %v, want %v %v", ch.params, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestExampleArguments(t *testing.T) {
	t.Parallel()
	got := exampleArguments(json.RawMessage(`{"type":"object","properties":{"s":{"type":"string"},"n":{"type":"integer"},"e":{"enum":["x","y"]},"o":{"type":"string"}},"required":["s","n","e"]}`))
	want := map[string]any{"s": "gatewaystack conformance check", "n": 1, "e": "x"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
