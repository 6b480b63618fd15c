package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatewaystack/gatewaystack/auth"
	"github.com/gatewaystack/gatewaystack/config"
	"github.com/gatewaystack/gatewaystack/policy"
	"github.com/gatewaystack/gatewaystack/proxy"
	"github.com/gatewaystack/gatewaystack/upstream"
)

// patternTables builds every name-pattern table of the gateway from the
// same patterns, each through its real constructor, and returns, per
// table, the winning pattern for a name ("" when none matches).
func patternTables(t *testing.T, patterns []string) map[string]func(name string) string {
	t.Helper()
	rules := map[string]policy.Rule{}
	lc := config.Limits{
		PerTool: map[string]config.Rate{},
		Budgets: config.Budgets{PerTenant: config.Budget{Units: 1000, Period: time.Hour}, Costs: map[string]int64{}},
		LoopGuard: config.LoopGuard{MaxRepeats: intPtr(100), Window: time.Minute,
			PerTool: map[string]config.LoopRule{}},
	}
	byIndex := func(i int) string {
		if i < 0 || i >= len(patterns) {
			return ""
		}
		return patterns[i]
	}
	for i, p := range patterns {
		rules[p] = policy.Rule{}
		lc.PerTool[p] = config.Rate{Requests: intPtr(i + 1), Window: time.Minute, Burst: 1}
		lc.Budgets.Costs[p] = int64(i + 10) // 1, the default cost, is no pattern
		lc.LoopGuard.PerTool[p] = config.LoopRule{MaxRepeats: intPtr(i + 1), Window: time.Minute}
	}
	az := policy.New(rules, nil, nil)
	l, err := BuildLimits(lc, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]func(string) string{
		"policy (tools, prompts, resources)": func(name string) string {
			return az.Decide(auth.Identity{Subject: "alice"}, policy.Action{Name: name, ArgsKnown: true}).Rule
		},
		"limits.per_tool": func(name string) string {
			rl := l.toolLimit(name)
			if rl == nil {
				return ""
			}
			return byIndex(rl.Rate.Requests - 1)
		},
		"limits.budgets.costs": func(name string) string {
			return byIndex(int(l.Budgets.Cost(name)) - 10)
		},
		"limits.loop_guard.per_tool": func(name string) string {
			_, rule, _ := l.LoopGuard.rule(name)
			for _, p := range patterns {
				if rule == fmt.Sprintf("limits.loop_guard.per_tool[%q]", p) {
					return p
				}
			}
			return ""
		},
	}
}

// Regression invariant: every pattern table — policy tools, prompts and
// resources, limits.per_tool, limits.budgets.costs,
// limits.loop_guard.per_tool, audit.raw_arguments and /proxy routes —
// picks the same pattern for the same name: one matcher, one precedence,
// '*' crossing '/' everywhere.
func TestEveryPatternTableChoosesTheSamePattern(t *testing.T) {
	t.Parallel()
	patterns := []string{
		"notes__*", "notes__write_*", "notes__write_note", "files__file:///data/*",
		"notes__*_note", "notes__wr?te_*", "files__*", "crm__ad*", "crm__ad??",
	}
	tests := []struct{ name, want string }{
		{"notes__write_note", "notes__write_note"},
		{"notes__write_other", "notes__write_*"},
		{"notes__write_a/b", "notes__write_*"},
		{"notes__wrote_x", "notes__wr?te_*"},
		{"notes__read_note", "notes__*_note"},
		{"notes__read", "notes__*"},
		{"notes__a/b/c", "notes__*"},
		{"files__file:///data/a/b.txt", "files__file:///data/*"},
		{"files__file:///data/", "files__file:///data/*"},
		{"files__file:///etc/passwd", "files__*"},
		{"crm__adxy", "crm__ad*"},
		{"crm__ad/y", "crm__ad*"},
		{"other__x", ""},
	}
	tables := patternTables(t, patterns)
	for _, tt := range tests {
		for table, winner := range tables {
			if got := winner(tt.name); got != tt.want {
				t.Errorf("%s: %q is decided by %q, want %q", table, tt.name, got, tt.want)
			}
		}
		// audit.raw_arguments: which pattern matches does not matter,
		// whether one does must agree with the other tables.
		g := &Gateway{o: Options{Audit: AuditOptions{RawArguments: patterns}}}
		st := &requestState{}
		g.auditArguments(st, tt.name, json.RawMessage(`{"a":1}`))
		if recorded := st.event.Args != nil; recorded != (tt.want != "") {
			t.Errorf("audit.raw_arguments: %q recorded=%v, want %v", tt.name, recorded, tt.want != "")
		}
	}
}

