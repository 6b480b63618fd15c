// Package loadgen drives tools/call load against an MCP server over
// streamable HTTP and measures it: throughput, exact latency percentiles,
// errors, session set-up time and, for given process ids, the server
// processes' CPU time per call. It is the engine of `gatewaystack bench`.
//
// Run opens Options.Concurrency independent MCP sessions (or, in the
// stateless 2026-07-28 era, independent request loops) and calls one tool in
// a loop on each, first for Options.Warmup (not measured), then for
// Options.Duration or until Options.MaxCalls calls have started, whichever
// comes first. The load generator is meant to cost little next to what it
// measures: one tuned HTTP/1.1 transport with a keep-alive connection per
// session, request bodies built once per session, responses read into a
// buffer reused by each session and parsed without allocating.
package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Era is the MCP protocol era the load generator speaks.
type Era string

const (
	// EraSession is the session era: initialize once per session
	// (protocol version SessionProtocolVersion), then tools/call carrying
	// the Mcp-Session-Id the server assigned.
	EraSession Era = "session"
	// EraStateless is the stateless 2026-07-28 era: no initialize; every
	// request carries the protocol version in its headers and _meta.
	EraStateless Era = "stateless"
)

const (
	// SessionProtocolVersion is the protocol version offered in initialize.
	SessionProtocolVersion = "2025-06-18"
	// StatelessProtocolVersion is the protocol version of EraStateless.
	StatelessProtocolVersion = "2026-07-28"
	// DefaultCallTimeout bounds each request when Options.CallTimeout is 0.
	DefaultCallTimeout = 30 * time.Second
	// MaxConcurrency is the largest accepted Options.Concurrency.
	MaxConcurrency = 10000
	// MaxDuration is the longest accepted Options.Duration and Warmup.
	MaxDuration = 24 * time.Hour
	// MaxResponseBytes is the largest response body kept for parsing; a
	// larger one is still read to its end, and counts as an error.
	MaxResponseBytes = 16 << 20
)

// Options configures Run.
type Options struct {
	// URL is the MCP endpoint, e.g. http://127.0.0.1:8080/mcp. Required.
	URL string
	// Token, when set, is sent as "Authorization: Bearer <Token>".
	Token string
	// Tool is the name of the tool every call invokes. Required.
	Tool string
	// Args are the tool's arguments, a JSON object. Empty means {}.
	Args json.RawMessage
	// Concurrency is the number of sessions calling at once, 1 to
	// MaxConcurrency. Each has one call in flight at a time.
	Concurrency int
	// Duration is the measured window, after the warmup. Required.
	Duration time.Duration
	// Warmup is how long calls run, unmeasured, before the window opens.
	Warmup time.Duration
	// MaxCalls, when positive, ends the measured window once that many
	// measured calls have started (they all complete).
	MaxCalls int64
	// Era is the protocol era; empty means EraSession.
	Era Era
	// PIDs are server processes whose CPU time over the measured window is
	// reported (Linux /proc). Each must exist when Run starts.
	PIDs []int
	// CallTimeout bounds each request; 0 means DefaultCallTimeout.
	CallTimeout time.Duration
}

