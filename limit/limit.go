// Package limit is the gateway's rate-limit stage: keyed limiters using GCRA
// (the generic cell rate algorithm), which is a token bucket kept as one
// number per key — the key's theoretical arrival time (TAT).
//
// A Rate of Requests per Window with Burst allows Burst requests at once and
// then one every Window/Requests; over any interval of length L a key is
// allowed at most Burst + L×Requests/Window requests. There is no window
// edge: unlike fixed-window counters, a client cannot spend a whole window's
// allowance just before an edge and another just after it.
//
// Allow performs these steps, atomically per key:
//
//  1. tat := stored TAT of key, or now when the key is absent or in the past
//     (an absent key is a full bucket);
//  2. newTAT := tat + cost × interval, where interval = Window/Requests;
//  3. allowAt := newTAT − Burst × interval; when allowAt > now the request is
//     refused with RetryAfter = allowAt − now and nothing is stored;
//  4. otherwise newTAT is stored; Remaining = ⌊(now − allowAt)/interval⌋ and
//     ResetAfter = newTAT − now (when the bucket is full again).
//
// A cost of 0 asks whether a request of cost 1 would be allowed now, without
// consuming anything (a peek).
//
// Stores hold the TATs. Memory is the embedded store: sharded maps whose
// memory is bounded — keys whose TAT has passed carry no state (their bucket
// is full) and are swept as a shard grows, and a shard never holds more than
// its share of MaxKeys. A shared store (Redis) implements the same Store
// interface with the four steps as one server-side script.
package limit

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors.
var (
	// ErrBadRate reports a Rate that cannot be enforced.
	ErrBadRate = errors.New("limit: invalid rate")
)

// Rate is Requests per Window, with Burst requests allowed at once.
type Rate struct {
	Requests int
	Window   time.Duration
	// Burst is the bucket's capacity (default, when 0: Requests).
	Burst int
}

// Interval is the time one request's worth of allowance takes to refill.
func (r Rate) Interval() time.Duration { return r.Window / time.Duration(r.Requests) }

// Capacity is the effective burst.
func (r Rate) Capacity() int {
	if r.Burst > 0 {
		return r.Burst
	}
	return r.Requests
}

// Validate reports a Rate that cannot be enforced.
func (r Rate) Validate() error {
	if r.Requests <= 0 || r.Window <= 0 || r.Burst < 0 || r.Interval() <= 0 {
		return ErrBadRate
	}
	return nil
}

// Result is the outcome of one Allow.
type Result struct {
	// Allowed: the request conforms (and was counted, for cost > 0).
	Allowed bool
	// Limit is the bucket's capacity (the burst).
	Limit int
	// Remaining is how many more requests of cost 1 would be allowed now.
	Remaining int
	// RetryAfter is, when refused, how long until the request would conform.
	RetryAfter time.Duration
	// ResetAfter is how long until the bucket is full again.
	ResetAfter time.Duration
}

// Limiter decides whether the request keyed by key, costing cost units, may
// proceed now.
type Limiter interface {
	Allow(ctx context.Context, key string, cost int) (Result, error)
}

// Store applies one GCRA step (the package comment's steps 1–4) for key at
// rate r, atomically.
type Store interface {
	Apply(ctx context.Context, key string, r Rate, cost int) (Result, error)
}

// KeyedLimiter limits every key to one Rate, keeping state in a Store.
type KeyedLimiter struct {
	rate  Rate
	store Store
}

var _ Limiter = (*KeyedLimiter)(nil)

// New returns a limiter enforcing r per key in store.
func New(r Rate, store Store) (*KeyedLimiter, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if store == nil {
		return nil, errors.New("limit: nil store")
	}
	return &KeyedLimiter{rate: r, store: store}, nil
}

// Rate returns the enforced rate.
func (l *KeyedLimiter) Rate() Rate { return l.rate }

// Allow implements Limiter.
func (l *KeyedLimiter) Allow(ctx context.Context, key string, cost int) (Result, error) {
	return l.store.Apply(ctx, key, l.rate, cost)
}

// step is the GCRA arithmetic shared by stores, on nanoseconds: given the
// stored TAT (0 when absent) it returns the result and the TAT to store
// (store reports whether to write it).
func step(tat, now int64, r Rate, cost int) (res Result, newTAT int64, store bool) {
	interval := int64(r.Interval())
	capacity := int64(r.Capacity())
	tau := capacity * interval
	if tat < now {
		tat = now
	}
	res.Limit = int(capacity)
	probe := int64(cost)
	if cost <= 0 {
		probe = 1
	}
	newTAT = tat + probe*interval
	allowAt := newTAT - tau
	if allowAt > now {
		res.RetryAfter = time.Duration(allowAt - now)
		res.ResetAfter = time.Duration(tat - now)
		if rem := (now - (tat - tau)) / interval; rem > 0 {
			res.Remaining = int(rem)
		}
		return res, tat, false
	}
	res.Allowed = true
	if cost <= 0 {
		res.Remaining = int((now - (tat - tau)) / interval)
		res.ResetAfter = time.Duration(tat - now)
		return res, tat, false
	}
	res.Remaining = int((now - allowAt) / interval)
	res.ResetAfter = time.Duration(newTAT - now)
	return res, newTAT, true
}
