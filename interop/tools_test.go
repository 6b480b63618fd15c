package interop

// Where the pinned third-party tools are, and how their processes are run:
// each in its own process group, killed with the whole group when the test
// ends, with bounded waits for readiness.

import (
	"context"
	"errors"
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
	envNodeModules      = "GATEWAYSTACK_INTEROP_NODE_MODULES"
	envEverythingServer = "GATEWAYSTACK_INTEROP_EVERYTHING_SERVER"
	envNode             = "GATEWAYSTACK_INTEROP_NODE"
)

// readyTimeout bounds every wait for a process or server to come up.
const readyTimeout = 15 * time.Second

// tools are the paths of the pinned third-party tools.
type tools struct {
	// node is the Node.js binary.
	node string
	// serverEverything is @modelcontextprotocol/server-everything's entry
	// point (dist/index.js; first argument: stdio or streamableHttp).
	serverEverything string
	// goSDKServer is the go-sdk conformance fixture binary.
	goSDKServer string
}

// requireTools returns the pinned tools. When none of the interop variables
// is set (a plain `go test ./...`) it skips t and says to run `make test`.
// When any of them is set, every tool must be there: a missing one fails t,
// so that a broken install step cannot pass as a skip.
func requireTools(t *testing.T) tools {
	t.Helper()
	nm, es, nd := os.Getenv(envNodeModules), os.Getenv(envEverythingServer), os.Getenv(envNode)
	if nm == "" && es == "" && nd == "" {
		t.Skipf("interop tools are not configured (%s and %s are unset): run `make test`, which installs the pinned MCP servers and sets them",
			envNodeModules, envEverythingServer)
	}
	var problems []string
	var tl tools
	if nm == "" {
		problems = append(problems, envNodeModules+" is unset")
	} else {
		tl.serverEverything = filepath.Join(nm, "@modelcontextprotocol", "server-everything", "dist", "index.js")
		if _, err := os.Stat(tl.serverEverything); err != nil {
			problems = append(problems, fmt.Sprintf("%s=%s: @modelcontextprotocol/server-everything is not installed there (%v)", envNodeModules, nm, err))
		}
	}
	if es == "" {
		problems = append(problems, envEverythingServer+" is unset")
	} else if fi, err := os.Stat(es); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		problems = append(problems, fmt.Sprintf("%s=%s: not an executable file (%v)", envEverythingServer, es, err))
	} else {
		tl.goSDKServer = es
	}
	if nd == "" {
		nd = "node"
	}
	if p, err := exec.LookPath(nd); err != nil {
		problems = append(problems, fmt.Sprintf("node binary %q not found (set %s or put node in PATH): %v", nd, envNode, err))
	} else {
		tl.node = p
	}
	if len(problems) > 0 {
		t.Fatalf("interop tools are configured but unusable; run `make test` (it installs them):\n  %s", strings.Join(problems, "\n  "))
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

// minimalEnv is the environment of every child process: PATH and HOME of
// the test, plus extra ("KEY=value").
func minimalEnv(extra ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
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
	output *tailBuffer // stderr, and stdout unless the caller took it
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

// describe names the process and shows the end of its output.
func (p *proc) describe() string {
	state := "running"
	if p.exited() {
		state = fmt.Sprintf("exited: %v", p.err)
	}
	return fmt.Sprintf("%s (%s; pid %d) output:\n%s", p.name, state, p.cmd.Process.Pid, p.output.String())
}

// startProc starts bin with args and env in a new process group. configure,
// when set, runs before the start (e.g. to take stdin/stdout as pipes;
// stdout otherwise goes to the output buffer with stderr). On cleanup the
// group gets SIGTERM, then SIGKILL after a grace period; when t has failed,
// the end of the process's output is logged.
func startProc(t *testing.T, name string, env []string, configure func(*exec.Cmd), bin string, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Dir = t.TempDir()
	p := &proc{name: name, cmd: cmd, output: &tailBuffer{max: 64 << 10}, done: make(chan struct{})}
	cmd.Stderr = p.output
	if configure != nil {
		configure(cmd)
	}
	if cmd.Stdout == nil {
		cmd.Stdout = p.output
	}
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

// errProcessGone is returned by calls to a stdio process that has ended.
var errProcessGone = errors.New("process ended")
