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
	"github.com/gatewaystack/gatewaystack/internal/jsonscan"
)

// JSON-RPC error codes the gateway answers with.
const (
	codeParseError     = -32700
	codeInvalidRequest = -32600
	codeInvalidParams  = -32602
	codeInternalError  = -32603
	// codeForbidden accompanies the HTTP 403 step-up challenge.
	codeForbidden = -32001
	// codeHeaderMismatch: a 2026-07-28 Mcp-* header disagrees with the body.
	codeHeaderMismatch = mcpgo.HEADER_MISMATCH
)

func identityFrom(ctx context.Context) (auth.Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(auth.Identity)
	return id, ok
}

// envelope is a JSON-RPC message with params kept raw.
type envelope struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

// envelopeKeys are the members of a JSON-RPC message envelope reads.
var envelopeKeys = []string{"jsonrpc", "id", "method", "params"}

// decodeEnvelope is the fast path of json.Unmarshal(body, env) for the
// common message: valid JSON, an object whose members are named once each,
// in their exact case, with string (or null) jsonrpc and method. id and
// params are the body's own bytes. ok false leaves the message to
// encoding/json, which decides (and reports) the rest.
func decodeEnvelope(body []byte, env *envelope) bool {
	var buf [8]jsonscan.Member
	members, ok := jsonscan.Plain(body, buf[:0], envelopeKeys)
	if !ok {
		return false
	}
	var e envelope
	for _, m := range members {
		var str *string
		switch m.Key {
		case "id":
			e.ID = m.Value
		case "params":
			e.Params = m.Value
		case "jsonrpc":
			str = &e.JSONRPC
		case "method":
			str = &e.Method
		}
		if str != nil && string(m.Value) != "null" {
			if *str, ok = jsonscan.String(m.Value); !ok {
				return false
			}
		}
	}
	*env = e
	return true
}

