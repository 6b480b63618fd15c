package config

// validateStdio checks a stdio upstream. f is the field path prefix.
func validateStdio(f string, s *StdioUpstream, add func(field, format string, args ...any)) {
	if s.Command == "" {
		add(f+".command", "required; the program that runs the MCP server, e.g. npx")
	}
}

// validateREST checks a REST upstream. identity maps canonical identity
// header names to the field that sets them.
func validateREST(f string, r *RESTUpstream, identity map[string]string, add func(field, format string, args ...any)) {
	if !isHTTPURL(r.BaseURL) {
		add(f+".base_url", "%q is not an absolute http(s) URL", r.BaseURL)
	}
	if len(r.Tools) == 0 {
		add(f+".tools", "declare at least one tool")
	}
}
