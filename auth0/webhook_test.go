package auth0

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gatewaystack/gatewaystack/config"
)

const (
	testSecret     = "log-webhook-shared-secret-0123456789"
	testAudience   = "https://mcp.example.com/"
	testConnection = "google-oauth2"
	testConnID     = "con_google"
)

func testScopes() []string { return []string{"tools:read", "tools:write", "notes:read"} }

// syncBuffer is a log sink safe for the webhook's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fakeClock is a settable clock for token expiry and health caching.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is one webhook served on 127.0.0.1 in front of one fake Auth0.
type env struct {
	t     *testing.T
	fake  *fakeAuth0
	hook  *Webhook
	srv   *httptest.Server
	logs  *syncBuffer
	clock *fakeClock
}

// newEnv starts a fake Auth0 with the configured connection and a webhook
// pointed at it; mod adjusts the options.
func newEnv(t *testing.T, mod func(*Options)) *env {
	t.Helper()
	e := &env{t: t, fake: newFakeAuth0(t), logs: &syncBuffer{}, clock: newFakeClock()}
	e.fake.addConnection(testConnID, testConnection, []string{"existing-app"}, false)
	opts := Options{
		Auth0: config.Auth0{
			ManagementURL: e.fake.URL(),
			ClientID:      fakeMgmtClientID,
			ClientSecret:  fakeMgmtClientSecret,
			WebhookSecret: testSecret,
			Connection:    testConnection,
			Audience:      testAudience,
			Scopes:        testScopes(),
		},
		HTTPClient:      &http.Client{Timeout: 5 * time.Second},
		Logger:          zerolog.New(e.logs).Level(zerolog.DebugLevel),
		Now:             e.clock.Now,
		RetryBackoff:    50 * time.Millisecond,
		MaxRetryBackoff: 200 * time.Millisecond,
	}
	if mod != nil {
		mod(&opts)
	}
	// Registered first, so it runs last: nothing secret ever reached a log.
	t.Cleanup(func() {
		out := e.logs.String()
		for _, s := range []string{testSecret, fakeMgmtClientSecret, "mgmt-token-", "google-secret"} {
			if strings.Contains(out, s) {
				t.Errorf("logs contain a secret (%q):\n%s", s, out)
			}
		}
		if t.Failed() {
			t.Logf("webhook logs:\n%s", out)
		}
	})
	h, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = h.Close() })
	e.hook = h
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return e
}

// dcrEvent is a log-stream entry for a successful /oidc/register.
func dcrEvent(logID, clientID string) map[string]any {
	return map[string]any{
		"log_id": logID,
		"data": map[string]any{
			"date":        "2025-06-01T12:00:00.000Z",
			"type":        "sapi",
			"description": "Dynamic client registration",
			"client_id":   clientID,
			"client_name": "ChatGPT",
			"ip":          "203.0.113.7",
			"user_agent":  "ChatGPT-User/1.0",
			"details": map[string]any{
				"request": map[string]any{
					"method": "post",
					"path":   "/oidc/register",
					"body": map[string]any{
						"client_name":   "ChatGPT",
						"redirect_uris": []string{"https://chatgpt.com/connector_platform_oauth_redirect"},
					},
				},
				"response": map[string]any{
					"statusCode": 201,
					"body":       map[string]any{"client_id": clientID, "client_name": "ChatGPT"},
				},
			},
			"log_id": logID,
		},
	}
}

// post sends body (marshalled unless already []byte) to the webhook with
// the shared secret in X-Webhook-Secret, and returns the status and answer.
func (e *env) post(body any) (int, []byte) {
	e.t.Helper()
	return e.send(http.MethodPost, body, func(r *http.Request) { r.Header.Set("X-Webhook-Secret", testSecret) })
}

func (e *env) send(method string, body any, set func(*http.Request)) (int, []byte) {
	e.t.Helper()
	raw, ok := body.([]byte)
	if !ok {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			e.t.Fatalf("marshal: %v", err)
		}
	}
	req, err := http.NewRequestWithContext(context.Background(), method, e.srv.URL+"/webhooks/auth0/logs", bytes.NewReader(raw))
	if err != nil {
		e.t.Fatalf("request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if set != nil {
		set(req)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s webhook: %v", method, err)
	}
	defer func() { _ = resp.Body.Close() }()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("read answer: %v", err)
	}
	return resp.StatusCode, out
}

