package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatewaystack/gatewaystack/loadgen"
)

// pidList is the repeatable --pid flag.
type pidList []int

func (l *pidList) String() string {
	s := make([]string, len(*l))
	for i, p := range *l {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ", ")
}

func (l *pidList) Set(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return fmt.Errorf("%q is not a process id", v)
	}
	*l = append(*l, n)
	return nil
}

// cmdBench runs "gatewaystack bench": concurrent MCP sessions calling one
// tool against a URL, measured by package loadgen.
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", stderr)
	target := fs.String("url", "", "the MCP endpoint, e.g. http://127.0.0.1:8080/mcp (required)")
	token := fs.String("token", "", "bearer token sent with every request")
	mintURL := fs.String("mint", "", "mint a token at this demo issuer (POST <issuer>/mint) instead of --token")
	sub := fs.String("sub", "", "with --mint: the token's subject")
	scope := fs.String("scope", "", "with --mint: space-separated scopes (default: the issuer's default scope)")
	org := fs.String("org", "", "with --mint: the org_id (tenant) claim")
	tool := fs.String("tool", "", "the tool every call invokes (required)")
	argsJSON := fs.String("args", "{}", "the tool's arguments, a JSON object")
	conc := fs.Int("c", 16, "concurrent sessions, each with one call in flight")
	dur := fs.Duration("d", 10*time.Second, "measured duration, after the warmup")
	warmup := fs.Duration("warmup", time.Second, "calls before the measured window, excluded from the figures")
	maxCalls := fs.Int64("max-calls", 0, "end the measured window after this many calls (0: only -d bounds it)")
	era := fs.String("era", string(loadgen.EraSession), "protocol era: session (initialize once per session, 2025-06-18) or stateless (2026-07-28)")
	timeout := fs.Duration("timeout", loadgen.DefaultCallTimeout, "bound on each request")
	var pids pidList
	fs.Var(&pids, "pid", "a server process whose CPU time per call is reported; repeatable")
	asJSON := fs.Bool("json", false, "print one JSON object instead of text")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *target == "":
		return usageError{msg: "--url is required, e.g. --url http://127.0.0.1:8080/mcp", fs: fs}
	case *tool == "":
		return usageError{msg: "--tool is required, e.g. --tool notes__list_notes", fs: fs}
	case *token != "" && *mintURL != "":
		return usageError{msg: "give --token or --mint, not both", fs: fs}
	case *mintURL != "" && *sub == "":
		return usageError{msg: "--mint needs --sub, e.g. --sub alice", fs: fs}
	case *mintURL == "" && (*sub != "" || *scope != "" || *org != ""):
		return usageError{msg: "--sub, --scope and --org go with --mint ISSUER_URL", fs: fs}
	case *timeout <= 0:
		return usageError{msg: "--timeout must be above 0", fs: fs}
	}
	opts := loadgen.Options{
		URL:         *target,
		Tool:        *tool,
		Args:        json.RawMessage(*argsJSON),
		Concurrency: *conc,
		Duration:    *dur,
		Warmup:      *warmup,
		MaxCalls:    *maxCalls,
		Era:         loadgen.Era(*era),
		PIDs:        pids,
		CallTimeout: *timeout,
	}
	if err := opts.Validate(); err != nil {
		return usageError{msg: err.Error(), fs: fs}
	}
	if *mintURL != "" {
		t, err := loadgen.Mint(ctx, *mintURL, *sub, *scope, *org)
		if err != nil {
			return fmt.Errorf("%w (is the demo issuer running? gatewaystack issuer or gatewaystack demo)", err)
		}
		*token = t
	}
	opts.Token = *token
	res, err := loadgen.Run(ctx, opts)
	if res.URL == "" { // invalid options or an unreadable process
		return err
	}
	if *asJSON {
		if werr := json.NewEncoder(stdout).Encode(res); werr != nil {
			return fmt.Errorf("write result: %w", werr)
		}
	} else {
		printBench(stdout, res)
	}
	switch {
	case err != nil:
		return err
	case res.Calls == 0 && res.FirstError != "":
		return fmt.Errorf("every measured call failed (%d); first error: %s", res.Errors, res.FirstError)
	case res.Calls == 0:
		return errors.New("no call was measured")
	}
	return nil
}

// printBench writes a Result as text.
func printBench(w io.Writer, r loadgen.Result) {
	loops := fmt.Sprintf("%d sessions (2025-06-18)", r.Concurrency)
	if r.Era == loadgen.EraStateless {
		loops = fmt.Sprintf("%d concurrent callers (stateless, 2026-07-28)", r.Concurrency)
	}
	fmt.Fprintf(w, "%s: tool %s, %s, %.1fs measured after %.1fs warmup (stopped by %s)\n",
		r.URL, r.Tool, loops, r.MeasuredSeconds, r.WarmupSeconds, strings.ReplaceAll(r.StoppedBy, "_", " "))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "throughput\t%.1f calls/s\t(%d calls; %d JSON, %d SSE answers)\n", r.CallsPerSecond, r.Calls, r.Responses.JSON, r.Responses.SSE)
	errLine := strconv.FormatInt(r.Errors, 10)
	if r.FirstError != "" {
		errLine += "\tfirst: " + r.FirstError
	}
	fmt.Fprintf(tw, "errors\t%s\n", errLine)
	l := r.LatencyMS
	fmt.Fprintf(tw, "latency\tp50 %.3fms  p90 %.3fms  p99 %.3fms  max %.3fms  mean %.3fms\n", l.P50, l.P90, l.P99, l.Max, l.Mean)
	if r.Era == loadgen.EraSession {
		s := r.Sessions
		line := fmt.Sprintf("%d opened, set-up mean %.3fms, max %.3fms", s.Opened, s.SetupMSMean, s.SetupMSMax)
		if s.Failed > 0 {
			line += fmt.Sprintf("; %d failed: %s", s.Failed, s.FirstError)
		}
		fmt.Fprintf(tw, "sessions\t%s\n", line)
	}
	fmt.Fprintf(tw, "warmup\t%d calls, %d errors (not counted)\n", r.WarmupCalls, r.WarmupErrors)
	if r.CPU != nil {
		for _, p := range r.CPU.Processes {
			if p.Error != "" {
				fmt.Fprintf(tw, "cpu pid %d\t%s\n", p.PID, p.Error)
				continue
			}
			fmt.Fprintf(tw, "cpu pid %d\t%.3f ms/call\t(%.0f ms)\n", p.PID, p.CPUMSPerCall, p.CPUMS)
		}
		fmt.Fprintf(tw, "cpu total\t%.3f ms/call\t(%.0f ms, clock %d Hz)\n", r.CPU.TotalMSPerCall, r.CPU.TotalMS, r.CPU.ClockTicks)
	}
	if r.ClientCPU != nil {
		fmt.Fprintf(tw, "cpu bench\t%.3f ms/call\t(%.0f ms, this load generator)\n", r.ClientCPU.CPUMSPerCall, r.ClientCPU.CPUMS)
	}
	_ = tw.Flush()
}
