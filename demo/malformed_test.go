package demo

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestAS_MalformedInputs: every malformed request gets a 4xx with an
// actionable error, never a 5xx or a panic.
func TestAS_MalformedInputs(t *testing.T) {
	t.Parallel()
	as := startAS(t, IssuerOptions{})
	public := as.registerPublic(t)
	basic := func(s string) http.Header {
		return http.Header{"Authorization": {"Basic " + s}}
	}
	form := "application/x-www-form-urlencoded"
	many := url.Values{}
	for n := range 70 {
		many.Set("p"+string(rune('a'+n%26))+strings.Repeat("x", n), "v")
	}
	tests := []struct {
		name, method, path, contentType, body string
		header                                http.Header
		wantStatus                            int
		wantCode                              string // JSON error code; "" means the HTML error page
		wantDesc                              string
	}{
		{"token without content type", "POST", TokenPath, "", "grant_type=authorization_code", nil, 400, "invalid_request", "Content-Type"},
		{"token with a JSON body", "POST", TokenPath, "application/json", `{"grant_type":"authorization_code"}`, nil, 400, "invalid_request", "Content-Type"},
		{"token with bad percent-encoding", "POST", TokenPath, form, "grant_type=%zz", nil, 400, "invalid_request", "not a valid form"},
		{"token with a semicolon separator", "POST", TokenPath, form, "grant_type=x;client_id=y", nil, 400, "invalid_request", "not a valid form"},
		{"token with repeated grant_type", "POST", TokenPath, form, "grant_type=refresh_token&grant_type=client_credentials", nil, 400, "invalid_request", "repeated"},
		{"token body over the limit", "POST", TokenPath, form, "code=" + strings.Repeat("a", MaxFormBodyBytes), nil, 413, "invalid_request", "exceeds"},
		{"token without grant_type", "POST", TokenPath, form, "client_id=" + public.ClientID, nil, 400, "invalid_request", "grant_type is required"},
		{"token with the password grant", "POST", TokenPath, form, "grant_type=password&username=a&password=b&client_id=" + public.ClientID, nil, 400, "unsupported_grant_type", "not supported"},
		{"token with an implicit-like grant", "POST", TokenPath, form, "grant_type=urn:ietf:params:oauth:grant-type:device_code&client_id=" + public.ClientID, nil, 400, "unsupported_grant_type", "not supported"},
		{"token with an over-long code", "POST", TokenPath, form, "grant_type=authorization_code&code=" + strings.Repeat("c", MaxParamLength+1), nil, 400, "invalid_request", "longer than"},
		{"token with invalid UTF-8", "POST", TokenPath, form, "grant_type=authorization_code&code=%ff%fe", nil, 400, "invalid_request", "UTF-8"},
		{"token with too many parameters", "POST", TokenPath, form, many.Encode(), nil, 400, "invalid_request", "too many"},
		{"token with binary garbage", "POST", TokenPath, form, "\x00\x01\x02\xff", nil, 400, "invalid_request", ""},
		{"code grant without code", "POST", TokenPath, form, "grant_type=authorization_code&client_id=" + public.ClientID, nil, 400, "invalid_request", "code is required"},
		{"refresh grant without refresh_token", "POST", TokenPath, form, "grant_type=refresh_token&client_id=" + public.ClientID, nil, 400, "invalid_request", "refresh_token is required"},
		{"Basic that is not base64", "POST", TokenPath, form, "grant_type=client_credentials", basic("!!!"), 401, "invalid_client", "base64"},
		{"Basic without a colon", "POST", TokenPath, form, "grant_type=client_credentials", basic(base64.StdEncoding.EncodeToString([]byte("nocolon"))), 401, "invalid_client", "base64"},
		{"Basic with bad form-encoding", "POST", TokenPath, form, "grant_type=client_credentials", basic(base64.StdEncoding.EncodeToString([]byte("a%zz:b"))), 401, "invalid_client", "form-encoded"},
		{"Basic with an empty secret", "POST", TokenPath, form, "grant_type=client_credentials", basic(base64.StdEncoding.EncodeToString([]byte("a:"))), 401, "invalid_client", "empty"},
		{"Bearer at the token endpoint", "POST", TokenPath, form, "grant_type=client_credentials", http.Header{"Authorization": {"Bearer x"}}, 401, "invalid_client", "Basic"},
		{"Basic and client_secret together", "POST", TokenPath, form, "grant_type=client_credentials&client_secret=x", basic(base64.StdEncoding.EncodeToString([]byte("a:b"))), 400, "invalid_request", "one client authentication method"},
		{"Basic and a different form client_id", "POST", TokenPath, form, "grant_type=client_credentials&client_id=other", basic(base64.StdEncoding.EncodeToString([]byte("a:b"))), 400, "invalid_request", "differs"},
		{"two Authorization headers", "POST", TokenPath, form, "grant_type=client_credentials", http.Header{"Authorization": {"Basic YTpi", "Basic YTpi"}}, 400, "invalid_request", "one Authorization header"},

		{"authorize with bad percent-encoding", "GET", AuthorizePath + "?client_id=%zz", "", "", nil, 400, "", "malformed"},
		{"authorize with an over-long query", "GET", AuthorizePath + "?state=" + strings.Repeat("s", maxAuthorizeQuery), "", "", nil, 400, "", "longer than"},
		{"authorize with an over-long client_id", "GET", AuthorizePath + "?client_id=" + strings.Repeat("c", MaxURILength+1), "", "", nil, 400, "", "exactly one client_id"},
		{"authorize with no query", "GET", AuthorizePath, "", "", nil, 400, "", "exactly one client_id"},
		{"approval answer as JSON", "POST", AuthorizePath, "application/json", `{"nonce":"x"}`, nil, 400, "", "Content-Type"},
		{"approval answer over the limit", "POST", AuthorizePath, form, "nonce=" + strings.Repeat("n", MaxFormBodyBytes), nil, 413, "", "exceeds"},
		{"approval answer without nonce", "POST", AuthorizePath, form, "user=alice&action=approve", nil, 400, "", "expired or was already answered"},
		{"approval answer with two nonces", "POST", AuthorizePath, form, "nonce=a&nonce=b", nil, 400, "", "repeated"},
		{"approval answer with bad encoding", "POST", AuthorizePath, form, "nonce=%zz", nil, 400, "", "not a valid form"},

		{"register with deeply nested JSON", "POST", RegisterPath, "application/json", `{"redirect_uris":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`, nil, 400, "invalid_redirect_uri", "array of strings"},
		{"register with a huge number", "POST", RegisterPath, "application/json", `{"redirect_uris":["https://a.example/cb"],"client_name":1e999}`, nil, 400, "invalid_client_metadata", "client_name"},
		{"register with invalid UTF-8 name", "POST", RegisterPath, "application/json", "{\"redirect_uris\":[\"https://a.example/cb\"],\"client_name\":\"\xff\"}", nil, 201, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, data := as.do(t, tt.method, tt.path, tt.contentType, strings.NewReader(tt.body), tt.header)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %.300s", resp.StatusCode, tt.wantStatus, data)
			}
			if tt.wantStatus == http.StatusCreated {
				return
			}
			if tt.wantCode == "" {
				if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || resp.Header.Get("Location") != "" || !strings.Contains(string(data), tt.wantDesc) {
					t.Errorf("want the HTML error page mentioning %q, got %s %.300s", tt.wantDesc, resp.Header.Get("Content-Type"), data)
				}
				return
			}
			var body errorBody
			if err := json.Unmarshal(data, &body); err != nil || body.Error != tt.wantCode || body.ErrorDescription == "" || !strings.Contains(body.ErrorDescription, tt.wantDesc) {
				t.Errorf("body %.300s, want %s with a description containing %q", data, tt.wantCode, tt.wantDesc)
			}
		})
	}
}

