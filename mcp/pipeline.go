package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/gatewaystack/gatewaystack/audit"
	"github.com/gatewaystack/gatewaystack/auth"
)

// A stage is one step of the pipeline of a request to the MCP endpoint. It
// reports whether the request goes on; a stage that stops it has answered
// it (and audited the answer).
type stage func(g *Gateway, q *Request) bool

// mcpPipeline is the order every request to the MCP endpoint goes through,
// declared once (the comment of routes draws it):
var mcpPipeline = []stage{
	(*Gateway).acceptMethod,    // POST, GET or DELETE
	(*Gateway).limitFloods,     // per-IP flood limit: only failed credentials and too-slow bodies count
	(*Gateway).checkDeclared,   // a body declared too large, from its headers
	(*Gateway).identify,        // bearer token, from the headers; authentication capped in total and per IP
	(*Gateway).takeSlots,       // the replica's and the subject's caps on requests in progress
	(*Gateway).readBody,        // bounded in size and time (server.read_timeout)
	(*Gateway).parseEnvelope,   // one unambiguous JSON-RPC message
	(*Gateway).limitRequests,   // per-subject and per-tenant rate limits
	(*Gateway).guardSession,    // a session belongs to its subject, on every verb
	(*Gateway).dispatchRequest, // the gateway's own methods (canonicalize → decide → limit → forward), else mcp-go
}

// serveMCP runs the pipeline for one request to the MCP endpoint.
func (g *Gateway) serveMCP(w http.ResponseWriter, r *http.Request) {
	st := &requestState{start: time.Now()}
	st.event.RequestID = newRequestID()
	w.Header().Set("X-Request-Id", st.event.RequestID)
	st.event.Method = r.Method
	q := &Request{Ctx: r.Context(), W: w, HTTP: r, st: st}
	defer q.release()
	for _, s := range mcpPipeline {
		if !s(g, q) {
			return
		}
	}
}

// onDone runs f when the request ends (slots taken by a stage).
func (q *Request) onDone(f func()) { q.done = append(q.done, f) }

// release runs what onDone registered, last first.
func (q *Request) release() {
	for i := len(q.done) - 1; i >= 0; i-- {
		q.done[i]()
	}
}

// acceptMethod refuses verbs the endpoint does not serve.
func (g *Gateway) acceptMethod(q *Request) bool {
	switch q.HTTP.Method {
	case http.MethodPost, http.MethodGet, http.MethodDelete:
		return true
	}
	q.W.Header().Set("Allow", "GET, POST, DELETE, OPTIONS")
	g.audit(q.st, audit.Deny, "method_not_allowed", http.StatusMethodNotAllowed)
	writeJSON(q.W, http.StatusMethodNotAllowed, map[string]string{"error": "method_not_allowed",
		"error_description": "use POST for JSON-RPC messages, GET for the event stream, DELETE to end a session"})
	return false
}

// limitFloods applies the per-IP flood limit, before any token is
// verified (limits.go). Until the body is read, any answer closes the
// connection: net/http would otherwise wait for the unread rest of the
// body (a slow sender holds it) before answering, to keep the connection
// alive.
func (g *Gateway) limitFloods(q *Request) bool {
	if q.HTTP.Method == http.MethodPost && q.HTTP.ContentLength != 0 {
		q.W.Header().Set("Connection", "close")
	}
	q.ip = g.o.Limits.clientIP(q.HTTP)
	return !g.ipRefused(q.W, q.HTTP, q.st, q.ip)
}

// checkDeclared refuses a body declared too large, from its headers,
// before anything else (one chunked without a length is bounded as it is
// read).
func (g *Gateway) checkDeclared(q *Request) bool {
	if q.HTTP.Method != http.MethodPost || q.HTTP.ContentLength <= g.o.HTTP.MaxBodyBytes {
		return true
	}
	g.bodyTooLarge(q)
	return false
}

// bodyTooLarge answers 413.
func (g *Gateway) bodyTooLarge(q *Request) {
	g.audit(q.st, audit.Deny, "body_too_large", http.StatusRequestEntityTooLarge)
	writeRPCError(q.W, http.StatusRequestEntityTooLarge, nil, codeInvalidRequest,
		"the request body exceeds "+strconv.FormatInt(g.o.HTTP.MaxBodyBytes, 10)+" bytes", nil)
}

