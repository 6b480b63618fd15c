package demo

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

// testClock is a settable clock for expiry tests.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Now().Truncate(time.Second)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// authServer is an Issuer served on a loopback httptest server whose URL is
// the issuer URL, so that endpoints and Location headers are real.
type authServer struct {
	iss   *Issuer
	srv   *httptest.Server
	url   string
	clock *testClock
}

// startAS starts an authorization server. Empty Issuer means the server's
// own URL; empty Audience means testAudience; nil Now means a test clock.
func startAS(t *testing.T, opts IssuerOptions) *authServer {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	as := &authServer{srv: srv, url: "http://" + srv.Listener.Addr().String()}
	if opts.Issuer == "" {
		opts.Issuer = as.url
	}
	if opts.Audience == "" {
		opts.Audience = testAudience
	}
	if opts.Now == nil {
		as.clock = newTestClock()
		opts.Now = as.clock.Now
	}
	iss, err := NewIssuer(opts)
	if err != nil {
		srv.Close()
		t.Fatalf("NewIssuer: %v", err)
	}
	as.iss = iss
	srv.Config.Handler = iss.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	return as
}

// do sends a request without following redirects and returns the response
// with its body read.
func (as *authServer) do(t *testing.T, method, path, contentType string, body io.Reader, header http.Header) (*http.Response, []byte) {
	t.Helper()
	target := path
	if !strings.HasPrefix(path, "http") {
		target = as.url + path
	}
	req, err := http.NewRequestWithContext(t.Context(), method, target, body)
	if err != nil {
		t.Fatalf("build request: %v", err)
	}
	for name, values := range header {
		req.Header[name] = values
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s %s: %v", method, path, err)
	}
	return resp, data
}

// register posts client metadata and returns the registration.
func (as *authServer) register(t *testing.T, metadata string) RegistrationResponse {
	t.Helper()
	resp, data := as.do(t, http.MethodPost, RegisterPath, "application/json", strings.NewReader(metadata), nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /register %s: status %d, body %s", metadata, resp.StatusCode, data)
	}
	var reg RegistrationResponse
	if err := json.Unmarshal(data, &reg); err != nil {
		t.Fatalf("decode registration %s: %v", data, err)
	}
	return reg
}

// registerPublic registers a public client with one loopback redirect URI.
func (as *authServer) registerPublic(t *testing.T) RegistrationResponse {
	t.Helper()
	return as.register(t, `{"client_name":"test client","redirect_uris":["`+testRedirect+`"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"]}`)
}

const testRedirect = "http://127.0.0.1:33418/callback"

// newPKCE returns a random code verifier and its S256 challenge.
func newPKCE(t *testing.T) (verifier, challenge string) {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	verifier = base64.RawURLEncoding.EncodeToString(b)
	return verifier, s256(verifier)
}

// authorizeParams are the parameters of a valid authorization request.
func authorizeParams(clientID, challenge string) url.Values {
	return url.Values{
		"response_type":         {"code"},
		"client_id":             {clientID},
		"redirect_uri":          {testRedirect},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
		"state":                 {"xyz-state"},
		"scope":                 {"tool:read tool:write"},
		"resource":              {testAudience},
	}
}

// authorize sends GET /authorize and returns the response.
func (as *authServer) authorize(t *testing.T, params url.Values) (*http.Response, []byte) {
	t.Helper()
	return as.do(t, http.MethodGet, AuthorizePath+"?"+params.Encode(), "", nil, nil)
}

// redirected checks that resp is a redirect to prefix and returns the
// parameters of its Location.
func redirected(t *testing.T, resp *http.Response, body []byte, prefix string) url.Values {
	t.Helper()
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("status %d, want a redirect; body %s", resp.StatusCode, body)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, prefix) {
		t.Fatalf("Location %q, want it to start with %q", loc, prefix)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatalf("parse Location %q: %v", loc, err)
	}
	return u.Query()
}

// codeFor runs an auto-approved authorization and returns the code.
func (as *authServer) codeFor(t *testing.T, params url.Values) string {
	t.Helper()
	resp, body := as.authorize(t, params)
	q := redirected(t, resp, body, params.Get("redirect_uri"))
	if q.Get("code") == "" {
		t.Fatalf("no code in the redirect: %v", q)
	}
	return q.Get("code")
}

// token posts form to /token, with HTTP Basic credentials when basic has
// two elements.
func (as *authServer) token(t *testing.T, form url.Values, basic ...string) (int, TokenResponse, errorBody, *http.Response) {
	t.Helper()
	header := http.Header{}
	if len(basic) == 2 {
		header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(basic[0])+":"+url.QueryEscape(basic[1]))))
	}
	resp, data := as.do(t, http.MethodPost, TokenPath, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()), header)
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("POST /token Cache-Control = %q, want no-store", got)
	}
	var ok TokenResponse
	var failed errorBody
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(data, &ok); err != nil {
			t.Fatalf("decode token response %s: %v", data, err)
		}
	} else if err := json.Unmarshal(data, &failed); err != nil || failed.Error == "" || failed.ErrorDescription == "" {
		t.Fatalf("token error %d is not an RFC 6749 error with a description: %s", resp.StatusCode, data)
	}
	return resp.StatusCode, ok, failed, resp
}