// postOK posts body, requires 200 and returns the summary.
func (e *env) postOK(body any) Summary {
	e.t.Helper()
	status, raw := e.post(body)
	if status != http.StatusOK {
		e.t.Fatalf("status %d, want 200: %s", status, raw)
	}
	var s Summary
	if err := json.Unmarshal(raw, &s); err != nil {
		e.t.Fatalf("summary %s: %v", raw, err)
	}
	return s
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// requirePromoted checks the fake's state for a promoted client.
func (e *env) requirePromoted(clientID string) {
	e.t.Helper()
	c := e.fake.client(clientID)
	if c.AppType != "regular_web" || c.TokenEndpointAuthMethod != "none" || !c.OIDCConformant ||
		!slices.Equal(c.GrantTypes, []string{"authorization_code", "refresh_token"}) {
		e.t.Errorf("client %s not promoted: %+v", clientID, c)
	}
	if c.IsFirstParty {
		e.t.Errorf("client %s was made first-party", clientID)
	}
	if en := e.fake.enabledClients(testConnID); !slices.Contains(en, clientID) || !slices.Contains(en, "existing-app") {
		e.t.Errorf("connection enabled clients = %v, want existing-app and %s", en, clientID)
	}
	grants := e.fake.grantsFor(clientID)
	if len(grants) != 1 {
		e.t.Fatalf("client %s has %d grants, want 1: %+v", clientID, len(grants), grants)
	}
	for _, s := range testScopes() {
		if !slices.Contains(grants[0].Scope, s) || grants[0].Audience != testAudience {
			e.t.Errorf("grant %+v lacks scope %s on %s", grants[0], s, testAudience)
		}
	}
}

func callLines(calls []fakeCall) []string {
	out := make([]string, len(calls))
	for i, c := range calls {
		out[i] = c.Method + " " + c.Path
	}
	return out
}

func TestDCREventPromotesClient(t *testing.T) {
	e := newEnv(t, nil)
	e.fake.addDCRClient("tpc_abc123")

	s := e.postOK([]any{dcrEvent("90020250601120000000000000000000000000001", "tpc_abc123")})
	if want := (Summary{Received: 1, Promoted: 1}); s != want {
		t.Fatalf("summary = %+v, want %+v", s, want)
	}

	calls := e.fake.recorded()
	want := []string{
		"POST /oauth/token",
		"GET /api/v2/clients/tpc_abc123",
		"PATCH /api/v2/clients/tpc_abc123",
		"GET /api/v2/connections",
		"PATCH /api/v2/connections/" + testConnID,
		"GET /api/v2/client-grants",
		"POST /api/v2/client-grants",
	}
	if got := callLines(calls); !slices.Equal(got, want) {
		t.Fatalf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// The token request: client credentials for the Management API.
	var tokReq map[string]string
	if err := json.Unmarshal([]byte(calls[0].Body), &tokReq); err != nil {
		t.Fatal(err)
	}
	if tokReq["grant_type"] != "client_credentials" || tokReq["client_id"] != fakeMgmtClientID ||
		tokReq["audience"] != e.fake.URL()+"/api/v2/" {
		t.Errorf("token request = grant_type %q client_id %q audience %q", tokReq["grant_type"], tokReq["client_id"], tokReq["audience"])
	}
	// The client update, exactly.
	var patch map[string]any
	if err := json.Unmarshal([]byte(calls[2].Body), &patch); err != nil {
		t.Fatal(err)
	}
	wantPatch := map[string]any{
		"app_type":                   "regular_web",
		"token_endpoint_auth_method": "none",
		"grant_types":                []any{"authorization_code", "refresh_token"},
		"oidc_conformant":            true,
	}
	if gotJSON, wantJSON := mustJSON(t, patch), mustJSON(t, wantPatch); gotJSON != wantJSON {
		t.Errorf("client PATCH body = %s, want %s", gotJSON, wantJSON)
	}
	if q, _ := url.ParseQuery(calls[3].Query); q.Get("name") != testConnection {
		t.Errorf("connection lookup query = %q", calls[3].Query)
	}
	if calls[4].Body != `{"enabled_clients":["existing-app","tpc_abc123"]}` {
		t.Errorf("connection PATCH body = %s", calls[4].Body)
	}
	if q, _ := url.ParseQuery(calls[5].Query); q.Get("client_id") != "tpc_abc123" || q.Get("audience") != testAudience {
		t.Errorf("grant lookup query = %q", calls[5].Query)
	}
	if calls[6].Body != `{"audience":"https://mcp.example.com/","client_id":"tpc_abc123","scope":["tools:read","tools:write","notes:read"]}` {
		t.Errorf("grant POST body = %s", calls[6].Body)
	}
	e.requirePromoted("tpc_abc123")

	hl := e.hook.Health(context.Background())
	if hl.Received != 1 || hl.Promoted != 1 || hl.Failed != 0 || hl.Status != StatusOK || !hl.OK ||
		hl.LastWebhookAt == nil || hl.LastPromotedAt == nil || !hl.TokenObtainable {
		t.Errorf("health = %+v", hl)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBearerAuthorizationAccepted(t *testing.T) {
	e := newEnv(t, nil)
	e.fake.addDCRClient("tpc_bearer")
	status, raw := e.send(http.MethodPost, []any{dcrEvent("log-bearer", "tpc_bearer")}, func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+testSecret)
	})
	if status != http.StatusOK || !strings.Contains(string(raw), `"promoted":1`) {
		t.Fatalf("status %d: %s", status, raw)
	}
	e.requirePromoted("tpc_bearer")
}

func TestReplayDoesNoDuplicateWrites(t *testing.T) {
	e := newEnv(t, nil)
	e.fake.addDCRClient("tpc_replay")
	batch := []any{dcrEvent("log-replay-1", "tpc_replay")}

	if s := e.postOK(batch); s.Promoted != 1 {
		t.Fatalf("first delivery: %+v", s)
	}
	before := e.fake.recorded()

	// The same batch again (Auth0 redelivers): nothing at all is called.
	if s := e.postOK(batch); s != (Summary{Received: 1, Skipped: 1}) {
		t.Fatalf("replay summary = %+v", s)
	}
	if after := e.fake.recorded(); len(after) != len(before) {
		t.Fatalf("replay made calls: %v", callLines(after[len(before):]))
	}

	// Another log for the already promoted client: state is read, nothing
	// is written.
	if s := e.postOK([]any{dcrEvent("log-replay-2", "tpc_replay")}); s.Promoted != 1 {
		t.Fatalf("second log: %+v", s)
	}
	after := e.fake.recorded()
	if w := writes(after[len(before):]); len(w) != 0 {
		t.Fatalf("already promoted client got writes: %v", callLines(w))
	}
	if n := countPath(after, http.MethodPost, "/api/v2/client-grants"); n != 1 {
		t.Errorf("%d grant creations, want 1", n)
	}
	e.requirePromoted("tpc_replay")
	if hl := e.hook.Health(context.Background()); hl.Received != 3 || hl.Skipped != 1 || hl.Promoted != 2 {
		t.Errorf("health = %+v", hl)
	}
}

func TestExistingGrantMissingScopesIsPatched(t *testing.T) {
	e := newEnv(t, nil)
	e.fake.addDCRClient("tpc_grant")
	e.fake.addGrant("cgr_existing", "tpc_grant", testAudience, []string{"tools:read", "other:scope"})

	if s := e.postOK([]any{dcrEvent("log-grant", "tpc_grant")}); s.Promoted != 1 {
		t.Fatalf("summary = %+v", s)
	}
	calls := e.fake.recorded()
	if n := countPath(calls, http.MethodPost, "/api/v2/client-grants"); n != 0 {
		t.Errorf("%d grant creations, want 0", n)
	}
	i := slices.IndexFunc(calls, func(c fakeCall) bool {
		return c.Method == http.MethodPatch && c.Path == "/api/v2/client-grants/cgr_existing"
	})
	if i < 0 {
		t.Fatalf("no grant PATCH in %v", callLines(calls))
	}
	if calls[i].Body != `{"scope":["tools:read","other:scope","tools:write","notes:read"]}` {
		t.Errorf("grant PATCH body = %s", calls[i].Body)
	}
	e.requirePromoted("tpc_grant")
	if g := e.fake.grantsFor("tpc_grant"); !slices.Contains(g[0].Scope, "other:scope") {
		t.Errorf("existing scope lost: %v", g[0].Scope)
	}
}

func TestNonDCREventsAreSkipped(t *testing.T) {
	e := newEnv(t, nil)
	e.fake.addDCRClient("tpc_mixed")
	login := map[string]any{"log_id": "l1", "data": map[string]any{"type": "s", "client_id": "tpc_mixed", "description": "Successful login"}}
	userPatch := map[string]any{"log_id": "l2", "data": map[string]any{
		"type": "sapi", "description": "Update a user",
		"details": map[string]any{"request": map[string]any{"method": "patch", "path": "/api/v2/users/auth0|1"}},
	}}
	failedDCR := dcrEvent("l3", "tpc_mixed")
	failedDCR["data"].(map[string]any)["type"] = "fapi"
	rejectedDCR := dcrEvent("l4", "tpc_mixed")
	rejectedDCR["data"].(map[string]any)["details"].(map[string]any)["response"] = map[string]any{"statusCode": 400}
	exchange := map[string]any{"log_id": "l5", "data": map[string]any{"type": "seccft", "client_id": fakeMgmtClientID}}

	s := e.postOK([]any{login, userPatch, failedDCR, rejectedDCR, 42, exchange})
	if want := (Summary{Received: 6, Skipped: 6}); s != want {
		t.Fatalf("summary = %+v, want %+v", s, want)
	}
	if calls := e.fake.recorded(); len(calls) != 0 {
		t.Fatalf("fake saw calls: %v", callLines(calls))
	}

	// Mixed with a registration, only that one is acted on.
	s = e.postOK([]any{login, dcrEvent("l6", "tpc_mixed"), exchange})
	if want := (Summary{Received: 3, Promoted: 1, Skipped: 2}); s != want {
		t.Fatalf("summary = %+v, want %+v", s, want)
	}
	e.requirePromoted("tpc_mixed")
}

func TestWrongSecretIsUnauthorized(t *testing.T) {
	e := newEnv(t, nil)
	e.fake.addDCRClient("tpc_nope")
	batch := []any{dcrEvent("log-nope", "tpc_nope")}
	cases := map[string]func(*http.Request){
		"missing":          nil,
		"wrong header":     func(r *http.Request) { r.Header.Set("X-Webhook-Secret", "not-the-secret") },
		"prefix of secret": func(r *http.Request) { r.Header.Set("X-Webhook-Secret", testSecret[:10]) },
		"secret plus more": func(r *http.Request) { r.Header.Set("X-Webhook-Secret", testSecret+"x") },
		"wrong bearer":     func(r *http.Request) { r.Header.Set("Authorization", "Bearer wrong") },
		"basic scheme":     func(r *http.Request) { r.Header.Set("Authorization", "Basic "+testSecret) },
		"empty bearer":     func(r *http.Request) { r.Header.Set("Authorization", "Bearer ") },
	}
	for name, set := range cases {
		t.Run(name, func(t *testing.T) {
			status, raw := e.send(http.MethodPost, batch, set)
			if status != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", status, raw)
			}
			var body errorBody
			if err := json.Unmarshal(raw, &body); err != nil || body.Error != "unauthorized" {
				t.Errorf("body %s (%v)", raw, err)
			}
		})
	}
	if calls := e.fake.recorded(); len(calls) != 0 {
		t.Fatalf("fake saw calls: %v", callLines(calls))
	}
	hl := e.hook.Health(context.Background())
	if hl.Received != 0 || hl.LastWebhookAt != nil {
		t.Errorf("unauthenticated requests were counted: %+v", hl)
	}

	// Right secret, wrong method.
	status, _ := e.send(http.MethodGet, []byte{}, func(r *http.Request) { r.Header.Set("X-Webhook-Secret", testSecret) })
	if status != http.StatusMethodNotAllowed {
		t.Errorf("GET: status %d, want 405", status)
	}
}

func TestTokenIsCachedAndRefreshed(t *testing.T) {
	e := newEnv(t, nil)
	e.fake.setTokenTTL(3600)
	for _, id := range []string{"tpc_t1", "tpc_t2", "tpc_t3", "tpc_t4", "tpc_t5"} {
		e.fake.addDCRClient(id)
	}
	s := e.postOK([]any{dcrEvent("lt1", "tpc_t1"), dcrEvent("lt2", "tpc_t2"), dcrEvent("lt3", "tpc_t3")})
	if s.Promoted != 3 {
		t.Fatalf("summary = %+v", s)
	}
	if n := countPath(e.fake.recorded(), http.MethodPost, "/oauth/token"); n != 1 {
		t.Fatalf("%d token requests for three promotions, want 1", n)
	}

	// Auth0 stops accepting the token: the 401 triggers one new token and
	// the call is made again.
	e.fake.revokeTokens()
	before := len(e.fake.recorded())
	if s := e.postOK([]any{dcrEvent("lt4", "tpc_t4")}); s.Promoted != 1 {
		t.Fatalf("after revocation: %+v", s)
	}
	calls := e.fake.recorded()
	if got, want := callLines(calls[before:before+3]), []string{"GET /api/v2/clients/tpc_t4", "POST /oauth/token", "GET /api/v2/clients/tpc_t4"}; !slices.Equal(got, want) {
		t.Errorf("calls after revocation = %v, want %v first", got, want)
	}
	if n := countPath(calls, http.MethodPost, "/oauth/token"); n != 2 {
		t.Errorf("%d token requests, want 2", n)
	}
	e.requirePromoted("tpc_t4")

	// Close to expiry the cached token is replaced before Auth0 refuses it.
	e.clock.advance(3541 * time.Second)
	if s := e.postOK([]any{dcrEvent("lt5", "tpc_t5")}); s.Promoted != 1 {
		t.Fatalf("near expiry: %+v", s)
	}
	calls = e.fake.recorded()
	if n := countPath(calls, http.MethodPost, "/oauth/token"); n != 3 {
		t.Errorf("%d token requests, want 3 (refresh before expiry)", n)
	}
	if n := countPath(calls, http.MethodGet, "/api/v2/clients/tpc_t5"); n != 1 {
		t.Errorf("near expiry: %d client reads, want 1 (no 401 round trip)", n)
	}
}

func TestFailuresAreRetriedAndRecover(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.RetryBackoff = 400 * time.Millisecond
		o.MaxRetryBackoff = 400 * time.Millisecond
	})
	e.fake.addDCRClient("tpc_flaky")
	e.fake.failNext("PATCH /api/v2/clients/{id}", 2)

	s := e.postOK([]any{dcrEvent("log-flaky", "tpc_flaky")})
	if want := (Summary{Received: 1, Failed: 1, Queued: 1}); s != want {
		t.Fatalf("summary = %+v, want %+v", s, want)
	}
	hl := e.hook.Health(context.Background())
	if hl.Status != StatusDegraded || hl.OK || hl.PendingRetries != 1 || hl.Failed != 1 || hl.Promoted != 0 ||
		!strings.Contains(hl.LastError, "HTTP 500") || hl.LastErrorAt == nil {
		t.Fatalf("health after the failure = %+v", hl)
	}
	// The same log redelivered meanwhile is not worked on twice.
	if s := e.postOK([]any{dcrEvent("log-flaky", "tpc_flaky")}); s != (Summary{Received: 1, Skipped: 1}) {
		t.Errorf("redelivery while pending: %+v", s)
	}

	waitFor(t, "the retried promotion", func() bool {
		h := e.hook.Health(context.Background())
		return h.Promoted == 1 && h.PendingRetries == 0
	})
	hl = e.hook.Health(context.Background())
	if hl.Status != StatusOK || !hl.OK || hl.Failed != 2 || hl.Retried != 2 || hl.Abandoned != 0 {
		t.Errorf("health after recovery = %+v", hl)
	}
	calls := e.fake.recorded()
	if n := countPath(calls, http.MethodPatch, "/api/v2/clients/tpc_flaky"); n != 3 {
		t.Errorf("%d client PATCHes, want 3 (two failed, one good)", n)
	}
	if n := countPath(calls, http.MethodPost, "/api/v2/client-grants"); n != 1 {
		t.Errorf("%d grant creations, want 1", n)
	}
	e.requirePromoted("tpc_flaky")
}

