package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/rs/zerolog"

	"github.com/mark3labs/mcp-go/client/transport"
)

// Restart policy of stdio upstreams.
const (
	// RestartWindow is the rolling window in which a stdio upstream may be
	// restarted at most MaxRestarts times.
	RestartWindow = 10 * time.Minute
	// restartBackoffMin is the delay before the first restart; it doubles
	// with every failure in the window, up to restartBackoffMax.
	restartBackoffMin = 250 * time.Millisecond
	restartBackoffMax = 30 * time.Second
	// minStartTimeout bounds the start of a process (spawn + initialize);
	// a first `npx -y` may download a package, so it is never shorter than
	// this even when the call timeout is.
	minStartTimeout = 60 * time.Second
	// exitSettle is how long a call whose transport broke waits for the
	// process to exit (to report its status) before killing it as broken.
	exitSettle = 500 * time.Millisecond
	// drainTimeout is how long the rest of a dead process's stdout may take
	// to be read (answers it wrote just before exiting) before the pipe is
	// closed.
	drainTimeout = 2 * time.Second
)

// errDown marks the errors of a process that is not running (it exited,
// could not start, or was given up on): the upstream is unreachable, which
// /health reports as down.
var errDown = fmt.Errorf("%w (%w)", ErrUnavailable, ErrCrashed)

// StdioOptions configures a StdioClient.
type StdioOptions struct {
	// Name of the upstream, used in errors and logs.
	Name string
	// Command is the program to run. A name without a slash is looked up in
	// the PATH of Env (not of the gateway).
	Command string
	// Args are its arguments.
	Args []string
	// Dir is its working directory ("" means the gateway's).
	Dir string
	// Env is the child's complete environment, as KEY=VALUE. Nothing of the
	// gateway's own environment is added.
	Env []string
	// Timeout bounds each call (default 30s).
	Timeout time.Duration
	// MaxRestarts is how many times the process is restarted after crashes
	// or failed starts within RestartWindow; one more failure and the
	// upstream stays down until the gateway restarts. 0 means never.
	MaxRestarts int
	// StopGrace is how long the process group gets between SIGTERM and
	// SIGKILL on Close (default 5s).
	StopGrace time.Duration
	// Logger receives the child's stderr lines and its exits.
	Logger zerolog.Logger
	// Version is the gateway version sent in clientInfo.
	Version string
}

// StdioClient is one MCP server spoken to over the stdin and stdout of a
// child process (newline-delimited JSON-RPC, mcp-go's stdio transport).
//
// The process is started on first use (or by Start), with exactly the
// environment given, in its own process group. The verified identity of
// each call travels in the request's params._meta under IdentityMetaKey.
// JSON-RPC ids are the client's own, so concurrent callers never receive
// each other's answers. When the process exits unexpectedly the calls in
// flight fail with ErrUnavailable and it is restarted in the background with
// exponential backoff, at most MaxRestarts times per RestartWindow. Close
// sends SIGTERM to the process group, then SIGKILL after StopGrace. Safe for
// concurrent use.
type StdioClient struct {
	o      StdioOptions
	log    zerolog.Logger
	nextID atomic.Int64
	notify handlerSlot

	// ctx is cancelled by Close: it aborts starts in progress.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	proc     *stdioProc   // the running, initialized process; nil when down
	flight   *startFlight // the start in progress (maybe waiting for its backoff)
	failures []time.Time  // crashes and failed starts within RestartWindow
	lastErr  error        // why the last process ended or failed to start
	gaveUp   bool
	closed   bool

	// bg counts the goroutines of starts and of process watchers, so that
	// Close returns only when every process is reaped.
	bg        sync.WaitGroup
	closeOnce sync.Once
}

var (
	_ Caller   = (*StdioClient)(nil)
	_ Notifier = (*StdioClient)(nil)
)

// stdioProc is one child process and the transport over its pipes.
type stdioProc struct {
	cmd     *exec.Cmd
	pid     int
	started time.Time
	tr      *transport.Stdio
	stdin   *os.File
	stdout  *os.File
	eof     chan struct{} // closed when reading stdout ended
	stderr  *stderrLog

	exited  chan struct{} // closed once the process is reaped
	status  string        // its exit status; set before exited is closed
	gone    chan struct{} // closed once torn down and no longer the client's process
	stopped atomic.Bool   // the gateway asked it to stop (not a crash)
}

