package mcp_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewaystack/gatewaystack/config"
)

// The per-subject cap refuses a subject's extra request in progress with
// 429; the replica's cap refuses anyone's with 503; both with Retry-After,
// and the slots come back when the calls end.
func TestConcurrencyCaps(t *testing.T) {
	t.Parallel()
	slow := newSlowUpstream(t)
	g := newGateway(t, gatewayOptions{
		upstreams: []config.Upstream{{Name: "slow", MCP: &config.MCPUpstream{URL: slow}}},
		policy:    map[string]config.ToolRule{"slow__*": {Scopes: []string{baselineScope}}},
		configure: func(c *config.Config) {
			c.Server.MaxConcurrent = 3
			c.Server.MaxConcurrentPerSubject = 2
			c.Limits.LoopGuard.MaxRepeats = intp(0)
		},
	})
	alice, bob, carol := g.minter.token("alice", baselineScope), g.minter.token("bob", baselineScope), g.minter.token("carol", baselineScope)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	start := func(tok string, i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, body := g.modernRequest(tok, "slow__nap", map[string]any{"i": i})
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.MCP, strings.NewReader(string(body)))
			req.Header = h
			if resp, err := g.client.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	inFlight := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			hs := g.srv.Router.Health()
			if len(hs) == 1 && hs[0].InFlight == n {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("upstream in-flight never reached %d", n)
	}
	start(alice, 1)
	start(alice, 2)
	inFlight(2)
	r := g.modernCall(t, alice, "slow__nap", map[string]any{"i": 3})
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" || !strings.Contains(string(r.body), "too_many_concurrent") {
		t.Errorf("alice's third call in progress: %d %s", r.StatusCode, r.body)
	}
	start(bob, 4)
	inFlight(3)
	r = g.modernCall(t, carol, "slow__nap", map[string]any{"i": 5})
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" || !strings.Contains(string(r.body), "overloaded") {
		t.Errorf("a call beyond the replica's cap: %d %s", r.StatusCode, r.body)
	}
	cancel()
	wg.Wait()
	inFlight(0)
	// The slots are back: carol is served (the nap is cut short by her
	// own short deadline; what matters is that she is let in).
	h, body := g.modernRequest(carol, "slow__nap", map[string]any{"i": 6})
	cctx, ccancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer ccancel()
	req, _ := http.NewRequestWithContext(cctx, http.MethodPost, g.MCP, strings.NewReader(string(body)))
	req.Header = h
	if resp, err := g.client.Do(req); err == nil {
		t.Errorf("carol's call answered %d before her deadline; want it in progress", resp.StatusCode)
		resp.Body.Close()
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 with the given
// common name to certFile/keyFile and returns its pool.
func writeCert(t *testing.T, certFile, keyFile, cn string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// serveWith builds a gateway from the default test configuration changed
// by configure and serves it with Server.Serve (TLS and server timeouts
// included) on a loopback port; it returns the base URL.
func serveWith(t *testing.T, configure func(c *config.Config), scheme string) (string, *gateway) {
	t.Helper()
	g := newGateway(t, gatewayOptions{configure: configure})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return scheme + "://" + ln.Addr().String(), g
}

// HTTPS is served from the configured files, TLS 1.2 at least, and a
// renewed certificate is picked up without a restart.
func TestTLSServedAndReloaded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	pool1 := writeCert(t, certFile, keyFile, "first")
	base, _ := serveWith(t, func(c *config.Config) { c.TLS = config.TLS{CertFile: certFile, KeyFile: keyFile} }, "https")
	get := func(pool *x509.CertPool, maxVersion uint16) (*http.Response, error) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: maxVersion}, DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		return (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(base + "/health")
	}
	resp, err := get(pool1, 0)
	if err != nil {
		t.Fatalf("https /health: %v", err)
	}
	resp.Body.Close()
	if resp.TLS == nil || resp.TLS.PeerCertificates[0].Subject.CommonName != "first" || resp.TLS.Version < tls.VersionTLS12 {
		t.Errorf("TLS state %+v", resp.TLS)
	}
	if _, err := get(pool1, tls.VersionTLS11); err == nil {
		t.Error("a TLS 1.1 client was served")
	}
	// Renew: new files, a later modification time.
	pool2 := writeCert(t, certFile, keyFile, "second")
	later := time.Now().Add(time.Minute)
	_ = os.Chtimes(certFile, later, later)
	_ = os.Chtimes(keyFile, later, later)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := get(pool2, 0)
		if err == nil {
			resp.Body.Close()
			if resp.TLS.PeerCertificates[0].Subject.CommonName == "second" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the renewed certificate was not served within 10 s (last error %v)", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// A client that sends its headers slowly is cut off after
// server.read_header_timeout, while others are served meanwhile.
func TestSlowLorisIsCutOff(t *testing.T) {
	t.Parallel()
	base, _ := serveWith(t, func(c *config.Config) { c.Server.ReadHeaderTimeout = 300 * time.Millisecond }, "http")
	host := strings.TrimPrefix(base, "http://")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := conn.Write([]byte("GET /health HTTP/1.1\r\nHost: " + host + "\r\nX-Slow: ")); err != nil {
		t.Fatal(err)
	}
	// Keep trickling a byte now and then, as a slow-loris client does.
	go func() {
		for range 20 {
			time.Sleep(100 * time.Millisecond)
			if _, err := conn.Write([]byte("a")); err != nil {
				return
			}
		}
	}()
	resp, err := http.Get(base + "/health")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("another client meanwhile: %v %v", resp, err)
	}
	resp.Body.Close()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	took := time.Since(start)
	if took > 3*time.Second {
		t.Errorf("the slow client held its connection %s", took)
	}
	if err == nil && !strings.Contains(line, "408") && !strings.Contains(line, "400") {
		t.Errorf("the slow client got %q", line)
	}
}

// With a public URL that is not on loopback, only its host (and
// server.allowed_hosts) is served: a loopback or foreign Host is refused
// with 403 (DNS rebinding), a foreign Origin too, and a request without
// Origin passes.
func TestHostAndOriginAllowList(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{configure: func(c *config.Config) {
		c.PublicURL = "https://gw.example.com"
		c.Auth.Audience = "https://gw.example.com/mcp"
		c.Server.AllowedHosts = []string{"gw.internal:8443"}
	}})
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	cases := []struct {
		name, host, origin string
		want               int
	}{
		{"the public host", "gw.example.com", "", http.StatusUnauthorized},
		{"an allowed host", "gw.internal:8443", "", http.StatusUnauthorized},
		{"loopback", "127.0.0.1", "", http.StatusForbidden},
		{"localhost", "localhost:8080", "", http.StatusForbidden},
		{"a rebinding domain", "attacker.example", "", http.StatusForbidden},
		{"a foreign origin", "gw.example.com", "https://attacker.example", http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, g.MCP, strings.NewReader(string(body)))
			req.Host = c.host
			req.Header.Set("Content-Type", "application/json")
			if c.origin != "" {
				req.Header.Set("Origin", c.origin)
			}
			resp, err := g.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Errorf("Host %q Origin %q: %d, want %d", c.host, c.origin, resp.StatusCode, c.want)
			}
		})
	}
}
