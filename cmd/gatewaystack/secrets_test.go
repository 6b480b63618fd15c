package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatewaystack/gatewaystack/demo"
)

// A full scripted session with debug logging — sign-in tokens used in both
// eras, a tampered token, an expired admin scope, the admin API, the Auth0
// webhook with its Management API failing, the audit webhook — leaves no
// token, token fragment, client secret or upstream credential in any log
// or audit line.
func TestSecretsNeverLogged(t *testing.T) {
	t.Parallel()
	const (
		upstreamSecret = "up-cred-7f3a9c1e5b2d"
		mgmtSecret     = "mgmt-secret-91be0c4d77aa"
		webhookSecret  = "dcr-webhook-secret-0a1b2c3d4e5f"
		siemSecret     = "siem-token-55e1f0a2b3c4"
	)
	// The notes upstream must receive the credential (proving it is used)
	// while the gateway never logs it.
	var sawCred atomic.Bool
	notes := demo.NewNotes(demo.NotesOptions{}).Handler()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Upstream-Key") == upstreamSecret {
			sawCred.Store(true)
		}
		notes.ServeHTTP(w, r)
	}))
	t.Cleanup(up.Close)
	var siemAuth atomic.Value
	siem := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		siemAuth.Store(r.Header.Get("Authorization"))
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(siem.Close)
	mgmt := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		http.Error(w, `{"error":"access_denied","error_description":"Unauthorized"}`, http.StatusUnauthorized)
	}))
	t.Cleanup(mgmt.Close)

	var gw *proc
	var ports []int
	for attempt := 0; gw == nil; attempt++ {
		if attempt > 1 {
			t.Fatal("ports taken twice in a row")
		}
		ports = freePorts(t, 2)
		issuer, ok := tryStart(t, childEnv(), baseURL(ports[1])+"/health", "issuer", "--addr", addr(ports[1]), "--audience", baseURL(ports[0])+"/mcp")
		if !ok {
			continue
		}
		cfg := fmt.Sprintf(`listen: "%[1]s"
public_url: "%[2]s"
outbound: { allow_http_loopback: true }
auth:
  issuer: "%[3]s"
  audience: "%[2]s/mcp"
  baseline_scopes: ["tool:read"]
  step_up_scopes: ["tool:write"]
upstreams:
  - name: notes
    mcp:
      url: "%[4]s/mcp"
      headers: { X-Upstream-Key: "${UP_KEY}" }
policy:
  tools:
    "notes__*": { scopes: ["tool:read"] }
    notes__write_note: { scopes: ["tool:write"] }
admin:
  scope: "gateway:admin"
audit:
  webhook: { url: "%[5]s", headers: { Authorization: "Bearer ${SIEM_TOKEN}" }, flush_interval: 20ms }
auth0:
  management_url: "%[6]s"
  client_id: "m2m-client"
  webhook_secret: "%[7]s"
log:
  level: debug
`, addr(ports[0]), baseURL(ports[0]), baseURL(ports[1]), up.URL, siem.URL, mgmt.URL, webhookSecret)
		env := childEnv("UP_KEY="+upstreamSecret, "SIEM_TOKEN="+siemSecret, "AUTH0_MGMT_CLIENT_SECRET="+mgmtSecret)
		if gw, ok = tryStart(t, env, baseURL(ports[0])+"/health", "serve", "--config", writeFile(t, "gw.yaml", cfg)); !ok {
			_ = issuer.cmd.Process.Kill()
		}
	}
	base := baseURL(ports[0])
	alice := mint(t, baseURL(ports[1]), "alice", "tool:read tool:write", "acme")
	admin := mint(t, baseURL(ports[1]), "ops", "tool:read gateway:admin", "acme")
	for _, e := range eras {
		c := connect(t, base+"/mcp", alice, e)
		c.mustCall(t, "notes__write_note", map[string]any{"title": "t", "text": "secret note body"})
		c.mustCall(t, "notes__list_notes", nil)
		_ = c.Close()
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	send := func(method, url, auth, body string, extra ...string) int {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		for i := 0; i+1 < len(extra); i += 2 {
			req.Header.Set(extra[i], extra[i+1])
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	tampered := alice[:len(alice)-6] + "AAAAAA"
	if code := send(http.MethodPost, base+"/mcp", "Bearer "+tampered, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`); code != http.StatusUnauthorized {
		t.Errorf("tampered token: %d", code)
	}
	if code := send(http.MethodGet, base+"/admin/api/overview", "Bearer "+alice, ""); code != http.StatusForbidden {
		t.Errorf("admin API without the scope: %d", code)
	}
	if code := send(http.MethodGet, base+"/admin/api/overview", "Bearer "+admin, ""); code != http.StatusOK {
		t.Errorf("admin API: %d", code)
	}
	batch := `[{"log_id":"90020240101","data":{"type":"sapi","description":"Dynamic client registration","client_id":"dcr-client-1","details":{"request":{"method":"POST","path":"/oidc/register"},"response":{"statusCode":201,"body":{"client_id":"dcr-client-1"}}}}}]`
	if code := send(http.MethodPost, base+"/webhooks/auth0/logs", "Bearer "+webhookSecret, batch); code != http.StatusOK {
		t.Errorf("auth0 webhook: %d", code)
	}
	if code := send(http.MethodPost, base+"/webhooks/auth0/logs", "", batch, "X-Webhook-Secret", "wrong-"+webhookSecret); code != http.StatusUnauthorized {
		t.Errorf("auth0 webhook with a wrong secret: %d", code)
	}
	if code := send(http.MethodGet, base+"/health/auth0", "", ""); code != http.StatusServiceUnavailable {
		t.Errorf("/health/auth0 with a failing Management API: %d", code)
	}
	if code, _ := gw.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("exit code %d", code)
	}
	if !sawCred.Load() {
		t.Error("the upstream never received its credential: the test would prove nothing")
	}
	if got, _ := siemAuth.Load().(string); got != "Bearer "+siemSecret {
		t.Errorf("the SIEM got Authorization %q", got)
	}
	outputs := map[string]string{"stdout": gw.stdout.String(), "stderr": gw.stderr.String()}
	if !strings.Contains(outputs["stderr"], `"level":"debug"`) {
		t.Error("no debug line was logged: the test would prove little")
	}
	assertNoTokens(t, outputs, alice, admin, tampered)
	for _, secret := range []string{upstreamSecret, mgmtSecret, webhookSecret, siemSecret, "secret note body"} {
		for name, out := range outputs {
			if strings.Contains(out, secret) {
				t.Errorf("%s contains the secret %.8s…", name, secret)
			}
		}
	}
}
