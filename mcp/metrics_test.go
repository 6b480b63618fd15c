package mcp_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatewaystack/gatewaystack/config"
	gsmcp "github.com/gatewaystack/gatewaystack/mcp"
)

// metricValue returns the value of the sample named exactly line (name and
// labels as the exposition writes them), or -1 when absent.
func metricValue(t *testing.T, exposition, sample string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`)
	m := re.FindStringSubmatch(exposition)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("%s: %v", sample, err)
	}
	return v
}

// A scripted run, then a scrape: every figure matches what was done.
func TestMetricsAfterAScriptedRun(t *testing.T) {
	t.Parallel()
	g := newGateway(t, limited(func(l *config.Limits) {
		l.PerSubject = config.Rate{Requests: intp(1000), Window: time.Minute}
		l.LoopGuard.MaxRepeats = intp(0)
	}))
	alice := g.minter.token("alice", baselineScope)
	for i := range 3 {
		g.modernCall(t, alice, "rec__echo", map[string]any{"i": i}).result(t)
	}
	g.modernCall(t, alice, "rec__purge", nil)                                                  // hidden: entitlement missing
	g.modernCall(t, alice, "rec__made_up_"+randomHex(4), nil)                                  // no policy entry
	do(t, g.client, http.MethodPost, g.MCP, hdr("Authorization", "Bearer nope"), []byte(`{}`)) // bad token
	sid := g.initialize(t, alice)
	g.list(t, alice, sid).result(t)

	r := do(t, g.client, http.MethodGet, g.URL+"/metrics", nil, nil)
	if r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %s", r.StatusCode, r.Header.Get("Content-Type"))
	}
	body := string(r.body)
	want := map[string]float64{
		`gatewaystack_requests_total{decision="allow",method="tools/call",reason="allowed",tool="rec__echo",upstream="rec"}`: 3,
		`gatewaystack_requests_total{decision="deny",method="tools/call",reason="entitlement_missing",tool="",upstream=""}`:  1,
		`gatewaystack_requests_total{decision="deny",method="tools/call",reason="tool_unknown",tool="",upstream=""}`:         1,
		`gatewaystack_requests_total{decision="allow",method="tools/list",reason="allowed",tool="",upstream=""}`:             1,
		`gatewaystack_upstream_duration_seconds_count{method="tools/call",upstream="rec"}`:                                   3,
		`gatewaystack_request_duration_seconds_count{decision="allow",method="tools/call"}`:                                  3,
		`gatewaystack_upstream_up{upstream="rec"}`:                                                                           1,
		`gatewaystack_jwks_ready`:                    1,
		`gatewaystack_jwks_keys`:                     1,
		`gatewaystack_limit_store_up{kind="memory"}`: 1,
		`gatewaystack_sessions_active`:               1,
	}
	for sample, v := range want {
		if got := metricValue(t, body, sample); got != v {
			t.Errorf("%s = %v, want %v", sample, got, v)
		}
	}
	if n := metricValue(t, body, `gatewaystack_jwks_fetches_total`); n < 1 {
		t.Errorf("jwks_fetches_total = %v, want ≥ 1", n)
	}
	bad := regexp.MustCompile(`gatewaystack_requests_total\{decision="deny",method="POST",reason="[a-z_]+",tool="",upstream=""\} 1`)
	if !bad.MatchString(body) {
		t.Errorf("the bad-token request is not counted under method POST:\n%s", grep(body, "requests_total"))
	}
	if strings.Contains(body, "made_up") {
		t.Error("a tool name made up by a caller became a label")
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Audit events carry the schema-1 fields: event id, policy version, a
// digest of the arguments (and the arguments themselves only where
// configured), the upstream's time and result size, and the cost charged.
func TestAuditEventFields(t *testing.T) {
	t.Parallel()
	o := budgeted(func(b *config.Budgets) {
		b.PerSubject = config.Budget{Units: 100, Period: time.Hour}
		b.Costs = map[string]int64{"rec__fancy": 4}
	})
	inner := o.configure
	o.configure = func(c *config.Config) {
		inner(c)
		c.Audit.RawArguments = []string{"rec__fancy"}
	}
	g := newGateway(t, o)
	pol := g.srv.Config().Policy
	alice := g.minter.token("alice", baselineScope)
	r1 := g.modernCall(t, alice, "rec__echo", map[string]any{"b": 2, "a": "x"})
	r1.result(t)
	r2 := g.modernCall(t, alice, "rec__fancy", map[string]any{"q": "secret-ish"})
	r2.result(t)

	e1 := g.audit.forRequest(t, r1.Header.Get("X-Request-Id"))[0]
	e2 := g.audit.forRequest(t, r2.Header.Get("X-Request-Id"))[0]
	sum := sha256.Sum256([]byte(`{"a":"x","b":2}`))
	if e1["schema"] != float64(1) || len(e1["event_id"].(string)) != 16 || e1["event_id"] == e2["event_id"] {
		t.Errorf("schema/event_id: %v %v", e1["schema"], e1["event_id"])
	}
	if e1["policy_version"] != gsmcp.PolicyVersion(pol) || len(e1["policy_version"].(string)) != 12 {
		t.Errorf("policy_version %v, want %s", e1["policy_version"], gsmcp.PolicyVersion(pol))
	}
	if e1["args_sha256"] != hex.EncodeToString(sum[:]) {
		t.Errorf("args_sha256 %v, want the digest of the canonical arguments", e1["args_sha256"])
	}
	if _, ok := e1["args"]; ok {
		t.Error("raw arguments of rec__echo were written; only rec__fancy is configured")
	}
	if a, ok := e2["args"].(map[string]any); !ok || a["q"] != "secret-ish" {
		t.Errorf("args of rec__fancy = %v, want the raw arguments", e2["args"])
	}
	if e1["cost"] != float64(1) || e2["cost"] != float64(4) {
		t.Errorf("cost %v and %v, want 1 and 4", e1["cost"], e2["cost"])
	}
	if e1["result_bytes"] == nil || e1["result_bytes"].(float64) < 10 || e1["upstream_latency_ms"] == nil {
		t.Errorf("result_bytes %v, upstream_latency_ms %v", e1["result_bytes"], e1["upstream_latency_ms"])
	}
	if e1["upstream_status"] != float64(200) {
		t.Errorf("upstream_status %v, want 200", e1["upstream_status"])
	}
	if e1["time"] == nil {
		t.Error("no time")
	}
}

// An audit sink that cannot deliver is visible: /health warns about it and
// the metrics count its drops, while requests are still served.
func TestFailingAuditSinkIsReported(t *testing.T) {
	t.Parallel()
	dead := closedPortURL(t)
	g2 := newGateway(t, gatewayOptions{configure: func(c *config.Config) {
		c.Audit.QueueSize = 2
		c.Audit.Webhook = config.AuditWebhook{URL: dead, BatchSize: 1, FlushInterval: time.Millisecond, Timeout: 100 * time.Millisecond, MaxBackoff: time.Second}
		c.Limits.LoopGuard.MaxRepeats = intp(0)
	}})
	tok := g2.minter.token("alice", baselineScope)
	for i := range 10 {
		r := g2.modernCall(t, tok, "rec__echo", map[string]any{"i": i})
		r.result(t)
		// Paced by the stdout sink (a queue of 2 too): the call's line is
		// written before the next call, so only the dead webhook drops.
		g2.audit.forRequest(t, r.Header.Get("X-Request-Id"))
	}
	r := do(t, g2.client, http.MethodGet, g2.URL+"/health", nil, nil)
	if r.StatusCode != http.StatusOK || !strings.Contains(string(r.body), "audit sink webhook dropped") {
		t.Errorf("/health = %d %s, want a warning about the webhook sink", r.StatusCode, r.body)
	}
	m := string(do(t, g2.client, http.MethodGet, g2.URL+"/metrics", nil, nil).body)
	if v := metricValue(t, m, `gatewaystack_audit_dropped_total{sink="webhook"}`); v < 1 {
		t.Errorf("audit_dropped_total{webhook} = %v, want ≥ 1", v)
	}
	if v := metricValue(t, m, `gatewaystack_audit_dropped_total{sink="stdout"}`); v != 0 {
		t.Errorf("audit_dropped_total{stdout} = %v, want 0", v)
	}
}