func TestRetriesAreBounded(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxAttempts = 3 })
	e.fake.addDCRClient("tpc_down")
	e.fake.failNext("GET /api/v2/connections", 1000)

	if s := e.postOK([]any{dcrEvent("log-down", "tpc_down")}); s.Queued != 1 {
		t.Fatalf("summary = %+v", s)
	}
	waitFor(t, "the registration to be given up", func() bool {
		return e.hook.Health(context.Background()).Abandoned == 1
	})
	hl := e.hook.Health(context.Background())
	if hl.PendingRetries != 0 || hl.Failed != 3 || hl.Status != StatusDegraded {
		t.Errorf("health = %+v", hl)
	}
	if n := countPath(e.fake.recorded(), http.MethodGet, "/api/v2/connections"); n != 3 {
		t.Errorf("%d connection reads, want 3 (MaxAttempts)", n)
	}

	// Once Auth0 is back, replaying the given-up log promotes the client.
	e.fake.failNext("GET /api/v2/connections", 0)
	if s := e.postOK([]any{dcrEvent("log-down", "tpc_down")}); s.Promoted != 1 {
		t.Fatalf("replay after giving up: %+v", s)
	}
	e.requirePromoted("tpc_down")
}

func TestPermanentErrorIsNotRetried(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Connection = "no-such-connection" })
	e.fake.addDCRClient("tpc_perm")

	if s := e.postOK([]any{dcrEvent("log-perm", "tpc_perm")}); s != (Summary{Received: 1, Failed: 1}) {
		t.Fatalf("summary = %+v", s)
	}
	hl := e.hook.Health(context.Background())
	if hl.PendingRetries != 0 || hl.Abandoned != 1 || !strings.Contains(hl.LastError, `connection "no-such-connection" not found`) {
		t.Errorf("health = %+v", hl)
	}
}

