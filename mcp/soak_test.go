package mcp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gatewaystack/gatewaystack/config"
	"github.com/gatewaystack/gatewaystack/demo"
	"github.com/gatewaystack/gatewaystack/internal/redistest"
)

// restartable is an HTTP upstream that can be killed and started again on
// the same address.
type restartable struct {
	addr string
	h    http.Handler
	mu   sync.Mutex
	srv  *http.Server
	done chan struct{}
}

func (r *restartable) start(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("restart upstream on %s: %v", r.addr, err)
	}
	r.addr = ln.Addr().String()
	srv := &http.Server{Handler: r.h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	r.mu.Lock()
	r.srv, r.done = srv, done
	r.mu.Unlock()
}

func (r *restartable) stop() {
	r.mu.Lock()
	srv, done := r.srv, r.done
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
		<-done
	}
}

// soakResult tallies what the load saw.
type soakResult struct {
	mu       sync.Mutex
	statuses map[string]int
	ids      []string
	problems []string
	// latencies of the normal callers' answered calls, before and while
	// the abuser runs.
	calm, abused []time.Duration
}

// p99 is the 99th percentile of ds (0 when empty).
func p99(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)*99/100]
}

func (s *soakResult) add(kind string, id string, problem string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.statuses[kind]++
	if id != "" {
		s.ids = append(s.ids, id)
	}
	if problem != "" && len(s.problems) < 20 {
		s.problems = append(s.problems, problem)
	}
}

