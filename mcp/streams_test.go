package mcp_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatewaystack/gatewaystack/config"
)

// openStream opens a session-era GET event stream and returns its status
// and a function that closes it (the stream stays open until then).
func openStream(t *testing.T, g *gateway, token, sid string) (int, func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.MCP, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", bearer(token))
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("Mcp-Protocol-Version", legacyVersion)
	resp, err := g.client.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		body := make([]byte, 4096)
		n, _ := resp.Body.Read(body)
		_ = resp.Body.Close()
		cancel()
		if resp.StatusCode == http.StatusTooManyRequests && !strings.Contains(string(body[:n]), "too_many_streams") {
			t.Errorf("429 without the reason: %s", body[:n])
		}
		return resp.StatusCode, func() {}
	}
	return resp.StatusCode, func() { cancel(); _ = resp.Body.Close() }
}

// metricOf reads one unlabelled gauge from /metrics.
func metricOf(t *testing.T, g *gateway, name string) float64 {
	t.Helper()
	return metricValue(t, string(do(t, g.client, http.MethodGet, g.URL+"/metrics", nil, nil).body), name)
}

// Invariant: event streams are capped per session (default 4) and per
// subject (default 32), with 429 naming the cap, and counted in /metrics;
// a closed stream frees its slot.
func TestEventStreamsAreCapped(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{})
	alice := g.minter.token("alice", baselineScope)
	sid := g.initialize(t, alice)
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	for i := range 4 {
		status, closeIt := openStream(t, g, alice, sid)
		if status != http.StatusOK {
			t.Fatalf("stream %d of the session: %d", i+1, status)
		}
		closers = append(closers, closeIt)
	}
	if status, _ := openStream(t, g, alice, sid); status != http.StatusTooManyRequests {
		t.Fatalf("a fifth stream on one session: %d, want 429", status)
	}
	if v := metricOf(t, g, "gatewaystack_streams_open"); v != 4 {
		t.Errorf("streams_open = %v, want 4", v)
	}
	// Across sessions, the subject's cap (32) holds.
	for len(closers) < 32 {
		s := g.initialize(t, alice)
		for range 4 {
			if len(closers) == 32 {
				break
			}
			status, closeIt := openStream(t, g, alice, s)
			if status != http.StatusOK {
				t.Fatalf("stream %d of alice: %d", len(closers)+1, status)
			}
			closers = append(closers, closeIt)
		}
	}
	if status, _ := openStream(t, g, alice, g.initialize(t, alice)); status != http.StatusTooManyRequests {
		t.Fatalf("alice's 33rd stream: %d, want 429", status)
	}
	// Another subject is not affected; a closed stream frees its slot.
	bob := g.minter.token("bob", baselineScope)
	if status, closeIt := openStream(t, g, bob, g.initialize(t, bob)); status != http.StatusOK {
		t.Errorf("bob's first stream: %d", status)
	} else {
		closeIt()
	}
	closers[0]()
	closers = closers[1:]
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, closeIt := openStream(t, g, alice, sid)
		if status == http.StatusOK {
			closers = append(closers, closeIt)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a closed stream did not free its slot: %d", status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The caps come from server.max_streams_per_session and
// max_streams_per_subject.
func TestEventStreamCapsAreConfigured(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{configure: func(c *config.Config) {
		c.Server.MaxStreamsPerSession = 1
		c.Server.MaxStreamsPerSubject = 2
	}})
	alice := g.minter.token("alice", baselineScope)
	s1, s2 := g.initialize(t, alice), g.initialize(t, alice)
	status, close1 := openStream(t, g, alice, s1)
	defer close1()
	if status != http.StatusOK {
		t.Fatalf("first stream: %d", status)
	}
	if status, _ := openStream(t, g, alice, s1); status != http.StatusTooManyRequests {
		t.Errorf("second stream on a session capped at 1: %d", status)
	}
	status, close2 := openStream(t, g, alice, s2)
	defer close2()
	if status != http.StatusOK {
		t.Fatalf("a stream on the second session: %d", status)
	}
	if status, _ := openStream(t, g, alice, g.initialize(t, alice)); status != http.StatusTooManyRequests {
		t.Errorf("a third stream of a subject capped at 2: %d", status)
	}
}
