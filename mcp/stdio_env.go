package mcp

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/gatewaystack/gatewaystack/config"
)

// envVarName is a portable environment variable name.
var envVarName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// stdioEnv assembles the complete environment of a stdio upstream's process,
// in this order (later layers win):
//
//  1. PATH and HOME of the gateway, when set;
//  2. each variable named in inherit_env (unset or empty is an error, like
//     an unset ${VAR});
//  3. the env_files, in order (KEY=VALUE lines; see readEnvFile);
//  4. env, whose values may reference ${VAR} of the gateway's environment.
//
// Nothing else of the gateway's environment reaches the process. name is
// the upstream's name, for errors.
func stdioEnv(name string, s *config.StdioUpstream, getenv func(string) string) ([]string, error) {
	env := map[string]string{}
	for _, k := range []string{"PATH", "HOME"} {
		if v := getenv(k); v != "" {
			env[k] = v
		}
	}
	for i, k := range s.InheritEnv {
		v := getenv(k)
		if v == "" {
			return nil, fmt.Errorf("upstreams[%s].stdio.inherit_env[%d]: environment variable %s is not set; export it before starting the gateway, or remove it", name, i, k)
		}
		env[k] = v
	}
	for i, file := range s.EnvFiles {
		vars, err := readEnvFile(file)
		if err != nil {
			return nil, fmt.Errorf("upstreams[%s].stdio.env_files[%d]: %w", name, i, err)
		}
		for _, kv := range vars {
			env[kv[0]] = kv[1]
		}
	}
	for k, v := range s.Env {
		expanded, err := expandEnv(v, getenv)
		if err != nil {
			return nil, fmt.Errorf("upstreams[%s].stdio.env.%s: %w", name, k, err)
		}
		env[k] = expanded
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out, nil
}

// readEnvFile reads KEY=VALUE lines. Blank lines and lines starting with #
// are skipped; a line may start with "export "; a value wrapped in matching
// single or double quotes loses them. Nothing else is interpreted: no ${VAR}
// expansion, no escapes, no comments after a value. A malformed line is an
// error naming file:line (never its content, which may be a secret).
func readEnvFile(path string) ([][2]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read env file: %w", err)
	}
	defer f.Close()
	var out [][2]string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if n == 1 {
			line = strings.TrimPrefix(line, "\uFEFF")
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "export "); ok {
			line = strings.TrimSpace(rest)
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		switch {
		case !ok:
			return nil, fmt.Errorf("%s:%d: not a KEY=VALUE line", path, n)
		case !envVarName.MatchString(k):
			return nil, fmt.Errorf("%s:%d: %q is not a valid variable name (letters, digits and _, not starting with a digit)", path, n, k)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		} else if len(v) > 0 && (v[0] == '"' || v[0] == '\'') {
			return nil, fmt.Errorf("%s:%d: the value of %s opens a quote it does not close", path, n, k)
		}
		if strings.ContainsRune(v, 0) {
			return nil, fmt.Errorf("%s:%d: the value of %s contains a NUL byte", path, n, k)
		}
		out = append(out, [2]string{k, v})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read env file %s: %w", path, err)
	}
	return out, nil
}
