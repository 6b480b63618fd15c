package auth0

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	// maxResponseBytes bounds what is read of any Management API answer.
	maxResponseBytes = 4 << 20
	// maxErrorText bounds the Auth0 error text kept in an error message.
	maxErrorText = 200
	// defaultTokenLifetime is assumed when /oauth/token omits expires_in.
	defaultTokenLifetime = 5 * time.Minute
	// maxTokenRefreshMargin is how long before expiry a token is replaced.
	maxTokenRefreshMargin = time.Minute
)

// Settings the promotion writes; see the package documentation.
const (
	promotedAppType    = "regular_web"
	promotedAuthMethod = "none"
	grantAuthCode      = "authorization_code"
	grantRefreshToken  = "refresh_token"
)

// promotedGrantTypes is what a promoted client may use (a fresh slice each
// call, so no caller can change another's).
func promotedGrantTypes() []string { return []string{grantAuthCode, grantRefreshToken} }

// APIError is a non-2xx answer of the Auth0 Management API or of its token
// endpoint. It carries Auth0's error code and message, never a request or
// response body, so it is safe to log and to show in health.
type APIError struct {
	// Op names the call, e.g. "PATCH /api/v2/clients/{id}".
	Op string
	// Status is the HTTP status code.
	Status int
	// Code is Auth0's error code ("error" or "errorCode"), if any.
	Code string
	// Message is Auth0's message ("message" or "error_description"),
	// truncated.
	Message string
}

