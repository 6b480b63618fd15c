package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/gatewaystack/gatewaystack/audit"
	"github.com/gatewaystack/gatewaystack/auth"
	"github.com/gatewaystack/gatewaystack/internal/bounded"
	"github.com/gatewaystack/gatewaystack/internal/resourceuri"
	"github.com/gatewaystack/gatewaystack/policy"
	"github.com/gatewaystack/gatewaystack/upstream"
)

// codeResourceNotFound is MCP's error for an unknown resource.
const codeResourceNotFound = -32002

// listEntries answers prompts/list, resources/list and
// resources/templates/list with the entries of every upstream the caller may
// see, under the policy table az.
func (g *Gateway) listEntries(q *Request, k upstream.Kind, az *policy.Authorizer) {
	ctx, w, st, id, modern := q.Ctx, q.W, q.st, q.Identity, q.Modern
	rid, ok := g.checkRequest(q, "")
	if !ok {
		return
	}
	ctx = upstream.WithIdentity(ctx, g.o.IdentityHeaders, id)
	entries, lerrs := g.o.Router.List(ctx, k)
	if g.allUpstreamsFailed(w, st, rid, lerrs) {
		return
	}
	g.writeList(w, st, rid, k.Field, modern, len(entries), func(i int) (json.RawMessage, bool) {
		e := entries[i]
		return e.Definition, az.Decide(id, policy.Action{Name: e.PolicyKey(k), Upstream: e.Upstream}).Listed()
	})
}

// writeList answers a list method with the n candidate entries that item
// reports as listed, in order, as {"<field>": [...]} (with the cache hints in
// the 2026-07-28 era), and audits the listing.
func (g *Gateway) writeList(w http.ResponseWriter, st *requestState, rid json.RawMessage, field string, modern bool, n int, item func(i int) (json.RawMessage, bool)) {
	var b bytes.Buffer
	b.WriteString(`{"` + field + `":[`)
	listed := 0
	for i := range n {
		def, ok := item(i)
		if !ok {
			continue
		}
		if listed > 0 {
			b.WriteByte(',')
		}
		b.Write(def)
		listed++
	}
	b.WriteString(`]`)
	if modern {
		b.WriteString(cacheHints)
	}
	b.WriteString(`}`)
	g.audit(st, audit.Allow, policy.ReasonAllowed, http.StatusOK)
	writeRPCResult(w, rid, b.Bytes())
}

// cacheHints marks per-caller filtered lists in the 2026-07-28 era: never
// shared across authorization contexts, and immediately stale.
const cacheHints = `,"ttlMs":0,"cacheScope":"private"`

// allUpstreamsFailed answers a listing when every upstream failed (a
// JSON-RPC error naming them) and reports whether it did; when only some
// failed, they are logged and the others' entries are served.
func (g *Gateway) allUpstreamsFailed(w http.ResponseWriter, st *requestState, rid json.RawMessage, lerrs []upstream.ListError) bool {
	for _, le := range lerrs {
		g.o.Logger.Warn().Str("request_id", st.event.RequestID).Str("upstream", le.Upstream).Err(le.Err).Msg(st.event.Method + ": upstream left out")
	}
	if len(lerrs) == 0 || len(lerrs) < len(g.o.Router.Names()) {
		return false
	}
	names := make([]string, len(lerrs))
	for i, le := range lerrs {
		names[i] = le.Upstream
	}
	reason := failureReason(lerrs[0].Err)
	st.event.Upstream = strings.Join(names, ",")
	g.audit(st, audit.Error, reason, http.StatusOK)
	writeRPCError(w, http.StatusOK, rid, codeInternalError, upstreamMessage(st.event.Upstream, reason),
		map[string]any{"reason": reason, "upstreams": names})
	return true
}

