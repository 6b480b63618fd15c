package mcp_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/gatewaystack/gatewaystack/config"
)

func intp(n int) *int { return &n }

// limited configures the gateway's limits; unset limits are turned off so
// each test sees only the limit it is about.
func limited(set func(l *config.Limits)) gatewayOptions {
	return gatewayOptions{configure: func(c *config.Config) {
		c.Limits.PerSubject.Requests = intp(0)
		c.Limits.PerTenant.Requests = intp(0)
		c.Limits.PerIP.Requests = intp(0)
		set(&c.Limits)
	}}
}

// refusal is the data of a -32029 error.
type refusal struct {
	Reason     string `json:"reason"`
	Scope      string `json:"scope"`
	RetryAfter int    `json:"retryAfter"`
	Limit      struct {
		Rule     string `json:"rule"`
		Requests int    `json:"requests"`
		Window   string `json:"window"`
		Burst    int    `json:"burst"`
	} `json:"limit"`
}

// wantLimited asserts a rate-limit refusal of scope and returns its data.
func wantLimited(t *testing.T, g *gateway, r response, scope, rule string) refusal {
	t.Helper()
	if r.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429: %s", r.StatusCode, r.body)
	}
	code, _, raw := r.rpcError(t)
	if code != -32029 {
		t.Fatalf("JSON-RPC code %d, want -32029", code)
	}
	var d refusal
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("data %s: %v", raw, err)
	}
	if d.Reason != "rate_limited" || d.Scope != scope || d.Limit.Rule != rule || d.RetryAfter < 1 {
		t.Fatalf("data %+v, want reason rate_limited, scope %s, rule %s, retryAfter ≥ 1", d, scope, rule)
	}
	if ra := r.Header.Get("Retry-After"); ra != strconv.Itoa(d.RetryAfter) {
		t.Fatalf("Retry-After %q, data.retryAfter %d", ra, d.RetryAfter)
	}
	lines := g.audit.forRequest(t, r.Header.Get("X-Request-Id"))
	if len(lines) != 1 {
		t.Fatalf("audit lines %v, want one", lines)
	}
	l := lines[0]
	if l["decision"] != "limited" || l["reason"] != "rate_limited" || l["status"] != float64(429) || l["rule"] != rule {
		t.Fatalf("audit %v, want decision limited, reason rate_limited, status 429, rule %s", l, rule)
	}
	return d
}

func TestPerSubjectLimitIsolatesSubjects(t *testing.T) {
	t.Parallel()
	g := newGateway(t, limited(func(l *config.Limits) { l.PerSubject = config.Rate{Requests: intp(3), Window: time.Minute} }))
	alice := g.minter.token("alice", baselineScope)
	bob := g.minter.token("bob", baselineScope)
	for i := range 3 {
		g.modernCall(t, alice, "rec__echo", map[string]any{"i": i}).result(t)
	}
	r := g.modernCall(t, alice, "rec__echo", nil)
	d := wantLimited(t, g, r, "subject", "limits.per_subject")
	// 3 per minute refill one every 20 s.
	if d.RetryAfter != 20 || d.Limit.Requests != 3 || d.Limit.Window != "1m0s" || d.Limit.Burst != 3 {
		t.Errorf("data %+v, want retryAfter 20 and the limit 3/1m0s burst 3", d)
	}
	for h, want := range map[string]string{"RateLimit-Limit": "3", "RateLimit-Remaining": "0", "RateLimit-Reset": "20"} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	g.modernCall(t, bob, "rec__echo", nil).result(t)
	// Every verb counts, not only tools/call: alice's tools/list is refused too.
	wantLimited(t, g, g.post(t, alice, "", rpcBody(t, "tools/list", modernParams(nil)), "Mcp-Protocol-Version", modernVersion, "Mcp-Method", "tools/list"), "subject", "limits.per_subject")
}

