package mcp

import (
	"container/heap"
	"container/list"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/gatewaystack/gatewaystack/auth"
)

// Session errors.
var (
	// ErrSessionInvalid: the id was not issued by this gateway (or a replica
	// sharing its key), or has expired.
	ErrSessionInvalid = errors.New("mcp: session id invalid")
	// ErrSessionTerminated: the client ended the session with DELETE.
	ErrSessionTerminated = errors.New("mcp: session terminated")
	// ErrSessionStore: the shared list of ended sessions could not be read
	// (and the store fails closed).
	ErrSessionStore = errors.New("mcp: session store unavailable")
)

// Revocations is a list of ended session ids shared by replicas (Redis).
type Revocations interface {
	// Revoke records id as ended until until.
	Revoke(ctx context.Context, id string, until time.Time) error
	// Revoked reports whether id was ended.
	Revoked(ctx context.Context, id string) (bool, error)
}

// Session is what a session id carries.
type Session struct {
	Subject  string
	IssuedAt time.Time
	// Caps is what the client declared it can do at initialize.
	Caps ClientCaps
}

// ClientCaps is the set of server-to-client request kinds a client
// declared at initialize; the gateway relays such requests from upstreams
// only to clients that can answer them.
type ClientCaps byte

// Client capabilities.
const (
	CapSampling ClientCaps = 1 << iota
	CapElicitation
	CapRoots
)

// capsForMethod is the capability a server-to-client request needs.
func capsForMethod(method string) (ClientCaps, bool) {
	switch method {
	case "sampling/createMessage":
		return CapSampling, true
	case "elicitation/create":
		return CapElicitation, true
	case "roots/list":
		return CapRoots, true
	}
	return 0, false
}

// Sessions issues and checks self-contained session ids: each id is the
// subject and issue time sealed with AES-256-GCM under a key shared by all
// replicas, so any replica can tell whom a session belongs to without shared
// state.
//
// Each replica also keeps, in bounded memory:
//   - the sessions in use here, per subject, least recently used last: a
//     subject that starts a session beyond the cap (LimitPerSubject) ends
//     its least recently used one, and a session past its lifetime is
//     forgotten; OnEnd hears of every session that ends here, so that what
//     the gateway keeps per session goes with it;
//   - the ended sessions (DELETE, eviction), until they would have expired
//     anyway, at most DefaultMaxEndedSessions of them (the ones closest to
//     expiry are forgotten first). With shared Revocations (Redis) an ended session is
//     also recorded there, so that it is ended on every replica.
type Sessions struct {
	aead cipher.AEAD
	ttl  time.Duration
	now  func() time.Time

	shared   Revocations
	failOpen bool

	// perSubject caps the sessions one subject has in use on this replica
	// (0: no cap).
	perSubject int
	// onEnd hears of each session that ends on this replica.
	onEnd func(context.Context, SessionEnd)

	mu    sync.Mutex
	ended endedSessions
	live  liveSessions
}

// DefaultMaxEndedSessions bounds how many ended sessions one replica
// remembers; beyond it the ones closest to expiry (the oldest sessions) are
// forgotten first.
const DefaultMaxEndedSessions = 100_000

// maxExpiredPerCall bounds how many expired sessions one Issue or Open
// forgets, so that no request pays for a long sweep.
const maxExpiredPerCall = 64

// noExpiry stands for the expiry of a session when ids never expire (a
// lifetime of 0).
const noExpiry = 100 * 365 * 24 * time.Hour

// EndReason says why a session ended.
type EndReason string

// Why sessions end.
const (
	// EndDeleted: the client ended it with DELETE.
	EndDeleted EndReason = "deleted"
	// EndEvicted: its subject started a session beyond the per-subject cap
	// and this was its least recently used one.
	EndEvicted EndReason = "evicted"
	// EndExpired: its lifetime (server.session_ttl) is over.
	EndExpired EndReason = "expired"
	// EndRevoked: another replica ended it (shared Revocations).
	EndRevoked EndReason = "revoked"
)

// SessionEnd tells OnEnd which session ended and why.
type SessionEnd struct {
	// ID is the session id.
	ID string
	// Subject owns the session.
	Subject string
	// Reason says why it ended.
	Reason EndReason
	// StoreErr is set when the end could not be recorded in the shared
	// Revocations (the session is still ended on this replica).
	StoreErr error
}

