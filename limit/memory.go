package limit

import (
	"context"
	"time"
)

const (
	shardCount = 32
	// minSweep is the shard size below which no sweep runs.
	minSweep = 64
	// DefaultMaxKeys bounds a Memory store when MemoryOptions.MaxKeys is 0.
	DefaultMaxKeys = 100_000
)

// MemoryOptions configures a Memory store.
type MemoryOptions struct {
	// MaxKeys bounds the keys held (default DefaultMaxKeys). Idle keys
	// (full buckets) are dropped first; when every held key is still
	// refilling and a new key arrives at the bound, arbitrary keys are
	// dropped, which forgives what they had spent.
	MaxKeys int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Memory is the embedded Store: state lives in this process only, so with
// several replicas each enforces its own limit.
type Memory struct {
	now    func() time.Time
	shards shards[int64] // key -> theoretical arrival time (GCRA)
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory(o MemoryOptions) *Memory {
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Memory{now: o.Now}
	m.shards.init(o.MaxKeys)
	return m
}

// Apply implements Store.
func (m *Memory) Apply(_ context.Context, key string, r Rate, cost int) (Result, error) {
	if err := r.Validate(); err != nil {
		return Result{}, err
	}
	now := m.now().UnixNano()
	s := m.shards.of(key)
	s.mu.Lock()
	tat, held := s.m[key]
	res, newTAT, store := step(tat, now, r, cost)
	if store {
		if !held {
			// Idle keys (TAT passed: a full bucket, the same as absent)
			// go first.
			m.shards.makeRoom(s, func(tat int64) bool { return tat <= now })
		}
		s.m[key] = newTAT
	}
	s.mu.Unlock()
	return res, nil
}

// Stats describes a Memory store's occupancy.
type Stats struct {
	// Keys held now.
	Keys int
	// Evicted counts keys dropped while still refilling (at the bound).
	Evicted uint64
}

// Stats returns the store's occupancy.
func (m *Memory) Stats() Stats { return m.shards.stats() }
