package mcp_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/gatewaystack/gatewaystack/config"
)

// callRecorder sits in front of an upstream MCP server and records the
// name of every tools/call that reaches it.
type callRecorder struct {
	mu    sync.Mutex
	calls map[string]int
}

// front starts a reverse proxy to target on 127.0.0.1 and returns its URL.
func (c *callRecorder) front(t testing.TB, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	c.calls = map[string]int{}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: u.Scheme, Host: u.Host})
	rp.FlushInterval = -1
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var m struct {
			Method string `json:"method"`
			Params struct {
				Name string `json:"name"`
			} `json:"params"`
		}
		if json.Unmarshal(body, &m) == nil && m.Method == "tools/call" {
			c.mu.Lock()
			c.calls[m.Params.Name]++
			c.mu.Unlock()
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + u.Path
}

func (c *callRecorder) count(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[name]
}

func (c *callRecorder) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.calls {
		n += v
	}
	return n
}

// fuzzStatuses are the answers the MCP endpoint may give a POST from a
// caller with a valid token.
var fuzzStatuses = []int{http.StatusOK, http.StatusAccepted, http.StatusBadRequest, http.StatusForbidden,
	http.StatusNotFound, http.StatusRequestEntityTooLarge, http.StatusTooManyRequests}

// ambiguousKeys names the members of a JSON-RPC body that a strict decoder
// must refuse: method, params, id or jsonrpc given twice, or spelled with
// other letter case (Go's encoding/json matches keys case-insensitively,
// Unicode folding included: "jſonrpc" is "jsonrpc" to it, most other
// decoders disagree), and the same for params.name of tools/call and
// prompts/get. It returns "" for a body that is not one JSON object.
func ambiguousKeys(body []byte) string {
	members, ok := objectMembers(body)
	if !ok {
		return ""
	}
	var out []string
	check := func(where string, keys []string, want string) {
		n, exact := 0, 0
		for _, k := range keys {
			if strings.EqualFold(k, want) {
				n++
				if k == want {
					exact++
				}
			}
		}
		if n > 1 || n != exact {
			out = append(out, fmt.Sprintf("%s%s (%d keys, %d spelled exactly)", where, want, n, exact))
		}
	}
	keys := make([]string, len(members))
	for i, m := range members {
		keys[i] = m.key
	}
	for _, k := range []string{"method", "params", "id", "jsonrpc"} {
		check("", keys, k)
	}
	var method string
	var params json.RawMessage
	for _, m := range members {
		switch m.key {
		case "method":
			_ = json.Unmarshal(m.value, &method)
		case "params":
			params = m.value
		}
	}
	if method == "tools/call" || method == "prompts/get" {
		if pm, ok := objectMembers(params); ok {
			pkeys := make([]string, len(pm))
			for i, m := range pm {
				pkeys[i] = m.key
			}
			check("params.", pkeys, "name")
		}
	}
	return strings.Join(out, ", ")
}

type member struct {
	key   string
	value json.RawMessage
}

// objectMembers returns the members of a JSON object in order, duplicates
// included; ok is false when data is not exactly one JSON object.
func objectMembers(data []byte) ([]member, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		k, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		out = append(out, member{k, v})
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return out, true
}

// modernHeaders sets the 2026-07-28 headers an honest client derives from
// body: the protocol version, Mcp-Method and, for tools/call, prompts/get
// and resources/read, Mcp-Name (in the =?base64?...?= form when the value
// is not a plain header token).
func modernHeaders(h http.Header, body []byte) {
	h.Set(mcpgo.HeaderProtocolVersion, modernVersion)
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return
	}
	var method string
	if json.Unmarshal(m["method"], &method) != nil {
		return
	}
	if v, ok := mcpgo.EncodeHeaderValue(method); ok {
		h.Set(mcpgo.HeaderMethod, v)
	}
	if name, ok := mcpgo.ExtractHeaderName(mcpgo.MCPMethod(method), m["params"]); ok {
		if v, ok := mcpgo.EncodeHeaderValue(name); ok {
			h.Set(mcpgo.HeaderName, v)
		}
	}
}

