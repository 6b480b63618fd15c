package demo

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAS_MetadataListsEveryField(t *testing.T) {
	t.Parallel()
	as := startAS(t, IssuerOptions{})
	resp, data := as.do(t, http.MethodGet, MetadataPath, "", nil, http.Header{"Origin": {"http://localhost:6274"}})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %d %s", MetadataPath, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "http://localhost:6274" {
		t.Errorf("metadata Access-Control-Allow-Origin = %q, want the loopback origin", got)
	}
	var md map[string]any
	if err := json.Unmarshal(data, &md); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	want := map[string]any{
		"issuer":                                         as.url,
		"authorization_endpoint":                         as.url + "/authorize",
		"token_endpoint":                                 as.url + "/token",
		"registration_endpoint":                          as.url + "/register",
		"jwks_uri":                                       as.url + "/.well-known/jwks.json",
		"response_types_supported":                       []any{"code"},
		"response_modes_supported":                       []any{"query"},
		"grant_types_supported":                          []any{"authorization_code", "refresh_token", "client_credentials"},
		"code_challenge_methods_supported":               []any{"S256"},
		"token_endpoint_auth_methods_supported":          []any{"none", "client_secret_basic", "client_secret_post"},
		"scopes_supported":                               []any{"tool:read", "tool:write", "notes:admin"},
		"authorization_response_iss_parameter_supported": true,
		"client_id_metadata_document_supported":          true,
	}
	for name, value := range want {
		got, _ := json.Marshal(md[name])
		wantJSON, _ := json.Marshal(value)
		if string(got) != string(wantJSON) {
			t.Errorf("%s = %s, want %s", name, got, wantJSON)
		}
	}
	if len(md) != len(want) {
		t.Errorf("metadata has %d fields, want %d: %s", len(md), len(want), data)
	}

	// No OpenID configuration: it would need every field OIDC requires.
	if resp, _ := as.do(t, http.MethodGet, "/.well-known/openid-configuration", "", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("openid-configuration: status %d, want 404", resp.StatusCode)
	}
}

func TestAS_MetadataForIssuerWithPath(t *testing.T) {
	t.Parallel()
	as := startAS(t, IssuerOptions{Issuer: "http://127.0.0.1:5051/demo"})
	for _, path := range []string{MetadataPath, MetadataPath + "/demo"} {
		resp, data := as.do(t, http.MethodGet, path, "", nil, nil)
		var md AuthorizationServerMetadata
		if resp.StatusCode != http.StatusOK || json.Unmarshal(data, &md) != nil {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, data)
		}
		if md.Issuer != "http://127.0.0.1:5051/demo" || md.TokenEndpoint != "http://127.0.0.1:5051/demo/token" {
			t.Errorf("GET %s: issuer %q token endpoint %q", path, md.Issuer, md.TokenEndpoint)
		}
	}
}

