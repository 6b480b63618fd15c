package interop

// Fidelity: what a client sees through the gateway is JSON-equal to what the
// upstream sends, apart from the tool and prompt name prefix ("ev__"),
// "serverInfo" and the cache hints "cacheScope" and "ttlMs" (which the
// gateway may keep, drop or tighten, never loosen) — for real third-party
// upstreams, over HTTP and stdio, for a session-era client and for a
// 2026-07-28 client (against the same session-era upstreams).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/gatewaystack/gatewaystack/config"
)

// op is one request compared directly and through the gateway.
type op struct {
	name   string
	method string
	params map[string]any
	// list is the result's array field of a list method; every page is
	// read and the arrays joined.
	list string
	// prefixed: the entries' (list) or the request's (call) "name" carries
	// the upstream prefix through the gateway.
	prefixed bool
	// volatile: the result embeds the time of day (to the second), so a
	// difference is retried before it counts.
	volatile bool
}

// The list methods, in the order a client would use them (a resource is
// read and a prompt fetched after they were listed).
var listOps = []op{
	{name: "tools-list", method: "tools/list", list: "tools", prefixed: true},
	{name: "resources-list", method: "resources/list", list: "resources"},
	{name: "resources-templates-list", method: "resources/templates/list", list: "resourceTemplates"},
	{name: "prompts-list", method: "prompts/list", list: "prompts", prefixed: true},
}

func callOp(name, tool string, args map[string]any) op {
	return op{name: "tools-call " + name, method: "tools/call", params: map[string]any{"name": tool, "arguments": args}, prefixed: true}
}

func readOp(name, uri string) op {
	return op{name: "resources-read " + name, method: "resources/read", params: map[string]any{"uri": uri}}
}

func promptOp(name, prompt string, args map[string]string) op {
	p := map[string]any{"name": prompt}
	if args != nil {
		p["arguments"] = args
	}
	return op{name: "prompts-get " + name, method: "prompts/get", params: p, prefixed: true}
}

// goSDKOps samples the go-sdk conformance fixture: every content type
// (text, image, audio, embedded resource, mixed), a tool error, arguments
// echoed verbatim, static and templated resources, prompts with arguments,
// an embedded resource and an image.
var goSDKOps = append(append([]op{}, listOps...),
	callOp("text", "test_simple_text", map[string]any{}),
	callOp("image", "test_image_content", map[string]any{}),
	callOp("audio", "test_audio_content", map[string]any{}),
	callOp("embedded-resource", "test_embedded_resource", map[string]any{}),
	callOp("multiple-content-types", "test_multiple_content_types", map[string]any{}),
	callOp("tool-error", "test_error_handling", map[string]any{}),
	callOp("json-schema-2020-12-args-echoed", "json_schema_2020_12_tool", map[string]any{
		"name": "Ada <&> Lovelace", "contactMethod": "email", "email": "ada@example.com",
		"address": map[string]any{"street": "1 Analytical Way", "city": "Zürich"},
	}),
	readOp("static-text", "test://static-text"),
	readOp("static-binary", "test://static-binary"),
	readOp("templated", "test://template/42/data"),
	promptOp("simple", "test_simple_prompt", nil),
	promptOp("with-arguments", "test_prompt_with_arguments", map[string]string{"arg1": "alpha", "arg2": "beta <&> ünï"}),
	promptOp("embedded-resource", "test_prompt_with_embedded_resource", map[string]string{"resourceUri": "test://static-text"}),
	promptOp("image", "test_prompt_with_image", nil),
)

