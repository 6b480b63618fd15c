package demo

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

const (
	testIssuerURL = "http://127.0.0.1:5051"
	testAudience  = "http://127.0.0.1:8080/mcp"
)

// startIssuer serves a new Issuer on a loopback httptest server.
func startIssuer(t *testing.T, opts IssuerOptions) (*Issuer, *httptest.Server) {
	t.Helper()
	if opts.Issuer == "" {
		opts.Issuer = testIssuerURL
	}
	if opts.Audience == "" {
		opts.Audience = testAudience
	}
	iss, err := NewIssuer(opts)
	if err != nil {
		t.Fatalf("NewIssuer: %v", err)
	}
	srv := httptest.NewServer(iss.Handler())
	t.Cleanup(srv.Close)
	return iss, srv
}

// doRequest sends a request to srv and returns the response with its body
// read.
func doRequest(t *testing.T, srv *httptest.Server, method, path, contentType string, body io.Reader, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, body)
	if err != nil {
		t.Fatalf("build request: %v", err)
	}
	for name, values := range header {
		req.Header[name] = values
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s %s response: %v", method, path, err)
	}
	return resp, data
}

// mintOverHTTP posts body to /mint and decodes a successful response.
func mintOverHTTP(t *testing.T, srv *httptest.Server, body string) MintResponse {
	t.Helper()
	resp, data := doRequest(t, srv, http.MethodPost, MintPath, "application/json", strings.NewReader(body), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /mint %s: status %d, body %s", body, resp.StatusCode, data)
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("POST /mint Cache-Control = %q, want no-store", got)
	}
	var out MintResponse
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("decode mint response %s: %v", data, err)
	}
	return out
}

// fetchJWKS downloads and parses the issuer's key set over HTTP.
func fetchJWKS(t *testing.T, srv *httptest.Server) jwk.Set {
	t.Helper()
	resp, data := doRequest(t, srv, http.MethodGet, JWKSPath, "", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, body %s", JWKSPath, resp.StatusCode, data)
	}
	set, err := jwk.Parse(data)
	if err != nil {
		t.Fatalf("parse JWKS %s: %v", data, err)
	}
	return set
}

// payloadClaims returns the raw JSON claims of a compact JWS.
func payloadClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("decode payload: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatalf("unmarshal payload %s: %v", raw, err)
	}
	return claims
}

func TestIssuer_MintedTokenVerifiesAgainstServedJWKS(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	iss, srv := startIssuer(t, IssuerOptions{DefaultScope: "tool:read", Now: func() time.Time { return now }})

	minted := mintOverHTTP(t, srv, `{"sub":"alice","scope":"tool:read notes:admin","org_id":"acme","expires_in":120,"roles":["admin","ops"],"client_id":"cli"}`)
	if minted.TokenType != "Bearer" || minted.ExpiresIn != 120 || minted.Scope != "tool:read notes:admin" {
		t.Errorf("mint response = %+v, want Bearer, 120s, scope %q", minted, "tool:read notes:admin")
	}

	set := fetchJWKS(t, srv)
	tok, err := jwt.ParseString(minted.AccessToken,
		jwt.WithKeySet(set),
		jwt.WithIssuer(testIssuerURL),
		jwt.WithAudience(testAudience),
		jwt.WithClock(jwt.ClockFunc(func() time.Time { return now.Add(time.Minute) })),
	)
	if err != nil {
		t.Fatalf("verify token against served JWKS: %v", err)
	}
	if sub, _ := tok.Subject(); sub != "alice" {
		t.Errorf("sub = %q, want alice", sub)
	}

	claims := payloadClaims(t, minted.AccessToken)
	want := map[string]any{
		"iss":       testIssuerURL,
		"aud":       testAudience, // a single string, not an array
		"sub":       "alice",
		"iat":       float64(now.Unix()),
		"nbf":       float64(now.Unix()),
		"exp":       float64(now.Add(120 * time.Second).Unix()),
		"scope":     "tool:read notes:admin",
		"org_id":    "acme",
		"roles":     []any{"admin", "ops"},
		"client_id": "cli",
	}
	for name, value := range want {
		got, ok := claims[name]
		if !ok {
			t.Errorf("claim %s missing; claims: %v", name, claims)
			continue
		}
		gotJSON, _ := json.Marshal(got)
		wantJSON, _ := json.Marshal(value)
		if !bytes.Equal(gotJSON, wantJSON) {
			t.Errorf("claim %s = %s, want %s", name, gotJSON, wantJSON)
		}
	}
	jti, _ := claims["jti"].(string)
	if raw, err := base64.RawURLEncoding.DecodeString(jti); err != nil || len(raw) != 16 {
		t.Errorf("jti = %q, want base64url of 16 random bytes", jti)
	}
	if extra := len(claims) - len(want) - 1; extra != 0 {
		t.Errorf("token has %d unexpected claims: %v", extra, claims)
	}

	msg, err := jws.ParseString(minted.AccessToken)
	if err != nil {
		t.Fatalf("parse JWS: %v", err)
	}
	headers := msg.Signatures()[0].ProtectedHeaders()
	kid, _ := headers.KeyID()
	typ, _ := headers.Type()
	alg, _ := headers.Algorithm()
	if kid != iss.KeyID() || typ != "JWT" || alg.String() != "RS256" {
		t.Errorf("header kid=%q typ=%q alg=%q, want kid=%q typ=JWT alg=RS256", kid, typ, alg, iss.KeyID())
	}
	key, ok := set.Key(0)
	if !ok {
		t.Fatal("JWKS has no keys")
	}
	if setKid, _ := key.KeyID(); setKid != kid {
		t.Errorf("JWKS kid = %q, token kid = %q", setKid, kid)
	}
}