func TestAS_Register(t *testing.T) {
	t.Parallel()
	as := startAS(t, IssuerOptions{})
	accept := []struct {
		name       string
		body       string
		wantMethod string
		wantSecret bool
	}{
		{"public client with loopback http", `{"redirect_uris":["http://127.0.0.1:6274/oauth/callback"],"token_endpoint_auth_method":"none"}`, "none", false},
		{"public client with localhost and no port", `{"redirect_uris":["http://localhost/cb"],"token_endpoint_auth_method":"none"}`, "none", false},
		{"public client with IPv6 loopback", `{"redirect_uris":["http://[::1]:8000/cb"],"token_endpoint_auth_method":"none"}`, "none", false},
		{"https redirect", `{"redirect_uris":["https://claude.ai/api/mcp/auth_callback"],"token_endpoint_auth_method":"none","client_name":"Claude"}`, "none", false},
		{"Cursor's private-use scheme", `{"redirect_uris":["cursor://anysphere.cursor-mcp/oauth/callback"],"token_endpoint_auth_method":"none"}`, "none", false},
		{"reverse-domain private-use scheme", `{"redirect_uris":["com.example.app:/oauth2redirect"],"token_endpoint_auth_method":"none"}`, "none", false},
		{"confidential client_secret_basic", `{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"client_secret_basic"}`, "client_secret_basic", true},
		{"confidential client_secret_post", `{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"client_secret_post"}`, "client_secret_post", true},
		{"omitted method defaults to client_secret_basic (RFC 7591)", `{"redirect_uris":["https://app.example/cb"]}`, "client_secret_basic", true},
		{"client_credentials only needs no redirect URI", `{"grant_types":["client_credentials"],"token_endpoint_auth_method":"client_secret_basic"}`, "client_secret_basic", true},
		{"unknown metadata is ignored", `{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"none","logo_uri":"https://app.example/l.png","software_id":"x","extra":{"a":[1]}}`, "none", false},
		{"null fields count as absent", `{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"none","client_name":null,"scope":null}`, "none", false},
	}
	for _, tt := range accept {
		t.Run("accepts "+tt.name, func(t *testing.T) {
			t.Parallel()
			resp, data := as.do(t, http.MethodPost, RegisterPath, "application/json", strings.NewReader(tt.body), http.Header{"Origin": {"http://127.0.0.1:6274"}})
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("status %d, want 201; body %s", resp.StatusCode, data)
			}
			if resp.Header.Get("Access-Control-Allow-Origin") != "http://127.0.0.1:6274" {
				t.Errorf("no CORS grant for a loopback origin on /register")
			}
			var reg map[string]any
			if err := json.Unmarshal(data, &reg); err != nil {
				t.Fatal(err)
			}
			if id, _ := reg["client_id"].(string); !strings.HasPrefix(id, "client-") {
				t.Errorf("client_id = %v", reg["client_id"])
			}
			if reg["token_endpoint_auth_method"] != tt.wantMethod {
				t.Errorf("token_endpoint_auth_method = %v, want %s", reg["token_endpoint_auth_method"], tt.wantMethod)
			}
			secret, hasSecret := reg["client_secret"].(string)
			if hasSecret != tt.wantSecret || (hasSecret && len(secret) < 40) {
				t.Errorf("client_secret = %q (present %v), want present %v", secret, hasSecret, tt.wantSecret)
			}
			if _, ok := reg["client_secret_expires_at"]; ok != tt.wantSecret {
				t.Errorf("client_secret_expires_at present %v, want %v", ok, tt.wantSecret)
			}
			if _, ok := reg["client_id_issued_at"].(float64); !ok {
				t.Errorf("client_id_issued_at missing")
			}
		})
	}

	long := "https://app.example/" + strings.Repeat("a", MaxURILength)
	many := make([]string, MaxRedirectURIs+1)
	for n := range many {
		many[n] = fmt.Sprintf(`"http://127.0.0.1/cb%d"`, n)
	}
	reject := []struct {
		name, contentType, body string
		wantStatus              int
		wantCode, wantDesc      string
	}{
		{"http on a non-loopback host", "application/json", `{"redirect_uris":["http://app.example/cb"],"token_endpoint_auth_method":"none"}`, 400, "invalid_redirect_uri", "not loopback"},
		{"http on a loopback look-alike", "application/json", `{"redirect_uris":["http://127.0.0.1.evil.example/cb"],"token_endpoint_auth_method":"none"}`, 400, "invalid_redirect_uri", "not loopback"},
		{"javascript:", "application/json", `{"redirect_uris":["javascript:alert(1)"],"token_endpoint_auth_method":"none"}`, 400, "invalid_redirect_uri", "not allowed"},
		{"data:", "application/json", `{"redirect_uris":["data:text/html,hi"],"token_endpoint_auth_method":"none"}`, 400, "invalid_redirect_uri", "not allowed"},
		{"file:", "application/json", `{"redirect_uris":["file:///etc/passwd"],"token_endpoint_auth_method":"none"}`, 400, "invalid_redirect_uri", "not allowed"},
		{"fragment", "application/json", `{"redirect_uris":["https://app.example/cb#frag"],"token_endpoint_auth_method":"none"}`, 400, "invalid_redirect_uri", "fragment"},
		{"empty fragment", "application/json", `{"redirect_uris":["https://app.example/cb#"],"token_endpoint_auth_method":"none"}`, 400, "invalid_redirect_uri", "fragment"},
		{"relative URI", "application/json", `{"redirect_uris":["/cb"],"token_endpoint_auth_method":"none"}`, 400, "invalid_redirect_uri", "absolute"},
		{"user info", "application/json", `{"redirect_uris":["https://u:p@app.example/cb"],"token_endpoint_auth_method":"none"}`, 400, "invalid_redirect_uri", "user info"},
		{"space", "application/json", `{"redirect_uris":["https://app.example/a b"],"token_endpoint_auth_method":"none"}`, 400, "invalid_redirect_uri", "spaces"},
		{"scheme only", "application/json", `{"redirect_uris":["myapp:"],"token_endpoint_auth_method":"none"}`, 400, "invalid_redirect_uri", "no callback"},
		{"too long", "application/json", `{"redirect_uris":["` + long + `"],"token_endpoint_auth_method":"none"}`, 400, "invalid_redirect_uri", "longer than"},
		{"too many", "application/json", `{"redirect_uris":[` + strings.Join(many, ",") + `],"token_endpoint_auth_method":"none"}`, 400, "invalid_redirect_uri", "at most 16"},
		{"no redirect URI for the code grant", "application/json", `{"token_endpoint_auth_method":"none"}`, 400, "invalid_redirect_uri", "at least one"},
		{"redirect_uris not an array", "application/json", `{"redirect_uris":"https://app.example/cb"}`, 400, "invalid_redirect_uri", "array of strings"},
		{"unsupported auth method", "application/json", `{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}`, 400, "invalid_client_metadata", "not supported"},
		{"public client_credentials", "application/json", `{"grant_types":["client_credentials"],"token_endpoint_auth_method":"none"}`, 400, "invalid_client_metadata", "confidential"},
		{"implicit grant", "application/json", `{"redirect_uris":["https://app.example/cb"],"grant_types":["implicit"]}`, 400, "invalid_client_metadata", "not supported"},
		{"response type token", "application/json", `{"redirect_uris":["https://app.example/cb"],"response_types":["token"]}`, 400, "invalid_client_metadata", "not supported"},
		{"client_name too long", "application/json", `{"redirect_uris":["https://app.example/cb"],"client_name":"` + strings.Repeat("n", 201) + `"}`, 400, "invalid_client_metadata", "client_name"},
		{"client_name not a string", "application/json", `{"redirect_uris":["https://app.example/cb"],"client_name":7}`, 400, "invalid_client_metadata", "client_name must be a string"},
		{"scope with a control character", "application/json", `{"redirect_uris":["https://app.example/cb"],"scope":"tool:read\u0001"}`, 400, "invalid_client_metadata", "scope"},
		{"not JSON", "application/json", `redirect_uris=x`, 400, "invalid_client_metadata", "JSON object"},
		{"JSON array", "application/json", `[]`, 400, "invalid_client_metadata", "JSON object"},
		{"JSON null", "application/json", `null`, 400, "invalid_client_metadata", "JSON object"},
		{"trailing data", "application/json", `{"redirect_uris":["https://app.example/cb"]} {}`, 400, "invalid_client_metadata", "single JSON object"},
		{"form content type", "application/x-www-form-urlencoded", `{}`, 400, "invalid_client_metadata", "Content-Type"},
		{"oversize body", "application/json", `{"client_name":"` + strings.Repeat("x", MaxRegisterBodyBytes) + `"}`, 413, "invalid_client_metadata", "exceeds"},
	}
	for _, tt := range reject {
		t.Run("rejects "+tt.name, func(t *testing.T) {
			t.Parallel()
			resp, data := as.do(t, http.MethodPost, RegisterPath, tt.contentType, strings.NewReader(tt.body), nil)
			var body errorBody
			if err := json.Unmarshal(data, &body); err != nil {
				t.Fatalf("status %d, body %s is not JSON", resp.StatusCode, data)
			}
			if resp.StatusCode != tt.wantStatus || body.Error != tt.wantCode || !strings.Contains(body.ErrorDescription, tt.wantDesc) {
				t.Errorf("got %d %+v, want %d %s with description containing %q", resp.StatusCode, body, tt.wantStatus, tt.wantCode, tt.wantDesc)
			}
		})
	}
}