// NewSessions returns a session issuer. key must be 32 bytes; nil generates a
// random key (sessions then do not survive a restart or cross replicas).
func NewSessions(key []byte, ttl time.Duration) (*Sessions, error) {
	if key == nil {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("generate session key: %w", err)
		}
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("session key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("session cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("session aead: %w", err)
	}
	return &Sessions{aead: aead, ttl: ttl, now: time.Now,
		ended: endedSessions{max: DefaultMaxEndedSessions}}, nil
}

// ShareRevocations makes ended sessions known to every replica using r.
// When r fails, failOpen treats ids as not ended; otherwise Open fails with
// ErrSessionStore. Call before serving.
func (s *Sessions) ShareRevocations(r Revocations, failOpen bool) {
	s.shared, s.failOpen = r, failOpen
}

// LimitPerSubject caps the sessions one subject has in use on this
// replica at n (n < 1: no cap): when the subject starts one more, its least
// recently used session is ended (and, with shared Revocations, ended on
// every replica); the client gets 404 on its next use and starts a new
// session. Call before serving.
func (s *Sessions) LimitPerSubject(n int) { s.perSubject = max(n, 0) }

// OnEnd makes f hear of every session that ends on this replica: deleted
// here, evicted by the per-subject cap, expired, or found ended by another
// replica. f runs on the goroutine of the request that noticed, outside
// every lock of s; it must not block for long. Call before serving.
func (s *Sessions) OnEnd(f func(context.Context, SessionEnd)) { s.onEnd = f }

// sessionAD binds sealed ids to their purpose.
var sessionAD = []byte("gatewaystack/session/v2")

// Issue returns a new session id bound to subject, carrying the client's
// declared capabilities. The session counts as in use on this replica: when
// it takes subject past the per-subject cap, the subject's least recently
// used session ends (recorded in the shared Revocations with ctx).
func (s *Sessions) Issue(ctx context.Context, subject string, caps ClientCaps) string {
	now := s.now()
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+9+len(subject)+s.aead.Overhead())
	_, _ = rand.Read(nonce)
	plain := binary.BigEndian.AppendUint64(make([]byte, 0, 9+len(subject)), uint64(now.Unix()))
	plain = append(plain, byte(caps))
	plain = append(plain, subject...)
	id := base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, sessionAD))
	s.use(ctx, id, subject, time.Unix(now.Unix(), 0), now)
	return id
}

// expiry is when a session issued at issued expires.
func (s *Sessions) expiry(issued time.Time) time.Time {
	if s.ttl > 0 {
		return issued.Add(s.ttl)
	}
	return issued.Add(noExpiry)
}

// Open checks id and returns its session. A session it accepts counts as
// used now (see LimitPerSubject).
func (s *Sessions) Open(ctx context.Context, id string) (Session, error) {
	if id == "" || len(id) > 1024 {
		return Session{}, ErrSessionInvalid
	}
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil || len(raw) < s.aead.NonceSize()+s.aead.Overhead()+8 {
		return Session{}, ErrSessionInvalid
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], sessionAD)
	if err != nil || len(plain) < 9 {
		return Session{}, ErrSessionInvalid
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(plain[:8])), 0)
	sess := Session{Subject: string(plain[9:]), IssuedAt: issued, Caps: ClientCaps(plain[8])}
	now := s.now()
	if s.ttl > 0 && now.Sub(issued) > s.ttl {
		s.end(ctx, id, sess.Subject, s.expiry(issued), EndExpired, false)
		return Session{}, ErrSessionInvalid
	}
	key := sha256.Sum256([]byte(id))
	s.mu.Lock()
	dead := s.ended.has(key, now)
	s.mu.Unlock()
	if dead {
		return Session{}, ErrSessionTerminated
	}
	if s.shared != nil {
		revoked, err := s.shared.Revoked(ctx, encodeKey(key))
		switch {
		case err != nil && !s.failOpen:
			return Session{}, fmt.Errorf("%w: %w", ErrSessionStore, err)
		case revoked:
			// Remembered here too, so its next use asks the store no more.
			s.end(ctx, id, sess.Subject, s.expiry(issued), EndRevoked, true)
			return Session{}, ErrSessionTerminated
		}
	}
	s.use(ctx, id, sess.Subject, issued, now)
	return sess, nil
}

