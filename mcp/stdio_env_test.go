package mcp

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gatewaystack/gatewaystack/config"
)

// The child's environment is PATH and HOME, then inherit_env, then the env
// files, then env (later layers win), and nothing else of the gateway's.
func TestStdioEnvLayers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "a.env")
	if err := os.WriteFile(file, []byte("\uFEFF# a comment\n\nexport FROM_FILE=one\nQUOTED=\"two words\"\nSINGLE='x=y'\nLANG=from-file\nHOME=/file/home\n  SPACED = padded  \nHASH=a#b\nEMPTY=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	gw := map[string]string{"PATH": "/usr/bin:/bin", "HOME": "/home/gw", "LANG": "C.UTF-8", "SECRET": "hunter2", "TOKEN": "t0k"}
	getenv := func(k string) string { return gw[k] }
	got, err := stdioEnv("files", &config.StdioUpstream{
		InheritEnv: []string{"LANG"},
		EnvFiles:   []string{file},
		Env:        map[string]string{"API_TOKEN": "Bearer ${TOKEN}", "PATH": "/opt/bin:${PATH}"},
	}, getenv)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"API_TOKEN=Bearer t0k", "EMPTY=", "FROM_FILE=one", "HASH=a#b", "HOME=/file/home", "LANG=from-file",
		"PATH=/opt/bin:/usr/bin:/bin", "QUOTED=two words", "SINGLE=x=y", "SPACED=padded"}
	if !slices.Equal(got, want) {
		t.Errorf("env =\n %q\nwant\n %q", got, want)
	}

	got, err = stdioEnv("files", &config.StdioUpstream{}, func(string) string { return "" })
	if err != nil || len(got) != 0 {
		t.Errorf("a gateway without PATH and HOME gives %q, %v; want an empty environment", got, err)
	}
}

func TestStdioEnvErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	getenv := func(k string) string { return map[string]string{"SET": "v"}[k] }
	for _, tc := range []struct {
		name string
		s    config.StdioUpstream
		want []string
	}{
		{"an unset inherited variable", config.StdioUpstream{InheritEnv: []string{"SET", "MISSING"}},
			[]string{"upstreams[files].stdio.inherit_env[1]", "MISSING is not set"}},
		{"an unset ${VAR} in env", config.StdioUpstream{Env: map[string]string{"K": "${NOPE}"}},
			[]string{"upstreams[files].stdio.env.K", "NOPE is not set"}},
		{"a missing env file", config.StdioUpstream{EnvFiles: []string{filepath.Join(dir, "none.env")}},
			[]string{"upstreams[files].stdio.env_files[0]", "none.env"}},
		{"a line without =", config.StdioUpstream{EnvFiles: []string{write("noeq.env", "A=1\nsecret-value-here\n")}},
			[]string{"noeq.env:2: not a KEY=VALUE line"}},
		{"a bad name", config.StdioUpstream{EnvFiles: []string{write("badname.env", "# c\n1A=x\n")}},
			[]string{"badname.env:2:", `"1A" is not a valid variable name`}},
		{"an unclosed quote", config.StdioUpstream{EnvFiles: []string{write("quote.env", "A=\"open\n")}},
			[]string{"quote.env:1:", "opens a quote"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := stdioEnv("files", &tc.s, getenv)
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "secret-value-here") {
				t.Errorf("error %q shows the file's content", err)
			}
		})
	}
}
