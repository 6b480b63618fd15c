package mcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/gatewaystack/gatewaystack/audit"
	"github.com/gatewaystack/gatewaystack/auth"
	"github.com/gatewaystack/gatewaystack/internal/bounded"
	"github.com/gatewaystack/gatewaystack/policy"
	"github.com/gatewaystack/gatewaystack/upstream"
)

// Reason codes of the route stage.
const (
	reasonUpstreamTimeout     = "upstream_timeout"
	reasonUpstreamUnavailable = "upstream_unavailable"
	reasonUpstreamError       = "upstream_error"
	reasonUpstreamBusy        = "upstream_busy"
	reasonCancelled           = "cancelled"
)

// checkRequest validates the parts of a request every raw method needs: a
// usable id and, in the 2026-07-28 era, headers that match the body (name
// is the params' identifying value, "" when none).
func (g *Gateway) checkRequest(q *Request, name string) (json.RawMessage, bool) {
	id := rawID(q.Env.ID)
	if id == nil || q.Env.JSONRPC != "2.0" {
		g.audit(q.st, audit.Deny, "request_invalid", http.StatusBadRequest)
		writeRPCError(q.W, http.StatusBadRequest, id, codeInvalidRequest, `a JSON-RPC 2.0 request with "jsonrpc":"2.0" and a string or number id is required`, nil)
		return nil, false
	}
	if q.Modern {
		if msg := checkModernHeaders(q.HTTP, q.Env.Method, name, q.Env.Params); msg != "" {
			g.audit(q.st, audit.Deny, "header_mismatch", http.StatusBadRequest)
			writeRPCError(q.W, http.StatusBadRequest, id, codeHeaderMismatch, msg, nil)
			return nil, false
		}
	}
	return id, true
}

// toolsList answers tools/list with the tools of every upstream that the
// caller may see (allowed, or reachable by step-up), names namespaced and
// definitions otherwise untouched.
func (g *Gateway) toolsList(q *Request) {
	ctx, w, st, id, modern := q.Ctx, q.W, q.st, q.Identity, q.Modern
	rid, ok := g.checkRequest(q, "")
	if !ok {
		return
	}
	ctx = upstream.WithIdentity(ctx, g.o.IdentityHeaders, id)
	tools, lerrs := g.o.Router.ListTools(ctx)
	if g.allUpstreamsFailed(w, st, rid, lerrs) {
		return
	}
	g.writeList(w, st, rid, "tools", modern, len(tools), func(i int) (json.RawMessage, bool) {
		t := tools[i]
		return t.Definition, g.o.Policy.Tools.Decide(id, policy.Action{Name: t.Name, Upstream: t.Upstream}).Listed()
	})
}

// toolsCall decides a tools/call and, when allowed, forwards it to the
// upstream that owns the tool with the verified identity attached. The
// params are parsed once into their canonical form; the decision reads it
// and the forwarded params are encoded from it (canonical.go).
func (g *Gateway) toolsCall(q *Request) {
	ctx, w, r, st, env, id, modern := q.Ctx, q.W, q.HTTP, q.st, q.Env, q.Identity, q.Modern
	c, perr := parseCanonical(env.Params, "name")
	if perr != nil {
		g.refuseParams(q, perr, `tools/call needs params with one "name" string (exactly that key, in lower case)`)
		return
	}
	name := c.Name
	st.event.Tool = name
	st.event.Workflow = c.Workflow
	rid, ok := g.checkRequest(q, name)
	if !ok {
		return
	}
	// Decided before the upstream is resolved, so a hidden tool costs no
	// upstream work and cannot surface an upstream error; a condition that
	// reads request.upstream is decided for every upstream that could own
	// the name (from the catalog, without asking any), and again once the
	// owner is known.
	act := policy.Action{Name: name, Arguments: c.Field("arguments"), ArgsKnown: true}
	g.auditArguments(st, name, act.Arguments)
	d := g.o.Policy.Tools.Decide(id, act)
	if d.Partial && d.Effect != policy.Hidden {
		d = g.decideForCandidates(id, act, g.o.Policy.Tools, g.o.Router.ToolCandidates(name))
	}
	if !g.applyToolDecision(w, st, rid, id, d, name, modern) {
		return
	}

	ctx = upstream.WithIdentity(ctx, g.o.IdentityHeaders, id)
	up, original, err := g.o.Router.Resolve(ctx, name)
	if errors.Is(err, upstream.ErrUnknownTool) {
		g.audit(st, audit.Deny, policy.ReasonToolUnknown, statusFor(modern, http.StatusBadRequest))
		g.writeUnknownTool(w, rid, name, modern)
		return
	}
	if err != nil {
		g.upstreamFailed(w, st, rid, up.Name(), err)
		return
	}
	if d.Partial {
		act.Upstream = up.Name()
		if !g.applyToolDecision(w, st, rid, id, g.o.Policy.Tools.Decide(id, act), name, modern) {
			return
		}
	}
	st.event.Upstream = up.Name()
	if modern && !g.paramHeadersMatch(w, r, st, rid, up.Name(), original, env.Params) {
		return
	}
	if g.callLimited(ctx, w, st, rid, id, name) {
		return
	}
	g.forward(ctx, w, st, rid, up, "tools/call", c, forwarded{original: original}, false)
}

