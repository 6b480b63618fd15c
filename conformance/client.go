package conformance

// The little HTTP and MCP client the checks use: raw requests, so that every
// status code and header the gateway sends is seen as it was sent.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
)

// protocolVersion is the session-era protocol version the checks speak.
const protocolVersion = "2025-11-25"

// maxBody bounds every response body read.
const maxBody = 8 << 20

// answer is one HTTP response, fully read.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// challenge returns the parameters of the answer's Bearer challenge.
func (a answer) challenge() (bearerChallenge, bool) {
	return parseBearerChallenge(a.header.Values("WWW-Authenticate"))
}

// describe summarises the answer for a check's detail.
func (a answer) describe() string {
	s := fmt.Sprintf("HTTP %d", a.status)
	if wa := a.header.Values("WWW-Authenticate"); len(wa) > 0 {
		s += fmt.Sprintf(", WWW-Authenticate: %s", strings.Join(wa, ", "))
	}
	if len(a.body) > 0 {
		s += ", body: " + oneLine(string(a.body), 240)
	}
	return s
}

// rpcError is a JSON-RPC error.
type rpcError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// rpcMessage is one JSON-RPC message.
type rpcMessage struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *rpcError       `json:"error,omitempty"`
}

// client sends requests to the gateway and the issuer.
type client struct {
	hc  *http.Client
	ids atomic.Int64
}

