package proxy_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewaystack/gatewaystack/audit"
	"github.com/gatewaystack/gatewaystack/auth"
	"github.com/gatewaystack/gatewaystack/proxy"
	"github.com/gatewaystack/gatewaystack/upstream"
)

var names = upstream.HeaderNames{User: "X-User-Id", Tenant: "X-Org-Id", Scopes: "X-User-Scopes"}

// identities the front puts in the request context, chosen by the test
// header Test-As (removed before the proxy sees the request).
var identities = map[string]auth.Identity{
	"alice":  {Subject: "alice", Tenant: "acme", Scopes: []string{"tool:read"}},
	"bob":    {Subject: "bob", Scopes: []string{"tool:read"}}, // no tenant
	"writer": {Subject: "wendy", Tenant: "acme", Scopes: []string{"tool:read", "tool:write"}},
	"admin":  {Subject: "ada", Tenant: "acme", Scopes: []string{"tool:read", "crm:admin"}},
	"staff":  {Subject: "sam", Tenant: "acme", Scopes: []string{"tool:read"}, Roles: []string{"staff"}},
}

// seen is one request the backend received.
type seen struct {
	Method  string
	RawPath string
	Query   string
	Header  http.Header
	Body    []byte
}

type backend struct {
	URL string
	mu  sync.Mutex
	got []seen
}

func (b *backend) last(t *testing.T) seen {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.got) == 0 {
		t.Fatal("the backend received nothing")
	}
	return b.got[len(b.got)-1]
}

func (b *backend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.got)
}

// newBackend records each request and answers 200 with a marker header
// (after running extra, when set).
func newBackend(t *testing.T, extra http.HandlerFunc) *backend {
	t.Helper()
	b := &backend{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.got = append(b.got, seen{Method: r.Method, RawPath: r.URL.EscapedPath(), Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
		b.mu.Unlock()
		if extra != nil {
			extra(w, r)
			return
		}
		w.Header().Set("X-Backend", "yes")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, "hello from the backend")
	}))
	t.Cleanup(srv.Close)
	b.URL = srv.URL
	return b
}

// front serves the proxy the way the gateway does: the identity in the
// context, every Result recorded.
type front struct {
	URL     string
	mu      sync.Mutex
	results []proxy.Result
}

