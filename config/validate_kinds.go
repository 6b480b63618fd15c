package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// envName is a portable environment variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// validateStdio checks a stdio upstream. f is the field path prefix. It
// touches no file: dir and env_files are checked when the upstream starts.
func validateStdio(f string, s *StdioUpstream, add func(field, format string, args ...any)) {
	if strings.TrimSpace(s.Command) == "" {
		add(f+".command", "required; the program that runs the MCP server, e.g. npx")
	}
	keys := make([]string, 0, len(s.Env))
	for k := range s.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !envName.MatchString(k) {
			add(f+".env."+k, "%q is not a valid environment variable name (letters, digits and _, not starting with a digit)", k)
		}
		if strings.ContainsRune(s.Env[k], 0) {
			add(f+".env."+k, "the value contains a NUL byte")
		}
	}
	for i, name := range s.InheritEnv {
		if !envName.MatchString(name) {
			add(fmt.Sprintf("%s.inherit_env[%d]", f, i), "%q is not a valid environment variable name (letters, digits and _, not starting with a digit)", name)
		}
	}
	for i, file := range s.EnvFiles {
		if strings.TrimSpace(file) == "" {
			add(fmt.Sprintf("%s.env_files[%d]", f, i), "empty path; name a file of KEY=VALUE lines")
		}
	}
	if s.MaxRestarts < 0 || s.MaxRestarts > 100 {
		add(f+".max_restarts", "%d is out of range; use 0 to 100 (0 means the default, 5)", s.MaxRestarts)
	}
	if s.StopGrace < 0 || s.StopGrace > 5*time.Minute {
		add(f+".stop_grace", "%s is out of range; use 0s to 5m (0 means the default, 5s)", s.StopGrace)
	}
}

// validateREST checks a REST upstream. identity maps canonical identity
// header names to the field that sets them.
func validateREST(f string, r *RESTUpstream, identity map[string]string, add func(field, format string, args ...any)) {
	validateRESTUpstream(f, r, identity, add)
}