// mustToken posts form and fails unless it succeeds.
func (as *authServer) mustToken(t *testing.T, form url.Values, basic ...string) TokenResponse {
	t.Helper()
	status, tok, failed, _ := as.token(t, form, basic...)
	if status != http.StatusOK {
		t.Fatalf("POST /token %v: %d %+v", form, status, failed)
	}
	return tok
}

// wantTokenError posts form and checks the error status and code.
func (as *authServer) wantTokenError(t *testing.T, form url.Values, status int, code string, basic ...string) errorBody {
	t.Helper()
	got, _, failed, resp := as.token(t, form, basic...)
	if got != status || failed.Error != code {
		t.Fatalf("POST /token %v: %d %+v, want %d %s", form, got, failed, status, code)
	}
	if status == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Errorf("401 without a Basic WWW-Authenticate challenge: %q", resp.Header.Get("WWW-Authenticate"))
	}
	return failed
}

// codeForm is the token request that exchanges code.
func codeForm(clientID, code, verifier string) url.Values {
	return url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"code_verifier": {verifier},
		"redirect_uri":  {testRedirect},
		"client_id":     {clientID},
		"resource":      {testAudience},
	}
}

func refreshForm(clientID, refresh string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {clientID}}
}

// verifyAccessToken verifies token against the served JWKS at the test
// clock, checks the RFC 9068 header, and returns its claims.
func (as *authServer) verifyAccessToken(t *testing.T, token, audience string) map[string]any {
	t.Helper()
	resp, data := as.do(t, http.MethodGet, JWKSPath, "", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET JWKS: %d", resp.StatusCode)
	}
	set := parseJWKS(t, data)
	now := time.Now
	if as.clock != nil {
		now = as.clock.Now
	}
	if _, err := jwt.ParseString(token,
		jwt.WithKeySet(set),
		jwt.WithIssuer(as.iss.Issuer()),
		jwt.WithAudience(audience),
		jwt.WithClock(jwt.ClockFunc(now)),
	); err != nil {
		t.Fatalf("access token does not verify against the JWKS: %v", err)
	}
	msg, err := jws.ParseString(token)
	if err != nil {
		t.Fatalf("parse JWS: %v", err)
	}
	h := msg.Signatures()[0].ProtectedHeaders()
	typ, _ := h.Type()
	alg, _ := h.Algorithm()
	kid, _ := h.KeyID()
	if typ != "at+jwt" || alg.String() != "RS256" || kid == "" {
		t.Errorf("access token header typ=%q alg=%q kid=%q, want at+jwt, RS256 and a kid", typ, alg, kid)
	}
	return payloadClaims(t, token)
}

var nonceField = regexp.MustCompile(`name="nonce" value="([^"]+)"`)

// approvalNonce returns the nonce of an approval page.
func approvalNonce(t *testing.T, page []byte) string {
	t.Helper()
	m := nonceField.FindSubmatch(page)
	if m == nil {
		t.Fatalf("approval page has no nonce field:\n%s", page)
	}
	return string(m[1])
}

// decide posts an answer to the approval page.
func (as *authServer) decide(t *testing.T, form url.Values) (*http.Response, []byte) {
	t.Helper()
	return as.do(t, http.MethodPost, AuthorizePath, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()), nil)
}

// wantErrorPage checks that an authorization request was answered with the
// HTML error page and not sent anywhere.
func wantErrorPage(t *testing.T, resp *http.Response, body []byte, wantText string) {
	t.Helper()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400 error page; body %s", resp.StatusCode, body)
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		t.Fatalf("error page redirects to %q; it must never redirect", loc)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("error page Content-Type %q", ct)
	}
	if !strings.Contains(string(body), wantText) {
		t.Errorf("error page lacks %q:\n%s", wantText, body)
	}
}

func parseJWKS(t *testing.T, data []byte) jwk.Set {
	t.Helper()
	set, err := jwk.Parse(data)
	if err != nil {
		t.Fatalf("parse JWKS %s: %v", data, err)
	}
	return set
}

// jwtParse verifies token against set at the test clock.
func jwtParse(token string, set jwk.Set, as *authServer) (jwt.Token, error) {
	return jwt.ParseString(token, jwt.WithKeySet(set), jwt.WithIssuer(as.iss.Issuer()), jwt.WithClock(jwt.ClockFunc(as.clock.Now)))
}
