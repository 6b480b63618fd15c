package loadgen

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	t.Parallel()
	cases := []struct {
		msg                  string
		ok                   bool
		id                   string
		method, res, isError bool
		err                  bool
	}{
		{`{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"hi"}]}}`, true, "7", false, true, false, false},
		{` { "id" : "a\"b" , "result" : { "isError" : true , "content" : [] } } `, true, `"a\"b"`, false, true, true, false},
		{`{"id":3,"result":{"content":[{"isError":true}],"structuredContent":{"isError":true}}}`, true, "3", false, true, false, false},
		{`{"id":3,"result":{"isError":false}}`, true, "3", false, true, false, false},
		{`{"id":4,"error":{"code":-32602,"message":"tool 'x' not found: {]"}}`, true, "4", false, false, false, true},
		{`{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"}"}}`, true, "", true, false, false, false},
		{`{}`, true, "", false, false, false, false},
		{`[{"id":1,"result":{}}]`, false, "", false, false, false, false},
		{`{"id":1,"result":{}`, false, "1", false, true, false, false},
		{`{"id":1 "result":{}}`, false, "1", false, false, false, false},
		{`{"id":}`, false, "", false, false, false, false},
		{`not json`, false, "", false, false, false, false},
		{``, false, "", false, false, false, false},
	}
	for _, c := range cases {
		s, ok := summarize([]byte(c.msg))
		if !c.ok {
			if ok {
				t.Errorf("summarize(%s) accepted malformed input", c.msg)
			}
			continue
		}
		if !ok || string(s.id) != c.id || s.method != c.method || (s.result != nil) != c.res || s.isError != c.isError || (s.errObj != nil) != c.err {
			t.Errorf("summarize(%s) = %+v, %v; want ok %v id %q method %v result %v isError %v error %v",
				c.msg, s, ok, c.ok, c.id, c.method, c.res, c.isError, c.err)
		}
	}
}

func TestFindResponseInStream(t *testing.T) {
	t.Parallel()
	w := &worker{}
	cases := []struct {
		name, body, want string
		found            bool
	}{
		{"one event", "event: message\ndata: {\"id\":2,\"result\":{}}\n\n", `{"id":2,"result":{}}`, true},
		{"after a notification and a request with the same id, CRLF",
			"id: 1\r\ndata: {\"method\":\"notifications/progress\"}\r\n\r\n: comment\r\ndata: {\"id\":2,\"method\":\"sampling/createMessage\"}\r\n\r\ndata:{\"id\":2,\"result\":{\"content\":[]}}\r\n\r\n",
			`{"id":2,"result":{"content":[]}}`, true},
		{"multi-line data", "data: {\"id\":2,\ndata: \"result\":{}}\n\n", "{\"id\":2,\n\"result\":{}}", true},
		{"three data lines", "data: {\ndata: \"id\":2,\ndata: \"error\":{}}\n\n", "{\n\"id\":2,\n\"error\":{}}", true},
		{"no trailing blank line", "data: {\"id\":2,\"result\":{}}", `{"id":2,"result":{}}`, true},
		{"another id only", "data: {\"id\":3,\"result\":{}}\n\n", "", false},
		{"empty stream", "", "", false},
	}
	for _, c := range cases {
		w.buf = []byte(c.body)
		got, found := w.findResponse(true, []byte("2"))
		if found != c.found || string(got) != c.want {
			t.Errorf("%s: findResponse = %q, %v; want %q, %v", c.name, got, found, c.want, c.found)
		}
	}
}

