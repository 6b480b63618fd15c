package config

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

var (
	// restToolName follows MCP's tool-name guidance.
	restToolName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)
	// argName is an argument referenced by a REST mapping.
	argName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	// queryKey is a query parameter name the gateway sets.
	queryKey = regexp.MustCompile(`^[A-Za-z0-9_.~-]+$`)
	// methodToken is an HTTP method (RFC 9110 token, upper case).
	methodToken = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Z-]+$")
	restMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
)

// validateRESTUpstream checks a REST upstream (see validateREST).
func validateRESTUpstream(f string, r *RESTUpstream, identity map[string]string, add func(field, format string, args ...any)) {
	base, err := url.Parse(r.BaseURL)
	switch {
	case err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" || base.Fragment != "":
		add(f+".base_url", "%q is not an absolute http(s) URL of the API, e.g. https://api.example.com/v1", r.BaseURL)
	case base.User != nil:
		add(f+".base_url", "must not carry credentials; send the API key in headers, e.g. Authorization: \"Bearer ${API_KEY}\"")
	case r.InjectQuery != "" && base.Query().Has(r.InjectQuery):
		add(f+".base_url", "its query sets %q, which inject_query sets from the verified subject; remove it", r.InjectQuery)
	}
	checkInjectQuery(f+".inject_query", r.InjectQuery, add)
	checkStaticHeaders(f+".headers", r.Headers, identity, false, add)
	if len(r.Tools) == 0 {
		add(f+".tools", "declare at least one tool, e.g. {name: get_account, method: GET, path: /accounts/{id}}")
	}
	names := map[string]bool{}
	for i, t := range r.Tools {
		tf := fmt.Sprintf("%s.tools[%d]", f, i)
		switch {
		case !restToolName.MatchString(t.Name):
			add(tf+".name", "%q must be 1 to 128 letters, digits, '_', '-' or '.'", t.Name)
		case names[t.Name]:
			add(tf+".name", "%q is used twice; tool names must be unique within the upstream", t.Name)
		}
		names[t.Name] = true
		method := strings.ToUpper(t.Method)
		if method == "" {
			method = http.MethodGet
		}
		if !slices.Contains(restMethods, method) {
			add(tf+".method", "%q is not one of %s", t.Method, strings.Join(restMethods, ", "))
		}
		pathArgs, perr := pathTemplateArgs(t.Path)
		if perr != "" {
			add(tf+".path", "%s", perr)
		}
		seenQuery := map[string]bool{}
		for j, q := range t.Query {
			qf := fmt.Sprintf("%s.query[%d]", tf, j)
			switch {
			case !argName.MatchString(q):
				add(qf, "%q is not an argument name (letters, digits, '_', '-' and '.')", q)
			case seenQuery[q]:
				add(qf, "%q is listed twice", q)
			case q == r.InjectQuery:
				add(qf, "%q is the inject_query parameter, which always carries the verified subject; rename the argument", q)
			}
			seenQuery[q] = true
		}
		seenBody := map[string]bool{}
		for j, b := range t.Body {
			bf := fmt.Sprintf("%s.body[%d]", tf, j)
			switch {
			case b == "*":
			case !argName.MatchString(b):
				add(bf, "%q is not an argument name; use argument names or \"*\" (every argument not in the path or query)", b)
			case seenBody[b]:
				add(bf, "%q is listed twice", b)
			}
			seenBody[b] = true
		}
		if len(t.Body) > 0 && (method == http.MethodGet || method == http.MethodHead) {
			add(tf+".body", "a %s request carries no body; send these arguments as query parameters, or use POST", method)
		}
		if t.InputSchema != nil {
			checkInputSchema(tf+".input_schema", t.InputSchema, append(append(pathArgs, t.Query...), t.Body...), add)
		}
		checkStaticHeaders(tf+".headers", t.Headers, identity, false, add)
	}
}