// TestAS_CodeFlowAutoApprove is the headless flow of MCP clients: register,
// authorize with PKCE (auto-approved), exchange the code, use the token.
func TestAS_CodeFlowAutoApprove(t *testing.T) {
	t.Parallel()
	as := startAS(t, IssuerOptions{AutoApprove: true})
	reg := as.registerPublic(t)
	verifier, challenge := newPKCE(t)

	params := authorizeParams(reg.ClientID, challenge)
	params.Set("login_hint", "bob")
	resp, body := as.authorize(t, params)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("auto-approve: status %d, want 302; body %s", resp.StatusCode, body)
	}
	q := redirected(t, resp, body, testRedirect+"?")
	if q.Get("state") != "xyz-state" || q.Get("iss") != as.url || q.Get("code") == "" || q.Has("error") {
		t.Fatalf("authorization response %v, want code, state xyz-state and iss %s", q, as.url)
	}

	tok := as.mustToken(t, codeForm(reg.ClientID, q.Get("code"), verifier))
	if tok.TokenType != "Bearer" || tok.ExpiresIn != 600 || tok.RefreshToken == "" || tok.Scope != "tool:read tool:write" {
		t.Errorf("token response %+v, want Bearer, 600s, a refresh token and scope tool:read tool:write", tok)
	}
	claims := as.verifyAccessToken(t, tok.AccessToken, testAudience)
	now := float64(as.clock.Now().Unix())
	for name, want := range map[string]any{
		"iss": as.url, "aud": testAudience, "sub": "bob", "org_id": "acme", "client_id": reg.ClientID,
		"scope": "tool:read tool:write", "iat": now, "nbf": now, "exp": now + 600,
	} {
		if claims[name] != want {
			t.Errorf("claim %s = %v, want %v", name, claims[name], want)
		}
	}
	if jti, _ := claims["jti"].(string); len(jti) < 20 {
		t.Errorf("jti = %v", claims["jti"])
	}
	if _, ok := claims["roles"]; ok {
		t.Errorf("bob's token has roles %v", claims["roles"])
	}

	// Without login_hint the default user, alice, is approved.
	params.Del("login_hint")
	tok = as.mustToken(t, codeForm(reg.ClientID, as.codeFor(t, params), verifier))
	if claims := as.verifyAccessToken(t, tok.AccessToken, testAudience); claims["sub"] != "alice" {
		t.Errorf("default user: sub = %v, want alice", claims["sub"])
	}

	// An unknown login_hint is refused, back at the client.
	params.Set("login_hint", "mallory")
	resp, body = as.authorize(t, params)
	if q := redirected(t, resp, body, testRedirect); q.Get("error") != "access_denied" || q.Get("iss") != as.url {
		t.Errorf("unknown login_hint: %v, want access_denied with iss", q)
	}

	// Admin gets notes:admin; alice asking for it does not.
	params.Set("scope", "tool:read notes:admin")
	params.Set("login_hint", "admin")
	tok = as.mustToken(t, codeForm(reg.ClientID, as.codeFor(t, params), verifier))
	if claims := as.verifyAccessToken(t, tok.AccessToken, testAudience); claims["scope"] != "tool:read notes:admin" || fmt.Sprint(claims["roles"]) != "[admin]" {
		t.Errorf("admin: scope %v roles %v, want tool:read notes:admin and [admin]", claims["scope"], claims["roles"])
	}
	params.Set("login_hint", "alice")
	tok = as.mustToken(t, codeForm(reg.ClientID, as.codeFor(t, params), verifier))
	if tok.Scope != "tool:read" {
		t.Errorf("alice asking for notes:admin got scope %q, want tool:read (notes:admin dropped)", tok.Scope)
	}
	params.Set("scope", "notes:admin")
	resp, body = as.authorize(t, params)
	if q := redirected(t, resp, body, testRedirect); q.Get("error") != "access_denied" {
		t.Errorf("alice asking only for notes:admin: %v, want access_denied", q)
	}

	// No scope means the default scope; unknown scopes are dropped.
	params.Set("scope", "")
	tok = as.mustToken(t, codeForm(reg.ClientID, as.codeFor(t, params), verifier))
	if tok.Scope != "tool:read" {
		t.Errorf("no scope: granted %q, want the default tool:read", tok.Scope)
	}
	params.Set("scope", "openid offline_access tool:write")
	tok = as.mustToken(t, codeForm(reg.ClientID, as.codeFor(t, params), verifier))
	if tok.Scope != "tool:write" {
		t.Errorf("unknown scopes: granted %q, want tool:write", tok.Scope)
	}
	params.Set("scope", "openid profile")
	resp, body = as.authorize(t, params)
	if q := redirected(t, resp, body, testRedirect); q.Get("error") != "invalid_scope" {
		t.Errorf("only unsupported scopes: %v, want invalid_scope", q)
	}
}

