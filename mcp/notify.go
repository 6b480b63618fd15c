package mcp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/gatewaystack/gatewaystack/audit"
	"github.com/gatewaystack/gatewaystack/auth"
	"github.com/gatewaystack/gatewaystack/policy"
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
// keeps); it is forgotten when the session ends (endSession).
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

// size is how many sessions' levels are kept.
func (l *logLevels) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.levels)
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

// maxSubscriptionsPerSession bounds the resource subscriptions one
// session holds.
const maxSubscriptionsPerSession = 1024

// errTooManySubscriptions: a session holds maxSubscriptionsPerSession
// subscriptions already.
var errTooManySubscriptions = errors.New("mcp: too many resource subscriptions in one session")

// subKey names one upstream subscription: the gateway holds one session per
// upstream, so each (upstream, URI) is subscribed there at most once, for
// every client session that subscribed to it.
type subKey struct{ upstream, uri string }

// subscribers are the client sessions subscribed to one (upstream, URI).
type subscribers struct {
	up     upstream.Upstream
	owners map[string]struct{}
}

// pendingUnsubscribe is an upstream subscription nobody holds any more,
// which the gateway ends with resources/unsubscribe.
type pendingUnsubscribe struct {
	up  upstream.Upstream
	uri string
}

// subscriptions tracks which client sessions subscribed to which resource
// URIs of which upstream, counting subscribers so that the shared upstream
// session is subscribed once, while anyone wants the updates: only the first
// subscriber's resources/subscribe goes upstream, and resources/unsubscribe
// goes upstream only when the last one leaves — by unsubscribing, or when
// its session ends (endSession).
type subscriptions struct {
	mu      sync.Mutex
	keys    map[subKey]*subscribers
	byOwner map[string]map[subKey]struct{}
}

// subscribe records owner (a session id) as subscribed to uri of up. first
// reports that nobody was before: the subscription must be forwarded to
// up; otherwise the upstream session is subscribed already and the client
// is answered with an empty result. An owner holding
// maxSubscriptionsPerSession subscriptions gets errTooManySubscriptions.
func (s *subscriptions) subscribe(up upstream.Upstream, uri, owner string) (first bool, err error) {
	return s.subscribeKey(subKey{up.Name(), uri}, up, owner)
}

func (s *subscriptions) subscribeKey(k subKey, up upstream.Upstream, owner string) (first bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys == nil {
		s.keys = map[subKey]*subscribers{}
		s.byOwner = map[string]map[subKey]struct{}{}
	}
	mine := s.byOwner[owner]
	if _, ok := mine[k]; ok {
		return false, nil
	}
	if len(mine) >= maxSubscriptionsPerSession {
		return false, errTooManySubscriptions
	}
	if mine == nil {
		mine = map[subKey]struct{}{}
		s.byOwner[owner] = mine
	}
	mine[k] = struct{}{}
	subs := s.keys[k]
	if subs == nil {
		subs = &subscribers{up: up, owners: map[string]struct{}{}}
		s.keys[k] = subs
	}
	first = len(subs.owners) == 0
	subs.owners[owner] = struct{}{}
	return first, nil
}

// unsubscribe forgets owner's subscription to uri of the upstream named
// upstreamName. last reports that owner held it and nobody else does: the
// unsubscribe must be forwarded upstream; otherwise the client is answered
// with an empty result and the upstream session stays subscribed for the
// others.
func (s *subscriptions) unsubscribe(upstreamName, uri, owner string) (last bool) {
	k := subKey{upstreamName, uri}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byOwner[owner][k]; !ok {
		return false
	}
	s.forgetLocked(k, owner)
	_, held := s.keys[k]
	return !held
}

// endSession forgets every subscription of owner, whose session ended, and
// returns the upstream subscriptions nobody holds any more, for the gateway
// to end.
func (s *subscriptions) endSession(owner string) []pendingUnsubscribe {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []pendingUnsubscribe
	for k := range s.byOwner[owner] {
		subs := s.keys[k]
		s.forgetLocked(k, owner)
		if _, held := s.keys[k]; !held && subs != nil && subs.up.Caller != nil {
			out = append(out, pendingUnsubscribe{up: subs.up, uri: k.uri})
		}
	}
	return out
}

// forgetLocked removes owner from k; s.mu is held.
func (s *subscriptions) forgetLocked(k subKey, owner string) {
	if mine := s.byOwner[owner]; mine != nil {
		delete(mine, k)
		if len(mine) == 0 {
			delete(s.byOwner, owner)
		}
	}
	if subs := s.keys[k]; subs != nil {
		delete(subs.owners, owner)
		if len(subs.owners) == 0 {
			delete(s.keys, k)
		}
	}
}

