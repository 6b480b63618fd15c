package upstream

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"
)

// Limits of a REST upstream's answers.
const (
	// DefaultRESTMaxResponseBytes bounds the body read from a REST API.
	DefaultRESTMaxResponseBytes = 4 << 20
	// restErrorExcerptBytes bounds the body restExcerpt of a non-2xx answer.
	restErrorExcerptBytes = 2 << 10
)

// restCodeInvalidParams is JSON-RPC's "invalid params".
const restCodeInvalidParams = -32602

// RESTOptions configures a RESTClient.
type RESTOptions struct {
	// Name of the upstream, used in errors and tool results.
	Name string
	// BaseURL is the API's base URL; tool paths are appended to its path.
	BaseURL string
	// Headers are static headers sent on every request (the API's
	// credential), already expanded.
	Headers map[string]string
	// InjectQuery, when set, sends the verified subject as this query
	// parameter, replacing any value of that name. The parameter's value
	// (once the URL's own escaping is undone) is the subject encoded by
	// EncodeIdentityValue, as in the user header.
	InjectQuery string
	// Tools are the declared tools.
	Tools []RESTTool
	// HTTPClient is the shared, tuned client. Redirects are never
	// followed: a 3xx is reported like any other non-2xx answer, so
	// neither the credential nor the identity is sent to another host.
	HTTPClient *http.Client
	// Timeout bounds each call (default 30 s).
	Timeout time.Duration
	// MaxResponseBytes bounds the body read (default 4 MiB).
	MaxResponseBytes int64
	// Logger receives transport errors (addresses included), which tool
	// results never show.
	Logger zerolog.Logger
}

// RESTTool is one tool mapped onto one HTTP request.
type RESTTool struct {
	Name        string
	Title       string
	Description string
	// InputSchema is the tool's JSON Schema; nil means {"type":"object"}.
	InputSchema json.RawMessage
	// Method is the HTTP method (default GET).
	Method string
	// Path is a template relative to the base URL: {arg} is replaced by
	// the path-escaped argument (a string, number or boolean; required).
	Path string
	// Query lists arguments sent as query parameters; an array argument
	// repeats the parameter.
	Query []string
	// Body lists arguments sent as a JSON object body; "*" sends every
	// argument that is not used in the path or the query.
	Body []string
	// Headers are static headers of this tool, over the upstream's.
	Headers map[string]string
}

// RESTClient is an upstream made of tools declared in configuration, each
// mapped onto one HTTP request to a plain REST API. Every request is built
// from scratch: the static headers, the identity headers of the verified
// caller (from IdentityFrom) and, when configured, the subject as a query
// parameter. It answers tools/list from the configuration, tools/call by
// calling the API, ping, and nothing else (-32601). Safe for concurrent use.
type RESTClient struct {
	name        string
	base        *url.URL
	static      http.Header
	injectQuery string
	tools       map[string]*restTool
	list        json.RawMessage
	hc          *http.Client
	timeout     time.Duration
	maxResp     int64
	log         zerolog.Logger
}

var _ Caller = (*RESTClient)(nil)

// restTool is a RESTTool prepared for calls.
type restTool struct {
	method   string
	template string
	parts    []restPathPart
	inPath   map[string]bool
	query    []string
	inQuery  map[string]bool
	body     []string
	bodyAll  bool
	hasBody  bool
	headers  http.Header
	jsonType bool // headers do not set Content-Type
}

// restPathPart is a literal piece of a path template (already escaped, as
// written) or an argument.
type restPathPart struct {
	literal string
	arg     string
}

// ErrRESTConfig: a REST upstream's options are unusable.
var ErrRESTConfig = errors.New("upstream: invalid REST upstream")