// TestAS_CodeFlowApprovalPage drives the HTML page: pick a user, approve
// scopes, POST with the page's nonce.
func TestAS_CodeFlowApprovalPage(t *testing.T) {
	t.Parallel()
	as := startAS(t, IssuerOptions{})
	reg := as.register(t, `{"client_name":"<script>alert(1)</script>","redirect_uris":["`+testRedirect+`"],"token_endpoint_auth_method":"none"}`)
	verifier, challenge := newPKCE(t)
	params := authorizeParams(reg.ClientID, challenge)
	params.Set("scope", "tool:read notes:admin")

	resp, page := as.authorize(t, params)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /authorize: %d %s", resp.StatusCode, page)
	}
	for name, want := range map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Cache-Control":           "no-store",
		"X-Frame-Options":         "DENY",
		"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
	} {
		if got := resp.Header.Get(name); got != want {
			t.Errorf("page %s = %q, want %q", name, got, want)
		}
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Error("the approval page grants CORS")
	}
	html := string(page)
	for _, want := range []string{`value="alice" checked`, `value="bob"`, `value="admin"`, `name="scope" value="tool:read" checked`,
		`name="scope" value="notes:admin" checked`, `action="` + as.url + `/authorize"`, "&lt;script&gt;", testAudience, testRedirect} {
		if !strings.Contains(html, want) {
			t.Errorf("approval page lacks %q:\n%s", want, html)
		}
	}
	for _, bad := range []string{"<script", "http-equiv", "src="} {
		if strings.Contains(html, bad) {
			t.Errorf("approval page contains %q", bad)
		}
	}
	nonce := approvalNonce(t, page)

	// Admin approves both scopes.
	answer := url.Values{"nonce": {nonce}, "user": {"admin"}, "scope": {"tool:read", "notes:admin"}, "action": {"approve"}}
	resp, body := as.decide(t, answer)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /authorize: %d, want 303; %s", resp.StatusCode, body)
	}
	q := redirected(t, resp, body, testRedirect)
	if q.Get("state") != "xyz-state" || q.Get("iss") != as.url {
		t.Errorf("approval redirect %v, want state and iss", q)
	}
	tok := as.mustToken(t, codeForm(reg.ClientID, q.Get("code"), verifier))
	claims := as.verifyAccessToken(t, tok.AccessToken, testAudience)
	if claims["sub"] != "admin" || claims["scope"] != "tool:read notes:admin" {
		t.Errorf("page approval: sub %v scope %v, want admin with tool:read notes:admin", claims["sub"], claims["scope"])
	}

	// The nonce is single-use: a second answer is refused with a page.
	resp, body = as.decide(t, answer)
	wantErrorPage(t, resp, body, "expired or was already answered")

	// A forged answer with a made-up nonce gets nothing.
	resp, body = as.decide(t, url.Values{"nonce": {"forged"}, "user": {"admin"}, "scope": {"notes:admin"}, "action": {"approve"}})
	wantErrorPage(t, resp, body, "expired or was already answered")

	// Bob is not granted notes:admin even if the form says so, and may
	// approve fewer scopes than asked; scopes never asked for are ignored.
	_, page = as.authorize(t, params)
	resp, body = as.decide(t, url.Values{"nonce": {approvalNonce(t, page)}, "user": {"bob"}, "scope": {"tool:read", "notes:admin", "tool:write"}, "action": {"approve"}})
	tok = as.mustToken(t, codeForm(reg.ClientID, redirected(t, resp, body, testRedirect).Get("code"), verifier))
	if tok.Scope != "tool:read" {
		t.Errorf("bob: scope %q, want tool:read", tok.Scope)
	}

	// Deny, no scope, no user: errors back at the client with iss.
	for name, form := range map[string]url.Values{
		"deny":     {"user": {"bob"}, "scope": {"tool:read"}, "action": {"deny"}},
		"no scope": {"user": {"bob"}, "action": {"approve"}},
		"no user":  {"scope": {"tool:read"}, "action": {"approve"}},
	} {
		_, page := as.authorize(t, params)
		form.Set("nonce", approvalNonce(t, page))
		resp, body := as.decide(t, form)
		if q := redirected(t, resp, body, testRedirect); q.Get("error") != "access_denied" || q.Get("iss") != as.url || q.Get("state") != "xyz-state" || q.Has("code") {
			t.Errorf("%s: %v, want access_denied with iss and state, no code", name, q)
		}
	}

	// The page expires.
	_, page = as.authorize(t, params)
	as.clock.Advance(ApprovalPageLifetime + time.Second)
	resp, body = as.decide(t, url.Values{"nonce": {approvalNonce(t, page)}, "user": {"bob"}, "scope": {"tool:read"}, "action": {"approve"}})
	wantErrorPage(t, resp, body, "expired")
}

func TestAS_PKCE(t *testing.T) {
	t.Parallel()
	as := startAS(t, IssuerOptions{AutoApprove: true})
	reg := as.registerPublic(t)
	verifier, challenge := newPKCE(t)

	authz := []struct {
		name     string
		edit     func(url.Values)
		wantDesc string
	}{
		{"no challenge", func(v url.Values) { v.Del("code_challenge"); v.Del("code_challenge_method") }, "PKCE is required"},
		{"plain", func(v url.Values) { v.Set("code_challenge", verifier); v.Set("code_challenge_method", "plain") }, "plain is not allowed"},
		{"challenge without method (plain)", func(v url.Values) { v.Del("code_challenge_method") }, "plain is not allowed"},
		{"unknown method", func(v url.Values) { v.Set("code_challenge_method", "S512") }, "not supported"},
		{"challenge too short", func(v url.Values) { v.Set("code_challenge", "abc") }, "43-character"},
		{"challenge with bad characters", func(v url.Values) { v.Set("code_challenge", strings.Repeat("+", 43)) }, "43-character"},
	}
	for _, tt := range authz {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			params := authorizeParams(reg.ClientID, challenge)
			tt.edit(params)
			resp, body := as.authorize(t, params)
			q := redirected(t, resp, body, testRedirect)
			if q.Get("error") != "invalid_request" || !strings.Contains(q.Get("error_description"), tt.wantDesc) || q.Get("iss") != as.url || q.Get("state") != "xyz-state" || q.Has("code") {
				t.Errorf("redirect %v, want invalid_request %q with iss and state", q, tt.wantDesc)
			}
		})
	}

	token := []struct {
		name       string
		verifier   string
		wantCode   string
		wantStatus int
	}{
		{"wrong verifier", strings.Repeat("a", 43), "invalid_grant", 400},
		{"verifier too short", "short", "invalid_grant", 400},
		{"challenge sent as verifier", challenge + "x", "invalid_grant", 400},
		{"missing verifier", "", "invalid_request", 400},
	}
	for _, tt := range token {
		t.Run("token "+tt.name, func(t *testing.T) {
			t.Parallel()
			code := as.codeFor(t, authorizeParams(reg.ClientID, challenge))
			as.wantTokenError(t, codeForm(reg.ClientID, code, tt.verifier), tt.wantStatus, tt.wantCode)
		})
	}
}