// pathTemplateArgs returns the {arg} names of a REST path template, or a
// message saying what is wrong with it.
func pathTemplateArgs(tmpl string) ([]string, string) {
	const fix = `; write it like /accounts/{id}`
	switch {
	case tmpl == "":
		return nil, "required" + fix
	case !strings.HasPrefix(tmpl, "/"):
		return nil, fmt.Sprintf("%q must start with /%s", tmpl, fix)
	case strings.ContainsAny(tmpl, "?#"):
		return nil, fmt.Sprintf("%q must not contain ? or #; list query arguments under query", tmpl)
	}
	var args []string
	rest := tmpl
	for {
		i := strings.IndexAny(rest, "{}")
		if i < 0 {
			if _, err := url.PathUnescape(rest); err != nil {
				return nil, fmt.Sprintf("%q has an invalid %%-escape%s", tmpl, fix)
			}
			return args, ""
		}
		if _, err := url.PathUnescape(rest[:i]); err != nil {
			return nil, fmt.Sprintf("%q has an invalid %%-escape%s", tmpl, fix)
		}
		if rest[i] == '}' {
			return nil, fmt.Sprintf("%q has a } without {%s", tmpl, fix)
		}
		j := strings.IndexAny(rest[i+1:], "{}")
		if j < 0 || rest[i+1+j] != '}' {
			return nil, fmt.Sprintf("%q has a { without a matching }%s", tmpl, fix)
		}
		name := rest[i+1 : i+1+j]
		if !argName.MatchString(name) {
			return nil, fmt.Sprintf("%q: {%s} is not an argument name (letters, digits, '_', '-' and '.')", tmpl, name)
		}
		args = append(args, name)
		rest = rest[i+1+j+1:]
	}
}

// checkInputSchema requires an object schema that JSON can encode and,
// when it declares properties, every argument the mapping uses.
func checkInputSchema(f string, schema map[string]any, used []string, add func(field, format string, args ...any)) {
	if _, err := json.Marshal(schema); err != nil {
		add(f, "cannot be encoded as JSON (%v); use string keys only", err)
		return
	}
	if schema["type"] != "object" {
		add(f+".type", "must be object: MCP tool arguments are a JSON object")
	}
	props, ok := schema["properties"].(map[string]any)
	if !ok {
		return
	}
	seen := map[string]bool{}
	for _, a := range used {
		if a == "*" || seen[a] {
			continue
		}
		seen[a] = true
		if _, declared := props[a]; !declared {
			add(f+".properties", "does not declare %q, which the path, query or body uses; add it so clients know to send it", a)
		}
	}
}

func checkInjectQuery(f, name string, add func(field, format string, args ...any)) {
	if name != "" && !queryKey.MatchString(name) {
		add(f, "%q is not a plain query parameter name (letters, digits, '_', '-', '.', '~')", name)
	}
}

// checkStaticHeaders checks headers a REST upstream or the proxy sends:
// names must be valid, must not be (a spelling of) an identity header, nor
// one the HTTP transport owns. For the proxy (passThrough) Content-*
// headers are the caller's, and are refused too.
func checkStaticHeaders(f string, headers map[string]string, identity map[string]string, passThrough bool, add func(field, format string, args ...any)) {
	keys := make([]string, 0, len(headers))
	for k := range headers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		hf := f + "." + k
		canon := http.CanonicalHeaderKey(k)
		folded := foldHeader(k)
		owner := ""
		for id, field := range identity {
			if foldHeader(id) == folded && (owner == "" || field < owner) {
				owner = field
			}
		}
		switch {
		case !validHeaderName(k):
			add(hf, "not a valid HTTP header name")
		case owner != "":
			add(hf, "is the identity header set from %s; the gateway sets it from the verified token, remove it", owner)
		case transportHeader(canon) || passThrough && strings.HasPrefix(canon, "Content-"):
			add(hf, "the HTTP transport sets this header itself; remove it")
		}
		if strings.ContainsFunc(headers[k], func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) {
			add(hf, "the value contains control characters; write it on one line")
		}
	}
}

// foldHeader folds a header name like lenient backends do: case-insensitive,
// '_' read as '-'.
func foldHeader(h string) string { return strings.ToLower(strings.ReplaceAll(h, "_", "-")) }

func transportHeader(canon string) bool {
	switch canon {
	case "Host", "Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length":
		return true
	}
	return false
}