// promptsGet decides and forwards prompts/get.
func (g *Gateway) promptsGet(q *Request) {
	ctx, w, st, env, id, modern := q.Ctx, q.W, q.st, q.Env, q.Identity, q.Modern
	c, perr := parseCanonical(env.Params, "name")
	if perr != nil {
		g.refuseParams(q, perr, `prompts/get needs params with one "name" string`)
		return
	}
	st.event.Prompt = c.Name
	st.event.Workflow = c.Workflow
	rid, ok := g.checkRequest(q, c.Name)
	if !ok {
		return
	}
	g.auditArguments(st, c.Name, c.Field("arguments"))
	unknown := func(reason string) {
		g.audit(st, audit.Deny, reason, statusFor(modern, http.StatusBadRequest))
		writeRPCError(w, statusFor(modern, http.StatusBadRequest), rid, codeInvalidParams, "Unknown prompt: "+bounded.String(c.Name), nil)
	}
	act := policy.Action{Name: c.Name, Arguments: c.Field("arguments"), ArgsKnown: true}
	d, allowed := g.decidePromptFirst(w, st, rid, id, act, unknown)
	if !allowed {
		return
	}
	ctx = upstream.WithIdentity(ctx, g.o.IdentityHeaders, id)
	up, original, err := g.o.Router.ResolvePrompt(ctx, c.Name)
	if errors.Is(err, upstream.ErrUnknownEntry) {
		unknown(policy.ReasonToolUnknown)
		return
	}
	if err != nil {
		g.upstreamFailed(w, st, rid, callerName(up), err)
		return
	}
	if d.Partial {
		act.Upstream = up.Name()
		if _, allowed := g.decideOrChallenge(w, st, rid, id, g.o.Policy.Prompts, act, unknown); !allowed {
			return
		}
	}
	g.forward(ctx, w, st, rid, up, env.Method, c, forwarded{original: original}, false)
}

// decidePromptFirst decides a prompt before its owner is resolved: a
// condition that reads request.upstream is decided for every upstream that
// could own the name (from the catalog, without asking any), so a prompt the
// caller may not use costs no upstream work.
func (g *Gateway) decidePromptFirst(w http.ResponseWriter, st *requestState, rid json.RawMessage, id auth.Identity, act policy.Action, unknown func(reason string)) (policy.Decision, bool) {
	d := g.o.Policy.Prompts.Decide(id, act)
	if d.Partial && d.Effect != policy.Hidden {
		d = g.decideForCandidates(id, act, g.o.Policy.Prompts, g.o.Router.PromptCandidates(act.Name))
	}
	return g.applyDecision(w, st, rid, id, g.o.Policy.Prompts, d, bounded.String(act.Name), unknown)
}

// resourceCall decides and forwards resources/read, subscribe and
// unsubscribe. Policy patterns match "<upstream>__<uri>", with the URI in
// RFC 3986 normal form (a URI sent in another form is refused, naming the
// normal one).
func (g *Gateway) resourceCall(q *Request) {
	ctx, w, st, env, id, modern := q.Ctx, q.W, q.st, q.Env, q.Identity, q.Modern
	c, perr := parseCanonical(env.Params, "uri")
	if perr != nil {
		g.refuseParams(q, perr, env.Method+` needs params with one "uri" string`)
		return
	}
	uri := c.Name
	st.event.Resource = uri
	rid, ok := g.checkRequest(q, uri)
	if !ok {
		return
	}
	if modern && env.Method != "resources/read" {
		g.audit(st, audit.Deny, "not_supported", http.StatusBadRequest)
		writeRPCError(w, http.StatusBadRequest, rid, codeInvalidRequest, env.Method+
			" is not available in protocol version 2026-07-28 through this gateway; use protocol 2025-11-25 for resource subscriptions", nil)
		return
	}
	unknown := g.resourceNotFound(w, st, rid, uri, modern)
	ctx = upstream.WithIdentity(ctx, g.o.IdentityHeaders, id)
	up, allowed := g.resolveDecidedResource(ctx, w, st, rid, id, uri, unknown)
	if !allowed {
		return
	}
	if env.Method != "resources/read" {
		// Subscriptions are counted per (upstream, URI): only the first
		// subscriber's subscribe and the last one's unsubscribe go upstream.
		g.subscriptionCall(ctx, w, st, rid, up, env.Method, c, uri)
		return
	}
	g.forward(ctx, w, st, rid, up, env.Method, c, forwarded{original: uri}, modern)
}

