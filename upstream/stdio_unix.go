//go:build unix

package upstream

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// setProcessGroup puts the child in a process group of its own, so that the
// whole group (npx and the node it starts, say) can be signalled at once,
// and a Ctrl-C at the gateway's terminal does not reach it directly.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// terminateGroup sends SIGTERM to p's process group.
func terminateGroup(p *stdioProc) { _ = syscall.Kill(-p.pid, syscall.SIGTERM) }

// killGroup sends SIGKILL to p's process group (a no-op when it is empty).
func killGroup(p *stdioProc) { _ = syscall.Kill(-p.pid, syscall.SIGKILL) }

// groupAlive reports whether p's process group still has members.
func groupAlive(p *stdioProc) bool {
	err := syscall.Kill(-p.pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// lookPath finds name in the PATH of the child's environment env (not the
// gateway's, which may differ). A name with a slash is used as is (relative
// to the child's directory); relative PATH entries are skipped, like
// os/exec refuses them.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path, found := "", false
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path, found = v, true
		}
	}
	if !found {
		return "", fmt.Errorf("command %q has no slash and the environment has no PATH to find it in; give its absolute path or set PATH", name)
	}
	for _, dir := range filepath.SplitList(path) {
		if !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("command %q not found in PATH %q: %w", name, path, exec.ErrNotFound)
}
