package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gatewaystack/gatewaystack/config"
)

func TestWatchPolicyReloadsOnChangeAndSIGHUPAndRejectsBadPolicy(t *testing.T) {
	t.Parallel()
	cfgPath, _, _ := explainFiles(t)
	var mu sync.Mutex
	var applied []*config.Config
	var logs bytes.Buffer
	apply := func(c *config.Config) error {
		if err := c.Validate(); err != nil {
			return err
		}
		mu.Lock()
		applied = append(applied, c)
		mu.Unlock()
		return nil
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(applied) }
	var logMu sync.Mutex
	logger := zerolog.New(lockedWriter{&logMu, &logs})
	readLogs := func() string { logMu.Lock(); defer logMu.Unlock(); return logs.String() }
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; logs:\n%s", what, readLogs())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hup := make(chan os.Signal, 1)
	done := make(chan struct{})
	run := watchPolicy(ctx, cfgPath, 20*time.Millisecond, hup, apply, logger)
	go func() {
		defer close(done)
		run()
	}()

	data, _ := os.ReadFile(cfgPath)
	edited := strings.Replace(string(data), `"finance__pay": { scopes: ["tool:write"] }`, `"finance__pay": { scopes: ["tool:read"] }`, 1)
	if err := os.WriteFile(cfgPath, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor("a reload after the file changed", func() bool { return count() == 1 })
	mu.Lock()
	if got := applied[0].Policy.Tools["finance__pay"].Scopes; len(got) != 1 || got[0] != "tool:read" {
		t.Fatalf("applied the wrong policy: %v", got)
	}
	mu.Unlock()

	hup <- os.Interrupt // any value: the channel stands for SIGHUP
	waitFor("a reload on SIGHUP", func() bool { return count() == 2 })

	bad := strings.Replace(edited, `'"finance-analyst" in identity.roles'`, `'"finance-analyst" in'`, 1)
	if err := os.WriteFile(filepath.Clean(cfgPath), []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor("the bad policy to be rejected", func() bool { return strings.Contains(readLogs(), "policy reload rejected") })
	if !strings.Contains(readLogs(), `policy.tools[\"finance__report\"].when`) {
		t.Fatalf("the rejection must name the problem:\n%s", readLogs())
	}
	if count() != 2 {
		t.Fatal("a bad policy was applied")
	}
	cancel()
	<-done
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestServeReloadsPolicyOnSIGHUP runs the real binary: SIGHUP with a broken
// policy logs the problems and keeps serving; SIGHUP with a good one applies it.
func TestServeReloadsPolicyOnSIGHUP(t *testing.T) {
	t.Parallel()
	port := freePorts(t, 1)[0]
	cfgPath, _, _ := explainFiles(t)
	data, _ := os.ReadFile(cfgPath)
	good := strings.ReplaceAll(string(data), "127.0.0.1:18080", addr(port))
	if err := os.WriteFile(cfgPath, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, childEnv(), "serve", "--config", cfgPath)
	waitFor(t, p, startTimeout, "gateway serving", func() bool { return strings.Contains(p.stderr.String(), "gateway serving") })

	bad := strings.Replace(good, `'"finance-analyst" in identity.roles'`, `'"finance-analyst" in'`, 1)
	if err := os.WriteFile(cfgPath, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, p, startTimeout, "the bad policy rejected", func() bool { return strings.Contains(p.stderr.String(), "policy reload rejected") })
	if p.exited() {
		t.Fatal("the gateway stopped on a bad policy")
	}
	if err := os.WriteFile(cfgPath, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, p, startTimeout, "the good policy applied", func() bool { return strings.Contains(p.stderr.String(), "policy reloaded") })
	if code, _ := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}