// use records that session id of subject was used now: it becomes its
// subject's most recently used session, which may end the least recently
// used ones beyond the cap; sessions found expired on the way are
// forgotten. Every ended session is reported to onEnd.
func (s *Sessions) use(ctx context.Context, id, subject string, issued, now time.Time) {
	s.mu.Lock()
	expired := s.live.expire(now, maxExpiredPerCall)
	evicted := s.live.touch(id, subject, s.expiry(issued), s.perSubject)
	for _, e := range evicted {
		s.ended.add(sha256.Sum256([]byte(e.id)), e.until, now)
	}
	s.mu.Unlock()
	for _, e := range expired {
		s.notify(ctx, SessionEnd{ID: e.id, Subject: e.subject, Reason: EndExpired})
	}
	for _, e := range evicted {
		end := SessionEnd{ID: e.id, Subject: e.subject, Reason: EndEvicted}
		if s.shared != nil {
			if err := s.shared.Revoke(ctx, revocationKey(e.id), e.until); err != nil {
				end.StoreErr = fmt.Errorf("%w: record an evicted session as ended: %w", ErrSessionStore, err)
			}
		}
		s.notify(ctx, end)
	}
}

// end forgets session id (expiring at until) of this replica's sessions
// in use for reason, recording it as ended when record is set, and reports
// it to onEnd when this replica knew it.
func (s *Sessions) end(ctx context.Context, id, subject string, until time.Time, reason EndReason, record bool) {
	now := s.now()
	s.mu.Lock()
	e := s.live.remove(id)
	if record {
		s.ended.add(sha256.Sum256([]byte(id)), until, now)
	}
	s.mu.Unlock()
	if e != nil {
		s.notify(ctx, SessionEnd{ID: id, Subject: subject, Reason: reason})
	}
}

func (s *Sessions) notify(ctx context.Context, e SessionEnd) {
	if s.onEnd != nil {
		s.onEnd(ctx, e)
	}
}

// Terminate records id as ended, here and in the shared list, and reports
// it to OnEnd. Entries are dropped once the id would have expired anyway.
func (s *Sessions) Terminate(ctx context.Context, id string) error {
	sess, err := s.Open(ctx, id)
	if err != nil {
		return err
	}
	now := s.now()
	until := s.expiry(sess.IssuedAt)
	key := sha256.Sum256([]byte(id))
	s.mu.Lock()
	s.live.remove(id)
	s.ended.add(key, until, now)
	s.mu.Unlock()
	end := SessionEnd{ID: id, Subject: sess.Subject, Reason: EndDeleted}
	var storeErr error
	if s.shared != nil {
		if err := s.shared.Revoke(ctx, encodeKey(key), until); err != nil {
			storeErr = fmt.Errorf("%w: %w", ErrSessionStore, err)
			end.StoreErr = storeErr
		}
	}
	s.notify(ctx, end)
	return storeErr
}

// revocationKey is what the shared list holds for id: a digest, so that
// the store never holds a usable session id.
func revocationKey(id string) string { return encodeKey(sha256.Sum256([]byte(id))) }

// encodeKey is the shared list's spelling of an id's digest.
func encodeKey(sum [sha256.Size]byte) string { return base64.RawURLEncoding.EncodeToString(sum[:]) }

// capsKey carries an initialize request's declared client capabilities to
// the session id it mints.
type capsKey struct{}

// declaredCaps reads the capabilities of initialize params.
func declaredCaps(params []byte) ClientCaps {
	var p struct {
		Capabilities map[string]any `json:"capabilities"`
	}
	if json.Unmarshal(params, &p) != nil {
		return 0
	}
	var c ClientCaps
	if _, ok := p.Capabilities["sampling"]; ok {
		c |= CapSampling
	}
	if _, ok := p.Capabilities["elicitation"]; ok {
		c |= CapElicitation
	}
	if _, ok := p.Capabilities["roots"]; ok {
		c |= CapRoots
	}
	return c
}

// identityKey carries the verified identity in a request context.
type identityKey struct{}

// resolver hands mcp-go a session id manager bound to the caller's subject,
// so ids minted on initialize belong to that subject.
type resolver struct{ s *Sessions }

func (r resolver) ResolveSessionIdManager(req *http.Request) server.SessionIdManager {
	if req == nil || req.Context().Value(releasingKey{}) != nil {
		// mcp-go asks without a request when it closes every stream at
		// shutdown (StreamableHTTPServer.CloseSessions); the gateway's own
		// release of an ended session (releaseTransport) ends nothing more.
		return closingManager{}
	}
	return boundManager{s: r.s, ctx: req.Context()}
}

