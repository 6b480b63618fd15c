//go:build !unix

package upstream

import "os/exec"

// Without process groups (Windows), only the process itself is stopped, and
// it is killed at once: there is no SIGTERM.

func setProcessGroup(*exec.Cmd) {}

func terminateGroup(p *stdioProc) { _ = p.cmd.Process.Kill() }

func killGroup(p *stdioProc) { _ = p.cmd.Process.Kill() }

func groupAlive(*stdioProc) bool { return false }

func lookPath(name string, _ []string) (string, error) { return exec.LookPath(name) }
