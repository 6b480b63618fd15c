//go:build unix

package proctest

import (
	"errors"
	"os/exec"
	"syscall"
	"time"
)

// SetProcessGroup puts cmd in a process group of its own, and makes a
// cancelled context kill the whole group (npm-installed servers may start
// children of their own).
func SetProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return err
	}
}

// StopGroup sends SIGTERM to cmd's process group, waits up to grace for the
// process to end (done closed), then kills whatever is left of the group.
func StopGroup(cmd *exec.Cmd, done <-chan struct{}, grace time.Duration) {
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL) // leftovers of the group, if any
}
