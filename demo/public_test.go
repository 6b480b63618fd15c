package demo

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// testPassword is the approval password of the public issuers in tests.
const testPassword = "correct horse battery"

// publicIssuer is the URL of a public issuer (behind a tunnel): not on
// loopback. The test server is still reached over loopback.
const publicIssuer = "https://issuer.example"

// startPublicAS starts an authorization server whose issuer URL is public,
// with testPassword unless opts names another.
func startPublicAS(t *testing.T, opts IssuerOptions) *authServer {
	t.Helper()
	opts.Issuer = publicIssuer
	if opts.Password == "" && !opts.AutoApprove {
		opts.Password = testPassword
	}
	return startAS(t, opts)
}

// approvalPage registers a public client, opens the approval page for
// scope and returns the client, the PKCE verifier, the request and the page.
func approvalPage(t *testing.T, as *authServer, scope string) (RegistrationResponse, string, url.Values, string) {
	t.Helper()
	reg := as.registerPublic(t)
	verifier, challenge := newPKCE(t)
	params := authorizeParams(reg.ClientID, challenge)
	params.Set("scope", scope)
	resp, page := as.authorize(t, params)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /authorize: %d %s", resp.StatusCode, page)
	}
	return reg, verifier, params, string(page)
}

// wantPageAgain checks that an approval was answered with the approval
// page again (status, message, a new nonce), not a redirect, and returns
// the page.
func wantPageAgain(t *testing.T, resp *http.Response, body []byte, status int, message string) string {
	t.Helper()
	if resp.StatusCode != status || resp.Header.Get("Location") != "" {
		t.Fatalf("status %d, Location %q; want %d and the page again; body %s", resp.StatusCode, resp.Header.Get("Location"), status, body)
	}
	if !strings.Contains(string(body), message) || !strings.Contains(string(body), `name="password"`) {
		t.Fatalf("page lacks %q or the password field:\n%s", message, body)
	}
	return string(body)
}

// Regression invariant: a public issuer hands out no token to whoever
// registers: client_credentials is not advertised, cannot be registered
// and is refused at /token (RFC 6749 unsupported_grant_type), for any
// client, unless explicitly allowed; a loopback issuer keeps serving it.
func TestAS_PublicIssuerRefusesClientCredentials(t *testing.T) {
	t.Parallel()
	as := startPublicAS(t, IssuerOptions{})
	if as.iss.ClientCredentialsEnabled() {
		t.Error("ClientCredentialsEnabled on a public issuer without AllowClientCredentials")
	}
	var md AuthorizationServerMetadata
	_, data := as.do(t, http.MethodGet, MetadataPath, "", nil, nil)
	if err := json.Unmarshal(data, &md); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(md.GrantTypesSupported, []string{"authorization_code", "refresh_token"}) {
		t.Errorf("grant_types_supported = %v, want authorization_code and refresh_token only", md.GrantTypesSupported)
	}

	resp, data := as.do(t, http.MethodPost, RegisterPath, "application/json",
		strings.NewReader(`{"grant_types":["client_credentials"],"token_endpoint_auth_method":"client_secret_basic"}`), nil)
	var refused errorBody
	if resp.StatusCode != http.StatusBadRequest || json.Unmarshal(data, &refused) != nil || refused.Error != "invalid_client_metadata" || !strings.Contains(refused.ErrorDescription, "client_credentials grant is off") {
		t.Errorf("registering for client_credentials: %d %s, want 400 invalid_client_metadata", resp.StatusCode, data)
	}

	// A confidential client registered for codes, and no client at all.
	conf := as.register(t, `{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"client_secret_basic"}`)
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"tool:read tool:write"}}
	e := as.wantTokenError(t, form, http.StatusBadRequest, "unsupported_grant_type", conf.ClientID, conf.ClientSecret)
	if !strings.Contains(e.ErrorDescription, "not on loopback") {
		t.Errorf("error_description %q does not say why", e.ErrorDescription)
	}
	as.wantTokenError(t, url.Values{"grant_type": {"client_credentials"}}, http.StatusBadRequest, "unsupported_grant_type")

	// Allowed explicitly, it works as on loopback.
	allowed := startPublicAS(t, IssuerOptions{AllowClientCredentials: true})
	batch := allowed.register(t, `{"grant_types":["client_credentials"],"token_endpoint_auth_method":"client_secret_basic"}`)
	if tok := allowed.mustToken(t, form, batch.ClientID, batch.ClientSecret); tok.Scope != "tool:read tool:write" {
		t.Errorf("allowed client_credentials: scope %q", tok.Scope)
	}
}

