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
	"regexp"
	"slices"
	"strings"
	"testing"
)

// approval is one approval page opened by a headless client, answered by
// posting its HTML form.
type approval struct {
	clientID, verifier, redirect string
	authorize                    string // the local authorization endpoint
	page                         string
}

var (
	formNonce         = regexp.MustCompile(`name="nonce" value="([^"]+)"`)
	generatedPassword = regexp.MustCompile(`sign-in password: (\S+) \(generated`)
)

// openApproval registers a public client with the issuer at local (reached
// over loopback, whatever its public URL) and opens the approval page for
// resource and scope.
func openApproval(t *testing.T, local, resource, scope string) *approval {
	t.Helper()
	a := &approval{redirect: "http://127.0.0.1:33418/callback", authorize: local + "/authorize"}
	var reg map[string]any
	postJSON(t, local+"/register", "application/json",
		`{"client_name":"e2e","redirect_uris":["`+a.redirect+`"],"token_endpoint_auth_method":"none"}`, http.StatusCreated, &reg)
	a.clientID = reg["client_id"].(string)
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	a.verifier = base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(a.verifier))
	q := url.Values{
		"response_type": {"code"}, "client_id": {a.clientID}, "redirect_uri": {a.redirect},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		"state": {"e2e"}, "scope": {scope}, "resource": {resource},
	}
	resp, err := oauthClient.Get(a.authorize + "?" + q.Encode())
	if err != nil {
		t.Fatalf("authorize: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("authorize: %d %s, want the approval page", resp.StatusCode, body)
	}
	a.page = string(body)
	return a
}

