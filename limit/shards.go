package limit

import (
	"hash/maphash"
	"sync"
)

// shards is the bounded, sharded map every in-memory store keeps its state
// in: 32 mutex-guarded shards, each holding at most its share of MaxKeys.
type shards[V any] struct {
	seed  maphash.Seed
	bound int // keys per shard
	s     [shardCount]shard[V]
}

type shard[V any] struct {
	mu      sync.Mutex
	m       map[string]V
	sweepAt int
	evicted uint64
}

// init prepares the shards for maxKeys keys in all (default DefaultMaxKeys).
func (ss *shards[V]) init(maxKeys int) {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	ss.seed = maphash.MakeSeed()
	ss.bound = max(1, (maxKeys+shardCount-1)/shardCount)
	for i := range ss.s {
		ss.s[i].m = make(map[string]V)
		ss.s[i].sweepAt = min(minSweep, ss.bound)
	}
}

// of returns the shard holding key; the caller locks it.
func (ss *shards[V]) of(key string) *shard[V] {
	return &ss.s[maphash.String(ss.seed, key)%shardCount]
}

// makeRoom runs before a new key is stored in s (locked): once the shard has
// grown to its sweep mark, keys for which idle reports true are dropped and,
// when the shard is still at its bound, arbitrary keys down to 90 % of it.
// The next sweep runs when the shard has doubled (at most at the bound), so
// sweeping costs O(1) per insert amortized.
func (ss *shards[V]) makeRoom(s *shard[V], idle func(V) bool) {
	if len(s.m) < s.sweepAt {
		return
	}
	for k, v := range s.m {
		if idle(v) {
			delete(s.m, k)
		}
	}
	if len(s.m) >= ss.bound {
		target := ss.bound * 9 / 10
		for k := range s.m {
			if len(s.m) <= target {
				break
			}
			delete(s.m, k)
			s.evicted++
		}
	}
	s.sweepAt = min(max(2*len(s.m), minSweep), ss.bound)
}

// stats returns the occupancy of all shards.
func (ss *shards[V]) stats() Stats {
	var st Stats
	for i := range ss.s {
		s := &ss.s[i]
		s.mu.Lock()
		st.Keys += len(s.m)
		st.Evicted += s.evicted
		s.mu.Unlock()
	}
	return st
}
