package conformance

// The official MCP conformance suite, server side, run twice: directly
// against the go-sdk conformance fixture (the control) and through the
// gateway fronting another instance of that fixture. The suite has no token
// option, so a loopback shim in front of the gateway adds a minted bearer
// token and keeps Host as the suite sent it (its DNS-rebinding scenario
// sends a foreign Host and expects the gateway to refuse it).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gatewaystack/gatewaystack/config"
	"github.com/gatewaystack/gatewaystack/demo"
	gsmcp "github.com/gatewaystack/gatewaystack/mcp"
)

// suiteTimeout bounds one run of the official suite.
const suiteTimeout = 2 * time.Minute

// suiteScope is the one scope the suite's gateway asks for.
const suiteScope = "conformance:all"

// TestOfficialServerSuite runs `conformance server --suite all` directly
// against the go-sdk fixture and through the gateway, and requires every
// scenario that passes directly to pass through the gateway. There is no
// expected-failures file. With GATEWAYSTACK_CONFORMANCE_REPORT_DIR set it
// writes results.json and RESULTS.md there (`make conformance-report`).
func TestOfficialServerSuite(t *testing.T) {
	t.Parallel()
	tl := requireTools(t)

	direct := startFixture(t, tl)
	viaGateway := startFixture(t, tl)
	shim := startSuiteGateway(t, viaGateway)

	start := time.Now()
	control := runSuite(t, tl, "direct", direct)
	t.Logf("suite directly against the fixture: %s", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	gateway := runSuite(t, tl, "gateway", shim)
	t.Logf("suite through the gateway: %s", time.Since(start).Round(time.Millisecond))

	res := compareSuiteRuns(t, tl, control, gateway)
	md := res.markdown()
	t.Logf("results:\n%s", md)
	if dir := os.Getenv(envReportDir); dir != "" {
		writeSuiteReport(t, dir, res, md)
	}

	if len(control.results) == 0 {
		t.Fatal("the suite ran no scenario against the fixture")
	}
	for _, s := range res.Scenarios {
		if s.Direct.Status != "pass" {
			t.Logf("control: %s does not pass directly against the fixture (%s); it is not required through the gateway", s.Scenario, s.Direct.summary())
			continue
		}
		if s.Gateway.Status != "pass" {
			t.Errorf("%s passes directly but not through the gateway: %s", s.Scenario, s.Gateway.summary())
		}
	}
}

// startFixture starts the go-sdk conformance fixture with sessions
// (-stateless=false: the mode that passes the whole suite) and returns its
// MCP URL.
func startFixture(t *testing.T, tl tools) string {
	t.Helper()
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p := startProc(t, "everything-server "+addr, "", minimalEnv(t), tl.goSDKServer, "-http="+addr, "-stateless=false")
	waitTCP(t, p, addr)
	return "http://" + addr + "/mcp"
}

// startSuiteGateway builds a gateway in front of the fixture at upstreamURL
// (namespacing off, a policy that allows every tool, prompt and resource to
// the suite's token) and a shim that adds the token; it returns the shim's
// MCP URL, which is also the gateway's public URL and the token audience.
func startSuiteGateway(t *testing.T, upstreamURL string) string {
	t.Helper()
	listen := func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	issLn, gwLn, shimLn := listen(), listen(), listen()
	issuerURL := "http://" + issLn.Addr().String()
	public := "http://" + shimLn.Addr().String()
	resource := public + "/mcp"

	iss, err := demo.NewIssuer(demo.IssuerOptions{Issuer: issuerURL, Audience: resource})
	if err != nil {
		t.Fatal(err)
	}
	issSrv := &httptest.Server{Listener: issLn, Config: &http.Server{Handler: iss.Handler(), ReadHeaderTimeout: 5 * time.Second}}
	issSrv.Start()
	t.Cleanup(issSrv.Close)

	rule := config.ToolRule{Scopes: []string{suiteScope}}
	off := false
	cfg := &config.Config{Listen: gwLn.Addr().String(), PublicURL: public}
	cfg.Auth.Issuer = issuerURL
	cfg.Auth.Audience = resource
	cfg.Auth.JWKSURI = issuerURL + demo.JWKSPath
	cfg.Outbound.AllowHTTPLoopback = true
	cfg.Auth.BaselineScopes = []string{suiteScope}
	cfg.Upstreams = []config.Upstream{{Name: "ev", Prefix: &off, MCP: &config.MCPUpstream{URL: upstreamURL}}}
	cfg.Policy.Tools = map[string]config.ToolRule{"*": rule}
	cfg.Policy.Prompts = map[string]config.ToolRule{"*": rule}
	cfg.Policy.Resources = map[string]config.ToolRule{"ev__*": rule}
	cfg.SetDefaults()

	logs := &tailBuffer{max: 256 << 10}
	srv, err := gsmcp.Build(context.Background(), cfg, gsmcp.BuildOptions{
		Version: "conformance-test", Logger: zerolog.New(logs).With().Timestamp().Logger(), AuditWriter: io.Discard,
	})
	if err != nil {
		t.Fatalf("build gateway: %v", err)
	}
	gwSrv := &httptest.Server{Listener: gwLn, Config: &http.Server{Handler: srv.Gateway.Handler(), ReadHeaderTimeout: 10 * time.Second}}
	gwSrv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Close(ctx)
		gwSrv.CloseClientConnections()
		gwSrv.Close()
		if t.Failed() {
			t.Logf("gateway logs:\n%s", logs.String())
		}
	})
	waitGatewayReady(t, nil, "http://"+gwLn.Addr().String()+"/health")

	tok, err := iss.Mint(demo.MintRequest{Sub: "conformance-suite", Scope: suiteScope, ExpiresIn: 3600})
	if err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse("http://" + gwLn.Addr().String())
	shim := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // the suite's Host, foreign ones included
			r.Out.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		},
		FlushInterval: -1, // event streams pass at once
	}
	shimSrv := &httptest.Server{Listener: shimLn, Config: &http.Server{Handler: shim, ReadHeaderTimeout: 10 * time.Second}}
	shimSrv.Start()
	t.Cleanup(func() {
		shimSrv.CloseClientConnections()
		shimSrv.Close()
	})
	return resource
}