// answer posts the page's form with fields (the nonce is added) and
// returns the status, the Location and the body. A page shown again
// becomes the one the next answer uses.
func (a *approval) answer(t *testing.T, fields url.Values) (int, *url.URL, string) {
	t.Helper()
	m := formNonce.FindStringSubmatch(a.page)
	if m == nil {
		t.Fatalf("approval page without a nonce:\n%s", a.page)
	}
	form := url.Values{"nonce": {m[1]}}
	for k, v := range fields {
		form[k] = v
	}
	resp, err := oauthClient.PostForm(a.authorize, form)
	if err != nil {
		t.Fatalf("POST %s: %v", a.authorize, err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests {
		a.page = string(body)
	}
	return resp.StatusCode, loc, string(body)
}

// exchange trades the code of an approval for a token at local.
func (a *approval) exchange(t *testing.T, local, resource, code string) map[string]any {
	t.Helper()
	var tok map[string]any
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {a.verifier},
		"client_id": {a.clientID}, "redirect_uri": {a.redirect}, "resource": {resource}}
	postJSON(t, local+"/token", "application/x-www-form-urlencoded", form.Encode(), http.StatusOK, &tok)
	return tok
}

// Regression invariant: `gatewaystack issuer --url https://…` (a public
// issuer) hands tokens only to whoever knows the password it printed at
// start: no client_credentials, no /mint, the sign-in page asks for the
// password, and admin (notes:admin) is not offered. The password appears
// once on stdout and never on stderr.
func TestIssuerOnAPublicURLSignsInOnlyWithThePassword(t *testing.T) {
	t.Parallel()
	const public, resource = "https://issuer.example", "https://gw.example/mcp"
	p, ports := startServer(t, childEnv(), 1, func(ports []int) []string {
		return []string{"issuer", "--addr", addr(ports[0]), "--url", public, "--resource", resource}
	}, func(ports []int) string { return baseURL(ports[0]) + "/health" })
	local := baseURL(ports[0])
	waitFor(t, p, startTimeout, "the sign-in password", func() bool { return generatedPassword.MatchString(p.stdout.String()) })
	password := generatedPassword.FindStringSubmatch(p.stdout.String())[1]
	if len(password) < 20 || strings.Count(p.stdout.String(), password) != 1 {
		t.Errorf("password %q: want a long random one printed once", password)
	}
	if !strings.Contains(p.stdout.String(), "admin not offered (--allow-admin); client_credentials off (--allow-client-credentials)") {
		t.Errorf("issuer output does not say what is off:\n%s", p.stdout.String())
	}

	// No token without a user: no client_credentials, no /mint.
	var md map[string]any
	getJSON(t, local+"/.well-known/oauth-authorization-server", &md)
	if grants := md["grant_types_supported"].([]any); slices.Contains(grants, any("client_credentials")) {
		t.Errorf("grant_types_supported %v lists client_credentials", grants)
	}
	var refused map[string]any
	postJSON(t, local+"/register", "application/json", `{"grant_types":["client_credentials"],"token_endpoint_auth_method":"client_secret_basic"}`, http.StatusBadRequest, &refused)
	if refused["error"] != "invalid_client_metadata" {
		t.Errorf("registering for client_credentials: %v", refused)
	}
	var conf map[string]any
	postJSON(t, local+"/register", "application/json", `{"redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"client_secret_post"}`, http.StatusCreated, &conf)
	cc := url.Values{"grant_type": {"client_credentials"}, "client_id": {conf["client_id"].(string)}, "client_secret": {conf["client_secret"].(string)}, "scope": {"tool:read tool:write"}}
	postJSON(t, local+"/token", "application/x-www-form-urlencoded", cc.Encode(), http.StatusBadRequest, &refused)
	if refused["error"] != "unsupported_grant_type" {
		t.Errorf("client_credentials at /token: %v, want unsupported_grant_type", refused)
	}
	postJSON(t, local+"/mint", "application/json", `{"sub":"admin","scope":"notes:admin"}`, http.StatusForbidden, &refused)

	// The sign-in page: password asked for, admin not offered.
	a := openApproval(t, local, resource, "tool:read tool:write notes:admin")
	if !strings.Contains(a.page, `type="password" name="password"`) || strings.Contains(a.page, `value="admin"`) {
		t.Fatalf("sign-in page: want a password field and no admin:\n%s", a.page)
	}
	alice := url.Values{"user": {"alice"}, "scope": {"tool:read", "tool:write"}, "action": {"approve"}}
	if status, loc, _ := a.answer(t, alice); status != http.StatusForbidden || loc.String() != "" {
		t.Errorf("approval without password: %d %v, want 403 and the page again", status, loc)
	}
	alice.Set("password", password+"x")
	if status, loc, body := a.answer(t, alice); status != http.StatusForbidden || loc.String() != "" || !strings.Contains(body, "Wrong password.") {
		t.Errorf("approval with a wrong password: %d %v, want 403 and the page again", status, loc)
	}
	forged := url.Values{"user": {"admin"}, "scope": {"tool:read", "notes:admin"}, "action": {"approve"}, "password": {password}}
	if status, loc, _ := a.answer(t, forged); status != http.StatusSeeOther || loc.Query().Get("error") != "access_denied" || loc.Query().Has("code") {
		t.Errorf("forged admin approval: %d %v, want access_denied", status, loc)
	}

	a = openApproval(t, local, resource, "tool:read tool:write")
	alice.Set("password", password)
	status, loc, body := a.answer(t, alice)
	if status != http.StatusSeeOther || loc.Query().Get("code") == "" || loc.Query().Get("iss") != public {
		t.Fatalf("approval with the password: %d %v %s, want a code", status, loc, body)
	}
	tok := a.exchange(t, local, resource, loc.Query().Get("code"))
	if claims := jwtClaims(t, tok["access_token"].(string)); claims["sub"] != "alice" || claims["iss"] != public || claims["aud"] != resource {
		t.Errorf("claims %v, want alice from %s for %s", claims, public, resource)
	}

	if code, _ := p.stop(t, os.Interrupt); code != 0 {
		t.Errorf("issuer exit code %d", code)
	}
	if strings.Contains(p.stderr.String(), password) {
		t.Errorf("the password is on stderr:\n%s", p.stderr.String())
	}
}

// A public issuer started with a password from the environment and with
// --allow-admin and --allow-client-credentials offers admin and serves
// client_credentials, and never prints the password.
func TestIssuerPublicGuardsCanBeLifted(t *testing.T) {
	t.Parallel()
	const public, resource, password = "https://issuer.example", "https://gw.example/mcp", "a password of my own"
	p, ports := startServer(t, childEnv(demoPasswordEnv+"="+password), 1, func(ports []int) []string {
		return []string{"issuer", "--addr", addr(ports[0]), "--url", public, "--resource", resource, "--allow-admin", "--allow-client-credentials"}
	}, func(ports []int) string { return baseURL(ports[0]) + "/health" })
	local := baseURL(ports[0])
	waitFor(t, p, startTimeout, "the password note", func() bool {
		return strings.Contains(p.stdout.String(), "sign-in password: the one from "+demoPasswordEnv)
	})

	a := openApproval(t, local, resource, "tool:read notes:admin")
	status, loc, body := a.answer(t, url.Values{"user": {"admin"}, "scope": {"tool:read", "notes:admin"}, "action": {"approve"}, "password": {password}})
	if status != http.StatusSeeOther || loc.Query().Get("code") == "" {
		t.Fatalf("admin approval: %d %v %s", status, loc, body)
	}
	if tok := a.exchange(t, local, resource, loc.Query().Get("code")); tok["scope"] != "tool:read notes:admin" {
		t.Errorf("admin token scope %v", tok["scope"])
	}

	var batch, tok map[string]any
	postJSON(t, local+"/register", "application/json", `{"grant_types":["client_credentials"],"token_endpoint_auth_method":"client_secret_post"}`, http.StatusCreated, &batch)
	cc := url.Values{"grant_type": {"client_credentials"}, "client_id": {batch["client_id"].(string)}, "client_secret": {batch["client_secret"].(string)}, "resource": {resource}}
	postJSON(t, local+"/token", "application/x-www-form-urlencoded", cc.Encode(), http.StatusOK, &tok)

	if code, _ := p.stop(t, os.Interrupt); code != 0 {
		t.Errorf("issuer exit code %d", code)
	}
	if out := p.stdout.String() + p.stderr.String(); strings.Contains(out, password) {
		t.Errorf("the password chosen by the user is printed:\n%s", out)
	}
}

func TestIssuerPasswordUsageErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"issuer", "--addr", "127.0.0.1:0", "--url", "https://issuer.example", "--password", "short"}, nil, "must have 8 to 256 characters"},
		{[]string{"issuer", "--addr", "127.0.0.1:0", "--auto-approve", "--password", "long enough"}, nil, "--auto-approve shows no sign-in page"},
		{[]string{"demo", "--gateway-addr", "127.0.0.1:0", "--issuer-addr", "127.0.0.1:0", "--upstream-addr", "127.0.0.1:0", "--auto-approve"}, []string{demoPasswordEnv + "=long enough"}, "password from " + demoPasswordEnv + " would never be asked for"},
	} {
		r := runCmd(t, childEnv(c.env...), c.args...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("gatewaystack %v: exit %d, stderr %q; want 2 and %q", c.args, r.code, r.stderr, c.want)
		}
	}
}

