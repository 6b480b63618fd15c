package mcp_test

import (
	"net/http"
	"strings"
	"testing"
)

// A message that parsers read differently — repeated keys, keys in another
// letter case — is refused before anything is decided, and never reaches
// an upstream: the gateway must authorize exactly what the upstream runs.
func TestAmbiguousMessagesAreRefused(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{})
	tok := g.minter.token("alice", baselineScope)
	sid := g.initialize(t, tok)
	cases := []struct{ name, body, want string }{
		{"method twice", `{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"rec__purge"}}`, `repeats the key "method"`},
		{"method in another case", `{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call","params":{"name":"rec__purge"}}`, `repeats the key "Method"`},
		{"only a case variant of method", `{"jsonrpc":"2.0","id":1,"METHOD":"tools/call","params":{"name":"rec__purge"}}`, `"METHOD", which some parsers read as "method"`},
		{"name twice", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"rec__echo","name":"rec__purge"}}`, `params repeats the key "name"`},
		{"name in another case", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"rec__echo","Name":"rec__purge"}}`, `params repeats the key "Name"`},
		{"arguments twice", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"rec__echo","arguments":{},"arguments":{"x":1}}}`, `params repeats the key "arguments"`},
		{"id twice", `{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/list"}`, `repeats the key "id"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := g.post(t, tok, sid, []byte(c.body))
			if r.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", r.StatusCode, r.body)
			}
			code, msg, _ := r.rpcError(t)
			if code != -32600 || !strings.Contains(msg, c.want) {
				t.Errorf("error %d %q, want -32600 naming %s", code, msg, c.want)
			}
			if l := g.audit.forRequest(t, r.Header.Get("X-Request-Id")); len(l) != 1 || l[0]["reason"] != "body_ambiguous" {
				t.Errorf("audit %v", l)
			}
		})
	}
	if n := g.upstream.toolRunsNamed("echo") + g.upstream.toolRunsNamed("purge"); n != 0 {
		t.Errorf("the upstream ran %d calls for ambiguous messages", n)
	}
	// Inside the params of a forwarded request, names that repeat or differ
	// only in case are refused at any depth with -32602 (canonical.go).
	for _, args := range []string{`{"account":"a","account":"b"}`, `{"a":1,"A":2}`, `{"x":{"k":1,"K":2}}`} {
		r := g.post(t, tok, sid, []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"rec__echo","arguments":`+args+`}}`))
		if r.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: status %d, want 400: %s", args, r.StatusCode, r.body)
		}
		if code, msg, _ := r.rpcError(t); code != -32602 || !strings.Contains(msg, "params.arguments.") {
			t.Errorf("%s: error %d %q, want -32602 naming the key path", args, code, msg)
		}
	}
	if n := g.upstream.toolRunsNamed("echo"); n != 0 {
		t.Errorf("the upstream ran echo %d times, want 0", n)
	}
}
