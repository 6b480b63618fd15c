package config

import (
	"fmt"
	"os"
	"slices"
	"strings"
)

// CheckEnvironment reports what serve needs from the process environment
// and would not find, so that validate catches it before serve refuses to
// start: every ${VAR} in the static headers of MCP and REST upstreams, REST
// tools, /proxy and the audit webhook, and in stdio env values, whose
// variable is unset or empty (serve expands them at start-up, exactly as
// here, and refuses an empty one); every stdio inherit_env variable that is
// unset or empty; and every stdio env_files file that cannot be opened.
// getenv nil means an empty environment. It changes nothing; it opens the
// env_files to see that they can be read.
func (c *Config) CheckEnvironment(getenv func(string) string) Problems {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	var ps Problems
	refs := func(field string, headers map[string]string) {
		for _, k := range sortedKeys(headers) {
			if missing := unsetRefs(headers[k], getenv); len(missing) > 0 {
				ps = append(ps, Problem{Field: field + "." + k, Message: unsetMessage(missing)})
			}
		}
	}
	for i, u := range c.Upstreams {
		f := fmt.Sprintf("upstreams[%d]", i)
		switch {
		case u.MCP != nil:
			refs(f+".mcp.headers", u.MCP.Headers)
		case u.REST != nil:
			refs(f+".rest.headers", u.REST.Headers)
			for j, t := range u.REST.Tools {
				refs(fmt.Sprintf("%s.rest.tools[%d].headers", f, j), t.Headers)
			}
		case u.Stdio != nil:
			s := u.Stdio
			for j, name := range s.InheritEnv {
				if getenv(name) == "" {
					ps = append(ps, Problem{Field: fmt.Sprintf("%s.stdio.inherit_env[%d]", f, j),
						Message: fmt.Sprintf("environment variable %s is not set; export it before starting the gateway (serve refuses to start without it), or remove it", name)})
				}
			}
			for j, file := range s.EnvFiles {
				if strings.TrimSpace(file) == "" {
					continue // Validate reports it
				}
				if fh, err := os.Open(file); err != nil {
					ps = append(ps, Problem{Field: fmt.Sprintf("%s.stdio.env_files[%d]", f, j),
						Message: fmt.Sprintf("cannot be read (%v); create it or fix the path (a relative path is relative to the gateway's working directory)", err)})
				} else {
					_ = fh.Close()
				}
			}
			refs(f+".stdio.env", s.Env)
		}
	}
	if c.Proxy.Target != "" {
		refs("proxy.headers", c.Proxy.Headers)
	}
	if c.Audit.Webhook.URL != "" {
		refs("audit.webhook.headers", c.Audit.Webhook.Headers)
	}
	return ps
}

// unsetRefs returns the variables a value references that getenv leaves
// empty, reading the value as serve's expansion does: only a value holding
// "${" is expanded, and then with os.Expand (which also reads $VAR).
func unsetRefs(v string, getenv func(string) string) []string {
	if !strings.Contains(v, "${") {
		return nil
	}
	var missing []string
	os.Expand(v, func(name string) string {
		val := getenv(name)
		if val == "" && !slices.Contains(missing, name) {
			missing = append(missing, name)
		}
		return val
	})
	return missing
}

func unsetMessage(missing []string) string {
	if len(missing) > 1 {
		return "environment variables " + strings.Join(missing, ", ") + " are not set; export them before starting the gateway (serve refuses to start without them)"
	}
	return "environment variable " + missing[0] + " is not set; export it before starting the gateway (serve refuses to start without it)"
}

// sortedKeys returns m's keys in order, for a stable report.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