// Regression invariant: `gatewaystack demo --public-url https://…` offers
// no demo admin token, even to a connection from loopback (a local tunnel
// brings every visitor from loopback); with the default loopback URL the
// admin page's token is still there.
func TestDemoAdminTokenOnlyWhenThePublicURLIsOnLoopback(t *testing.T) {
	t.Parallel()
	post := func(t *testing.T, gwPort int, host string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, baseURL(gwPort)+"/admin/api/demo-token", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		resp, err := oauthClient.Do(req)
		if err != nil {
			t.Fatalf("POST demo-token: %v", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	t.Run("public URL behind a tunnel", func(t *testing.T) {
		t.Parallel()
		p, ports := startServer(t, childEnv(), 3, func(ports []int) []string {
			return []string{"demo", "--gateway-addr", addr(ports[0]), "--issuer-addr", addr(ports[1]), "--upstream-addr", addr(ports[2]), "--public-url", "https://gw.example"}
		}, func(ports []int) string { return baseURL(ports[0]) + "/health" })
		status, body := post(t, ports[0], "gw.example")
		if status == http.StatusOK || strings.Contains(body, "access_token") {
			t.Errorf("demo token through the tunnel: %d %s, want a refusal", status, body)
		}
		if code, _ := p.stop(t, os.Interrupt); code != 0 {
			t.Errorf("demo exit code %d", code)
		}
	})
	t.Run("loopback public URL", func(t *testing.T) {
		t.Parallel()
		d := startDemo(t)
		status, body := post(t, d.gwPort, addr(d.gwPort))
		var tok map[string]any
		if status != http.StatusOK || json.Unmarshal([]byte(body), &tok) != nil || tok["access_token"] == "" {
			t.Fatalf("demo token on loopback: %d %s", status, body)
		}
		if claims := jwtClaims(t, tok["access_token"].(string)); claims["sub"] != "admin" || !strings.Contains(claims["scope"].(string), demoAdminScope) {
			t.Errorf("demo token claims %v", claims)
		}
	})
}

// Regression invariant: the demo's notes server answers only requests that
// came through the gateway: a local process sending X-User-Id straight to
// it is refused; the same user through the gateway works.
func TestDemoNotesServerAnswersOnlyTheGateway(t *testing.T) {
	t.Parallel()
	d := startDemo(t)
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`
	for _, h := range []map[string]string{
		{"X-User-Id": "alice"},
		{"X-User-Id": "alice", "X-Org-Id": "acme", "X-User-Scopes": "tool:read tool:write notes:admin", "X-Gatewaystack-Upstream-Secret": "guess"},
	} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, d.upstream, strings.NewReader(init))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := oauthClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if (resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden) || !strings.Contains(string(body), "not_from_gateway") {
			t.Errorf("notes server called directly with %v: %d %s, want 401/403 not_from_gateway", h, resp.StatusCode, body)
		}
	}

	alice := connect(t, d.gateway, mint(t, d.issuer, "alice", "tool:read tool:write", "acme"), eras[0])
	alice.mustCall(t, "notes__write_note", map[string]any{"title": "t", "text": "x"})
	if listed := alice.mustCall(t, "notes__list_notes", nil); listed["user"] != "alice" {
		t.Errorf("through the gateway: list_notes ran as %v, want alice", listed["user"])
	}
	_ = alice.Close()
	if code, _ := d.p.stop(t, os.Interrupt); code != 0 {
		t.Errorf("demo exit code %d", code)
	}
}

// `gatewaystack demo --issuer-url https://…` runs a public issuer: the
// banner prints the generated sign-in password and says admin is not
// offered and tokens come only from the sign-in page.
func TestDemoWithAPublicIssuerPrintsThePassword(t *testing.T) {
	t.Parallel()
	p, _ := startServer(t, childEnv(), 3, func(ports []int) []string {
		return []string{"demo", "--gateway-addr", addr(ports[0]), "--issuer-addr", addr(ports[1]), "--upstream-addr", addr(ports[2]),
			"--public-url", "https://gw.example", "--issuer-url", "https://issuer.example"}
	}, func(ports []int) string { return baseURL(ports[0]) + "/health" })
	waitFor(t, p, startTimeout, "demo banner", func() bool { return strings.Contains(p.stdout.String(), "Press Ctrl-C to stop.") })
	out := p.stdout.String()
	m := generatedPassword.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("banner prints no generated password:\n%s", out)
	}
	for _, want := range []string{"tokens only from the sign-in page", "enter the sign-in password, pick alice or bob", "admin is not offered (--allow-admin)"} {
		if !strings.Contains(out, want) {
			t.Errorf("banner lacks %q:\n%s", want, out)
		}
	}
	if code, _ := p.stop(t, os.Interrupt); code != 0 {
		t.Errorf("demo exit code %d", code)
	}
	if strings.Contains(p.stderr.String(), m[1]) {
		t.Errorf("the password is on stderr")
	}
}
