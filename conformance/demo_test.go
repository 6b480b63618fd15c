package conformance

// The real gatewaystack binary, built once per test run (only when a test
// needs it), started as `gatewaystack demo` on free loopback ports.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const buildTimeout = 5 * time.Minute

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// gatewaystackBinary builds ../cmd/gatewaystack once (with -race when the
// tests run with it, so the children are checked too) and returns its path.
func gatewaystackBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "gatewaystack-conformance-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "gatewaystack")
		args := []string{"build", "-o", binPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "../cmd/gatewaystack")
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", args...)
		// Offline: the test binary was built from the same modules.
		cmd.Env = append(os.Environ(), "GOPROXY=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build gatewaystack: %v", buildErr)
	}
	return binPath
}

// demoRun is a running `gatewaystack demo`.
type demoRun struct {
	p *proc
	// gateway is the MCP endpoint, issuer the demo issuer's base URL.
	gateway, issuer string
}

// startDemo starts `gatewaystack demo` with extra flags on free ports and
// waits until the gateway has the issuer's keys. A port taken between
// picking and binding is retried once.
func startDemo(t *testing.T, extra ...string) *demoRun {
	t.Helper()
	bin := gatewaystackBinary(t)
	for attempt := 0; ; attempt++ {
		gw, iss, up := freePort(t), freePort(t), freePort(t)
		args := append([]string{"demo",
			"--gateway-addr", fmt.Sprintf("127.0.0.1:%d", gw),
			"--issuer-addr", fmt.Sprintf("127.0.0.1:%d", iss),
			"--upstream-addr", fmt.Sprintf("127.0.0.1:%d", up),
			"--log-level", "warn"}, extra...)
		p := startProc(t, "gatewaystack "+strings.Join(args, " "), "", minimalEnv(t), bin, args...)
		d := &demoRun{p: p, gateway: fmt.Sprintf("http://127.0.0.1:%d/mcp", gw), issuer: fmt.Sprintf("http://127.0.0.1:%d", iss)}
		if waitGatewayReady(t, p, fmt.Sprintf("http://127.0.0.1:%d/health", gw)) {
			return d
		}
		if attempt > 0 || !strings.Contains(p.output.String(), "address already in use") {
			t.Fatalf("gatewaystack demo exited before it was ready: %s", p.describe())
		}
	}
}

// waitGatewayReady polls the gateway's /health until it reports the
// issuer's keys loaded. It returns false when p exits first, and fails t
// after readyTimeout.
func waitGatewayReady(t *testing.T, p *proc, healthURL string) bool {
	t.Helper()
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(readyTimeout)
	var last string
	for time.Now().Before(deadline) {
		if p != nil && p.exited() {
			return false
		}
		resp, err := hc.Get(healthURL)
		if err == nil {
			var h struct {
				JWKSReady bool `json:"jwks_ready"`
			}
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			_ = resp.Body.Close()
			if json.Unmarshal(b, &h) == nil && h.JWKSReady {
				return true
			}
			last = string(b)
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the gateway did not load the issuer's keys within %s; last %s: %s", readyTimeout, healthURL, last)
	return false
}