// held reports whether anyone is subscribed to uri of the upstream named
// upstreamName.
func (s *subscriptions) held(upstreamName, uri string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.keys[subKey{upstreamName, uri}]
	return ok
}

// sessions returns the sessions subscribed to uri of the upstream named
// upstreamName.
func (s *subscriptions) sessions(upstreamName, uri string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	subs := s.keys[subKey{upstreamName, uri}]
	if subs == nil {
		return nil
	}
	out := make([]string, 0, len(subs.owners))
	for id := range subs.owners {
		out = append(out, id)
	}
	return out
}

// size reports how many upstream subscriptions and subscribed sessions
// are held.
func (s *subscriptions) size() (keys, owners int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys), len(s.byOwner)
}

// reasonTooManySubscriptions: a session holds maxSubscriptionsPerSession
// subscriptions already.
const reasonTooManySubscriptions = "too_many_subscriptions"

// subscriptionCall answers resources/subscribe or resources/unsubscribe
// (method) for uri of up, once the caller may use it (decided): the
// upstream session, shared by every client, is subscribed while some client
// session is. Only the first subscriber's subscribe and the last one's
// unsubscribe are forwarded (from the canonical params c, as any request);
// the others are answered {} here. A subscribe the upstream refuses is
// forgotten again.
func (g *Gateway) subscriptionCall(ctx context.Context, w http.ResponseWriter, st *requestState, rid json.RawMessage, up upstream.Upstream, method string, c *canonicalParams, uri string) {
	st.event.Upstream = up.Name()
	forward := func() bool { return g.forward(ctx, w, st, rid, up, method, c, forwarded{original: uri}, false) }
	switch method {
	case "resources/subscribe":
		first, err := g.subs.subscribe(up, uri, st.owner)
		switch {
		case err != nil:
			g.audit(st, audit.Limited, reasonTooManySubscriptions, http.StatusTooManyRequests)
			g.writeRefusal(w, st, http.StatusTooManyRequests, rid, codeRateLimited,
				fmt.Sprintf("a session may hold at most %d resource subscriptions; unsubscribe from one first", maxSubscriptionsPerSession),
				map[string]any{"reason": reasonTooManySubscriptions, "limit": maxSubscriptionsPerSession})
		case !first:
			g.answerSubscription(w, st, rid)
		case !forward():
			g.subs.unsubscribe(up.Name(), uri, st.owner)
		}
	case "resources/unsubscribe":
		if !g.subs.unsubscribe(up.Name(), uri, st.owner) {
			g.answerSubscription(w, st, rid)
			return
		}
		forward()
	}
}

// answerSubscription answers a subscribe or unsubscribe the upstream
// session needs not see: the empty result the upstream would give.
func (g *Gateway) answerSubscription(w http.ResponseWriter, st *requestState, rid json.RawMessage) {
	g.audit(st, audit.Allow, policy.ReasonAllowed, http.StatusOK)
	writeRPCResult(w, rid, json.RawMessage(`{}`))
}

// unsubscribeTimeout bounds each resources/unsubscribe the gateway sends
// for a session that ended.
const unsubscribeTimeout = 10 * time.Second

// endUpstreamSubscriptions sends resources/unsubscribe for each upstream
// subscription nobody holds any more (its last subscriber's session ended),
// as the subject id of that session, unless someone subscribed again
// meanwhile.
func (g *Gateway) endUpstreamSubscriptions(id auth.Identity, pending []pendingUnsubscribe) {
	for _, p := range pending {
		if g.subs.held(p.up.Name(), p.uri) {
			continue
		}
		params, err := json.Marshal(map[string]any{"uri": p.uri, "_meta": map[string]any{
			upstream.IdentityMetaKey: upstream.IdentityMeta{Sub: id.Subject, Tenant: id.Tenant, Scopes: id.Scopes, ClientID: id.ClientID},
		}})
		if err != nil {
			g.o.Logger.Warn().Err(err).Str("upstream", p.up.Name()).Msg("resources/unsubscribe for an ended session could not be encoded")
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), unsubscribeTimeout)
		resp, err := p.up.Call(upstream.WithIdentity(ctx, g.o.IdentityHeaders, id), "resources/unsubscribe", params)
		cancel()
		switch {
		case err != nil:
			g.o.Logger.Warn().Err(err).Str("upstream", p.up.Name()).Msg("resources/unsubscribe for an ended session failed")
		case resp.Error != nil:
			g.o.Logger.Warn().Str("upstream", p.up.Name()).Int("code", resp.Error.Code).Msg("the upstream refused resources/unsubscribe for an ended session")
		}
	}
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
		for _, sid := range g.subs.sessions(n.Upstream, uri) {
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