// Invariant: the limit refills smoothly (GCRA): after a refusal, waiting
// one interval (window/requests) is enough, not a whole window.
func TestPerSubjectLimitRefillsSmoothly(t *testing.T) {
	t.Parallel()
	g := newGateway(t, limited(func(l *config.Limits) {
		l.PerSubject = config.Rate{Requests: intp(10), Window: time.Second, Burst: 1}
	}))
	tok := g.minter.token("alice", baselineScope)
	g.modernCall(t, tok, "rec__echo", nil).result(t)
	d := wantLimited(t, g, g.modernCall(t, tok, "rec__echo", nil), "subject", "limits.per_subject")
	if d.RetryAfter != 1 {
		t.Errorf("retryAfter %d, want 1 (100 ms rounded up)", d.RetryAfter)
	}
	time.Sleep(150 * time.Millisecond)
	g.modernCall(t, tok, "rec__echo", nil).result(t)
}

func TestPerTenantLimitSpansSubjects(t *testing.T) {
	t.Parallel()
	g := newGateway(t, limited(func(l *config.Limits) {
		l.PerTenant = config.Rate{Requests: intp(4), Window: time.Minute}
		l.PerSubject = config.Rate{Requests: intp(100), Window: time.Minute}
	}))
	alice, bob := g.minter.token("alice", baselineScope), g.minter.token("bob", baselineScope)
	for range 2 {
		g.modernCall(t, alice, "rec__echo", nil).result(t)
		g.modernCall(t, bob, "rec__echo", nil).result(t)
	}
	// carol of the same tenant (acme) is refused: the tenant spent its 4.
	wantLimited(t, g, g.modernCall(t, g.minter.token("carol", baselineScope), "rec__echo", nil), "tenant", "limits.per_tenant")
	// Another tenant is not.
	c := g.minter.claims("dave", baselineScope)
	c["org_id"] = "globex"
	g.modernCall(t, g.minter.sign(c), "rec__echo", nil).result(t)
}

func TestPerToolLimit(t *testing.T) {
	t.Parallel()
	g := newGateway(t, limited(func(l *config.Limits) {
		l.PerTool = map[string]config.Rate{
			"rec__*":    {Requests: intp(100), Window: time.Minute, Burst: 100},
			"rec__echo": {Requests: intp(2), Window: time.Minute, Burst: 2},
		}
	}))
	alice, bob := g.minter.token("alice", baselineScope), g.minter.token("bob", baselineScope)
	g.modernCall(t, alice, "rec__echo", nil).result(t)
	g.modernCall(t, alice, "rec__echo", nil).result(t)
	wantLimited(t, g, g.modernCall(t, alice, "rec__echo", nil), "tool", `limits.per_tool["rec__echo"]`)
	g.modernCall(t, alice, "rec__fancy", nil).result(t) // the glob's own, larger limit
	g.modernCall(t, bob, "rec__echo", nil).result(t)    // per subject
	if n := g.upstream.toolRunsNamed("echo"); n != 3 {
		t.Errorf("the upstream ran echo %d times, want 3: a refused call must not reach it", n)
	}
}

// badToken is signed by a key the issuer never published, under a kid the
// JWKS does not hold: verifying it costs a signature check and a JWKS
// refetch.
func badToken(t testing.TB, g *gateway, n int) string {
	return compactJWS(t, map[string]any{"alg": "RS256", "typ": "JWT", "kid": "unknown-" + strconv.Itoa(n)},
		g.minter.claims("mallory", baselineScope), func(in string) []byte { return signRS256(t, strangerKey(), in) })
}

