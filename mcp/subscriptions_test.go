package mcp_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/gatewaystack/gatewaystack/config"
)

// shelfURI is the resource of the shelf upstream that tests subscribe to.
const shelfURI = "lib://docs/guide/readme"

// shelf is an upstream whose resources can be subscribed to. It counts the
// JSON-RPC methods it receives (and records the X-User-Id of each
// resources/unsubscribe), and, like a real server, sends
// notifications/resources/updated only to its sessions subscribed to the
// URI.
type shelf struct {
	URL string
	srv *server.MCPServer

	mu            sync.Mutex
	methods       map[string]int
	unsubscribers []string                   // X-User-Id of each resources/unsubscribe
	subscribed    map[string]map[string]bool // upstream session id -> URI -> subscribed
}

func newShelf(t testing.TB) *shelf {
	t.Helper()
	sh := &shelf{methods: map[string]int{}, subscribed: map[string]map[string]bool{}}
	mark := func(ctx context.Context, uri string, on bool) {
		cs := server.ClientSessionFromContext(ctx)
		if cs == nil {
			return
		}
		sh.mu.Lock()
		defer sh.mu.Unlock()
		if sh.subscribed[cs.SessionID()] == nil {
			sh.subscribed[cs.SessionID()] = map[string]bool{}
		}
		sh.subscribed[cs.SessionID()][uri] = on
	}
	hooks := &server.Hooks{}
	hooks.AddAfterSubscribe(func(ctx context.Context, _ any, req *mcpgo.SubscribeRequest, _ *mcpgo.EmptyResult) {
		mark(ctx, req.Params.URI, true)
	})
	hooks.AddAfterUnsubscribe(func(ctx context.Context, _ any, req *mcpgo.UnsubscribeRequest, _ *mcpgo.EmptyResult) {
		mark(ctx, req.Params.URI, false)
	})
	sh.srv = server.NewMCPServer("shelf", "1.0.0", server.WithResourceCapabilities(true, false), server.WithHooks(hooks))
	read := func(_ context.Context, req mcpgo.ReadResourceRequest) ([]mcpgo.ResourceContents, error) {
		return []mcpgo.ResourceContents{mcpgo.TextResourceContents{URI: req.Params.URI, MIMEType: "text/plain", Text: "contents of " + req.Params.URI}}, nil
	}
	sh.srv.AddResource(mcpgo.NewResource(shelfURI, "readme", mcpgo.WithMIMEType("text/plain")), read)
	h := server.NewStreamableHTTPServer(sh.srv)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var msg struct {
			Method string `json:"method"`
		}
		if json.Unmarshal(body, &msg) == nil && msg.Method != "" {
			sh.mu.Lock()
			sh.methods[msg.Method]++
			if msg.Method == "resources/unsubscribe" {
				sh.unsubscribers = append(sh.unsubscribers, r.Header.Get("X-User-Id"))
			}
			sh.mu.Unlock()
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	sh.URL = srv.URL + "/mcp"
	return sh
}

// count is how many requests of method the shelf received.
func (sh *shelf) count(method string) int {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.methods[method]
}

// unsubscribedBy returns the X-User-Id of each resources/unsubscribe.
func (sh *shelf) unsubscribedBy() []string {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return append([]string(nil), sh.unsubscribers...)
}

// update sends notifications/resources/updated for uri to the shelf's
// sessions subscribed to it and reports how many there were.
func (sh *shelf) update(uri string) int {
	sh.mu.Lock()
	var to []string
	for sid, uris := range sh.subscribed {
		if uris[uri] {
			to = append(to, sid)
		}
	}
	sh.mu.Unlock()
	for _, sid := range to {
		_ = sh.srv.SendNotificationToSpecificClient(sid, "notifications/resources/updated", map[string]any{"uri": uri})
	}
	return len(to)
}

// shelfGateway is a gateway in front of a shelf (upstream "lib"), whose
// every resource the baseline scope may use, with rate limits off.
func shelfGateway(t *testing.T, sh *shelf, more ...config.Upstream) *gateway {
	t.Helper()
	return newGateway(t, gatewayOptions{
		upstreams: append([]config.Upstream{{Name: "lib", MCP: &config.MCPUpstream{URL: sh.URL}}}, more...),
		policy:    map[string]config.ToolRule{},
		configure: func(c *config.Config) {
			c.Policy.Resources = map[string]config.ToolRule{"lib__lib://*": {Scopes: []string{baselineScope}}}
			c.Limits.PerSubject.Requests = intp(0)
			c.Limits.PerTenant.Requests = intp(0)
			c.Limits.PerIP.Requests = intp(0)
		},
	})
}

// deleteSession ends sid with DELETE.
func (g *gateway) deleteSession(t *testing.T, token, sid string) {
	t.Helper()
	r := do(t, g.client, http.MethodDelete, g.MCP, hdr("Authorization", bearer(token), "Mcp-Session-Id", sid, "Mcp-Protocol-Version", legacyVersion), nil)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %d %s", r.StatusCode, r.body)
	}
}

