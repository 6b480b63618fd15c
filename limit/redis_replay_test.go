package limit_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatewaystack/gatewaystack/internal/redistest"
	"github.com/gatewaystack/gatewaystack/limit"
	"github.com/redis/go-redis/v9"
)

// newRedisAt returns a store on url with the given key prefix and a short
// command timeout, so that a withheld reply times out quickly.
func newRedisAt(t testing.TB, url, prefix string) *limit.Redis {
	t.Helper()
	r, err := limit.NewRedis(limit.RedisOptions{URL: url, Prefix: prefix, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// Invariant: a charge whose reply is lost after Redis applied it — the
// connection drops, or the read times out — and which the client therefore
// sends again is applied once, and the retry reports the first outcome. A
// rate-limit step, a budget spend, a budget refund and a loop-guard record
// are each checked through a proxy that loses exactly that reply; the state
// is then read on a direct connection.
func TestRedisRetriedChargeAppliesOnce(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	rate := limit.Rate{Requests: 5, Window: time.Hour}
	day := limit.Budget{Units: 10, Period: 24 * time.Hour}
	rule := limit.Repeat{Max: 3, Window: time.Hour}
	ops := []struct {
		name string
		// prepare runs on the direct connection before the proxy is armed.
		prepare func(t *testing.T, direct *limit.Redis)
		// lossy is the call whose reply is lost once.
		lossy func(t *testing.T, via *limit.Redis)
		// check reads the state on the direct connection.
		check func(t *testing.T, direct *limit.Redis)
	}{
		{
			name: "rate limit step",
			lossy: func(t *testing.T, via *limit.Redis) {
				res, err := via.Apply(ctx, "alice", rate, 1)
				if err != nil || !res.Allowed || res.Remaining != 4 {
					t.Errorf("Apply through the lossy proxy = %+v, %v; want allowed with 4 of 5 remaining", res, err)
				}
			},
			check: func(t *testing.T, direct *limit.Redis) {
				if res, err := direct.Apply(ctx, "alice", rate, 0); err != nil || res.Remaining != 4 {
					t.Errorf("remaining after one charged request = %d, %v; want 4 (charged once)", res.Remaining, err)
				}
			},
		},
		{
			name: "budget spend",
			lossy: func(t *testing.T, via *limit.Redis) {
				res, err := via.Spend(ctx, "acme", day, 3)
				if err != nil || !res.Allowed || res.Used != 3 {
					t.Errorf("Spend through the lossy proxy = %+v, %v; want allowed with 3 used", res, err)
				}
			},
			check: func(t *testing.T, direct *limit.Redis) {
				if res, err := direct.Spend(ctx, "acme", day, 0); err != nil || res.Used != 3 {
					t.Errorf("used after one spend of 3 = %d, %v; want 3 (charged once)", res.Used, err)
				}
			},
		},
		{
			name: "budget refund",
			prepare: func(t *testing.T, direct *limit.Redis) {
				if res, err := direct.Spend(ctx, "acme", day, 5); err != nil || res.Used != 5 {
					t.Fatalf("spend 5 = %+v, %v", res, err)
				}
			},
			lossy: func(t *testing.T, via *limit.Redis) {
				if err := via.Refund(ctx, "acme", day, 2); err != nil {
					t.Errorf("Refund through the lossy proxy: %v", err)
				}
			},
			check: func(t *testing.T, direct *limit.Redis) {
				if res, err := direct.Spend(ctx, "acme", day, 0); err != nil || res.Used != 3 {
					t.Errorf("used after spending 5 and refunding 2 = %d, %v; want 3 (refunded once)", res.Used, err)
				}
			},
		},
		{
			name: "loop guard record",
			lossy: func(t *testing.T, via *limit.Redis) {
				res, err := via.Record(ctx, "alice|search|h", rule)
				if err != nil || !res.Allowed || res.Count != 1 {
					t.Errorf("Record through the lossy proxy = %+v, %v; want allowed as the 1st call", res, err)
				}
			},
			check: func(t *testing.T, direct *limit.Redis) {
				if res, err := direct.Record(ctx, "alice|search|h", rule); err != nil || !res.Allowed || res.Count != 2 {
					t.Errorf("next call = %+v, %v; want allowed as the 2nd call (the first recorded once)", res, err)
				}
			},
		},
	}
	for _, op := range ops {
		for _, mode := range []redistest.LoseMode{redistest.CloseConnection, redistest.WithholdReply} {
			t.Run(fmt.Sprintf("%s, %s", op.name, mode), func(t *testing.T) {
				t.Parallel()
				prefix := fmt.Sprintf("test-%s:", t.Name())
				proxy := redistest.StartProxy(t, srv.Addr())
				direct := newRedisAt(t, srv.URL(), prefix)
				via := newRedisAt(t, proxy.URL(), prefix)
				if op.prepare != nil {
					op.prepare(t, direct)
				}
				proxy.LoseNextScriptReply(mode)
				op.lossy(t, via)
				if proxy.Lost() != 1 || proxy.Scripts() < 2 {
					t.Fatalf("the proxy lost %d replies of %d script calls; want 1 lost and the call retried", proxy.Lost(), proxy.Scripts())
				}
				op.check(t, direct)
			})
		}
	}
}

// Invariant: remembering outcomes never mixes up calls: concurrent charges
// on one key, one of which loses its reply, are each applied exactly once.
func TestRedisConcurrentChargesWithALostReplyApplyOnceEach(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	proxy := redistest.StartProxy(t, srv.Addr())
	direct := newRedisAt(t, srv.URL(), "test-concurrent:")
	via := newRedisAt(t, proxy.URL(), "test-concurrent:")
	day := limit.Budget{Units: 1000, Period: 24 * time.Hour}
	if _, err := direct.Spend(ctx, "acme", day, 0); err != nil { // scripts loaded
		t.Fatal(err)
	}
	proxy.LoseNextScriptReply(redistest.CloseConnection)
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			if res, err := via.Spend(ctx, "acme", day, 1); err != nil || !res.Allowed {
				t.Errorf("spend = %+v, %v", res, err)
			}
		})
	}
	wg.Wait()
	if proxy.Lost() != 1 {
		t.Fatalf("the proxy lost %d replies; want 1", proxy.Lost())
	}
	if res, err := direct.Spend(ctx, "acme", day, 0); err != nil || res.Used != 40 {
		t.Errorf("used after 40 spends of 1 = %d, %v; want 40", res.Used, err)
	}
}