func TestAS_RedirectURIMatching(t *testing.T) {
	t.Parallel()
	as := startAS(t, IssuerOptions{AutoApprove: true})
	reg := as.register(t, `{"redirect_uris":["http://127.0.0.1:3000/cb","http://localhost/cb?x=1","https://app.example:8443/cb","cursor://anysphere.cursor-mcp/oauth/callback"],"token_endpoint_auth_method":"none"}`)
	verifier, challenge := newPKCE(t)

	tests := []struct {
		redirect string
		ok       bool
	}{
		{"http://127.0.0.1:3000/cb", true},
		{"http://127.0.0.1:49152/cb", true}, // loopback: any port (RFC 8252 section 7.3)
		{"http://127.0.0.1/cb", true},
		{"http://localhost:5173/cb?x=1", true},
		{"cursor://anysphere.cursor-mcp/oauth/callback", true},
		{"https://app.example:8443/cb", true},
		{"https://app.example:9443/cb", false}, // ports count for https
		{"http://127.0.0.1:3000/other", false},
		{"http://127.0.0.1:3000/cb?extra=1", false},
		{"http://localhost:3000/cb", false}, // another host than registered
		{"http://localhost:5173/cb?x=2", false},
		{"https://127.0.0.1:3000/cb", false},
		{"http://127.0.0.1:3000/cb#f", false},
		{"cursor://anysphere.cursor-mcp/oauth/callback2", false},
		{"https://evil.example/cb", false},
	}
	for _, tt := range tests {
		t.Run(tt.redirect, func(t *testing.T) {
			t.Parallel()
			params := authorizeParams(reg.ClientID, challenge)
			params.Set("redirect_uri", tt.redirect)
			resp, body := as.authorize(t, params)
			if !tt.ok {
				wantErrorPage(t, resp, body, "redirect_uri")
				return
			}
			q := redirected(t, resp, body, strings.SplitN(tt.redirect, "?", 2)[0]+"?")
			// The token request must repeat the redirect URI exactly as sent.
			form := codeForm(reg.ClientID, q.Get("code"), verifier)
			form.Set("redirect_uri", tt.redirect)
			as.mustToken(t, form)
		})
	}

	// /token checks the redirect URI against the authorization request's.
	params := authorizeParams(reg.ClientID, challenge)
	params.Set("redirect_uri", "http://127.0.0.1:4000/cb")
	resp, body := as.authorize(t, params)
	form := codeForm(reg.ClientID, redirected(t, resp, body, "http://127.0.0.1:4000/cb").Get("code"), verifier)
	form.Set("redirect_uri", "http://127.0.0.1:3000/cb")
	as.wantTokenError(t, form, http.StatusBadRequest, "invalid_grant")

	// Several registered URIs: redirect_uri is required.
	params.Del("redirect_uri")
	resp, body = as.authorize(t, params)
	wantErrorPage(t, resp, body, "no redirect_uri")

	// One registered URI: it may be left out, then at /token too.
	one := as.registerPublic(t)
	params = authorizeParams(one.ClientID, challenge)
	params.Del("redirect_uri")
	resp, body = as.authorize(t, params)
	form = codeForm(one.ClientID, redirected(t, resp, body, testRedirect).Get("code"), verifier)
	form.Del("redirect_uri")
	as.mustToken(t, form)
}

func TestAS_AuthorizeErrorsNeverRedirectToUnverifiedURIs(t *testing.T) {
	t.Parallel()
	as := startAS(t, IssuerOptions{AutoApprove: true})
	reg := as.registerPublic(t)
	_, challenge := newPKCE(t)
	tests := []struct {
		name     string
		edit     func(url.Values)
		wantText string
	}{
		{"unknown client_id", func(v url.Values) { v.Set("client_id", "client-nobody") }, "not registered"},
		{"missing client_id", func(v url.Values) { v.Del("client_id") }, "exactly one client_id"},
		{"repeated client_id", func(v url.Values) { v.Add("client_id", reg.ClientID) }, "exactly one client_id"},
		{"unregistered redirect_uri", func(v url.Values) { v.Set("redirect_uri", "https://evil.example/cb") }, "not one the application registered"},
		{"javascript redirect_uri", func(v url.Values) { v.Set("redirect_uri", "javascript:alert(1)") }, "not acceptable"},
		{"repeated redirect_uri", func(v url.Values) { v.Add("redirect_uri", testRedirect) }, "more than one redirect_uri"},
		{"metadata document on plain http", func(v url.Values) { v.Set("client_id", "http://app.example/client.json") }, "https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			params := authorizeParams(reg.ClientID, challenge)
			tt.edit(params)
			resp, body := as.authorize(t, params)
			wantErrorPage(t, resp, body, tt.wantText)
		})
	}

	// Once the client and redirect URI are verified, errors go back there
	// with iss and state (RFC 6749 section 4.1.2.1, RFC 9207).
	redirectErrors := []struct {
		name, wantCode string
		edit           func(url.Values)
	}{
		{"response_type token", "unsupported_response_type", func(v url.Values) { v.Set("response_type", "token") }},
		{"no response_type", "invalid_request", func(v url.Values) { v.Del("response_type") }},
		{"repeated scope", "invalid_request", func(v url.Values) { v.Add("scope", "tool:read") }},
		{"scope with a control character", "invalid_scope", func(v url.Values) { v.Set("scope", "tool:read\x01") }},
		{"prompt=none with auto-approve combined", "invalid_request", func(v url.Values) { v.Set("prompt", "none login") }},
	}
	for _, tt := range redirectErrors {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			params := authorizeParams(reg.ClientID, challenge)
			tt.edit(params)
			resp, body := as.authorize(t, params)
			q := redirected(t, resp, body, testRedirect)
			if q.Get("error") != tt.wantCode || q.Get("error_description") == "" || q.Get("iss") != as.url || q.Get("state") != "xyz-state" {
				t.Errorf("redirect %v, want %s with a description, iss and state", q, tt.wantCode)
			}
		})
	}

	// Without state, the response has none; iss is always there.
	params := authorizeParams(reg.ClientID, challenge)
	params.Del("state")
	resp, body := as.authorize(t, params)
	if q := redirected(t, resp, body, testRedirect); q.Has("state") || q.Get("iss") != as.url || q.Get("code") == "" {
		t.Errorf("no state: %v, want code and iss only", q)
	}
	params.Set("response_type", "token")
	resp, body = as.authorize(t, params)
	if q := redirected(t, resp, body, testRedirect); q.Has("state") || q.Get("iss") != as.url {
		t.Errorf("error without state: %v, want iss and no state", q)
	}
}

func TestAS_PromptNoneWithoutAutoApprove(t *testing.T) {
	t.Parallel()
	as := startAS(t, IssuerOptions{})
	reg := as.registerPublic(t)
	_, challenge := newPKCE(t)
	params := authorizeParams(reg.ClientID, challenge)
	params.Set("prompt", "none")
	resp, body := as.authorize(t, params)
	if q := redirected(t, resp, body, testRedirect); q.Get("error") != "login_required" || q.Get("iss") != as.url {
		t.Errorf("prompt=none: %v, want login_required with iss", q)
	}
}

