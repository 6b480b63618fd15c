package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// oauthClient is a headless OAuth client, as MCP clients are: no redirects
// followed, the authorization response read from Location.
var oauthClient = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := oauthClient.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(data, v) != nil {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, data)
	}
}

func postJSON(t *testing.T, u, contentType, body string, want int, v any) {
	t.Helper()
	resp, err := oauthClient.Post(u, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want || json.Unmarshal(data, v) != nil {
		t.Fatalf("POST %s %s: %d %s, want %d", u, body, resp.StatusCode, data, want)
	}
}

// signIn runs registration, an authorization request with PKCE and the code
// exchange against the authorization server described by metadata, and
// returns the token response.
func signIn(t *testing.T, asMetadata map[string]any, resource, scope, loginHint string) map[string]any {
	t.Helper()
	const redirect = "http://127.0.0.1:33418/callback"
	var reg map[string]any
	postJSON(t, asMetadata["registration_endpoint"].(string), "application/json",
		`{"client_name":"e2e","redirect_uris":["`+redirect+`"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"]}`,
		http.StatusCreated, &reg)
	clientID := reg["client_id"].(string)

	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	verifier := base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirect},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		"state": {"e2e"}, "scope": {scope}, "resource": {resource}, "login_hint": {loginHint},
	}
	resp, err := oauthClient.Get(asMetadata["authorization_endpoint"].(string) + "?" + q.Encode())
	if err != nil {
		t.Fatalf("authorize: %v", err)
	}
	_ = resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), redirect) {
		t.Fatalf("authorize: %d Location %q, want a redirect to %s", resp.StatusCode, resp.Header.Get("Location"), redirect)
	}
	if got := loc.Query(); got.Get("state") != "e2e" || got.Get("iss") != asMetadata["issuer"] || got.Get("code") == "" {
		t.Fatalf("authorization response %v, want code, state and iss", got)
	}

	var tok map[string]any
	form := url.Values{
		"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "code_verifier": {verifier},
		"client_id": {clientID}, "redirect_uri": {redirect}, "resource": {resource},
	}
	postJSON(t, asMetadata["token_endpoint"].(string), "application/x-www-form-urlencoded", form.Encode(), http.StatusOK, &tok)
	return tok
}

// TestDemoOAuthSignIn runs `gatewaystack demo --auto-approve` and signs in
// the way MCP clients do, starting from the gateway's 401: Protected
// Resource Metadata, authorization server metadata, registration, PKCE,
// token; then uses the token through the gateway.
func TestDemoOAuthSignIn(t *testing.T) {
	t.Parallel()
	p := startProc(t, childEnv(), "demo", "--auto-approve", "--gateway-addr", "127.0.0.1:0", "--issuer-addr", "127.0.0.1:0", "--upstream-addr", "127.0.0.1:0")
	waitFor(t, p, startTimeout, "demo banner", func() bool { return strings.Contains(p.stdout.String(), "Press Ctrl-C to stop.") })
	gw := bannerURL(t, p.stdout.String(), "MCP gateway")
	iss := bannerURL(t, p.stdout.String(), "demo issuer")
	waitFor(t, p, startTimeout, "gateway health", func() bool { return healthy(strings.TrimSuffix(gw, "/mcp") + "/health/ready") })
	if !strings.Contains(p.stdout.String(), "is signed in at once as alice") {
		t.Errorf("banner does not say sign-ins are auto-approved:\n%s", p.stdout.String())
	}

	resp, err := oauthClient.Post(gw, "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	challenge := challengeParams(t, resp.Header.Get("WWW-Authenticate"))
	var prm struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
	}
	getJSON(t, challenge["resource_metadata"], &prm)
	if prm.Resource != gw || !slices.Equal(prm.AuthorizationServers, []string{iss}) {
		t.Fatalf("PRM %+v, want resource %s and authorization_servers [%s]", prm, gw, iss)
	}
	var md map[string]any
	getJSON(t, prm.AuthorizationServers[0]+"/.well-known/oauth-authorization-server", &md)
	if md["issuer"] != iss {
		t.Fatalf("AS metadata issuer %v, want %s", md["issuer"], iss)
	}

	tok := signIn(t, md, prm.Resource, challenge["scope"], "bob")
	access, _ := tok["access_token"].(string)
	if tok["scope"] != "tool:read" || access == "" || tok["refresh_token"] == nil {
		t.Fatalf("token response %v, want tool:read with a refresh token", tok)
	}
	claims := jwtClaims(t, access)
	if claims["sub"] != "bob" || claims["aud"] != gw || claims["iss"] != iss {
		t.Errorf("claims %v, want bob, aud %s, iss %s", claims, gw, iss)
	}
	for _, e := range eras {
		c := connect(t, gw, access, e)
		if got := c.toolNames(t); !slices.Equal(got, []string{"notes__list_notes", "notes__read_note", "notes__write_note"}) {
			t.Errorf("%s: tools %v", e.name, got)
		}
		if listed := c.mustCall(t, "notes__list_notes", nil); listed["user"] != "bob" || listed["org_id"] != "acme" {
			t.Errorf("%s: list_notes ran as %v/%v, want bob/acme", e.name, listed["user"], listed["org_id"])
		}
		_ = c.Close()
	}

	code, took := p.stop(t, os.Interrupt)
	if code != 0 {
		t.Errorf("demo exit code %d after %s", code, took)
	}
	assertNoTokens(t, map[string]string{"demo stdout": p.stdout.String(), "demo stderr": p.stderr.String()}, access, tok["refresh_token"].(string))
}