// everythingOps samples @modelcontextprotocol/server-everything:
// structuredContent, an image with annotations, resource links, an embedded
// resource, static and templated resources, prompts with arguments and with
// an embedded resource. The templated resources embed the time of day.
var everythingOps = append(append([]op{}, listOps...),
	callOp("echo", "echo", map[string]any{"message": "hello <b>&amp;</b> ünïcode \u2028"}),
	callOp("sum", "get-sum", map[string]any{"a": 2, "b": 3.5}),
	callOp("structured-content", "get-structured-content", map[string]any{"location": "Chicago"}),
	callOp("image", "get-tiny-image", map[string]any{}),
	callOp("annotated-with-image", "get-annotated-message", map[string]any{"messageType": "success", "includeImage": true}),
	callOp("resource-links", "get-resource-links", map[string]any{"count": 3}),
	func() op {
		o := callOp("embedded-resource", "get-resource-reference", map[string]any{"resourceType": "Text", "resourceId": 1})
		o.volatile = true
		return o
	}(),
	readOp("static-document", "demo://resource/static/document/features.md"),
	func() op {
		o := readOp("templated-blob", "demo://resource/dynamic/blob/3")
		o.volatile = true
		return o
	}(),
	promptOp("simple", "simple-prompt", nil),
	promptOp("with-arguments", "args-prompt", map[string]string{"city": "Paris", "state": "TX"}),
	promptOp("completable", "completable-prompt", map[string]string{"department": "Engineering", "name": "Alice"}),
	func() op {
		o := promptOp("embedded-resource", "resource-prompt", map[string]string{"resourceType": "Text", "resourceId": "2"})
		o.volatile = true
		return o
	}(),
)

// fixture is one real upstream: start runs it and returns the gateway's
// configuration for it and a direct session-era client.
type fixture struct {
	name  string
	ops   []op
	start func(t *testing.T, tl tools) (config.Upstream, mcpClient)
}

func goSDKHTTP(t *testing.T, tl tools) (config.Upstream, mcpClient) {
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	p := startProc(t, "go-sdk everything-server (HTTP, sessions)", minimalEnv(), nil,
		tl.goSDKServer, "-http="+addr, "-stateless=false")
	waitTCP(t, p, addr)
	url := "http://" + addr + "/mcp"
	return config.Upstream{Name: upstreamName, MCP: &config.MCPUpstream{URL: url}}, dialDirect(t, p, url)
}

// goSDKHTTPStateless is the fixture in its default mode (the one the
// conformance suite scores): no upstream sessions at all.
func goSDKHTTPStateless(t *testing.T, tl tools) (config.Upstream, mcpClient) {
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	p := startProc(t, "go-sdk everything-server (HTTP, stateless)", minimalEnv(), nil,
		tl.goSDKServer, "-http="+addr)
	waitTCP(t, p, addr)
	url := "http://" + addr + "/mcp"
	return config.Upstream{Name: upstreamName, MCP: &config.MCPUpstream{URL: url}}, dialDirect(t, p, url)
}

func goSDKStdio(t *testing.T, tl tools) (config.Upstream, mcpClient) {
	direct := startStdioSession(t, "go-sdk everything-server (stdio, direct)", minimalEnv(), tl.goSDKServer)
	return config.Upstream{Name: upstreamName, Stdio: &config.StdioUpstream{Command: tl.goSDKServer}}, direct
}

func everythingHTTP(t *testing.T, tl tools) (config.Upstream, mcpClient) {
	port := strconv.Itoa(freePort(t))
	// It binds every interface (it has no host option); it is reached on
	// 127.0.0.1 only.
	p := startProc(t, "server-everything (streamable HTTP)", minimalEnv("PORT="+port), nil,
		tl.node, tl.serverEverything, "streamableHttp")
	addr := "127.0.0.1:" + port
	waitTCP(t, p, addr)
	url := "http://" + addr + "/mcp"
	return config.Upstream{Name: upstreamName, MCP: &config.MCPUpstream{URL: url}}, dialDirect(t, p, url)
}

func everythingStdio(t *testing.T, tl tools) (config.Upstream, mcpClient) {
	direct := startStdioSession(t, "server-everything (stdio, direct)", minimalEnv(), tl.node, tl.serverEverything, "stdio")
	return config.Upstream{Name: upstreamName, Stdio: &config.StdioUpstream{
		Command: tl.node, Args: []string{tl.serverEverything, "stdio"},
	}}, direct
}

// dialDirect opens a session-era session straight to an upstream over HTTP.
func dialDirect(t *testing.T, p *proc, url string) mcpClient {
	t.Helper()
	c, err := dialHTTPSession(context.Background(), url, "")
	if err != nil {
		t.Fatalf("direct session to %s: %v\n%s", url, err, p.describe())
	}
	t.Cleanup(c.close)
	return c
}

