//go:build !unix

package proctest

import (
	"os/exec"
	"time"
)

// SetProcessGroup: without process groups, a cancelled context kills the
// process itself (exec's default).
func SetProcessGroup(*exec.Cmd) {}

// StopGroup kills the process and waits up to grace for it to end.
func StopGroup(cmd *exec.Cmd, done <-chan struct{}, grace time.Duration) {
	_ = cmd.Process.Kill()
	select {
	case <-done:
	case <-time.After(grace):
	}
}
