package mcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/gatewaystack/gatewaystack/auth"
	"github.com/gatewaystack/gatewaystack/internal/bounded"
	"github.com/gatewaystack/gatewaystack/internal/jsonscan"
	"github.com/gatewaystack/gatewaystack/internal/resourceuri"
	"github.com/gatewaystack/gatewaystack/upstream"
)

// The invariant of every forwarded request:
//
//	The message forwarded upstream is byte-for-byte derived from the parsed
//	form the decision saw.
//
// It holds by construction. A request that goes upstream is parsed once,
// by parseCanonical, into a canonicalParams: no two member names equal under
// case folding anywhere in params (so every decoder reads one meaning), the
// resource URI in RFC 3986 normal form (or refused), every value compacted,
// the reserved _meta namespace (io.gatewaystack/) removed. The policy
// decision reads only that value (Name, Field), and the bytes sent upstream
// are produced from it by encode — nothing else of the caller's message is
// consulted after the decision. The stages run in one fixed order:
//
//	canonicalize → decide → transform → forward
//
// where transform may only set what the gateway owns: the upstream's own
// name for the exposed one, the verified identity in _meta, the gateway's
// progress token. A when-condition sees the values as sent (after
// canonicalization); a later redaction stage is the only permitted change
// to them after the decision.

// Reserved _meta keys.
const (
	// reservedMetaPrefix is the _meta namespace the gateway owns: removed
	// (in any letter case) from every client message, set by the gateway.
	reservedMetaPrefix = "io.gatewaystack/"
	// WorkflowMetaKey is the one reserved key a client may set: the id of
	// the agent task a call belongs to (1–128 characters of letters, digits
	// and "._~:-").
	WorkflowMetaKey = "io.gatewaystack/workflow"
	// maxWorkflowID bounds a workflow id.
	maxWorkflowID = 128
)

// canonicalParams is the one parsed form of the params of a forwarded
// request (tools/call, prompts/get, resources/*, completion/complete).
type canonicalParams struct {
	// key is the identifying member ("name", "uri"; "" for completion).
	key string
	// Name is its value: the exposed tool or prompt name, or the resource
	// URI in normal form.
	Name string
	// members are the other members as sent, compacted, in order; _meta
	// is not among them.
	members []jsonscan.Member
	// meta are the members of _meta without the reserved namespace.
	meta []jsonscan.Member
	// hasMeta: the caller sent a _meta object (possibly emptied).
	hasMeta bool
	// Workflow is the validated io.gatewaystack/workflow id ("" if none).
	Workflow string
}

// paramsError is a refusal of params: the JSON-RPC -32602 message.
type paramsError struct{ msg string }

func (e *paramsError) Error() string { return e.msg }

// parseCanonical parses params of a forwarded request identified by key
// ("name", "uri", or "" for none) into its canonical form, or refuses them
// with a *paramsError that says what to change.
func parseCanonical(raw json.RawMessage, key string) (*canonicalParams, error) {
	if err := jsonscan.CheckNames(raw, "params"); err != nil {
		if errors.Is(err, jsonscan.ErrAmbiguousKey) {
			return nil, &paramsError{msg: err.Error()}
		}
		return nil, &paramsError{msg: "params must be a JSON object"}
	}
	var members []jsonscan.Member
	name := ""
	if key != "" {
		p, err := upstream.ParseParams(raw, key)
		if err != nil {
			return nil, err
		}
		name = p.Name
		members = p.Members()
	} else {
		var ok bool
		if members, ok = jsonscan.Object(raw, nil); !ok {
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
				return nil, &paramsError{msg: "params must be a JSON object"}
			}
			members = members[:0]
			for k, v := range fields {
				members = append(members, jsonscan.Member{Key: k, Value: v})
			}
		}
	}
	c := &canonicalParams{key: key, Name: name}
	if key == "uri" {
		norm, err := resourceuri.Check(name)
		if err != nil {
			return nil, &paramsError{msg: err.Error()}
		}
		c.Name = norm
	}
	c.members = make([]jsonscan.Member, 0, len(members))
	for _, m := range members {
		if m.Key == key {
			continue
		}
		v, err := compact(m.Value)
		if err != nil {
			return nil, &paramsError{msg: fmt.Sprintf("params.%s is not valid JSON", bounded.String(m.Key))}
		}
		if m.Key == "_meta" {
			if err := c.setMeta(v); err != nil {
				return nil, err
			}
			continue
		}
		c.members = append(c.members, jsonscan.Member{Key: m.Key, Value: v})
	}
	return c, nil
}

// setMeta keeps the members of the caller's _meta object outside the
// reserved namespace, and validates the workflow id.
func (c *canonicalParams) setMeta(v []byte) error {
	if string(v) == "null" {
		return nil
	}
	members, ok := jsonscan.Object(v, nil)
	if !ok {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(v, &fields); err != nil || fields == nil {
			return &paramsError{msg: "params._meta must be a JSON object"}
		}
		for k, val := range fields {
			members = append(members, jsonscan.Member{Key: k, Value: val})
		}
	}
	c.hasMeta = true
	for _, m := range members {
		if !reservedMetaKey(m.Key) {
			c.meta = append(c.meta, m)
			continue
		}
		if m.Key != WorkflowMetaKey {
			continue // the gateway's own keys: never taken from a client
		}
		id, ok := jsonscan.String(m.Value)
		if !ok || !validWorkflowID(id) {
			return &paramsError{msg: `params._meta["` + WorkflowMetaKey + `"] must be a string of 1 to 128 letters, digits or "._~:-"`}
		}
		c.Workflow = id
		c.meta = append(c.meta, m)
	}
	return nil
}