func TestIssuer_JWKSPublishesOnlyThePublicRSAKey(t *testing.T) {
	t.Parallel()
	iss, srv := startIssuer(t, IssuerOptions{})

	resp, data := doRequest(t, srv, http.MethodGet, JWKSPath, "", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %s", resp.StatusCode, data)
	}
	if got := resp.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got)
	}
	if got := resp.Header.Get("Cache-Control"); got != "public, max-age=300" {
		t.Errorf("Cache-Control = %q, want public, max-age=300", got)
	}

	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("decode JWKS %s: %v", data, err)
	}
	// The signing key, then the next one, published ahead of rotation.
	if len(doc.Keys) != 2 {
		t.Fatalf("JWKS has %d keys, want 2 (current and next): %s", len(doc.Keys), data)
	}
	if iss.KeyID() == iss.NextKeyID() {
		t.Fatalf("current and next key share kid %q", iss.KeyID())
	}
	for n, kid := range []string{iss.KeyID(), iss.NextKeyID()} {
		key := doc.Keys[n]
		for name, want := range map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256"} {
			if got := key[name]; got != want {
				t.Errorf("JWKS key %d %s = %v, want %s", n, name, got, want)
			}
		}
		n, _ := key["n"].(string)
		if modulus, err := base64.RawURLEncoding.DecodeString(n); err != nil || len(modulus) != 256 {
			t.Errorf("JWKS n is not a base64url 2048-bit modulus: %q", n)
		}
		if key["e"] == nil {
			t.Error("JWKS e missing")
		}
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if _, ok := key[private]; ok {
				t.Errorf("JWKS leaks private parameter %q", private)
			}
		}
	}

	direct, err := iss.PublicJWKS()
	if err != nil {
		t.Fatalf("PublicJWKS: %v", err)
	}
	if !bytes.Equal(bytes.TrimSpace(data), direct) {
		t.Errorf("served JWKS %s differs from PublicJWKS %s", data, direct)
	}
}

func TestIssuer_TokenFromAnotherIssuerDoesNotVerify(t *testing.T) {
	t.Parallel()
	_, srvA := startIssuer(t, IssuerOptions{})
	_, srvB := startIssuer(t, IssuerOptions{})

	minted := mintOverHTTP(t, srvA, `{"sub":"alice"}`)
	if _, err := jwt.ParseString(minted.AccessToken, jwt.WithKeySet(fetchJWKS(t, srvB))); err == nil {
		t.Fatal("token minted by issuer A verified against issuer B's JWKS")
	}
}