// eras are the clients run through the gateway.
var eras = []struct {
	name string
	dial func(t *testing.T, gw *gateway) mcpClient
}{
	{"session-era", func(t *testing.T, gw *gateway) mcpClient {
		c, err := dialHTTPSession(context.Background(), gw.mcp, gw.token)
		if err != nil {
			t.Fatalf("session-era client through the gateway: %v", err)
		}
		t.Cleanup(c.close)
		return c
	}},
	{"2026-07-28", func(t *testing.T, gw *gateway) mcpClient {
		c, err := dialModern(context.Background(), gw.mcp, gw.token)
		if err != nil {
			t.Fatalf("2026-07-28 client (mcp-go) through the gateway: %v", err)
		}
		t.Cleanup(c.close)
		return c
	}},
}

// TestFidelity compares tools, resources, prompts and a sample of calls of
// real third-party MCP servers directly and through the gateway. Invariant:
// the gateway changes nothing a client can see but the name prefix,
// serverInfo and the cache hints (key order aside).
func TestFidelity(t *testing.T) {
	tl := requireTools(t)
	fixtures := []fixture{
		{name: "go-sdk-fixture-http", ops: goSDKOps, start: goSDKHTTP},
		{name: "go-sdk-fixture-http-stateless", ops: goSDKOps, start: goSDKHTTPStateless},
		{name: "go-sdk-fixture-stdio", ops: goSDKOps, start: goSDKStdio},
		{name: "server-everything-http", ops: everythingOps, start: everythingHTTP},
		{name: "server-everything-stdio", ops: everythingOps, start: everythingStdio},
	}
	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			up, direct := f.start(t, tl)
			gw := startGateway(t, up)
			for _, era := range eras {
				t.Run(era.name, func(t *testing.T) {
					through := era.dial(t, gw)
					for _, o := range f.ops {
						t.Run(o.name, func(t *testing.T) { compareOp(t, direct, through, o) })
					}
				})
			}
		})
	}
}

// compareOp runs o directly and through the gateway and fails t with the
// differences, beyond the allowed ones.
func compareOp(t *testing.T, direct, through mcpClient, o op) {
	t.Helper()
	attempts := 1
	if o.volatile {
		attempts = 3
	}
	for attempt := 1; ; attempt++ {
		d, err := diffOp(direct, through, o)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.lines) == 0 {
			return
		}
		if attempt < attempts {
			continue
		}
		lines := d.lines
		if len(lines) > 40 {
			lines = append(lines[:40:40], fmt.Sprintf("… and %d more", len(d.lines)-40))
		}
		t.Errorf("%s%s: the result through the gateway differs from the upstream's (%d difference(s), allowed: the %q name prefix, serverInfo, cacheScope/ttlMs):\n  %s\ndirectly:            %s\nthrough the gateway: %s",
			o.method, describeParams(gatewayParams(o)), len(d.lines), prefix, strings.Join(lines, "\n  "), shorten(compact(d.want)), shorten(compact(d.got)))
		return
	}
}

// opDiff is the outcome of one comparison: the differences beyond the
// allowed ones, and both results with the allowed differences removed.
type opDiff struct {
	lines     []string
	want, got any
}

// diffOp runs o directly and through the gateway and compares the results.
// An error means a request failed.
func diffOp(direct, through mcpClient, o op) (opDiff, error) {
	want, err := fetch(direct, o, false)
	if err != nil {
		return opDiff{}, fmt.Errorf("%s%s directly: %w", o.method, describeParams(o.params), err)
	}
	got, err := fetch(through, o, true)
	if err != nil {
		return opDiff{}, fmt.Errorf("%s%s through the gateway: %w", o.method, describeParams(gatewayParams(o)), err)
	}
	if o.list != "" {
		// Two empty lists would be vacuously equal: every fixture offers
		// every kind of entry.
		if m, _ := want.(map[string]any); len(asArray(m[o.list])) == 0 {
			return opDiff{}, fmt.Errorf("%s directly: the upstream listed no %s; the comparison would prove nothing", o.method, o.list)
		}
	}
	lines := cacheHints(want, got)
	want = allowed(want, o, nil)
	got = allowed(got, o, &lines)
	lines = append(lines, diffJSON("result", want, got)...)
	return opDiff{lines: lines, want: want, got: got}, nil
}

