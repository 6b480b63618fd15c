package limit

import (
	"context"
	"errors"
	"time"
)

// ErrBadBudget reports a Budget that cannot be enforced.
var ErrBadBudget = errors.New("limit: invalid budget")

// Budget is Units to spend per Period. Periods are fixed windows aligned to
// multiples of Period since the Unix epoch (UTC): a 24h budget resets at
// 00:00 UTC, whatever time it was first spent. Unlike a rate, a budget is a
// quota: spending it all at the end of one period and again at the start of
// the next is allowed by design.
type Budget struct {
	Units  int64
	Period time.Duration
}

// Validate reports a Budget that cannot be enforced.
func (b Budget) Validate() error {
	if b.Units <= 0 || b.Period <= 0 {
		return ErrBadBudget
	}
	return nil
}

// window returns the start of the period holding now and when it ends, in
// nanoseconds since the epoch.
func (b Budget) window(now int64) (start, end int64) {
	p := int64(b.Period)
	start = now - now%p
	if now < 0 && now%p != 0 {
		start -= p
	}
	return start, start + p
}

// BudgetResult is the outcome of one Spend.
type BudgetResult struct {
	// Allowed: the cost fit and was charged.
	Allowed bool
	// Limit is the budget's units per period.
	Limit int64
	// Used is what the current period has spent (after the charge, when
	// allowed).
	Used int64
	// Remaining is Limit − Used.
	Remaining int64
	// ResetAfter is how long until the period ends and the budget is full.
	ResetAfter time.Duration
}

// BudgetStore keeps what each key has spent in the current period. Spend
// charges cost when it fits (Used + cost ≤ Units) and otherwise charges
// nothing, atomically per key; Refund gives back a charge made in the same
// period (a call that one budget allowed and another refused). A shared
// store (Redis) implements both as one server-side script on a key that
// embeds the period start and expires at its end.
type BudgetStore interface {
	Spend(ctx context.Context, key string, b Budget, cost int64) (BudgetResult, error)
	Refund(ctx context.Context, key string, b Budget, cost int64) error
}

// BudgetMemoryOptions configures a BudgetMemory store.
type BudgetMemoryOptions struct {
	// MaxKeys bounds the keys held (default DefaultMaxKeys). Keys of past
	// periods are dropped first; at the bound, arbitrary keys are dropped,
	// which forgives what they had spent.
	MaxKeys int
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// BudgetMemory is the embedded BudgetStore (per replica).
type BudgetMemory struct {
	now    func() time.Time
	shards shards[spent]
}

type spent struct {
	start, end int64 // the period
	used       int64
}

var _ BudgetStore = (*BudgetMemory)(nil)

// NewBudgetMemory returns an empty in-memory budget store.
func NewBudgetMemory(o BudgetMemoryOptions) *BudgetMemory {
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &BudgetMemory{now: o.Now}
	m.shards.init(o.MaxKeys)
	return m
}

// Spend implements BudgetStore. A cost ≤ 0 reports the state without
// charging (and is always allowed).
func (m *BudgetMemory) Spend(_ context.Context, key string, b Budget, cost int64) (BudgetResult, error) {
	if err := b.Validate(); err != nil {
		return BudgetResult{}, err
	}
	now := m.now().UnixNano()
	start, end := b.window(now)
	s := m.shards.of(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, held := s.m[key]
	if !held || cur.start != start {
		cur = spent{start: start, end: end}
	}
	res := BudgetResult{Limit: b.Units, Used: cur.used, ResetAfter: time.Duration(end - now)}
	if cost > 0 && cur.used+cost > b.Units {
		res.Remaining = max(b.Units-cur.used, 0)
		return res, nil
	}
	res.Allowed = true
	if cost > 0 {
		cur.used += cost
		if !held {
			// Keys of past periods go first.
			m.shards.makeRoom(s, func(v spent) bool { return v.end <= now })
		}
		s.m[key] = cur
	}
	res.Used = cur.used
	res.Remaining = max(b.Units-cur.used, 0)
	return res, nil
}

// Refund implements BudgetStore.
func (m *BudgetMemory) Refund(_ context.Context, key string, b Budget, cost int64) error {
	if err := b.Validate(); err != nil {
		return err
	}
	start, _ := b.window(m.now().UnixNano())
	s := m.shards.of(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.m[key]; ok && cur.start == start && cost > 0 {
		cur.used = max(cur.used-cost, 0)
		s.m[key] = cur
	}
	return nil
}

// Stats returns the store's occupancy.
func (m *BudgetMemory) Stats() Stats { return m.shards.stats() }

// Usage is one key's spending in the current period.
type Usage struct {
	// Key is the tenant or subject.
	Key string
	BudgetResult
}

// BudgetLister is a BudgetStore that can list who has spent what in the
// current period (for the admin usage endpoint).
type BudgetLister interface {
	// ListUsage returns up to maxKeys keys (0: all) that have spent
	// something of b in the current period, in no particular order.
	ListUsage(ctx context.Context, b Budget, maxKeys int) ([]Usage, error)
}

var _ BudgetLister = (*BudgetMemory)(nil)

// ListUsage implements BudgetLister.
func (m *BudgetMemory) ListUsage(_ context.Context, b Budget, maxKeys int) ([]Usage, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	now := m.now().UnixNano()
	start, end := b.window(now)
	var out []Usage
	for i := range m.shards.s {
		s := &m.shards.s[i]
		s.mu.Lock()
		for k, v := range s.m {
			if v.start != start || v.used == 0 {
				continue
			}
			out = append(out, Usage{Key: k, BudgetResult: BudgetResult{
				Allowed: v.used < b.Units, Limit: b.Units, Used: v.used,
				Remaining: max(b.Units-v.used, 0), ResetAfter: time.Duration(end - now),
			}})
			if maxKeys > 0 && len(out) >= maxKeys {
				s.mu.Unlock()
				return out, nil
			}
		}
		s.mu.Unlock()
	}
	return out, nil
}
