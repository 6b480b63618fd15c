package mcp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sync"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/gatewaystack/gatewaystack/upstream"
)

// Notifications from upstreams reach clients this way:
//   - list changes (tools, prompts, resources) are broadcast to every
//     connected client (the router has already invalidated its catalog);
//   - progress is delivered only to the request that asked for it: the
//     client's progressToken is replaced by a gateway-unique token before the
//     request goes upstream, and mapped back on the way in;
//   - resource updates go to the sessions that subscribed to that URI;
//   - anything else an upstream sends on a call's own response stream (log
//     messages, …) goes to that call's client, on that call's stream
//     (callNotifications) — log messages at or above the client's level; on
//     the listening stream it is not forwarded, because it cannot be
//     attributed to one caller.

// progressRouter maps gateway progress tokens to the requests waiting for
// them.
type progressRouter struct {
	mu      sync.Mutex
	waiting map[string]progressWaiter
}

type progressWaiter struct {
	original json.RawMessage // the client's token
	ch       chan json.RawMessage
}

// register maps a fresh gateway token to the client's progress token
// original (its raw JSON) and returns the token, to be sent upstream in its
// place, and a channel of the call's progress notifications (with the
// client's token restored).
func (p *progressRouter) register(original json.RawMessage) (string, <-chan json.RawMessage) {
	var b [12]byte
	_, _ = rand.Read(b[:])
	token := "gs-" + hex.EncodeToString(b[:])
	ch := make(chan json.RawMessage, 64)
	p.mu.Lock()
	if p.waiting == nil {
		p.waiting = map[string]progressWaiter{}
	}
	p.waiting[token] = progressWaiter{original: original, ch: ch}
	p.mu.Unlock()
	return token, ch
}

// done forgets token.
func (p *progressRouter) done(token string) {
	p.mu.Lock()
	delete(p.waiting, token)
	p.mu.Unlock()
}

// deliver routes a notifications/progress to its waiting request; progress
// for unknown tokens (late, or forged by an upstream) is dropped.
func (p *progressRouter) deliver(params json.RawMessage) {
	if token, body, ok := p.restore(params); ok {
		p.send(token, body)
	}
}

// send queues a restored notification (restore) for the request waiting
// for token.
func (p *progressRouter) send(token string, body []byte) {
	p.mu.Lock()
	w, ok := p.waiting[token]
	p.mu.Unlock()
	if !ok {
		return
	}
	select {
	case w.ch <- body:
	default: // progress is advisory; a slow reader loses some
	}
}

// restore returns the gateway token of a notifications/progress and the
// notification to send to the client that is waiting for it, under the
// client's own token; ok is false for tokens nobody waits for.
func (p *progressRouter) restore(params json.RawMessage) (token string, body []byte, ok bool) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(params, &obj) != nil {
		return "", nil, false
	}
	if json.Unmarshal(obj["progressToken"], &token) != nil {
		return "", nil, false
	}
	p.mu.Lock()
	w, ok := p.waiting[token]
	p.mu.Unlock()
	if !ok {
		return "", nil, false
	}
	obj["progressToken"] = w.original
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": "notifications/progress", "params": obj})
	if err != nil {
		return "", nil, false
	}
	return token, body, true
}

// defaultLogLevel is the least level of the upstream log messages a
// session-era client gets before it sets one with logging/setLevel (the
// protocol lets the server decide; upstreams are asked for everything).
const defaultLogLevel = mcpgo.LoggingLevelInfo

// maxLogLevels bounds how many sessions' log levels are kept.
const maxLogLevels = 1 << 16

// logLevels holds the log level each session-era client set with
// logging/setLevel, on this replica (like every per-session setting mcp-go
// keeps); a session DELETE forgets it.
type logLevels struct {
	mu     sync.Mutex
	levels map[string]mcpgo.LoggingLevel
}

func (l *logLevels) set(session string, level mcpgo.LoggingLevel) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.levels == nil {
		l.levels = map[string]mcpgo.LoggingLevel{}
	}
	if _, ok := l.levels[session]; !ok && len(l.levels) >= maxLogLevels {
		return // full: this session keeps the default
	}
	l.levels[session] = level
}

func (l *logLevels) forget(session string) {
	l.mu.Lock()
	delete(l.levels, session)
	l.mu.Unlock()
}

// get returns the level session set, or defaultLogLevel.
func (l *logLevels) get(session string) mcpgo.LoggingLevel {
	l.mu.Lock()
	defer l.mu.Unlock()
	if level, ok := l.levels[session]; ok {
		return level
	}
	return defaultLogLevel
}