// Result is what Run measured. Durations are in milliseconds or seconds as
// their names say; latencies are of successful measured calls.
type Result struct {
	URL         string `json:"url"`
	Tool        string `json:"tool"`
	Era         Era    `json:"era"`
	Concurrency int    `json:"concurrency"`
	// WarmupSeconds is the warmup asked for.
	WarmupSeconds float64 `json:"warmup_seconds"`
	// MeasuredSeconds is the measured window: from the end of the warmup
	// until the last measured call completed.
	MeasuredSeconds float64 `json:"measured_seconds"`
	// StoppedBy says what ended the run: "duration", "max_calls",
	// "interrupted" (the context ended) or "setup_failed" (no session
	// could be opened).
	StoppedBy string `json:"stopped_by"`
	// Calls is the number of measured calls that returned a result that is
	// not isError.
	Calls int64 `json:"calls"`
	// CallsPerSecond is Calls / MeasuredSeconds.
	CallsPerSecond float64 `json:"calls_per_second"`
	// Errors is the number of measured calls that failed: a transport
	// error, a non-2xx status, no response, a JSON-RPC error or a result
	// with isError: true.
	Errors int64 `json:"errors"`
	// FirstError describes the first measured failure.
	FirstError string `json:"first_error,omitempty"`
	// WarmupCalls and WarmupErrors are the calls made during the warmup,
	// excluded from every other figure.
	WarmupCalls  int64 `json:"warmup_calls"`
	WarmupErrors int64 `json:"warmup_errors"`
	// Responses counts the measured successful calls by response type.
	Responses Responses `json:"responses"`
	// LatencyMS are the latency percentiles of the successful measured
	// calls, in milliseconds, exact (nearest rank over every latency).
	LatencyMS Latency `json:"latency_ms"`
	// Sessions describes the session set-up (session era only).
	Sessions Sessions `json:"sessions"`
	// CPU is the server processes' CPU time, when PIDs were given.
	CPU *CPU `json:"cpu,omitempty"`
	// ClientCPU is the load generator's own process's CPU time over the
	// measured window (Linux), to show what the load itself cost.
	ClientCPU *ProcessCPU `json:"client_cpu,omitempty"`
}

// Responses counts successful calls by the content type of the answer.
type Responses struct {
	JSON int64 `json:"json"`
	SSE  int64 `json:"sse"`
}

// Latency holds latency figures in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// Sessions describes the initialize handshakes of the session era: each is
// an initialize request and the notifications/initialized that follows.
type Sessions struct {
	Opened      int     `json:"opened"`
	Failed      int     `json:"failed"`
	SetupMSMean float64 `json:"setup_ms_mean"`
	SetupMSMax  float64 `json:"setup_ms_max"`
	// FirstError describes the first failed set-up.
	FirstError string `json:"first_error,omitempty"`
}

// CPU is the CPU time (user + system) the server processes consumed over
// the measured window.
type CPU struct {
	// ClockTicks is the kernel's clock ticks per second (CLK_TCK): the
	// resolution of the figures.
	ClockTicks int64        `json:"clock_ticks"`
	Processes  []ProcessCPU `json:"processes"`
	// TotalMS is the sum over Processes; TotalMSPerCall divides it by Calls.
	TotalMS        float64 `json:"total_ms"`
	TotalMSPerCall float64 `json:"total_ms_per_call"`
}

// ProcessCPU is one process's CPU time over the measured window.
type ProcessCPU struct {
	PID          int     `json:"pid"`
	CPUMS        float64 `json:"cpu_ms"`
	CPUMSPerCall float64 `json:"cpu_ms_per_call"`
	// Error is set when the process could not be read at the end.
	Error string `json:"error,omitempty"`
}

// Validate reports the first problem of o, or nil.
func (o Options) Validate() error {
	_, err := o.check()
	return err
}