// serveMCP runs the pipeline for one request to the MCP endpoint.
func (g *Gateway) serveMCP(w http.ResponseWriter, r *http.Request) {
	st := &requestState{start: time.Now()}
	st.event.RequestID = newRequestID()
	w.Header().Set("X-Request-Id", st.event.RequestID)
	st.event.Method = r.Method

	switch r.Method {
	case http.MethodPost, http.MethodGet, http.MethodDelete:
	default:
		w.Header().Set("Allow", "GET, POST, DELETE, OPTIONS")
		g.audit(st, audit.Deny, "method_not_allowed", http.StatusMethodNotAllowed)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method_not_allowed",
			"error_description": "use POST for JSON-RPC messages, GET for the event stream, DELETE to end a session"})
		return
	}

	// Until the body is read, any answer closes the connection: net/http
	// would otherwise wait for the unread rest of the body (a slow sender
	// holds it) before answering, to keep the connection alive.
	if r.Method == http.MethodPost && r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
	}

	// Per-IP flood limit, before any token is verified (limits.go).
	ip := g.o.Limits.clientIP(r)
	if g.ipRefused(w, r, st, ip) {
		return
	}

	// A body declared too large is refused from its headers, before
	// anything else (one chunked without a length is bounded as it is read).
	if r.Method == http.MethodPost && r.ContentLength > g.o.MaxBodyBytes {
		g.audit(st, audit.Deny, "body_too_large", http.StatusRequestEntityTooLarge)
		writeRPCError(w, http.StatusRequestEntityTooLarge, nil, codeInvalidRequest,
			"the request body exceeds "+strconv.FormatInt(g.o.MaxBodyBytes, 10)+" bytes", nil)
		return
	}

	// Identify, from the headers alone: no body is read for a caller
	// without valid credentials, and the time spent verifying (a JWKS
	// refetch may wait) is capped in total and per client IP.
	ipKey := ip.String()
	if !g.caps.enterPreauth(ipKey) {
		g.refuseOverloaded(w, st)
		return
	}
	token, aerr := auth.BearerToken(r)
	var id auth.Identity
	if aerr == nil {
		var err error
		if id, err = g.o.Verifier.Verify(r.Context(), token); err != nil {
			if !errors.As(err, &aerr) {
				aerr = &auth.Error{Status: http.StatusUnauthorized, Code: auth.CodeInvalidToken, Reason: auth.ReasonSignatureInvalid, Description: "the token could not be verified"}
			}
		}
	}
	g.caps.leavePreauth(ipKey)
	if aerr != nil {
		g.chargeIP(r.Context(), ip)
		g.audit(st, audit.Deny, aerr.Reason, aerr.Status)
		g.writeAuthError(w, aerr)
		return
	}
	st.event.Subject, st.event.Tenant, st.event.ClientID, st.event.TokenID = id.Subject, id.Tenant, id.ClientID, id.TokenID
	ctx := context.WithValue(r.Context(), identityKey{}, id)

	// The replica's and the subject's caps on requests in progress (event
	// streams, which last, are not counted), taken only once the caller
	// is known.
	if r.Method != http.MethodGet {
		if !g.caps.enter() {
			g.refuseOverloaded(w, st)
			return
		}
		defer g.caps.leave()
		if !g.caps.enterSubject(id.Subject) {
			g.refuseTooManyConcurrent(w, st, nil)
			return
		}
		defer g.caps.leaveSubject(id.Subject)
	}

	// Body limit: read, bounded in size and time (server.read_timeout; a
	// body slower than that counts against the per-IP limit like a failed
	// credential).
	var body []byte
	if r.Method == http.MethodPost {
		var err error
		rc := http.NewResponseController(w)
		if g.o.ReadTimeout > 0 {
			_ = rc.SetReadDeadline(time.Now().Add(g.o.ReadTimeout))
		}
		body, err = io.ReadAll(io.LimitReader(r.Body, g.o.MaxBodyBytes+1))
		if g.o.ReadTimeout > 0 {
			_ = rc.SetReadDeadline(time.Time{})
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				g.chargeIP(r.Context(), ip)
				g.audit(st, audit.Deny, "body_timeout", http.StatusRequestTimeout)
				writeRPCError(w, http.StatusRequestTimeout, nil, codeParseError,
					"the request body did not arrive within server.read_timeout", nil)
				return
			}
			g.audit(st, audit.Deny, "body_unreadable", http.StatusBadRequest)
			writeRPCError(w, http.StatusBadRequest, nil, codeParseError, "the request body could not be read", nil)
			return
		}
		if int64(len(body)) <= g.o.MaxBodyBytes {
			w.Header().Del("Connection") // read whole: the connection can be kept
		}
		if int64(len(body)) > g.o.MaxBodyBytes {
			g.audit(st, audit.Deny, "body_too_large", http.StatusRequestEntityTooLarge)
			writeRPCError(w, http.StatusRequestEntityTooLarge, nil, codeInvalidRequest,
				"the request body exceeds "+strconv.FormatInt(g.o.MaxBodyBytes, 10)+" bytes", nil)
			return
		}
	}

	// Parse the JSON-RPC envelope (POST only).
	var env envelope
	if r.Method == http.MethodPost {
		if !utf8.Valid(body) {
			// RFC 8259: JSON text is UTF-8. encoding/json would replace the
			// bad bytes, so the gateway and an upstream could read
			// different strings; and an id echoed back would not be JSON.
			g.audit(st, audit.Deny, "body_not_utf8", http.StatusBadRequest)
			writeRPCError(w, http.StatusBadRequest, nil, codeParseError, "the request body is not valid UTF-8 (JSON text must be UTF-8)", nil)
			return
		}
		trimmed := bytes.TrimLeft(body, " \t\r\n")
		if len(trimmed) > 0 && trimmed[0] == '[' {
			g.audit(st, audit.Deny, "batch_not_supported", http.StatusBadRequest)
			writeRPCError(w, http.StatusBadRequest, nil, codeInvalidRequest, "JSON-RPC batches are not supported; send one message per request", nil)
			return
		}
		if !decodeEnvelope(body, &env) {
			if err := json.Unmarshal(body, &env); err != nil {
				g.audit(st, audit.Deny, "body_malformed", http.StatusBadRequest)
				writeRPCError(w, http.StatusBadRequest, nil, codeParseError, "the request body is not a JSON-RPC message", nil)
				return
			}
		}
		if err := checkUnambiguous(body); err != nil {
			g.audit(st, audit.Deny, "body_ambiguous", http.StatusBadRequest)
			msg := "the request body is not a JSON-RPC message"
			if errors.Is(err, errAmbiguousMessage) {
				msg = err.Error() + "; send each key once, in its exact case"
			}
			writeRPCError(w, http.StatusBadRequest, nil, codeInvalidRequest, msg, nil)
			return
		}
		if env.Method != "" {
			st.event.Method = env.Method
		}
	}

	// Per-subject and per-tenant limits, on every request.
	if g.requestLimited(ctx, w, st, rawID(env.ID), id) {
		return
	}

	// Session guard: a session belongs to the subject that created it, on
	// every verb. The 2026-07-28 era has no sessions.
	modern := isModern(r, env.Params)
	st.modern = modern
	sid := r.Header.Get(mcpgo.HeaderSessionID)
	if !modern && sid != "" {
		st.event.SessionID = sid
		sess, err := g.o.Sessions.Open(ctx, sid)
		if errors.Is(err, ErrSessionStore) {
			g.limitUnavailable(w, st, rawID(env.ID), "limits.store", err)
			return
		}
		if err == nil && sess.Subject != id.Subject {
			err = ErrSessionInvalid
			g.audit(st, audit.Deny, "session_subject_mismatch", http.StatusNotFound)
		} else if err != nil {
			g.audit(st, audit.Deny, "session_invalid", http.StatusNotFound)
		}
		if err != nil {
			writeRPCError(w, http.StatusNotFound, rawID(env.ID), codeInvalidRequest, "session not found; start a new session with initialize", nil)
			return
		}
		st.caps = sess.Caps
	}
	if !modern && sid == "" && (r.Method == http.MethodDelete || isRawMethod(env.Method)) {
		g.audit(st, audit.Deny, "session_missing", http.StatusBadRequest)
		writeRPCError(w, http.StatusBadRequest, rawID(env.ID), codeInvalidRequest, "Mcp-Session-Id header is required; send initialize first", nil)
		return
	}

	st.owner = "sub:" + id.Subject
	if !modern && sid != "" {
		st.owner = sid
	}
	if env.Method == "notifications/cancelled" {
		g.cancelled(w, st, st.owner, env.Params)
		return
	}
	if g.dispatchRaw(&Request{Ctx: ctx, W: w, HTTP: r, Env: env, Identity: id, Modern: modern, st: st}) {
		return
	}

	// A client's answer to a request the gateway relayed from an upstream.
	if env.Method == "" && len(env.ID) > 0 && g.clientAnswers.deliver(st.owner, env.ID, body) {
		g.audit(st, audit.Allow, "client_answer", http.StatusAccepted)
		w.WriteHeader(http.StatusAccepted)
		return
	}

	// Everything else: mcp-go, with the body restored.
	if env.Method == "initialize" {
		ctx = context.WithValue(ctx, capsKey{}, declaredCaps(env.Params))
	}
	if r.Method == http.MethodGet {
		// An event stream: capped per session and per subject.
		if full := g.streams.enter(sid, id.Subject); full != "" {
			g.refuseStream(w, st, full)
			return
		}
		defer g.streams.leave(sid, id.Subject)
	}
	g.audit(st, audit.Allow, "allowed", 0)
	r = r.WithContext(ctx)
	if r.Method == http.MethodPost {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	g.streamable.ServeHTTP(w, r)
}