// gatewayParams returns o's params as sent to the gateway (name prefixed).
func gatewayParams(o op) map[string]any {
	if !o.prefixed || o.list != "" || o.params == nil {
		return o.params
	}
	p := make(map[string]any, len(o.params))
	for k, v := range o.params {
		p[k] = v
	}
	p["name"] = prefix + p["name"].(string)
	return p
}

// maxPages bounds the pages read from one list.
const maxPages = 50

// fetch runs o against c and decodes the result (UseNumber: numbers are
// compared by their text). A list is read page by page and its arrays
// joined; nextCursor is dropped.
func fetch(c mcpClient, o op, viaGateway bool) (any, error) {
	ctx := context.Background()
	params := o.params
	if viaGateway {
		params = gatewayParams(o)
	}
	if o.list == "" {
		raw, err := c.request(ctx, o.method, params)
		if err != nil {
			return nil, err
		}
		return decode(raw)
	}
	var first map[string]any
	var items []any
	cursor := ""
	for page := 0; ; page++ {
		if page == maxPages {
			return nil, fmt.Errorf("more than %d pages", maxPages)
		}
		var p map[string]any
		if cursor != "" {
			p = map[string]any{"cursor": cursor}
		}
		raw, err := c.request(ctx, o.method, p)
		if err != nil {
			return nil, fmt.Errorf("page %d: %w", page+1, err)
		}
		v, err := decode(raw)
		if err != nil {
			return nil, err
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("page %d: result is not an object: %s", page+1, shorten(string(raw)))
		}
		arr, ok := m[o.list].([]any)
		if !ok {
			return nil, fmt.Errorf("page %d: result has no %q array: %s", page+1, o.list, shorten(string(raw)))
		}
		items = append(items, arr...)
		if first == nil {
			first = m
		}
		next, _ := m["nextCursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	delete(first, "nextCursor")
	first[o.list] = items
	return first, nil
}

func decode(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("result is not JSON (%v): %s", err, shorten(string(raw)))
	}
	return v, nil
}

// allowed removes the allowed differences from a result: at its top level
// serverInfo and the cache hints (cacheScope and its companion ttlMs: the
// 2026-07-28 era requires them, and a list filtered per caller is never
// public, so the gateway sets or drops them; see cacheHints for what it may
// set), and, for lists of prefixed names, the prefix, which every entry
// must carry through the gateway (when problems is not nil, the gateway's
// side, a missing one is reported there).
func allowed(v any, o op, problems *[]string) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	delete(m, "cacheScope")
	delete(m, "ttlMs")
	delete(m, "serverInfo")
	if problems == nil || o.list == "" || !o.prefixed {
		return m
	}
	arr, _ := m[o.list].([]any)
	for i, e := range arr {
		entry, ok := e.(map[string]any)
		if !ok {
			continue
		}
		name, _ := entry["name"].(string)
		if rest, ok := strings.CutPrefix(name, prefix); ok {
			entry["name"] = rest
		} else {
			*problems = append(*problems, fmt.Sprintf("result.%s[%d].name = %q: no %q prefix through the gateway", o.list, i, name, prefix))
		}
	}
	return m
}

// cacheHints checks the cache hints the gateway answers with: it may keep
// the upstream's, drop them, or tighten them (cacheScope "private", ttlMs
// 0), never loosen them.
func cacheHints(want, got any) []string {
	w, _ := want.(map[string]any)
	g, _ := got.(map[string]any)
	var out []string
	for _, h := range []struct{ key, tight string }{{"cacheScope", `"private"`}, {"ttlMs", "0"}} {
		gv, ok := g[h.key]
		if !ok {
			continue
		}
		if wv, ok := w[h.key]; ok && reflect.DeepEqual(wv, gv) {
			continue
		}
		if compact(gv) != h.tight {
			out = append(out, fmt.Sprintf("result.%s = %s through the gateway: neither the upstream's (%s) nor the tightest (%s)", h.key, compact(gv), compact(w[h.key]), h.tight))
		}
	}
	return out
}