// decideForCandidates decides act, whose condition reads request.upstream,
// for each upstream that could own it: the first decision that lets the
// caller go on (Allow, or StepUp) wins, still Partial, so the caller decides
// again once the owner is resolved; when none does, the last refusal (or
// tool_unknown without candidates) — a made-up name costs no upstream work.
func (g *Gateway) decideForCandidates(id auth.Identity, act policy.Action, az *policy.Authorizer, candidates []string) policy.Decision {
	d := policy.Decision{Effect: policy.Hidden, Reason: policy.ReasonToolUnknown}
	for _, u := range candidates {
		act.Upstream = u
		d = az.Decide(id, act)
		if d.Effect != policy.Hidden {
			d.Partial = true
			return d
		}
	}
	return d
}

// applyToolDecision records d and answers a tools/call it does not allow:
// Hidden like an unknown tool, StepUp with the insufficient_scope challenge.
func (g *Gateway) applyToolDecision(w http.ResponseWriter, st *requestState, rid json.RawMessage, id auth.Identity, d policy.Decision, name string, modern bool) bool {
	st.event.Rule = d.Rule
	switch d.Effect {
	case policy.Hidden:
		g.audit(st, audit.Deny, d.Reason, statusFor(modern, http.StatusBadRequest))
		g.writeUnknownTool(w, rid, name, modern)
		return false
	case policy.StepUp:
		g.stepUp(w, st, rid, id, g.o.Policy.Tools, d, "tool "+bounded.String(name))
		return false
	}
	return true
}

// upstreamFailed answers a tools/call whose upstream could not be reached
// or did not answer in time: a JSON-RPC error naming the upstream.
func (g *Gateway) upstreamFailed(w http.ResponseWriter, st *requestState, rid json.RawMessage, name string, err error) {
	reason := failureReason(err)
	st.event.Upstream = name
	g.o.Logger.Warn().Str("request_id", st.event.RequestID).Str("upstream", name).Err(err).Msg("tools/call failed")
	g.audit(st, audit.Error, reason, http.StatusOK)
	writeRPCError(w, http.StatusOK, rid, codeInternalError, upstreamMessage(name, reason), map[string]any{"reason": reason, "upstream": name})
}

// upstreamMessage is what a caller learns about a failed upstream: its name
// and whether it was unreachable or too slow. The transport error itself
// (upstream URLs, addresses) goes to the log only.
func upstreamMessage(name, reason string) string {
	switch reason {
	case reasonUpstreamTimeout:
		return "upstream " + name + " did not answer in time"
	case reasonUpstreamBusy:
		return "upstream " + name + " is busy (at its concurrency limit); try again shortly"
	case reasonCancelled:
		return "the request to upstream " + name + " was cancelled"
	}
	return "upstream " + name + " is unavailable"
}

// failureReason classifies an upstream failure into a reason code.
func failureReason(err error) string {
	switch {
	case errors.Is(err, upstream.ErrBusy):
		return reasonUpstreamBusy
	case errors.Is(err, upstream.ErrTimeout):
		return reasonUpstreamTimeout
	}
	return reasonUpstreamUnavailable
}

// writeUnknownTool is the one answer for tools that do not exist and tools
// the caller may not know about, so a hidden tool reveals nothing.
func (g *Gateway) writeUnknownTool(w http.ResponseWriter, id json.RawMessage, name string, modern bool) {
	writeRPCError(w, statusFor(modern, http.StatusBadRequest), id, codeInvalidParams, "Unknown tool: "+bounded.String(name), nil)
}

// statusFor returns the HTTP status of a JSON-RPC error: the 2026-07-28 era
// maps errors to statuses, the session era answers 200.
func statusFor(modern bool, status int) int {
	if modern {
		return status
	}
	return http.StatusOK
}

// paramHeadersMatch checks, in the 2026-07-28 era, that every Mcp-Param-*
// header agrees with the argument the tool's x-mcp-header annotations tie it
// to (SEP-2243), as the upstream would; a mismatch is answered with 400 and
// -32020. The gateway itself never decides on these headers, and does not
// forward them.
func (g *Gateway) paramHeadersMatch(w http.ResponseWriter, r *http.Request, st *requestState, rid json.RawMessage, up, original string, params json.RawMessage) bool {
	def, ok := g.o.Router.ToolDefinition(up, original)
	if !ok {
		return true
	}
	tool := g.parsedTool(up, original, def)
	if tool == nil {
		return true
	}
	err := mcpgo.ValidateParamHeadersLookup(func(name string) (string, bool) {
		v := r.Header.Values(name)
		if len(v) == 0 {
			return "", false
		}
		return v[0], true
	}, tool, params)
	if err == nil {
		return true
	}
	g.audit(st, audit.Deny, "header_mismatch", http.StatusBadRequest)
	writeRPCError(w, http.StatusBadRequest, rid, codeHeaderMismatch, err.Error(), nil)
	return false
}

// parsedTool is the definition def of upstream up's tool original, decoded
// once per definition (the catalog's tools only, so the cache is bounded by
// the catalog); nil when it does not decode.
func (g *Gateway) parsedTool(up, original string, def json.RawMessage) *mcpgo.Tool {
	key := up + "\x00" + original
	if v, ok := g.tools.Load(key); ok {
		if c := v.(*cachedTool); bytes.Equal(c.def, def) {
			return c.tool
		}
	}
	var tool mcpgo.Tool
	if json.Unmarshal(def, &tool) != nil {
		return nil
	}
	g.tools.Store(key, &cachedTool{def: def, tool: &tool})
	return &tool
}

// cachedTool is a decoded tool definition and the bytes it came from.
type cachedTool struct {
	def  json.RawMessage
	tool *mcpgo.Tool
}