// resourceNotFound returns the one answer for a resource that does not
// exist and one the caller may not read: same code, message and status.
func (g *Gateway) resourceNotFound(w http.ResponseWriter, st *requestState, rid json.RawMessage, uri string, modern bool) func(reason string) {
	return func(reason string) {
		g.audit(st, audit.Deny, reason, statusFor(modern, http.StatusNotFound))
		writeRPCError(w, statusFor(modern, http.StatusNotFound), rid, codeResourceNotFound, "Resource not found: "+bounded.String(uri),
			map[string]string{"uri": bounded.String(uri)})
	}
}

// resolveDecidedResource decides uri before any upstream is asked about
// it, then finds its owner: from the catalog when it is there (decided for
// that owner); otherwise decided for every upstream, and only when one of
// them may serve it are the upstreams listed to find the owner, which is
// decided again. Every refusal before a positive decision is unknown(...)
// — the same answer as for a URI that exists nowhere — and costs no
// upstream work.
func (g *Gateway) resolveDecidedResource(ctx context.Context, w http.ResponseWriter, st *requestState, rid json.RawMessage, id auth.Identity, uri string, unknown func(reason string)) (upstream.Upstream, bool) {
	decideFor := func(up upstream.Upstream) bool {
		act := policy.Action{Name: up.Name() + upstream.Separator + uri, Upstream: up.Name(), ArgsKnown: true}
		_, allowed := g.decideOrChallenge(w, st, rid, id, g.o.Policy.Resources, act, unknown)
		return allowed
	}
	if up, ok := g.o.Router.CachedResourceOwner(uri); ok {
		return up, decideFor(up)
	}
	d := policy.Decision{Effect: policy.Hidden, Reason: policy.ReasonToolUnknown}
	for _, name := range g.o.Router.Names() {
		d = g.o.Policy.Resources.Decide(id, policy.Action{Name: name + upstream.Separator + uri, Upstream: name, ArgsKnown: true})
		if d.Effect != policy.Hidden {
			break
		}
	}
	if d.Effect == policy.Hidden {
		st.event.Rule = d.Rule
		unknown(d.Reason)
		return upstream.Upstream{}, false
	}
	up, err := g.o.Router.ResolveResource(ctx, uri)
	if errors.Is(err, upstream.ErrUnknownEntry) {
		unknown(policy.ReasonToolUnknown)
		return upstream.Upstream{}, false
	}
	if err != nil {
		g.upstreamFailed(w, st, rid, callerName(up), err)
		return upstream.Upstream{}, false
	}
	return up, decideFor(up)
}

// completion forwards completion/complete for a prompt or resource the
// caller may use, rewriting a prompt reference to the upstream's own name.
func (g *Gateway) completion(q *Request) {
	ctx, w, st, env, id, modern := q.Ctx, q.W, q.st, q.Env, q.Identity, q.Modern
	c, perr := parseCanonical(env.Params, "")
	var ref struct {
		Type string `json:"type"`
		Name string `json:"name"`
		URI  string `json:"uri"`
	}
	if perr == nil && json.Unmarshal(c.Field("ref"), &ref) != nil {
		perr = errors.New("ref")
	}
	if perr != nil {
		g.refuseParams(q, perr, `completion/complete needs params with a "ref" object`)
		return
	}
	st.event.Workflow = c.Workflow
	rid, ok := g.checkRequest(q, "")
	if !ok {
		return
	}
	ctx = upstream.WithIdentity(ctx, g.o.IdentityHeaders, id)
	var up upstream.Upstream
	switch ref.Type {
	case "ref/prompt":
		st.event.Prompt = ref.Name
		unknown := func(reason string) {
			g.audit(st, audit.Deny, reason, statusFor(modern, http.StatusBadRequest))
			writeRPCError(w, statusFor(modern, http.StatusBadRequest), rid, codeInvalidParams, "Unknown prompt: "+bounded.String(ref.Name), nil)
		}
		// A completion carries no prompt arguments to decide on: a
		// condition on request.arguments sees an empty object.
		act := policy.Action{Name: ref.Name, ArgsKnown: true}
		d, allowed := g.decidePromptFirst(w, st, rid, id, act, unknown)
		if !allowed {
			return
		}
		var original string
		var err error
		up, original, err = g.o.Router.ResolvePrompt(ctx, ref.Name)
		if errors.Is(err, upstream.ErrUnknownEntry) {
			unknown(policy.ReasonToolUnknown)
			return
		}
		if err != nil {
			g.upstreamFailed(w, st, rid, callerName(up), err)
			return
		}
		if d.Partial {
			act.Upstream = up.Name()
			if _, allowed := g.decideOrChallenge(w, st, rid, id, g.o.Policy.Prompts, act, unknown); !allowed {
				return
			}
		}
		refBytes, err := json.Marshal(map[string]string{"type": ref.Type, "name": original})
		if err != nil {
			g.badParams(w, st, rid, modern, "completion/complete params could not be re-encoded")
			return
		}
		c.set("ref", refBytes)
	case "ref/resource":
		uri, err := resourceuri.Check(ref.URI)
		if err != nil {
			g.refuseParams(q, &paramsError{msg: "params.ref.uri: " + err.Error()}, "")
			return
		}
		st.event.Resource = uri
		var allowed bool
		up, allowed = g.resolveDecidedResource(ctx, w, st, rid, id, uri, g.resourceNotFound(w, st, rid, uri, modern))
		if !allowed {
			return
		}
	default:
		g.badParams(w, st, rid, modern, `completion/complete ref.type must be "ref/prompt" or "ref/resource"`)
		return
	}
	g.forward(ctx, w, st, rid, up, env.Method, c, forwarded{}, false)
}

