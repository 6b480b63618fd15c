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
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	run := watchPolicy(ctx, cfgPath, tick.C, hup, apply, logger)
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
	// The watcher may also read the file half-written (os.WriteFile
	// truncates first) and reject that; the policy in force stays either
	// way. Wait for the rejection that names the problem.
	waitFor("the bad policy to be rejected, naming the problem", func() bool {
		return strings.Contains(readLogs(), `policy.tools[\"finance__report\"].when`)
	})
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

// Invariant: a configuration file caught half-written is never applied. A
// truncated file can parse and validate with a restrictive rule cut off,
// letting a broader glob decide; the watcher applies a changed file only
// once its content has stayed the same from one poll to the next.
func TestWatchPolicyNeverAppliesAFileStillBeingWritten(t *testing.T) {
	t.Parallel()
	cfgPath, _, _ := explainFiles(t)
	full, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// The same file with its last policy rule cut off: still valid.
	i := strings.Index(string(full), `"finance__pay"`)
	if i < 0 {
		t.Fatal("the fixture has no finance__pay rule")
	}
	truncated := full[:i]
	var mu sync.Mutex
	var applied []int
	apply := func(c *config.Config) error {
		if err := c.Validate(); err != nil {
			return err
		}
		mu.Lock()
		applied = append(applied, len(c.Policy.Tools))
		mu.Unlock()
		return nil
	}
	if err := config.Decode(truncated, &config.Config{}); err != nil {
		// A cut that does not decode would not show the danger.
		t.Skipf("the truncated fixture does not decode: %v", err)
	}
	ticks := make(chan time.Time)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	run := watchPolicy(ctx, cfgPath, ticks, make(chan os.Signal), apply, zerolog.Nop())
	go func() { defer close(done); run() }()
	// A poll is handed over at once and processed right after; the pause
	// lets it read the file before the test writes again. (Should a poll
	// be processed late, it reads the finished file: the invariant holds
	// either way, only the check would be weaker.)
	tick := func() { ticks <- time.Now(); time.Sleep(50 * time.Millisecond) }

	// A writer has written the first part of the new file when a poll comes.
	if err := os.WriteFile(cfgPath, truncated, 0o600); err != nil {
		t.Fatal(err)
	}
	tick()
	// It finishes (the same rules plus one changed scope) before the next.
	edited := strings.Replace(string(full), `"finance__pay": { scopes: ["tool:write"] }`, `"finance__pay": { scopes: ["tool:read"] }`, 1)
	if err := os.WriteFile(cfgPath, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	tick()
	tick() // settled
	tick() // no change: nothing more
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	fullCfg, err := config.Load(cfgPath, func(string) string { return "" })
	if err != nil {
		t.Fatalf("load the edited file: %v", err)
	}
	if len(applied) != 1 || applied[0] != len(fullCfg.Policy.Tools) {
		t.Fatalf("applied policies with %v tool rules, want exactly one with the whole file's %d", applied, len(fullCfg.Policy.Tools))
	}
}
