package mcp_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatewaystack/gatewaystack/config"
)

// slowBody opens a connection from local (e.g. 127.0.0.3) and sends a POST
// that declares a 100-byte body but sends one byte; it returns the
// connection, still open, holding the request.
func slowBody(t *testing.T, g *gateway, local, token string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", strings.TrimPrefix(g.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	auth := ""
	if token != "" {
		auth = "Authorization: Bearer " + token + "\r\n"
	}
	host := strings.TrimPrefix(g.URL, "http://")
	fmt.Fprintf(c, "POST /mcp HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n%sContent-Length: 100\r\n\r\n{", host, auth)
	return c
}

// statusOf reads the status code of the answer on c (0 when none comes
// within d).
func statusOf(c net.Conn, d time.Duration) int {
	_ = c.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// clientFrom is an HTTP client whose connections come from local.
func clientFrom(local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}
}

// Invariant: a slow body cannot hold request slots before its sender is
// authenticated. Credentials are checked from the headers first (no body is
// read for a caller without them), slots are taken only after, a subject's
// slow bodies hold at most its own cap, and a body slower than
// server.read_timeout counts against the per-IP limit like a failed
// credential.
func TestSlowBodiesCannotHoldRequestSlots(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{configure: func(c *config.Config) {
		c.Server.MaxConcurrent = 10
		c.Server.MaxConcurrentPerSubject = 4
		c.Server.ReadTimeout = 1500 * time.Millisecond
		c.Limits.PerSubject.Requests = intp(0)
		c.Limits.PerTenant.Requests = intp(0)
		c.Limits.PerIP = config.Rate{Requests: intp(2), Window: time.Hour}
	}})
	bob := g.minter.token("bob", baselineScope)
	legit := clientFrom("127.0.0.2")
	call := func(c *http.Client) int {
		h := hdr("Mcp-Protocol-Version", modernVersion, "Mcp-Method", "tools/list")
		h.Set("Authorization", bearer(bob))
		body := mustJSON(t, map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": modernParams(nil)})
		r, err := send(c, http.MethodPost, g.MCP, h, body)
		if err != nil {
			t.Fatal(err)
		}
		return r.StatusCode
	}

	// Ten slow bodies without a token, from one address: each is refused
	// at once, from its headers (401; 429 once the failures reach the
	// per-IP limit).
	var anon []net.Conn
	for range 10 {
		anon = append(anon, slowBody(t, g, "127.0.0.3", ""))
	}
	for i, c := range anon {
		if s := statusOf(c, 1*time.Second); s != http.StatusUnauthorized && s != http.StatusTooManyRequests {
			t.Fatalf("slow body %d without a token: status %d, want 401 or 429 at once", i, s)
		}
	}
	if s := call(legit); s != http.StatusOK {
		t.Fatalf("a caller from another address while slow bodies are open: %d", s)
	}

	// Ten slow bodies with mallory's valid token: she holds at most her
	// own four slots; the others are refused, and bob is served.
	mallory := g.minter.token("mallory", baselineScope)
	var held []net.Conn
	for range 10 {
		held = append(held, slowBody(t, g, "127.0.0.4", mallory))
	}
	// Read every answer concurrently: which four got her slots is up to
	// the scheduler.
	statuses := make(chan int, len(held))
	for _, c := range held {
		go func() { statuses <- statusOf(c, 6*time.Second) }()
	}
	time.Sleep(300 * time.Millisecond) // the refusals are immediate
	if s := call(legit); s != http.StatusOK {
		t.Fatalf("bob while mallory's slow bodies are open: %d", s)
	}
	count := map[int]int{}
	for range held {
		count[<-statuses]++
	}
	// Six refused at once (429), her four held bodies timed out (408) and
	// count against her address.
	if count[http.StatusTooManyRequests] != 6 || count[http.StatusRequestTimeout] != 4 {
		t.Errorf("mallory's slow bodies were answered %v, want 6×429 and 4×408", count)
	}
	if s := call(clientFrom("127.0.0.4")); s != http.StatusTooManyRequests {
		t.Errorf("a request from the address whose bodies timed out: %d, want 429 (per-IP limit)", s)
	}
}
