//go:build !race

// The race detector makes every byte of four 4 MB names cost ~20× more;
// this test runs without it (make test runs it in unit-norace).

package mcp_test

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/gatewaystack/gatewaystack/config"
)

// heapInUse is the heap in use after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// Invariant: every caller-supplied identifier is bounded before it is
// stored, echoed or logged. Forty tools/call with 4 MB made-up names (and
// resource reads with 4 MB URIs) leave the heap where it was, are answered
// with at most 256 characters of the name plus its length and digest, and
// no audit line grows past 16 KiB.
func TestHugeIdentifiersCostBoundedMemoryAndAuditSpace(t *testing.T) {
	g := newGateway(t, gatewayOptions{configure: func(c *config.Config) {
		c.Server.MaxBodyBytes = 5 << 20
		c.Limits.PerSubject.Requests = intp(0)
		c.Limits.PerTenant.Requests = intp(0)
		c.Limits.PerIP.Requests = intp(0)
	}})
	alice := g.minter.token("alice", baselineScope)
	sid := g.initialize(t, alice)
	huge := strings.Repeat("x", 4<<20)
	before := heapInUse()
	for i := range 40 {
		var body string
		switch i % 4 {
		case 0: // matches no rule: hidden
			body = fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"%s%d"}}`, i, huge, i)
		case 1: // matches the rec__ad* glob: allowed, then unknown to the upstream's catalog
			body = fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"rec__ad%s%d"}}`, i, huge, i)
		case 2:
			body = fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"prompts/get","params":{"name":"%s%d"}}`, i, huge, i)
		default:
			body = fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"resources/read","params":{"uri":"file:///%s%d"}}`, i, huge, i)
		}
		r := g.post(t, alice, sid, []byte(body))
		if len(r.body) > 2048 {
			t.Fatalf("request %d: the answer is %d bytes: %.300s", i, len(r.body), r.body)
		}
		code, msg, _ := r.rpcError(t)
		if code != -32602 && code != -32002 {
			t.Fatalf("request %d: error %d %.300q", i, code, msg)
		}
		if i%4 != 3 && !strings.Contains(msg, "…(4194") {
			t.Errorf("request %d: the message does not mark the cut name with its length: %.400q", i, msg)
		}
	}
	after := heapInUse()
	if after > before && after-before > 50<<20 {
		t.Errorf("the heap in use grew by %d MiB after 40 requests with 4 MB names", (after-before)>>20)
	}
	for _, line := range strings.Split(g.audit.String(), "\n") {
		if len(line) > 16<<10 {
			t.Fatalf("an audit line is %d bytes: %.300s", len(line), line)
		}
	}
	if !strings.Contains(g.audit.String(), "…(4194") {
		t.Error("the audit does not mark the cut names")
	}
	_ = http.StatusOK
}
