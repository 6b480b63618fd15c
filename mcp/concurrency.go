package mcp

import (
	"hash/maphash"
	"net/http"
	"sync"
)

// Reason codes of the concurrency caps.
const (
	reasonOverloaded        = "overloaded"
	reasonTooManyConcurrent = "too_many_concurrent"
)

// concurrency bounds the requests in progress: on the whole replica (a
// semaphore) and per subject; and, separately, the requests still being
// authenticated (token verification, before any body is read): in total
// and per client IP.
type concurrency struct {
	global     chan struct{} // nil: no global cap
	perSubject keyedCaps
	preauth    chan struct{} // nil: no cap
	preauthIP  keyedCaps
}

// keyedCaps counts what is in progress per key (in sharded maps; a key's
// entry exists only while its count is positive) and caps it at max (0:
// no cap).
type keyedCaps struct {
	max    int
	seed   maphash.Seed
	shards [16]subjectShard
}

type subjectShard struct {
	mu sync.Mutex
	n  map[string]int
}

// init sets the cap and makes the maps.
func (k *keyedCaps) init(max int) {
	k.max, k.seed = max, maphash.MakeSeed()
	for i := range k.shards {
		k.shards[i].n = make(map[string]int)
	}
}

// enter takes one of key's slots; false when it has max in progress.
func (k *keyedCaps) enter(key string) bool {
	if k.max <= 0 {
		return true
	}
	s := &k.shards[maphash.String(k.seed, key)%uint64(len(k.shards))]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[key] >= k.max {
		return false
	}
	s.n[key]++
	return true
}

// leave returns a slot taken by enter.
func (k *keyedCaps) leave(key string) {
	if k.max <= 0 {
		return
	}
	s := &k.shards[maphash.String(k.seed, key)%uint64(len(k.shards))]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[key] <= 1 {
		delete(s.n, key)
		return
	}
	s.n[key]--
}

// newConcurrency caps requests in progress at global on the replica and
// perSubject per subject; requests being authenticated at global in total
// and perSubject per client IP (0: no cap).
func newConcurrency(global, perSubject int) *concurrency {
	c := &concurrency{}
	c.perSubject.init(perSubject)
	c.preauthIP.init(perSubject)
	if global > 0 {
		c.global = make(chan struct{}, global)
		c.preauth = make(chan struct{}, global)
	}
	return c
}

// enter takes a global slot; false when the replica is full.
func (c *concurrency) enter() bool { return tryTake(c.global) }

// leave returns a global slot taken by enter.
func (c *concurrency) leave() { give(c.global) }

// enterSubject takes one of subject's slots; false when it has perSubject
// requests in progress already.
func (c *concurrency) enterSubject(subject string) bool { return c.perSubject.enter(subject) }

// leaveSubject returns a slot taken by enterSubject.
func (c *concurrency) leaveSubject(subject string) { c.perSubject.leave(subject) }

// enterPreauth takes an authentication slot, in total and for ip; false
// when either is full. A refused request has taken nothing.
func (c *concurrency) enterPreauth(ip string) bool {
	if !tryTake(c.preauth) {
		return false
	}
	if !c.preauthIP.enter(ip) {
		give(c.preauth)
		return false
	}
	return true
}

// leavePreauth returns the slots taken by enterPreauth.
func (c *concurrency) leavePreauth(ip string) {
	c.preauthIP.leave(ip)
	give(c.preauth)
}

func tryTake(sem chan struct{}) bool {
	if sem == nil {
		return true
	}
	select {
	case sem <- struct{}{}:
		return true
	default:
		return false
	}
}

func give(sem chan struct{}) {
	if sem != nil {
		<-sem
	}
}

// refuseOverloaded answers a request the global cap refused: 503 with
// Retry-After, audited.
func (g *Gateway) refuseOverloaded(w http.ResponseWriter, st *requestState) {
	g.render(w, st, nil, &refusal{Status: http.StatusServiceUnavailable, Code: codeRateLimited, Reason: reasonOverloaded, RetryAfter: 1,
		Message: "the gateway is at its limit of requests in progress (server.max_concurrent); retry shortly",
		Data:    map[string]any{"reason": reasonOverloaded, "retryAfter": 1}})
}

// refuseTooManyConcurrent answers a request the per-subject cap refused:
// 429 with Retry-After, audited.
func (g *Gateway) refuseTooManyConcurrent(w http.ResponseWriter, st *requestState, rid []byte) {
	g.render(w, st, rid, &refusal{Status: http.StatusTooManyRequests, Code: codeRateLimited, Reason: reasonTooManyConcurrent, RetryAfter: 1,
		Message: "too many requests of yours are in progress (server.max_concurrent_per_subject); wait for some to finish",
		Data:    map[string]any{"reason": reasonTooManyConcurrent, "scope": ScopeSubject, "retryAfter": 1}})
}