// check validates o and returns it with defaults applied.
func (o Options) check() (Options, error) {
	u, err := url.Parse(o.URL)
	switch {
	case o.URL == "":
		return o, errors.New("the MCP endpoint URL is required")
	case err != nil:
		return o, fmt.Errorf("endpoint URL: %w", err)
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return o, fmt.Errorf("endpoint URL %q is not an absolute http or https URL", o.URL)
	case o.Tool == "":
		return o, errors.New("the tool name is required")
	case o.Concurrency < 1 || o.Concurrency > MaxConcurrency:
		return o, fmt.Errorf("concurrency %d is not between 1 and %d", o.Concurrency, MaxConcurrency)
	case o.Duration <= 0 || o.Duration > MaxDuration:
		return o, fmt.Errorf("duration %s is not above 0 and at most %s", o.Duration, MaxDuration)
	case o.Warmup < 0 || o.Warmup > MaxDuration:
		return o, fmt.Errorf("warmup %s is not between 0 and %s", o.Warmup, MaxDuration)
	case o.MaxCalls < 0:
		return o, fmt.Errorf("max calls %d is negative", o.MaxCalls)
	case o.CallTimeout < 0:
		return o, fmt.Errorf("call timeout %s is negative", o.CallTimeout)
	}
	switch o.Era {
	case "":
		o.Era = EraSession
	case EraSession, EraStateless:
	default:
		return o, fmt.Errorf("era %q is not %s or %s", o.Era, EraSession, EraStateless)
	}
	if len(o.Args) == 0 {
		o.Args = json.RawMessage(`{}`)
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(o.Args, &obj) != nil || obj == nil {
		return o, fmt.Errorf("arguments %s are not a JSON object", o.Args)
	}
	if o.CallTimeout == 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	for _, pid := range o.PIDs {
		if pid <= 0 {
			return o, fmt.Errorf("pid %d is not a process id", pid)
		}
	}
	return o, nil
}

// runState is what the workers of one run share.
type runState struct {
	measureFrom time.Time // end of the warmup
	end         time.Time // no call starts at or after it
	maxCalls    int64
	tickets     atomic.Int64 // measured calls started
	maxReached  atomic.Bool

	firstSet atomic.Bool
	mu       sync.Mutex
	firstErr string
}

// fail records the description of a failure when it is the first one.
func (r *runState) fail(describe func() string) {
	if r.firstSet.Load() {
		return
	}
	msg := describe()
	r.mu.Lock()
	if r.firstErr == "" {
		r.firstErr = msg
		r.firstSet.Store(true)
	}
	r.mu.Unlock()
}

// Run opens the sessions, runs the warmup and the measured window, and
// returns what it measured. It returns an error and a zero Result for
// invalid options or an unreadable process, and an error with a Result
// describing the failures when no session could be set up. When ctx ends,
// the calls in flight are abandoned and the figures so far are returned
// with StoppedBy "interrupted".
func Run(ctx context.Context, o Options) (Result, error) {
	o, err := o.check()
	if err != nil {
		return Result{}, err
	}
	res := Result{URL: o.URL, Tool: o.Tool, Era: o.Era, Concurrency: o.Concurrency, WarmupSeconds: o.Warmup.Seconds()}

	ticks := clockTicks(ctx)
	var cpu *cpuMeter
	if len(o.PIDs) > 0 {
		if cpu, err = newCPUMeter(o.PIDs, ticks); err != nil {
			return Result{}, err
		}
	}
	self, selfErr := newCPUMeter([]int{os.Getpid()}, ticks)

	tr := newTransport(o.Concurrency, o.CallTimeout)
	defer tr.CloseIdleConnections()
	// hard bounds every request: it ends with ctx, and CallTimeout after
	// the measured window's end.
	hard, cancelHard := context.WithCancel(ctx)
	defer cancelHard()

	workers := make([]*worker, o.Concurrency)
	for i := range workers {
		if workers[i], err = newWorker(hard, o, tr, i); err != nil {
			return Result{}, err
		}
	}
	var wg sync.WaitGroup
	if o.Era == EraSession {
		for _, w := range workers {
			wg.Go(func() { w.open(hard, o.CallTimeout) })
		}
		wg.Wait()
	}
	defer closeSessions(ctx, workers)
	res.Sessions = sessionStats(workers, o.Era)
	if ctx.Err() != nil {
		res.StoppedBy = "interrupted"
		return res, nil
	}
	if o.Era == EraSession && res.Sessions.Opened == 0 {
		res.StoppedBy = "setup_failed"
		return res, fmt.Errorf("no session could be opened (%d failed): %s", res.Sessions.Failed, res.Sessions.FirstError)
	}

	start := time.Now()
	rs := &runState{measureFrom: start.Add(o.Warmup), maxCalls: o.MaxCalls}
	rs.end = rs.measureFrom.Add(o.Duration)
	stopHard := time.AfterFunc(time.Until(rs.end)+o.CallTimeout, cancelHard)
	defer stopHard.Stop()

	done := make(chan struct{})
	for _, w := range workers {
		if w.ready {
			wg.Go(func() { w.loop(ctx, rs) })
		}
	}
	go func() {
		wg.Wait()
		close(done)
	}()

	// The CPU counters are read when the window opens and once every call
	// has completed.
	var before, selfBefore []cpuSample
	warm := time.NewTimer(time.Until(rs.measureFrom))
	select {
	case <-warm.C:
		if cpu != nil {
			before = cpu.sample()
		}
		if selfErr == nil {
			selfBefore = self.sample()
		}
	case <-done:
		warm.Stop()
	}
	<-done
	finished := time.Now()

	switch {
	case ctx.Err() != nil:
		res.StoppedBy = "interrupted"
	case rs.maxReached.Load():
		res.StoppedBy = "max_calls"
	default:
		res.StoppedBy = "duration"
	}
	if finished.After(rs.measureFrom) {
		res.MeasuredSeconds = finished.Sub(rs.measureFrom).Seconds()
	}
	lat := collect(workers, &res)
	res.FirstError = rs.firstErr
	if res.MeasuredSeconds > 0 {
		res.CallsPerSecond = float64(res.Calls) / res.MeasuredSeconds
	}
	res.LatencyMS = latencyStats(lat)
	if cpu != nil && before != nil {
		res.CPU = cpu.report(before, cpu.sample(), res.Calls)
	}
	if selfBefore != nil {
		if c := self.report(selfBefore, self.sample(), res.Calls); c.Processes[0].Error == "" {
			res.ClientCPU = &c.Processes[0]
		}
	}
	return res, nil
}

// collect sums the workers' counters into res and returns every measured
// latency, merged into one slice.
func collect(workers []*worker, res *Result) []time.Duration {
	n := 0
	for _, w := range workers {
		n += len(w.lat)
	}
	lat := make([]time.Duration, 0, n)
	for _, w := range workers {
		lat = append(lat, w.lat...)
		res.Calls += w.calls
		res.Errors += w.errors
		res.WarmupCalls += w.warmCalls
		res.WarmupErrors += w.warmErrors
		res.Responses.JSON += w.jsonN
		res.Responses.SSE += w.sseN
	}
	return lat
}

// latencyStats returns exact nearest-rank percentiles of lat (sorted in
// place), in milliseconds.
func latencyStats(lat []time.Duration) Latency {
	if len(lat) == 0 {
		return Latency{}
	}
	slices.Sort(lat)
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	return Latency{
		P50:  ms(percentile(lat, 50)),
		P90:  ms(percentile(lat, 90)),
		P99:  ms(percentile(lat, 99)),
		Max:  ms(lat[len(lat)-1]),
		Mean: ms(sum / time.Duration(len(lat))),
	}
}

// percentile returns the nearest-rank p-th percentile of sorted, non-empty
// values: the smallest value with at least p% of the values at or below it.
func percentile(sorted []time.Duration, p int) time.Duration {
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 × n)
	return sorted[max(rank, 1)-1]
}

// sessionStats summarizes the set-up of the workers' sessions.
func sessionStats(workers []*worker, era Era) Sessions {
	var s Sessions
	if era != EraSession {
		return s
	}
	var sum, worst time.Duration
	for _, w := range workers {
		if !w.ready {
			s.Failed++
			if s.FirstError == "" {
				s.FirstError = w.setupErr
			}
			continue
		}
		s.Opened++
		sum += w.setup
		worst = max(worst, w.setup)
	}
	if s.Opened > 0 {
		s.SetupMSMean = ms(sum / time.Duration(s.Opened))
		s.SetupMSMax = ms(worst)
	}
	return s
}

// ms converts d to fractional milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