// decideOrChallenge applies az to act: Allow reports true; StepUp answers
// 403 with the insufficient_scope challenge; Hidden answers with unknown,
// exactly as for something that does not exist. When act leaves the
// upstream unknown and the decision is Partial, the caller decides again
// once the upstream is resolved.
func (g *Gateway) decideOrChallenge(w http.ResponseWriter, st *requestState, rid json.RawMessage, id auth.Identity, az *policy.Authorizer, act policy.Action, unknown func(reason string)) (policy.Decision, bool) {
	return g.applyDecision(w, st, rid, id, az, az.Decide(id, act), bounded.String(act.Name), unknown)
}

// applyDecision records d and answers what it does not allow: StepUp with
// the 403 insufficient_scope challenge, Hidden with unknown.
func (g *Gateway) applyDecision(w http.ResponseWriter, st *requestState, rid json.RawMessage, id auth.Identity, az *policy.Authorizer, d policy.Decision, what string, unknown func(reason string)) (policy.Decision, bool) {
	st.event.Rule = d.Rule
	switch d.Effect {
	case policy.Allow:
		return d, true
	case policy.StepUp:
		g.stepUp(w, st, rid, id, az, d, what)
	default:
		unknown(d.Reason)
	}
	return d, false
}

// stepUp answers 403 with the insufficient_scope challenge for d.
func (g *Gateway) stepUp(w http.ResponseWriter, st *requestState, rid json.RawMessage, id auth.Identity, az *policy.Authorizer, d policy.Decision, what string) {
	scope := az.ChallengeScope(id, d)
	w.Header().Set("WWW-Authenticate", auth.Challenge{Error: auth.CodeInsufficientScope,
		Description: "this request needs more scope", Scope: scope, ResourceMetadata: g.prmURL}.String())
	g.audit(st, audit.Deny, d.Reason, http.StatusForbidden)
	writeRPCError(w, http.StatusForbidden, rid, codeForbidden,
		what+" needs scope "+strings.Join(d.Missing, " ")+"; ask the user to grant it",
		map[string]any{"reason": d.Reason, "required_scopes": d.Required, "missing_scopes": d.Missing})
}