func TestAS_Resource(t *testing.T) {
	t.Parallel()
	const other = "https://gw.example/mcp"
	as := startAS(t, IssuerOptions{AutoApprove: true, Resources: []string{other}})
	reg := as.registerPublic(t)
	verifier, challenge := newPKCE(t)

	tests := []struct {
		name     string
		resource []string
		wantAud  string
		wantErr  bool
	}{
		{"default resource", nil, testAudience, false},
		{"the gateway's resource", []string{testAudience}, testAudience, false},
		{"another known resource", []string{other}, other, false},
		{"known resource spelled with a default port", []string{"https://GW.example:443/mcp"}, other, false},
		{"same resource twice", []string{other, other}, other, false},
		{"unknown resource", []string{"https://evil.example/mcp"}, "", true},
		{"resource without the path", []string{"http://127.0.0.1:8080"}, "", true},
		{"two resources", []string{testAudience, other}, "", true},
		{"not a URL", []string{"mcp"}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			params := authorizeParams(reg.ClientID, challenge)
			params["resource"] = tt.resource
			resp, body := as.authorize(t, params)
			q := redirected(t, resp, body, testRedirect)
			if tt.wantErr {
				if q.Get("error") != "invalid_target" || q.Get("iss") != as.url {
					t.Errorf("redirect %v, want invalid_target with iss", q)
				}
				return
			}
			form := codeForm(reg.ClientID, q.Get("code"), verifier)
			form.Del("resource")
			tok := as.mustToken(t, form)
			if claims := as.verifyAccessToken(t, tok.AccessToken, tt.wantAud); claims["aud"] != tt.wantAud {
				t.Errorf("aud = %v, want %s", claims["aud"], tt.wantAud)
			}
		})
	}

	// The token request may repeat the resource, not change it.
	form := codeForm(reg.ClientID, as.codeFor(t, authorizeParams(reg.ClientID, challenge)), verifier)
	form.Set("resource", other)
	as.wantTokenError(t, form, http.StatusBadRequest, "invalid_target")
}

// TestAS_CodeReplayRevokesTokens guards RFC 6749 section 4.1.2: a code
// used twice revokes the tokens issued from it.
func TestAS_CodeReplayRevokesTokens(t *testing.T) {
	t.Parallel()
	as := startAS(t, IssuerOptions{AutoApprove: true})
	reg := as.registerPublic(t)
	verifier, challenge := newPKCE(t)
	form := codeForm(reg.ClientID, as.codeFor(t, authorizeParams(reg.ClientID, challenge)), verifier)

	first := as.mustToken(t, form)
	jti := payloadClaims(t, first.AccessToken)["jti"].(string)
	if as.iss.AccessTokenRevoked(jti) {
		t.Fatal("fresh token is revoked")
	}
	failed := as.wantTokenError(t, form, http.StatusBadRequest, "invalid_grant")
	if !strings.Contains(failed.ErrorDescription, "already used") {
		t.Errorf("replay description %q", failed.ErrorDescription)
	}
	if !as.iss.AccessTokenRevoked(jti) {
		t.Error("access token issued from a replayed code is not revoked")
	}
	as.wantTokenError(t, refreshForm(reg.ClientID, first.RefreshToken), http.StatusBadRequest, "invalid_grant")

	// A code is bound to its client and expires after 10 minutes.
	other := as.registerPublic(t)
	code := as.codeFor(t, authorizeParams(reg.ClientID, challenge))
	as.wantTokenError(t, codeForm(other.ClientID, code, verifier), http.StatusBadRequest, "invalid_grant")
	code = as.codeFor(t, authorizeParams(reg.ClientID, challenge))
	as.clock.Advance(AuthorizationCodeLifetime)
	as.wantTokenError(t, codeForm(reg.ClientID, code, verifier), http.StatusBadRequest, "invalid_grant")
	as.wantTokenError(t, codeForm(reg.ClientID, "never-issued", verifier), http.StatusBadRequest, "invalid_grant")
}

// TestAS_RefreshRotation guards refresh token rotation: each token works
// once, and a replay revokes the whole family.
func TestAS_RefreshRotation(t *testing.T) {
	t.Parallel()
	as := startAS(t, IssuerOptions{AutoApprove: true})
	reg := as.registerPublic(t)
	verifier, challenge := newPKCE(t)
	first := as.mustToken(t, codeForm(reg.ClientID, as.codeFor(t, authorizeParams(reg.ClientID, challenge)), verifier))

	as.clock.Advance(time.Minute)
	second := as.mustToken(t, refreshForm(reg.ClientID, first.RefreshToken))
	if second.RefreshToken == "" || second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken {
		t.Fatalf("refresh did not rotate: %+v", second)
	}
	claims := as.verifyAccessToken(t, second.AccessToken, testAudience)
	if claims["sub"] != "alice" || claims["client_id"] != reg.ClientID || claims["aud"] != testAudience || claims["scope"] != "tool:read tool:write" {
		t.Errorf("refreshed token claims %v, want alice, the same client, aud and scope", claims)
	}
	third := as.mustToken(t, refreshForm(reg.ClientID, second.RefreshToken))

	// Replaying the first refresh token revokes the family: the newest
	// refresh token stops working, and the access tokens are revoked.
	failed := as.wantTokenError(t, refreshForm(reg.ClientID, first.RefreshToken), http.StatusBadRequest, "invalid_grant")
	if !strings.Contains(failed.ErrorDescription, "already used") {
		t.Errorf("replay description %q", failed.ErrorDescription)
	}
	as.wantTokenError(t, refreshForm(reg.ClientID, third.RefreshToken), http.StatusBadRequest, "invalid_grant")
	for _, tok := range []TokenResponse{second, third} {
		if jti := payloadClaims(t, tok.AccessToken)["jti"].(string); !as.iss.AccessTokenRevoked(jti) {
			t.Errorf("access token %s of the revoked family is not revoked", jti)
		}
	}

	// Refresh tokens are bound to their client and expire.
	fresh := as.mustToken(t, codeForm(reg.ClientID, as.codeFor(t, authorizeParams(reg.ClientID, challenge)), verifier))
	other := as.registerPublic(t)
	as.wantTokenError(t, refreshForm(other.ClientID, fresh.RefreshToken), http.StatusBadRequest, "invalid_grant")
	as.clock.Advance(RefreshTokenLifetime)
	as.wantTokenError(t, refreshForm(reg.ClientID, fresh.RefreshToken), http.StatusBadRequest, "invalid_grant")
}