// identify verifies the bearer token, from the headers alone: no body is
// read for a caller without valid credentials, and the time spent
// verifying (a JWKS refetch may wait) is capped in total and per client IP.
// Failed or missing credentials count against the per-IP limit.
func (g *Gateway) identify(q *Request) bool {
	ipKey := q.ip.String()
	if !g.caps.enterPreauth(ipKey) {
		g.refuseOverloaded(q.W, q.st)
		return false
	}
	id, aerr := g.verifyBearer(q.HTTP)
	g.caps.leavePreauth(ipKey)
	if aerr != nil {
		g.chargeIP(q.HTTP.Context(), q.ip)
		g.audit(q.st, audit.Deny, aerr.Reason, aerr.Status)
		g.writeAuthError(q.W, aerr)
		return false
	}
	q.Identity = id
	q.st.event.Subject, q.st.event.Tenant, q.st.event.ClientID, q.st.event.TokenID = id.Subject, id.Tenant, id.ClientID, id.TokenID
	q.Ctx = context.WithValue(q.Ctx, identityKey{}, id)
	return true
}

// verifyBearer verifies the request's bearer token; every failure is an
// *auth.Error.
func (g *Gateway) verifyBearer(r *http.Request) (auth.Identity, *auth.Error) {
	token, aerr := auth.BearerToken(r)
	if aerr != nil {
		return auth.Identity{}, aerr
	}
	id, err := g.o.Verifier.Verify(r.Context(), token)
	if err != nil {
		if !errors.As(err, &aerr) {
			aerr = &auth.Error{Status: http.StatusUnauthorized, Code: auth.CodeInvalidToken, Reason: auth.ReasonSignatureInvalid, Description: "the token could not be verified"}
		}
		return auth.Identity{}, aerr
	}
	return id, nil
}

// takeSlots takes the replica's and the subject's slots for a request in
// progress (event streams, which last, are capped apart), only once the
// caller is known.
func (g *Gateway) takeSlots(q *Request) bool {
	if q.HTTP.Method == http.MethodGet {
		return true
	}
	if !g.caps.enter() {
		g.refuseOverloaded(q.W, q.st)
		return false
	}
	q.onDone(g.caps.leave)
	subject := q.Identity.Subject
	if !g.caps.enterSubject(subject) {
		g.refuseTooManyConcurrent(q.W, q.st, nil)
		return false
	}
	q.onDone(func() { g.caps.leaveSubject(subject) })
	return true
}

// readBody reads a POST body, bounded in size and in time
// (server.read_timeout; a body slower than that gets 408 and counts against
// the per-IP limit like a failed credential).
func (g *Gateway) readBody(q *Request) bool {
	if q.HTTP.Method != http.MethodPost {
		return true
	}
	rc := http.NewResponseController(q.W)
	if g.o.HTTP.ReadTimeout > 0 {
		_ = rc.SetReadDeadline(time.Now().Add(g.o.HTTP.ReadTimeout))
	}
	body, err := io.ReadAll(io.LimitReader(q.HTTP.Body, g.o.HTTP.MaxBodyBytes+1))
	if g.o.HTTP.ReadTimeout > 0 {
		_ = rc.SetReadDeadline(time.Time{})
	}
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			g.chargeIP(q.HTTP.Context(), q.ip)
			g.audit(q.st, audit.Deny, "body_timeout", http.StatusRequestTimeout)
			writeRPCError(q.W, http.StatusRequestTimeout, nil, codeParseError,
				"the request body did not arrive within server.read_timeout", nil)
			return false
		}
		g.audit(q.st, audit.Deny, "body_unreadable", http.StatusBadRequest)
		writeRPCError(q.W, http.StatusBadRequest, nil, codeParseError, "the request body could not be read", nil)
		return false
	}
	if int64(len(body)) > g.o.HTTP.MaxBodyBytes {
		g.bodyTooLarge(q)
		return false
	}
	q.W.Header().Del("Connection") // read whole: the connection can be kept
	q.body = body
	return true
}

