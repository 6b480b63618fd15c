package mcp

import (
	"hash/maphash"
	"net/http"
	"sync"

	"github.com/gatewaystack/gatewaystack/audit"
)

// Reason codes of the concurrency caps.
const (
	reasonOverloaded        = "overloaded"
	reasonTooManyConcurrent = "too_many_concurrent"
)

// concurrency bounds the requests in progress: on the whole replica (a
// semaphore) and per subject (counters in sharded maps; a subject's entry
// exists only while it has requests in progress).
type concurrency struct {
	global     chan struct{} // nil: no global cap
	perSubject int           // 0: no per-subject cap
	seed       maphash.Seed
	shards     [16]subjectShard
}

type subjectShard struct {
	mu sync.Mutex
	n  map[string]int
}

func newConcurrency(global, perSubject int) *concurrency {
	c := &concurrency{perSubject: perSubject, seed: maphash.MakeSeed()}
	if global > 0 {
		c.global = make(chan struct{}, global)
	}
	for i := range c.shards {
		c.shards[i].n = make(map[string]int)
	}
	return c
}

// enter takes a global slot; false when the replica is full.
func (c *concurrency) enter() bool {
	if c.global == nil {
		return true
	}
	select {
	case c.global <- struct{}{}:
		return true
	default:
		return false
	}
}

// leave returns a global slot taken by enter.
func (c *concurrency) leave() {
	if c.global != nil {
		<-c.global
	}
}

// enterSubject takes one of subject's slots; false when it has perSubject
// requests in progress already.
func (c *concurrency) enterSubject(subject string) bool {
	if c.perSubject <= 0 {
		return true
	}
	s := &c.shards[maphash.String(c.seed, subject)%uint64(len(c.shards))]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[subject] >= c.perSubject {
		return false
	}
	s.n[subject]++
	return true
}

// leaveSubject returns a slot taken by enterSubject.
func (c *concurrency) leaveSubject(subject string) {
	if c.perSubject <= 0 {
		return
	}
	s := &c.shards[maphash.String(c.seed, subject)%uint64(len(c.shards))]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[subject] <= 1 {
		delete(s.n, subject)
		return
	}
	s.n[subject]--
}

// refuseOverloaded answers a request the global cap refused: 503 with
// Retry-After, audited.
func (g *Gateway) refuseOverloaded(w http.ResponseWriter, st *requestState) {
	w.Header().Set("Retry-After", "1")
	g.audit(st, audit.Limited, reasonOverloaded, http.StatusServiceUnavailable)
	g.writeRefusal(w, st, http.StatusServiceUnavailable, nil, codeRateLimited,
		"the gateway is at its limit of requests in progress (server.max_concurrent); retry shortly",
		map[string]any{"reason": reasonOverloaded, "retryAfter": 1})
}

// refuseTooManyConcurrent answers a request the per-subject cap refused:
// 429 with Retry-After, audited.
func (g *Gateway) refuseTooManyConcurrent(w http.ResponseWriter, st *requestState, rid []byte) {
	w.Header().Set("Retry-After", "1")
	g.audit(st, audit.Limited, reasonTooManyConcurrent, http.StatusTooManyRequests)
	g.writeRefusal(w, st, http.StatusTooManyRequests, rid, codeRateLimited,
		"too many requests of yours are in progress (server.max_concurrent_per_subject); wait for some to finish",
		map[string]any{"reason": reasonTooManyConcurrent, "scope": ScopeSubject, "retryAfter": 1})
}