// forward sends an authorized request upstream and relays the raw answer.
// A request carrying a progressToken gets its progress notifications, and
// the notifications the upstream sends on this call's own response stream
// (log messages, …) reach this client too: the response becomes an event
// stream at the first one and ends with the result. The call can be
// cancelled by the client's notifications/cancelled.
//
// The params sent are encoded here from the canonical form c the decision
// read (see canonicalParams): f adds only what the gateway owns.
func (g *Gateway) forward(ctx context.Context, w http.ResponseWriter, st *requestState, rid json.RawMessage, up upstream.Upstream, method string, c *canonicalParams, f forwarded, hints bool) bool {
	st.event.Upstream = up.Name()
	var token string
	var progress <-chan json.RawMessage
	if original := c.metaField("progressToken"); len(original) > 0 {
		token, progress = g.progress.register(original)
		f.progressToken = token
		defer g.progress.done(token)
	}
	if id, ok := identityFrom(ctx); ok {
		f.identity = &id
	}
	params, err := c.encode(f)
	if err != nil {
		g.badParams(w, st, rid, st.modern, method+" params could not be encoded")
		return false
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	key := inflightKey(st.owner, rid)
	g.inflight.add(key, cancel)
	defer g.inflight.remove(key)

	// The call runs on this goroutine. What reaches the client before the
	// result — requests relayed from the upstream, notifications on the
	// call's own stream, progress — goes through sse, which serializes
	// writers: the upstream's readers may call back from goroutines of
	// their own.
	sse := &sseWriter{w: w}
	defer sse.finish()
	ctx = upstream.WithServerRequests(ctx, g.relayer(st, sse.send))
	ctx = upstream.WithCallNotifications(ctx, g.callNotifications(up.Name(), token, g.clientLogLevel(st, c), sse.send))
	stopProgress := pumpProgress(progress, sse.send)
	called := time.Now()
	resp, err := up.Call(ctx, method, params)
	stopProgress()
	st.event.UpstreamLatency = time.Since(called)
	st.event.ResultBytes = int64(len(resp.Result))
	st.event.UpstreamStatus = resp.HTTPStatus
	body, ok := g.answer(ctx, st, rid, up.Name(), method, resp, err, hints)
	sse.last(body)
	return ok
}

// pumpProgress sends the call's progress notifications as they come until
// the returned function is called; that function returns once every
// notification sent before the result has been delivered (before it).
func pumpProgress(progress <-chan json.RawMessage, send func([]byte)) (stop func()) {
	if progress == nil {
		return func() {}
	}
	done, halt := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case msg := <-progress:
				send(msg)
			case <-halt:
				for {
					select {
					case msg := <-progress:
						send(msg)
					default:
						return
					}
				}
			}
		}
	}()
	return func() { close(halt); <-done }
}

// answer is the message the client gets for an upstream call's outcome —
// the result (with the 2026-07-28 cache hints when hints), the upstream's
// own JSON-RPC error, or an error naming the upstream when it could not be
// reached or the call was cancelled — recorded in the audit event and the
// metrics. ok reports a result.
func (g *Gateway) answer(ctx context.Context, st *requestState, rid json.RawMessage, upName, method string, resp upstream.Response, err error, hints bool) (body []byte, ok bool) {
	metricReason := ""
	switch {
	case err != nil:
		reason := failureReason(err)
		if ctx.Err() == context.Canceled && errors.Is(err, context.Canceled) {
			reason = reasonCancelled
		}
		metricReason = reason
		g.o.Logger.Warn().Str("request_id", st.event.RequestID).Str("upstream", upName).Err(err).Msg(method + " failed")
		g.audit(st, audit.Error, reason, http.StatusOK)
		body = mustMarshal(rpcErrorBody{JSONRPC: "2.0", ID: rid, Error: rpcErrorDetail{Code: codeInternalError,
			Message: upstreamMessage(upName, reason), Data: map[string]any{"reason": reason, "upstream": upName}}})
	case resp.Error != nil:
		g.audit(st, audit.Allow, reasonUpstreamError, http.StatusOK)
		body = mustMarshal(struct {
			JSONRPC string             `json:"jsonrpc"`
			ID      json.RawMessage    `json:"id"`
			Error   *upstream.RPCError `json:"error"`
		}{"2.0", rid, resp.Error})
	default:
		result := resp.Result
		if hints {
			result = withCacheHints(result)
		}
		g.audit(st, audit.Allow, policy.ReasonAllowed, http.StatusOK)
		body, ok = rpcResultBytes(rid, result), true
	}
	if g.o.Metrics != nil {
		g.o.Metrics.Upstream(upName, method, st.event.UpstreamLatency, metricReason)
	}
	return body, ok
}