func TestClassifyAndDescribe(t *testing.T) {
	t.Parallel()
	w := &worker{}
	cases := []struct {
		status int
		sse    bool
		body   string
		kind   failKind
		text   string
	}{
		{200, false, `{"id":2,"result":{"content":[]}}`, okCall, ""},
		{200, true, "data: {\"id\":2,\"result\":{}}\n\n", okCall, ""},
		{200, false, `{"id":2,"result":{"isError":true,"content":[{"type":"text","text":"no such account"}]}}`, failToolError, "tool result with isError: true: no such account"},
		{200, false, `{"id":2,"error":{"code":-32602,"message":"tool 'x' not found"}}`, failRPCError, "JSON-RPC error -32602: tool 'x' not found"},
		{404, false, `{"id":2,"error":{"code":-32601,"message":"Method not found","data":{"m":"x"}}}`, failStatus, `HTTP 404: JSON-RPC error -32601: Method not found (data: {"m":"x"})`},
		{401, false, `{"error":"invalid_token"}`, failStatus, `HTTP 401: {"error":"invalid_token"}`},
		{202, false, ``, failNoResponse, "HTTP 202 JSON answer holds no JSON-RPC response with id 2: (empty body)"},
		{200, false, `{"id":3,"result":{}}`, failNoResponse, "no JSON-RPC response with id 2"},
		{200, false, `{"id":2}`, failNoResult, "neither result nor error"},
	}
	for _, c := range cases {
		w.buf = []byte(c.body)
		f := w.classify(c.status, c.sse, []byte("2"))
		if f.kind != c.kind {
			t.Errorf("classify(%d, %s) = %d, want %d", c.status, c.body, f.kind, c.kind)
			continue
		}
		if c.kind != okCall {
			if got := w.describe(f); !strings.Contains(got, c.text) {
				t.Errorf("describe(%s) = %q, want it to contain %q", c.body, got, c.text)
			}
		}
	}
}

func TestParseStat(t *testing.T) {
	t.Parallel()
	line := "4242 (my (odd) proc) S 1 4242 4242 0 -1 4194560 1000 0 0 0 1234 567 0 0 20 0 9 0 100 0 0\n"
	got, err := parseStat([]byte(line))
	if err != nil || got != 1234+567 {
		t.Errorf("parseStat = %d, %v; want %d", got, err, 1234+567)
	}
	for _, bad := range []string{"", "4242 no parens", "4242 (x) S 1 2", "4242 (x) S 1 2 3 4 5 6 7 8 9 10 x 0"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) accepted", bad)
		}
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	lat := make([]time.Duration, 1000)
	for i := range lat {
		lat[len(lat)-1-i] = time.Duration(i+1) * time.Microsecond // 1µs..1000µs, reversed
	}
	l := latencyStats(lat)
	want := Latency{P50: 0.5, P90: 0.9, P99: 0.99, Max: 1, Mean: 0.5005}
	if l != want {
		t.Errorf("latencyStats = %+v, want %+v", l, want)
	}
	one := []time.Duration{3 * time.Millisecond}
	if l := latencyStats(one); l.P50 != 3 || l.P99 != 3 || l.Max != 3 {
		t.Errorf("one latency: %+v", l)
	}
	if l := latencyStats(nil); l != (Latency{}) {
		t.Errorf("no latency: %+v", l)
	}
}

// BenchmarkClientCall measures the load generator's own cost of one
// session-era tools/call (request copy, send, read into the reused buffer,
// parse) against the in-process echo server. Most of its allocations are
// net/http's (client and the in-process server); see allocs/op.
func BenchmarkClientCall(b *testing.B) {
	url := startEcho(b)
	for _, era := range []Era{EraSession, EraStateless} {
		b.Run(string(era), func(b *testing.B) {
			o, err := Options{URL: url, Tool: "echo", Args: []byte(`{"text":"hi"}`), Era: era, Concurrency: 1, Duration: time.Second}.check()
			if err != nil {
				b.Fatal(err)
			}
			tr := newTransport(1, o.CallTimeout)
			defer tr.CloseIdleConnections()
			w, err := newWorker(b.Context(), o, tr, 0)
			if err != nil {
				b.Fatal(err)
			}
			if era == EraSession {
				if w.open(b.Context(), o.CallTimeout); !w.ready {
					b.Fatal(w.setupErr)
				}
			}
			var _ http.RoundTripper = tr
			b.ReportAllocs()
			for b.Loop() {
				if f := w.call(); f.kind != okCall {
					b.Fatalf("call: %s", w.describe(f))
				}
			}
		})
	}
}

// BenchmarkClassify measures the parsing of an answer, which must not
// allocate: a JSON body and an event stream with a notification first.
func BenchmarkClassify(b *testing.B) {
	for _, c := range []struct {
		name string
		sse  bool
		body string
	}{
		{"json", false, `{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"hi"}],"structuredContent":{"a":[1,2,{"b":"}"}]}}}`},
		{"sse", true, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"x\"}}\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}}\n\n"},
	} {
		b.Run(c.name, func(b *testing.B) {
			w := &worker{buf: []byte(c.body)}
			id := []byte("2")
			b.ReportAllocs()
			for b.Loop() {
				if f := w.classify(http.StatusOK, c.sse, id); f.kind != okCall {
					b.Fatalf("classify: %s", w.describe(f))
				}
			}
		})
	}
}