// releasingKey marks the gateway's own DELETE that makes mcp-go forget a
// session that ended otherwise (releaseTransport); only the gateway can set
// it.
type releasingKey struct{}

// closingManager is what mcp-go gets when it resolves a manager without a
// request, at shutdown, and for releaseTransport. Ending this process's
// streams must not revoke the sessions: their ids are self-contained, and
// the clients may carry them on to another replica sharing the key. It
// issues and accepts nothing.
type closingManager struct{}

func (closingManager) Generate() string { return "" }

func (closingManager) Validate(string) (bool, error) { return false, ErrSessionInvalid }

func (closingManager) Terminate(string) (bool, error) { return false, nil }

// boundManager is the per-request server.SessionIdManager.
type boundManager struct {
	s   *Sessions
	ctx context.Context
}

func (m boundManager) Generate() string {
	id, _ := identityFrom(m.ctx)
	caps, _ := m.ctx.Value(capsKey{}).(ClientCaps)
	return m.s.Issue(m.ctx, id.Subject, caps)
}

func (m boundManager) Validate(sessionID string) (bool, error) {
	sess, err := m.s.Open(m.ctx, sessionID)
	if errors.Is(err, ErrSessionTerminated) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if id, ok := identityFrom(m.ctx); !ok || id.Subject != sess.Subject {
		return false, ErrSessionInvalid
	}
	return false, nil
}

func (m boundManager) Terminate(sessionID string) (bool, error) {
	if _, err := m.Validate(sessionID); err != nil {
		return false, err
	}
	if err := m.s.Terminate(m.ctx, sessionID); err != nil && !errors.Is(err, ErrSessionTerminated) {
		return false, err
	}
	return false, nil
}

// endedSessions holds the digests of ended session ids until they would
// have expired, at most max of them: beyond it the entry closest to expiry
// (the oldest session) is forgotten first.
type endedSessions struct {
	max   int
	byKey map[[sha256.Size]byte]*endedEntry
	queue expiryQueue[*endedEntry]
}

type endedEntry struct {
	key [sha256.Size]byte
	expiry
}

// add records key as ended until until, first dropping the entries that
// expired by now and, when full, the one closest to expiry.
func (e *endedSessions) add(key [sha256.Size]byte, until, now time.Time) {
	for len(e.queue) > 0 && !e.queue[0].until.After(now) {
		delete(e.byKey, heap.Pop(&e.queue).(*endedEntry).key)
	}
	if !until.After(now) {
		return // expired already: nothing to remember
	}
	if x, ok := e.byKey[key]; ok {
		if until.After(x.until) {
			x.until = until
			heap.Fix(&e.queue, x.index)
		}
		return
	}
	if e.byKey == nil {
		e.byKey = map[[sha256.Size]byte]*endedEntry{}
	}
	for e.max > 0 && len(e.queue) >= e.max {
		delete(e.byKey, heap.Pop(&e.queue).(*endedEntry).key)
	}
	x := &endedEntry{key: key, expiry: expiry{until: until}}
	heap.Push(&e.queue, x)
	e.byKey[key] = x
}

// has reports whether key is recorded as ended (and not expired by now).
func (e *endedSessions) has(key [sha256.Size]byte, now time.Time) bool {
	x, ok := e.byKey[key]
	return ok && x.until.After(now)
}

// len is how many ended sessions are remembered.
func (e *endedSessions) len() int { return len(e.byKey) }

// liveSessions are the sessions in use on this replica: per subject in
// order of last use (most recent first), and all of them by expiry.
type liveSessions struct {
	byID      map[string]*liveSession
	bySubject map[string]*list.List // of *liveSession, most recently used first
	queue     expiryQueue[*liveSession]
}

type liveSession struct {
	id, subject string
	expiry
	use *list.Element
}

// touch makes session id of subject (expiring at until) its subject's most
// recently used one, adding it when new; it returns the sessions it ended
// because the subject then had more than perSubject (0: no cap), least
// recently used first.
func (l *liveSessions) touch(id, subject string, until time.Time, perSubject int) []*liveSession {
	if x, ok := l.byID[id]; ok {
		l.bySubject[x.subject].MoveToFront(x.use)
		return nil
	}
	if l.byID == nil {
		l.byID = map[string]*liveSession{}
		l.bySubject = map[string]*list.List{}
	}
	uses := l.bySubject[subject]
	if uses == nil {
		uses = list.New()
		l.bySubject[subject] = uses
	}
	x := &liveSession{id: id, subject: subject, expiry: expiry{until: until}}
	x.use = uses.PushFront(x)
	heap.Push(&l.queue, x)
	l.byID[id] = x
	var evicted []*liveSession
	for perSubject > 0 && uses.Len() > perSubject {
		oldest := uses.Back().Value.(*liveSession)
		l.drop(oldest)
		evicted = append(evicted, oldest)
	}
	return evicted
}