// Invariant: once a client IP has spent its allowance of failed
// credentials, its requests are refused before any token is verified, so
// a flood of bad tokens costs no verification and no JWKS fetch.
func TestPerIPLimitRefusesBadTokenFloodsBeforeVerification(t *testing.T) {
	t.Parallel()
	o := limited(func(l *config.Limits) { l.PerIP = config.Rate{Requests: intp(3), Window: time.Minute} })
	limits := o.configure
	o.configure = func(c *config.Config) {
		limits(c)
		c.Auth.JWKSRefetchCooldown = time.Nanosecond // every unknown kid refetches
	}
	g := newGateway(t, o)
	good := g.minter.token("alice", baselineScope)
	// Authenticated traffic does not count against the IP.
	for range 5 {
		g.modernCall(t, good, "rec__echo", nil).result(t)
	}
	start := g.jwks.fetches.Load()
	for i := range 3 {
		if r := g.modernCall(t, badToken(t, g, i), "rec__echo", nil); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("bad token %d: status %d, want 401", i, r.StatusCode)
		}
	}
	before := g.jwks.fetches.Load()
	if before == start {
		t.Fatal("verifying the bad tokens fetched no JWKS; the test would prove nothing")
	}
	deadline := time.Now().Add(10 * time.Second)
	for i := 3; i < 40 && time.Now().Before(deadline); i++ {
		wantLimited(t, g, g.modernCall(t, badToken(t, g, i), "rec__echo", nil), "ip", "limits.per_ip")
	}
	if after := g.jwks.fetches.Load(); after != before {
		t.Errorf("refused requests caused %d JWKS fetches, want 0", after-before)
	}
	// The IP is over: even a good token is refused (cheaply) until it refills.
	wantLimited(t, g, g.modernCall(t, good, "rec__echo", nil), "ip", "limits.per_ip")
}

// Invariant: X-Forwarded-For / Forwarded name the client only when the
// peer is a trusted proxy, and only the part the proxies wrote counts.
func TestClientIPFromTrustedProxiesOnly(t *testing.T) {
	t.Parallel()
	flood := func(t *testing.T, g *gateway, header ...string) []int {
		t.Helper()
		var statuses []int
		for i := range 3 {
			h, body := g.modernRequest(badToken(t, g, i), "rec__echo", nil, header...)
			statuses = append(statuses, do(t, g.client, http.MethodPost, g.MCP, h, body).StatusCode)
		}
		return statuses
	}
	perIP2 := func(trusted ...string) gatewayOptions {
		return limited(func(l *config.Limits) {
			l.PerIP = config.Rate{Requests: intp(2), Window: time.Minute}
			l.TrustedProxies = trusted
		})
	}
	want := func(t *testing.T, got []int, want ...int) {
		t.Helper()
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("statuses %v, want %v", got, want)
			}
		}
	}

	t.Run("behind a trusted proxy each forwarded client has its own allowance", func(t *testing.T) {
		t.Parallel()
		g := newGateway(t, perIP2("127.0.0.0/8"))
		want(t, flood(t, g, "X-Forwarded-For", "203.0.113.5"), 401, 401, 429)
		want(t, flood(t, g, "X-Forwarded-For", "203.0.113.6"), 401, 401, 429)
		// Spoofed entries left of what the proxy wrote are ignored.
		want(t, flood(t, g, "X-Forwarded-For", "198.51.100.9, 203.0.113.5"), 429, 429, 429)
		// RFC 7239 Forwarded when there is no X-Forwarded-For.
		want(t, flood(t, g, "Forwarded", `for="[2001:db8:cafe::17]:4711";proto=https`), 401, 401, 429)
		want(t, flood(t, g, "Forwarded", `for="[2001:db8:cafe::99]"`), 429, 429, 429) // same /64
	})
	t.Run("from an untrusted peer forwarded headers are ignored", func(t *testing.T) {
		t.Parallel()
		g := newGateway(t, perIP2("10.0.0.0/8"))
		want(t, flood(t, g, "X-Forwarded-For", "203.0.113.5"), 401, 401, 429)
		want(t, flood(t, g, "X-Forwarded-For", "203.0.113.6"), 429, 429, 429)
		want(t, flood(t, g, "Forwarded", "for=192.0.2.1"), 429, 429, 429)
	})
}