// startFlight is one start of the process that callers wait for.
type startFlight struct {
	done chan struct{}
	p    *stdioProc // set before done is closed
	err  error
}

// NewStdioClient returns a client; it starts no process until first used
// (or Start is called).
func NewStdioClient(o StdioOptions) *StdioClient {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.StopGrace <= 0 {
		o.StopGrace = 5 * time.Second
	}
	if o.MaxRestarts < 0 {
		o.MaxRestarts = 0
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &StdioClient{
		o:      o,
		log:    o.Logger.With().Str("upstream", o.Name).Logger(),
		ctx:    ctx,
		cancel: cancel,
	}
}

// Name returns the upstream's name.
func (c *StdioClient) Name() string { return c.o.Name }

// SetNotificationHandler receives every notification the process sends.
func (c *StdioClient) SetNotificationHandler(h func(method string, params json.RawMessage)) {
	c.notify.set(h)
}

// Start starts the process now, unless it runs already, and waits until it
// has answered initialize or ctx is done. A failure is counted like a crash
// and retried in the background; the gateway can start without the
// upstream.
func (c *StdioClient) Start(ctx context.Context) error {
	_, err := c.session(ctx, "initialize")
	return err
}

var _ Prober = (*StdioClient)(nil)

// Probe is Start: the router's health probe starts the process at boot.
func (c *StdioClient) Probe(ctx context.Context) error { return c.Start(ctx) }

// Call sends one JSON-RPC request and returns the process's raw answer. The
// verified identity in ctx (WithIdentity) replaces params._meta's
// IdentityMetaKey; the 2026-07-28 per-request _meta keys are removed (the
// process speaks the session era). The call is bounded by the upstream's
// timeout; it is never retried, since the process may have acted on it.
func (c *StdioClient) Call(ctx context.Context, method string, params json.RawMessage) (Response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	p, err := c.session(ctx, method)
	if err != nil {
		return Response{}, err
	}
	params, err = stdioParams(ctx, params)
	if err != nil {
		return Response{Error: &RPCError{Code: mcpgo.INVALID_PARAMS, Message: err.Error()}}, nil
	}
	req := transport.JSONRPCRequest{JSONRPC: "2.0", ID: mcpgo.NewRequestId(c.nextID.Add(1)), Method: method}
	if params != nil {
		req.Params = params
	}
	resp, err := p.tr.SendRequest(ctx, req)
	if err != nil {
		if ctx.Err() != nil {
			c.cancelUpstream(ctx, p, req.ID, ctx.Err())
			return Response{}, c.wrap(ctx, method, err)
		}
		return Response{}, c.broken(p, method, err)
	}
	return Response{Result: resp.Result, Error: resp.Error}, nil
}

// Close stops the process: SIGTERM to its process group (and its stdin
// closed), SIGKILL after StopGrace to whatever is left, and waits until it
// is reaped. Calls after Close fail. Idempotent.
func (c *StdioClient) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		p := c.proc
		c.proc = nil
		c.mu.Unlock()
		c.cancel() // a start in progress gives up and stops its process
		if p != nil {
			c.stop(p)
		}
	})
	c.bg.Wait()
	return nil
}

// errClosed is the error of calls after Close.
func (c *StdioClient) errClosed() error {
	return fmt.Errorf("upstream %s is shut down: %w", c.o.Name, ErrUnavailable)
}

// session returns the running process, starting it (or joining the start in
// progress) when there is none.
func (c *StdioClient) session(ctx context.Context, method string) (*stdioProc, error) {
	for {
		c.mu.Lock()
		switch {
		case c.closed:
			c.mu.Unlock()
			return nil, c.errClosed()
		case c.proc != nil:
			p := c.proc
			c.mu.Unlock()
			select {
			case <-p.eof:
				// It has just died (or closed its stdout): wait until it
				// is torn down, then join its restart. A request sent to
				// it now would fail although it never reached a process.
				c.settle(p)
				select {
				case <-p.gone:
					continue
				case <-ctx.Done():
					return nil, c.notReady(ctx, method)
				}
			default:
				return p, nil
			}
		case c.gaveUp:
			err := c.gaveUpErrLocked()
			c.mu.Unlock()
			return nil, err
		}
		f := c.flight
		if f == nil {
			f = c.startLocked(0)
		}
		c.mu.Unlock()
		select {
		case <-f.done:
			if f.err != nil {
				return nil, f.err
			}
			return f.p, nil
		case <-ctx.Done():
			return nil, c.notReady(ctx, method)
		}
	}
}