// Regression invariant: the approval page of a public issuer asks for the
// password; an approval without it or with a wrong one gets the page again
// (403, a new nonce) and no code, and only the right one signs in. The
// old nonce stays used.
func TestAS_PublicIssuerApprovalNeedsThePassword(t *testing.T) {
	t.Parallel()
	as := startPublicAS(t, IssuerOptions{})
	reg, verifier, _, page := approvalPage(t, as, "tool:read tool:write")
	if !strings.Contains(page, `type="password" name="password"`) || !as.iss.PasswordRequired() {
		t.Fatalf("approval page of a public issuer does not ask for the password:\n%s", page)
	}
	answer := url.Values{"user": {"alice"}, "scope": {"tool:read", "tool:write"}, "action": {"approve"}}

	answer.Set("nonce", approvalNonce(t, []byte(page)))
	resp, body := as.decide(t, answer)
	page = wantPageAgain(t, resp, body, http.StatusForbidden, "Enter the password")
	firstNonce := answer.Get("nonce")

	answer.Set("nonce", approvalNonce(t, []byte(page)))
	answer.Set("password", "wrong password")
	resp, body = as.decide(t, answer)
	page = wantPageAgain(t, resp, body, http.StatusForbidden, "Wrong password.")

	// Case and surrounding space matter.
	answer.Set("nonce", approvalNonce(t, []byte(page)))
	answer.Set("password", strings.ToUpper(testPassword))
	resp, body = as.decide(t, answer)
	page = wantPageAgain(t, resp, body, http.StatusForbidden, "Wrong password.")

	// Answered pages stay answered.
	stale := url.Values{"nonce": {firstNonce}, "user": {"alice"}, "scope": {"tool:read"}, "action": {"approve"}, "password": {testPassword}}
	resp, body = as.decide(t, stale)
	wantErrorPage(t, resp, body, "expired or was already answered")

	answer.Set("nonce", approvalNonce(t, []byte(page)))
	answer.Set("password", testPassword)
	resp, body = as.decide(t, answer)
	q := redirected(t, resp, body, testRedirect)
	if q.Get("iss") != publicIssuer || q.Get("state") != "xyz-state" {
		t.Errorf("approval redirect %v, want iss and state", q)
	}
	tok := as.mustToken(t, codeForm(reg.ClientID, q.Get("code"), verifier))
	if claims := as.verifyAccessToken(t, tok.AccessToken, testAudience); claims["sub"] != "alice" || claims["scope"] != "tool:read tool:write" {
		t.Errorf("claims %v, want alice with tool:read tool:write", claims)
	}

	// Denying needs no password.
	_, _, _, page = approvalPage(t, as, "tool:read")
	resp, body = as.decide(t, url.Values{"nonce": {approvalNonce(t, []byte(page))}, "action": {"deny"}})
	if q := redirected(t, resp, body, testRedirect); q.Get("error") != "access_denied" || q.Has("code") {
		t.Errorf("deny: %v, want access_denied", q)
	}
}