func TestAS_RefreshScopeNarrowsNeverWidens(t *testing.T) {
	t.Parallel()
	as := startAS(t, IssuerOptions{AutoApprove: true})
	reg := as.registerPublic(t)
	verifier, challenge := newPKCE(t)
	tok := as.mustToken(t, codeForm(reg.ClientID, as.codeFor(t, authorizeParams(reg.ClientID, challenge)), verifier))

	narrow := refreshForm(reg.ClientID, tok.RefreshToken)
	narrow.Set("scope", "tool:read")
	tok = as.mustToken(t, narrow)
	if claims := as.verifyAccessToken(t, tok.AccessToken, testAudience); tok.Scope != "tool:read" || claims["scope"] != "tool:read" {
		t.Errorf("narrowed: %q / %v, want tool:read", tok.Scope, claims["scope"])
	}

	for _, wider := range []string{"tool:read notes:admin", "tool:read openid", "tool:read\x01"} {
		form := refreshForm(reg.ClientID, tok.RefreshToken)
		form.Set("scope", wider)
		as.wantTokenError(t, form, http.StatusBadRequest, "invalid_scope")
	}
	// A refused request does not use the refresh token up. The grant keeps
	// the scope the user approved, so leaving scope out restores it.
	tok = as.mustToken(t, refreshForm(reg.ClientID, tok.RefreshToken))
	if tok.Scope != "tool:read tool:write" {
		t.Errorf("refresh without scope: %q, want the original tool:read tool:write", tok.Scope)
	}
	// The resource stays.
	form := refreshForm(reg.ClientID, tok.RefreshToken)
	form.Set("resource", "https://evil.example/mcp")
	as.wantTokenError(t, form, http.StatusBadRequest, "invalid_target")
	form.Set("resource", testAudience)
	as.mustToken(t, form)
}

func TestAS_ClientCredentials(t *testing.T) {
	t.Parallel()
	as := startAS(t, IssuerOptions{})
	basic := as.register(t, `{"grant_types":["client_credentials"],"token_endpoint_auth_method":"client_secret_basic","client_name":"batch job"}`)
	post := as.register(t, `{"grant_types":["client_credentials"],"token_endpoint_auth_method":"client_secret_post","scope":"tool:read"}`)

	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"tool:read tool:write"}}
	tok := as.mustToken(t, form, basic.ClientID, basic.ClientSecret)
	if tok.RefreshToken != "" || tok.Scope != "tool:read tool:write" {
		t.Errorf("client_credentials: %+v, want no refresh token and the scope asked for", tok)
	}
	claims := as.verifyAccessToken(t, tok.AccessToken, testAudience)
	if claims["sub"] != basic.ClientID || claims["client_id"] != basic.ClientID {
		t.Errorf("client_credentials claims %v, want sub and client_id = %s", claims, basic.ClientID)
	}
	if _, ok := claims["org_id"]; ok {
		t.Errorf("client_credentials token has org_id %v", claims["org_id"])
	}

	postForm := url.Values{"grant_type": {"client_credentials"}, "client_id": {post.ClientID}, "client_secret": {post.ClientSecret}}
	if tok := as.mustToken(t, postForm); tok.Scope != "tool:read" {
		t.Errorf("client_secret_post: scope %q, want its registered tool:read", tok.Scope)
	}
	postForm.Set("scope", "tool:write")
	as.wantTokenError(t, postForm, http.StatusBadRequest, "invalid_scope")

	as.wantTokenError(t, url.Values{"grant_type": {"client_credentials"}, "scope": {"notes:admin"}}, http.StatusBadRequest, "invalid_scope", basic.ClientID, basic.ClientSecret)
	as.wantTokenError(t, form, http.StatusUnauthorized, "invalid_client", basic.ClientID, "wrong-secret")
	as.wantTokenError(t, url.Values{"grant_type": {"client_credentials"}, "client_id": {basic.ClientID}}, http.StatusUnauthorized, "invalid_client")

	// Public clients and clients without the grant may not use it.
	public := as.registerPublic(t)
	as.wantTokenError(t, url.Values{"grant_type": {"client_credentials"}, "client_id": {public.ClientID}}, http.StatusBadRequest, "unauthorized_client")
	codeOnly := as.register(t, `{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"client_secret_basic"}`)
	as.wantTokenError(t, form, http.StatusBadRequest, "unauthorized_client", codeOnly.ClientID, codeOnly.ClientSecret)
}

func TestAS_ConfidentialCodeFlow(t *testing.T) {
	t.Parallel()
	as := startAS(t, IssuerOptions{AutoApprove: true})
	reg := as.register(t, `{"redirect_uris":["`+testRedirect+`"],"token_endpoint_auth_method":"client_secret_post","grant_types":["authorization_code","refresh_token"]}`)
	verifier, challenge := newPKCE(t)
	form := codeForm(reg.ClientID, as.codeFor(t, authorizeParams(reg.ClientID, challenge)), verifier)
	as.wantTokenError(t, form, http.StatusUnauthorized, "invalid_client") // no secret
	form = codeForm(reg.ClientID, as.codeFor(t, authorizeParams(reg.ClientID, challenge)), verifier)
	form.Set("client_secret", reg.ClientSecret)
	tok := as.mustToken(t, form)
	// Basic works too, with the same secret.
	as.mustToken(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, reg.ClientID, reg.ClientSecret)
}

func TestAS_InvalidClientMakesClientsRegisterAgain(t *testing.T) {
	t.Parallel()
	as := startAS(t, IssuerOptions{})
	public := as.registerPublic(t)
	tests := []struct {
		name  string
		form  url.Values
		basic []string
	}{
		{"unknown client_id", url.Values{"grant_type": {"authorization_code"}, "code": {"c"}, "code_verifier": {"v"}, "client_id": {"client-forgotten"}}, nil},
		{"no client_id", url.Values{"grant_type": {"authorization_code"}, "code": {"c"}}, nil},
		{"public client sending a secret", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"r"}, "client_id": {public.ClientID}, "client_secret": {"s"}}, nil},
		{"Basic with an unknown client", url.Values{"grant_type": {"client_credentials"}}, []string{"client-nobody", "secret"}},
		{"metadata document client sending a secret", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"r"}, "client_id": {"https://app.example/client.json"}, "client_secret": {"s"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			as.wantTokenError(t, tt.form, http.StatusUnauthorized, "invalid_client", tt.basic...)
		})
	}
}