// diffJSON lists the differences between two decoded JSON values, one line
// per differing leaf, with its path.
func diffJSON(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: directly %s, through the gateway %s", path, shorten(compact(want)), shorten(compact(got)))}
		}
		keys := make([]string, 0, len(w)+len(g))
		for k := range w {
			keys = append(keys, k)
		}
		for k := range g {
			if _, dup := w[k]; !dup {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		var out []string
		for _, k := range keys {
			wv, inW := w[k]
			gv, inG := g[k]
			p := path + "." + k
			switch {
			case !inG:
				out = append(out, fmt.Sprintf("%s: missing through the gateway (directly %s)", p, shorten(compact(wv))))
			case !inW:
				out = append(out, fmt.Sprintf("%s: added by the gateway: %s", p, shorten(compact(gv))))
			default:
				out = append(out, diffJSON(p, wv, gv)...)
			}
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: directly %s, through the gateway %s", path, shorten(compact(want)), shorten(compact(got)))}
		}
		if out, ok := diffByKey(path, w, g); ok {
			return out
		}
		var out []string
		if len(w) != len(g) {
			out = append(out, fmt.Sprintf("%s: %d entries directly, %d through the gateway (keys directly %v, through the gateway %v)",
				path, len(w), len(g), entryKeys(w), entryKeys(g)))
		}
		for i := 0; i < len(w) && i < len(g); i++ {
			out = append(out, diffJSON(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return out
	default:
		if !reflect.DeepEqual(want, got) {
			return []string{fmt.Sprintf("%s: directly %s, through the gateway %s", path, shorten(compact(want)), shorten(compact(got)))}
		}
		return nil
	}
}

// diffByKey compares two lists of named entries (tools, prompts, resources)
// whose names differ, entry by entry by name, so that one missing entry
// shows as that, not as every later entry differing. It reports false when
// the lists are not of uniquely named entries or have the same names in the
// same order (then the positional comparison is as good).
func diffByKey(path string, w, g []any) ([]string, bool) {
	wk, gk := entryKeys(w), entryKeys(g)
	if len(wk) != len(w) || len(gk) != len(g) || reflect.DeepEqual(wk, gk) {
		return nil, false
	}
	index := func(keys []string) (map[string]int, bool) {
		m := make(map[string]int, len(keys))
		for i, k := range keys {
			if _, dup := m[k]; dup {
				return nil, false
			}
			m[k] = i
		}
		return m, true
	}
	wi, ok1 := index(wk)
	gi, ok2 := index(gk)
	if !ok1 || !ok2 {
		return nil, false
	}
	var out, onlyW, onlyG, common []string
	for _, k := range wk {
		if _, ok := gi[k]; ok {
			common = append(common, k)
		} else {
			onlyW = append(onlyW, k)
		}
	}
	var commonG []string
	for _, k := range gk {
		if _, ok := wi[k]; ok {
			commonG = append(commonG, k)
		} else {
			onlyG = append(onlyG, k)
		}
	}
	if len(onlyW) > 0 {
		out = append(out, fmt.Sprintf("%s: missing through the gateway: %v", path, onlyW))
	}
	if len(onlyG) > 0 {
		out = append(out, fmt.Sprintf("%s: added by the gateway: %v", path, onlyG))
	}
	if !reflect.DeepEqual(common, commonG) {
		out = append(out, fmt.Sprintf("%s: order directly %v, through the gateway %v", path, common, commonG))
	}
	for _, k := range common {
		out = append(out, diffJSON(fmt.Sprintf("%s[%q]", path, k), w[wi[k]], g[gi[k]])...)
	}
	return out, true
}

// entryKeys names the entries of a list (by name, uri or uriTemplate).
func entryKeys(arr []any) []string {
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		m, _ := e.(map[string]any)
		for _, k := range []string{"name", "uri", "uriTemplate", "type"} {
			if s, ok := m[k].(string); ok {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

func asArray(v any) []any {
	a, _ := v.([]any)
	return a
}

// describeParams shows request params in messages, after a space ("" for
// none).
func describeParams(p map[string]any) string {
	if p == nil {
		return ""
	}
	return " " + compact(p)
}

func compact(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(b)
}

func shorten(s string) string {
	const n = 3000
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
