package audit

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewaystack/gatewaystack/safehttp"
)

func TestWebhookRetriesUntilDeliveredInOrder(t *testing.T) {
	t.Parallel()
	const failFirst = 3
	rc := newReceiver(t, func(n int, _ *http.Request) int {
		if n <= failFirst {
			return http.StatusInternalServerError
		}
		return 0
	})
	url := strings.Replace(rc.srv.URL, "http://", "http://user:pw-secret@", 1) + "/hook?key=query-secret"
	hook, err := NewWebhookSink(WebhookOptions{URL: url, Client: loopback(), Headers: map[string]string{"Authorization": "Bearer header-secret"},
		BatchSize: 10, FlushInterval: 5 * time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	a := NewAuditor(Options{}, hook)
	const n = 57
	var want []string
	for i := range n {
		a.Write(eventN(i))
		want = append(want, eventN(i).EventID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rc.received(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("received (%d) %v\nwant (%d) exactly once, in order", len(got), got, n)
	}
	s := statsOf(t, a, "webhook")
	if s.Delivered != n || s.Dropped != 0 || s.Failed != failFirst {
		t.Errorf("stats %+v, want %d delivered, 0 dropped, %d failed attempts", s, n, failFirst)
	}
	if !strings.Contains(s.LastError, "status 500: upstream refused: xxx") {
		t.Errorf("last error %q does not give the status and the start of the body", s.LastError)
	}
	for _, secret := range []string{"SECRET-BODY-TAIL", "header-secret", "pw-secret", "query-secret", "user:"} {
		if strings.Contains(s.LastError, secret) {
			t.Errorf("last error %q contains %q", s.LastError, secret)
		}
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, h := range rc.headers {
		if h.Get("Content-Type") != "application/json" || h.Get("Authorization") != "Bearer header-secret" {
			t.Errorf("POST headers %v", h)
			break
		}
	}
}

func TestWebhookErrorsNameNoCredentials(t *testing.T) {
	t.Parallel()
	// A port nothing listens on: take one, then close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	hook, err := NewWebhookSink(WebhookOptions{Client: loopback(), URL: "http://u:pw-secret@" + addr + "/hook?token=query-secret", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer hook.Close(context.Background())
	n, err := hook.Deliver(context.Background(), []Event{eventN(1)})
	if n != 0 || err == nil {
		t.Fatalf("Deliver to a closed port: %d, %v", n, err)
	}
	if msg := err.Error(); strings.Contains(msg, "pw-secret") || strings.Contains(msg, "query-secret") || !strings.Contains(msg, addr+"/hook") {
		t.Errorf("error %q must name the endpoint without credentials", msg)
	}
}

func TestWebhookTimeoutBoundsEachPost(t *testing.T) {
	t.Parallel()
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-done:
		case <-time.After(10 * time.Second):
		}
	}))
	defer srv.Close()
	defer close(done) // before srv.Close, which waits for the handler
	hook, err := NewWebhookSink(WebhookOptions{URL: srv.URL, Client: loopback(), Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer hook.Close(context.Background())
	start := time.Now()
	if _, err := hook.Deliver(context.Background(), []Event{eventN(1)}); err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Errorf("err %v, want a deadline error", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("a POST with a 50ms timeout took %v", el)
	}
}

func TestWebhookRejectsBadURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "ftp://127.0.0.1/x", "/relative", "http://"} {
		if _, err := NewWebhookSink(WebhookOptions{URL: u}); err == nil {
			t.Errorf("NewWebhookSink(%q) accepted", u)
		}
	}
}

// loopback is the outbound client of a gateway with
// outbound.allow_http_loopback: plain http to the tests' servers on
// 127.0.0.1, under every other rule.
func loopback() *safehttp.Client {
	return safehttp.New(safehttp.Options{AllowHTTPLoopback: true})
}

// recorder is a real server recording what reaches it.
type recorder struct {
	srv     *httptest.Server
	mu      sync.Mutex
	bodies  []string
	headers []http.Header
}

func newRecorder(t *testing.T, h func(w http.ResponseWriter, r *http.Request)) *recorder {
	t.Helper()
	rc := &recorder{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.bodies = append(rc.bodies, string(body))
		rc.headers = append(rc.headers, r.Header.Clone())
		rc.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *recorder) requests() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.bodies)
}

