package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

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
				Scope: joinScopes(g.o.Endpoint.BaselineScopes), ResourceMetadata: g.prmURL}.String())
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