// Regression invariant: a client address gets MaxSignInFailures wrong
// passwords per SignInFailureWindow; after that even the right password is
// refused (429 with Retry-After) until the window ends.
func TestAS_PublicIssuerLimitsWrongPasswords(t *testing.T) {
	t.Parallel()
	as := startPublicAS(t, IssuerOptions{})
	_, _, _, page := approvalPage(t, as, "tool:read")
	answer := url.Values{"user": {"bob"}, "scope": {"tool:read"}, "action": {"approve"}}
	for n := range MaxSignInFailures {
		answer.Set("nonce", approvalNonce(t, []byte(page)))
		answer.Set("password", "guess "+strings.Repeat("x", n))
		resp, body := as.decide(t, answer)
		page = wantPageAgain(t, resp, body, http.StatusForbidden, "Wrong password.")
	}
	answer.Set("nonce", approvalNonce(t, []byte(page)))
	answer.Set("password", testPassword)
	resp, body := as.decide(t, answer)
	wantPageAgain(t, resp, body, http.StatusTooManyRequests, "Too many wrong passwords")
	if ra := resp.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After = %q, want the seconds left", ra)
	}

	// Blocked while the window lasts, then the right password works.
	as.clock.Advance(SignInFailureWindow - time.Minute)
	_, _, _, page = approvalPage(t, as, "tool:read")
	answer.Set("nonce", approvalNonce(t, []byte(page)))
	resp, body = as.decide(t, answer)
	wantPageAgain(t, resp, body, http.StatusTooManyRequests, "Too many wrong passwords")
	as.clock.Advance(time.Minute)
	_, _, _, page = approvalPage(t, as, "tool:read")
	answer.Set("nonce", approvalNonce(t, []byte(page)))
	resp, body = as.decide(t, answer)
	if q := redirected(t, resp, body, testRedirect); q.Get("code") == "" {
		t.Errorf("after the window the right password is refused: %v", q)
	}
}

// Regression invariant: a public issuer does not offer admin (the only
// user granted notes:admin) unless allowed: the page does not list it, and
// a forged answer or a login_hint naming it is refused with the right
// password. A loopback issuer, and a public one with AllowAdmin, offer it.
func TestAS_PublicIssuerOffersAdminOnlyWhenAllowed(t *testing.T) {
	t.Parallel()
	as := startPublicAS(t, IssuerOptions{})
	if as.iss.AdminOffered() {
		t.Error("AdminOffered on a public issuer without AllowAdmin")
	}
	_, _, _, page := approvalPage(t, as, "tool:read notes:admin")
	if strings.Contains(page, `value="admin"`) || !strings.Contains(page, `value="alice"`) {
		t.Errorf("approval page offers admin, or not alice:\n%s", page)
	}
	forged := url.Values{"nonce": {approvalNonce(t, []byte(page))}, "user": {"admin"}, "scope": {"tool:read", "notes:admin"}, "action": {"approve"}, "password": {testPassword}}
	resp, body := as.decide(t, forged)
	if q := redirected(t, resp, body, testRedirect); q.Get("error") != "access_denied" || q.Has("code") || !strings.Contains(q.Get("error_description"), `"admin" is not a user who may sign in here`) {
		t.Errorf("forged admin approval: %v, want access_denied and no code", q)
	}

	auto := startPublicAS(t, IssuerOptions{AutoApprove: true})
	reg := auto.registerPublic(t)
	_, challenge := newPKCE(t)
	params := authorizeParams(reg.ClientID, challenge)
	params.Set("login_hint", "admin")
	resp, body = auto.authorize(t, params)
	if q := redirected(t, resp, body, testRedirect); q.Get("error") != "access_denied" || q.Has("code") {
		t.Errorf("auto-approve with login_hint=admin: %v, want access_denied", q)
	}

	for name, as := range map[string]*authServer{
		"public with AllowAdmin": startPublicAS(t, IssuerOptions{AllowAdmin: true}),
		"loopback":               startAS(t, IssuerOptions{}),
	} {
		reg, verifier, _, page := approvalPage(t, as, "tool:read notes:admin")
		if !strings.Contains(page, `value="admin"`) {
			t.Errorf("%s: approval page does not offer admin", name)
			continue
		}
		answer := url.Values{"nonce": {approvalNonce(t, []byte(page))}, "user": {"admin"}, "scope": {"tool:read", "notes:admin"}, "action": {"approve"}}
		if as.iss.PasswordRequired() {
			answer.Set("password", testPassword)
		}
		resp, body := as.decide(t, answer)
		tok := as.mustToken(t, codeForm(reg.ClientID, redirected(t, resp, body, testRedirect).Get("code"), verifier))
		if tok.Scope != "tool:read notes:admin" {
			t.Errorf("%s: admin granted %q, want tool:read notes:admin", name, tok.Scope)
		}
	}
}

