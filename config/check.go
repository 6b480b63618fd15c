package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Report is everything validate says about a configuration.
type Report struct {
	// Config is the configuration as far as it could be loaded: decoded
	// (values that did not decode keep their defaults), environment
	// overrides applied, defaults filled. Nil when the file is not YAML.
	Config *Config
	// Problems are errors: serve refuses to start on any of them.
	Problems Problems
	// Warnings are settings that work but probably do not do what was
	// meant (Config.Warnings, then AuditWarnings).
	Warnings Problems
}

// CheckOptions tune Check.
type CheckOptions struct {
	// SkipEnvironment leaves out CheckEnvironment's problems (unset
	// variables that serve would need): for checking a file where its
	// secrets are not set, e.g. in CI.
	SkipEnvironment bool
}

// Check loads the configuration at path (none when path is "") with
// getenv's overrides, like Load, and checks it, collecting every problem in
// one pass instead of stopping at the first stage that fails:
//
//  1. decoding problems: YAML syntax (which stops the rest), unknown keys
//     with the nearest known key, duplicate keys, values of the wrong type
//     with the form to write, each with line:column;
//  2. malformed environment overrides (under the variable's name);
//  3. what Validate reports, leaving out problems that only repeat a
//     decoding problem (a "required" field whose key was misspelled), each
//     located in the file (line:column) when its setting is written there,
//     or named by the environment variable that set it;
//  4. what CheckEnvironment reports, unless o.SkipEnvironment;
//
// and the warnings of Warnings and AuditWarnings. The error is for a file
// that cannot be read only.
func Check(path string, getenv func(string) string, o CheckOptions) (Report, error) {
	var c Config
	d := &decoded{at: map[string]position{}}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Report{}, fmt.Errorf("check config %s: %w", path, err)
		}
		d = decodeDocument(data, &c)
		if d.fatal {
			return Report{Problems: d.problems}, nil
		}
	}
	r := Report{Problems: d.problems}
	if getenv != nil {
		r.Problems = append(r.Problems, c.applyEnv(getenv)...)
	}
	c.SetDefaults()
	r.Config = &c
	locate := func(p Problem) Problem {
		if p.Line > 0 {
			return p
		}
		if env := c.envSource(p.Field, getenv); env != "" {
			p.Env = env
		} else if at, ok := d.at[p.Field]; ok {
			p.Line, p.Column = at.line, at.col
		}
		return p
	}
	if err := c.Validate(); err != nil {
		var ps Problems
		if !errors.As(err, &ps) {
			return Report{}, fmt.Errorf("check config: %w", err)
		}
		for _, p := range ps {
			if !d.covers(p.Field) {
				r.Problems = append(r.Problems, locate(p))
			}
		}
	}
	if !o.SkipEnvironment {
		env := getenv
		if env == nil {
			env = func(string) string { return "" }
		}
		for _, p := range c.CheckEnvironment(env) {
			r.Problems = append(r.Problems, locate(p))
		}
	}
	for _, w := range c.Warnings() {
		r.Warnings = append(r.Warnings, locate(w))
	}
	for _, w := range c.AuditWarnings() {
		field, msg, _ := strings.Cut(w, ": ")
		r.Warnings = append(r.Warnings, locate(Problem{Field: field, Message: msg}))
	}
	return r, nil
}