// TestIssuerPublicURLAndResources runs `gatewaystack issuer` as it runs
// behind a tunnel: a public https issuer URL (so /mint is off) and several
// resources.
func TestIssuerPublicURLAndResources(t *testing.T) {
	t.Parallel()
	const public, gwA, gwB = "https://issuer.example", "https://gw.example/mcp", "http://127.0.0.1:8080/mcp"
	p, ports := startServer(t, childEnv(), 1, func(ports []int) []string {
		return []string{"issuer", "--addr", addr(ports[0]), "--url", public, "--resource", gwA, "--resource", gwB, "--auto-approve"}
	}, func(ports []int) string { return baseURL(ports[0]) + "/health" })
	local := baseURL(ports[0])

	// The output is copied from a pipe: it may arrive after /health answers.
	waitFor(t, p, startTimeout, "issuer output", func() bool {
		return strings.Contains(p.stdout.String(), "sign-in:") && strings.Contains(p.stderr.String(), "warning:")
	})
	out := p.stdout.String()
	for _, want := range []string{
		"demo issuer " + public + " (JWKS " + public + "/.well-known/jwks.json, /mint off: the issuer URL is not on loopback) for audience " + gwA,
		"resources " + gwA + ", " + gwB,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("issuer printed %q, want it to contain %q", out, want)
		}
	}
	if !strings.Contains(p.stderr.String(), "warning: --auto-approve with the public issuer URL") {
		t.Errorf("no warning about --auto-approve on a public URL: %q", p.stderr.String())
	}

	var md map[string]any
	getJSON(t, local+"/.well-known/oauth-authorization-server", &md)
	if md["issuer"] != public || md["token_endpoint"] != public+"/token" {
		t.Fatalf("metadata %v, want the public issuer URL", md)
	}
	var refused map[string]any
	postJSON(t, local+"/mint", "application/json", `{"sub":"alice"}`, http.StatusForbidden, &refused)

	// Endpoints are public URLs; reach them over loopback.
	for _, k := range []string{"registration_endpoint", "authorization_endpoint", "token_endpoint"} {
		md[k] = local + strings.TrimPrefix(md[k].(string), public)
	}
	for _, resource := range []string{gwA, gwB} {
		tok := signIn(t, md, resource, "tool:read tool:write", "")
		if claims := jwtClaims(t, tok["access_token"].(string)); claims["aud"] != resource || claims["iss"] != public || claims["sub"] != "alice" {
			t.Errorf("claims %v, want aud %s, iss %s, sub alice", claims, resource, public)
		}
	}
	if code, _ := p.stop(t, os.Interrupt); code != 0 {
		t.Errorf("issuer exit code %d", code)
	}
}

func TestOAuthFlagUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"issuer", "--addr", "127.0.0.1:0", "--resource", "not a url"},
		{"issuer", "--addr", "127.0.0.1:0", "--url", "ftp://issuer.example"},
		{"demo", "--public-url", "gateway.example"},
		{"demo", "--issuer-url", "https://issuer.example/?x=1"},
	} {
		r := runCmd(t, childEnv(), args...)
		if r.code != 2 || !strings.Contains(r.stderr, "usage: gatewaystack "+args[0]) {
			t.Errorf("gatewaystack %v: exit %d, stderr %q; want 2 and the usage", args, r.code, r.stderr)
		}
	}
}