// fuzzIssuer returns one issuer per fuzz target (keys are slow to make).
func fuzzIssuer(f *testing.F, opts IssuerOptions) http.Handler {
	f.Helper()
	opts.Issuer, opts.Audience = testIssuerURL, testAudience
	iss, err := NewIssuer(opts)
	if err != nil {
		f.Fatal(err)
	}
	iss.fetchTimeout = 100 * time.Millisecond // fuzzed client_id URLs may point anywhere
	return iss.Handler()
}

func FuzzTokenEndpoint(f *testing.F) {
	h := fuzzIssuer(f, IssuerOptions{})
	for _, seed := range []string{
		"grant_type=authorization_code&code=x&code_verifier=" + strings.Repeat("a", 43) + "&client_id=https://a.example/c.json",
		"grant_type=refresh_token&refresh_token=x&client_id=c&scope=tool:read%00",
		"grant_type=client_credentials&client_id=c&client_secret=s&resource=http://127.0.0.1:8080/mcp&resource=x",
		"grant_type=%zz", "a=b;c=d", "", "\x00\xff", "resource=" + strings.Repeat("r&resource=", 40),
	} {
		f.Add(seed, "")
		f.Add(seed, "Basic "+base64.StdEncoding.EncodeToString([]byte("c:s")))
	}
	f.Fuzz(func(t *testing.T, body, authz string) {
		req := httptest.NewRequest(http.MethodPost, TokenPath, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 || rec.Code == http.StatusOK {
			t.Fatalf("POST /token %q: status %d %s", body, rec.Code, rec.Body)
		}
	})
}

func FuzzAuthorizeQuery(f *testing.F) {
	h := fuzzIssuer(f, IssuerOptions{AutoApprove: true})
	for _, seed := range []string{
		"client_id=x&redirect_uri=http://127.0.0.1/cb", "client_id=https://127.0.0.1:1/c.json",
		"client_id=%zz", "response_type=code&code_challenge_method=plain", "", "client_id=http://[::1",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, query string) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL.Path, req.URL.RawQuery = AuthorizePath, query
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		// No client can be registered here, so nothing may redirect.
		if rec.Code >= 500 || rec.Header().Get("Location") != "" {
			t.Fatalf("GET /authorize?%s: status %d, Location %q", query, rec.Code, rec.Header().Get("Location"))
		}
	})
}