func TestHiddenEnabledClientsUsesConnectionClientsEndpoint(t *testing.T) {
	e := newEnv(t, nil)
	e.fake.addConnection(testConnID, testConnection, []string{"existing-app"}, true)
	e.fake.addDCRClient("tpc_new")

	if s := e.postOK([]any{dcrEvent("log-new", "tpc_new")}); s.Promoted != 1 {
		t.Fatalf("summary = %+v", s)
	}
	calls := e.fake.recorded()
	if n := countPath(calls, http.MethodPatch, "/api/v2/connections/"+testConnID); n != 0 {
		t.Errorf("wrote enabled_clients it could not read")
	}
	i := slices.IndexFunc(calls, func(c fakeCall) bool { return c.Path == "/api/v2/connections/"+testConnID+"/clients" })
	if i < 0 || calls[i].Body != `[{"client_id":"tpc_new","status":true}]` {
		t.Fatalf("no connection clients PATCH in %v", callLines(calls))
	}
	e.requirePromoted("tpc_new")
}

func TestHealthReportsToken(t *testing.T) {
	t.Run("obtainable", func(t *testing.T) {
		e := newEnv(t, nil)
		hl := e.hook.Health(context.Background())
		if !hl.ManagementConfigured || !hl.TokenObtainable || hl.TokenError != "" || hl.Status != StatusOK ||
			hl.TokenCheckedAt == nil || hl.ManagementURL != e.fake.URL() {
			t.Errorf("health = %+v", hl)
		}
	})
	t.Run("bad credentials", func(t *testing.T) {
		e := newEnv(t, func(o *Options) { o.ClientSecret = "wrong-secret-also-never-logged" })
		hl := e.hook.Health(context.Background())
		if hl.TokenObtainable || hl.Status != StatusDown || hl.OK ||
			!strings.Contains(hl.TokenError, "HTTP 401") || !strings.Contains(hl.TokenError, "access_denied") {
			t.Errorf("health = %+v", hl)
		}
		raw := mustJSON(t, hl)
		if strings.Contains(raw, "wrong-secret") || strings.Contains(raw, testSecret) {
			t.Errorf("health shows a secret: %s", raw)
		}
		// The check is reused for a while, then made again.
		e.hook.Health(context.Background())
		if n := countPath(e.fake.recorded(), http.MethodPost, "/oauth/token"); n != 1 {
			t.Errorf("%d token requests, want 1 (cached check)", n)
		}
		e.clock.advance(DefaultHealthCacheTTL + time.Second)
		e.hook.Health(context.Background())
		if n := countPath(e.fake.recorded(), http.MethodPost, "/oauth/token"); n != 2 {
			t.Errorf("%d token requests, want 2 after the cache expired", n)
		}
	})
	t.Run("not configured", func(t *testing.T) {
		e := newEnv(t, func(o *Options) { o.ManagementURL, o.ClientID, o.ClientSecret = "", "", "" })
		e.fake.addDCRClient("tpc_unconf")
		if s := e.postOK([]any{dcrEvent("log-unconf", "tpc_unconf")}); s != (Summary{Received: 1, Failed: 1}) {
			t.Errorf("summary = %+v", s)
		}
		hl := e.hook.Health(context.Background())
		if hl.ManagementConfigured || hl.TokenObtainable || hl.Status != StatusDown || !strings.Contains(hl.LastError, "not configured") {
			t.Errorf("health = %+v", hl)
		}
		if calls := e.fake.recorded(); len(calls) != 0 {
			t.Errorf("fake saw calls: %v", callLines(calls))
		}
	})
}