// TestFaultSoak runs load from many subjects while the upstreams die and
// come back (HTTP and stdio), the JWKS endpoint fails (500, garbage, no
// answer), Redis — the limit store — restarts, and the gateway finally
// shuts down as on SIGTERM. Pass: no panic, no goroutine left behind, the
// heap back near its baseline, every failed call a clean error, no audit
// event lost, and every allowed call authorized. GATEWAYSTACK_SOAK sets
// the duration (default 8s; make soak runs 3m). For the second half of the
// run an abuser with a valid token also sends 1 MB made-up tool names,
// bodies slower than server.read_timeout and floods of event streams; the
// heap must stay bounded and the normal callers keep being served (their
// p99 before and during the abuse is logged). Not parallel: it checks the
// process's goroutines.
func TestFaultSoak(t *testing.T) {
	duration := 8 * time.Second
	if v := os.Getenv("GATEWAYSTACK_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("GATEWAYSTACK_SOAK=%q: %v", v, err)
		}
		duration = d
	}
	leaks := goleak.IgnoreCurrent()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	t.Cleanup(func() {
		// Runs last: after every server, client and process the test
		// started has been closed.
		goleak.VerifyNone(t, leaks, goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
			goleak.IgnoreAnyFunction("internal/poll.runtime_pollWait"))
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		t.Logf("heap: %d KiB before, %d KiB after", before.HeapAlloc>>10, after.HeapAlloc>>10)
		if after.HeapAlloc > before.HeapAlloc+32<<20 {
			t.Errorf("heap grew from %d KiB to %d KiB", before.HeapAlloc>>10, after.HeapAlloc>>10)
		}
	})

	rds := redistest.Start(t)
	stdioBin := buildStdioServer(t)
	notes := &restartable{addr: "127.0.0.1:0", h: demo.NewNotes(demo.NotesOptions{}).Handler()}
	notes.start(t)
	t.Cleanup(notes.stop)

	g := newGateway(t, gatewayOptions{
		upstreams: []config.Upstream{
			{Name: "notes", MCP: &config.MCPUpstream{URL: "http://" + notes.addr + demo.NotesEndpoint}, Timeout: 2 * time.Second},
			{Name: "kid", Stdio: &config.StdioUpstream{Command: stdioBin, StopGrace: time.Second}, Timeout: 2 * time.Second},
		},
		policy: map[string]config.ToolRule{
			"notes__*":                {Scopes: []string{baselineScope}},
			"notes__delete_all_notes": {Scopes: []string{entitleScope}},
			"kid__*":                  {Scopes: []string{baselineScope}},
		},
		configure: func(c *config.Config) {
			c.Limits.Store = rds.URL()
			c.Limits.StoreTimeout = 100 * time.Millisecond
			c.Limits.PerSubject = config.Rate{Requests: intp(1_000_000), Window: time.Minute}
			c.Limits.PerIP = config.Rate{Requests: intp(1_000_000), Window: time.Minute}
			c.Limits.PerTenant = config.Rate{Requests: intp(1_000_000), Window: time.Minute}
			c.Limits.LoopGuard.MaxRepeats = intp(0)
			c.Auth.JWKSRefetchCooldown = 100 * time.Millisecond
			c.Server.MaxBodyBytes = 2 << 20
			c.Server.ReadTimeout = time.Second
		},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, shutdown := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- g.srv.Serve(serveCtx, ln) }()
	url := "http://" + ln.Addr().String() + "/mcp"

	const subjects = 16
	valid := map[string]bool{}
	tokens := make([]string, subjects)
	for i := range tokens {
		sub := fmt.Sprintf("user-%02d", i)
		tokens[i] = g.minter.token(sub, baselineScope)
		valid[sub] = true
	}
	forged := func() string {
		c := g.minter.claims("mallory", baselineScope+" "+entitleScope)
		h, _ := json.Marshal(map[string]any{"alg": "RS256", "typ": "JWT", "kid": "rogue-" + randomHex(3)})
		p, _ := json.Marshal(c)
		return compactJWS(t, json.RawMessage(h), json.RawMessage(p), func(in string) []byte { return signRS256(t, strangerKey(), in) })
	}

	res := &soakResult{statuses: map[string]int{}}
	client := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	abuseFrom := time.Now().Add(duration / 2)
	call := func(tok, tool string, wantResult bool) {
		started := time.Now()
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":%q,"arguments":{"marker":"soak"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`, tool)
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", modernVersion)
		req.Header.Set("Mcp-Method", "tools/call")
		req.Header.Set("Mcp-Name", tool)
		resp, err := client.Do(req)
		if err != nil {
			res.add("transport_error", "", "transport error: "+err.Error())
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("X-Request-Id")
		var msg rpcMessage
		if i := strings.LastIndex(string(b), "data: "); strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") && i >= 0 {
			b = []byte(strings.TrimSpace(string(b[i+6:])))
		}
		jsonErr := json.Unmarshal(b, &msg)
		var oauth struct {
			Error  string `json:"error"`
			Reason string `json:"reason"`
		}
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusServiceUnavailable && msg.Error == nil {
			// Authentication answers are OAuth errors, not JSON-RPC.
			if json.Unmarshal(b, &oauth) == nil && oauth.Error != "" && oauth.Reason != "" {
				if resp.StatusCode == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
					res.add("bad_401", id, "401 without a challenge")
					return
				}
				res.add(fmt.Sprintf("%d/%s", resp.StatusCode, oauth.Reason), id, "")
				return
			}
		}
		switch {
		case id == "":
			res.add("no_request_id", "", fmt.Sprintf("%d without X-Request-Id: %s", resp.StatusCode, b))
		case resp.StatusCode == http.StatusOK && jsonErr == nil && msg.Result != nil:
			if !wantResult {
				res.add("UNAUTHORIZED_RESULT", id, fmt.Sprintf("%s answered with a result for a caller it must refuse: %s", tool, b))
				return
			}
			res.add("result", id, "")
			took := time.Since(started)
			res.mu.Lock()
			if started.Before(abuseFrom) {
				res.calm = append(res.calm, took)
			} else {
				res.abused = append(res.abused, took)
			}
			res.mu.Unlock()
		case jsonErr != nil:
			res.add("bad_body", id, fmt.Sprintf("%d with a body that is not JSON-RPC: %.200s", resp.StatusCode, b))
		case msg.Error == nil:
			res.add("no_error", id, fmt.Sprintf("%d without result or error: %.200s", resp.StatusCode, b))
		case resp.StatusCode == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "":
			res.add("bad_401", id, "401 without a challenge")
		default:
			res.add(fmt.Sprintf("%d/%d", resp.StatusCode, msg.Error.Code), id, "")
		}
	}

	// The faults, on a schedule spread over the run.
	step := duration / 20
	stop := make(chan struct{})
	var faults sync.WaitGroup
	faults.Add(1)
	go func() {
		defer faults.Done()
		at := func(n int) bool {
			select {
			case <-stop:
				return false
			case <-time.After(step * time.Duration(n)):
				return true
			}
		}
		schedule := []struct {
			steps int
			what  string
			do    func()
		}{
			{2, "kill the HTTP upstream", notes.stop},
			{2, "restart the HTTP upstream", func() { notes.start(t) }},
			{1, "crash the stdio upstream", func() { call(tokens[0], "kid__crash", false) }},
			{2, "JWKS answers 500", func() { g.jwks.fault.Store(jwks500) }},
			{2, "JWKS answers garbage", func() { g.jwks.fault.Store(jwksGarbage) }},
			{2, "JWKS does not answer", func() { g.jwks.fault.Store(jwksHang) }},
			{2, "JWKS is back", func() { g.jwks.fault.Store(jwksOK) }},
			{1, "kill Redis", rds.Stop},
			{2, "restart Redis", rds.Restart},
		}
		for _, f := range schedule {
			if !at(f.steps) {
				return
			}
			t.Logf("%s: %s", time.Now().Format("15:04:05.000"), f.what)
			f.do()
		}
	}()

	var wg sync.WaitGroup
	deadline := time.Now().Add(duration)
	// The abuser: one subject with a valid token, from the second half on.
	abuser := g.minter.token("abuser", baselineScope)
	abuse := func(i int) {
		switch i % 3 {
		case 0: // a made-up 1 MB tool name
			body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + strings.Repeat("n", 1<<20) + `"}}`
			req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+abuser)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			if resp, err := client.Do(req); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if len(b) > 4096 {
					res.add("abuse_echoed", "", fmt.Sprintf("a 1 MB name was answered with %d bytes", len(b)))
				}
			}
		case 1: // a body slower than server.read_timeout
			c, err := net.DialTimeout("tcp", ln.Addr().String(), 2*time.Second)
			if err != nil {
				return
			}
			fmt.Fprintf(c, "POST /mcp HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", ln.Addr(), abuser)
			_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
			_, _ = io.Copy(io.Discard, c)
			_ = c.Close()
		default: // a flood of event streams (stateless: answered at once)
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			req.Header.Set("Authorization", "Bearer "+abuser)
			req.Header.Set("Accept", "text/event-stream")
			if resp, err := client.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			cancel()
		}
	}
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Until(abuseFrom))
			for i := 0; time.Now().Before(deadline) && i < 10_000; i++ {
				abuse(i)
			}
		}()
	}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline) && i < 100_000; i++ {
				tok := tokens[(w*7+i)%subjects]
				switch i % 10 {
				case 0:
					call(forged(), "notes__list_notes", false)
				case 1:
					call(tok, "notes__delete_all_notes", false)
				case 2, 3, 4:
					call(tok, "kid__whoami", true)
				default:
					call(tok, "notes__list_notes", true)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	faults.Wait()
	g.jwks.fault.Store(jwksOK)

	// SIGTERM: the listener closes, calls in flight finish, then every
	// audit event is flushed.
	shutdown()
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.srv.Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}

	t.Logf("outcomes over %s: %v", duration, res.statuses)
	t.Logf("normal callers' p99: %s over %d calls before the abuse, %s over %d calls during it",
		p99(res.calm), len(res.calm), p99(res.abused), len(res.abused))
	if len(res.abused) == 0 {
		t.Error("no normal call was served while the abuser ran")
	}
	for _, p := range res.problems {
		t.Error(p)
	}
	if res.statuses["result"] == 0 {
		t.Error("no call succeeded: the soak proves nothing")
	}
	// Every answered request has exactly one audit event, and every
	// allowed tools/call belongs to a valid subject.
	seen := map[string]int{}
	for _, l := range g.audit.lines(t) {
		seen[fmt.Sprint(l["request_id"])]++
		if l["decision"] == "allow" && l["method"] == "tools/call" && !valid[fmt.Sprint(l["subject"])] {
			t.Errorf("an allowed call of %v: %v", l["subject"], l)
		}
	}
	lost := 0
	for _, id := range res.ids {
		if seen[id] != 1 {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d answered requests have no (or more than one) audit event", lost, len(res.ids))
	}
	for _, s := range g.srv.AuditStats() {
		if s.Dropped > 0 {
			t.Errorf("audit sink %s dropped %d events", s.Name, s.Dropped)
		}
	}
}