// mcpBodySeeds are hand-written attack bodies.
func mcpBodySeeds() []string {
	meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}`
	call := func(name string, extra ...string) string {
		p := append([]string{fmt.Sprintf(`"name":%q`, name), `"arguments":{"text":"hi","marker":"fuzz"}`}, extra...)
		return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{` + strings.Join(p, ",") + `}}`
	}
	nested := func(open, close string, n int) string {
		return strings.Repeat(open, n) + "1" + strings.Repeat(close, n)
	}
	return []string{
		// well-formed, both eras
		`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{` + meta + `}}`,
		call("rec__echo"),
		call("rec__echo", meta),
		call("rec__adder"),
		call("notes__list_notes", meta),
		`{"jsonrpc":"2.0","id":1,"method":"ping"}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`,
		`{"jsonrpc":"2.0","id":1,"result":{}}`,
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{` + meta + `}}`,
		`{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"rec__purge"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"rec__file:///etc/passwd"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"rec__purge"},"argument":{"name":"a","value":"b"}}}`,
		// tools the token may not call
		call("rec__purge"),
		call("rec__purge", meta),
		call("rec__write_thing"),
		call("rec__admin_panel"),
		call("rec__unlisted"),
		call("notes__delete_all_notes", meta),
		call("notes__write_note"),
		call("REC__PURGE"),
		call("rec__purge\u0000"),
		call("rec__purge "),
		call("rec/purge"),
		call("rec__ad\u2028min_panel"),
		// batches
		`[` + call("rec__purge") + `]`,
		`[` + call("rec__echo") + `,` + call("rec__purge") + `]`,
		` ` + "\n\t[]",
		`[]`,
		// duplicate and case-variant keys
		`{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call","params":{"name":"rec__purge"}}`,
		`{"jsonrpc":"2.0","id":1,"Method":"tools/call","method":"tools/list","params":{"name":"rec__purge"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"tools/list","params":{"name":"rec__purge"}}`,
		`{"jsonrpc":"2.0","id":1,"METHOD":"tools/call","params":{"name":"rec__echo"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"rec__echo","name":"rec__purge"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"rec__purge","name":"rec__echo"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"rec__echo","Name":"rec__purge"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"rec__echo"},"Params":{"name":"rec__purge"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"rec__echo"},"paramſ":{"name":"rec__purge"}}`,
		`{"jsonrpc":"2.0","id":1,"ID":"2","method":"tools/list"}`,
		`{"jsonrpc":"2.0","id":1,"id":{},"method":"tools/list"}`,
		`{"jsonrpc":"2.0","JSONRPC":"1.0","id":1,"method":"tools/list"}`,
		`{"jſonrpc":"2.0","id":1,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"a","NAME":"b"}}`,
		// deep nesting, huge numbers
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"rec__echo","arguments":{"text":` + nested("[", "]", 900) + `}}}`,
		nested("[", "]", 1000),
		nested(`{"a":`, "}", 300),
		`{"jsonrpc":"2.0","id":1e999999,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","id":-0.0e-0,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"rec__echo","arguments":{"text":1e400,"marker":-1e-400}}}`,
		// invalid UTF-8
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\xff\",\"params\":{\"name\":\"rec__purge\"}}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"rec__echo\xff\"}}",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"rec__purg\xc0\xe5\"}}",
		"{\"jsonrpc\":\"2.0\",\"id\":\"\xff\",\"method\":\"tools/list\"}",
		"\xef\xbb\xbf" + `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
		// params and ids of the wrong types
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":"rec__purge"}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["rec__purge"]}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":null}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":1}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":1}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":["rec__purge"]}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":null}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"rec__echo","arguments":"x"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"rec__echo","arguments":[1]}}`,
		`{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"rec__echo"}}`,
		`{"jsonrpc":"2.0","id":{},"method":"tools/call","params":{"name":"rec__echo"}}`,
		`{"jsonrpc":"2.0","id":true,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","method":"tools/call","params":{"name":"rec__purge"}}`,
		`{"jsonrpc":"1.0","id":1,"method":"tools/list"}`,
		`{"id":1,"method":"tools/list"}`,
		`{"jsonrpc":2.0,"id":1,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","id":1,"method":1}`,
		`{"jsonrpc":"2.0","id":1,"method":null}`,
		// not JSON-RPC at all
		``, ` `, `null`, `1`, `"tools/call"`, `{`, `}`, `{}`, `{"jsonrpc":"2.0","id":1,"method":"tools/list"} {}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/list"}` + "\n",
		strings.Repeat("x", testBodyLimit+1),
	}
}