func (f *front) lastResult(t *testing.T) proxy.Result {
	t.Helper()
	// The result is reported when the handler ends, which may be a moment
	// after the client read the answer.
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.mu.Lock()
		n := len(f.results)
		var r proxy.Result
		if n > 0 {
			r = f.results[n-1]
			f.results = nil
		}
		f.mu.Unlock()
		if n > 0 {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatal("no result reported")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newFront(t *testing.T, o proxy.Options) *front {
	t.Helper()
	if o.StepUpScopes == nil {
		o.StepUpScopes = []string{"tool:write"}
		o.BaselineScopes = []string{"tool:read"}
	}
	if o.ResourceMetadata == "" {
		o.ResourceMetadata = "http://gw.test/.well-known/oauth-protected-resource/mcp"
	}
	p, err := proxy.New(o)
	if err != nil {
		t.Fatalf("proxy.New: %v", err)
	}
	f := &front{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if as := r.Header.Get("Test-As"); as != "" {
			ctx = upstream.WithIdentity(ctx, names, identities[as])
		}
		r.Header.Del("Test-As")
		p.Serve(w, r.WithContext(ctx), func(res proxy.Result) {
			f.mu.Lock()
			f.results = append(f.results, res)
			f.mu.Unlock()
		})
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// get sends a request with raw header keys (exactly as given, so that
// x-user-id and X_User_Id reach the server as written).
func send(t *testing.T, method, url string, header map[string][]string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func as(who string) map[string][]string { return map[string][]string{"Test-As": {who}} }

func policyRoutes() []proxy.Route {
	return []proxy.Route{
		{Prefix: "/public"},
		{Prefix: "/accounts", Methods: []string{"GET", "head"}, Scopes: []string{"tool:read"}},
		{Prefix: "/accounts/admin", Scopes: []string{"tool:read", "crm:admin"}},
		{Prefix: "/reports/", Methods: []string{"POST"}, Scopes: []string{"tool:read", "tool:write"}},
		{Prefix: "/staff", Roles: []string{"staff", "manager"}},
	}
}

// The caller's credentials and every copy of an identity header, in any
// spelling, are removed; the verified identity is set; the Connection
// header cannot make the proxy drop the injected headers.
func TestProxyReplacesCredentialsAndIdentityHeaders(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	f := newFront(t, proxy.Options{
		Target:      b.URL + "/base",
		InjectQuery: "user_id",
		Headers:     map[string]string{"Authorization": "Bearer backend-key", "X-Api-Version": "3"},
		Routes:      []proxy.Route{{Prefix: "/", Scopes: []string{"tool:read"}}},
	})
	tests := []struct {
		name    string
		who     string
		want    map[string]string // exact single values; "" = absent
		spoofed map[string][]string
	}{
		{
			name: "spoofed identity headers in any case and with underscores are replaced",
			who:  "alice",
			spoofed: map[string][]string{
				"X-User-Id": {"mallory"}, "x-user-id": {"mallory2"}, "X_User_Id": {"mallory3"}, "x_org_id": {"evil"},
				"X-User-Scopes": {"admin"}, "Authorization": {"Bearer callers-token"}, "Cookie": {"session=1"},
				"Proxy-Authorization": {"Basic eDp5"}, "X-Forwarded-For": {"6.6.6.6"}, "X-Other": {"kept"},
			},
			want: map[string]string{
				"X-User-Id": "alice", "X-Org-Id": "acme", "X-User-Scopes": "tool:read", "Authorization": "Bearer backend-key",
				"X-Api-Version": "3", "Cookie": "", "Proxy-Authorization": "", "X_user_id": "", "X_org_id": "", "X-Other": "kept",
				"X-Forwarded-For": "127.0.0.1",
			},
		},
		{
			name: "Connection naming the identity headers cannot remove the injected ones",
			who:  "alice",
			spoofed: map[string][]string{
				"Connection": {"X-User-Id, X-Org-Id, X-User-Scopes, Authorization"}, "X-User-Id": {"mallory"},
			},
			want: map[string]string{"X-User-Id": "alice", "X-Org-Id": "acme", "X-User-Scopes": "tool:read", "Authorization": "Bearer backend-key"},
		},
		{
			name:    "an identity without tenant sends no tenant header, even a spoofed one",
			who:     "bob",
			spoofed: map[string][]string{"X-Org-Id": {"evil"}},
			want:    map[string]string{"X-User-Id": "bob", "X-Org-Id": ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string][]string{"Test-As": {tt.who}}
			for k, v := range tt.spoofed {
				h[k] = v
			}
			resp, body := send(t, "GET", f.URL+"/proxy/accounts/a%2Fb?x=1&user_id=mallory&user%5Fid=m2&y=2", h, nil)
			if resp.StatusCode != http.StatusCreated || string(body) != "hello from the backend" || resp.Header.Get("X-Backend") != "yes" {
				t.Fatalf("answer = %d %q %v", resp.StatusCode, body, resp.Header)
			}
			got := b.last(t)
			if got.RawPath != "/base/accounts/a%2Fb" {
				t.Errorf("backend path = %s, want /base/accounts/a%%2Fb", got.RawPath)
			}
			if want := "x=1&y=2&user_id=" + identities[tt.who].Subject; got.Query != want {
				t.Errorf("backend query = %s, want %s", got.Query, want)
			}
			for k, v := range tt.want {
				vals := got.Header.Values(k)
				if v == "" && len(vals) != 0 || v != "" && (len(vals) != 1 || vals[0] != v) {
					t.Errorf("backend header %s = %q, want %q", k, vals, v)
				}
			}
			for k := range got.Header {
				if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), "x-user-id") && k != "X-User-Id" {
					t.Errorf("a spoofed spelling reached the backend: %s", k)
				}
			}
		})
	}
}

// The longest matching prefix decides, on segment boundaries; methods,
// scopes (all) and roles (any) are checked; anything unmatched is refused.
func TestProxyPolicyByPrefixAndMethod(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	f := newFront(t, proxy.Options{Target: b.URL, Routes: policyRoutes()})
	tests := []struct {
		name, who, method, path string
		status                  int
		reason, route           string
	}{
		{"a listed method under a prefix is forwarded", "alice", "GET", "/accounts/7", 201, "allowed", "/accounts"},
		{"the prefix itself matches", "alice", "GET", "/accounts", 201, "allowed", "/accounts"},
		{"methods compare in upper case", "alice", "HEAD", "/accounts/7", 201, "allowed", "/accounts"},
		{"a prefix matches whole segments only", "alice", "GET", "/accountsX", 403, "route_unknown", ""},
		{"a path no route matches is refused", "alice", "GET", "/elsewhere", 403, "route_unknown", ""},
		{"the root is refused without a root route", "alice", "GET", "/", 403, "route_unknown", ""},
		{"a method the route does not list is 405", "alice", "DELETE", "/accounts/7", 405, "method_not_allowed", "/accounts"},
		{"the longer prefix decides: entitlement missing", "alice", "GET", "/accounts/admin/x", 403, "entitlement_missing", "/accounts/admin"},
		{"the longer prefix decides: allowed with the entitlement, any method", "admin", "DELETE", "/accounts/admin/x", 201, "allowed", "/accounts/admin"},
		{"a route without scopes needs only authentication", "bob", "PUT", "/public/x", 201, "allowed", "/public"},
		{"a step-up scope missing is 403 insufficient_scope", "alice", "POST", "/reports/q", 403, "scope_missing", "/reports"},
		{"with the step-up scope the request goes through", "writer", "POST", "/reports/q", 201, "allowed", "/reports"},
		{"a role missing is refused", "alice", "GET", "/staff/list", 403, "role_missing", "/staff"},
		{"one of the roles is enough", "staff", "GET", "/staff/list", 201, "allowed", "/staff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := b.count()
			resp, body := send(t, tt.method, f.URL+"/proxy"+tt.path, as(tt.who), nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			res := f.lastResult(t)
			if res.Reason != tt.reason || res.Route != tt.route || res.Status != tt.status {
				t.Errorf("result = %+v, want reason %s, route %q, status %d", res, tt.reason, tt.route, tt.status)
			}
			forwarded := b.count() > before
			if forwarded != (tt.status == 201) {
				t.Errorf("forwarded = %v for status %d", forwarded, tt.status)
			}
			switch {
			case tt.status == 201:
				if res.Decision != audit.Allow {
					t.Errorf("decision = %s, want allow", res.Decision)
				}
				return
			case res.Decision != audit.Deny:
				t.Errorf("decision = %s, want deny", res.Decision)
			}
			if tt.method != "HEAD" {
				var e map[string]string
				if err := json.Unmarshal(body, &e); err != nil || e["reason"] != tt.reason || e["error"] == "" {
					t.Errorf("body = %s, want a JSON error with reason %s", body, tt.reason)
				}
			}
			wa := resp.Header.Get("WWW-Authenticate")
			if tt.reason == "scope_missing" {
				want := `Bearer realm="mcp", error="insufficient_scope", error_description="this route needs more scope", scope="tool:read tool:write", resource_metadata="http://gw.test/.well-known/oauth-protected-resource/mcp"`
				if wa != want {
					t.Errorf("WWW-Authenticate = %s\nwant %s", wa, want)
				}
			} else if wa != "" {
				t.Errorf("WWW-Authenticate = %s on a %s refusal", wa, tt.reason)
			}
			if tt.status == 405 && resp.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow = %q, want GET, HEAD", resp.Header.Get("Allow"))
			}
		})
	}
}

// Paths that backends may read differently from the route match are
// refused before anything is decided.
func TestProxyRefusesAmbiguousPaths(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	f := newFront(t, proxy.Options{Target: b.URL, Routes: []proxy.Route{{Prefix: "/public"}}})
	for _, p := range []string{
		"/proxy/public/%2e%2e/admin", "/proxy/public/..%2Fadmin", "/proxy/public/%2E/x", "/proxy/public//x",
		"/proxy/public%5C..%5Cadmin", "/proxy/public;jsessionid=1/../admin", "/proxy/public/a%00b",
	} {
		resp, body := send(t, "GET", f.URL+p, as("alice"), nil)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "path_invalid") {
			t.Errorf("%s: %d %s, want 400 path_invalid", p, resp.StatusCode, body)
		}
	}
	if n := b.count(); n != 0 {
		t.Errorf("the backend received %d requests", n)
	}
}

