package mcp

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for Sessions.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// endLog records what OnEnd hears.
type endLog struct {
	mu   sync.Mutex
	ends []SessionEnd
}

func (l *endLog) record(_ context.Context, e SessionEnd) {
	l.mu.Lock()
	l.ends = append(l.ends, e)
	l.mu.Unlock()
}

func (l *endLog) reasons(id string) []EndReason {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []EndReason
	for _, e := range l.ends {
		if e.ID == id {
			out = append(out, e.Reason)
		}
	}
	return out
}

func newTestSessions(t *testing.T, ttl time.Duration) (*Sessions, *fakeClock, *endLog) {
	t.Helper()
	s, err := NewSessions(nil, ttl)
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	s.now = clock.Now
	log := &endLog{}
	s.OnEnd(log.record)
	return s, clock, log
}

// Invariant: the ended sessions one replica remembers (memory store) are
// bounded in count: beyond the bound the oldest ones (closest to expiry)
// are forgotten first, and the most recently ended ones are still refused.
func TestEndedSessionsAreBoundedInCount(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, clock, _ := newTestSessions(t, time.Hour)
	s.ended.max = 50
	var ids []string
	for i := range 500 {
		id := s.Issue(ctx, fmt.Sprintf("user-%d", i), 0)
		if err := s.Terminate(ctx, id); err != nil {
			t.Fatalf("Terminate %d: %v", i, err)
		}
		ids = append(ids, id)
		clock.advance(time.Second) // each one issued later than the last
	}
	if _, ended := s.counts(); ended > 50 {
		t.Fatalf("%d ended sessions remembered, want at most 50", ended)
	}
	for _, id := range ids[len(ids)-50:] {
		if _, err := s.Open(ctx, id); !errors.Is(err, ErrSessionTerminated) {
			t.Fatalf("a recently ended session opens with %v, want ErrSessionTerminated", err)
		}
	}
}

// Invariant: an ended session is remembered only while it could still be
// valid: once its lifetime is over, its entry goes.
func TestEndedSessionsAreForgottenOnceExpired(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, clock, _ := newTestSessions(t, time.Hour)
	for i := range 100 {
		if err := s.Terminate(ctx, s.Issue(ctx, fmt.Sprintf("user-%d", i), 0)); err != nil {
			t.Fatal(err)
		}
	}
	if _, ended := s.counts(); ended != 100 {
		t.Fatalf("%d ended sessions remembered, want 100", ended)
	}
	clock.advance(time.Hour + time.Second)
	late := s.Issue(ctx, "late", 0)
	if err := s.Terminate(ctx, late); err != nil {
		t.Fatal(err)
	}
	if _, ended := s.counts(); ended != 1 {
		t.Fatalf("%d ended sessions remembered after the first 100 expired, want 1", ended)
	}
	if _, err := s.Open(ctx, late); !errors.Is(err, ErrSessionTerminated) {
		t.Fatalf("the ended session opens with %v", err)
	}
}

// Invariant: a session past its lifetime stops counting as in use, and
// OnEnd hears of it (so what the gateway keeps for it goes), even when its
// client never comes back.
func TestExpiredSessionsEndWithoutTheirClient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, clock, log := newTestSessions(t, time.Hour)
	old := s.Issue(ctx, "alice", 0)
	clock.advance(2 * time.Hour)
	s.Issue(ctx, "bob", 0)
	if got := log.reasons(old); !slices.Equal(got, []EndReason{EndExpired}) {
		t.Fatalf("OnEnd heard %v for the expired session, want [expired]", got)
	}
	if live, _ := s.counts(); live != 1 {
		t.Fatalf("%d sessions in use, want 1", live)
	}
}

// Invariant: a subject's sessions beyond the cap end least recently used
// first, are refused afterwards, and OnEnd hears of each; other subjects'
// sessions do not count.
func TestSessionCapEndsTheLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, clock, log := newTestSessions(t, time.Hour)
	s.LimitPerSubject(2)
	a1 := s.Issue(ctx, "alice", 0)
	clock.advance(time.Second)
	b1 := s.Issue(ctx, "bob", 0)
	a2 := s.Issue(ctx, "alice", 0)
	if _, err := s.Open(ctx, a1); err != nil { // a1 is now the most recent
		t.Fatal(err)
	}
	a3 := s.Issue(ctx, "alice", 0)
	if got := log.reasons(a2); !slices.Equal(got, []EndReason{EndEvicted}) {
		t.Fatalf("OnEnd heard %v for alice's least recently used session, want [evicted]", got)
	}
	if _, err := s.Open(ctx, a2); !errors.Is(err, ErrSessionTerminated) {
		t.Fatalf("the evicted session opens with %v", err)
	}
	for _, id := range []string{a1, a3, b1} {
		if _, err := s.Open(ctx, id); err != nil {
			t.Fatalf("a session within the cap: %v", err)
		}
	}
	if live, ended := s.counts(); live != 3 || ended != 1 {
		t.Fatalf("in use %d, ended %d; want 3 and 1", live, ended)
	}
}

// revocations is an in-memory Revocations that records what is revoked.
type revocations struct {
	mu      sync.Mutex
	revoked map[string]time.Time
}

func (r *revocations) Revoke(_ context.Context, id string, until time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.revoked[id] = until
	return nil
}

func (r *revocations) Revoked(_ context.Context, id string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.revoked[id]
	return ok, nil
}

// Invariant: an evicted session is recorded in the shared Revocations, so
// a replica that never saw it evicted refuses it too (and forgets what it
// kept for it).
func TestEvictionIsShared(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	shared := &revocations{revoked: map[string]time.Time{}}
	key := make([]byte, 32)
	a, err := NewSessions(key, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSessions(key, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	a.ShareRevocations(shared, false)
	b.ShareRevocations(shared, false)
	log := &endLog{}
	b.OnEnd(log.record)
	a.LimitPerSubject(1)
	first := a.Issue(ctx, "alice", 0)
	if _, err := b.Open(ctx, first); err != nil {
		t.Fatal(err)
	}
	a.Issue(ctx, "alice", 0)
	if _, err := b.Open(ctx, first); !errors.Is(err, ErrSessionTerminated) {
		t.Fatalf("the other replica opens the evicted session with %v", err)
	}
	if got := log.reasons(first); !slices.Equal(got, []EndReason{EndRevoked}) {
		t.Fatalf("the other replica's OnEnd heard %v, want [revoked]", got)
	}
}

func (s *Sessions) counts() (live, ended int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live.len(), s.ended.len()
}