// eventually polls cond every 20 ms for at most 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 5s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// listenFor opens sid's listening stream and returns a channel that gets
// the first event line containing want.
func (g *gateway) listenFor(t *testing.T, token, sid, want string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.MCP, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", bearer(token))
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("Mcp-Protocol-Version", legacyVersion)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("GET stream: %d", resp.StatusCode)
	}
	got := make(chan string, 1)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.Contains(sc.Text(), want) {
				got <- sc.Text()
				return
			}
		}
	}()
	return got
}

// Invariant: nothing the gateway keeps per session outlives the session:
// its resource subscriptions and log level go when it is deleted or
// evicted by the per-subject cap.
func TestEndedSessionsLeaveNoState(t *testing.T) {
	t.Parallel()
	sh := newShelf(t)
	g := newGateway(t, gatewayOptions{
		upstreams: []config.Upstream{{Name: "lib", MCP: &config.MCPUpstream{URL: sh.URL}}},
		policy:    map[string]config.ToolRule{},
		configure: func(c *config.Config) {
			c.Policy.Resources = map[string]config.ToolRule{"lib__lib://*": {Scopes: []string{baselineScope}}}
			c.Server.MaxSessionsPerSubject = 1
		},
	})
	alice := g.minter.token("alice", baselineScope)
	hold := func(sid string) {
		t.Helper()
		g.post(t, alice, sid, rpcBody(t, "logging/setLevel", map[string]any{"level": "debug"})).result(t)
		g.post(t, alice, sid, rpcBody(t, "resources/subscribe", map[string]any{"uri": shelfURI})).result(t)
		if subs, owners, levels := g.srv.Gateway.SessionStateSizes(); subs != 1 || owners != 1 || levels != 1 {
			t.Fatalf("while subscribed: %d subscriptions, %d subscribed sessions, %d log levels; want 1 each", subs, owners, levels)
		}
	}
	empty := func(after string) {
		t.Helper()
		eventually(t, "no per-session state after "+after, func() bool {
			subs, owners, levels := g.srv.Gateway.SessionStateSizes()
			return subs == 0 && owners == 0 && levels == 0
		})
	}

	sid := g.initialize(t, alice)
	hold(sid)
	g.deleteSession(t, alice, sid)
	empty("DELETE")
	if g.srv.Gateway.TransportHolds(sid) {
		t.Error("mcp-go still holds the deleted session")
	}

	sid = g.initialize(t, alice)
	hold(sid)
	next := g.initialize(t, alice) // beyond the cap of 1: sid is evicted
	empty("eviction")
	if g.srv.Gateway.TransportHolds(sid) || !g.srv.Gateway.TransportHolds(next) {
		t.Error("mcp-go still holds the evicted session, or no longer the live one")
	}
	wantSessionGone(t, g, alice, sid, "the evicted session")
	g.list(t, alice, next).result(t)
	if live, _ := g.srv.Gateway.SessionCounts(); live != 1 {
		t.Errorf("%d sessions in use, want 1", live)
	}
}

// Invariant: a resource URI nobody has listed costs at most one listing of
// each upstream per interval, whatever the other upstreams do: with one
// upstream down, twenty reads of made-up URIs that the policy allows make
// the healthy upstream list its resources at most once (twice if the
// interval ends during the test), not once per read.
func TestMadeUpResourcesCostOneListingPerUpstream(t *testing.T) {
	t.Parallel()
	sh := newShelf(t)
	g := shelfGateway(t, sh, config.Upstream{Name: "down", MCP: &config.MCPUpstream{URL: closedPortURL(t)}})
	alice := g.minter.token("alice", baselineScope)
	sid := g.initialize(t, alice)
	before := sh.count("resources/list")
	for i := range 20 {
		r := g.post(t, alice, sid, rpcBody(t, "resources/read", map[string]any{"uri": fmt.Sprintf("lib://made-up/%d", i)}))
		if r.StatusCode != http.StatusOK {
			t.Fatalf("read %d: status %d, body %s", i, r.StatusCode, r.body)
		}
	}
	if n := sh.count("resources/list") - before; n > 2 {
		t.Errorf("twenty reads of made-up URIs made the healthy upstream list its resources %d times, want at most 2", n)
	}
}