// A loopback issuer asks for no password (the one-command demo), unless
// one is set.
func TestAS_LoopbackIssuerAsksForAPasswordOnlyWhenSet(t *testing.T) {
	t.Parallel()
	as := startAS(t, IssuerOptions{})
	_, _, _, page := approvalPage(t, as, "tool:read")
	if strings.Contains(page, `name="password"`) || as.iss.PasswordRequired() {
		t.Errorf("loopback approval page asks for a password:\n%s", page)
	}
	withPassword := startAS(t, IssuerOptions{Password: testPassword})
	_, _, _, page = approvalPage(t, withPassword, "tool:read")
	resp, body := withPassword.decide(t, url.Values{"nonce": {approvalNonce(t, []byte(page))}, "user": {"alice"}, "scope": {"tool:read"}, "action": {"approve"}})
	wantPageAgain(t, resp, body, http.StatusForbidden, "Enter the password")
}

func TestNewIssuer_PublicIssuerNeedsAPassword(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		opts    IssuerOptions
		wantErr string
	}{
		{"public without password", IssuerOptions{Issuer: publicIssuer, Audience: testAudience}, "must ask for a password"},
		{"short password", IssuerOptions{Issuer: publicIssuer, Audience: testAudience, Password: "short"}, "8 to 256 characters"},
		{"password and auto-approve", IssuerOptions{Issuer: testIssuerURL, Audience: testAudience, Password: testPassword, AutoApprove: true}, "never be asked"},
	} {
		if _, err := NewIssuer(tt.opts); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: NewIssuer error = %v, want one containing %q", tt.name, err, tt.wantErr)
		}
	}
	// No password on loopback; auto-approve on a public URL is the
	// operator's explicit choice (gatewaystack warns about it).
	for _, opts := range []IssuerOptions{
		{Issuer: testIssuerURL, Audience: testAudience},
		{Issuer: publicIssuer, Audience: testAudience, AutoApprove: true},
	} {
		if _, err := NewIssuer(opts); err != nil {
			t.Errorf("NewIssuer(%+v): %v", opts, err)
		}
	}
}

// The failure window counts from an address's first failure; IPv6
// addresses count per /64 and other addresses on their own.
func TestFailureLimiterCountsPerAddress(t *testing.T) {
	t.Parallel()
	l := newFailureLimiter()
	now := time.Unix(1_000_000, 0)
	req := func(remote string) netip.Prefix {
		return clientAddress(&http.Request{RemoteAddr: remote})
	}
	a, a64, b := req("[2001:db8::1]:5000"), req("[2001:db8::2]:6000"), req("192.0.2.7:1")
	if a != a64 || a == b {
		t.Fatalf("addresses %v %v %v: want one /64 and another address", a, a64, b)
	}
	for range MaxSignInFailures {
		l.fail(a, now)
	}
	if _, blocked := l.blocked(a64, now.Add(time.Minute)); !blocked {
		t.Error("the /64 is not blocked after MaxSignInFailures")
	}
	if _, blocked := l.blocked(b, now); blocked {
		t.Error("another address is blocked")
	}
	if _, blocked := l.blocked(a, now.Add(SignInFailureWindow)); blocked {
		t.Error("still blocked after the window")
	}
}
