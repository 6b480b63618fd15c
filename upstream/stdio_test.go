package upstream_test

// Tests of the stdio upstream against a real child process: the MCP server
// in testdata/stdioserver, built once per test binary by TestMain's helper.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gatewaystack/gatewaystack/auth"
	"github.com/gatewaystack/gatewaystack/upstream"
)

// stdioBinDir holds the test server binary; TestMain removes it.
var stdioBinDir string

func TestMain(m *testing.M) {
	os.Exit(runStdioTests(m))
}

func runStdioTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "gatewaystack-stdio-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	stdioBinDir = dir
	return m.Run()
}

var buildStdioServer = sync.OnceValues(func() (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go" // where the machine installs Go; make adds it to PATH
	}
	out := filepath.Join(stdioBinDir, "stdioserver")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, "./testdata/stdioserver")
	// Offline: the test binary was built from the same modules.
	cmd.Env = append(os.Environ(), "GOPROXY=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./testdata/stdioserver: %v\n%s", err, b)
	}
	return out, nil
})

// stdioServerBinary returns the path of the test MCP server.
func stdioServerBinary(t testing.TB) string {
	t.Helper()
	p, err := buildStdioServer()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// stdioLogs is a goroutine-safe zerolog destination.
type stdioLogs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *stdioLogs) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// entries decodes every log line.
func (b *stdioLogs) entries(t testing.TB) []map[string]any {
	t.Helper()
	b.mu.Lock()
	data := b.buf.String()
	b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		out = append(out, m)
	}
	return out
}

// find returns the log entries with message msg.
func (b *stdioLogs) find(t testing.TB, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, e := range b.entries(t) {
		if e["message"] == msg {
			out = append(out, e)
		}
	}
	return out
}

// stdioWaitFor polls cond for up to 10 s.
func stdioWaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// newStdio starts nothing: it returns a client of the test server, closed
// when the test ends, and its log.
func newStdio(t testing.TB, o upstream.StdioOptions) (*upstream.StdioClient, *stdioLogs) {
	t.Helper()
	if o.Name == "" {
		o.Name = "kid"
	}
	if o.Command == "" {
		o.Command = stdioServerBinary(t)
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	logs := &stdioLogs{}
	o.Logger = zerolog.New(logs)
	c := upstream.NewStdioClient(o)
	t.Cleanup(func() { _ = c.Close() })
	return c, logs
}

func stdioIdentity(id auth.Identity) context.Context {
	return upstream.WithIdentity(context.Background(), upstream.HeaderNames{User: "X-User-Id", Tenant: "X-Org-Id", Scopes: "X-User-Scopes"}, id)
}

// stdioCall calls a tool and returns its structuredContent.
func stdioCall(ctx context.Context, c upstream.Caller, tool string, args map[string]any) (map[string]any, error) {
	params, err := json.Marshal(map[string]any{"name": tool, "arguments": args})
	if err != nil {
		return nil, err
	}
	return stdioCallRaw(ctx, c, params)
}

func stdioCallRaw(ctx context.Context, c upstream.Caller, params json.RawMessage) (map[string]any, error) {
	resp, err := c.Call(ctx, "tools/call", params)
	if err != nil {
		return nil, err
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("JSON-RPC error %d: %s", resp.Error.Code, resp.Error.Message)
	}
	var res struct {
		StructuredContent map[string]any `json:"structuredContent"`
		IsError           bool           `json:"isError"`
	}
	if err := json.Unmarshal(resp.Result, &res); err != nil {
		return nil, err
	}
	if res.IsError {
		return nil, fmt.Errorf("tool error: %s", resp.Result)
	}
	return res.StructuredContent, nil
}

func stdioMustCall(t testing.TB, ctx context.Context, c upstream.Caller, tool string, args map[string]any) map[string]any {
	t.Helper()
	out, err := stdioCall(ctx, c, tool, args)
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	return out
}

// stdioChildPid asks the running child for its pid.
func stdioChildPid(t testing.TB, c upstream.Caller) int {
	t.Helper()
	return int(stdioMustCall(t, context.Background(), c, "env", nil)["pid"].(float64))
}

// procAlive reports whether pid is a live (not zombie) process.
func procAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		if _, serr := os.Stat("/proc/self/stat"); serr != nil {
			return syscall.Kill(pid, 0) == nil // no procfs
		}
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	state := b[i+2]
	return state != 'Z' && state != 'X'
}