// FuzzMCPBody posts arbitrary bodies to the MCP endpoint of one in-process
// gateway (a recording upstream "rec" and the demo notes upstream behind a
// recording proxy, both on 127.0.0.1; rate limits and the loop guard off)
// with a valid token of scope tool:read, once in the session era (an
// initialized session) and once in the 2026-07-28 era (Mcp-Method and
// Mcp-Name derived from the body when it parses). Properties, in both eras:
// no panic and an answer within the client timeout; the status is one of
// 200, 202, 400, 403, 404, 413, 429; every non-2xx answer, and every 2xx
// answer declared application/json, carries a JSON body (valid, and UTF-8
// as RFC 8259 requires); a body over the
// limit is 413; a body that is not JSON, or is a batch, is 400; no upstream
// ever runs a tool this token may not call (rec__purge, rec__write_thing,
// rec__admin_panel, rec__unlisted, notes__write_note,
// notes__delete_all_notes); and a body with a duplicate or case-variant
// method, params, id, jsonrpc or params.name key is 400 and reaches no
// upstream tool at all.
func FuzzMCPBody(f *testing.F) {
	notes := &callRecorder{}
	g := newGateway(f, gatewayOptions{configure: func(c *config.Config) {
		off := 0
		c.Limits.PerSubject.Requests = &off
		c.Limits.PerTenant.Requests = &off
		c.Limits.PerIP.Requests = &off
		c.Limits.LoopGuard.MaxRepeats = &off
		for i := range c.Upstreams {
			if c.Upstreams[i].Name == upstreamNotes && c.Upstreams[i].MCP != nil {
				c.Upstreams[i].MCP.URL = notes.front(f, c.Upstreams[i].MCP.URL)
			}
		}
	}})
	// One token for the whole run, valid for longer than any fuzz run.
	claims := g.minter.claims("fuzz-user", baselineScope)
	claims["exp"] = time.Now().Add(23 * time.Hour).Unix()
	token := g.minter.sign(claims)
	sid := g.initialize(f, token)

	forbiddenRec := []string{"purge", "write_thing", "admin_panel", "unlisted"}
	forbiddenNotes := []string{"write_note", "delete_all_notes"}
	for _, s := range mcpBodySeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ambiguous := ambiguousKeys(body)
		for _, era := range []string{"session", "2026-07-28"} {
			runsBefore := g.upstream.calls.Load() + int64(notes.total())
			h := hdr("Authorization", bearer(token))
			if era == "session" {
				h.Set("Mcp-Session-Id", sid)
				h.Set("Mcp-Protocol-Version", legacyVersion)
			} else {
				modernHeaders(h, body)
			}
			r, err := send(g.client, http.MethodPost, g.MCP, h, body)
			if err != nil {
				t.Fatalf("%s era: %v\nbody: %q", era, err, body)
			}
			fail := func(format string, args ...any) {
				t.Helper()
				t.Fatalf("%s era: %s\nbody: %q\nstatus %d %q: %q", era, fmt.Sprintf(format, args...), body, r.StatusCode, r.Header.Get("Content-Type"), r.body)
			}
			if !slices.Contains(fuzzStatuses, r.StatusCode) {
				fail("unexpected status")
			}
			isJSON := strings.HasPrefix(r.Header.Get("Content-Type"), "application/json")
			if (r.StatusCode >= 300 || isJSON) && (!isJSON || !json.Valid(r.body) || !utf8.Valid(r.body)) {
				fail("the answer is not a JSON body (RFC 8259: valid JSON, in UTF-8)")
			}
			switch {
			case len(body) > testBodyLimit:
				if r.StatusCode != http.StatusRequestEntityTooLarge {
					fail("an oversized body is not refused with 413")
				}
			case !json.Valid(body):
				if r.StatusCode != http.StatusBadRequest {
					fail("a body that is not JSON is not refused with 400")
				}
			case bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("[")):
				if r.StatusCode != http.StatusBadRequest {
					fail("a batch is not refused with 400")
				}
			}
			for _, tool := range forbiddenRec {
				if n := g.upstream.toolRunsNamed(tool); n != 0 {
					fail("upstream rec ran %s, which the token may not call (%d runs)", tool, n)
				}
			}
			for _, tool := range forbiddenNotes {
				if n := notes.count(tool); n != 0 {
					fail("upstream notes received tools/call %s, which the token may not call (%d calls)", tool, n)
				}
			}
			if ambiguous != "" {
				if r.StatusCode != http.StatusBadRequest {
					fail("a body with ambiguous keys (%s) is not refused with 400", ambiguous)
				}
				if after := g.upstream.calls.Load() + int64(notes.total()); after != runsBefore {
					fail("a body with ambiguous keys (%s) reached an upstream tool", ambiguous)
				}
			}
		}
	})
}
