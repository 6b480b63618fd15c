package mcp

import (
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

	"github.com/mark3labs/mcp-go/server"
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
// state. Terminated ids are remembered until they would have expired: in
// this replica, and in the shared Revocations when set, so that a session
// ended on one replica is ended on all.
type Sessions struct {
	aead cipher.AEAD
	ttl  time.Duration
	now  func() time.Time

	shared   Revocations
	failOpen bool

	mu         sync.Mutex
	terminated map[string]time.Time
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
	return &Sessions{aead: aead, ttl: ttl, now: time.Now, terminated: map[string]time.Time{}}, nil
}

// ShareRevocations makes ended sessions known to every replica using r.
// When r fails, failOpen treats ids as not ended; otherwise Open fails with
// ErrSessionStore. Call before serving.
func (s *Sessions) ShareRevocations(r Revocations, failOpen bool) {
	s.shared, s.failOpen = r, failOpen
}

// sessionAD binds sealed ids to their purpose.
var sessionAD = []byte("gatewaystack/session/v2")

// Issue returns a new session id bound to subject, carrying the client's
// declared capabilities.
func (s *Sessions) Issue(subject string, caps ClientCaps) string {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+9+len(subject)+s.aead.Overhead())
	_, _ = rand.Read(nonce)
	plain := binary.BigEndian.AppendUint64(make([]byte, 0, 9+len(subject)), uint64(s.now().Unix()))
	plain = append(plain, byte(caps))
	plain = append(plain, subject...)
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, sessionAD))
}

// Open checks id and returns its session.
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
	now := s.now()
	if s.ttl > 0 && now.Sub(issued) > s.ttl {
		return Session{}, ErrSessionInvalid
	}
	s.mu.Lock()
	_, dead := s.terminated[id]
	s.mu.Unlock()
	if dead {
		return Session{}, ErrSessionTerminated
	}
	if s.shared != nil {
		revoked, err := s.shared.Revoked(ctx, revocationKey(id))
		switch {
		case err != nil && !s.failOpen:
			return Session{}, fmt.Errorf("%w: %w", ErrSessionStore, err)
		case revoked:
			return Session{}, ErrSessionTerminated
		}
	}
	return Session{Subject: string(plain[9:]), IssuedAt: issued, Caps: ClientCaps(plain[8])}, nil
}

// Terminate records id as ended, here and in the shared list. Entries are
// dropped once the id would have expired anyway.
func (s *Sessions) Terminate(ctx context.Context, id string) error {
	sess, err := s.Open(ctx, id)
	if err != nil {
		return err
	}
	now := s.now()
	until := sess.IssuedAt.Add(s.ttl)
	s.mu.Lock()
	for k, exp := range s.terminated {
		if now.After(exp) {
			delete(s.terminated, k)
		}
	}
	s.terminated[id] = until
	s.mu.Unlock()
	if s.shared != nil {
		if err := s.shared.Revoke(ctx, revocationKey(id), until); err != nil {
			return fmt.Errorf("%w: %w", ErrSessionStore, err)
		}
	}
	return nil
}

// revocationKey is what the shared list holds for id: a digest, so that
// the store never holds a usable session id.
func revocationKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

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
	if req == nil {
		// mcp-go asks without a request when it closes every stream at
		// shutdown (StreamableHTTPServer.CloseSessions).
		return closingManager{}
	}
	return boundManager{s: r.s, ctx: req.Context()}
}

// closingManager is what mcp-go gets when it resolves a manager without a
// request, at shutdown. Ending this process's streams must not revoke the
// sessions: their ids are self-contained, and the clients may carry them on
// to another replica sharing the key. It issues and accepts nothing.
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
	return m.s.Issue(id.Subject, caps)
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