// Error implements error.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "auth0: %s: HTTP %d", e.Op, e.Status)
	if e.Code != "" {
		b.WriteString(" ")
		b.WriteString(e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Temporary reports whether retrying the call later may succeed: rate
// limiting, server errors, and a 404 for a client that Auth0 may not show
// yet right after registering it.
func (e *APIError) Temporary() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500 ||
		e.Status == http.StatusRequestTimeout || (e.Status == http.StatusNotFound && e.Op == opGetClient)
}

// permanentError marks an error that retrying cannot fix (configuration,
// permissions, a malformed request).
type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

// permanent wraps err so that retryable reports false.
func permanent(err error) error { return &permanentError{err: err} }

// retryable reports whether a failed promotion is worth another attempt.
// Network errors, timeouts and temporary API errors are; API errors that are
// not temporary and errors marked permanent are not.
func retryable(err error) bool {
	var p *permanentError
	if errors.As(err, &p) {
		return false
	}
	var api *APIError
	if errors.As(err, &api) {
		return api.Temporary()
	}
	return true
}

// Operation names used in errors (the client id is left out on purpose so
// that errors group well; it is logged separately).
const (
	opToken          = "POST /oauth/token"
	opGetClient      = "GET /api/v2/clients/{id}"
	opPatchClient    = "PATCH /api/v2/clients/{id}"
	opGetConnections = "GET /api/v2/connections"
	opPatchConn      = "PATCH /api/v2/connections/{id}"
	opPatchConnCl    = "PATCH /api/v2/connections/{id}/clients"
	opGetGrants      = "GET /api/v2/client-grants"
	opPostGrant      = "POST /api/v2/client-grants"
	opPatchGrant     = "PATCH /api/v2/client-grants/{id}"
)

// management is a small Auth0 Management API client holding one cached
// token.
type management struct {
	base         string // e.g. https://tenant.us.auth0.com, no trailing slash
	clientID     string
	clientSecret string
	connection   string
	audience     string   // API the promoted clients are granted
	scopes       []string // granted scopes (deduplicated, never nil)
	hc           *http.Client
	now          func() time.Time

	// tokMu is held while a token is fetched, so concurrent callers share
	// one /oauth/token request.
	tokMu  sync.Mutex
	tok    string
	tokExp time.Time // when tok stops being used (before its real expiry)
}

// tokenResponse is the answer of /oauth/token.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

// token returns a cached Management API token, fetching one when none is
// cached or the cached one is about to expire.
func (m *management) token(ctx context.Context) (string, error) {
	m.tokMu.Lock()
	defer m.tokMu.Unlock()
	if m.tok != "" && m.now().Before(m.tokExp) {
		return m.tok, nil
	}
	m.tok = ""
	body, err := json.Marshal(map[string]string{
		"grant_type":    "client_credentials",
		"client_id":     m.clientID,
		"client_secret": m.clientSecret,
		"audience":      m.base + "/api/v2/",
	})
	if err != nil {
		return "", fmt.Errorf("auth0: encode token request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.base+"/oauth/token", bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("auth0: build token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	status, raw, err := m.send(req)
	if err != nil {
		return "", fmt.Errorf("auth0: %s: %w", opToken, err)
	}
	if status < 200 || status > 299 {
		return "", apiError(opToken, status, raw)
	}
	var tr tokenResponse
	if err := json.Unmarshal(raw, &tr); err != nil {
		return "", fmt.Errorf("auth0: %s: decode answer: %w", opToken, err)
	}
	if tr.AccessToken == "" {
		return "", fmt.Errorf("auth0: %s: answer has no access_token", opToken)
	}
	life := time.Duration(tr.ExpiresIn) * time.Second
	if life <= 0 {
		life = defaultTokenLifetime
	}
	m.tok = tr.AccessToken
	m.tokExp = m.now().Add(life - min(maxTokenRefreshMargin, life/10))
	return m.tok, nil
}

// invalidate drops tok from the cache if it is still the cached token (a
// concurrent caller may already have replaced it).
func (m *management) invalidate(tok string) {
	m.tokMu.Lock()
	defer m.tokMu.Unlock()
	if m.tok == tok {
		m.tok = ""
	}
}

// send performs req and returns its status and (bounded) body, always
// closing the body.
func (m *management) send(req *http.Request) (int, []byte, error) {
	resp, err := m.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("read answer: %w", err)
	}
	return resp.StatusCode, raw, nil
}

// call performs one authenticated Management API request: in (if not nil)
// is sent as JSON, a 2xx answer is decoded into out (if not nil). A 401
// drops the cached token and the request is made once more with a new one.
func (m *management) call(ctx context.Context, op, method, path string, query url.Values, in, out any) error {
	var payload []byte
	if in != nil {
		var err error
		if payload, err = json.Marshal(in); err != nil {
			return fmt.Errorf("auth0: %s: encode request: %w", op, err)
		}
	}
	u := m.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	for try := 0; try < 2; try++ {
		tok, err := m.token(ctx)
		if err != nil {
			return err
		}
		var body io.Reader
		if payload != nil {
			body = bytes.NewReader(payload)
		}
		req, err := http.NewRequestWithContext(ctx, method, u, body)
		if err != nil {
			return permanent(fmt.Errorf("auth0: %s: build request: %w", op, err))
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Accept", "application/json")
		if payload != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		status, raw, err := m.send(req)
		if err != nil {
			return fmt.Errorf("auth0: %s: %w", op, err)
		}
		if status == http.StatusUnauthorized && try == 0 {
			m.invalidate(tok)
			continue
		}
		if status < 200 || status > 299 {
			return apiError(op, status, raw)
		}
		if out != nil && len(bytes.TrimSpace(raw)) > 0 {
			if err := json.Unmarshal(raw, out); err != nil {
				return fmt.Errorf("auth0: %s: decode answer: %w", op, err)
			}
		}
		return nil
	}
	// Unreachable: the second try returns whatever its status.
	return fmt.Errorf("auth0: %s: unauthorized after a token refresh", op)
}

// apiError builds an APIError from an error answer, keeping only Auth0's
// error code and message.
func apiError(op string, status int, raw []byte) *APIError {
	var b struct {
		Error            string `json:"error"`
		ErrorCode        string `json:"errorCode"`
		Message          string `json:"message"`
		ErrorDescription string `json:"error_description"`
	}
	_ = json.Unmarshal(raw, &b) // a non-JSON body just leaves the fields empty
	code := b.ErrorCode
	if code == "" {
		code = b.Error
	}
	msg := b.Message
	if msg == "" {
		msg = b.ErrorDescription
	}
	return &APIError{Op: op, Status: status, Code: truncate(code, 64), Message: truncate(msg, maxErrorText)}
}

// truncate cuts s to at most n bytes (on a rune boundary) and strips control
// characters, so it is safe in logs.
func truncate(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) <= n {
		return s
	}
	for n > 0 && !utfStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// utfStart reports whether b starts a UTF-8 sequence.
func utfStart(b byte) bool { return b&0xC0 != 0x80 }

// stepResult says what one promotion did, for logs and tests.
type stepResult struct {
	clientPatched     bool
	connectionEnabled bool
	grantCreated      bool
	grantPatched      bool
}

// promote runs the three steps for clientID, each reading state first and
// writing only what is missing.
func (m *management) promote(ctx context.Context, clientID string) (stepResult, error) {
	var res stepResult
	var err error
	if res.clientPatched, err = m.ensureClient(ctx, clientID); err != nil {
		return res, err
	}
	if res.connectionEnabled, err = m.ensureConnection(ctx, clientID); err != nil {
		return res, err
	}
	if res.grantCreated, res.grantPatched, err = m.ensureGrant(ctx, clientID); err != nil {
		return res, err
	}
	return res, nil
}

// clientState is the part of an Auth0 client the promotion looks at.
type clientState struct {
	ClientID                string   `json:"client_id"`
	AppType                 string   `json:"app_type"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	OIDCConformant          bool     `json:"oidc_conformant"`
}

// clientPatch is the body of the client update.
type clientPatch struct {
	AppType                 string   `json:"app_type"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	OIDCConformant          bool     `json:"oidc_conformant"`
}

// promoted reports whether c already has the promoted settings.
func (c clientState) promoted() bool {
	want := promotedGrantTypes()
	got := slices.Clone(c.GrantTypes)
	slices.Sort(want)
	slices.Sort(got)
	return c.AppType == promotedAppType && c.TokenEndpointAuthMethod == promotedAuthMethod &&
		c.OIDCConformant && slices.Equal(slices.Compact(got), want)
}

// ensureClient makes clientID a public authorization-code client; it
// reports whether it had to write.
func (m *management) ensureClient(ctx context.Context, clientID string) (bool, error) {
	path := "/api/v2/clients/" + url.PathEscape(clientID)
	q := url.Values{
		"fields":         {"client_id,app_type,token_endpoint_auth_method,grant_types,oidc_conformant"},
		"include_fields": {"true"},
	}
	var c clientState
	if err := m.call(ctx, opGetClient, http.MethodGet, path, q, nil, &c); err != nil {
		return false, err
	}
	if c.promoted() {
		return false, nil
	}
	patch := clientPatch{
		AppType:                 promotedAppType,
		TokenEndpointAuthMethod: promotedAuthMethod,
		GrantTypes:              promotedGrantTypes(),
		OIDCConformant:          true,
	}
	if err := m.call(ctx, opPatchClient, http.MethodPatch, path, nil, patch, nil); err != nil {
		return false, err
	}
	return true, nil
}

// connectionState is the part of an Auth0 connection the promotion looks
// at. EnabledClients is nil when the tenant no longer returns the property.
type connectionState struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	EnabledClients *[]string `json:"enabled_clients"`
}

// ensureConnection enables the configured connection for clientID; it
// reports whether it had to write.
func (m *management) ensureConnection(ctx context.Context, clientID string) (bool, error) {
	var raw json.RawMessage
	q := url.Values{"name": {m.connection}}
	if err := m.call(ctx, opGetConnections, http.MethodGet, "/api/v2/connections", q, nil, &raw); err != nil {
		return false, err
	}
	var conns []connectionState
	if err := decodeList(raw, "connections", &conns); err != nil {
		return false, fmt.Errorf("auth0: %s: decode answer: %w", opGetConnections, err)
	}
	i := slices.IndexFunc(conns, func(c connectionState) bool { return c.Name == m.connection && c.ID != "" })
	if i < 0 {
		return false, permanent(fmt.Errorf("auth0: connection %q not found; create it or set auth0.connection (GOOGLE_CONNECTION_NAME)", m.connection))
	}
	conn := conns[i]
	path := "/api/v2/connections/" + url.PathEscape(conn.ID)
	if conn.EnabledClients == nil {
		// The tenant hides enabled_clients: enable this one client through
		// the per-connection clients endpoint, which leaves the others as
		// they are and is idempotent.
		body := []map[string]any{{"client_id": clientID, "status": true}}
		if err := m.call(ctx, opPatchConnCl, http.MethodPatch, path+"/clients", nil, body, nil); err != nil {
			return false, err
		}
		return true, nil
	}
	enabled := *conn.EnabledClients
	if slices.Contains(enabled, clientID) {
		return false, nil
	}
	body := map[string][]string{"enabled_clients": append(slices.Clone(enabled), clientID)}
	if err := m.call(ctx, opPatchConn, http.MethodPatch, path, nil, body, nil); err != nil {
		return false, err
	}
	return true, nil
}

// grantState is an Auth0 client grant.
type grantState struct {
	ID       string   `json:"id"`
	ClientID string   `json:"client_id"`
	Audience string   `json:"audience"`
	Scope    []string `json:"scope"`
}

// ensureGrant ensures clientID holds a grant on the configured audience with
// every configured scope; it reports whether it created or patched one.
func (m *management) ensureGrant(ctx context.Context, clientID string) (created, patched bool, err error) {
	if m.audience == "" {
		return false, false, nil
	}
	g, found, err := m.findGrant(ctx, clientID)
	if err != nil {
		return false, false, err
	}
	if !found {
		body := map[string]any{"client_id": clientID, "audience": m.audience, "scope": m.scopes}
		err := m.call(ctx, opPostGrant, http.MethodPost, "/api/v2/client-grants", nil, body, nil)
		var api *APIError
		if err == nil {
			return true, false, nil
		}
		if !errors.As(err, &api) || api.Status != http.StatusConflict {
			return false, false, err
		}
		// Someone created it since the read: read it again and fall
		// through to the scope check.
		if g, found, err = m.findGrant(ctx, clientID); err != nil {
			return false, false, err
		}
		if !found {
			return false, false, fmt.Errorf("auth0: %s answered 409 but no grant for the client and audience is listed", opPostGrant)
		}
	}
	union := slices.Clone(g.Scope)
	for _, s := range m.scopes {
		if !slices.Contains(union, s) {
			union = append(union, s)
		}
	}
	if len(union) == len(g.Scope) {
		return false, false, nil
	}
	path := "/api/v2/client-grants/" + url.PathEscape(g.ID)
	if err := m.call(ctx, opPatchGrant, http.MethodPatch, path, nil, map[string][]string{"scope": union}, nil); err != nil {
		return false, false, err
	}
	return false, true, nil
}

// findGrant returns clientID's grant on the configured audience, if any.
func (m *management) findGrant(ctx context.Context, clientID string) (grantState, bool, error) {
	var raw json.RawMessage
	q := url.Values{"client_id": {clientID}, "audience": {m.audience}}
	if err := m.call(ctx, opGetGrants, http.MethodGet, "/api/v2/client-grants", q, nil, &raw); err != nil {
		return grantState{}, false, err
	}
	var grants []grantState
	if err := decodeList(raw, "client_grants", &grants); err != nil {
		return grantState{}, false, fmt.Errorf("auth0: %s: decode answer: %w", opGetGrants, err)
	}
	for _, g := range grants {
		if g.ClientID == clientID && g.Audience == m.audience && g.ID != "" {
			return g, true, nil
		}
	}
	return grantState{}, false, nil
}

// decodeList decodes a Management API list answer: a plain array, or (when
// totals or pagination are on) an object holding the array under key.
func decodeList(raw json.RawMessage, key string, out any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '{' {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return err
		}
		inner, ok := obj[key]
		if !ok {
			return fmt.Errorf("object answer has no %q list", key)
		}
		raw = inner
	}
	return json.Unmarshal(raw, out)
}
