package mcp_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gatewaystack/gatewaystack/config"
	gsmcp "github.com/gatewaystack/gatewaystack/mcp"
)

// The Auth0 webhook is mounted only when configured, checks its secret
// before anything else, and its Management API state shows in
// /health/auth0 (here: a Management API that cannot be reached).
func TestAuth0WebhookIsMountedWithHealth(t *testing.T) {
	t.Parallel()
	const secret = "0123456789abcdef0123456789abcdef"
	g := newGateway(t, gatewayOptions{configure: func(c *config.Config) {
		c.Auth0 = config.Auth0{ManagementURL: closedPortURL(t), ClientID: "m2m", ClientSecret: "m2m-secret-value", WebhookSecret: secret}
		c.Admin.Scope = "gateway:admin"
	}})
	r := do(t, g.client, http.MethodPost, g.URL+gsmcp.Auth0WebhookPath, hdr("X-Webhook-Secret", "wrong", "Content-Type", "application/json"), []byte(`[]`))
	if r.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong secret: %d %s", r.StatusCode, r.body)
	}
	r = do(t, g.client, http.MethodPost, g.URL+gsmcp.Auth0WebhookPath, hdr("X-Webhook-Secret", secret, "Content-Type", "application/json"),
		[]byte(`[{"log_id":"1","data":{"type":"s","description":"Success Login"}}]`))
	if r.StatusCode != http.StatusOK || !strings.Contains(string(r.body), `"skipped":1`) {
		t.Errorf("a batch without registrations: %d %s", r.StatusCode, r.body)
	}
	// Without the admin scope: states only, no details.
	r = do(t, g.client, http.MethodGet, g.URL+"/health/auth0", nil, nil)
	if r.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(r.body), `"auth0_webhook":{"ok":false}`) ||
		strings.Contains(string(r.body), "management_configured") || strings.Contains(string(r.body), "127.0.0.1") {
		t.Errorf("/health/auth0 without credentials = %d %s", r.StatusCode, r.body)
	}
	r = do(t, g.client, http.MethodGet, g.URL+"/health/auth0", http.Header{"Authorization": {bearer(g.minter.token("ops", "gateway:admin"))}}, nil)
	var h struct {
		OK     bool `json:"ok"`
		Checks struct {
			Webhook struct {
				ManagementConfigured bool   `json:"management_configured"`
				TokenObtainable      bool   `json:"token_obtainable"`
				LastWebhookAt        string `json:"last_webhook_at"`
			} `json:"auth0_webhook"`
		} `json:"checks"`
	}
	if err := json.Unmarshal(r.body, &h); err != nil {
		t.Fatalf("/health/auth0 %s: %v", r.body, err)
	}
	if r.StatusCode != http.StatusServiceUnavailable || h.OK || !h.Checks.Webhook.ManagementConfigured || h.Checks.Webhook.TokenObtainable || h.Checks.Webhook.LastWebhookAt == "" {
		t.Errorf("/health/auth0 = %d %s", r.StatusCode, r.body)
	}
	if strings.Contains(string(r.body), "m2m-secret-value") || strings.Contains(string(r.body), secret) {
		t.Error("/health/auth0 shows a secret")
	}
}

// Without auth0.webhook_secret there is no webhook.
func TestAuth0WebhookOffByDefault(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{})
	r := do(t, g.client, http.MethodPost, g.URL+gsmcp.Auth0WebhookPath, hdr("Content-Type", "application/json"), []byte(`[]`))
	if r.StatusCode != http.StatusNotFound {
		t.Errorf("webhook without configuration: %d", r.StatusCode)
	}
}