// Without a verified identity in the context nothing is forwarded.
func TestProxyFailsClosedWithoutIdentity(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	f := newFront(t, proxy.Options{Target: b.URL, Routes: []proxy.Route{{Prefix: "/"}}})
	resp, _ := send(t, "GET", f.URL+"/proxy/x", nil, nil)
	if resp.StatusCode != http.StatusUnauthorized || b.count() != 0 {
		t.Errorf("status = %d, backend requests = %d; want 401 and none", resp.StatusCode, b.count())
	}
}

// A backend that is down is 502, one that does not answer in time 504;
// both name the backend and never its address.
func TestProxyAnswersForAFailingBackend(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	_ = ln.Close()
	f := newFront(t, proxy.Options{Target: down, Routes: []proxy.Route{{Prefix: "/"}}})
	resp, body := send(t, "GET", f.URL+"/proxy/x", as("alice"), nil)
	var e map[string]string
	if resp.StatusCode != http.StatusBadGateway || json.Unmarshal(body, &e) != nil || e["error"] != "bad_gateway" || e["upstream"] != "proxy" {
		t.Errorf("down: %d %s, want 502 bad_gateway naming the proxy backend", resp.StatusCode, body)
	}
	if strings.Contains(string(body), "127.0.0.1") || strings.Contains(string(body), ln.Addr().String()) {
		t.Errorf("the answer reveals the backend address: %s", body)
	}
	if res := f.lastResult(t); res.Decision != audit.Error || res.Reason != "upstream_unavailable" || res.Status != 502 {
		t.Errorf("result = %+v", res)
	}

	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 200 * time.Millisecond
	g := newFront(t, proxy.Options{Target: slow.URL, Transport: tr, Routes: []proxy.Route{{Prefix: "/"}}})
	resp, body = send(t, "GET", g.URL+"/proxy/x", as("alice"), nil)
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(string(body), `"upstream":"proxy"`) {
		t.Errorf("slow: %d %s, want 504 naming the proxy backend", resp.StatusCode, body)
	}
	if res := g.lastResult(t); res.Decision != audit.Error || res.Reason != "upstream_timeout" || res.Status != 504 {
		t.Errorf("result = %+v", res)
	}
}