func TestIssuer_MintAppliesDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		opts          IssuerOptions
		body          string
		wantExpiresIn int
		wantScope     string // "" means no scope claim
		wantClientID  string
	}{
		{
			name:          "sub only gets default scope, 600s and demo-mint client",
			opts:          IssuerOptions{DefaultScope: "tool:read"},
			body:          `{"sub":"alice"}`,
			wantExpiresIn: 600,
			wantScope:     "tool:read",
			wantClientID:  DefaultClientID,
		},
		{
			name:          "default lifetime is capped by a shorter MaxExpiresIn",
			opts:          IssuerOptions{DefaultScope: "tool:read", MaxExpiresIn: 5 * time.Minute},
			body:          `{"sub":"alice"}`,
			wantExpiresIn: 300,
			wantScope:     "tool:read",
			wantClientID:  DefaultClientID,
		},
		{
			name:          "no default scope means no scope claim",
			opts:          IssuerOptions{},
			body:          `{"sub":"alice","client_id":"web"}`,
			wantExpiresIn: 600,
			wantClientID:  "web",
		},
		{
			name:          "scope is normalised: extra spaces and duplicates dropped",
			opts:          IssuerOptions{DefaultScope: "tool:read"},
			body:          `{"sub":"alice","scope":"  tool:write  tool:read tool:write ","expires_in":86400}`,
			wantExpiresIn: 86400,
			wantScope:     "tool:write tool:read",
			wantClientID:  DefaultClientID,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, srv := startIssuer(t, tt.opts)
			minted := mintOverHTTP(t, srv, tt.body)
			if minted.ExpiresIn != tt.wantExpiresIn || minted.Scope != tt.wantScope {
				t.Errorf("mint response expires_in=%d scope=%q, want %d and %q", minted.ExpiresIn, minted.Scope, tt.wantExpiresIn, tt.wantScope)
			}
			claims := payloadClaims(t, minted.AccessToken)
			if got := claims["exp"].(float64) - claims["iat"].(float64); int(got) != tt.wantExpiresIn {
				t.Errorf("exp - iat = %v, want %d", got, tt.wantExpiresIn)
			}
			scope, hasScope := claims["scope"]
			switch {
			case tt.wantScope == "" && hasScope:
				t.Errorf("scope claim = %v, want none", scope)
			case tt.wantScope != "" && scope != tt.wantScope:
				t.Errorf("scope claim = %v, want %q", scope, tt.wantScope)
			}
			if claims["client_id"] != tt.wantClientID {
				t.Errorf("client_id claim = %v, want %q", claims["client_id"], tt.wantClientID)
			}
			for _, absent := range []string{"org_id", "roles"} {
				if v, ok := claims[absent]; ok {
					t.Errorf("claim %s = %v, want absent when not requested", absent, v)
				}
			}
		})
	}
}

func TestIssuer_MintRejectsBadRequests(t *testing.T) {
	t.Parallel()
	_, srv := startIssuer(t, IssuerOptions{DefaultScope: "tool:read", MaxExpiresIn: time.Hour})

	tests := []struct {
		name        string
		contentType string
		body        string
		wantStatus  int
		wantDesc    string // substring of error_description
	}{
		{"empty body", "application/json", "", http.StatusBadRequest, "request body is empty"},
		{"malformed JSON", "application/json", `{"sub":`, http.StatusBadRequest, "truncated JSON"},
		{"not JSON at all", "application/json", `sub=alice`, http.StatusBadRequest, "not valid JSON"},
		{"JSON array instead of object", "application/json", `["alice"]`, http.StatusBadRequest, "must be a JSON object"},
		{"unknown field", "application/json", `{"sub":"alice","admin":true}`, http.StatusBadRequest, `unknown field "admin"`},
		{"trailing data", "application/json", `{"sub":"alice"} {"sub":"bob"}`, http.StatusBadRequest, "single JSON object"},
		{"wrong field type", "application/json", `{"sub":"alice","expires_in":"60"}`, http.StatusBadRequest, `"expires_in" must be of type int`},
		{"missing sub", "application/json", `{"scope":"tool:read"}`, http.StatusBadRequest, "sub must be a non-blank string"},
		{"blank sub", "application/json", `{"sub":"   "}`, http.StatusBadRequest, "sub must be a non-blank string"},
		{"sub longer than 256 characters", "application/json", `{"sub":"` + strings.Repeat("é", 257) + `"}`, http.StatusBadRequest, "sub must be at most 256 characters"},
		{"sub with control character", "application/json", `{"sub":"alice\nadmin"}`, http.StatusBadRequest, "sub must not contain control characters"},
		{"sub with surrounding spaces", "application/json", `{"sub":" alice"}`, http.StatusBadRequest, "sub must not have leading or trailing whitespace"},
		{"negative expires_in", "application/json", `{"sub":"alice","expires_in":-1}`, http.StatusBadRequest, "expires_in must be a positive number"},
		{"expires_in above the cap", "application/json", `{"sub":"alice","expires_in":3601}`, http.StatusBadRequest, "expires_in must be at most 3600 seconds"},
		{"scope with tab", "application/json", `{"sub":"alice","scope":"tool:read\ttool:write"}`, http.StatusBadRequest, "scope contains invalid character"},
		{"scope with non-ASCII", "application/json", `{"sub":"alice","scope":"tööl:read"}`, http.StatusBadRequest, "scope contains invalid character"},
		{"scope of only spaces", "application/json", `{"sub":"alice","scope":"   "}`, http.StatusBadRequest, "at least one scope token"},
		{"blank org_id", "application/json", `{"sub":"alice","org_id":" "}`, http.StatusBadRequest, "org_id must be a non-blank string"},
		{"empty role", "application/json", `{"sub":"alice","roles":["admin",""]}`, http.StatusBadRequest, "roles[1] must be a non-blank string"},
		{"body over 64 KiB", "application/json", `{"sub":"` + strings.Repeat("a", MaxMintBodyBytes) + `"}`, http.StatusRequestEntityTooLarge, "exceeds 65536 bytes"},
		{"form content type", "application/x-www-form-urlencoded", `{"sub":"alice"}`, http.StatusUnsupportedMediaType, "Content-Type must be application/json"},
		{"missing content type", "", `{"sub":"alice"}`, http.StatusUnsupportedMediaType, "Content-Type must be application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, data := doRequest(t, srv, http.MethodPost, MintPath, tt.contentType, strings.NewReader(tt.body), nil)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tt.wantStatus, data)
			}
			if got := resp.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got)
			}
			var body errorBody
			if err := json.Unmarshal(data, &body); err != nil {
				t.Fatalf("decode error body %s: %v", data, err)
			}
			if body.Error != "invalid_request" || !strings.Contains(body.ErrorDescription, tt.wantDesc) {
				t.Errorf("error body = %+v, want invalid_request with description containing %q", body, tt.wantDesc)
			}
		})
	}
}

