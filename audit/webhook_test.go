package audit

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
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
	hook, err := NewWebhookSink(WebhookOptions{URL: url, Headers: map[string]string{"Authorization": "Bearer header-secret"},
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
	hook, err := NewWebhookSink(WebhookOptions{URL: "http://u:pw-secret@" + addr + "/hook?token=query-secret", Timeout: 2 * time.Second})
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
	hook, err := NewWebhookSink(WebhookOptions{URL: srv.URL, Timeout: 50 * time.Millisecond})
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
