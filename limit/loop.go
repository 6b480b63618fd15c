package limit

import (
	"context"
	"errors"
	"time"
)

// ErrBadRepeat reports a Repeat that cannot be enforced.
var ErrBadRepeat = errors.New("limit: invalid loop guard")

// MaxRepeatsCap bounds Repeat.Max: each key keeps Max timestamps.
const MaxRepeatsCap = 10_000

// Repeat is the loop guard's rule: at most Max identical calls within any
// Window (a sliding log, exact: no window edges). The (Max+1)-th call within
// Window is refused, and refused calls are not recorded, so RetryAfter is
// when the oldest recorded call leaves the window.
type Repeat struct {
	Max    int
	Window time.Duration
}

// Validate reports a Repeat that cannot be enforced.
func (r Repeat) Validate() error {
	if r.Max <= 0 || r.Max > MaxRepeatsCap || r.Window <= 0 {
		return ErrBadRepeat
	}
	return nil
}

// RepeatResult is the outcome of one Record.
type RepeatResult struct {
	// Allowed: fewer than Max identical calls were in the window; this one
	// was recorded.
	Allowed bool
	// Count is how many identical calls the window holds (including this
	// one, when allowed).
	Count int
	// RetryAfter is, when refused, how long until one more call would pass.
	RetryAfter time.Duration
}

// RepeatStore records calls per key (a caller's tool and arguments) and
// refuses the one that would make more than r.Max within r.Window,
// atomically per key. A shared store (Redis) implements it as one
// server-side script on a sorted set trimmed to the window.
type RepeatStore interface {
	Record(ctx context.Context, key string, r Repeat) (RepeatResult, error)
}

// RepeatMemory is the embedded RepeatStore (per replica). Memory is
// bounded: keys whose newest call has left the window are swept as a shard
// grows, and a shard never holds more than its share of MaxKeys (beyond it,
// arbitrary keys are forgotten).
type RepeatMemory struct {
	now    func() time.Time
	shards shards[*calls]
}

// calls is a key's log: the times of its last calls, oldest first.
type calls struct {
	at []int64
}

var _ RepeatStore = (*RepeatMemory)(nil)

// NewRepeatMemory returns an empty in-memory loop-guard store; o is read as
// for the budget store.
func NewRepeatMemory(o BudgetMemoryOptions) *RepeatMemory {
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &RepeatMemory{now: o.Now}
	m.shards.init(o.MaxKeys)
	return m
}

// Record implements RepeatStore.
func (m *RepeatMemory) Record(_ context.Context, key string, r Repeat) (RepeatResult, error) {
	if err := r.Validate(); err != nil {
		return RepeatResult{}, err
	}
	now := m.now().UnixNano()
	w := int64(r.Window)
	s := m.shards.of(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	c, held := s.m[key]
	if !held {
		// Keys whose newest call has left the window go first.
		m.shards.makeRoom(s, func(c *calls) bool { return len(c.at) == 0 || c.at[len(c.at)-1] <= now-w })
		c = &calls{at: make([]int64, 0, min(r.Max, 16))}
		s.m[key] = c
	}
	// Drop calls that left the window (now − Window, now].
	i := 0
	for i < len(c.at) && c.at[i] <= now-w {
		i++
	}
	c.at = c.at[:copy(c.at, c.at[i:])] // in place: no allocation per call
	if len(c.at) >= r.Max {
		oldest := c.at[len(c.at)-r.Max]
		return RepeatResult{Count: len(c.at), RetryAfter: time.Duration(oldest + w - now)}, nil
	}
	c.at = append(c.at, now)
	return RepeatResult{Allowed: true, Count: len(c.at)}, nil
}

// Stats returns the store's occupancy.
func (m *RepeatMemory) Stats() Stats { return m.shards.stats() }
