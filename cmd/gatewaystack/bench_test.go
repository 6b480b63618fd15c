package main

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/gatewaystack/gatewaystack/loadgen"
)

// startBenchEcho serves the bench's echo MCP server on 127.0.0.1 and
// returns its MCP URL.
func startBenchEcho(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(loadgen.NewEchoServer())
	t.Cleanup(srv.Close)
	return srv.URL + loadgen.EchoPath
}

// runBench runs "gatewaystack bench args..." in-process.
func runBench(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(append([]string{"bench"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// decodeBench parses the --json output: exactly one JSON object.
func decodeBench(t *testing.T, stdout string) loadgen.Result {
	t.Helper()
	var r loadgen.Result
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("bench --json output is not a result: %v\n%s", err, stdout)
	}
	if dec.More() {
		t.Fatalf("bench --json printed more than one object:\n%s", stdout)
	}
	return r
}

// checkBenchResult checks a successful run's figures.
func checkBenchResult(t *testing.T, r loadgen.Result) {
	t.Helper()
	l := r.LatencyMS
	if r.Calls <= 0 || r.Errors != 0 || r.FirstError != "" {
		t.Errorf("calls %d, errors %d (%s); want calls and no errors", r.Calls, r.Errors, r.FirstError)
	}
	if !(0 < l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max) {
		t.Errorf("latency percentiles out of order: %+v", l)
	}
	if r.CallsPerSecond <= 0 || r.MeasuredSeconds <= 0 {
		t.Errorf("%.1f calls/s over %.3fs; want both above 0", r.CallsPerSecond, r.MeasuredSeconds)
	}
}

func TestBenchEchoServer(t *testing.T) {
	t.Parallel()
	url := startBenchEcho(t)
	for _, era := range []string{"session", "stateless"} {
		t.Run(era, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runBench(t, "--url", url, "--tool", "echo", "--args", `{"text":"hi"}`,
				"-c", "4", "-d", "1s", "--warmup", "0s", "--max-calls", "200", "--era", era, "--json")
			if code != 0 {
				t.Fatalf("exit %d, stderr:\n%s", code, stderr)
			}
			r := decodeBench(t, stdout)
			checkBenchResult(t, r)
			if r.Calls > 200 || string(r.Era) != era || r.Concurrency != 4 {
				t.Errorf("calls %d, era %s, concurrency %d; want at most 200, %s, 4", r.Calls, r.Era, r.Concurrency, era)
			}
			if era == "session" && r.Sessions.Opened != 4 {
				t.Errorf("sessions %+v; want 4 opened", r.Sessions)
			}
		})
	}
}

func TestBenchTextOutput(t *testing.T) {
	t.Parallel()
	url := startBenchEcho(t)
	code, stdout, stderr := runBench(t, "--url", url, "--tool", "echo", "-c", "2", "-d", "1s", "--warmup", "0s", "--max-calls", "50")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	for _, want := range []string{url, "calls/s", "errors", "p50", "p90", "p99", "max", "sessions", "2 opened"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("text output lacks %q:\n%s", want, stdout)
		}
	}
}

func TestBenchEveryCallFails(t *testing.T) {
	t.Parallel()
	url := startBenchEcho(t)
	for _, era := range []string{"session", "stateless"} {
		t.Run(era, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runBench(t, "--url", url, "--tool", "no_such_tool", "-c", "2", "-d", "1s",
				"--warmup", "0s", "--max-calls", "20", "--era", era, "--json")
			if code != 1 {
				t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
			}
			r := decodeBench(t, stdout)
			if r.Calls != 0 || r.Errors == 0 || !strings.Contains(r.FirstError, "no_such_tool") {
				t.Errorf("calls %d, errors %d, first error %q; want only errors naming the tool", r.Calls, r.Errors, r.FirstError)
			}
			if !strings.Contains(stderr, "every measured call failed") || !strings.Contains(stderr, "no_such_tool") {
				t.Errorf("stderr does not explain the failure:\n%s", stderr)
			}
		})
	}
}