func stdioWantUnavailable(t testing.TB, err error, wantIn ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("call succeeded, want ErrUnavailable")
	}
	if !errors.Is(err, upstream.ErrUnavailable) {
		t.Fatalf("error %q is not ErrUnavailable", err)
	}
	for _, w := range wantIn {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

// The child sees exactly the environment it is given: a secret in the
// gateway's own environment never reaches it. (t.Setenv: not parallel.)
func TestStdioEnvironmentIsExactlyTheGivenOne(t *testing.T) {
	t.Setenv("GATEWAYSTACK_TEST_SECRET", "hunter2")
	dir := t.TempDir()
	env := []string{"VISIBLE=yes", "HOME=" + dir, "EMPTY="}
	c, _ := newStdio(t, upstream.StdioOptions{Env: env, Dir: dir})
	out := stdioMustCall(t, context.Background(), c, "env", nil)

	var got []string
	for _, kv := range out["env"].([]any) {
		got = append(got, kv.(string))
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(env))
	if !slices.Equal(got, want) {
		t.Errorf("child environment = %q, want exactly %q", got, want)
	}
	for _, kv := range got {
		if strings.Contains(kv, "hunter2") || strings.HasPrefix(kv, "GATEWAYSTACK_TEST_SECRET=") {
			t.Errorf("the gateway's secret leaked into the child: %q", kv)
		}
	}
	if resolved, _ := filepath.EvalSymlinks(dir); out["dir"] != dir && out["dir"] != resolved {
		t.Errorf("child dir = %v, want %s", out["dir"], dir)
	}
	if out["pid"] != out["pgid"] {
		t.Errorf("child pid %v is not its own process group leader (pgid %v)", out["pid"], out["pgid"])
	}
}

// A command without a slash is found in the child's PATH, not the
// gateway's.
func TestStdioCommandIsLookedUpInTheChildsPath(t *testing.T) {
	t.Parallel()
	bin := stdioServerBinary(t)
	c, _ := newStdio(t, upstream.StdioOptions{Command: filepath.Base(bin), Env: []string{"PATH=" + filepath.Dir(bin)}})
	stdioMustCall(t, context.Background(), c, "env", nil)

	missing, _ := newStdio(t, upstream.StdioOptions{Command: filepath.Base(bin), Env: []string{"PATH=/nonexistent"}})
	_, err := stdioCall(context.Background(), missing, "env", nil)
	stdioWantUnavailable(t, err, "upstream kid", "not found in PATH")
}

// The verified identity reaches the child in params._meta on every kind of
// request; a copy the caller sent (in any letter case) is replaced, other
// _meta keys are kept, and the 2026-07-28 per-request keys are removed.
func TestStdioIdentityInMeta(t *testing.T) {
	t.Parallel()
	c, _ := newStdio(t, upstream.StdioOptions{})
	alice := auth.Identity{Subject: "alice", Tenant: "acme", Scopes: []string{"tool:read", "tool:write"}, ClientID: "cli-1", Roles: []string{"admin"}}
	ctx := stdioIdentity(alice)
	wantID := map[string]any{"sub": "alice", "tenant": "acme", "scopes": []any{"tool:read", "tool:write"}, "client_id": "cli-1"}

	t.Run("tools/call with a spoofed identity", func(t *testing.T) {
		params := json.RawMessage(`{"name":"whoami","arguments":{"marker":"m1"},"_meta":{` +
			`"io.gatewaystack/identity":{"sub":"mallory","tenant":"evil"},` +
			`"IO.GatewayStack/Identity":{"sub":"mallory2"},` +
			`"vendor.example/trace":"t-1","progressToken":"p-7",` +
			`"io.modelcontextprotocol/protocolVersion":"2026-07-28"},` +
			`"_META":{"io.gatewaystack/identity":{"sub":"mallory3"}}}`)
		out, err := stdioCallRaw(ctx, c, params)
		if err != nil {
			t.Fatal(err)
		}
		if !stdioSameJSON(out["identity"], wantID) {
			t.Errorf("identity = %v, want %v", out["identity"], wantID)
		}
		wantMeta := map[string]any{"io.gatewaystack/identity": wantID, "vendor.example/trace": "t-1", "progressToken": "p-7"}
		if !stdioSameJSON(out["meta"], wantMeta) {
			t.Errorf("_meta = %v, want %v", out["meta"], wantMeta)
		}
		if out["marker"] != "m1" {
			t.Errorf("arguments lost: %v", out)
		}
	})

	t.Run("without a verified identity a spoofed one is removed", func(t *testing.T) {
		out, err := stdioCallRaw(context.Background(), c, json.RawMessage(`{"name":"whoami","_meta":{"io.gatewaystack/identity":{"sub":"mallory"}}}`))
		if err != nil {
			t.Fatal(err)
		}
		if out["identity"] != nil || out["meta"] != nil {
			t.Errorf("child received %v, want no _meta at all", out)
		}
	})

	t.Run("only non-empty fields", func(t *testing.T) {
		out := stdioMustCall(t, stdioIdentity(auth.Identity{Subject: "bob"}), c, "whoami", nil)
		if !stdioSameJSON(out["identity"], map[string]any{"sub": "bob"}) {
			t.Errorf("identity = %v, want only sub", out["identity"])
		}
	})

	t.Run("every method", func(t *testing.T) {
		for _, m := range []struct{ method, params string }{
			{"tools/list", ``},
			{"resources/list", `{}`},
			{"resources/read", `{"uri":"test://hello"}`},
			{"prompts/list", `null`},
			{"prompts/get", `{"name":"greet"}`},
			{"ping", ``},
		} {
			resp, err := c.Call(ctx, m.method, json.RawMessage(m.params))
			if err != nil || resp.Error != nil {
				t.Fatalf("%s: %v %+v", m.method, err, resp.Error)
			}
		}
		seen := stdioMustCall(t, ctx, c, "seen", nil)
		for _, m := range []string{"tools/list", "resources/list", "resources/read", "prompts/list", "prompts/get", "ping"} {
			meta, _ := seen[m].(map[string]any)
			if !stdioSameJSON(meta["io.gatewaystack/identity"], wantID) {
				t.Errorf("%s: child saw _meta %v, want the identity", m, seen[m])
			}
		}
	})

	t.Run("params that are not an object are refused without reaching the child", func(t *testing.T) {
		resp, err := c.Call(ctx, "tools/call", json.RawMessage(`["whoami"]`))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Error == nil || resp.Error.Code != -32602 {
			t.Fatalf("want a -32602 error, got %+v %s", resp.Error, resp.Result)
		}
	})
}

func stdioSameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// Many callers with different identities on one child, answered out of
// order: each gets its own answer (the gateway's JSON-RPC ids, not the
// callers', correlate them).
func TestStdioConcurrentCallersNeverCrossed(t *testing.T) {
	t.Parallel()
	c, _ := newStdio(t, upstream.StdioOptions{})
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sub := fmt.Sprintf("user-%02d", i)
			ctx := stdioIdentity(auth.Identity{Subject: sub, Tenant: "t" + sub})
			out, err := stdioCall(ctx, c, "sleep", map[string]any{"ms": rand.IntN(200), "echo": sub})
			if err != nil {
				errs <- fmt.Errorf("%s: %w", sub, err)
				return
			}
			id, _ := out["identity"].(map[string]any)
			if out["echo"] != sub || id["sub"] != sub || id["tenant"] != "t"+sub {
				errs <- fmt.Errorf("%s got someone else's answer: %v", sub, out)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A crash fails the calls in flight with an error naming the upstream and
// the exit status; the process is restarted and the next call works.
func TestStdioCrashRestarts(t *testing.T) {
	t.Parallel()
	c, logs := newStdio(t, upstream.StdioOptions{MaxRestarts: 5})
	pid := stdioChildPid(t, c)

	inflight := make(chan error, 1)
	go func() {
		_, err := stdioCall(context.Background(), c, "sleep", map[string]any{"ms": 5000})
		inflight <- err
	}()
	time.Sleep(100 * time.Millisecond) // the sleep call is with the child
	_, err := stdioCall(context.Background(), c, "crash", nil)
	stdioWantUnavailable(t, err, "upstream kid", "exit status 3")
	select {
	case err := <-inflight:
		stdioWantUnavailable(t, err, "upstream kid")
	case <-time.After(5 * time.Second):
		t.Fatal("the call in flight did not fail when the process crashed")
	}

	if got := stdioChildPid(t, c); got == pid {
		t.Fatalf("pid %d after the crash, want a new process", got)
	}
	if procAlive(pid) {
		t.Errorf("crashed process %d is still procAlive", pid)
	}
	exits := logs.find(t, "stdio upstream exited unexpectedly")
	if len(exits) != 1 || exits[0]["status"] != "exit status 3" || exits[0]["upstream"] != "kid" {
		t.Errorf("exit log = %v, want one line with status exit status 3", exits)
	}
	var sawStderr bool
	for _, e := range logs.find(t, "stdio upstream stderr") {
		sawStderr = sawStderr || e["line"] == "crashing on purpose"
	}
	if !sawStderr {
		t.Error("the crashing process's last stderr line was not logged")
	}
	if len(logs.find(t, "stdio upstream started")) != 2 {
		t.Errorf("want two starts logged: %v", logs.entries(t))
	}
}

// A process that closes its stdout but runs on cannot answer: the call
// fails, the process is killed and replaced, and the next call works.
func TestStdioProcessThatClosesStdoutIsReplaced(t *testing.T) {
	t.Parallel()
	c, logs := newStdio(t, upstream.StdioOptions{MaxRestarts: 5})
	pid := stdioChildPid(t, c)
	_, err := stdioCall(context.Background(), c, "closeout", nil)
	stdioWantUnavailable(t, err, "upstream kid exited while handling tools/call", "signal: killed")
	if got := stdioChildPid(t, c); got == pid {
		t.Fatalf("still process %d", got)
	}
	if procAlive(pid) {
		t.Errorf("process %d with its stdout closed was left running", pid)
	}
	if len(logs.find(t, "stdio upstream broke its pipes; killing it")) != 1 {
		t.Errorf("the kill was not logged: %v", logs.entries(t))
	}
}

// More crashes within the window than max_restarts allows: the upstream
// stays down and calls fail fast, saying so.
func TestStdioGivesUpAfterMaxRestarts(t *testing.T) {
	t.Parallel()
	c, logs := newStdio(t, upstream.StdioOptions{MaxRestarts: 1})
	for range 2 {
		_, err := stdioCall(context.Background(), c, "crash", nil)
		stdioWantUnavailable(t, err, "exit status 3")
	}
	stdioWaitFor(t, "the give-up", func() bool {
		return len(logs.find(t, "stdio upstream crashed 2 times in 10m; giving up until restart")) == 1
	})
	start := time.Now()
	_, err := stdioCall(context.Background(), c, "env", nil)
	stdioWantUnavailable(t, err, "upstream kid crashed 2 times in 10m; giving up until restart")
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("the call took %s, want a fast failure", d)
	}
}

// A command that cannot start is retried like a crash and then given up
// on; the gateway itself is never blocked by it.
func TestStdioStartFailure(t *testing.T) {
	t.Parallel()
	c, logs := newStdio(t, upstream.StdioOptions{Command: filepath.Join(t.TempDir(), "no-such-server"), MaxRestarts: 1})
	err := c.Start(context.Background())
	stdioWantUnavailable(t, err, "upstream kid could not start")
	stdioWaitFor(t, "the background retry and give-up", func() bool {
		return len(logs.find(t, "stdio upstream crashed 2 times in 10m; giving up until restart")) == 1
	})
	_, err = stdioCall(context.Background(), c, "env", nil)
	stdioWantUnavailable(t, err, "giving up until restart", "no-such-server")

	// A process that exits before answering initialize.
	quitter, _ := newStdio(t, upstream.StdioOptions{Command: "/bin/sh", Args: []string{"-c", "echo bye >&2; exit 7"}})
	err = quitter.Start(context.Background())
	stdioWantUnavailable(t, err, "upstream kid exited during initialize (exit status 7)")
	if !errors.Is(err, upstream.ErrCrashed) {
		t.Errorf("error %q is not ErrCrashed (health would not report the upstream down)", err)
	}
}

// Start is lazy: nothing runs until the first call or Start.
func TestStdioStartsLazilyOrOnStart(t *testing.T) {
	t.Parallel()
	lazy, logs := newStdio(t, upstream.StdioOptions{})
	time.Sleep(50 * time.Millisecond)
	if n := len(logs.find(t, "stdio upstream started")); n != 0 {
		t.Fatalf("a process started before any call")
	}
	stdioMustCall(t, context.Background(), lazy, "env", nil)

	eager, logs := newStdio(t, upstream.StdioOptions{})
	if err := eager.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(logs.find(t, "stdio upstream started")); n != 1 {
		t.Fatalf("Start: %d starts logged, want 1", n)
	}
	if err := eager.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	stdioMustCall(t, context.Background(), eager, "env", nil)
	if n := len(logs.find(t, "stdio upstream started")); n != 1 {
		t.Fatalf("%d starts logged, want still 1", n)
	}
}

// Close ends the whole process group, grandchildren included (this one
// ignores SIGTERM, so it takes the SIGKILL after the grace period), reaps
// the child, and is idempotent; calls afterwards fail.
func TestStdioCloseStopsTheProcessGroup(t *testing.T) {
	t.Parallel()
	c, logs := newStdio(t, upstream.StdioOptions{StopGrace: 300 * time.Millisecond})
	pid := stdioChildPid(t, c)
	grandchild := int(stdioMustCall(t, context.Background(), c, "spawn", nil)["pid"].(float64))
	if !procAlive(grandchild) {
		t.Fatal("grandchild did not start")
	}
	start := time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 5*time.Second {
		t.Errorf("Close took %s, want about the 300ms grace (the grandchild ignores SIGTERM)", d)
	}
	if procAlive(pid) {
		t.Errorf("child %d survived Close", pid)
	}
	stdioWaitFor(t, "the grandchild to die", func() bool { return !procAlive(grandchild) })
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	_, err := stdioCall(context.Background(), c, "env", nil)
	stdioWantUnavailable(t, err, "upstream kid is shut down")
	stops := logs.find(t, "stdio upstream stopped")
	if len(stops) != 1 {
		t.Errorf("want one stop logged, got %v", logs.entries(t))
	}
}

// A child that exits on SIGTERM is not made to wait for the grace period.
func TestStdioCloseIsQuickForAWellBehavedChild(t *testing.T) {
	t.Parallel()
	c, _ := newStdio(t, upstream.StdioOptions{StopGrace: 20 * time.Second})
	pid := stdioChildPid(t, c)
	start := time.Now()
	_ = c.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %s", d)
	}
	if procAlive(pid) {
		t.Errorf("child %d survived Close", pid)
	}
}

// A child that ignores SIGTERM (and stdin closing) is killed after
// StopGrace, and the log says so.
func TestStdioCloseKillsAChildIgnoringSIGTERM(t *testing.T) {
	t.Parallel()
	c, logs := newStdio(t, upstream.StdioOptions{Args: []string{"-ignore-term"}, StopGrace: 300 * time.Millisecond})
	pid := stdioChildPid(t, c)
	start := time.Now()
	_ = c.Close()
	if d := time.Since(start); d < 300*time.Millisecond || d > 5*time.Second {
		t.Errorf("Close took %s, want the 300ms grace then SIGKILL", d)
	}
	if procAlive(pid) {
		t.Errorf("child %d survived Close", pid)
	}
	if len(logs.find(t, "stdio upstream ignored SIGTERM; killing it")) != 1 {
		t.Errorf("the SIGKILL was not logged: %v", logs.entries(t))
	}
	stops := logs.find(t, "stdio upstream stopped")
	if len(stops) != 1 || stops[0]["status"] != "signal: killed" {
		t.Errorf("stop log = %v, want status signal: killed", stops)
	}
}

// Each stderr line is logged with the upstream's name; an overlong line is
// cut and the cut counted.
func TestStdioStderrIsLoggedLineByLine(t *testing.T) {
	t.Parallel()
	c, logs := newStdio(t, upstream.StdioOptions{Name: "chatty"})
	long := strings.Repeat("x", 10000)
	stdioMustCall(t, context.Background(), c, "stderr", map[string]any{"lines": []string{"first line", "second line", long}})
	var got []map[string]any
	stdioWaitFor(t, "three stderr lines", func() bool {
		got = logs.find(t, "stdio upstream stderr")
		return len(got) >= 3
	})
	for i, want := range []string{"first line", "second line"} {
		if got[i]["line"] != want || got[i]["upstream"] != "chatty" {
			t.Errorf("stderr log %d = %v, want line %q of upstream chatty", i, got[i], want)
		}
	}
	if line, _ := got[2]["line"].(string); len(line) != 4096 || got[2]["truncated_bytes"] != float64(10000-4096) {
		t.Errorf("long line logged with %d bytes and truncated_bytes %v", len(line), got[2]["truncated_bytes"])
	}
}

// A call slower than the timeout fails with ErrTimeout naming the
// upstream; the child keeps serving.
func TestStdioTimeout(t *testing.T) {
	t.Parallel()
	c, _ := newStdio(t, upstream.StdioOptions{Timeout: 300 * time.Millisecond})
	pid := stdioChildPid(t, c)
	_, err := stdioCall(context.Background(), c, "sleep", map[string]any{"ms": 5000})
	if !errors.Is(err, upstream.ErrTimeout) || !strings.Contains(err.Error(), "upstream kid") {
		t.Fatalf("err = %v, want ErrTimeout naming the upstream", err)
	}
	if got := stdioChildPid(t, c); got != pid {
		t.Errorf("the process changed after a timeout: %d -> %d", pid, got)
	}
}