func TestAS_TokenSignedBeforeRotationStillVerifies(t *testing.T) {
	t.Parallel()
	as := startAS(t, IssuerOptions{AutoApprove: true})
	reg := as.registerPublic(t)
	verifier, challenge := newPKCE(t)
	before := as.mustToken(t, codeForm(reg.ClientID, as.codeFor(t, authorizeParams(reg.ClientID, challenge)), verifier))
	_, oldJWKS := as.do(t, http.MethodGet, JWKSPath, "", nil, nil)
	next := as.iss.NextKeyID()

	if err := as.iss.RotateKey(); err != nil {
		t.Fatal(err)
	}
	if as.iss.KeyID() != next {
		t.Fatalf("after rotation the signing key is %s, want the former next key %s", as.iss.KeyID(), next)
	}
	after := as.mustToken(t, codeForm(reg.ClientID, as.codeFor(t, authorizeParams(reg.ClientID, challenge)), verifier))

	// Old token against the new JWKS; new token against the JWKS a
	// verifier cached before the rotation.
	as.verifyAccessToken(t, before.AccessToken, testAudience)
	if _, err := jwtParse(after.AccessToken, parseJWKS(t, oldJWKS), as); err != nil {
		t.Errorf("token signed after rotation does not verify against the JWKS cached before: %v", err)
	}
	_, data := as.do(t, http.MethodGet, JWKSPath, "", nil, nil)
	if n := parseJWKS(t, data).Len(); n != 3 {
		t.Errorf("JWKS after rotation has %d keys, want 3 (current, next, previous)", n)
	}
	// The old key leaves once its tokens have expired.
	as.clock.Advance(DefaultMaxExpiresIn + 2*time.Minute)
	_, data = as.do(t, http.MethodGet, JWKSPath, "", nil, nil)
	if n := parseJWKS(t, data).Len(); n != 2 {
		t.Errorf("JWKS long after rotation has %d keys, want 2", n)
	}
}

func TestAS_CORS(t *testing.T) {
	t.Parallel()
	as := startAS(t, IssuerOptions{})
	for _, path := range []string{MetadataPath, RegisterPath, TokenPath, JWKSPath} {
		resp, _ := as.do(t, http.MethodOptions, path, "", nil, http.Header{
			"Origin": {"http://localhost:6274"}, "Access-Control-Request-Method": {"POST"}, "Access-Control-Request-Headers": {"content-type, mcp-protocol-version"},
		})
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "http://localhost:6274" ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "MCP-Protocol-Version") {
			t.Errorf("preflight %s: %d %v", path, resp.StatusCode, resp.Header)
		}
		resp, _ = as.do(t, http.MethodOptions, path, "", nil, http.Header{"Origin": {"https://evil.example"}, "Access-Control-Request-Method": {"POST"}})
		if resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight %s from a remote origin is granted", path)
		}
	}
	// A 401 from /token exposes its challenge to browser clients.
	resp, _ := as.do(t, http.MethodPost, TokenPath, "application/x-www-form-urlencoded", strings.NewReader("grant_type=refresh_token&refresh_token=x&client_id=nobody"), http.Header{"Origin": {"http://127.0.0.1:6274"}})
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Access-Control-Allow-Origin") != "http://127.0.0.1:6274" || resp.Header.Get("Access-Control-Expose-Headers") != "WWW-Authenticate" {
		t.Errorf("/token 401 CORS: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestAS_MintOnlyOnLoopbackIssuer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		issuer string
		want   bool
	}{
		{"http://127.0.0.1:5051", true},
		{"http://localhost:5051", true},
		{"http://[::1]:5051", true},
		{"https://issuer.example", false},
		{"https://abc.trycloudflare.com", false},
		{"http://192.168.1.20:5051", false},
		{"http://0.0.0.0:5051", false},
	}
	for _, tt := range tests {
		t.Run(tt.issuer, func(t *testing.T) {
			t.Parallel()
			opts := IssuerOptions{Issuer: tt.issuer}
			if !tt.want {
				opts.Password = testPassword // a public issuer needs one
			}
			as := startAS(t, opts)
			if as.iss.MintEnabled() != tt.want {
				t.Errorf("MintEnabled = %v, want %v", as.iss.MintEnabled(), tt.want)
			}
			resp, data := as.do(t, http.MethodPost, MintPath, "application/json", strings.NewReader(`{"sub":"alice"}`), nil)
			if tt.want {
				if resp.StatusCode != http.StatusOK {
					t.Errorf("POST /mint: %d %s, want 200", resp.StatusCode, data)
				}
				return
			}
			var body errorBody
			if resp.StatusCode != http.StatusForbidden || json.Unmarshal(data, &body) != nil || body.Error != "access_denied" || !strings.Contains(body.ErrorDescription, "not on loopback") {
				t.Errorf("POST /mint: %d %s, want 403 access_denied", resp.StatusCode, data)
			}
		})
	}
}

func TestAS_StateIsSweptAndBounded(t *testing.T) {
	t.Parallel()
	as := startAS(t, IssuerOptions{AutoApprove: true})
	reg := as.registerPublic(t)
	verifier, challenge := newPKCE(t)
	as.mustToken(t, codeForm(reg.ClientID, as.codeFor(t, authorizeParams(reg.ClientID, challenge)), verifier))
	as.codeFor(t, authorizeParams(reg.ClientID, challenge))

	count := func() (clients, codes, grants, refresh int) {
		st := as.iss.store
		st.mu.Lock()
		defer st.mu.Unlock()
		return len(st.clients), len(st.codes), len(st.grants), len(st.refresh)
	}
	if c, k, g, r := count(); c != 1 || k != 2 || g != 1 || r != 1 {
		t.Fatalf("store has clients %d codes %d grants %d refresh %d, want 1 2 1 1", c, k, g, r)
	}
	as.clock.Advance(RefreshTokenLifetime + time.Minute)
	as.register(t, `{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"none"}`) // a request sweeps
	if c, k, g, r := count(); c != 2 || k != 0 || g != 0 || r != 0 {
		t.Errorf("after expiry: clients %d codes %d grants %d refresh %d, want 2 0 0 0", c, k, g, r)
	}
	as.clock.Advance(ClientIdleLifetime + time.Minute)
	as.register(t, `{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"none"}`)
	if c, _, _, _ := count(); c != 1 {
		t.Errorf("idle clients kept: %d, want 1", c)
	}

	m := map[int]time.Time{}
	base := time.Unix(0, 0)
	for n := range 10 {
		makeRoom(m, 5, func(t time.Time) time.Time { return t })
		m[n] = base.Add(time.Duration(n) * time.Second)
	}
	if !slices.Equal(slices.Sorted(maps.Keys(m)), []int{5, 6, 7, 8, 9}) {
		t.Errorf("makeRoom kept %v, want the 5 newest", m)
	}
}
