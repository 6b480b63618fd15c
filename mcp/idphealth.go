package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gatewaystack/gatewaystack/auth"
)

// IdPHealthPaths serve the identity provider's health; /health/auth0 is the
// original product's name for it.
var IdPHealthPaths = []string{"/health/idp", "/health/auth0"}

// idpCacheFor is how long an IdP health answer is reused: the endpoint is
// unauthenticated, so it must not let callers make the gateway fetch from
// the issuer at will.
const idpCacheFor = 10 * time.Second

// IdPOptions configures /health/idp.
type IdPOptions struct {
	// Issuer and JWKSURI are the configured issuer and key set.
	Issuer, JWKSURI string
	// HTTPClient fetches them (bounded by a 5 s timeout per check).
	HTTPClient *http.Client
	// JWKS reports the verifier's key set.
	JWKS func() auth.JWKSStats
	// Extra reports more checks under its name (the Auth0 webhook's
	// Management API and last webhook seen); nil: none.
	Extra func(ctx context.Context) (name string, ok bool, detail any)
}

// IdPHealth is the answer of /health/idp.
type IdPHealth struct {
	OK     bool      `json:"ok"`
	Time   time.Time `json:"time"`
	Issuer struct {
		URL string `json:"url"`
		// Metadata: the issuer's OAuth/OIDC metadata could be fetched and
		// names the same issuer.
		Metadata bool   `json:"metadata_reachable"`
		Error    string `json:"error,omitempty"`
	} `json:"issuer"`
	JWKS struct {
		URI       string `json:"uri"`
		Reachable bool   `json:"reachable"`
		Keys      int    `json:"keys"`
		Loaded    bool   `json:"loaded"`
		// Stale: the endpoint has failed for longer than auth.jwks_max_stale;
		// requests are refused until a fetch succeeds.
		Stale     bool      `json:"stale"`
		Fetches   int64     `json:"fetches"`
		Failures  int64     `json:"failures"`
		LastFetch time.Time `json:"last_fetch,omitzero"`
		Error     string    `json:"error,omitempty"`
	} `json:"jwks"`
	// Checks holds the extra checks by name.
	Checks map[string]any `json:"checks,omitempty"`
	// checksOK is each extra check's outcome (what the summary keeps).
	checksOK map[string]bool
}

// idpHealth serves /health/idp with a short-lived cache.
type idpHealth struct {
	o IdPOptions
	// details reports whether a request may see the URLs and errors
	// (a token with the admin scope); the others get states only.
	details func(*http.Request) bool

	mu     sync.Mutex
	at     time.Time
	cached IdPHealth
}

func (h *idpHealth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if time.Since(h.at) > idpCacheFor {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		h.cached = h.check(ctx)
		cancel()
		h.at = time.Now()
	}
	status := http.StatusOK
	if !h.cached.OK {
		status = http.StatusServiceUnavailable
	}
	out := h.cached
	if h.details == nil || !h.details(r) {
		out = out.summary()
	}
	writeHealth(w, status, out)
}

// summary is the report without what names the identity provider's
// addresses or says how it failed: the states alone.
func (r IdPHealth) summary() IdPHealth {
	r.Issuer.URL, r.Issuer.Error = "", ""
	r.JWKS.URI, r.JWKS.Error = "", ""
	if len(r.Checks) > 0 {
		checks := make(map[string]any, len(r.Checks))
		for name := range r.Checks {
			checks[name] = map[string]bool{"ok": r.checksOK[name]}
		}
		r.Checks = checks
	}
	return r
}

func (h *idpHealth) check(ctx context.Context) IdPHealth {
	var out IdPHealth
	out.Time = time.Now().UTC()
	out.Issuer.URL = h.o.Issuer
	out.JWKS.URI = h.o.JWKSURI
	if err := h.checkMetadata(ctx); err != nil {
		out.Issuer.Error = err.Error()
	} else {
		out.Issuer.Metadata = true
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := h.getJSON(ctx, h.o.JWKSURI, &set); err != nil {
		out.JWKS.Error = err.Error()
	} else if len(set.Keys) == 0 {
		out.JWKS.Error = "the key set holds no keys"
	} else {
		out.JWKS.Reachable = true
	}
	if h.o.JWKS != nil {
		st := h.o.JWKS()
		out.JWKS.Keys, out.JWKS.Loaded, out.JWKS.Fetches, out.JWKS.Failures, out.JWKS.LastFetch = st.Keys, st.Ready, st.Fetches, st.Failures, st.LastOK
		out.JWKS.Stale = st.Stale
	}
	out.OK = out.JWKS.Reachable && out.JWKS.Loaded && !out.JWKS.Stale
	if h.o.Extra != nil {
		name, ok, detail := h.o.Extra(ctx)
		out.Checks = map[string]any{name: detail}
		out.checksOK = map[string]bool{name: ok}
		out.OK = out.OK && ok
	}
	return out
}

// checkMetadata fetches the issuer's RFC 8414 metadata, else its OpenID
// configuration, and checks that it names the issuer.
func (h *idpHealth) checkMetadata(ctx context.Context) error {
	base := strings.TrimSuffix(h.o.Issuer, "/")
	var lastErr error
	for _, u := range []string{base + "/.well-known/oauth-authorization-server", base + "/.well-known/openid-configuration"} {
		var md struct {
			Issuer string `json:"issuer"`
		}
		if err := h.getJSON(ctx, u, &md); err != nil {
			lastErr = err
			continue
		}
		if strings.TrimSuffix(md.Issuer, "/") != base {
			lastErr = fmt.Errorf("the metadata at %s names issuer %q, not %q", u, md.Issuer, h.o.Issuer)
			continue
		}
		return nil
	}
	return lastErr
}

// getJSON fetches u (bounded in time and size) and decodes its JSON.
func (h *idpHealth) getJSON(ctx context.Context, u string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := h.o.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: unreachable", u)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
		return fmt.Errorf("GET %s: not JSON", u)
	}
	return nil
}