// Invariant: every outbound request goes through safehttp, webhooks
// included. A SIEM endpoint answering 307 must not make the gateway
// re-POST the audit batch, with its credential header, to another host.
func TestWebhookDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	thief := newRecorder(t, func(w http.ResponseWriter, _ *http.Request) {})
	siem := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, thief.srv.URL+"/steal?from=siem", http.StatusTemporaryRedirect)
	})
	hook, err := NewWebhookSink(WebhookOptions{URL: siem.srv.URL + "/hook", Client: loopback(),
		Headers: map[string]string{"X-Api-Key": "siem-api-key-secret"}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer hook.Close(context.Background())
	n, err := hook.Deliver(context.Background(), []Event{eventN(1), eventN(2)})
	if n != 0 || err == nil || !strings.Contains(err.Error(), "status 307: redirect not followed") {
		t.Errorf("Deliver to a redirecting endpoint: %d, %v; want a failed POST naming the refused redirect", n, err)
	}
	if siem.requests() != 1 {
		t.Errorf("the configured endpoint got %d POSTs, want 1", siem.requests())
	}
	if got := thief.requests(); got != 0 {
		thief.mu.Lock()
		t.Errorf("the redirect target received %d request(s): bodies %q, headers %v", got, thief.bodies, thief.headers)
		thief.mu.Unlock()
	}
	if err != nil && strings.Contains(err.Error(), "siem-api-key-secret") {
		t.Errorf("the error %q holds the header's value", err)
	}
}

// Invariant: the webhook's address is checked in the dialer: a name that
// resolves to the cloud metadata address or a private address is refused
// before any connection, unless outbound.allow_cidrs allows it.
func TestWebhookRefusesInternalAddresses(t *testing.T) {
	t.Parallel()
	reached := newRecorder(t, func(w http.ResponseWriter, _ *http.Request) {})
	for _, tc := range []struct{ name, addr, want string }{
		{"the cloud metadata address", "169.254.169.254", "link-local (cloud metadata) address"},
		{"a private address", "10.1.2.3", "private (RFC 1918) address"},
		{"a unique-local address", "fd00::5", "unique-local"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var dials []string
			client := safehttp.New(safehttp.Options{
				Resolver: fakeResolver{"siem.example": netip.MustParseAddr(tc.addr)},
				// Were the address allowed, the dial would reach the recorder.
				DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
					mu.Lock()
					dials = append(dials, address)
					mu.Unlock()
					var d net.Dialer
					return d.DialContext(ctx, network, reached.srv.Listener.Addr().String())
				},
			})
			hook, err := NewWebhookSink(WebhookOptions{URL: "https://siem.example/hook", Client: client, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer hook.Close(context.Background())
			_, err = hook.Deliver(context.Background(), []Event{eventN(1)})
			var refused *safehttp.RefusedError
			if !errors.As(err, &refused) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Deliver: %v, want a refusal naming %q", err, tc.want)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(dials) != 0 {
				t.Errorf("dialled %v", dials)
			}
		})
	}
	if reached.requests() != 0 {
		t.Errorf("a refused address received %d request(s)", reached.requests())
	}
}

// Without a client of the caller's, the webhook uses a strict one: https
// to public addresses only.
func TestWebhookDefaultClientIsStrict(t *testing.T) {
	t.Parallel()
	reached := newRecorder(t, func(w http.ResponseWriter, _ *http.Request) {})
	for _, u := range []string{reached.srv.URL + "/hook", "https://169.254.169.254/hook", "https://127.0.0.1:1/hook"} {
		hook, err := NewWebhookSink(WebhookOptions{URL: u, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		_, err = hook.Deliver(context.Background(), []Event{eventN(1)})
		var refused *safehttp.RefusedError
		if !errors.As(err, &refused) {
			t.Errorf("%s: %v, want a refusal", u, err)
		}
		_ = hook.Close(context.Background())
	}
	if reached.requests() != 0 {
		t.Errorf("plain http reached the server %d time(s)", reached.requests())
	}
}

// fakeResolver answers each name with one address.
type fakeResolver map[string]netip.Addr

// LookupNetIP implements safehttp.Resolver.
func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	a, ok := f[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host (test resolver)", Name: host, IsNotFound: true}
	}
	return []netip.Addr{a}, nil
}