// notReady is the error of a call whose ctx ended while the process was
// (re)starting.
func (c *StdioClient) notReady(ctx context.Context, method string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("upstream %s did not start within %s (for %s): %w", c.o.Name, c.o.Timeout, method, ErrTimeout)
	}
	return fmt.Errorf("upstream %s: %s abandoned while the process starts: %w: %w", c.o.Name, method, ErrUnavailable, ctx.Err())
}

// settle waits briefly for a process whose transport broke to exit, and
// kills it (it is then restarted like a crashed one) when it does not: it
// closed its stdout or stdin but runs on.
func (c *StdioClient) settle(p *stdioProc) {
	select {
	case <-p.exited:
	case <-time.After(exitSettle):
		c.log.Warn().Int("pid", p.pid).Msg("stdio upstream broke its pipes; killing it")
		killGroup(p)
		<-p.exited
	}
}

func (c *StdioClient) gaveUpErrLocked() error {
	return fmt.Errorf("upstream %s crashed %s in %s; giving up until restart (last: %v): %w",
		c.o.Name, times(len(c.failures)), formatWindow(RestartWindow), c.lastErr, errDown)
}

// times renders a count of crashes.
func times(n int) string {
	if n == 1 {
		return "once"
	}
	return fmt.Sprintf("%d times", n)
}

// formatWindow renders 10m0s as 10m.
func formatWindow(d time.Duration) string {
	if d%time.Minute == 0 {
		return fmt.Sprintf("%dm", int(d/time.Minute))
	}
	return d.String()
}

// startLocked begins a start after delay; c.mu is held.
func (c *StdioClient) startLocked(delay time.Duration) *startFlight {
	f := &startFlight{done: make(chan struct{})}
	c.flight = f
	c.bg.Add(1)
	go c.runStart(f, delay)
	return f
}

// runStart waits for the backoff, starts and initializes a process, and
// installs it; a failure is counted and retried with backoff.
func (c *StdioClient) runStart(f *startFlight, delay time.Duration) {
	defer c.bg.Done()
	var p *stdioProc
	var err error
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
		}
	}
	if c.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(c.ctx, max(c.o.Timeout, minStartTimeout))
		p, err = c.spawn(ctx)
		cancel()
	}

	c.mu.Lock()
	c.flight = nil
	switch {
	case c.closed:
		err = c.errClosed()
	case err != nil:
		c.failLocked(err)
	default:
		select {
		case <-p.exited: // it died before it could be used
			err = fmt.Errorf("upstream %s exited right after starting (%s): %w", c.o.Name, p.status, errDown)
			c.failLocked(err)
		default:
			c.proc = p
		}
	}
	c.mu.Unlock()
	if err == nil {
		c.log.Info().Int("pid", p.pid).Msg("stdio upstream started")
	}
	f.p, f.err = p, err
	close(f.done) // the callers waiting need not wait for the stop below
	if err != nil && p != nil {
		c.stop(p)
	}
}

// failLocked counts a crash or failed start and schedules the restart, or
// gives up when the window holds more than MaxRestarts failures.
func (c *StdioClient) failLocked(err error) {
	now := time.Now()
	c.lastErr = err
	kept := c.failures[:0]
	for _, t := range c.failures {
		if now.Sub(t) < RestartWindow {
			kept = append(kept, t)
		}
	}
	c.failures = append(kept, now)
	n := len(c.failures)
	if n > c.o.MaxRestarts {
		c.gaveUp = true
		c.log.Error().Err(err).Int("failures", n).Msgf("stdio upstream crashed %s in %s; giving up until restart", times(n), formatWindow(RestartWindow))
		return
	}
	delay := min(restartBackoffMin<<min(n-1, 16), restartBackoffMax)
	c.log.Warn().Err(err).Int("failures", n).Dur("restart_in", delay).Msg("stdio upstream down; restarting")
	if !c.closed && c.flight == nil && c.proc == nil {
		c.startLocked(delay)
	}
}