// validateProxy checks the /proxy pass-through.
func validateProxy(f string, p *Proxy, identity map[string]string, add func(field, format string, args ...any)) {
	if p.Target == "" {
		if len(p.Routes) > 0 || len(p.Headers) > 0 || p.InjectQuery != "" || p.DefaultRoute != nil {
			add(f+".target", "required when proxy routes, default_route, headers or inject_query are set; set the backend's base URL (or PROXY_TARGET), or remove the proxy section")
		}
		return
	}
	t, err := url.Parse(p.Target)
	switch {
	case err != nil || (t.Scheme != "http" && t.Scheme != "https") || t.Host == "" || t.Fragment != "":
		add(f+".target", "%q is not an absolute http(s) URL of the backend, e.g. http://127.0.0.1:9090", p.Target)
	case t.User != nil:
		add(f+".target", "must not carry credentials; send the backend's key in proxy.headers")
	case p.InjectQuery != "" && t.Query().Has(p.InjectQuery):
		add(f+".target", "its query sets %q, which inject_query sets from the verified subject; remove it", p.InjectQuery)
	}
	checkInjectQuery(f+".inject_query", p.InjectQuery, add)
	checkStaticHeaders(f+".headers", p.Headers, identity, true, add)
	if p.MaxBodyBytes < 1024 || p.MaxBodyBytes > 1<<40 {
		add(f+".max_body_bytes", "%d is out of range; use 1024 to 1099511627776 (default 67108864)", p.MaxBodyBytes)
	}
	if len(p.Routes) == 0 {
		add(f+".routes", "none, so every /proxy request is refused: the gateway forwards only the paths a route allows, never all by default; "+
			"add at least one route, e.g. routes: [{prefix: /accounts, methods: [GET], scopes: [accounts:read]}], "+
			"or opt in to forwarding every path to callers holding the scopes you name, as the original PROXY_TARGET did: "+
			"default_route: {scopes: [proxy:use]} (or %s=proxy:use)", EnvProxyDefaultScopes)
	}
	prefixes := map[string]bool{}
	for i, r := range p.Routes {
		rf := fmt.Sprintf("%s.routes[%d]", f, i)
		if r.fromDefault {
			rf = f + ".default_route"
		}
		norm := r.Prefix
		if norm != "/" {
			norm = strings.TrimRight(norm, "/")
		}
		switch {
		case r.fromDefault && prefixes["/"]:
			add(rf, "a route with prefix / already covers every path; remove default_route or that route")
		case !strings.HasPrefix(r.Prefix, "/"):
			add(rf+".prefix", "%q must start with /, e.g. /accounts for /proxy/accounts/...", r.Prefix)
		case strings.ContainsAny(r.Prefix, "*?[]\\;") || strings.ContainsFunc(r.Prefix, func(c rune) bool { return c < 0x20 || c == 0x7f }):
			add(rf+".prefix", "%q is a literal path prefix: no wildcards, brackets, backslashes, ';' or control characters", r.Prefix)
		case !cleanRoutePath(norm):
			add(rf+".prefix", "%q must not contain empty, \".\" or \"..\" segments", r.Prefix)
		case prefixes[norm]:
			add(rf+".prefix", "%q is used twice (a trailing slash does not count); merge the routes", r.Prefix)
		}
		prefixes[norm] = true
		for j, m := range r.Methods {
			if !methodToken.MatchString(strings.ToUpper(m)) {
				add(fmt.Sprintf("%s.methods[%d]", rf, j), "%q is not an HTTP method", m)
			}
		}
		for j, s := range r.Scopes {
			if !scopeToken.MatchString(s) {
				add(fmt.Sprintf("%s.scopes[%d]", rf, j), "%q is not a valid scope token (printable ASCII, no spaces, quotes or backslashes)", s)
			}
		}
		for j, role := range r.Roles {
			if !roleToken.MatchString(role) {
				add(fmt.Sprintf("%s.roles[%d]", rf, j), "%q is not a valid role name", role)
			}
		}
		if r.Cost != nil && (*r.Cost < 0 || *r.Cost > maxCost) {
			add(rf+".cost", "%d is out of range; use 0 (free) to %d budget units per request", *r.Cost, maxCost)
		}
	}
}

func cleanRoutePath(p string) bool {
	if p == "/" {
		return true
	}
	for _, s := range strings.Split(p[1:], "/") {
		if s == "" || s == "." || s == ".." {
			return false
		}
	}
	return true
}