func TestBodyFormatsAndLimits(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxBodyBytes = 8 << 10 })
	for _, id := range []string{"tpc_f1", "tpc_f2", "tpc_f3", "tpc_f4"} {
		e.fake.addDCRClient(id)
	}

	// One object, not an array.
	if s := e.postOK(dcrEvent("lf1", "tpc_f1")); s != (Summary{Received: 1, Promoted: 1}) {
		t.Errorf("single object: %+v", s)
	}
	// JSON lines.
	lines := mustJSON(t, dcrEvent("lf2", "tpc_f2")) + "\n" + mustJSON(t, dcrEvent("lf3", "tpc_f3")) + "\n"
	if s := e.postOK([]byte(lines)); s != (Summary{Received: 2, Promoted: 2}) {
		t.Errorf("JSON lines: %+v", s)
	}
	// A bare log record (not wrapped in data).
	bare := dcrEvent("lf4", "tpc_f4")["data"]
	if s := e.postOK([]any{bare}); s != (Summary{Received: 1, Promoted: 1}) {
		t.Errorf("bare record: %+v", s)
	}
	// An empty batch.
	if s := e.postOK([]any{}); s != (Summary{}) {
		t.Errorf("empty batch: %+v", s)
	}

	for name, body := range map[string][]byte{
		"not JSON":   []byte("this is not json"),
		"empty body": {},
		"a string":   []byte(`"hello"`),
		"truncated":  []byte(`[{"log_id":"x"`),
	} {
		if status, raw := e.post(body); status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400: %s", name, status, raw)
		}
	}
	big := []byte(`[` + strings.Repeat(`{"log_id":"x"},`, 1000) + `{}]`)
	if status, raw := e.post(big); status != http.StatusRequestEntityTooLarge {
		t.Errorf("big body: status %d, want 413: %s", status, raw)
	}
	for _, id := range []string{"tpc_f1", "tpc_f2", "tpc_f3", "tpc_f4"} {
		e.requirePromoted(id)
	}
}