// Regression invariant: a /proxy route prefix P is the patterns "P" and
// "P/*" of the same table, so routes and every other table agree, and the
// route is still the longest prefix on a segment boundary.
func TestProxyRoutesAreTheSamePatternTable(t *testing.T) {
	t.Parallel()
	prefixes := []string{"/", "/notes", "/notes/write", "/files/data"}
	var patterns []string
	for _, p := range prefixes {
		if p == "/" {
			patterns = append(patterns, "/", "/*")
			continue
		}
		patterns = append(patterns, p, p+"/*")
	}
	routes := make([]proxy.Route, len(prefixes))
	for i, p := range prefixes {
		routes[i] = proxy.Route{Prefix: p}
	}
	backend := roundTrip(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusNoContent, Body: io.NopCloser(strings.NewReader("")), Header: http.Header{}, Request: r}, nil
	})
	px, err := proxy.New(proxy.Options{Target: "http://backend.invalid", Routes: routes, Transport: backend})
	if err != nil {
		t.Fatal(err)
	}
	route := func(path string) string {
		r := httptest.NewRequest(http.MethodGet, "/proxy"+path, nil)
		r = r.WithContext(upstream.WithIdentity(context.Background(), upstream.HeaderNames{}, auth.Identity{Subject: "alice"}))
		var res proxy.Result
		px.Serve(httptest.NewRecorder(), r, func(r proxy.Result) { res = r })
		return res.Route
	}
	// longestSegmentPrefix is the route rule as documented.
	longestSegmentPrefix := func(path string) string {
		best := ""
		for _, p := range prefixes {
			if (p == "/" || path == p || strings.HasPrefix(path, p+"/")) && len(p) > len(best) {
				best = p
			}
		}
		return best
	}
	tables := patternTables(t, patterns)
	for _, path := range []string{"/", "/x", "/notes", "/notes/", "/notes/1", "/notesX", "/notes/write", "/notes/writeX", "/notes/write/a/b", "/files/data/a/b", "/files/dat", "/files"} {
		want := longestSegmentPrefix(path)
		if got := route(path); got != want {
			t.Errorf("proxy: %s goes to route %q, want %q", path, got, want)
		}
		for table, winner := range tables {
			p := winner(path)
			prefix := strings.TrimSuffix(p, "/*")
			if prefix == "" {
				prefix = "/"
			}
			if prefix != want {
				t.Errorf("%s: %s is decided by %q, the proxy route is %q", table, path, p, want)
			}
		}
	}
}

// Regression invariant: '*' in a per-tool limit pattern crosses '/', as in
// policy: a limit on "files__file:///data/*" covers files in
// subdirectories, and the more specific resource pattern wins over
// "files__*".
func TestToolLimitStarCrossesSlashes(t *testing.T) {
	t.Parallel()
	l, err := BuildLimits(config.Limits{PerTool: map[string]config.Rate{
		"files__file:///data/*": {Requests: intPtr(1), Window: time.Minute, Burst: 1},
		"files__*":              {Requests: intPtr(2), Window: time.Minute, Burst: 1},
	}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"files__file:///data/a.txt":     `limits.per_tool["files__file:///data/*"]`,
		"files__file:///data/sub/a.txt": `limits.per_tool["files__file:///data/*"]`,
		"files__file:///etc/passwd":     `limits.per_tool["files__*"]`,
	} {
		if rl := l.toolLimit(name); rl == nil || rl.Rule != want {
			t.Errorf("%s: limit %v, want %s", name, rl, want)
		}
	}
}

func TestBuildLimitsRefusesMalformedPatterns(t *testing.T) {
	t.Parallel()
	for _, c := range []config.Limits{
		{PerTool: map[string]config.Rate{"notes__[": {Requests: intPtr(1), Window: time.Minute, Burst: 1}}},
		{Budgets: config.Budgets{PerSubject: config.Budget{Units: 5, Period: time.Hour}, Costs: map[string]int64{"notes__[": 2}}},
		{LoopGuard: config.LoopGuard{PerTool: map[string]config.LoopRule{`notes\`: {MaxRepeats: intPtr(1), Window: time.Minute}}}},
	} {
		if _, err := BuildLimits(c, nil, nil); err == nil || !strings.Contains(err.Error(), "pattern") {
			t.Errorf("%+v: err = %v, want a pattern error", c, err)
		}
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func intPtr(n int) *int { return &n }
