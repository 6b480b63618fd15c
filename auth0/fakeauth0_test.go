package auth0

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

// fakeAuth0 is a real HTTP server on 127.0.0.1 speaking the parts of the
// Auth0 Management API the webhook uses, with in-memory state, recording
// every call it receives. It is the one stand-in these tests allow: Auth0
// itself cannot be reached from a test.
type fakeAuth0 struct {
	t   *testing.T
	srv *httptest.Server

	clientID     string
	clientSecret string

	mu        sync.Mutex
	calls     []fakeCall
	tokens    map[string]bool // valid access tokens
	issued    int
	tokenTTL  int64
	clients   map[string]*fakeClient
	conns     map[string]*fakeConn
	grants    map[string]*fakeGrant
	nextGrant int
	failures  map[string]int // route pattern → answers of 500 still to give
	// staleGrantLists makes that many grant listings answer [] (as if a
	// concurrent writer created the grant after the read).
	staleGrantLists int
}

// fakeCall is one recorded request.
type fakeCall struct {
	Method string
	Path   string
	Query  string
	Body   string
}

// String renders a call as "METHOD path[?query]".
func (c fakeCall) String() string {
	if c.Query != "" {
		return c.Method + " " + c.Path + "?" + c.Query
	}
	return c.Method + " " + c.Path
}