func TestRegistrationWithoutClientIDFails(t *testing.T) {
	e := newEnv(t, nil)
	ev := dcrEvent("log-noid", "")
	if s := e.postOK([]any{ev}); s != (Summary{Received: 1, Failed: 1}) {
		t.Fatalf("summary = %+v", s)
	}
	bad := dcrEvent("log-badid", "../../api/v2/users")
	if s := e.postOK([]any{bad}); s != (Summary{Received: 1, Failed: 1}) {
		t.Fatalf("summary = %+v", s)
	}
	// The Management API client itself is never promoted.
	self := dcrEvent("log-self", fakeMgmtClientID)
	if s := e.postOK([]any{self}); s != (Summary{Received: 1, Skipped: 1}) {
		t.Fatalf("summary = %+v", s)
	}
	if calls := e.fake.recorded(); len(calls) != 0 {
		t.Errorf("fake saw calls: %v", callLines(calls))
	}
	if hl := e.hook.Health(context.Background()); !strings.Contains(hl.LastError, "invalid client_id") {
		t.Errorf("health = %+v", hl)
	}
}

func TestCloseStopsTheWorker(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.RetryBackoff = time.Hour; o.MaxRetryBackoff = time.Hour })
	e.fake.addDCRClient("tpc_close")
	e.fake.failNext("GET /api/v2/clients/{id}", 1)
	if s := e.postOK([]any{dcrEvent("log-close", "tpc_close")}); s.Queued != 1 {
		t.Fatalf("summary = %+v", s)
	}
	done := make(chan struct{})
	go func() {
		_ = e.hook.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	if err := e.hook.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if status, _ := e.post([]any{dcrEvent("log-after", "tpc_close")}); status != http.StatusServiceUnavailable {
		t.Errorf("after Close: status %d, want 503", status)
	}
}