// Bodies beyond the cap are 413, whether the length is announced or not.
func TestProxyCapsTheRequestBody(t *testing.T) {
	t.Parallel()
	b := newBackend(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	f := newFront(t, proxy.Options{Target: b.URL, MaxBodyBytes: 4096, Routes: []proxy.Route{{Prefix: "/"}}})

	resp, body := send(t, "POST", f.URL+"/proxy/upload", as("alice"), bytes.NewReader(make([]byte, 5000)))
	if resp.StatusCode != http.StatusRequestEntityTooLarge || b.count() != 0 {
		t.Errorf("announced length: %d %s, backend requests %d; want 413 and none", resp.StatusCode, body, b.count())
	}
	if res := f.lastResult(t); res.Reason != "body_too_large" || res.Decision != audit.Deny {
		t.Errorf("result = %+v", res)
	}

	// Unknown length: streamed until the cap, then refused.
	resp, body = send(t, "POST", f.URL+"/proxy/upload", as("alice"), io.MultiReader(bytes.NewReader(make([]byte, 3000)), bytes.NewReader(make([]byte, 3000))))
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("streamed: %d %s, want 413", resp.StatusCode, body)
	}
	if res := f.lastResult(t); res.Reason != "body_too_large" {
		t.Errorf("result = %+v", res)
	}

	// At the cap it goes through.
	resp, _ = send(t, "POST", f.URL+"/proxy/upload", as("alice"), io.MultiReader(bytes.NewReader(make([]byte, 4096))))
	if resp.StatusCode != http.StatusOK || len(b.last(t).Body) != 4096 {
		t.Errorf("at the cap: %d, backend got %d bytes", resp.StatusCode, len(b.last(t).Body))
	}
}