// parseEnvelope parses the JSON-RPC message of a POST: valid UTF-8, one
// message (no batch), and no key that parsers read differently.
func (g *Gateway) parseEnvelope(q *Request) bool {
	if q.HTTP.Method != http.MethodPost {
		return true
	}
	body, st := q.body, q.st
	refuse := func(reason string, code int, msg string) bool {
		g.audit(st, audit.Deny, reason, http.StatusBadRequest)
		writeRPCError(q.W, http.StatusBadRequest, nil, code, msg, nil)
		return false
	}
	if !utf8.Valid(body) {
		// RFC 8259: JSON text is UTF-8. encoding/json would replace the
		// bad bytes, so the gateway and an upstream could read different
		// strings; and an id echoed back would not be JSON.
		return refuse("body_not_utf8", codeParseError, "the request body is not valid UTF-8 (JSON text must be UTF-8)")
	}
	if trimmed := bytes.TrimLeft(body, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '[' {
		return refuse("batch_not_supported", codeInvalidRequest, "JSON-RPC batches are not supported; send one message per request")
	}
	if !decodeEnvelope(body, &q.Env) {
		if err := json.Unmarshal(body, &q.Env); err != nil {
			return refuse("body_malformed", codeParseError, "the request body is not a JSON-RPC message")
		}
	}
	if err := checkUnambiguous(body); err != nil {
		msg := "the request body is not a JSON-RPC message"
		if errors.Is(err, errAmbiguousMessage) {
			msg = err.Error() + "; send each key once, in its exact case"
		}
		return refuse("body_ambiguous", codeInvalidRequest, msg)
	}
	if q.Env.Method != "" {
		st.event.Method = q.Env.Method
	}
	return true
}

// limitRequests applies the per-subject and per-tenant rate limits, on
// every request.
func (g *Gateway) limitRequests(q *Request) bool {
	return !g.requestLimited(q.Ctx, q.W, q.st, rawID(q.Env.ID), q.Identity)
}

// guardSession holds a session to the subject that created it, on every
// verb; a request of the gateway's own methods, and a DELETE, need one in
// the session era. The 2026-07-28 era has no sessions.
func (g *Gateway) guardSession(q *Request) bool {
	st, rid := q.st, rawID(q.Env.ID)
	q.Modern = isModern(q.HTTP, q.Env.Params)
	st.modern = q.Modern
	q.sid = q.HTTP.Header.Get(mcpgo.HeaderSessionID)
	st.owner = "sub:" + q.Identity.Subject
	if q.Modern {
		return true
	}
	if q.sid == "" {
		if q.HTTP.Method == http.MethodDelete || isRawMethod(q.Env.Method) {
			g.audit(st, audit.Deny, "session_missing", http.StatusBadRequest)
			writeRPCError(q.W, http.StatusBadRequest, rid, codeInvalidRequest, "Mcp-Session-Id header is required; send initialize first", nil)
			return false
		}
		return true
	}
	st.event.SessionID = q.sid
	sess, err := g.o.Sessions.Open(q.Ctx, q.sid)
	switch {
	case errors.Is(err, ErrSessionStore):
		g.limitUnavailable(q.W, st, rid, "limits.store", err)
		return false
	case err == nil && sess.Subject != q.Identity.Subject:
		g.audit(st, audit.Deny, "session_subject_mismatch", http.StatusNotFound)
	case err != nil:
		g.audit(st, audit.Deny, "session_invalid", http.StatusNotFound)
	default:
		st.caps = sess.Caps
		st.owner = q.sid
		return true
	}
	writeRPCError(q.W, http.StatusNotFound, rid, codeInvalidRequest, "session not found; start a new session with initialize", nil)
	return false
}

// dispatchRequest serves the request: a cancellation, one of the gateway's
// own methods (rawHandlers), a client's answer to a request relayed from an
// upstream, or — for everything else of the protocol — mcp-go, with the
// body restored (an event stream capped per session and per subject).
func (g *Gateway) dispatchRequest(q *Request) bool {
	st, env := q.st, q.Env
	if env.Method == "notifications/cancelled" {
		g.cancelled(q.W, st, st.owner, env.Params)
		return false
	}
	if g.dispatchRaw(q) {
		return false
	}
	if env.Method == "" && len(env.ID) > 0 && g.clientAnswers.deliver(st.owner, env.ID, q.body) {
		g.audit(st, audit.Allow, "client_answer", http.StatusAccepted)
		q.W.WriteHeader(http.StatusAccepted)
		return false
	}
	ctx := q.Ctx
	if env.Method == "initialize" {
		ctx = context.WithValue(ctx, capsKey{}, declaredCaps(env.Params))
	}
	if q.HTTP.Method == http.MethodGet {
		sid, subject := q.sid, q.Identity.Subject
		if full := g.streams.enter(sid, subject); full != "" {
			g.refuseStream(q.W, st, full)
			return false
		}
		q.onDone(func() { g.streams.leave(sid, subject) })
	}
	g.audit(st, audit.Allow, "allowed", 0)
	r := q.HTTP.WithContext(ctx)
	if r.Method == http.MethodPost {
		r.Body = io.NopCloser(bytes.NewReader(q.body))
		r.ContentLength = int64(len(q.body))
	}
	g.streamable.ServeHTTP(q.W, r)
	return true
}
