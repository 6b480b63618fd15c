package mcp

import (
	"context"
	"net/http"
	"net/netip"

	"github.com/gatewaystack/gatewaystack/auth"
	"github.com/gatewaystack/gatewaystack/upstream"
)

// Request is one request to the MCP endpoint on its way through the
// pipeline: the HTTP exchange, the parsed JSON-RPC envelope, the verified
// identity, the protocol era and the audit record being built. The handlers
// of the methods the gateway answers itself (rawHandlers) take it and
// nothing else.
type Request struct {
	// Ctx carries the verified identity (identityFrom) and ends with the
	// HTTP request.
	Ctx context.Context
	// W answers the request; HTTP is the request as it arrived.
	W    http.ResponseWriter
	HTTP *http.Request
	// Env is the JSON-RPC message, params raw.
	Env envelope
	// Identity is the verified caller.
	Identity auth.Identity
	// Modern: the request uses the stateless 2026-07-28 era.
	Modern bool
	// st is the audit record being built and the request's place in the
	// gateway (its owner, the session's capabilities).
	st *requestState
	// ip is the client address the per-IP limit keys on; sid the session
	// id sent (session era); body the POST body, read whole.
	ip   netip.Addr
	sid  string
	body []byte
	// done runs when the request ends (slots taken by stages).
	done []func()
}

// rawHandler serves one method the gateway answers itself.
type rawHandler func(g *Gateway, q *Request)

// rawHandlers are the methods the gateway answers itself, as raw JSON, with
// a policy decision — in one place; everything else of the protocol is
// served by mcp-go.
var rawHandlers = map[string]rawHandler{
	"tools/list":               (*Gateway).toolsList,
	"tools/call":               (*Gateway).toolsCall,
	"prompts/list":             func(g *Gateway, q *Request) { g.listEntries(q, upstream.Prompts, g.o.Policy.Prompts) },
	"resources/list":           func(g *Gateway, q *Request) { g.listEntries(q, upstream.Resources, g.o.Policy.Resources) },
	"resources/templates/list": func(g *Gateway, q *Request) { g.listEntries(q, upstream.ResourceTemplates, g.o.Policy.Resources) },
	"prompts/get":              (*Gateway).promptsGet,
	"resources/read":           (*Gateway).resourceCall,
	"resources/subscribe":      (*Gateway).resourceCall,
	"resources/unsubscribe":    (*Gateway).resourceCall,
	"completion/complete":      (*Gateway).completion,
}

// isRawMethod reports whether the gateway answers method itself.
func isRawMethod(method string) bool {
	_, ok := rawHandlers[method]
	return ok
}

// dispatchRaw serves q when its method is one of rawHandlers, and reports
// whether it did.
func (g *Gateway) dispatchRaw(q *Request) bool {
	h, ok := rawHandlers[q.Env.Method]
	if !ok {
		return false
	}
	h(g, q)
	return true
}
