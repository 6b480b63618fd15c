package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

func TestLoopbackURL(t *testing.T) {
	t.Parallel()
	cases := []struct {
		addr, want string
		wantErr    bool
	}{
		{"127.0.0.1:8080", "http://127.0.0.1:8080", false},
		{":8080", "http://127.0.0.1:8080", false},
		{"0.0.0.0:8080", "http://127.0.0.1:8080", false},
		{"[::]:8080", "http://127.0.0.1:8080", false},
		{"localhost:8080", "http://127.0.0.1:8080", false},
		{"[::1]:8080", "http://[::1]:8080", false},
		{"8080", "", true},
		{"127.0.0.1:", "", true},
		{"", "", true},
	}
	for _, c := range cases {
		got, err := loopbackURL("gateway-addr", c.addr)
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("loopbackURL(%q) = %q, %v; want %q, error %v", c.addr, got, err, c.want, c.wantErr)
		}
		var ue usageError
		if err != nil && (!errors.As(err, &ue) || !strings.Contains(err.Error(), "--gateway-addr")) {
			t.Errorf("loopbackURL(%q) error %v is not a usage error naming the flag", c.addr, err)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"127.0.0.1:5051": true, "127.1.2.3:5051": true, "[::1]:5051": true, "localhost:5051": true,
		":5051": false, "0.0.0.0:5051": false, "[::]:5051": false, "192.168.1.2:5051": false, "example.com:5051": false, "5051": false,
	} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	newFS := func() *flag.FlagSet {
		fs := newFlagSet("serve", io.Discard)
		fs.String("config", "", "")
		return fs
	}
	cases := []struct {
		name     string
		args     []string
		wantErr  string // "" for no error
		wantHelp bool
		printed  bool
	}{
		{name: "flags only", args: []string{"--config", "a.yaml"}},
		{name: "help", args: []string{"-h"}, wantHelp: true},
		{name: "unknown flag", args: []string{"--bogus"}, wantErr: "flag provided but not defined: -bogus", printed: true},
		{name: "config as an argument", args: []string{"a.yaml"}, wantErr: `unexpected argument "a.yaml"; to use it as the configuration, pass --config a.yaml`},
		{name: "flag after an argument", args: []string{"--config", "a.yaml", "extra", "--other"}, wantErr: `unexpected argument "extra"; flags must come before other arguments`},
	}
	for _, c := range cases {
		err := parseFlags(newFS(), c.args)
		switch {
		case c.wantHelp:
			if !errors.Is(err, flag.ErrHelp) {
				t.Errorf("%s: err %v, want flag.ErrHelp", c.name, err)
			}
		case c.wantErr == "":
			if err != nil {
				t.Errorf("%s: err %v", c.name, err)
			}
		default:
			var ue usageError
			if !errors.As(err, &ue) || ue.msg != c.wantErr || ue.printed != c.printed {
				t.Errorf("%s: err %#v, want usage error %q (printed %v)", c.name, err, c.wantErr, c.printed)
			}
		}
	}
}

// TestRunExitCodes runs commands that end before doing any I/O in process.
func TestRunExitCodes(t *testing.T) {
	cases := []struct {
		args       []string
		code       int
		wantStderr string
		wantStdout string
	}{
		{nil, 2, "Usage:", ""},
		{[]string{"bogus"}, 2, `unknown command "bogus"`, ""},
		{[]string{"mint"}, 2, "gatewaystack mint: --sub is required, e.g. --sub alice\nusage: gatewaystack mint", ""},
		{[]string{"mint", "--nope"}, 2, "flag provided but not defined: -nope\nusage: gatewaystack mint", ""},
		{[]string{"validate"}, 2, "--config is required", ""},
		{[]string{"help"}, 0, "", "Usage:"},
		{[]string{"version"}, 0, "", "gatewaystack " + version},
	}
	for _, c := range cases {
		var stdout, stderr bytes.Buffer
		code := run(c.args, &stdout, &stderr)
		if code != c.code || !strings.Contains(stderr.String(), c.wantStderr) || !strings.Contains(stdout.String(), c.wantStdout) {
			t.Errorf("run(%q) = %d\nstdout: %s\nstderr: %s\nwant %d, stderr with %q, stdout with %q", c.args, code, &stdout, &stderr, c.code, c.wantStderr, c.wantStdout)
		}
		if n := strings.Count(stderr.String(), "flag provided but not defined"); n > 1 {
			t.Errorf("run(%q) prints the error %d times", c.args, n)
		}
	}
}

// --pprof serves the profiling endpoints on loopback only.
func TestServePprofFlagIsLoopbackOnly(t *testing.T) {
	t.Parallel()
	r := runCmd(t, childEnv(), "serve", "--config", "x.yaml", "--pprof", "0.0.0.0:6060")
	if r.code != 2 || !strings.Contains(r.stderr, "must be a loopback host:port") {
		t.Errorf("--pprof on all interfaces: exit %d\n%s", r.code, r.stderr)
	}
}