// do sends one HTTP request and reads the whole answer.
func (c *client) do(ctx context.Context, method, u string, header http.Header, body []byte) (answer, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return answer{}, err
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return answer{}, fmt.Errorf("read the answer of %s %s: %w", method, u, err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// getJSON fetches u and decodes a 200 JSON answer into v.
func (c *client) getJSON(ctx context.Context, u string, v any) (answer, error) {
	a, err := c.do(ctx, http.MethodGet, u, http.Header{"Accept": {"application/json"}}, nil)
	if err != nil {
		return a, err
	}
	if a.status != http.StatusOK {
		return a, fmt.Errorf("GET %s: %s", u, a.describe())
	}
	if err := json.Unmarshal(a.body, v); err != nil {
		return a, fmt.Errorf("GET %s: not JSON (%v): %s", u, err, oneLine(string(a.body), 200))
	}
	return a, nil
}

// mcpRequest is one JSON-RPC request to the gateway's MCP endpoint.
type mcpRequest struct {
	token   string // sent as "Authorization: Bearer <token>" when set
	auth    string // a raw Authorization header, instead of token
	session string
	method  string
	params  any
	notify  bool // a notification: no id
}

// post sends one JSON-RPC message to endpoint.
func (c *client) post(ctx context.Context, endpoint string, r mcpRequest) (answer, int64, error) {
	msg := map[string]any{"jsonrpc": "2.0", "method": r.method}
	var id int64
	if !r.notify {
		id = c.ids.Add(1)
		msg["id"] = id
	}
	if r.params != nil {
		msg["params"] = r.params
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return answer{}, 0, err
	}
	h := http.Header{
		"Content-Type": {"application/json"},
		"Accept":       {"application/json, text/event-stream"},
	}
	switch {
	case r.auth != "":
		h.Set("Authorization", r.auth)
	case r.token != "":
		h.Set("Authorization", "Bearer "+r.token)
	}
	if r.session != "" {
		h.Set("Mcp-Session-Id", r.session)
	}
	if r.method != "initialize" {
		h.Set("Mcp-Protocol-Version", protocolVersion)
	}
	a, err := c.do(ctx, http.MethodPost, endpoint, h, body)
	return a, id, err
}

// initializeParams are the params of every initialize the checks send.
func initializeParams() map[string]any {
	return map[string]any{
		"protocolVersion": protocolVersion,
		"capabilities":    map[string]any{},
		"clientInfo":      map[string]any{"name": "gatewaystack-conformance", "version": "1"},
	}
}

// session is an initialized MCP session on the gateway.
type session struct {
	c        *client
	endpoint string
	token    string
	id       string
}

// errHTTP is an MCP request answered with an HTTP error status.
type errHTTP struct{ a answer }

func (e *errHTTP) Error() string { return e.a.describe() }

// openSession runs initialize and notifications/initialized with token.
func (c *client) openSession(ctx context.Context, endpoint, token string) (*session, error) {
	a, id, err := c.post(ctx, endpoint, mcpRequest{token: token, method: "initialize", params: initializeParams()})
	if err != nil {
		return nil, fmt.Errorf("initialize: %w", err)
	}
	if a.status != http.StatusOK {
		return nil, fmt.Errorf("initialize: %w", &errHTTP{a})
	}
	m, err := findResponse(a, id)
	if err != nil {
		return nil, fmt.Errorf("initialize: %w", err)
	}
	if m.Error != nil {
		return nil, fmt.Errorf("initialize: JSON-RPC error %d: %s", m.Error.Code, m.Error.Message)
	}
	s := &session{c: c, endpoint: endpoint, token: token, id: a.header.Get("Mcp-Session-Id")}
	a, _, err = c.post(ctx, endpoint, mcpRequest{token: token, session: s.id, method: "notifications/initialized", notify: true})
	if err != nil {
		return nil, fmt.Errorf("notifications/initialized: %w", err)
	}
	if a.status != http.StatusAccepted && a.status != http.StatusOK {
		return nil, fmt.Errorf("notifications/initialized: %w", &errHTTP{a})
	}
	return s, nil
}

// call sends one request in the session and returns the HTTP answer and the
// JSON-RPC response in it (the response is zero when the HTTP status is not
// 200).
func (s *session) call(ctx context.Context, method string, params any) (answer, rpcMessage, error) {
	a, id, err := s.c.post(ctx, s.endpoint, mcpRequest{token: s.token, session: s.id, method: method, params: params})
	if err != nil {
		return a, rpcMessage{}, err
	}
	if a.status != http.StatusOK {
		return a, rpcMessage{}, nil
	}
	m, err := findResponse(a, id)
	return a, m, err
}

// close ends the session (DELETE); errors are ignored.
func (s *session) close(ctx context.Context) {
	if s.id == "" {
		return
	}
	h := http.Header{"Mcp-Session-Id": {s.id}, "Mcp-Protocol-Version": {protocolVersion}, "Authorization": {"Bearer " + s.token}}
	_, _ = s.c.do(ctx, http.MethodDelete, s.endpoint, h, nil)
}

// tool is a tool as tools/list describes it.
type tool struct {
	Name        string          `json:"name"`
	InputSchema json.RawMessage `json:"inputSchema"`
	Annotations struct {
		ReadOnlyHint    *bool `json:"readOnlyHint"`
		DestructiveHint *bool `json:"destructiveHint"`
	} `json:"annotations"`
}

// listTools runs tools/list (following nextCursor, at most 20 pages).
func (s *session) listTools(ctx context.Context) ([]tool, error) {
	var out []tool
	cursor := ""
	for range 20 {
		var params any
		if cursor != "" {
			params = map[string]any{"cursor": cursor}
		}
		a, m, err := s.call(ctx, "tools/list", params)
		if err != nil {
			return nil, fmt.Errorf("tools/list: %w", err)
		}
		if a.status != http.StatusOK {
			return nil, fmt.Errorf("tools/list: %w", &errHTTP{a})
		}
		if m.Error != nil {
			return nil, fmt.Errorf("tools/list: JSON-RPC error %d: %s", m.Error.Code, m.Error.Message)
		}
		var page struct {
			Tools      []tool `json:"tools"`
			NextCursor string `json:"nextCursor"`
		}
		if err := json.Unmarshal(m.Result, &page); err != nil {
			return nil, fmt.Errorf("tools/list: result is not a tool list: %v", err)
		}
		out = append(out, page.Tools...)
		if page.NextCursor == "" {
			return out, nil
		}
		cursor = page.NextCursor
	}
	return out, nil
}

// findResponse finds the JSON-RPC response to id in a 200 answer, plain JSON
// or an event stream (where notifications may come first).
func findResponse(a answer, id int64) (rpcMessage, error) {
	var candidates [][]byte
	if strings.HasPrefix(strings.ToLower(a.header.Get("Content-Type")), "text/event-stream") {
		candidates = sseData(a.body)
	} else {
		candidates = [][]byte{a.body}
	}
	want := fmt.Sprint(id)
	for _, c := range candidates {
		var m rpcMessage
		if err := json.Unmarshal(c, &m); err != nil {
			continue
		}
		if m.Method == "" && string(bytes.TrimSpace(m.ID)) == want {
			return m, nil
		}
	}
	return rpcMessage{}, fmt.Errorf("no JSON-RPC response to request %d in the answer (%s)", id, a.describe())
}

// sseData returns the data of every event of a text/event-stream body.
func sseData(body []byte) [][]byte {
	var out [][]byte
	var data []byte
	has := false
	flush := func() {
		if has && len(bytes.TrimSpace(data)) > 0 {
			out = append(out, data)
		}
		data, has = nil, false
	}
	for line := range bytes.SplitSeq(body, []byte("\n")) {
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			flush()
			continue
		}
		if v, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			v = bytes.TrimPrefix(v, []byte(" "))
			if has {
				data = append(data, '\n')
			}
			data = append(data, v...)
			has = true
		}
	}
	flush()
	return out
}