func TestIssuer_MintAcceptsJSONWithCharset(t *testing.T) {
	t.Parallel()
	_, srv := startIssuer(t, IssuerOptions{})
	resp, data := doRequest(t, srv, http.MethodPost, MintPath, "application/json; charset=utf-8", strings.NewReader(`{"sub":"alice"}`), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200; body %s", resp.StatusCode, data)
	}
}

func TestIssuer_MintDirectCallReportsInvalidRequestError(t *testing.T) {
	t.Parallel()
	iss, err := NewIssuer(IssuerOptions{Issuer: testIssuerURL, Audience: testAudience})
	if err != nil {
		t.Fatalf("NewIssuer: %v", err)
	}
	_, err = iss.Mint(MintRequest{})
	var invalid *InvalidMintRequestError
	if !errors.As(err, &invalid) {
		t.Fatalf("Mint(empty) error = %v, want *InvalidMintRequestError", err)
	}
}

func TestIssuer_RoutesAnswerWrongMethodsAndUnknownPaths(t *testing.T) {
	t.Parallel()
	_, srv := startIssuer(t, IssuerOptions{})

	tests := []struct {
		name       string
		method     string
		path       string
		wantStatus int
		wantAllow  string
		wantError  string
	}{
		{"GET /mint is not allowed", http.MethodGet, MintPath, http.StatusMethodNotAllowed, "POST", "invalid_request"},
		{"PUT /mint is not allowed", http.MethodPut, MintPath, http.StatusMethodNotAllowed, "POST", "invalid_request"},
		{"DELETE /mint is not allowed", http.MethodDelete, MintPath, http.StatusMethodNotAllowed, "POST", "invalid_request"},
		{"POST to the JWKS is not allowed", http.MethodPost, JWKSPath, http.StatusMethodNotAllowed, "GET, HEAD", "invalid_request"},
		{"unknown path is a JSON 404", http.MethodGet, "/userinfo", http.StatusNotFound, "", "not_found"},
		{"OpenID configuration is not served (it would need every OIDC field)", http.MethodGet, "/.well-known/openid-configuration", http.StatusNotFound, "", "not_found"},
		{"PUT /authorize is not allowed", http.MethodPut, AuthorizePath, http.StatusMethodNotAllowed, "GET, POST", "invalid_request"},
		{"GET /token is not allowed", http.MethodGet, TokenPath, http.StatusMethodNotAllowed, "POST", "invalid_request"},
		{"GET /register is not allowed", http.MethodGet, RegisterPath, http.StatusMethodNotAllowed, "POST", "invalid_request"},
		{"POST to the metadata is not allowed", http.MethodPost, MetadataPath, http.StatusMethodNotAllowed, "GET, HEAD", "invalid_request"},
		{"root is a JSON 404", http.MethodGet, "/", http.StatusNotFound, "", "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, data := doRequest(t, srv, tt.method, tt.path, "", nil, nil)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tt.wantStatus, data)
			}
			if got := resp.Header.Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tt.wantAllow)
			}
			var body errorBody
			if err := json.Unmarshal(data, &body); err != nil || body.Error != tt.wantError || body.ErrorDescription == "" {
				t.Errorf("body = %s (err %v), want JSON error %q with a description", data, err, tt.wantError)
			}
		})
	}
}

