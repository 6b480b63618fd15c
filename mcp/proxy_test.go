package mcp_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewaystack/gatewaystack/config"
)

// proxyBackend is a plain HTTP backend that records every request; under
// /echo it streams the request body back as it reads it (full duplex).
type proxyBackend struct {
	URL string
	mu  sync.Mutex
	got []apiRequest
}

func (b *proxyBackend) requests() []apiRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]apiRequest(nil), b.got...)
}

func newProxyBackend(t testing.TB) *proxyBackend {
	t.Helper()
	b := &proxyBackend{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/echo" {
			streamEchoHandler(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.got = append(b.got, apiRequest{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Header: r.Header.Clone(), Body: string(body)})
		b.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"path":%q,"user":%q}`, r.URL.Path, r.Header.Get("X-User-Id"))
	}))
	t.Cleanup(srv.Close)
	b.URL = srv.URL
	return b
}

func streamEchoHandler(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	_ = rc.EnableFullDuplex()
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
}

func newProxyGateway(t testing.TB, b *proxyBackend) *gateway {
	t.Helper()
	return newGateway(t, gatewayOptions{configure: func(c *config.Config) {
		c.Proxy = config.Proxy{
			Target:      b.URL,
			InjectQuery: "uid",
			Headers:     map[string]string{"X-Api-Key": "backend-key"},
			Routes: []config.ProxyRoute{
				{Prefix: "/accounts", Methods: []string{"GET"}, Scopes: []string{baselineScope}},
				{Prefix: "/reports", Scopes: []string{baselineScope, stepUpScope}},
				{Prefix: "/echo", Methods: []string{"POST"}},
			},
		}
	}})
}

// /proxy is authenticated with the same tokens as /mcp, authorized by
// route, and forwards the verified identity, never the caller's
// credentials; every request has one audit line.
func TestProxyThroughTheGateway(t *testing.T) {
	t.Parallel()
	b := newProxyBackend(t)
	g := newProxyGateway(t, b)
	token := g.minter.token("alice", baselineScope)
	auditFor := func(t *testing.T, r response) map[string]any {
		t.Helper()
		var lines []map[string]any
		deadline := time.Now().Add(5 * time.Second)
		for len(lines) == 0 && time.Now().Before(deadline) {
			lines = g.audit.forRequest(t, r.Header.Get("X-Request-Id"))
			time.Sleep(5 * time.Millisecond)
		}
		if len(lines) != 1 {
			t.Fatalf("want one audit line, got %v", lines)
		}
		return lines[0]
	}

	t.Run("without a token: 401 with the challenge, nothing forwarded", func(t *testing.T) {
		r := do(t, g.client, "GET", g.URL+"/proxy/accounts/7", nil, nil)
		if r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status = %d: %s", r.StatusCode, r.body)
		}
		wantChallenge(t, r, map[string]string{"realm": "mcp", "resource_metadata": g.PRM, "scope": baselineScope})
		a := auditFor(t, r)
		if a["decision"] != "deny" || a["reason"] != "credentials_missing" || a["tool"] != "proxy:/accounts/7" {
			t.Errorf("audit = %v", a)
		}
	})

	t.Run("a bad token: 401 invalid_token", func(t *testing.T) {
		r := do(t, g.client, "GET", g.URL+"/proxy/accounts/7", http.Header{"Authorization": {"Bearer not.a.jwt"}}, nil)
		if r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("status = %d, challenge %q", r.StatusCode, r.Header.Get("WWW-Authenticate"))
		}
	})
	if n := len(b.requests()); n != 0 {
		t.Fatalf("unauthenticated requests reached the backend: %d", n)
	}

	t.Run("allowed: identity injected, caller's credentials and spoofed identity removed", func(t *testing.T) {
		h := http.Header{
			"Authorization": {bearer(token)}, "X-User-Id": {"mallory"}, "X-Org-Id": {"evil"}, "Cookie": {"s=1"},
			"Connection": {"X-User-Id, X-Api-Key"},
		}
		r := do(t, g.client, "GET", g.URL+"/proxy/accounts/7?a=1&uid=mallory", h, nil)
		if r.StatusCode != http.StatusOK || string(r.body) != `{"path":"/accounts/7","user":"alice"}` {
			t.Fatalf("answer = %d %s", r.StatusCode, r.body)
		}
		reqs := b.requests()
		got := reqs[len(reqs)-1]
		if got.Path != "/accounts/7" || got.Query != "a=1&uid=alice" {
			t.Errorf("backend got %s?%s", got.Path, got.Query)
		}
		want := map[string]string{"X-User-Id": "alice", "X-Org-Id": "acme", "X-User-Scopes": baselineScope, "X-Api-Key": "backend-key", "Authorization": "", "Cookie": ""}
		for k, v := range want {
			vs := got.Header.Values(k)
			if v == "" && len(vs) != 0 || v != "" && (len(vs) != 1 || vs[0] != v) {
				t.Errorf("backend header %s = %q, want %q", k, vs, v)
			}
		}
		a := auditFor(t, r)
		for k, v := range map[string]any{"decision": "allow", "reason": "allowed", "tool": "proxy:/accounts", "rule": "/accounts",
			"upstream": "proxy", "subject": "alice", "tenant": "acme", "method": "GET", "status": float64(200)} {
			if a[k] != v {
				t.Errorf("audit %s = %v, want %v", k, a[k], v)
			}
		}
	})

	t.Run("a step-up scope missing: 403 insufficient_scope challenge", func(t *testing.T) {
		r := do(t, g.client, "GET", g.URL+"/proxy/reports/q", http.Header{"Authorization": {bearer(token)}}, nil)
		if r.StatusCode != http.StatusForbidden {
			t.Fatalf("status = %d: %s", r.StatusCode, r.body)
		}
		wantChallenge(t, r, map[string]string{"realm": "mcp", "error": "insufficient_scope", "scope": baselineScope + " " + stepUpScope, "resource_metadata": g.PRM})
		if a := auditFor(t, r); a["decision"] != "deny" || a["reason"] != "scope_missing" || a["rule"] != "/reports" {
			t.Errorf("audit = %v", a)
		}
		ok := do(t, g.client, "GET", g.URL+"/proxy/reports/q", http.Header{"Authorization": {bearer(g.minter.token("alice", baselineScope+" "+stepUpScope))}}, nil)
		if ok.StatusCode != http.StatusOK {
			t.Errorf("with the step-up scope: %d %s", ok.StatusCode, ok.body)
		}
	})

	t.Run("no route: 403 forbidden; a method the route does not list: 405", func(t *testing.T) {
		r := do(t, g.client, "GET", g.URL+"/proxy/admin", http.Header{"Authorization": {bearer(token)}}, nil)
		var e map[string]string
		if r.StatusCode != http.StatusForbidden || json.Unmarshal(r.body, &e) != nil || e["error"] != "forbidden" || e["reason"] != "route_unknown" {
			t.Errorf("no route: %d %s", r.StatusCode, r.body)
		}
		if a := auditFor(t, r); a["tool"] != "proxy:/admin" || a["reason"] != "route_unknown" {
			t.Errorf("audit = %v", a)
		}
		r = do(t, g.client, "DELETE", g.URL+"/proxy/accounts/7", http.Header{"Authorization": {bearer(token)}}, nil)
		if r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "GET" {
			t.Errorf("method: %d Allow %q", r.StatusCode, r.Header.Get("Allow"))
		}
	})

	t.Run("CORS preflights need no token; foreign Hosts are refused", func(t *testing.T) {
		r := do(t, g.client, "OPTIONS", g.URL+"/proxy/accounts/7", http.Header{"Origin": {browserOrigin}, "Access-Control-Request-Method": {"GET"}}, nil)
		if r.StatusCode != http.StatusNoContent || r.Header.Get("Access-Control-Allow-Origin") != browserOrigin {
			t.Errorf("preflight: %d %v", r.StatusCode, r.Header)
		}
		r = do(t, g.client, "GET", g.URL+"/proxy/accounts/7", http.Header{"Authorization": {bearer(token)}, "Host": {"evil.example"}}, nil)
		if r.StatusCode != http.StatusForbidden || !strings.Contains(string(r.body), "host_not_allowed") {
			t.Errorf("foreign Host: %d %s", r.StatusCode, r.body)
		}
	})
}

// Without proxy.target there is no /proxy.
func TestProxyIsOffWithoutATarget(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{})
	r := do(t, g.client, "GET", g.URL+"/proxy/x", http.Header{"Authorization": {bearer(g.minter.token("alice", baselineScope))}}, nil)
	if r.StatusCode != http.StatusNotFound {
		t.Errorf("status = %d, want 404", r.StatusCode)
	}
}

// A 32 MiB body streams through the whole gateway stack in both directions
// at once: each 1 MiB chunk is sent only after the previous one came back,
// which deadlocks if any hop buffers the request or the answer. Both sides
// are generated and hashed on the fly.
func TestProxyStreamsALargeBodyThroughTheGateway(t *testing.T) {
	t.Parallel()
	b := newProxyBackend(t)
	g := newProxyGateway(t, b)
	const total, chunk = 32 << 20, 1 << 20
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.URL+"/proxy/echo", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", bearer(g.minter.token("alice", baselineScope)))
	echoed := make(chan struct{}, 1)
	sent := sha256.New()
	writeDone := make(chan error, 1)
	go func() {
		rng := rand.New(rand.NewChaCha8([32]byte{7}))
		buf := make([]byte, chunk)
		for off := 0; off < total; off += chunk {
			for i := range buf {
				buf[i] = byte(rng.Uint32())
			}
			sent.Write(buf)
			if _, err := pw.Write(buf); err != nil {
				writeDone <- err
				return
			}
			select {
			case <-echoed:
			case <-ctx.Done():
				_ = pw.CloseWithError(ctx.Err())
				writeDone <- fmt.Errorf("chunk at %d never came back: %w", off, ctx.Err())
				return
			}
		}
		writeDone <- pw.Close()
	}()
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		_ = pr.CloseWithError(err)
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_ = pr.CloseWithError(errors.New("refused"))
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	got := sha256.New()
	buf := make([]byte, 64<<10)
	n, pending := 0, 0
	for {
		k, rerr := resp.Body.Read(buf)
		got.Write(buf[:k])
		n, pending = n+k, pending+k
		for ; pending >= chunk; pending -= chunk {
			echoed <- struct{}{}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			t.Fatalf("reading the echo after %d bytes: %v", n, rerr)
		}
	}
	if err := <-writeDone; err != nil {
		t.Fatal(err)
	}
	if n != total {
		t.Fatalf("echo has %d bytes, want %d", n, total)
	}
	if s, e := sent.Sum(nil), got.Sum(nil); string(s) != string(e) {
		t.Fatalf("echo SHA-256 %x, sent %x", e, s)
	}
}