// isModern reports whether a request uses the stateless 2026-07-28 era.
func isModern(r *http.Request, params json.RawMessage) bool {
	if mcpgo.IsModernProtocol(r.Header.Get(mcpgo.HeaderProtocolVersion)) {
		return true
	}
	return mcpgo.IsModernProtocol(metaVersion(params))
}

// metaVersion reads params._meta["io.modelcontextprotocol/protocolVersion"].
func metaVersion(params json.RawMessage) string {
	if len(params) == 0 || !bytes.Contains(params, []byte(mcpgo.MetaKeyProtocolVersion)) {
		return ""
	}
	var p struct {
		Meta map[string]json.RawMessage `json:"_meta"`
	}
	if json.Unmarshal(params, &p) != nil {
		return ""
	}
	var v string
	_ = json.Unmarshal(p.Meta[mcpgo.MetaKeyProtocolVersion], &v)
	return v
}

// checkModernHeaders enforces the 2026-07-28 rule that the protocol version,
// Mcp-Method and Mcp-Name headers match the body, before anything is decided
// on them.
func checkModernHeaders(r *http.Request, method, name string, params json.RawMessage) string {
	hv := r.Header.Get(mcpgo.HeaderProtocolVersion)
	mv := metaVersion(params)
	switch {
	case hv == "":
		return mcpgo.HeaderProtocolVersion + " header is required"
	case mv == "":
		return "missing _meta " + mcpgo.MetaKeyProtocolVersion
	case hv != mv:
		return mcpgo.HeaderProtocolVersion + " header does not match _meta " + mcpgo.MetaKeyProtocolVersion
	case r.Header.Get(mcpgo.HeaderMethod) != method:
		return mcpgo.HeaderMethod + " header does not match the request method"
	case name != "" && !headerValueIs(r.Header.Get(mcpgo.HeaderName), name):
		return mcpgo.HeaderName + " header does not match params.name"
	}
	return ""
}

