package mcp

import (
	"fmt"
	"net/http"
	"sync/atomic"
)

// reasonTooManyStreams is the reason code of a refused event stream.
const reasonTooManyStreams = "too_many_streams"

// Default caps on open event streams.
const (
	// DefaultMaxStreamsPerSession bounds one session's GET streams.
	DefaultMaxStreamsPerSession = 4
	// DefaultMaxStreamsPerSubject bounds one subject's streams across its
	// sessions (and, in the 2026-07-28 era, its subscriptions/listen
	// streams, which have no session).
	DefaultMaxStreamsPerSubject = 32
)

// streamCaps bounds the event streams held open: per session and per
// subject. Streams last, so they are outside the concurrency caps of
// requests in progress; without their own caps one caller could hold any
// number of them (each a goroutine and a connection).
type streamCaps struct {
	perSession keyedCaps
	perSubject keyedCaps
	open       atomic.Int64
}

func newStreamCaps(perSession, perSubject int) *streamCaps {
	if perSession <= 0 {
		perSession = DefaultMaxStreamsPerSession
	}
	if perSubject <= 0 {
		perSubject = DefaultMaxStreamsPerSubject
	}
	s := &streamCaps{}
	s.perSession.init(perSession)
	s.perSubject.init(perSubject)
	return s
}

// enter takes a stream slot of session (may be "") and of subject; it
// reports the scope that is full ("session" or "subject") when it cannot.
// A refused stream has taken nothing.
func (s *streamCaps) enter(session, subject string) (full string) {
	if !s.perSubject.enter(subject) {
		return ScopeSubject
	}
	if session != "" && !s.perSession.enter(session) {
		s.perSubject.leave(subject)
		return scopeSession
	}
	s.open.Add(1)
	return ""
}

// leave returns the slots taken by enter.
func (s *streamCaps) leave(session, subject string) {
	s.open.Add(-1)
	if session != "" {
		s.perSession.leave(session)
	}
	s.perSubject.leave(subject)
}

// Open returns how many event streams this replica holds open.
func (s *streamCaps) Open() int { return int(s.open.Load()) }

// scopeSession names a per-session cap in refusals.
const scopeSession = "session"

// refuseStream answers a stream the caps refused: 429 with Retry-After and
// a JSON-RPC error naming the cap, audited.
func (g *Gateway) refuseStream(w http.ResponseWriter, st *requestState, scope string) {
	setting, limit := "server.max_streams_per_subject", g.streams.perSubject.max
	if scope == scopeSession {
		setting, limit = "server.max_streams_per_session", g.streams.perSession.max
	}
	g.render(w, st, nil, &refusal{Status: http.StatusTooManyRequests, Code: codeRateLimited, Reason: reasonTooManyStreams, Rule: setting, RetryAfter: 5,
		Message: fmt.Sprintf("too many event streams open for this %s (%s: %d); close one before opening another", scope, setting, limit),
		Data:    map[string]any{"reason": reasonTooManyStreams, "scope": scope, "limit": map[string]any{"rule": setting, "streams": limit}, "retryAfter": 5}})
}

// OpenStreams returns how many event streams this replica holds open (the
// streams_open metric).
func (g *Gateway) OpenStreams() int { return g.streams.Open() }