// reservedMetaKey reports whether k is in the gateway's _meta namespace, in
// any letter case.
func reservedMetaKey(k string) bool {
	return len(k) >= len(reservedMetaPrefix) && strings.EqualFold(k[:len(reservedMetaPrefix)], reservedMetaPrefix)
}

// validWorkflowID reports whether id is a workflow id a client may send.
func validWorkflowID(id string) bool {
	if id == "" || len(id) > maxWorkflowID {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.', c == '_', c == '~', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// Field returns the canonical value of the member named key (nil when
// absent): what the decision reads and what is forwarded.
func (c *canonicalParams) Field(key string) json.RawMessage {
	return jsonscan.Get(c.members, key)
}

// metaField returns the value of the caller's _meta member named key.
func (c *canonicalParams) metaField(key string) json.RawMessage {
	return jsonscan.Get(c.meta, key)
}

// set replaces the value of the member named key (the gateway's own
// rewrites: a completion's prompt reference).
func (c *canonicalParams) set(key string, v json.RawMessage) {
	for i := range c.members {
		if c.members[i].Key == key {
			c.members[i].Value = v
			return
		}
	}
	c.members = append(c.members, jsonscan.Member{Key: key, Value: v})
}

// forwarded is what the transform stage adds to the canonical params.
type forwarded struct {
	// original is the identifying value the upstream knows (its own tool
	// or prompt name; the URI itself).
	original string
	// identity is the verified caller, set in _meta under
	// upstream.IdentityMetaKey.
	identity *auth.Identity
	// progressToken, when set, replaces the caller's _meta.progressToken.
	progressToken string
}

// encode produces the params sent upstream from the canonical form: the
// identifying key first (set to f.original), every other member as
// canonicalized, then _meta — the caller's keys outside the reserved
// namespace (without the 2026-07-28 per-request keys, which the upstream
// session already carries), the gateway's progress token and the verified
// identity.
func (c *canonicalParams) encode(f forwarded) (json.RawMessage, error) {
	size := len(f.original) + 64
	for _, m := range c.members {
		size += len(m.Key) + len(m.Value) + 4
	}
	for _, m := range c.meta {
		size += len(m.Key) + len(m.Value) + 4
	}
	out := make([]byte, 0, size)
	out = append(out, '{')
	first := true
	sep := func() {
		if !first {
			out = append(out, ',')
		}
		first = false
	}
	if c.key != "" {
		sep()
		out = jsonscan.AppendString(out, c.key)
		out = append(out, ':')
		out = jsonscan.AppendString(out, f.original)
	}
	for _, m := range c.members {
		sep()
		out = jsonscan.AppendString(out, m.Key)
		out = append(out, ':')
		out = append(out, m.Value...)
	}
	metaStart := len(out)
	sep()
	out = append(out, `"_meta":{`...)
	n := 0
	for _, m := range c.meta {
		if eraMetaKey(m.Key) {
			continue
		}
		if n > 0 {
			out = append(out, ',')
		}
		n++
		out = jsonscan.AppendString(out, m.Key)
		out = append(out, ':')
		if m.Key == "progressToken" && f.progressToken != "" {
			out = jsonscan.AppendString(out, f.progressToken)
			continue
		}
		out = append(out, m.Value...)
	}
	if f.identity != nil {
		b, err := json.Marshal(upstream.IdentityMeta{Sub: f.identity.Subject, Tenant: f.identity.Tenant,
			Scopes: f.identity.Scopes, ClientID: f.identity.ClientID})
		if err != nil {
			return nil, fmt.Errorf("encode identity: %w", err)
		}
		if n > 0 {
			out = append(out, ',')
		}
		n++
		out = jsonscan.AppendString(out, upstream.IdentityMetaKey)
		out = append(out, ':')
		out = append(out, b...)
	}
	if n == 0 && !c.hasMeta {
		out = out[:metaStart] // no _meta at all
		if first {
			return json.RawMessage("{}"), nil
		}
	} else {
		out = append(out, '}')
	}
	return append(out, '}'), nil
}

// eraMetaKey reports the 2026-07-28 per-request _meta keys, which a
// session-era upstream receives at initialize instead.
func eraMetaKey(k string) bool {
	return strings.HasPrefix(k, "io.modelcontextprotocol/") && upstream.EraMetaKey(k)
}

// compact returns v without insignificant space (v itself when it has
// none).
func compact(v []byte) ([]byte, error) {
	if !hasSpace(v) {
		return v, nil // the body as a whole is already known to be valid
	}
	var b bytes.Buffer
	b.Grow(len(v))
	if err := json.Compact(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// hasSpace reports whether v has a space, tab or line break outside
// strings.
func hasSpace(v []byte) bool {
	in := false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case in && c == '\\':
			i++
		case c == '"':
			in = !in
		case !in && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return true
		}
	}
	return false
}
