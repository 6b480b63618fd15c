package loadgen

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/gatewaystack/gatewaystack/demo"
)

// testTimeout bounds every run of the tests (each is also bounded in
// calls); it is a guard, not a timing assertion.
const testTimeout = 30 * time.Second

// startEcho serves NewEchoServer on 127.0.0.1 and returns its MCP URL.
func startEcho(t testing.TB) string {
	t.Helper()
	srv := httptest.NewServer(NewEchoServer())
	t.Cleanup(srv.Close)
	return srv.URL + EchoPath
}

// startStreaming serves an mcp-go server whose tool "notify" sends a
// notification before its result, so that the answer is an event stream,
// and whose tool "fail" returns a result with isError: true.
func startStreaming(t testing.TB) string {
	t.Helper()
	s := server.NewMCPServer("streaming", "1.0.0", server.WithToolCapabilities(false))
	s.AddTool(mcpgo.NewTool("notify"), func(ctx context.Context, _ mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		err := server.ServerFromContext(ctx).SendNotificationToClient(ctx, "notifications/message",
			map[string]any{"level": "info", "data": "working\nstill working"})
		if err != nil {
			return nil, err
		}
		return mcpgo.NewToolResultText("done"), nil
	})
	s.AddTool(mcpgo.NewTool("fail"), func(context.Context, mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		return mcpgo.NewToolResultError("the backend said no"), nil
	})
	mux := http.NewServeMux()
	mux.Handle("/mcp", server.NewStreamableHTTPServer(s, server.WithEndpointPath("/mcp")))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + "/mcp"
}

// run runs o bounded by testTimeout.
func run(t *testing.T, o Options) (Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	return Run(ctx, o)
}

// checkSane checks the figures every successful run must satisfy.
func checkSane(t *testing.T, r Result) {
	t.Helper()
	l := r.LatencyMS
	if r.Calls <= 0 || r.Errors != 0 || r.FirstError != "" {
		t.Fatalf("calls %d, errors %d (%s); want calls and no errors", r.Calls, r.Errors, r.FirstError)
	}
	if !(0 < l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max && l.Mean <= l.Max) {
		t.Errorf("latency percentiles out of order: %+v", l)
	}
	if r.Responses.JSON+r.Responses.SSE != r.Calls {
		t.Errorf("responses %+v do not add up to %d calls", r.Responses, r.Calls)
	}
	if r.MeasuredSeconds <= 0 || r.CallsPerSecond <= 0 {
		t.Errorf("measured %.3fs, %.1f calls/s; want both above 0", r.MeasuredSeconds, r.CallsPerSecond)
	}
	if _, err := json.Marshal(r); err != nil {
		t.Errorf("result does not encode: %v", err)
	}
}

func TestRunEchoBothEras(t *testing.T) {
	t.Parallel()
	url := startEcho(t)
	for _, era := range []Era{EraSession, EraStateless} {
		t.Run(string(era), func(t *testing.T) {
			t.Parallel()
			r, err := run(t, Options{URL: url, Tool: "echo", Args: json.RawMessage(`{"text":"hi"}`), Era: era,
				Concurrency: 4, Duration: 20 * time.Second, Warmup: 0, MaxCalls: 200})
			if err != nil {
				t.Fatal(err)
			}
			checkSane(t, r)
			if r.Calls != 200 || r.StoppedBy != "max_calls" {
				t.Errorf("calls %d, stopped by %s; want 200 calls, stopped by max_calls", r.Calls, r.StoppedBy)
			}
			if r.Era != era || r.Concurrency != 4 || r.URL != url || r.Tool != "echo" {
				t.Errorf("result describes %s %d %s %s", r.Era, r.Concurrency, r.URL, r.Tool)
			}
			switch era {
			case EraSession:
				if s := r.Sessions; s.Opened != 4 || s.Failed != 0 || s.SetupMSMean <= 0 || s.SetupMSMax < s.SetupMSMean {
					t.Errorf("sessions %+v; want 4 opened with set-up times", s)
				}
			case EraStateless:
				if r.Sessions != (Sessions{}) {
					t.Errorf("stateless sessions %+v; want none", r.Sessions)
				}
			}
		})
	}
}

func TestRunWarmupAndDuration(t *testing.T) {
	t.Parallel()
	url := startEcho(t)
	r, err := run(t, Options{URL: url, Tool: "echo", Concurrency: 2, Duration: 300 * time.Millisecond, Warmup: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	checkSane(t, r)
	if r.StoppedBy != "duration" || r.WarmupCalls == 0 || r.WarmupErrors != 0 {
		t.Errorf("stopped by %s, warmup calls %d errors %d; want duration, warmup calls, no warmup errors", r.StoppedBy, r.WarmupCalls, r.WarmupErrors)
	}
}

func TestRunEventStream(t *testing.T) {
	t.Parallel()
	url := startStreaming(t)
	r, err := run(t, Options{URL: url, Tool: "notify", Concurrency: 2, Duration: 20 * time.Second, MaxCalls: 20})
	if err != nil {
		t.Fatal(err)
	}
	checkSane(t, r)
	if r.Responses.SSE == 0 {
		t.Errorf("responses %+v; want event-stream answers from a tool that notifies", r.Responses)
	}
}

func TestRunErrors(t *testing.T) {
	t.Parallel()
	echo, streaming := startEcho(t), startStreaming(t)
	cases := []struct {
		name, url, tool string
		era             Era
		want            string
	}{
		{"unknown tool, session era", echo, "nope", EraSession, "not found"},
		{"unknown tool, stateless era", echo, "nope", EraStateless, "nope"},
		{"isError result", streaming, "fail", EraSession, "the backend said no"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r, err := run(t, Options{URL: c.url, Tool: c.tool, Era: c.era, Concurrency: 2, Duration: 20 * time.Second, MaxCalls: 10})
			if err != nil {
				t.Fatal(err)
			}
			if r.Calls != 0 || r.Errors != 10 {
				t.Errorf("calls %d, errors %d; want 0 and 10", r.Calls, r.Errors)
			}
			if !strings.Contains(r.FirstError, c.want) {
				t.Errorf("first error %q does not contain %q", r.FirstError, c.want)
			}
			if r.LatencyMS != (Latency{}) {
				t.Errorf("latency %+v of failed calls; want none", r.LatencyMS)
			}
		})
	}
}

func TestRunSetupFailure(t *testing.T) {
	t.Parallel()
	url := strings.TrimSuffix(startEcho(t), EchoPath) + "/not-mcp"
	r, err := run(t, Options{URL: url, Tool: "echo", Concurrency: 3, Duration: time.Second, MaxCalls: 10})
	if err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("error %v; want no session opened, HTTP 404", err)
	}
	if r.StoppedBy != "setup_failed" || r.Sessions.Failed != 3 || r.Sessions.Opened != 0 || !strings.Contains(r.Sessions.FirstError, "initialize") {
		t.Errorf("result %+v; want 3 failed sessions", r)
	}
}

