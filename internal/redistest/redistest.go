// Package redistest starts a real redis-server on a loopback port for a
// test and stops it when the test ends. The binary is
// $GATEWAYSTACK_REDIS_SERVER, else redis-server on PATH (make test installs
// it when missing). Without one, the test is skipped — unless
// GATEWAYSTACK_REQUIRE_REDIS=1 (set by make test), when it fails.
//
// StartCluster starts one as a one-node Redis Cluster; StartProxy puts a
// TCP proxy in front of one that can lose a script's reply after Redis ran
// the script, so that the client retries it.
package redistest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gatewaystack/gatewaystack/internal/proctest"
)

// Server is one redis-server process.
type Server struct {
	t    testing.TB
	bin  string
	port int
	dir  string
	args []string // extra arguments (StartCluster)
	cmd  *exec.Cmd
	done chan struct{}
	log  syncBuffer // the server's output, shown when the test fails
}

// syncBuffer is a bytes.Buffer safe for the process's writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Start starts a redis-server on a free loopback port, without persistence.
func Start(t testing.TB) *Server {
	t.Helper()
	return startWith(t)
}

// startWith starts a redis-server with extra arguments.
func startWith(t testing.TB, args ...string) *Server {
	t.Helper()
	bin := os.Getenv("GATEWAYSTACK_REDIS_SERVER")
	if bin == "" {
		p, err := exec.LookPath("redis-server")
		if err != nil {
			if os.Getenv("GATEWAYSTACK_REQUIRE_REDIS") == "1" {
				t.Fatalf("redis-server not found on PATH (make test installs it with apt-get): %v", err)
			}
			t.Skip("redis-server not installed; `make test` installs it")
		}
		bin = p
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	s := &Server{t: t, bin: bin, port: port, dir: t.TempDir(), args: args}
	s.start()
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("redis-server output:\n%s", s.log.String())
		}
	})
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL is the redis:// URL of the server.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

func (s *Server) start() {
	s.t.Helper()
	args := append([]string{
		"--bind", "127.0.0.1", "--port", strconv.Itoa(s.port),
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--protected-mode", "yes", "--loglevel", "warning"}, s.args...)
	cmd := exec.CommandContext(context.Background(), s.bin, args...)
	cmd.Stdout, cmd.Stderr = &s.log, &s.log
	proctest.SetProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(s.done)
	if err := s.waitReady(10 * time.Second); err != nil {
		s.Stop()
		s.t.Fatalf("redis-server on %s: %v", s.Addr(), err)
	}
}

// waitReady polls until the server answers PING.
func (s *Server) waitReady(limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		if err := ping(ctx, s.Addr()); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready after %s", limit)
		case <-s.done:
			return fmt.Errorf("exited before it was ready")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ping sends an inline PING and expects +PONG.
func ping(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	buf := make([]byte, 7)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if string(buf[:n]) != "+PONG\r\n" {
		return fmt.Errorf("unexpected reply %q", buf[:n])
	}
	return nil
}

// Stop stops the server (SIGTERM, then SIGKILL; nothing is saved) and
// waits for it to end. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	proctest.StopGroup(s.cmd, s.done, 5*time.Second)
	<-s.done
	s.cmd = nil
}

// Restart starts the server again on the same port (empty: nothing was
// persisted).
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}