// echoBackend streams the request body back as it reads it, flushing each
// piece, in full duplex.
func echoBackend(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if err := rc.EnableFullDuplex(); err != nil {
			t.Errorf("backend full duplex: %v", err)
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusOK)
		buf := make([]byte, 64<<10)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return
				}
				_ = rc.Flush()
			}
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// streamEcho sends total bytes (generated on the fly) to url in chunks and
// reads the echo concurrently, in lock step: chunk i+1 is written only
// after chunk i came back, which only works if every hop streams both ways
// without buffering the body. It returns the SHA-256 of what was sent and
// of what came back. Neither side is ever held in memory whole.
func streamEcho(ctx context.Context, client *http.Client, url string, header http.Header, total, chunk int) (sent, got [32]byte, status int, err error) {
	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, pr)
	if err != nil {
		return sent, got, 0, err
	}
	req.Header = header.Clone()
	req.Header.Set("Content-Type", "application/octet-stream")
	echoed := make(chan int, 1)
	writeErr := make(chan error, 1)
	hs := sha256.New()
	go func() {
		rng := rand.New(rand.NewChaCha8([32]byte{1, 2, 3}))
		buf := make([]byte, chunk)
		for off := 0; off < total; off += chunk {
			for i := range buf {
				buf[i] = byte(rng.Uint32())
			}
			_, _ = hs.Write(buf)
			if _, err := pw.Write(buf); err != nil {
				writeErr <- err
				return
			}
			select {
			case <-echoed:
			case <-ctx.Done():
				_ = pw.CloseWithError(ctx.Err())
				writeErr <- ctx.Err()
				return
			}
		}
		writeErr <- pw.Close()
	}()
	resp, err := client.Do(req)
	if err != nil {
		_ = pr.CloseWithError(err)
		return sent, got, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_ = pr.CloseWithError(errors.New("not 200"))
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return sent, got, resp.StatusCode, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	hr := sha256.New()
	buf := make([]byte, 64<<10)
	n, pending := 0, 0
	for {
		k, rerr := resp.Body.Read(buf)
		hr.Write(buf[:k])
		n += k
		pending += k
		for pending >= chunk {
			pending -= chunk
			echoed <- 1
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return sent, got, resp.StatusCode, fmt.Errorf("read echo after %d bytes: %w", n, rerr)
		}
	}
	if werr := <-writeErr; werr != nil {
		return sent, got, resp.StatusCode, fmt.Errorf("write: %w", werr)
	}
	if n != total {
		return sent, got, resp.StatusCode, fmt.Errorf("echo has %d bytes, want %d", n, total)
	}
	copy(sent[:], hs.Sum(nil))
	copy(got[:], hr.Sum(nil))
	return sent, got, resp.StatusCode, nil
}

// A large body streams through the proxy in both directions at once.
func TestProxyStreamsALargeBodyBothWays(t *testing.T) {
	t.Parallel()
	f := newFront(t, proxy.Options{Target: echoBackend(t), Routes: []proxy.Route{{Prefix: "/"}}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sent, got, _, err := streamEcho(ctx, &http.Client{}, f.URL+"/proxy/echo", http.Header{"Test-As": {"alice"}}, 32<<20, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if sent != got {
		t.Fatalf("echo SHA-256 %x, sent %x", got, sent)
	}
	if res := f.lastResult(t); res.Decision != audit.Allow || res.Status != 200 {
		t.Errorf("result = %+v", res)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	t.Parallel()
	for _, o := range []proxy.Options{
		{Target: "ftp://x"},
		{Target: "http://user:pw@x"},
		{Target: "http://x", Routes: []proxy.Route{{Prefix: "accounts"}}},
		{Target: "http://x", Routes: []proxy.Route{{Prefix: "/a/*"}}},
		{Target: "http://x", Routes: []proxy.Route{{Prefix: "/a/../b"}}},
		{Target: "http://x", Routes: []proxy.Route{{Prefix: "/a"}, {Prefix: "/a/"}}},
	} {
		if _, err := proxy.New(o); !errors.Is(err, proxy.ErrConfig) {
			t.Errorf("%+v: err = %v, want ErrConfig", o, err)
		}
	}
	if !slices.Equal([]string{proxy.NormalizePrefix(""), proxy.NormalizePrefix("/a/")}, []string{"/", "/a"}) {
		t.Error("NormalizePrefix")
	}
}