func FuzzRegister(f *testing.F) {
	h := fuzzIssuer(f, IssuerOptions{})
	for _, seed := range []string{
		`{"redirect_uris":["cursor://anysphere.cursor-mcp/oauth/callback"],"token_endpoint_auth_method":"none"}`,
		`{"redirect_uris":["javascript:alert(1)"]}`, `{"grant_types":["client_credentials"]}`, `[]`, `null`, `{"redirect_uris":[1]}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, RegisterPath, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("POST /register %q: status %d %s", body, rec.Code, rec.Body)
		}
		if rec.Code == http.StatusCreated {
			var reg RegistrationResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &reg); err != nil {
				t.Fatal(err)
			}
			for _, uri := range reg.RedirectURIs {
				if err := validateRedirectURI(uri); err != nil {
					t.Fatalf("registered an invalid redirect URI %q: %v", uri, err)
				}
			}
		}
	})
}

func FuzzRedirectURI(f *testing.F) {
	for _, seed := range []string{
		"http://127.0.0.1:3000/cb", "cursor://anysphere.cursor-mcp/oauth/callback", "javascript:alert(1)", "JAVASCRIPT:alert(1)",
		"http://127.0.0.1.evil.example/", "https://a.example/cb#x", "http://[::1]:1/", "data:,x", "http://localhost%2eevil.example/",
	} {
		f.Add(seed, "http://127.0.0.1:4000/cb")
	}
	f.Fuzz(func(t *testing.T, registered, requested string) {
		if validateRedirectURI(registered) != nil || validateRedirectURI(requested) != nil {
			return
		}
		u, err := url.Parse(registered)
		if err != nil {
			t.Fatalf("accepted %q that does not parse", registered)
		}
		switch u.Scheme {
		case "http":
			if !isLoopbackHost(u.Hostname()) {
				t.Fatalf("accepted http redirect %q on a non-loopback host", registered)
			}
		case "javascript", "data", "file", "vbscript":
			t.Fatalf("accepted dangerous redirect %q", registered)
		}
		if redirectMatches(registered, requested) {
			r, _ := url.Parse(requested)
			if r.Scheme != u.Scheme || r.Hostname() != u.Hostname() || r.Path != u.Path {
				t.Fatalf("%q matched %q", requested, registered)
			}
		}
	})
}