// remove forgets session id and returns it (nil when unknown).
func (l *liveSessions) remove(id string) *liveSession {
	x, ok := l.byID[id]
	if !ok {
		return nil
	}
	l.drop(x)
	return x
}

// expire forgets up to n sessions expired by now and returns them.
func (l *liveSessions) expire(now time.Time, n int) []*liveSession {
	var out []*liveSession
	for len(out) < n && len(l.queue) > 0 && !l.queue[0].until.After(now) {
		x := l.queue[0]
		l.drop(x)
		out = append(out, x)
	}
	return out
}

func (l *liveSessions) drop(x *liveSession) {
	heap.Remove(&l.queue, x.index)
	delete(l.byID, x.id)
	uses := l.bySubject[x.subject]
	uses.Remove(x.use)
	if uses.Len() == 0 {
		delete(l.bySubject, x.subject)
	}
}

// len is how many sessions are in use.
func (l *liveSessions) len() int { return len(l.byID) }

// endSession forgets what the gateway keeps for a session that ended (the
// Sessions' OnEnd): what mcp-go holds for it (unless mcp-go is answering
// its DELETE, after which it forgets it itself), its log level, and its
// resource subscriptions — those nobody else holds are ended upstream.
func (g *Gateway) endSession(ctx context.Context, e SessionEnd) {
	if e.StoreErr != nil {
		g.o.Logger.Warn().Err(e.StoreErr).Str("subject", e.Subject).Str("reason", string(e.Reason)).
			Msg("an ended session could not be recorded in the shared store; other replicas accept it until it expires or their store answers")
	}
	if e.Reason != EndDeleted || e.StoreErr != nil {
		// mcp-go forgets a session itself after a DELETE it answers with
		// success; on an error (the shared store failed) it does not.
		g.releaseTransport(e.ID)
	}
	g.logLevels.forget(e.ID)
	if pending := g.subs.endSession(e.ID); len(pending) > 0 {
		id, ok := identityFrom(ctx)
		if !ok || id.Subject != e.Subject {
			id = auth.Identity{Subject: e.Subject}
		}
		go g.endUpstreamSubscriptions(id, pending)
	}
	g.o.Logger.Debug().Str("subject", e.Subject).Str("reason", string(e.Reason)).Msg("session ended")
}

// releaseTransport makes mcp-go forget session id (its session object,
// listening-stream registration and per-session stores), as a DELETE
// would, without ending anything more.
func (g *Gateway) releaseTransport(id string) {
	ctx := context.WithValue(context.Background(), releasingKey{}, true)
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, g.o.Endpoint.Path, nil)
	if err != nil {
		g.o.Logger.Warn().Err(err).Msg("release an ended session")
		return
	}
	req.Header.Set(mcpgo.HeaderSessionID, id)
	g.streamable.ServeHTTP(discardResponse{h: http.Header{}}, req)
}

// discardResponse is a response nobody reads.
type discardResponse struct{ h http.Header }

func (d discardResponse) Header() http.Header       { return d.h }
func (discardResponse) Write(b []byte) (int, error) { return len(b), nil }
func (discardResponse) WriteHeader(int)             {}

// expiry is an entry's place in an expiryQueue: when it expires and where
// it sits in the heap.
type expiry struct {
	until time.Time
	index int
}

func (x *expiry) slot() *expiry { return x }

// expiryQueue is a min-heap (container/heap) of entries by expiry.
type expiryQueue[T interface{ slot() *expiry }] []T

func (q expiryQueue[T]) Len() int           { return len(q) }
func (q expiryQueue[T]) Less(i, j int) bool { return q[i].slot().until.Before(q[j].slot().until) }
func (q expiryQueue[T]) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].slot().index, q[j].slot().index = i, j
}
func (q *expiryQueue[T]) Push(x any) {
	e := x.(T)
	e.slot().index = len(*q)
	*q = append(*q, e)
}
func (q *expiryQueue[T]) Pop() any {
	old := *q
	e := old[len(old)-1]
	var zero T
	old[len(old)-1] = zero
	*q = old[:len(old)-1]
	return e
}
