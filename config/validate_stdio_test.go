package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// A stdio upstream gets its defaults (max_restarts 5, stop_grace 5s) and
// every problem of it is reported with the field path.
func TestValidateStdio(t *testing.T) {
	t.Parallel()
	withStdio := func(s StdioUpstream) *Config {
		c := valid()
		c.Upstreams = append(c.Upstreams, Upstream{Name: "files", Stdio: &s})
		c.SetDefaults()
		return c
	}

	c := withStdio(StdioUpstream{Command: "npx", Args: []string{"-y", "@modelcontextprotocol/server-filesystem", "/tmp"}})
	if err := c.Validate(); err != nil {
		t.Fatalf("a plain stdio upstream must be valid: %v", err)
	}
	eq(t, "max_restarts default", c.Upstreams[2].Stdio.MaxRestarts, 5)
	eq(t, "stop_grace default", c.Upstreams[2].Stdio.StopGrace, 5*time.Second)

	c = withStdio(StdioUpstream{Command: "srv", MaxRestarts: 100, StopGrace: 5 * time.Minute,
		Env: map[string]string{"_A1": "x", "b": "${HOME}"}, InheritEnv: []string{"LANG"}, EnvFiles: []string{"a.env"}, Dir: "/nonexistent/is/not/checked"})
	if err := c.Validate(); err != nil {
		t.Fatalf("limits and names at the edge must be valid: %v", err)
	}

	c = withStdio(StdioUpstream{Command: " ", MaxRestarts: 101, StopGrace: 6 * time.Minute,
		Env:        map[string]string{"1BAD": "x", "A-B": "y", "OK": "nul\x00"},
		InheritEnv: []string{"GOOD", "NOT GOOD"}, EnvFiles: []string{""}})
	err := c.Validate()
	ps, ok := err.(Problems)
	if !ok {
		t.Fatalf("want Problems, got %v", err)
	}
	var fields []string
	for _, p := range ps {
		fields = append(fields, p.Field)
	}
	want := []string{
		"upstreams[2].stdio.command",
		"upstreams[2].stdio.env.1BAD",
		"upstreams[2].stdio.env.A-B",
		"upstreams[2].stdio.env.OK",
		"upstreams[2].stdio.inherit_env[1]",
		"upstreams[2].stdio.env_files[0]",
		"upstreams[2].stdio.max_restarts",
		"upstreams[2].stdio.stop_grace",
	}
	if !slices.Equal(fields, want) {
		t.Errorf("problems at\n %q\nwant\n %q\n(%v)", fields, want, err)
	}
	for _, p := range ps {
		if strings.HasSuffix(p.Field, "max_restarts") && !strings.Contains(p.Message, "0 to 100") {
			t.Errorf("max_restarts message does not give the range: %s", p)
		}
	}

	c = withStdio(StdioUpstream{Command: "srv", MaxRestarts: -1, StopGrace: -time.Second})
	ps, _ = c.Validate().(Problems)
	if len(ps) != 2 {
		t.Errorf("negative max_restarts and stop_grace: got %v", ps)
	}
}