func TestBenchUsageErrors(t *testing.T) {
	t.Parallel()
	url := "http://127.0.0.1:1/mcp" // never contacted: the flags are refused first
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no url", []string{"--tool", "echo"}, "--url is required"},
		{"no tool", []string{"--url", url}, "--tool is required"},
		{"token and mint", []string{"--url", url, "--tool", "t", "--token", "x", "--mint", "http://127.0.0.1:1", "--sub", "a"}, "not both"},
		{"mint without sub", []string{"--url", url, "--tool", "t", "--mint", "http://127.0.0.1:1"}, "--mint needs --sub"},
		{"sub without mint", []string{"--url", url, "--tool", "t", "--sub", "alice"}, "go with --mint"},
		{"args not an object", []string{"--url", url, "--tool", "t", "--args", "[1]"}, "not a JSON object"},
		{"bad era", []string{"--url", url, "--tool", "t", "--era", "2024"}, "era"},
		{"no concurrency", []string{"--url", url, "--tool", "t", "-c", "0"}, "concurrency"},
		{"zero duration", []string{"--url", url, "--tool", "t", "-d", "0s"}, "duration"},
		{"relative url", []string{"--url", "/mcp", "--tool", "t"}, "not an absolute"},
		{"bad pid", []string{"--url", url, "--tool", "t", "--pid", "x"}, "not a process id"},
		{"stray argument", []string{"--url", url, "--tool", "t", "extra"}, "unexpected argument"},
	}
	for _, c := range cases {
		code, _, stderr := runBench(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", c.name, code, stderr, c.want)
		}
	}
	if code, _, stderr := runBench(t, "-h"); code != 0 || !strings.Contains(stderr, "usage: gatewaystack bench") || !strings.Contains(stderr, "-max-calls") {
		t.Errorf("-h: exit %d, output %q; want 0 and the flags", code, stderr)
	}
}

// TestBenchThroughDemoGateway benches a real gateway: `gatewaystack demo`
// (issuer, notes server, gateway with auth, policy, limits and audit), with
// a token minted by --mint and the demo process's CPU time per call. The
// calls stay under the demo's loop guard (5 identical calls a minute per
// subject): one subject per era.
func TestBenchThroughDemoGateway(t *testing.T) {
	t.Parallel()
	d := startDemo(t)
	pid := strconv.Itoa(d.p.cmd.Process.Pid)
	for _, c := range []struct{ era, sub string }{{"session", "alice"}, {"stateless", "bob"}} {
		t.Run(c.era, func(t *testing.T) {
			code, stdout, stderr := runBench(t, "--url", d.gateway, "--mint", d.issuer, "--sub", c.sub, "--scope", "tool:read", "--org", "acme",
				"--tool", "notes__list_notes", "-c", "2", "-d", "10s", "--warmup", "0s", "--max-calls", "4", "--era", c.era, "--pid", pid, "--json")
			if code != 0 {
				t.Fatalf("exit %d, stderr:\n%s\nstdout:\n%s", code, stderr, stdout)
			}
			r := decodeBench(t, stdout)
			checkBenchResult(t, r)
			if r.Calls != 4 || r.StoppedBy != "max_calls" {
				t.Errorf("calls %d, stopped by %s; want 4, max_calls", r.Calls, r.StoppedBy)
			}
			if r.CPU == nil || len(r.CPU.Processes) != 1 || r.CPU.Processes[0].Error != "" {
				t.Errorf("cpu %+v; want the demo process's figures", r.CPU)
			}
		})
	}

	// Without a token the gateway answers 401 to initialize: no session.
	code, _, stderr := runBench(t, "--url", d.gateway, "--tool", "notes__list_notes", "-c", "1", "-d", "1s", "--warmup", "0s")
	if code != 1 || !strings.Contains(stderr, "HTTP 401") {
		t.Errorf("without a token: exit %d, stderr %q; want 1 and HTTP 401", code, stderr)
	}
}