// headerValueIs compares a 2026-07-28 header value, which clients send in
// the =?base64?...?= form when the value is not a plain header token, with
// the body's value.
func headerValueIs(header, want string) bool {
	if header == want {
		return true
	}
	decoded, ok := mcpgo.DecodeHeaderValue(header)
	return ok && decoded == want
}

// writeAuthError renders an identify-stage failure: status, challenge and a
// JSON body with the reason.
func (g *Gateway) writeAuthError(w http.ResponseWriter, e *auth.Error) {
	switch e.Status {
	case http.StatusUnauthorized:
		if e.Code == "" {
			w.Header().Set("WWW-Authenticate", g.challenge)
		} else {
			w.Header().Set("WWW-Authenticate", auth.Challenge{Error: e.Code, Description: e.Description,
				Scope: joinScopes(g.o.BaselineScopes), ResourceMetadata: g.prmURL}.String())
		}
	case http.StatusBadRequest:
		w.Header().Set("WWW-Authenticate", auth.Challenge{Error: e.Code, Description: e.Description,
			ResourceMetadata: g.prmURL}.String())
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "5")
	}
	code := e.Code
	if code == "" {
		code = "unauthorized"
		if e.Status == http.StatusServiceUnavailable {
			code = "temporarily_unavailable"
		}
	}
	writeJSON(w, e.Status, map[string]string{"error": code, "error_description": e.Description, "reason": e.Reason})
}

// rawID returns a JSON-RPC id fit to echo: a string or number, else null.
func rawID(id json.RawMessage) json.RawMessage {
	id = bytes.TrimSpace(id)
	if len(id) == 0 {
		return nil
	}
	switch c := id[0]; {
	case c == '"', c == '-', c >= '0' && c <= '9':
		return id
	}
	return nil
}

// writeJSON writes v as a JSON body with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{"error":"internal_error"}`)
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

type rpcErrorBody struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   rpcErrorDetail  `json:"error"`
}

type rpcErrorDetail struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

// writeRPCError writes a JSON-RPC error response.
func writeRPCError(w http.ResponseWriter, status int, id json.RawMessage, code int, msg string, data any) {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	writeJSON(w, status, rpcErrorBody{JSONRPC: "2.0", ID: id, Error: rpcErrorDetail{Code: code, Message: msg, Data: data}})
}

// writeRPCResult writes a JSON-RPC result response around a raw result.
func writeRPCResult(w http.ResponseWriter, id json.RawMessage, result json.RawMessage) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(rpcResultBytes(id, result))
}

// rpcResultBytes is a JSON-RPC result message around a raw result.
func rpcResultBytes(id json.RawMessage, result json.RawMessage) []byte {
	var b bytes.Buffer
	b.Grow(len(result) + len(id) + 40)
	b.WriteString(`{"jsonrpc":"2.0","id":`)
	b.Write(id)
	b.WriteString(`,"result":`)
	b.Write(result)
	b.WriteString("}\n")
	return b.Bytes()
}
