//go:build !unix

package conformance

import (
	"os/exec"
	"time"
)

// setProcessGroup: without process groups, a cancelled context kills the
// process itself (exec's default).
func setProcessGroup(*exec.Cmd) {}

// stopGroup kills the process and waits up to grace for it to end.
func stopGroup(cmd *exec.Cmd, done <-chan struct{}, grace time.Duration) {
	_ = cmd.Process.Kill()
	select {
	case <-done:
	case <-time.After(grace):
	}
}
