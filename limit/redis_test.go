package limit_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatewaystack/gatewaystack/internal/redistest"
	"github.com/gatewaystack/gatewaystack/limit"
)

func newRedis(t testing.TB, url string) *limit.Redis {
	t.Helper()
	r, err := limit.NewRedis(limit.RedisOptions{URL: url, Prefix: fmt.Sprintf("test-%s:", t.Name())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func TestRedisGCRA(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	r := newRedis(t, srv.URL())
	rate := limit.Rate{Requests: 5, Window: time.Minute}
	peek, err := r.Apply(ctx, "alice", rate, 0)
	if err != nil || !peek.Allowed || peek.Remaining != 5 || peek.Limit != 5 {
		t.Fatalf("peek on a fresh key = %+v, %v; want allowed with 5 remaining", peek, err)
	}
	for i := range 5 {
		res, err := r.Apply(ctx, "alice", rate, 1)
		if err != nil || !res.Allowed || res.Remaining != 4-i {
			t.Fatalf("call %d = %+v, %v; want allowed with %d remaining", i+1, res, err, 4-i)
		}
	}
	res, err := r.Apply(ctx, "alice", rate, 1)
	if err != nil || res.Allowed {
		t.Fatalf("6th call = %+v, %v; want refused", res, err)
	}
	// One request refills every 12 s.
	if res.RetryAfter <= 11*time.Second || res.RetryAfter > 12*time.Second {
		t.Errorf("RetryAfter = %s, want about 12s", res.RetryAfter)
	}
	if res.ResetAfter <= 59*time.Second || res.ResetAfter > time.Minute {
		t.Errorf("ResetAfter = %s, want about 1m", res.ResetAfter)
	}
	// Another key, and the same key in another namespace, are untouched.
	if res, _ := r.Apply(ctx, "bob", rate, 1); !res.Allowed {
		t.Errorf("bob refused: %+v", res)
	}
	if res, _ := r.Namespace("other:").Apply(ctx, "alice", rate, 1); !res.Allowed {
		t.Errorf("alice in another namespace refused: %+v", res)
	}
	// A short window refills.
	fast := limit.Rate{Requests: 2, Window: 200 * time.Millisecond}
	for range 2 {
		if res, _ := r.Apply(ctx, "carol", fast, 1); !res.Allowed {
			t.Fatalf("carol refused within burst: %+v", res)
		}
	}
	res, _ = r.Apply(ctx, "carol", fast, 1)
	if res.Allowed {
		t.Fatal("carol's third call allowed")
	}
	time.Sleep(res.RetryAfter + 10*time.Millisecond)
	if res, _ := r.Apply(ctx, "carol", fast, 1); !res.Allowed {
		t.Errorf("carol still refused after RetryAfter: %+v", res)
	}
}

// Two clients (two replicas) hammering one key allow exactly the burst
// when the refill during the test is negligible.
func TestRedisGCRAConcurrentReplicas(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a, b := newRedis(t, srv.URL()), newRedis(t, srv.URL())
	rate := limit.Rate{Requests: 50, Window: time.Hour} // refills 1 per 72 s
	var allowed, refused atomic.Int64
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func(st *limit.Redis) {
			defer wg.Done()
			res, err := st.Apply(ctx, "shared", rate, 1)
			switch {
			case err != nil:
				t.Error(err)
			case res.Allowed:
				allowed.Add(1)
			default:
				refused.Add(1)
			}
		}([]*limit.Redis{a, b}[i%2])
	}
	wg.Wait()
	if allowed.Load() != 50 || refused.Load() != 150 {
		t.Errorf("allowed %d, refused %d; want 50 and 150", allowed.Load(), refused.Load())
	}
}

func TestRedisBudget(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	r := newRedis(t, srv.URL())
	day := limit.Budget{Units: 10, Period: 24 * time.Hour}
	month := limit.Budget{Units: 100, Period: 30 * 24 * time.Hour}
	for i, cost := range []int64{4, 4} {
		res, err := r.Spend(ctx, "acme", day, cost)
		if err != nil || !res.Allowed || res.Used != int64(4*(i+1)) || res.Remaining != 10-int64(4*(i+1)) {
			t.Fatalf("spend %d = %+v, %v", i, res, err)
		}
		if res.ResetAfter <= 0 || res.ResetAfter > 24*time.Hour {
			t.Errorf("ResetAfter = %s, want within a day", res.ResetAfter)
		}
	}
	res, err := r.Spend(ctx, "acme", day, 4)
	if err != nil || res.Allowed || res.Used != 8 || res.Remaining != 2 {
		t.Fatalf("overspend = %+v, %v; want refused with 8 used", res, err)
	}
	// The month budget on the same key is its own counter.
	if res, err := r.Spend(ctx, "acme", month, 4); err != nil || !res.Allowed || res.Used != 4 {
		t.Fatalf("month spend = %+v, %v", res, err)
	}
	if err := r.Refund(ctx, "acme", day, 4); err != nil {
		t.Fatal(err)
	}
	if res, _ := r.Spend(ctx, "acme", day, 0); res.Used != 4 {
		t.Errorf("after refund used = %d, want 4", res.Used)
	}
	// Refund never goes below zero.
	if err := r.Refund(ctx, "acme", day, 100); err != nil {
		t.Fatal(err)
	}
	if res, _ := r.Spend(ctx, "acme", day, 0); res.Used != 0 {
		t.Errorf("after big refund used = %d, want 0", res.Used)
	}
	if _, err := r.Spend(ctx, "globex*", day, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Spend(ctx, "initech", day, 1); err != nil {
		t.Fatal(err)
	}
	usage, err := r.ListUsage(ctx, day, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, u := range usage {
		got[u.Key] = u.Used
	}
	want := map[string]int64{"globex*": 3, "initech": 1} // acme is back to 0
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ListUsage = %v, want %v", got, want)
	}
}

func TestRedisBudgetConcurrentReplicas(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a, b := newRedis(t, srv.URL()), newRedis(t, srv.URL())
	budget := limit.Budget{Units: 30, Period: time.Hour}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Add(1)
		go func(st *limit.Redis) {
			defer wg.Done()
			res, err := st.Spend(ctx, "acme", budget, 1)
			if err != nil {
				t.Error(err)
			} else if res.Allowed {
				allowed.Add(1)
			}
		}([]*limit.Redis{a, b}[i%2])
	}
	wg.Wait()
	if allowed.Load() != 30 {
		t.Errorf("allowed %d spends of a 30-unit budget", allowed.Load())
	}
}

func TestRedisRepeat(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	r := newRedis(t, srv.URL())
	rule := limit.Repeat{Max: 3, Window: 300 * time.Millisecond}
	for i := range 3 {
		res, err := r.Record(ctx, "alice|search|h", rule)
		if err != nil || !res.Allowed || res.Count != i+1 {
			t.Fatalf("call %d = %+v, %v", i+1, res, err)
		}
	}
	res, err := r.Record(ctx, "alice|search|h", rule)
	if err != nil || res.Allowed || res.Count != 3 {
		t.Fatalf("4th call = %+v, %v; want refused", res, err)
	}
	if res.RetryAfter <= 0 || res.RetryAfter > 300*time.Millisecond {
		t.Errorf("RetryAfter = %s", res.RetryAfter)
	}
	if res, _ := r.Record(ctx, "alice|search|other", rule); !res.Allowed {
		t.Error("other arguments refused")
	}
	time.Sleep(res.RetryAfter + 20*time.Millisecond)
	if res, _ := r.Record(ctx, "alice|search|h", rule); !res.Allowed {
		t.Errorf("still refused after RetryAfter: %+v", res)
	}
}

func TestRedisRevocation(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	a, b := newRedis(t, srv.URL()), newRedis(t, srv.URL())
	if err := a.Revoke(ctx, "sess-1", time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.Revoked(ctx, "sess-1"); err != nil || !ok {
		t.Errorf("the other replica sees sess-1 revoked = %v, %v", ok, err)
	}
	if ok, err := b.Revoked(ctx, "sess-2"); err != nil || ok {
		t.Errorf("sess-2 revoked = %v, %v", ok, err)
	}
}

// A Redis that goes away fails fast with an error (the caller applies its
// failure mode), is reported in Health, and is used again once it is back.
func TestRedisDownAndBack(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	r := newRedis(t, srv.URL())
	rate := limit.Rate{Requests: 100, Window: time.Minute}
	if _, err := r.Apply(ctx, "k", rate, 1); err != nil {
		t.Fatal(err)
	}
	if h := r.Health(); !h.OK || h.LastOKAt.IsZero() {
		t.Errorf("health = %+v, want OK", h)
	}
	srv.Stop()
	start := time.Now()
	_, err := r.Apply(ctx, "k", rate, 1)
	if err == nil {
		t.Fatal("no error with Redis down")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("failing took %s; want well under 2s", d)
	}
	if h := r.Health(); h.OK || h.LastError == "" || h.Errors == 0 {
		t.Errorf("health = %+v, want not OK with an error", h)
	}
	srv.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err = r.Apply(ctx, "k", rate, 1)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("still failing after Redis came back: %v", err)
	}
	if h := r.Health(); !h.OK {
		t.Errorf("health = %+v after recovery", h)
	}
}

func TestRedisURLErrors(t *testing.T) {
	_, err := limit.NewRedis(limit.RedisOptions{URL: "http://user:s3cret@host"})
	if err == nil {
		t.Fatal("no error for an http URL")
	}
	if got := err.Error(); contains(got, "s3cret") {
		t.Errorf("error leaks the password: %s", got)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func BenchmarkRedisApply(b *testing.B) {
	srv := redistest.Start(b)
	r := newRedis(b, srv.URL())
	ctx := context.Background()
	rate := limit.Rate{Requests: 1_000_000_000, Window: time.Hour}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := r.Apply(ctx, "bench", rate, 1); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRedisApplyParallel(b *testing.B) {
	srv := redistest.Start(b)
	r := newRedis(b, srv.URL())
	ctx := context.Background()
	rate := limit.Rate{Requests: 1_000_000_000, Window: time.Hour}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.Apply(ctx, "bench", rate, 1); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