// scenarioResult is one scenario of one suite run.
type scenarioResult struct {
	Status   string         `json:"status"` // pass, fail, missing
	Checks   int            `json:"checks"`
	Failed   int            `json:"failed"`
	Warnings int            `json:"warnings,omitempty"`
	Failures []checkFailure `json:"failures,omitempty"`
}

type checkFailure struct {
	Check   string `json:"check"`
	Message string `json:"message"`
}

func (s scenarioResult) cell() string {
	var c string
	switch s.Status {
	case "pass":
		c = fmt.Sprintf("pass (%d/%d)", s.Checks-s.Failed, s.Checks)
	case "missing":
		return "**no result**"
	default:
		c = fmt.Sprintf("**FAIL** (%d/%d)", s.Checks-s.Failed, s.Checks)
	}
	if s.Warnings > 0 {
		c += fmt.Sprintf(", %d warning(s)", s.Warnings)
	}
	return c
}

func (s scenarioResult) summary() string {
	if len(s.Failures) == 0 {
		return s.cell()
	}
	var msgs []string
	for _, f := range s.Failures {
		msgs = append(msgs, f.Check+": "+f.Message)
	}
	return s.cell() + ": " + strings.Join(msgs, "; ")
}

// suiteRun maps scenario names to results, in the order the suite ran them.
type suiteRun struct {
	order   []string
	results map[string]scenarioResult
}

// scenarioDir matches the suite's result directories,
// server-<scenario>-<timestamp>.
var scenarioDir = regexp.MustCompile(`^server-(.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$`)