// spawn starts the process and runs the initialize handshake.
func (c *StdioClient) spawn(ctx context.Context) (*stdioProc, error) {
	path, err := lookPath(c.o.Command, c.o.Env)
	if err != nil {
		return nil, fmt.Errorf("upstream %s could not start: %w: %w", c.o.Name, errDown, err)
	}
	cmd := exec.Command(path, c.o.Args...)
	cmd.Args[0] = c.o.Command
	// Exactly the given environment: a nil Env would mean the gateway's.
	cmd.Env = append(make([]string, 0, len(c.o.Env)), c.o.Env...)
	cmd.Dir = c.o.Dir
	setProcessGroup(cmd)
	// Our own pipes rather than StdinPipe/StdoutPipe: Wait must not close
	// stdout before the answers the process wrote just before it exited are
	// read.
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("upstream %s could not start: %w: %w", c.o.Name, errDown, err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		_, _ = inR.Close(), inW.Close()
		return nil, fmt.Errorf("upstream %s could not start: %w: %w", c.o.Name, errDown, err)
	}
	sl := &stderrLog{log: c.log}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, sl
	// Wait waits for the stderr copy; a grandchild holding stderr open
	// must not keep it waiting for long.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		_, _, _, _ = inR.Close(), inW.Close(), outR.Close(), outW.Close()
		return nil, fmt.Errorf("upstream %s could not start %s: %w: %w", c.o.Name, c.o.Command, errDown, err)
	}
	_, _ = inR.Close(), outW.Close()

	p := &stdioProc{cmd: cmd, pid: cmd.Process.Pid, started: time.Now(), stdin: inW, stdout: outR,
		eof: make(chan struct{}), stderr: sl, exited: make(chan struct{}), gone: make(chan struct{})}
	p.tr = transport.NewIO(&eofReader{r: outR, eof: p.eof}, inW, nil)
	// One stdin/stdout pair carries every caller's calls, so a request the
	// process sends to its client cannot be attributed to one of them: it is
	// refused rather than shown to a caller it may not concern.
	p.tr.SetRequestHandler(func(_ context.Context, req transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
		return transport.NewJSONRPCErrorResponse(req.ID, mcpgo.METHOD_NOT_FOUND,
			req.Method+" from a stdio upstream is not relayed: the gateway cannot tell which caller it concerns", nil), nil
	})
	p.tr.SetNotificationHandler(func(n mcpgo.JSONRPCNotification) {
		params, err := json.Marshal(n.Params)
		if err != nil {
			return
		}
		c.notify.deliver(n.Method, params)
	})
	c.bg.Add(1) // within runStart, which bg counts already
	go c.watch(p)
	if err := p.tr.Start(context.Background()); err != nil {
		return p, fmt.Errorf("upstream %s: %w: start transport: %w", c.o.Name, errDown, err)
	}

	init := map[string]any{
		"protocolVersion": ProtocolVersion,
		"capabilities":    clientCapabilities(),
		"clientInfo":      map[string]any{"name": "gatewaystack", "version": c.o.Version},
	}
	resp, err := p.tr.SendRequest(ctx, transport.JSONRPCRequest{JSONRPC: "2.0", ID: mcpgo.NewRequestId(c.nextID.Add(1)), Method: "initialize", Params: init})
	if err != nil {
		if ctx.Err() == nil {
			// The process went away: say how.
			select {
			case <-p.exited:
				return p, fmt.Errorf("upstream %s exited during initialize (%s): %w", c.o.Name, p.status, errDown)
			case <-time.After(exitSettle):
			}
		}
		return p, fmt.Errorf("upstream %s did not initialize: %w: %w", c.o.Name, errDown, err)
	}
	if resp.Error != nil {
		return p, fmt.Errorf("upstream %s: %w: initialize refused: %s", c.o.Name, errDown, resp.Error.Message)
	}
	if err := p.tr.SendNotification(ctx, mcpgo.JSONRPCNotification{JSONRPC: "2.0", Notification: mcpgo.Notification{Method: "notifications/initialized"}}); err != nil {
		return p, fmt.Errorf("upstream %s: %w: notifications/initialized: %w", c.o.Name, errDown, err)
	}
	return p, nil
}

