package config

import (
	"net/url"
	"strings"

	"github.com/gatewaystack/gatewaystack/safehttp"
)

// Auth0 configures the Auth0 integration: the log-stream webhook that
// promotes dynamically registered clients (POST /webhooks/auth0/logs) and
// the Management API checks of /health/auth0. Off unless WebhookSecret is
// set.
type Auth0 struct {
	// Domain is the Auth0 tenant domain, e.g. example.us.auth0.com
	// (AUTH0_DOMAIN or MGMT_DOMAIN).
	Domain string `yaml:"domain"`
	// ManagementURL is the Management API base URL (default
	// https://<domain>); its /oauth/token issues the Management API token.
	ManagementURL string `yaml:"management_url"`
	// ClientID and ClientSecret are the machine-to-machine application's
	// credentials (AUTH0_MGMT_CLIENT_ID / MGMT_CLIENT_ID,
	// AUTH0_MGMT_CLIENT_SECRET / MGMT_CLIENT_SECRET). Prefer the
	// environment for the secret.
	ClientID     string `yaml:"client_id"`
	ClientSecret string `yaml:"client_secret"`
	// WebhookSecret is the shared secret the log stream sends in the
	// X-Webhook-Secret header (LOG_WEBHOOK_SECRET or WEBHOOK_SHARED_SECRET);
	// empty turns the webhook off.
	WebhookSecret string `yaml:"webhook_secret"`
	// Connection is enabled for each promoted client (GOOGLE_CONNECTION_NAME;
	// default google-oauth2).
	Connection string `yaml:"connection"`
	// Audience is the API the promoted clients get a grant for (default
	// auth.audience).
	Audience string `yaml:"audience"`
	// Scopes granted; default: every scope the policy names.
	Scopes []string `yaml:"scopes"`
}

// Enabled reports whether the webhook is on.
func (a Auth0) Enabled() bool { return a.WebhookSecret != "" }

// ManagementConfigured reports whether Management API credentials are set.
func (a Auth0) ManagementConfigured() bool {
	return a.ManagementURL != "" && a.ClientID != "" && a.ClientSecret != ""
}

func (c *Config) applyAuth0Env(getenv func(string) string) {
	set := func(dst *string, names ...string) {
		for _, n := range names {
			if v := strings.TrimSpace(getenv(n)); v != "" {
				*dst = v
				return
			}
		}
	}
	a := &c.Auth0
	set(&a.Domain, "AUTH0_DOMAIN", "MGMT_DOMAIN")
	set(&a.ClientID, "AUTH0_MGMT_CLIENT_ID", "MGMT_CLIENT_ID")
	set(&a.ClientSecret, "AUTH0_MGMT_CLIENT_SECRET", "MGMT_CLIENT_SECRET")
	set(&a.WebhookSecret, "LOG_WEBHOOK_SECRET", "WEBHOOK_SHARED_SECRET")
	set(&a.Connection, "GOOGLE_CONNECTION_NAME")
}

func (c *Config) setAuth0Defaults() {
	a := &c.Auth0
	if a.ManagementURL == "" && a.Domain != "" {
		d := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(a.Domain, "https://"), "http://"), "/")
		a.ManagementURL = "https://" + d
	}
	a.ManagementURL = strings.TrimSuffix(a.ManagementURL, "/")
	if a.Connection == "" {
		a.Connection = "google-oauth2"
	}
	if a.Audience == "" {
		a.Audience = c.Auth.Audience
	}
}

func validateAuth0(a *Auth0, add func(field, format string, args ...any)) {
	if a.ManagementURL != "" {
		u, err := url.Parse(a.ManagementURL)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			add("auth0.management_url", "%q is not an absolute http(s) URL; set auth0.domain (e.g. example.us.auth0.com) or the URL", a.ManagementURL)
		case u.Scheme == "http" && !safehttp.IsLoopbackHost(u.Hostname()):
			add("auth0.management_url", "%q is plain http; the Management API takes credentials, use https (http is allowed for loopback only)", a.ManagementURL)
		}
	}
	if !a.Enabled() {
		return
	}
	if len(a.WebhookSecret) < 16 {
		add("auth0.webhook_secret", "too short (%d characters); use at least 16 random characters (openssl rand -hex 32)", len(a.WebhookSecret))
	}
	if !a.ManagementConfigured() {
		add("auth0", "the webhook needs the Management API: set auth0.domain (AUTH0_DOMAIN), auth0.client_id (AUTH0_MGMT_CLIENT_ID) and auth0.client_secret (AUTH0_MGMT_CLIENT_SECRET)")
	}
	if a.Audience == "" {
		add("auth0.audience", "required; the API identifier promoted clients are granted (default auth.audience)")
	}
}