func TestRunInterrupted(t *testing.T) {
	t.Parallel()
	url := startEcho(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	stop := time.AfterFunc(300*time.Millisecond, cancel)
	defer stop.Stop()
	// Bounded by the interruption, by MaxCalls, and by testTimeout.
	r, err := Run(ctx, Options{URL: url, Tool: "echo", Concurrency: 2, Duration: time.Minute, MaxCalls: 50_000_000})
	if err != nil {
		t.Fatal(err)
	}
	if r.StoppedBy != "interrupted" || r.Errors != 0 {
		t.Errorf("stopped by %s with %d errors (%s); want interrupted, the cancelled calls not counted", r.StoppedBy, r.Errors, r.FirstError)
	}
}

func TestRunCPU(t *testing.T) {
	t.Parallel()
	url := startEcho(t) // served by this process
	r, err := run(t, Options{URL: url, Tool: "echo", Concurrency: 2, Duration: 20 * time.Second, MaxCalls: 100, PIDs: []int{os.Getpid()}})
	if err != nil {
		t.Fatal(err)
	}
	checkSane(t, r)
	if r.CPU == nil || len(r.CPU.Processes) != 1 || r.CPU.Processes[0].PID != os.Getpid() || r.CPU.Processes[0].Error != "" || r.CPU.ClockTicks <= 0 {
		t.Fatalf("cpu %+v; want this process's figures", r.CPU)
	}
	if p := r.CPU.Processes[0]; p.CPUMS < 0 || r.CPU.TotalMS != p.CPUMS || r.CPU.TotalMSPerCall != p.CPUMSPerCall {
		t.Errorf("cpu %+v: totals do not match the one process", r.CPU)
	}
}

func TestRunRefusesBadOptions(t *testing.T) {
	t.Parallel()
	ok := Options{URL: "http://127.0.0.1:1/mcp", Tool: "echo", Concurrency: 1, Duration: time.Second}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	for name, mutate := range map[string]func(*Options){
		"no URL":           func(o *Options) { o.URL = "" },
		"relative URL":     func(o *Options) { o.URL = "/mcp" },
		"ftp URL":          func(o *Options) { o.URL = "ftp://127.0.0.1/mcp" },
		"no tool":          func(o *Options) { o.Tool = "" },
		"no concurrency":   func(o *Options) { o.Concurrency = 0 },
		"huge concurrency": func(o *Options) { o.Concurrency = MaxConcurrency + 1 },
		"no duration":      func(o *Options) { o.Duration = 0 },
		"negative warmup":  func(o *Options) { o.Warmup = -time.Second },
		"negative max":     func(o *Options) { o.MaxCalls = -1 },
		"array args":       func(o *Options) { o.Args = json.RawMessage(`[1]`) },
		"broken args":      func(o *Options) { o.Args = json.RawMessage(`{`) },
		"unknown era":      func(o *Options) { o.Era = "2024" },
		"bad pid":          func(o *Options) { o.PIDs = []int{0} },
	} {
		o := ok
		mutate(&o)
		if _, err := Run(context.Background(), o); err == nil {
			t.Errorf("%s: Run accepted %+v", name, o)
		}
	}
	// A process that does not exist is refused before any load.
	o := ok
	o.PIDs = []int{1 << 30}
	if _, err := Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "pid") {
		t.Errorf("missing process: error %v", err)
	}
}

func TestMint(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuerURL := "http://" + ln.Addr().String()
	iss, err := demo.NewIssuer(demo.IssuerOptions{Issuer: issuerURL, Audience: "http://127.0.0.1:8080/mcp"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(iss.Handler())
	_ = srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)

	tok, err := Mint(context.Background(), issuerURL+"/", "alice", "tool:read", "acme")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(tok, ".") != 2 {
		t.Errorf("token %q is not a JWT", tok)
	}
	if _, err := Mint(context.Background(), issuerURL, "", "tool:read", ""); err == nil || !strings.Contains(err.Error(), "HTTP 400") {
		t.Errorf("mint without a subject: error %v; want the issuer's HTTP 400", err)
	}

	srv.Close() // nothing listens there any more
	if _, err := Mint(context.Background(), issuerURL, "alice", "tool:read", ""); err == nil || !strings.Contains(err.Error(), "/mint") {
		t.Errorf("error %v; want a failed mint naming the endpoint", err)
	}
}