// watch reaps the process, lets the transport read what is left of its
// stdout, tears the transport down (failing the calls still waiting), logs
// the exit and, for a crash, schedules the restart.
func (c *StdioClient) watch(p *stdioProc) {
	defer c.bg.Done()
	defer close(p.gone)
	_ = p.cmd.Wait()
	p.status = "unknown status"
	if ps := p.cmd.ProcessState; ps != nil {
		p.status = ps.String()
	}
	close(p.exited)
	p.stderr.flush()
	if !p.stopped.Load() {
		// A crash: whatever else is left in its process group goes too (a
		// grandchild holding stdout open would keep the calls waiting). A
		// stop gives the group its grace period instead.
		killGroup(p)
	}
	select {
	case <-p.eof:
	case <-time.After(drainTimeout):
	}
	_ = p.tr.Close() // fails the calls still waiting; closes stdin
	_ = p.stdout.Close()

	uptime := time.Since(p.started).Round(time.Millisecond)
	if p.stopped.Load() {
		c.log.Info().Int("pid", p.pid).Str("status", p.status).Dur("uptime", uptime).Msg("stdio upstream stopped")
		return
	}
	c.log.Warn().Int("pid", p.pid).Str("status", p.status).Dur("uptime", uptime).Msg("stdio upstream exited unexpectedly")
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == p {
		c.proc = nil
		c.failLocked(fmt.Errorf("process %d exited: %s", p.pid, p.status))
	}
}

// stop ends p: its stdin is closed and its process group gets SIGTERM, then
// SIGKILL once StopGrace has passed with any member still alive. It returns
// when p is reaped.
func (c *StdioClient) stop(p *stdioProc) {
	p.stopped.Store(true)
	select {
	case <-p.exited:
		return
	default:
	}
	deadline := time.Now().Add(c.o.StopGrace)
	_ = p.stdin.Close()
	terminateGroup(p)
	t := time.NewTimer(c.o.StopGrace)
	defer t.Stop()
	select {
	case <-p.exited:
		// The leader is gone; give the rest of its group what is left of
		// the grace period.
		for groupAlive(p) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		killGroup(p)
	case <-t.C:
		c.log.Warn().Int("pid", p.pid).Dur("stop_grace", c.o.StopGrace).Msg("stdio upstream ignored SIGTERM; killing it")
		killGroup(p)
		<-p.exited
	}
}

// broken handles a call whose transport failed without the caller giving
// up: the process exited, or closed its pipes. The error names the upstream
// and, when known, the exit status.
func (c *StdioClient) broken(p *stdioProc, method string, err error) error {
	if p.stopped.Load() {
		return fmt.Errorf("upstream %s shut down while handling %s: %w: %w", c.o.Name, method, ErrUnavailable, err)
	}
	c.settle(p)
	return fmt.Errorf("upstream %s exited while handling %s (%s): %w: %w", c.o.Name, method, p.status, errDown, err)
}

// cancelUpstream tells the process that the gateway gave up on request id,
// so it can stop working on it. Best effort, in the background, bounded.
func (c *StdioClient) cancelUpstream(ctx context.Context, p *stdioProc, id mcpgo.RequestId, cause error) {
	reason := "the gateway's caller cancelled the request"
	if errors.Is(cause, context.DeadlineExceeded) {
		reason = "the gateway's timeout for this upstream passed"
	}
	n := mcpgo.JSONRPCNotification{JSONRPC: "2.0", Notification: mcpgo.Notification{
		Method: "notifications/cancelled",
		Params: mcpgo.NotificationParams{AdditionalFields: map[string]any{"requestId": id, "reason": reason}},
	}}
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	go func() {
		defer cancel()
		_ = p.tr.SendNotification(bg, n)
	}()
}

// wrap classifies an error of a call the caller gave up on.
func (c *StdioClient) wrap(ctx context.Context, method string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("upstream %s did not answer %s within %s: %w", c.o.Name, method, c.o.Timeout, ErrTimeout)
	}
	return fmt.Errorf("upstream %s is unavailable (%s): %w: %w", c.o.Name, method, ErrUnavailable, err)
}

// eofReader closes eof when reading ends (end of file or error).
type eofReader struct {
	r    io.Reader
	eof  chan struct{}
	once sync.Once
}

func (e *eofReader) Read(b []byte) (int, error) {
	n, err := e.r.Read(b)
	if err != nil {
		e.once.Do(func() { close(e.eof) })
	}
	return n, err
}