type fakeClient struct {
	ClientID                string   `json:"client_id"`
	Name                    string   `json:"name"`
	AppType                 string   `json:"app_type,omitempty"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	OIDCConformant          bool     `json:"oidc_conformant"`
	IsFirstParty            bool     `json:"is_first_party"`
}

type fakeConn struct {
	ID       string
	Name     string
	Strategy string
	// Enabled is the enabled client list; Hidden makes the connection
	// behave like a tenant that no longer returns enabled_clients.
	Enabled []string
	Hidden  bool
}

type fakeGrant struct {
	ID       string   `json:"id"`
	ClientID string   `json:"client_id"`
	Audience string   `json:"audience"`
	Scope    []string `json:"scope"`
}

const (
	fakeMgmtClientID     = "m2m-client"
	fakeMgmtClientSecret = "m2m-secret-value-never-logged"
)

// newFakeAuth0 starts the fake; it is closed when the test ends.
func newFakeAuth0(t *testing.T) *fakeAuth0 {
	t.Helper()
	f := &fakeAuth0{
		t:            t,
		clientID:     fakeMgmtClientID,
		clientSecret: fakeMgmtClientSecret,
		tokens:       map[string]bool{},
		tokenTTL:     86400,
		clients:      map[string]*fakeClient{},
		conns:        map[string]*fakeConn{},
		grants:       map[string]*fakeGrant{},
		failures:     map[string]int{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth/token", f.token)
	mux.HandleFunc("GET /api/v2/clients/{id}", f.auth(f.getClient))
	mux.HandleFunc("PATCH /api/v2/clients/{id}", f.auth(f.patchClient))
	mux.HandleFunc("GET /api/v2/connections", f.auth(f.listConnections))
	mux.HandleFunc("PATCH /api/v2/connections/{id}", f.auth(f.patchConnection))
	mux.HandleFunc("PATCH /api/v2/connections/{id}/clients", f.auth(f.patchConnectionClients))
	mux.HandleFunc("GET /api/v2/client-grants", f.auth(f.listGrants))
	mux.HandleFunc("POST /api/v2/client-grants", f.auth(f.createGrant))
	mux.HandleFunc("PATCH /api/v2/client-grants/{id}", f.auth(f.patchGrant))
	f.srv = httptest.NewServer(f.record(mux))
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the fake's base URL (the management_url).
func (f *fakeAuth0) URL() string { return f.srv.URL }

// record logs every request (before routing) and makes the body readable
// again for the handler.
func (f *fakeAuth0) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read body", http.StatusBadRequest)
			return
		}
		_ = r.Body.Close()
		f.mu.Lock()
		f.calls = append(f.calls, fakeCall{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Body: string(body)})
		f.mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		next.ServeHTTP(w, r)
	})
}

// auth requires a valid bearer token and applies injected failures.
func (f *fakeAuth0) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		f.mu.Lock()
		valid := ok && f.tokens[tok]
		fail := f.failures[r.Pattern] > 0
		if valid && fail {
			f.failures[r.Pattern]--
		}
		f.mu.Unlock()
		switch {
		case !valid:
			fakeJSON(w, http.StatusUnauthorized, map[string]any{"statusCode": 401, "error": "Unauthorized", "message": "Invalid token"})
		case fail:
			fakeJSON(w, http.StatusInternalServerError, map[string]any{"statusCode": 500, "error": "Internal Server Error", "message": "injected failure"})
		default:
			next(w, r)
		}
	}
}

func fakeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeAuth0) token(w http.ResponseWriter, r *http.Request) {
	var req struct {
		GrantType    string `json:"grant_type"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
		Audience     string `json:"audience"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		fakeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "error_description": "bad JSON"})
		return
	}
	if req.GrantType != "client_credentials" {
		fakeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type", "error_description": "client_credentials only"})
		return
	}
	if req.ClientID != f.clientID || req.ClientSecret != f.clientSecret {
		fakeJSON(w, http.StatusUnauthorized, map[string]string{"error": "access_denied", "error_description": "Unauthorized"})
		return
	}
	if req.Audience != f.srv.URL+"/api/v2/" {
		fakeJSON(w, http.StatusForbidden, map[string]string{"error": "access_denied", "error_description": "Service not enabled within domain: " + req.Audience})
		return
	}
	f.mu.Lock()
	f.issued++
	tok := fmt.Sprintf("mgmt-token-%d", f.issued)
	f.tokens[tok] = true
	ttl := f.tokenTTL
	f.mu.Unlock()
	fakeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": ttl, "scope": "read:clients update:clients"})
}

func (f *fakeAuth0) getClient(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.clients[r.PathValue("id")]
	if !ok {
		fakeJSON(w, http.StatusNotFound, map[string]any{"statusCode": 404, "error": "Not Found", "message": "The client does not exist", "errorCode": "inexistent_client"})
		return
	}
	fakeJSON(w, http.StatusOK, c)
}

func (f *fakeAuth0) patchClient(w http.ResponseWriter, r *http.Request) {
	var patch map[string]json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&patch); err != nil {
		fakeJSON(w, http.StatusBadRequest, map[string]any{"statusCode": 400, "error": "Bad Request", "message": "bad JSON"})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.clients[r.PathValue("id")]
	if !ok {
		fakeJSON(w, http.StatusNotFound, map[string]any{"statusCode": 404, "error": "Not Found", "message": "The client does not exist"})
		return
	}
	for k, v := range patch {
		var err error
		switch k {
		case "app_type":
			err = json.Unmarshal(v, &c.AppType)
		case "token_endpoint_auth_method":
			err = json.Unmarshal(v, &c.TokenEndpointAuthMethod)
		case "grant_types":
			err = json.Unmarshal(v, &c.GrantTypes)
		case "oidc_conformant":
			err = json.Unmarshal(v, &c.OIDCConformant)
		default:
			err = fmt.Errorf("unexpected property %s", k)
		}
		if err != nil {
			fakeJSON(w, http.StatusBadRequest, map[string]any{"statusCode": 400, "error": "Bad Request", "message": err.Error()})
			return
		}
	}
	fakeJSON(w, http.StatusOK, c)
}

// connJSON renders a connection as Auth0 does (without enabled_clients for
// a Hidden one).
func connJSON(c *fakeConn) map[string]any {
	m := map[string]any{"id": c.ID, "name": c.Name, "strategy": c.Strategy, "options": map[string]any{"client_secret": "google-secret"}}
	if !c.Hidden {
		m["enabled_clients"] = slices.Clone(c.Enabled)
	}
	return m
}

func (f *fakeAuth0) listConnections(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []map[string]any{}
	for _, c := range f.conns {
		if name == "" || c.Name == name {
			out = append(out, connJSON(c))
		}
	}
	fakeJSON(w, http.StatusOK, out)
}

func (f *fakeAuth0) patchConnection(w http.ResponseWriter, r *http.Request) {
	var patch struct {
		EnabledClients *[]string `json:"enabled_clients"`
	}
	if err := json.NewDecoder(r.Body).Decode(&patch); err != nil || patch.EnabledClients == nil {
		fakeJSON(w, http.StatusBadRequest, map[string]any{"statusCode": 400, "error": "Bad Request", "message": "enabled_clients expected"})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.conns[r.PathValue("id")]
	if !ok {
		fakeJSON(w, http.StatusNotFound, map[string]any{"statusCode": 404, "error": "Not Found", "message": "The connection does not exist"})
		return
	}
	c.Enabled = slices.Clone(*patch.EnabledClients)
	fakeJSON(w, http.StatusOK, connJSON(c))
}

func (f *fakeAuth0) patchConnectionClients(w http.ResponseWriter, r *http.Request) {
	var patch []struct {
		ClientID string `json:"client_id"`
		Status   bool   `json:"status"`
	}
	if err := json.NewDecoder(r.Body).Decode(&patch); err != nil {
		fakeJSON(w, http.StatusBadRequest, map[string]any{"statusCode": 400, "error": "Bad Request", "message": "array expected"})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.conns[r.PathValue("id")]
	if !ok {
		fakeJSON(w, http.StatusNotFound, map[string]any{"statusCode": 404, "error": "Not Found", "message": "The connection does not exist"})
		return
	}
	for _, p := range patch {
		i := slices.Index(c.Enabled, p.ClientID)
		switch {
		case p.Status && i < 0:
			c.Enabled = append(c.Enabled, p.ClientID)
		case !p.Status && i >= 0:
			c.Enabled = slices.Delete(c.Enabled, i, i+1)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeAuth0) listGrants(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []fakeGrant{}
	if f.staleGrantLists > 0 {
		f.staleGrantLists--
		fakeJSON(w, http.StatusOK, out)
		return
	}
	for _, g := range f.grants {
		if (q.Get("client_id") == "" || g.ClientID == q.Get("client_id")) && (q.Get("audience") == "" || g.Audience == q.Get("audience")) {
			out = append(out, *g)
		}
	}
	fakeJSON(w, http.StatusOK, out)
}

func (f *fakeAuth0) createGrant(w http.ResponseWriter, r *http.Request) {
	var g fakeGrant
	if err := json.NewDecoder(r.Body).Decode(&g); err != nil || g.ClientID == "" || g.Audience == "" || g.Scope == nil {
		fakeJSON(w, http.StatusBadRequest, map[string]any{"statusCode": 400, "error": "Bad Request", "message": "client_id, audience and scope are required"})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.grants {
		if e.ClientID == g.ClientID && e.Audience == g.Audience {
			fakeJSON(w, http.StatusConflict, map[string]any{"statusCode": 409, "error": "Conflict", "message": "A resource with the same identifier already exists", "errorCode": "client_grant_conflict"})
			return
		}
	}
	f.nextGrant++
	g.ID = fmt.Sprintf("cgr_%d", f.nextGrant)
	f.grants[g.ID] = &g
	fakeJSON(w, http.StatusCreated, g)
}

func (f *fakeAuth0) patchGrant(w http.ResponseWriter, r *http.Request) {
	var patch struct {
		Scope []string `json:"scope"`
	}
	if err := json.NewDecoder(r.Body).Decode(&patch); err != nil || patch.Scope == nil {
		fakeJSON(w, http.StatusBadRequest, map[string]any{"statusCode": 400, "error": "Bad Request", "message": "scope expected"})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	g, ok := f.grants[r.PathValue("id")]
	if !ok {
		fakeJSON(w, http.StatusNotFound, map[string]any{"statusCode": 404, "error": "Not Found", "message": "The grant does not exist"})
		return
	}
	g.Scope = slices.Clone(patch.Scope)
	fakeJSON(w, http.StatusOK, g)
}

// --- test helpers on the fake's state ---

// addDCRClient seeds a client as Auth0's /oidc/register creates it.
func (f *fakeAuth0) addDCRClient(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clients[id] = &fakeClient{
		ClientID:                id,
		Name:                    "ChatGPT " + id,
		AppType:                 "",
		TokenEndpointAuthMethod: "client_secret_post",
		GrantTypes:              []string{"authorization_code", "implicit"},
	}
}

func (f *fakeAuth0) addConnection(id, name string, enabled []string, hidden bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conns[id] = &fakeConn{ID: id, Name: name, Strategy: "google-oauth2", Enabled: slices.Clone(enabled), Hidden: hidden}
}

func (f *fakeAuth0) addGrant(id, clientID, audience string, scope []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.grants[id] = &fakeGrant{ID: id, ClientID: clientID, Audience: audience, Scope: slices.Clone(scope)}
}

// failNext makes the next n calls matching the route pattern answer 500.
func (f *fakeAuth0) failNext(pattern string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures[pattern] = n
}

// hideGrantsOnce makes the next grant listing answer [].
func (f *fakeAuth0) hideGrantsOnce() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.staleGrantLists = 1
}

// setTokenTTL sets the expires_in of tokens issued from now on.
func (f *fakeAuth0) setTokenTTL(seconds int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokenTTL = seconds
}

// revokeTokens invalidates every issued token (the next call gets 401).
func (f *fakeAuth0) revokeTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.tokens)
}

func (f *fakeAuth0) client(id string) fakeClient {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.clients[id]
	if !ok {
		f.t.Fatalf("fake: no client %s", id)
	}
	return *c
}

func (f *fakeAuth0) enabledClients(connID string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.conns[connID].Enabled)
}

// grantsFor lists the grants of a client.
func (f *fakeAuth0) grantsFor(clientID string) []fakeGrant {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeGrant
	for _, g := range f.grants {
		if g.ClientID == clientID {
			out = append(out, *g)
		}
	}
	return out
}

// recorded returns a copy of the calls so far.
func (f *fakeAuth0) recorded() []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// writes returns the recorded calls other than GETs and token requests.
func writes(calls []fakeCall) []fakeCall {
	var out []fakeCall
	for _, c := range calls {
		if c.Method != http.MethodGet && c.Path != "/oauth/token" {
			out = append(out, c)
		}
	}
	return out
}

// countPath counts the recorded calls to a method and path.
func countPath(calls []fakeCall, method, path string) int {
	n := 0
	for _, c := range calls {
		if c.Method == method && c.Path == path {
			n++
		}
	}
	return n
}