// NewRESTClient prepares the tools (path templates parsed, tools/list
// answer built once).
func NewRESTClient(o RESTOptions) (*RESTClient, error) {
	base, err := url.Parse(o.BaseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("%w %s: base URL %q is not an absolute http(s) URL", ErrRESTConfig, o.Name, o.BaseURL)
	}
	base.Fragment, base.RawFragment = "", ""
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = DefaultRESTMaxResponseBytes
	}
	hc := http.DefaultClient
	if o.HTTPClient != nil {
		hc = o.HTTPClient
	}
	noRedirect := *hc
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c := &RESTClient{
		name: o.Name, base: base, static: restHeader(o.Headers), injectQuery: o.InjectQuery,
		tools: make(map[string]*restTool, len(o.Tools)), hc: &noRedirect,
		timeout: o.Timeout, maxResp: o.MaxResponseBytes, log: o.Logger,
	}
	defs := make([]json.RawMessage, 0, len(o.Tools))
	for _, t := range o.Tools {
		if t.Name == "" {
			return nil, fmt.Errorf("%w %s: a tool has no name", ErrRESTConfig, o.Name)
		}
		if _, dup := c.tools[t.Name]; dup {
			return nil, fmt.Errorf("%w %s: tool %q is declared twice", ErrRESTConfig, o.Name, t.Name)
		}
		rt, err := prepareRESTTool(t, c.static)
		if err != nil {
			return nil, fmt.Errorf("%w %s: tool %s: %w", ErrRESTConfig, o.Name, t.Name, err)
		}
		c.tools[t.Name] = rt
		def, err := restToolDefinition(t)
		if err != nil {
			return nil, fmt.Errorf("%w %s: tool %s: %w", ErrRESTConfig, o.Name, t.Name, err)
		}
		defs = append(defs, def)
	}
	list, err := json.Marshal(map[string]any{"tools": defs})
	if err != nil {
		return nil, fmt.Errorf("%w %s: encode tools: %w", ErrRESTConfig, o.Name, err)
	}
	c.list = list
	return c, nil
}

func restHeader(m map[string]string) http.Header {
	h := make(http.Header, len(m))
	for k, v := range m {
		h.Set(k, v)
	}
	return h
}

// parseRESTPath splits a path template into literal pieces (valid escaped path
// text, kept as written) and {arg} references.
func parseRESTPath(tmpl string) ([]restPathPart, error) {
	if !strings.HasPrefix(tmpl, "/") {
		return nil, fmt.Errorf("path %q must start with /", tmpl)
	}
	if strings.ContainsAny(tmpl, "?#") {
		return nil, fmt.Errorf("path %q must not contain ? or #; list query arguments under query", tmpl)
	}
	var parts []restPathPart
	rest := tmpl
	for rest != "" {
		open := strings.IndexAny(rest, "{}")
		if open < 0 {
			parts = append(parts, restPathPart{literal: rest})
			break
		}
		if rest[open] == '}' {
			return nil, fmt.Errorf("path %q has a } without {", tmpl)
		}
		if open > 0 {
			parts = append(parts, restPathPart{literal: rest[:open]})
		}
		end := strings.IndexAny(rest[open+1:], "{}")
		if end < 0 || rest[open+1+end] != '}' {
			return nil, fmt.Errorf("path %q has a { without a matching }", tmpl)
		}
		name := rest[open+1 : open+1+end]
		if !restArgName(name) {
			return nil, fmt.Errorf("path %q: {%s} is not an argument name (letters, digits, _, - and .)", tmpl, name)
		}
		parts = append(parts, restPathPart{arg: name})
		rest = rest[open+1+end+1:]
	}
	for _, p := range parts {
		if p.literal == "" {
			continue
		}
		if _, err := url.PathUnescape(p.literal); err != nil {
			return nil, fmt.Errorf("path %q: %q is not valid escaped path text", tmpl, p.literal)
		}
	}
	return parts, nil
}

func restArgName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == '-' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func prepareRESTTool(t RESTTool, static http.Header) (*restTool, error) {
	parts, err := parseRESTPath(t.Path)
	if err != nil {
		return nil, err
	}
	method := strings.ToUpper(t.Method)
	if method == "" {
		method = http.MethodGet
	}
	rt := &restTool{method: method, template: t.Path, parts: parts,
		inPath: map[string]bool{}, query: t.Query, inQuery: map[string]bool{}}
	for _, p := range parts {
		if p.arg != "" {
			rt.inPath[p.arg] = true
		}
	}
	for _, q := range t.Query {
		rt.inQuery[q] = true
	}
	for _, b := range t.Body {
		if b == "*" {
			rt.bodyAll = true
			continue
		}
		rt.body = append(rt.body, b)
	}
	rt.hasBody = len(t.Body) > 0
	rt.headers = static.Clone()
	for k, v := range t.Headers {
		rt.headers.Set(k, v)
	}
	rt.jsonType = rt.headers.Get("Content-Type") == ""
	if rt.headers.Get("Accept") == "" {
		rt.headers.Set("Accept", "application/json")
	}
	return rt, nil
}

