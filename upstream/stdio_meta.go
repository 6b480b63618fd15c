package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"

	"github.com/rs/zerolog"
)

// IdentityMetaKey is the params._meta key that carries the verified identity
// to stdio upstreams (which have no headers):
//
//	"_meta": {"io.gatewaystack/identity": {"sub": "alice", "tenant": "acme",
//	          "scopes": ["tool:read"], "client_id": "cli-123"}}
//
// Empty fields are left out. The gateway sets it on every request it
// forwards and removes any copy the caller sent, so an upstream can trust it.
const IdentityMetaKey = "io.gatewaystack/identity"

// errParamsNotObject: params that cannot carry _meta.
var errParamsNotObject = errors.New("params must be a JSON object")

// IdentityMeta is the value of IdentityMetaKey.
type IdentityMeta struct {
	Sub      string   `json:"sub,omitempty"`
	Tenant   string   `json:"tenant,omitempty"`
	Scopes   []string `json:"scopes,omitempty"`
	ClientID string   `json:"client_id,omitempty"`
}

// stdioParams returns params for a stdio upstream: the 2026-07-28
// per-request _meta keys removed (see legacyParams), any caller-sent identity
// removed, and the verified identity of ctx set. Keys that equal "_meta" or
// IdentityMetaKey up to letter case are removed too: Go's JSON decoder
// matches struct fields case-insensitively, so such a key could otherwise
// stand in for the real one in an upstream written in Go. Every other field
// is kept as sent. Empty params without an identity stay empty.
func stdioParams(ctx context.Context, params json.RawMessage) (json.RawMessage, error) {
	id, _, hasID := IdentityFrom(ctx)
	trimmed := bytes.TrimSpace(params)
	empty := len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null"))
	var obj map[string]json.RawMessage
	if !empty {
		if err := json.Unmarshal(params, &obj); err != nil || obj == nil {
			return nil, errParamsNotObject
		}
	}
	var meta map[string]json.RawMessage
	if raw, ok := obj["_meta"]; ok && !bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		if err := json.Unmarshal(raw, &meta); err != nil {
			return nil, errors.New("params._meta must be a JSON object")
		}
	}
	for k := range obj {
		if k != "_meta" && strings.EqualFold(k, "_meta") {
			delete(obj, k)
		}
	}
	for k := range meta {
		if strings.EqualFold(k, IdentityMetaKey) {
			delete(meta, k)
		}
	}
	for _, k := range eraMetaKeys {
		delete(meta, k)
	}
	if hasID {
		m := IdentityMeta{Sub: id.Subject, Tenant: id.Tenant, Scopes: id.Scopes, ClientID: id.ClientID}
		if m.Sub != "" || m.Tenant != "" || len(m.Scopes) > 0 || m.ClientID != "" {
			b, err := json.Marshal(m)
			if err != nil {
				return nil, err
			}
			if meta == nil {
				meta = make(map[string]json.RawMessage, 1)
			}
			meta[IdentityMetaKey] = b
		}
	}
	if obj == nil {
		if len(meta) == 0 {
			return nil, nil
		}
		obj = make(map[string]json.RawMessage, 1)
	}
	if len(meta) == 0 {
		delete(obj, "_meta")
	} else {
		b, err := json.Marshal(meta)
		if err != nil {
			return nil, err
		}
		obj["_meta"] = b
	}
	return json.Marshal(obj)
}

// maxStderrLine bounds one logged stderr line; the rest of a longer line is
// dropped (and counted).
const maxStderrLine = 4096

// stderrLog logs a child's stderr line by line, with the upstream's name
// (carried by log).
type stderrLog struct {
	log     zerolog.Logger
	mu      sync.Mutex
	buf     []byte
	dropped int
}

func (w *stderrLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if room := maxStderrLine - len(w.buf); len(chunk) > room {
			w.buf = append(w.buf, chunk[:room]...)
			w.dropped += len(chunk) - room
		} else {
			w.buf = append(w.buf, chunk...)
		}
		if i < 0 {
			break
		}
		w.emitLocked()
		p = p[i+1:]
	}
	return n, nil
}

// flush logs a last line that did not end in a newline.
func (w *stderrLog) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 || w.dropped > 0 {
		w.emitLocked()
	}
}

func (w *stderrLog) emitLocked() {
	ev := w.log.Info().Str("stream", "stderr").Str("line", string(bytes.TrimRight(w.buf, "\r")))
	if w.dropped > 0 {
		ev = ev.Int("truncated_bytes", w.dropped)
	}
	ev.Msg("stdio upstream stderr")
	w.buf, w.dropped = w.buf[:0], 0
}
