package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewaystack/gatewaystack/demo"
	"github.com/gatewaystack/gatewaystack/internal/redistest"
)

// replicaConfig is one of two gateway replicas behind one public URL,
// sharing a Redis limit store and a session key.
func replicaConfig(listenPort, publicPort, issPort int, upstreamURL, redisURL string, perSubject int) string {
	return fmt.Sprintf(`listen: "%[1]s"
outbound: { allow_http_loopback: true }
public_url: "%[2]s"
auth:
  issuer: "%[3]s"
  audience: "%[2]s/mcp"
  baseline_scopes: ["tool:read"]
upstreams:
  - name: notes
    mcp: { url: "%[4]s" }
policy:
  tools:
    "notes__*": { scopes: ["tool:read"] }
limits:
  store: "%[5]s"
  on_store_error: fail_closed
  per_subject: { requests: %[6]d, window: 1m }
  per_tenant: { requests: 0 }
  loop_guard: { max_repeats: 0 }
server:
  session_key: "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
  max_concurrent_per_subject: 256
log:
  level: warn
`, addr(listenPort), baseURL(publicPort), baseURL(issPort), upstreamURL, redisURL, perSubject)
}

// statelessCall sends one 2026-07-28 tools/call and returns the answer's
// X-Request-Id, status and body.
func statelessCall(c *http.Client, url, token, tool string) (string, int, []byte, error) {
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":%q,"arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`, tool)
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return "", 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
	req.Header.Set("Mcp-Method", "tools/call")
	req.Header.Set("Mcp-Name", tool)
	resp, err := c.Do(req)
	if err != nil {
		return "", 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.Header.Get("X-Request-Id"), resp.StatusCode, b, err
}

// Two real gateway processes sharing one real redis-server enforce one
// per-subject limit: 200 concurrent calls of one subject, spread over both,
// are allowed no fewer than the burst N and no more than N plus what the
// bucket refills while they run. When Redis dies, both refuse with 503
// (fail_closed) and report it in /health/ready; when it returns, both
// serve again.
func TestReplicasShareLimitsThroughRedis(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	notes := httptest.NewServer(demo.NewNotes(demo.NotesOptions{}).Handler())
	t.Cleanup(notes.Close)

	const burst = 40 // per minute: one more every 1.5 s
	const callers = 200
	var a, b, issuer *proc
	var ports []int
	for attempt := 0; b == nil; attempt++ {
		if attempt > 1 {
			t.Fatal("ports taken twice in a row")
		}
		ports = freePorts(t, 3)
		var ok bool
		if issuer, ok = tryStart(t, childEnv(), baseURL(ports[2])+"/health",
			"issuer", "--addr", addr(ports[2]), "--audience", baseURL(ports[0])+"/mcp"); !ok {
			continue
		}
		cfgA := writeFile(t, "a.yaml", replicaConfig(ports[0], ports[0], ports[2], notes.URL+"/mcp", rds.URL(), burst))
		cfgB := writeFile(t, "b.yaml", replicaConfig(ports[1], ports[0], ports[2], notes.URL+"/mcp", rds.URL(), burst))
		if a, ok = tryStart(t, childEnv(), baseURL(ports[0])+"/health", "serve", "--config", cfgA); !ok {
			_ = issuer.cmd.Process.Kill()
			continue
		}
		if b, ok = tryStart(t, childEnv(), baseURL(ports[1])+"/health", "serve", "--config", cfgB); !ok {
			_ = issuer.cmd.Process.Kill()
			_ = a.cmd.Process.Kill()
			a = nil
		}
	}
	urls := []string{baseURL(ports[0]) + "/mcp", baseURL(ports[1]) + "/mcp"}
	tok := mint(t, baseURL(ports[2]), "alice", "tool:read", "acme")
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: callers}}

	var mu sync.Mutex
	status := map[int]int{}
	perReplica := [2]int{}
	answered := [2]int{} // 200 or 429, per replica
	var firstOther string
	var wg sync.WaitGroup
	gate := make(chan struct{})
	start := time.Now()
	for i := range callers {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-gate
			_, code, body, err := statelessCall(client, urls[i%2], tok, "notes__list_notes")
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				status[-1]++
				firstOther = firstOf(firstOther, err.Error())
				return
			}
			status[code]++
			switch code {
			case http.StatusOK:
				if !bytes.Contains(body, []byte(`"result"`)) || bytes.Contains(body, []byte(`"isError":true`)) {
					firstOther = firstOf(firstOther, string(body))
				}
				perReplica[i%2]++
				answered[i%2]++
			case http.StatusTooManyRequests:
				answered[i%2]++
				if !bytes.Contains(body, []byte(`"reason":"rate_limited"`)) {
					firstOther = firstOf(firstOther, string(body))
				}
			default:
				firstOther = firstOf(firstOther, fmt.Sprintf("%d %s", code, body))
			}
		}(i)
	}
	close(gate)
	wg.Wait()
	elapsed := time.Since(start)
	allowed := status[http.StatusOK]
	// GCRA bound: burst + rate × elapsed (rounded up).
	refill := int(elapsed / (time.Minute / burst))
	t.Logf("%d concurrent calls over two replicas in %s: %v (per replica allowed %v); bound [%d, %d]",
		callers, elapsed.Round(time.Millisecond), status, perReplica, burst, burst+refill+1)
	if firstOther != "" {
		t.Errorf("an answer was neither a result nor a rate_limited refusal: %s", firstOther)
	}
	if allowed < burst || allowed > burst+refill+1 {
		t.Errorf("allowed %d calls, want between %d and %d", allowed, burst, burst+refill+1)
	}
	if allowed+status[http.StatusTooManyRequests] != callers {
		t.Errorf("answers %v, want only 200 and 429", status)
	}
	// Both replicas took part: each answered its half of the calls with a
	// result or a refusal. Which one's calls arrived first and got the
	// burst is up to the scheduler (one may get all of it); that the two
	// together allowed no more than one bucket's worth, above, is what
	// shows they share it.
	if answered[0] != callers/2 || answered[1] != callers/2 {
		t.Errorf("answers per replica %v (allowed %v), want %d each", answered, perReplica, callers/2)
	}

	// Redis dies: fail_closed holds on both replicas.
	rds.Stop()
	for i, u := range urls {
		_, code, body, err := statelessCall(client, u, tok, "notes__list_notes")
		if err != nil || code != http.StatusServiceUnavailable || !bytes.Contains(body, []byte("limit_unavailable")) {
			t.Errorf("replica %d with Redis down: %d %s %v, want 503 limit_unavailable", i, code, body, err)
		}
		ready := readyState(t, client, strings.TrimSuffix(u, "/mcp")+"/health/ready")
		// (Without an admin token the store's error, which may name its
		// address, is not shown.)
		if ready.code != http.StatusServiceUnavailable || ready.Store.OK || ready.Store.Kind != "redis" || ready.Store.LastError != "" {
			t.Errorf("replica %d /health/ready with Redis down: %+v", i, ready)
		}
	}
	// Redis returns (empty): both serve again.
	rds.Restart()
	for i, u := range urls {
		deadline := time.Now().Add(10 * time.Second)
		var code int
		for {
			_, code, _, _ = statelessCall(client, u, tok, "notes__list_notes")
			if code == http.StatusOK || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if code != http.StatusOK {
			t.Errorf("replica %d after Redis returned: %d, want 200", i, code)
		}
		if ready := readyState(t, client, strings.TrimSuffix(u, "/mcp")+"/health/ready"); ready.code != http.StatusOK || !ready.Store.OK {
			t.Errorf("replica %d /health/ready after Redis returned: %+v", i, ready)
		}
	}
}

// firstOf keeps the first non-empty value.
func firstOf(first, next string) string {
	if first != "" {
		return first
	}
	return next
}

type ready struct {
	code  int
	Store struct {
		Kind      string `json:"kind"`
		OK        bool   `json:"ok"`
		LastError string `json:"last_error"`
	} `json:"limits_store"`
}

func readyState(t *testing.T, c *http.Client, url string) ready {
	t.Helper()
	var r ready
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	r.code = resp.StatusCode
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return r
}