// runSuite runs the whole server suite against mcpURL (bounded by
// suiteTimeout) and reads its results.
func runSuite(t *testing.T, tl tools, name, mcpURL string) suiteRun {
	t.Helper()
	out := t.TempDir()
	if d := os.Getenv(envSuiteOutDir); d != "" {
		out = filepath.Join(d, name)
	}
	p := startProc(t, "conformance server ("+name+")", "", minimalEnv(t), tl.node, tl.suite,
		"server", "--url", mcpURL, "--suite", "all", "-o", out)
	p.wait(t, suiteTimeout)
	// Exit 1 means some scenario failed: the results say which.
	if code := p.exitCode(); code != 0 && code != 1 {
		t.Fatalf("conformance server (%s) exited with %d: %s", name, code, p.describe())
	}
	run := suiteRun{results: map[string]scenarioResult{}}
	sc := bufio.NewScanner(strings.NewReader(p.stdout.String()))
	for sc.Scan() {
		if s, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "=== Running scenario: "); ok {
			run.order = append(run.order, strings.TrimSuffix(s, " ==="))
		}
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		m := scenarioDir.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(out, e.Name(), "checks.json"))
		if err != nil {
			t.Errorf("%s: %v", e.Name(), err)
			continue
		}
		var checks []struct {
			ID           string `json:"id"`
			Status       string `json:"status"`
			ErrorMessage string `json:"errorMessage"`
		}
		if err := json.Unmarshal(data, &checks); err != nil {
			t.Errorf("%s/checks.json: %v", e.Name(), err)
			continue
		}
		r := scenarioResult{Status: "pass"}
		for _, c := range checks {
			// As the suite counts: SUCCESS and FAILURE are checks; a
			// WARNING (a SHOULD not met) is neither; INFO is a log entry.
			switch c.Status {
			case "FAILURE":
				r.Checks++
				r.Failed++
				r.Failures = append(r.Failures, checkFailure{Check: c.ID, Message: normalizeMessage(c.ErrorMessage)})
			case "SUCCESS":
				r.Checks++
			case "WARNING":
				r.Warnings++
			}
		}
		if r.Failed > 0 {
			r.Status = "fail"
		}
		run.results[m[1]] = r
		if !slices.Contains(run.order, m[1]) {
			run.order = append(run.order, m[1])
		}
	}
	return run
}

// normalizeMessage removes what changes from run to run (ports) and
// shortens a message for the report.
func normalizeMessage(s string) string {
	s = regexp.MustCompile(`127\.0\.0\.1:\d+`).ReplaceAllString(s, "127.0.0.1:PORT")
	return oneLine(s, 400)
}

// suiteResults is the committed report (results.json).
type suiteResults struct {
	Suite     string          `json:"suite"`
	Node      string          `json:"node"`
	Fixture   string          `json:"fixture"`
	Gateway   string          `json:"gateway"`
	Summary   suiteSummary    `json:"summary"`
	Scenarios []scenarioEntry `json:"scenarios"`
}

type suiteSummary struct {
	Scenarios     int `json:"scenarios"`
	DirectPassed  int `json:"direct_passed"`
	GatewayPassed int `json:"gateway_passed"`
	DirectChecks  int `json:"direct_checks_passed"`
	GatewayChecks int `json:"gateway_checks_passed"`
	DirectTotal   int `json:"direct_checks"`
	GatewayTotal  int `json:"gateway_checks"`
}

type scenarioEntry struct {
	Scenario string         `json:"scenario"`
	Direct   scenarioResult `json:"direct"`
	Gateway  scenarioResult `json:"gateway"`
}

// compareSuiteRuns lines the two runs up by scenario.
func compareSuiteRuns(t *testing.T, tl tools, control, gateway suiteRun) suiteResults {
	t.Helper()
	res := suiteResults{
		Suite:   "@modelcontextprotocol/conformance " + packageVersion(t, filepath.Join(tl.nodeModules, "@modelcontextprotocol", "conformance")) + ": conformance server --suite all",
		Node:    nodeVersion(t, tl.node),
		Fixture: fixtureVersion(t, tl.goSDKServer) + " (-stateless=false)",
		Gateway: "gatewaystack from this tree, built with mcp.Build: one upstream with prefix: false, a policy that allows every tool, prompt and resource, behind a loopback shim that adds a minted bearer token and keeps Host",
	}
	order := slices.Clone(control.order)
	for _, s := range gateway.order {
		if !slices.Contains(order, s) {
			order = append(order, s)
		}
	}
	for _, s := range order {
		e := scenarioEntry{Scenario: s, Direct: control.results[s], Gateway: gateway.results[s]}
		for _, r := range []*scenarioResult{&e.Direct, &e.Gateway} {
			if r.Status == "" {
				r.Status = "missing"
			}
		}
		res.Summary.Scenarios++
		if e.Direct.Status == "pass" {
			res.Summary.DirectPassed++
		}
		if e.Gateway.Status == "pass" {
			res.Summary.GatewayPassed++
		}
		res.Summary.DirectTotal += e.Direct.Checks
		res.Summary.DirectChecks += e.Direct.Checks - e.Direct.Failed
		res.Summary.GatewayTotal += e.Gateway.Checks
		res.Summary.GatewayChecks += e.Gateway.Checks - e.Gateway.Failed
		res.Scenarios = append(res.Scenarios, e)
	}
	return res
}