// restToolDefinition is the MCP tool object of t.
func restToolDefinition(t RESTTool) (json.RawMessage, error) {
	schema := t.InputSchema
	if len(bytes.TrimSpace(schema)) == 0 {
		schema = json.RawMessage(`{"type":"object"}`)
	}
	if !json.Valid(schema) {
		return nil, fmt.Errorf("input schema is not valid JSON")
	}
	def := struct {
		Name        string          `json:"name"`
		Title       string          `json:"title,omitempty"`
		Description string          `json:"description,omitempty"`
		InputSchema json.RawMessage `json:"inputSchema"`
	}{t.Name, t.Title, t.Description, schema}
	return json.Marshal(def)
}

// Name returns the upstream's name.
func (c *RESTClient) Name() string { return c.name }

// Close releases nothing: connections belong to the shared client.
func (c *RESTClient) Close() error { return nil }

var _ Prober = (*RESTClient)(nil)

// Probe checks that the API answers HTTP at its base URL (a HEAD without
// credentials or identity; any status counts as reachable), for /health.
func (c *RESTClient) Probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, c.base.String(), nil)
	if err != nil {
		return fmt.Errorf("upstream %s: %w: %w", c.name, ErrUnavailable, err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ne net.Error
		if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
			return fmt.Errorf("upstream %s did not answer within %s: %w", c.name, c.timeout, ErrTimeout)
		}
		return fmt.Errorf("upstream %s is unavailable: %w: %w", c.name, ErrUnavailable, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return nil
}

// Call answers tools/list, tools/call and ping; every other method is
// "method not found".
func (c *RESTClient) Call(ctx context.Context, method string, params json.RawMessage) (Response, error) {
	switch method {
	case "tools/list":
		return Response{Result: c.list}, nil
	case "tools/call":
		return c.callTool(ctx, params)
	case "ping":
		return Response{Result: json.RawMessage(`{}`)}, nil
	}
	return Response{Error: &RPCError{Code: codeMethodNotFound, Message: "Method not found: " + method}}, nil
}

// restToolError is a tool result with isError set and one text block.
func restToolError(text string) Response {
	b, err := json.Marshal(map[string]any{
		"content": []map[string]string{{"type": "text", "text": text}},
		"isError": true,
	})
	if err != nil {
		b = []byte(`{"content":[{"type":"text","text":"the call failed"}],"isError":true}`)
	}
	return Response{Result: b}
}

func (c *RESTClient) callTool(ctx context.Context, params json.RawMessage) (Response, error) {
	var p struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	}
	if err := json.Unmarshal(params, &p); err != nil {
		return Response{Error: &RPCError{Code: restCodeInvalidParams, Message: "tools/call params must be an object with a name"}}, nil
	}
	t, ok := c.tools[p.Name]
	if !ok {
		return Response{Error: &RPCError{Code: restCodeInvalidParams, Message: "Unknown tool: " + p.Name}}, nil
	}
	var args map[string]json.RawMessage
	if a := bytes.TrimSpace(p.Arguments); len(a) > 0 && !bytes.Equal(a, []byte("null")) {
		if a[0] != '{' || json.Unmarshal(a, &args) != nil {
			return restToolError("arguments must be a JSON object"), nil
		}
	}
	id, names, ok := IdentityFrom(ctx)
	if !ok || id.Subject == "" {
		// Fail closed: the API would see an anonymous request.
		return Response{}, fmt.Errorf("upstream %s: %w: no verified identity for tools/call", c.name, ErrUnavailable)
	}

	req, relPath, msg := c.buildRequest(ctx, t, args, id.Subject)
	if msg != "" {
		return restToolError(msg), nil
	}
	for k, v := range IdentityHeaders(names, id) {
		if k != "" {
			req.Header.Set(k, v)
		}
	}
	what := t.method + " " + relPath

	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req = req.WithContext(cctx)
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.transportFailed(ctx, cctx, what, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxResp+1))
	if err != nil {
		return c.transportFailed(ctx, cctx, what, err)
	}
	var out Response
	switch {
	case int64(len(body)) > c.maxResp:
		out = restToolError(fmt.Sprintf("%s answered %d with a body larger than %d bytes; upstream %s's answers are capped", what, resp.StatusCode, c.maxResp, c.name))
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		out = restToolError(fmt.Sprintf("%s answered %d: %s", what, resp.StatusCode, restExcerpt(body, restErrorExcerptBytes)))
	default:
		out = Response{Result: c.mapSuccess(what, resp, body)}
	}
	out.HTTPStatus = resp.StatusCode
	return out, nil
}