func TestIssuer_HealthReportsIssuer(t *testing.T) {
	t.Parallel()
	_, srv := startIssuer(t, IssuerOptions{Issuer: "http://127.0.0.1:5051/"})
	resp, data := doRequest(t, srv, http.MethodGet, HealthPath, "", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d; body %s", resp.StatusCode, data)
	}
	var body struct {
		OK     bool   `json:"ok"`
		Issuer string `json:"issuer"`
	}
	if err := json.Unmarshal(data, &body); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	// The issuer is reported verbatim, trailing slash included.
	if !body.OK || body.Issuer != "http://127.0.0.1:5051/" {
		t.Errorf("health = %+v, want ok and the configured issuer verbatim", body)
	}
}

func TestIssuer_CORSAllowsLoopbackOriginsOnly(t *testing.T) {
	t.Parallel()
	_, srv := startIssuer(t, IssuerOptions{})

	tests := []struct {
		name       string
		method     string
		path       string
		origin     string
		wantStatus int
		wantACAO   string
	}{
		{"preflight from 127.0.0.1", http.MethodOptions, MintPath, "http://127.0.0.1:3000", http.StatusNoContent, "http://127.0.0.1:3000"},
		{"preflight from localhost", http.MethodOptions, MintPath, "http://localhost:5173", http.StatusNoContent, "http://localhost:5173"},
		{"preflight from [::1]", http.MethodOptions, JWKSPath, "http://[::1]:8080", http.StatusNoContent, "http://[::1]:8080"},
		{"preflight from a remote origin gets no CORS grant", http.MethodOptions, MintPath, "https://evil.example", http.StatusNoContent, ""},
		{"localhost look-alike gets no CORS grant", http.MethodGet, JWKSPath, "http://localhost.evil.example", http.StatusOK, ""},
		{"simple GET from loopback is granted", http.MethodGet, HealthPath, "http://127.0.0.1:3000", http.StatusOK, "http://127.0.0.1:3000"},
		{"null origin gets no CORS grant", http.MethodGet, HealthPath, "null", http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			header := http.Header{"Origin": {tt.origin}}
			if tt.method == http.MethodOptions {
				header.Set("Access-Control-Request-Method", http.MethodPost)
				header.Set("Access-Control-Request-Headers", "content-type")
			}
			resp, data := doRequest(t, srv, tt.method, tt.path, "", nil, header)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tt.wantStatus, data)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tt.wantACAO {
				t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, tt.wantACAO)
			}
			if !slices.Contains(resp.Header.Values("Vary"), "Origin") {
				t.Errorf("Vary = %q, want it to include Origin", resp.Header.Values("Vary"))
			}
			granted := tt.wantACAO != ""
			if tt.method == http.MethodOptions && granted {
				if got := resp.Header.Get("Access-Control-Allow-Methods"); got != "GET, POST, OPTIONS" {
					t.Errorf("Access-Control-Allow-Methods = %q", got)
				}
				if got := resp.Header.Get("Access-Control-Allow-Headers"); got != "Content-Type, Authorization, MCP-Protocol-Version" {
					t.Errorf("Access-Control-Allow-Headers = %q", got)
				}
			}
			if !granted && resp.Header.Get("Access-Control-Allow-Methods") != "" {
				t.Error("Access-Control-Allow-Methods set for a non-loopback origin")
			}
		})
	}
}

func TestNewIssuer_RejectsInvalidOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    IssuerOptions
		wantErr string
	}{
		{"missing issuer", IssuerOptions{Audience: testAudience}, "issuer URL is required"},
		{"relative issuer", IssuerOptions{Issuer: "127.0.0.1:5051", Audience: testAudience}, "absolute http or https URL"},
		{"issuer with query", IssuerOptions{Issuer: "http://127.0.0.1:5051?x=1", Audience: testAudience}, "must not carry"},
		{"missing audience", IssuerOptions{Issuer: testIssuerURL}, "audience is required"},
		{"bad default scope", IssuerOptions{Issuer: testIssuerURL, Audience: testAudience, DefaultScope: "tool:read\n"}, "default scope"},
		{"sub-second max lifetime", IssuerOptions{Issuer: testIssuerURL, Audience: testAudience, MaxExpiresIn: time.Millisecond}, "at least 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewIssuer(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewIssuer error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