// Invariant: every script touches keys of one hash slot only, so the store
// works on a Redis Cluster whatever the keys look like (braces included).
func TestRedisClusterKeysShareASlot(t *testing.T) {
	t.Parallel()
	srv := redistest.StartCluster(t)
	ctx := context.Background()
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{srv.Addr()}, DisableIdentity: true})
	r := limit.NewRedisClient(c, "gs:")
	t.Cleanup(func() { _ = r.Close() })
	rate := limit.Rate{Requests: 5, Window: time.Hour}
	day := limit.Budget{Units: 10, Period: 24 * time.Hour}
	rule := limit.Repeat{Max: 3, Window: time.Hour}
	for _, key := range []string{"alice", "{acme}", "a{b}c", "a}b", "{}x}", "x{", "{", "}", "{}", "ü{é}"} {
		for _, st := range []*limit.Redis{r, r.Namespace("{tenant}:"), r.Namespace("t}{")} {
			if res, err := st.Apply(ctx, key, rate, 1); err != nil || !res.Allowed {
				t.Errorf("Apply(%q) = %+v, %v", key, res, err)
			}
			if res, err := st.Spend(ctx, key, day, 2); err != nil || !res.Allowed {
				t.Errorf("Spend(%q) = %+v, %v", key, res, err)
			}
			if err := st.Refund(ctx, key, day, 1); err != nil {
				t.Errorf("Refund(%q): %v", key, err)
			}
			if res, err := st.Record(ctx, key, rule); err != nil || !res.Allowed {
				t.Errorf("Record(%q) = %+v, %v", key, res, err)
			}
		}
	}
}

// Invariant: remembering an outcome costs no round trip: each check is one
// command to Redis.
func TestRedisCheckIsOneRoundTrip(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	proxy := redistest.StartProxy(t, srv.Addr())
	r := newRedisAt(t, proxy.URL(), "test-round-trips:")
	rate := limit.Rate{Requests: 1000, Window: time.Hour}
	day := limit.Budget{Units: 1000, Period: 24 * time.Hour}
	rule := limit.Repeat{Max: 1000, Window: time.Hour}
	checks := func() {
		for _, err := range []error{
			func() error { _, err := r.Apply(ctx, "alice", rate, 1); return err }(),
			func() error { _, err := r.Spend(ctx, "acme", day, 2); return err }(),
			r.Refund(ctx, "acme", day, 1),
			func() error { _, err := r.Record(ctx, "alice|search|h", rule); return err }(),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	checks() // connects and loads the scripts
	before := proxy.Commands()
	for range 10 {
		checks()
	}
	if n := proxy.Commands() - before; n != 40 {
		t.Errorf("40 checks sent %d commands; want 40", n)
	}
}

// Invariant: an applied charge's outcome is kept for the replay window and
// then expires; a refusal or a peek charges nothing and keeps nothing.
func TestRedisOutcomeKeptForTheReplayWindow(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	window := 3 * time.Second
	r, err := limit.NewRedis(limit.RedisOptions{URL: srv.URL(), Prefix: "test-window:", ReplayWindow: window})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr(), DisableIdentity: true})
	t.Cleanup(func() { _ = raw.Close() })
	kept := func() []string {
		t.Helper()
		keys, err := raw.Keys(ctx, "*test-window:op:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		return keys
	}
	rate := limit.Rate{Requests: 1, Window: time.Hour}
	if res, err := r.Apply(ctx, "alice", rate, 1); err != nil || !res.Allowed {
		t.Fatalf("Apply = %+v, %v", res, err)
	}
	keys := kept()
	if len(keys) != 1 {
		t.Fatalf("outcomes kept after one charge: %q; want 1", keys)
	}
	if ttl, err := raw.PTTL(ctx, keys[0]).Result(); err != nil || ttl <= window-time.Second || ttl > window {
		t.Errorf("the outcome expires in %s, %v; want the replay window, %s", ttl, err, window)
	}
	if res, err := r.Apply(ctx, "alice", rate, 1); err != nil || res.Allowed {
		t.Fatalf("second Apply = %+v, %v; want refused", res, err)
	}
	if _, err := r.Apply(ctx, "alice", rate, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Spend(ctx, "acme", limit.Budget{Units: 1, Period: time.Hour}, 0); err != nil {
		t.Fatal(err)
	}
	if keys := kept(); len(keys) != 1 {
		t.Errorf("outcomes kept after a refusal and peeks: %q; want only the charge's", keys)
	}
}

func BenchmarkRedisSpend(b *testing.B) {
	srv := redistest.Start(b)
	r := newRedis(b, srv.URL())
	ctx := context.Background()
	budget := limit.Budget{Units: 1 << 60, Period: time.Hour}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Spend(ctx, "bench", budget, 1); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRedisRecord(b *testing.B) {
	srv := redistest.Start(b)
	r := newRedis(b, srv.URL())
	ctx := context.Background()
	rule := limit.Repeat{Max: 100, Window: time.Millisecond}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Record(ctx, "bench", rule); err != nil {
			b.Fatal(err)
		}
	}
}