// markdown renders RESULTS.md.
func (r suiteResults) markdown() string {
	var b strings.Builder
	b.WriteString("# Official MCP conformance suite, server side: direct vs. through the gateway\n\n")
	b.WriteString("Written by `make conformance-report` (the test `TestOfficialServerSuite` in `conformance/`, which `make test` also runs).\n\n")
	fmt.Fprintf(&b, "- suite: %s (Node %s)\n- control: %s\n- gateway: %s\n\n", r.Suite, r.Node, r.Fixture, r.Gateway)
	fmt.Fprintf(&b, "**Scenarios passed: %d/%d directly, %d/%d through the gateway** (checks: %d/%d directly, %d/%d through the gateway).\n\n",
		r.Summary.DirectPassed, r.Summary.Scenarios, r.Summary.GatewayPassed, r.Summary.Scenarios,
		r.Summary.DirectChecks, r.Summary.DirectTotal, r.Summary.GatewayChecks, r.Summary.GatewayTotal)
	b.WriteString("| scenario | direct | gateway |\n|---|---|---|\n")
	for _, s := range r.Scenarios {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", s.Scenario, s.Direct.cell(), s.Gateway.cell())
	}
	var failures []string
	for _, s := range r.Scenarios {
		for _, f := range s.Gateway.Failures {
			failures = append(failures, fmt.Sprintf("- `%s` / `%s`: %s", s.Scenario, f.Check, mdCell(f.Message)))
		}
		if s.Gateway.Status == "missing" {
			failures = append(failures, fmt.Sprintf("- `%s`: no result through the gateway", s.Scenario))
		}
	}
	if len(failures) > 0 {
		b.WriteString("\nFailed checks through the gateway (from the suite's checks.json):\n\n")
		b.WriteString(strings.Join(failures, "\n"))
		b.WriteString("\n")
	}
	var fewer []string
	for _, s := range r.Scenarios {
		if s.Gateway.Status == "pass" && (s.Gateway.Checks != s.Direct.Checks || s.Gateway.Warnings != s.Direct.Warnings) {
			fewer = append(fewer, fmt.Sprintf("- `%s`: %d checks and %d warnings directly, %d checks and %d warnings through the gateway",
				s.Scenario, s.Direct.Checks, s.Direct.Warnings, s.Gateway.Checks, s.Gateway.Warnings))
		}
	}
	if len(fewer) > 0 {
		b.WriteString("\nPassing scenarios whose checks differ (the suite makes some checks only on some kinds of answer, e.g. event streams):\n\n")
		b.WriteString(strings.Join(fewer, "\n"))
		b.WriteString("\n")
	}
	return b.String()
}

// writeSuiteReport writes results.json and RESULTS.md into dir.
func writeSuiteReport(t *testing.T, dir string, res suiteResults, md string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "RESULTS.md"), []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s and %s", filepath.Join(dir, "results.json"), filepath.Join(dir, "RESULTS.md"))
}

// packageVersion reads the version of the npm package in dir.
func packageVersion(t *testing.T, dir string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatalf("%s/package.json: %v", dir, err)
	}
	return p.Version
}

// nodeVersion runs node --version.
func nodeVersion(t *testing.T, node string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		t.Fatalf("%s --version: %v", node, err)
	}
	return strings.TrimSpace(string(out))
}

// fixtureVersion reads the go-sdk module version built into the fixture.
func fixtureVersion(t *testing.T, bin string) string {
	t.Helper()
	const module = "github.com/modelcontextprotocol/go-sdk"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "version", "-m", bin).Output()
	if err == nil {
		for line := range bytes.Lines(out) {
			f := strings.Fields(string(line))
			if len(f) >= 3 && (f[0] == "mod" || f[0] == "dep") && f[1] == module {
				return module + "/conformance/everything-server " + f[2]
			}
		}
	}
	return module + "/conformance/everything-server (version unknown)"
}