func TestNewRequiresSecret(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without a webhook secret succeeded")
	}
	_, err := New(Options{Auth0: config.Auth0{WebhookSecret: testSecret, ManagementURL: "tenant.example.com", ClientID: "a", ClientSecret: "b"}})
	if err == nil {
		t.Error("New with a relative management URL succeeded")
	}
}

func TestGrantCreatedConcurrentlyIsPatched(t *testing.T) {
	e := newEnv(t, nil)
	e.fake.addDCRClient("tpc_race")
	e.fake.addGrant("cgr_race", "tpc_race", testAudience, []string{"tools:read"})
	e.fake.hideGrantsOnce() // the first read misses the grant; the POST gets 409

	if s := e.postOK([]any{dcrEvent("log-race", "tpc_race")}); s.Promoted != 1 {
		t.Fatalf("summary = %+v", s)
	}
	calls := e.fake.recorded()
	if n := countPath(calls, http.MethodPost, "/api/v2/client-grants"); n != 1 {
		t.Errorf("%d grant creations attempted, want 1", n)
	}
	if n := countPath(calls, http.MethodPatch, "/api/v2/client-grants/cgr_race"); n != 1 {
		t.Errorf("%d grant PATCHes, want 1", n)
	}
	e.requirePromoted("tpc_race")
}