// bearerChallenge is a parsed "WWW-Authenticate: Bearer ..." challenge.
type bearerChallenge struct {
	params map[string]string
}

func (c bearerChallenge) get(name string) (string, bool) {
	v, ok := c.params[name]
	return v, ok
}

// parseBearerChallenge finds the Bearer challenge among WWW-Authenticate
// values and parses its auth-params (RFC 9110 section 11.6.1: token or
// quoted-string values). A header with several challenges is split at the
// next scheme name.
func parseBearerChallenge(values []string) (bearerChallenge, bool) {
	for _, v := range values {
		s := strings.TrimSpace(v)
		for s != "" {
			scheme, rest, _ := strings.Cut(s, " ")
			params, remaining := parseAuthParams(rest)
			if strings.EqualFold(scheme, "Bearer") {
				return bearerChallenge{params: params}, true
			}
			s = strings.TrimSpace(remaining)
		}
	}
	return bearerChallenge{}, false
}

// parseAuthParams parses `name=value, name="quoted"` pairs from s until
// something that is not a pair (the next challenge's scheme) and returns the
// rest.
func parseAuthParams(s string) (map[string]string, string) {
	params := map[string]string{}
	for {
		s = strings.TrimLeft(s, " ,")
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || strings.ContainsAny(s[:eq], " ,\"") {
			return params, s
		}
		name := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " ")
		var val string
		if strings.HasPrefix(s, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(s); i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
					b.WriteByte(s[i])
					continue
				}
				if s[i] == '"' {
					break
				}
				b.WriteByte(s[i])
			}
			val = b.String()
			if i < len(s) {
				i++
			}
			s = s[i:]
		} else {
			end := strings.IndexAny(s, ", ")
			if end < 0 {
				end = len(s)
			}
			val, s = s[:end], s[end:]
		}
		params[name] = val
	}
}

// prmURLs returns the path-suffixed and the root Protected Resource Metadata
// URLs of resource (RFC 9728 section 3.1).
func prmURLs(resource *url.URL) (suffixed, root string) {
	base := url.URL{Scheme: resource.Scheme, Host: resource.Host}
	root = base.String() + "/.well-known/oauth-protected-resource"
	suffixed = root
	if p := strings.TrimSuffix(resource.EscapedPath(), "/"); p != "" {
		suffixed += p
	}
	return suffixed, root
}

// errNoToken is returned when the issuer did not mint a token.
var errNoToken = errors.New("the issuer did not mint a token")
