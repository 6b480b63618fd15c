package limit

import (
	"context"
	"hash/maphash"
	"sync"
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
	now      func() time.Time
	seed     maphash.Seed
	shardMax int
	shards   [shardCount]shard
}

type shard struct {
	mu      sync.Mutex
	tats    map[string]int64
	sweepAt int
	evicted uint64
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory(o MemoryOptions) *Memory {
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Memory{now: o.Now, seed: maphash.MakeSeed(), shardMax: max(1, (o.MaxKeys+shardCount-1)/shardCount)}
	for i := range m.shards {
		m.shards[i].tats = make(map[string]int64)
		m.shards[i].sweepAt = min(minSweep, m.shardMax)
	}
	return m
}

// Apply implements Store.
func (m *Memory) Apply(_ context.Context, key string, r Rate, cost int) (Result, error) {
	if err := r.Validate(); err != nil {
		return Result{}, err
	}
	now := m.now().UnixNano()
	s := &m.shards[maphash.String(m.seed, key)%shardCount]
	s.mu.Lock()
	tat, held := s.tats[key]
	res, newTAT, store := step(tat, now, r, cost)
	if store {
		if !held && len(s.tats) >= s.sweepAt {
			s.sweep(now, m.shardMax)
		}
		s.tats[key] = newTAT
	}
	s.mu.Unlock()
	return res, nil
}

// sweep drops idle keys (TAT passed: a full bucket, the same as absent)
// and, when the shard is still at its bound, arbitrary keys down to 90 % of
// it. The next sweep runs when the shard has doubled (at most at the
// bound), so sweeping costs O(1) per insert amortized.
func (s *shard) sweep(now int64, bound int) {
	for k, tat := range s.tats {
		if tat <= now {
			delete(s.tats, k)
		}
	}
	if len(s.tats) >= bound {
		target := bound * 9 / 10
		for k := range s.tats {
			if len(s.tats) <= target {
				break
			}
			delete(s.tats, k)
			s.evicted++
		}
	}
	s.sweepAt = min(max(2*len(s.tats), minSweep), bound)
}

// Stats describes a Memory store's occupancy.
type Stats struct {
	// Keys held now.
	Keys int
	// Evicted counts keys dropped while still refilling (at the bound).
	Evicted uint64
}

// Stats returns the store's occupancy.
func (m *Memory) Stats() Stats {
	var st Stats
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		st.Keys += len(s.tats)
		st.Evicted += s.evicted
		s.mu.Unlock()
	}
	return st
}