func TestRetryQueueIsBounded(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.QueueSize = 1
		o.RetryBackoff = time.Hour
		o.MaxRetryBackoff = time.Hour
	})
	e.fake.addDCRClient("tpc_q1")
	e.fake.addDCRClient("tpc_q2")
	e.fake.failNext("GET /api/v2/clients/{id}", 2)

	s := e.postOK([]any{dcrEvent("lq1", "tpc_q1"), dcrEvent("lq2", "tpc_q2")})
	if want := (Summary{Received: 2, Failed: 2, Queued: 1}); s != want {
		t.Fatalf("summary = %+v, want %+v", s, want)
	}
	hl := e.hook.Health(context.Background())
	if hl.PendingRetries != 1 || hl.Abandoned != 1 || !strings.Contains(hl.LastError, "queue full") {
		t.Errorf("health = %+v", hl)
	}
	// The dropped log may be replayed.
	if s := e.postOK([]any{dcrEvent("lq2", "tpc_q2")}); s.Promoted != 1 {
		t.Errorf("replay of the dropped log: %+v", s)
	}
}

func TestDedupeIsBounded(t *testing.T) {
	d := newDedupe(3)
	for _, id := range []string{"a", "b", "c"} {
		if !d.add(id) {
			t.Fatalf("%s not new", id)
		}
	}
	if d.add("a") {
		t.Error("a accepted twice")
	}
	d.add("d") // evicts a
	if len(d.ids) != 3 {
		t.Errorf("%d ids held, want 3", len(d.ids))
	}
	if !d.add("a") {
		t.Error("a not forgotten after eviction")
	}
	d.forget("c")
	if !d.add("c") {
		t.Error("c not forgotten")
	}
	// Evicting the stale slot of a forgotten-then-re-added id keeps the
	// newer entry.
	for range 10 {
		d.add("x")
	}
	if len(d.ids) > 3 {
		t.Errorf("%d ids held, want at most 3", len(d.ids))
	}
}

func TestDecodeListAndTruncate(t *testing.T) {
	var out []grantState
	if err := decodeList(json.RawMessage(`{"client_grants":[{"id":"g1"}],"total":1}`), "client_grants", &out); err != nil || len(out) != 1 || out[0].ID != "g1" {
		t.Errorf("paged list: %v %+v", err, out)
	}
	if err := decodeList(json.RawMessage(`{"total":1}`), "client_grants", &out); err == nil {
		t.Error("object without the list accepted")
	}
	if got := truncate("héllo\nworld", 2); got != "h…" {
		t.Errorf("truncate = %q", got)
	}
	if got := truncate("a\tb", 10); got != "a b" {
		t.Errorf("truncate = %q", got)
	}
}
