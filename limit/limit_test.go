package limit

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// fakeClock is the tests' own time source.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newLimiter(t testing.TB, r Rate, clk *fakeClock, maxKeys int) (*KeyedLimiter, *Memory) {
	t.Helper()
	m := NewMemory(MemoryOptions{MaxKeys: maxKeys, Now: clk.Now})
	l, err := New(r, m)
	if err != nil {
		t.Fatal(err)
	}
	return l, m
}

func allow(t testing.TB, l Limiter, key string, cost int) Result {
	t.Helper()
	res, err := l.Allow(context.Background(), key, cost)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// drain counts the requests allowed now, up to limit attempts.
func drain(t testing.TB, l Limiter, key string, limit int) int {
	t.Helper()
	n := 0
	for range limit {
		if allow(t, l, key, 1).Allowed {
			n++
		}
	}
	return n
}

func TestBurstThenSteadyRate(t *testing.T) {
	t.Parallel()
	clk := newClock()
	l, _ := newLimiter(t, Rate{Requests: 60, Window: time.Minute, Burst: 5}, clk, 0)
	if n := drain(t, l, "alice", 100); n != 5 {
		t.Fatalf("allowed %d at once, want the burst 5", n)
	}
	res := allow(t, l, "alice", 1)
	if res.Allowed || res.RetryAfter != time.Second || res.Remaining != 0 || res.Limit != 5 {
		t.Fatalf("after the burst: %+v, want refused, retry after 1s, 0 remaining, limit 5", res)
	}
	clk.Advance(999 * time.Millisecond)
	if allow(t, l, "alice", 1).Allowed {
		t.Fatal("allowed before one interval passed")
	}
	clk.Advance(time.Millisecond)
	if !allow(t, l, "alice", 1).Allowed {
		t.Fatal("refused after one interval")
	}
}

// Invariant: there is no window edge. A fixed-window counter lets a client
// spend a window's allowance just before the edge and again just after it
// (2N in a moment); GCRA allows at most burst + rate×elapsed over any span.
func TestNoDoubleBurstAcrossWindowEdge(t *testing.T) {
	t.Parallel()
	clk := newClock()
	const n = 10
	l, _ := newLimiter(t, Rate{Requests: n, Window: time.Minute}, clk, 0)
	clk.Advance(59 * time.Second) // just before a fixed window's edge
	first := drain(t, l, "k", 3*n)
	clk.Advance(2 * time.Second) // just after it
	second := drain(t, l, "k", 3*n)
	if first != n {
		t.Fatalf("first burst allowed %d, want %d", first, n)
	}
	// 2 s at 10/min refills 0.33 of a request: nothing.
	if second != 0 {
		t.Fatalf("after the edge allowed %d more, want 0 (a fixed window would allow %d)", second, n)
	}
	// Over a whole minute of steady pressure, exactly the refill is allowed.
	total := 0
	for range 60 {
		clk.Advance(time.Second)
		total += drain(t, l, "k", 3)
	}
	if total < n-1 || total > n+1 {
		t.Fatalf("allowed %d over the next minute, want the refill ≈%d", total, n)
	}
}

func TestKeysAreIsolated(t *testing.T) {
	t.Parallel()
	clk := newClock()
	l, _ := newLimiter(t, Rate{Requests: 3, Window: time.Minute}, clk, 0)
	if n := drain(t, l, "alice", 10); n != 3 {
		t.Fatalf("alice allowed %d, want 3", n)
	}
	if n := drain(t, l, "bob", 10); n != 3 {
		t.Fatalf("bob allowed %d after alice was limited, want 3", n)
	}
}

func TestCostZeroPeeksWithoutConsuming(t *testing.T) {
	t.Parallel()
	clk := newClock()
	l, _ := newLimiter(t, Rate{Requests: 2, Window: time.Minute}, clk, 0)
	for range 10 {
		if r := allow(t, l, "ip", 0); !r.Allowed || r.Remaining != 2 {
			t.Fatalf("peek on a full bucket: %+v", r)
		}
	}
	drain(t, l, "ip", 2)
	r := allow(t, l, "ip", 0)
	if r.Allowed || r.RetryAfter != 30*time.Second {
		t.Fatalf("peek on an empty bucket: %+v, want refused with retry 30s", r)
	}
}

func TestResultHeadersArithmetic(t *testing.T) {
	t.Parallel()
	clk := newClock()
	l, _ := newLimiter(t, Rate{Requests: 4, Window: 4 * time.Second, Burst: 4}, clk, 0)
	r := allow(t, l, "k", 1)
	if !r.Allowed || r.Remaining != 3 || r.ResetAfter != time.Second {
		t.Fatalf("first: %+v, want 3 remaining, full again in 1s", r)
	}
	r = allow(t, l, "k", 3)
	if !r.Allowed || r.Remaining != 0 || r.ResetAfter != 4*time.Second {
		t.Fatalf("cost 3: %+v, want 0 remaining, reset 4s", r)
	}
	if r = allow(t, l, "k", 5); r.Allowed {
		t.Fatalf("a cost above the burst can never conform: %+v", r)
	}
}

func TestBadRatesAreRefused(t *testing.T) {
	t.Parallel()
	for _, r := range []Rate{{}, {Requests: 1}, {Window: time.Second}, {Requests: 10, Window: 5}, {Requests: 1, Window: time.Second, Burst: -1}} {
		if _, err := New(r, NewMemory(MemoryOptions{})); err == nil {
			t.Errorf("New(%+v) accepted", r)
		}
	}
}

// Invariant: memory is bounded. Idle keys are swept as shards grow, and
// when every key is busy the store still never exceeds MaxKeys.
func TestMemoryIsBounded(t *testing.T) {
	t.Parallel()
	t.Run("idle keys are swept", func(t *testing.T) {
		t.Parallel()
		clk := newClock()
		l, m := newLimiter(t, Rate{Requests: 10, Window: time.Second}, clk, 1_000_000)
		for i := range 50_000 {
			allow(t, l, fmt.Sprintf("ip-%d", i), 1)
			if i%1000 == 999 {
				clk.Advance(2 * time.Second) // everything so far is idle
			}
		}
		if st := m.Stats(); st.Keys > 8_000 || st.Evicted != 0 {
			t.Fatalf("stats %+v: idle keys were not swept (or busy ones evicted)", st)
		}
	})
	t.Run("busy keys never exceed the bound", func(t *testing.T) {
		t.Parallel()
		clk := newClock()
		l, m := newLimiter(t, Rate{Requests: 1, Window: time.Hour}, clk, 3_200)
		for i := range 20_000 {
			allow(t, l, fmt.Sprintf("ip-%d", i), 1)
		}
		st := m.Stats()
		if st.Keys > 3_200 || st.Evicted == 0 {
			t.Fatalf("stats %+v: want at most 3200 keys and some evicted", st)
		}
	})
}

func TestConcurrentAllowNeverOvershoots(t *testing.T) {
	t.Parallel()
	clk := newClock()
	l, _ := newLimiter(t, Rate{Requests: 100, Window: time.Minute}, clk, 0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 8 {
		wg.Go(func() {
			n := 0
			for range 50 {
				if r, _ := l.Allow(context.Background(), "k", 1); r.Allowed {
					n++
				}
			}
			mu.Lock()
			allowed += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if allowed != 100 {
		t.Fatalf("400 concurrent attempts allowed %d, want exactly 100", allowed)
	}
}

func BenchmarkMemoryAllow(b *testing.B) {
	l, err := New(Rate{Requests: 1_000_000_000, Window: time.Hour}, NewMemory(MemoryOptions{}))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = l.Allow(ctx, "alice", 1)
	}
}