// mustMarshal encodes v, which is always encodable here.
func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"internal error"}}`)
	}
	return b
}

// withCacheHints adds the 2026-07-28 cache hints to a result object.
func withCacheHints(result json.RawMessage) json.RawMessage {
	trimmed := bytes.TrimRight(result, " \t\r\n")
	if len(trimmed) < 2 || trimmed[len(trimmed)-1] != '}' {
		return result
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(trimmed, &obj) != nil {
		return result
	}
	obj["ttlMs"] = json.RawMessage("0")
	obj["cacheScope"] = json.RawMessage(`"private"`)
	out, err := json.Marshal(obj)
	if err != nil {
		return result
	}
	return out
}

// badParams answers malformed params with -32602.
func (g *Gateway) badParams(w http.ResponseWriter, st *requestState, rid json.RawMessage, modern bool, msg string) {
	status := statusFor(modern, http.StatusBadRequest)
	g.audit(st, audit.Deny, "params_invalid", status)
	writeRPCError(w, status, rid, codeInvalidParams, msg, nil)
}

// refuseParams answers params parseCanonical refused: with HTTP 400 and
// -32602 in both eras when they are ambiguous or not in normal form (the
// message says what to change), else as badParams with the method's usage
// message.
func (g *Gateway) refuseParams(q *Request, err error, usage string) {
	var pe *paramsError
	if errors.As(err, &pe) {
		g.audit(q.st, audit.Deny, "params_invalid", http.StatusBadRequest)
		writeRPCError(q.W, http.StatusBadRequest, rawID(q.Env.ID), codeInvalidParams, pe.msg, nil)
		return
	}
	g.badParams(q.W, q.st, rawID(q.Env.ID), q.Modern, usage)
}

// callerName is the name of up, or "" when no upstream is known.
func callerName(up upstream.Upstream) string {
	if up.Caller == nil {
		return ""
	}
	return up.Name()
}

// callNotifications returns the sink for the notifications the upstream
// sends on this call's own response stream; what goes to this call's client
// is queued on notes, in order:
//   - progress for this call's token, under the client's own token; progress
//     for another request's token (a server that shares one session's
//     notifications among its open streams) is routed by that token;
//   - list changes are left to the router's handler, which broadcasts them;
//   - resource updates go to the subscribed sessions, as always;
//   - notifications/cancelled names the upstream's own request ids, which
//     the client never saw: dropped;
//   - log messages at or above the client's level (clientLogLevel), and
//     anything else: as sent.
func (g *Gateway) callNotifications(upstreamName, token string, logLevel mcpgo.LoggingLevel,
	send func([]byte)) func(method string, params json.RawMessage) {
	return func(method string, params json.RawMessage) {
		var msg []byte
		switch {
		case method == "notifications/progress":
			t, body, ok := g.progress.restore(params)
			if !ok {
				return
			}
			if t != token {
				g.progress.send(t, body)
				return
			}
			msg = body
		case strings.HasSuffix(method, "/list_changed"):
			return
		case method == "notifications/resources/updated":
			g.onUpstreamNotification(upstream.Notification{Upstream: upstreamName, Method: method, Params: params})
			return
		case method == "notifications/cancelled":
			return
		case method == "notifications/message" && !logWanted(params, logLevel):
			return
		default:
			msg = mustMarshal(struct {
				JSONRPC string          `json:"jsonrpc"`
				Method  string          `json:"method"`
				Params  json.RawMessage `json:"params,omitempty"`
			}{"2.0", method, params})
		}
		send(msg)
	}
}

// clientLogLevel is the least level of the log messages this request's
// client gets: in the session era the level its session set with
// logging/setLevel (defaultLogLevel before it sets one); in the 2026-07-28
// era the level the request asks for in its _meta, and none ("") when it
// asks for none.
func (g *Gateway) clientLogLevel(st *requestState, c *canonicalParams) mcpgo.LoggingLevel {
	if !st.modern {
		return g.logLevels.get(st.owner)
	}
	var level mcpgo.LoggingLevel
	raw := c.metaField(mcpgo.MetaKeyLogLevel)
	if len(raw) == 0 || json.Unmarshal(raw, &level) != nil {
		return ""
	}
	return level
}

// logWanted reports whether a notifications/message is at or above level.
func logWanted(params json.RawMessage, level mcpgo.LoggingLevel) bool {
	if level == "" {
		return false
	}
	var p struct {
		Level mcpgo.LoggingLevel `json:"level"`
	}
	return json.Unmarshal(params, &p) == nil && p.Level.ShouldSendTo(level)
}