// subscriptions tracks which sessions subscribed to which resource URIs.
type subscriptions struct {
	mu   sync.Mutex
	subs map[string]map[string]struct{} // uri -> session ids
}

func (s *subscriptions) add(uri, session string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.subs == nil {
		s.subs = map[string]map[string]struct{}{}
	}
	if s.subs[uri] == nil {
		s.subs[uri] = map[string]struct{}{}
	}
	s.subs[uri][session] = struct{}{}
}

func (s *subscriptions) remove(uri, session string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.subs[uri], session)
	if len(s.subs[uri]) == 0 {
		delete(s.subs, uri)
	}
}

func (s *subscriptions) sessions(uri string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.subs[uri]))
	for id := range s.subs[uri] {
		out = append(out, id)
	}
	return out
}

// onUpstreamNotification is the router's notification handler.
func (g *Gateway) onUpstreamNotification(n upstream.Notification) {
	switch n.Method {
	case "notifications/tools/list_changed", "notifications/prompts/list_changed", "notifications/resources/list_changed":
		g.mcpServer.SendNotificationToAllClients(n.Method, nil)
	case "notifications/progress":
		g.progress.deliver(n.Params)
	case "notifications/resources/updated":
		var p map[string]any
		if json.Unmarshal(n.Params, &p) != nil {
			return
		}
		uri, _ := p["uri"].(string)
		for _, sid := range g.subs.sessions(uri) {
			_ = g.mcpServer.SendNotificationToSpecificClient(sid, n.Method, p)
		}
	default:
		g.o.Logger.Debug().Str("upstream", n.Upstream).Str("method", n.Method).Msg("upstream notification not forwarded")
	}
}

// inflight maps a client's request (session or subject, and its JSON-RPC
// id) to the cancel function of its upstream call, so that a client's
// notifications/cancelled stops the call (and the upstream is told).
type inflight struct {
	mu      sync.Mutex
	cancels map[string]context.CancelFunc
}

func (f *inflight) add(key string, cancel context.CancelFunc) {
	f.mu.Lock()
	if f.cancels == nil {
		f.cancels = map[string]context.CancelFunc{}
	}
	f.cancels[key] = cancel
	f.mu.Unlock()
}

func (f *inflight) remove(key string) {
	f.mu.Lock()
	delete(f.cancels, key)
	f.mu.Unlock()
}

func (f *inflight) cancel(key string) bool {
	f.mu.Lock()
	c, ok := f.cancels[key]
	delete(f.cancels, key)
	f.mu.Unlock()
	if ok {
		c()
	}
	return ok
}

// inflightKey names a client's request: the session (or, without one, the
// subject) and the request id as sent.
func inflightKey(sessionOrSubject string, id json.RawMessage) string {
	return sessionOrSubject + "\x00" + string(bytes.TrimSpace(id))
}

// cancelled handles a client's notifications/cancelled: the named request's
// upstream call is cancelled, which also tells the upstream.
func (g *Gateway) cancelled(w http.ResponseWriter, st *requestState, owner string, params json.RawMessage) {
	var p struct {
		RequestID json.RawMessage `json:"requestId"`
	}
	if json.Unmarshal(params, &p) == nil && len(p.RequestID) > 0 {
		if g.inflight.cancel(inflightKey(owner, p.RequestID)) {
			g.audit(st, "allow", "cancelled", http.StatusAccepted)
		}
	}
	w.WriteHeader(http.StatusAccepted)
}

// sseWriter turns a response into an event stream on first use. Its
// methods may be called from several goroutines; after last or finish it
// writes nothing more.
type sseWriter struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	started bool
	closed  bool
}

// send writes msg as one event, starting the stream on first use.
func (s *sseWriter) send(msg []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.event(msg)
}

func (s *sseWriter) event(msg []byte) {
	if !s.started {
		s.started = true
		h := s.w.Header()
		h["Content-Type"] = []string{"text/event-stream"}
		h["Cache-Control"] = []string{"no-cache"}
		s.w.WriteHeader(http.StatusOK)
	}
	_, _ = s.w.Write([]byte("event: message\ndata: "))
	_, _ = s.w.Write(msg)
	_, _ = s.w.Write([]byte("\n\n"))
	_ = http.NewResponseController(s.w).Flush()
}

// last writes the final message: the last event of a stream that started,
// else a plain JSON response. Nothing is written after it.
func (s *sseWriter) last(msg []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if s.started {
		s.event(msg)
		return
	}
	s.w.Header()["Content-Type"] = []string{"application/json"}
	s.w.WriteHeader(http.StatusOK)
	_, _ = s.w.Write(msg)
}

// finish stops every later write (the handler is returning).
func (s *sseWriter) finish() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}