// transportFailed turns a failed exchange into a tool error naming the
// upstream; the error itself (with addresses) goes to the log. When the
// caller's own context ended, nobody waits for a tool result: the error is
// returned as such.
func (c *RESTClient) transportFailed(parent, cctx context.Context, what string, err error) (Response, error) {
	if perr := parent.Err(); perr != nil {
		kind := ErrUnavailable
		if errors.Is(perr, context.DeadlineExceeded) {
			kind = ErrTimeout
		}
		return Response{}, fmt.Errorf("upstream %s (%s): %w: %w", c.name, what, kind, perr)
	}
	var ne net.Error
	timedOut := errors.Is(cctx.Err(), context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
	c.log.Warn().Str("upstream", c.name).Str("request", what).Err(err).Msg("REST call failed")
	if timedOut {
		return restToolError(fmt.Sprintf("upstream %s did not answer %s within %s", c.name, what, c.timeout)), nil
	}
	return restToolError(fmt.Sprintf("upstream %s is unavailable (%s)", c.name, what)), nil
}

// buildRequest maps the arguments onto a request: path, query, body and
// static headers. It returns the path relative to the base URL (for
// messages) and, when an argument does not fit, a message for the caller.
func (c *RESTClient) buildRequest(ctx context.Context, t *restTool, args map[string]json.RawMessage, subject string) (*http.Request, string, string) {
	// Path.
	var rel strings.Builder
	for _, p := range t.parts {
		if p.arg == "" {
			rel.WriteString(p.literal)
			continue
		}
		raw, ok := args[p.arg]
		if !ok || restIsNull(raw) {
			return nil, "", fmt.Sprintf("missing required argument %q (it fills {%s} in the path %s)", p.arg, p.arg, t.template)
		}
		v, ok := restScalar(raw)
		if !ok {
			return nil, "", fmt.Sprintf("argument %q must be a string, number or boolean (it fills {%s} in the path)", p.arg, p.arg)
		}
		if v == "" || v == "." || v == ".." {
			return nil, "", fmt.Sprintf("argument %q must not be empty, \".\" or \"..\" (it fills {%s} in the path)", p.arg, p.arg)
		}
		rel.WriteString(url.PathEscape(v))
	}
	relPath := rel.String()
	u := *c.base
	raw := strings.TrimSuffix(c.base.EscapedPath(), "/") + relPath
	path, err := url.PathUnescape(raw)
	if err != nil {
		return nil, "", "the path could not be built"
	}
	u.Path, u.RawPath = path, raw

	// Query.
	var q []string
	if c.base.RawQuery != "" {
		for _, kv := range strings.Split(c.base.RawQuery, "&") {
			if k, _, _ := strings.Cut(kv, "="); c.injectQuery != "" && restQueryKeyIs(k, c.injectQuery) {
				continue
			}
			q = append(q, kv)
		}
	}
	for _, name := range t.query {
		if name == c.injectQuery {
			continue // the verified subject always wins
		}
		raw, ok := args[name]
		if !ok || restIsNull(raw) {
			continue
		}
		values, ok := restQueryValues(raw)
		if !ok {
			return nil, "", fmt.Sprintf("argument %q must be a string, number, boolean or an array of them (it is a query parameter)", name)
		}
		for _, v := range values {
			q = append(q, url.QueryEscape(name)+"="+url.QueryEscape(v))
		}
	}
	if c.injectQuery != "" {
		q = append(q, url.QueryEscape(c.injectQuery)+"="+url.QueryEscape(EncodeIdentityValue(subject)))
	}
	u.RawQuery = strings.Join(q, "&")
	u.ForceQuery = false

	// Body.
	var body io.Reader
	var bodyBytes []byte
	if t.hasBody {
		obj := map[string]json.RawMessage{}
		if t.bodyAll {
			for k, v := range args {
				if !t.inPath[k] && !t.inQuery[k] {
					obj[k] = v
				}
			}
		}
		for _, k := range t.body {
			if v, ok := args[k]; ok {
				obj[k] = v
			}
		}
		b, err := json.Marshal(obj)
		if err != nil {
			return nil, "", "the arguments could not be encoded as a JSON body"
		}
		bodyBytes = b
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, t.method, u.String(), body)
	if err != nil {
		return nil, "", "the request could not be built"
	}
	req.Header = t.headers.Clone()
	if bodyBytes != nil && t.jsonType {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, relPath, ""
}

func restQueryKeyIs(rawKey, name string) bool {
	k, err := url.QueryUnescape(rawKey)
	return err == nil && k == name || rawKey == name
}

func restIsNull(raw json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// restScalar renders a JSON string, number or boolean as text: strings
// unquoted, numbers exactly as written.
func restScalar(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	switch c := raw[0]; {
	case c == '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return s, true
	case c == 't' || c == 'f':
		var b bool
		if json.Unmarshal(raw, &b) != nil {
			return "", false
		}
		return string(raw), true
	case c == '-' || c >= '0' && c <= '9':
		var n json.Number
		if json.Unmarshal(raw, &n) != nil {
			return "", false
		}
		return n.String(), true
	}
	return "", false
}

// restQueryValues renders a scalar or an array of scalars (null elements are
// left out).
func restQueryValues(raw json.RawMessage) ([]string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '[' {
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return nil, false
		}
		out := make([]string, 0, len(items))
		for _, it := range items {
			if restIsNull(it) {
				continue
			}
			s, ok := restScalar(it)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	s, ok := restScalar(raw)
	if !ok {
		return nil, false
	}
	return []string{s}, true
}

// mapSuccess turns a 2xx answer into a tool result: JSON becomes
// structuredContent (an array or scalar wrapped as {"result": ...}) plus
// the JSON text; images and audio become image and audio content; other
// text becomes a text block.
func (c *RESTClient) mapSuccess(what string, resp *http.Response, body []byte) json.RawMessage {
	ct := resp.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	trimmed := bytes.TrimSpace(body)
	result := map[string]any{}
	text := func(s string) []map[string]string {
		return []map[string]string{{"type": "text", "text": s}}
	}
	isJSON := mt == "application/json" || strings.HasSuffix(mt, "+json") || ct == ""
	switch {
	case len(trimmed) == 0:
		result["content"] = text(fmt.Sprintf("%s answered %d with no content", what, resp.StatusCode))
	case isJSON && json.Valid(trimmed):
		result["content"] = text(string(trimmed))
		if trimmed[0] == '{' {
			result["structuredContent"] = json.RawMessage(trimmed)
		} else {
			result["structuredContent"] = map[string]json.RawMessage{"result": trimmed}
		}
	case strings.HasPrefix(mt, "image/") || strings.HasPrefix(mt, "audio/"):
		kind := "image"
		if strings.HasPrefix(mt, "audio/") {
			kind = "audio"
		}
		result["content"] = []map[string]string{{"type": kind, "data": base64.StdEncoding.EncodeToString(body), "mimeType": mt}}
	case utf8.Valid(body):
		result["content"] = text(string(body))
	default:
		result["content"] = text(fmt.Sprintf("%s answered %d with %d bytes of %s, which cannot be shown as text", what, resp.StatusCode, len(body), restMIME(mt)))
	}
	b, err := json.Marshal(result)
	if err != nil {
		return json.RawMessage(`{"content":[{"type":"text","text":"the answer could not be encoded"}],"isError":true}`)
	}
	return b
}

func restMIME(mt string) string {
	if mt == "" {
		return "an unknown type"
	}
	return mt
}

// restExcerpt is the start of body as text, at most n bytes, cut on a
// character boundary.
func restExcerpt(body []byte, n int) string {
	cut := len(body) > n
	if cut {
		body = body[:n]
		// Drop a character cut in the middle.
		for i := len(body) - 1; i >= 0 && i >= len(body)-utf8.UTFMax; i-- {
			if utf8.RuneStart(body[i]) {
				if !utf8.FullRune(body[i:]) {
					body = body[:i]
				}
				break
			}
		}
	}
	s := strings.ToValidUTF8(strings.TrimSpace(string(body)), "\uFFFD")
	if s == "" {
		return "(empty body)"
	}
	if cut {
		s += " …"
	}
	return s
}
