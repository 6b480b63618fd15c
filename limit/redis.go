package limit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is the shared store: every replica pointed at the same Redis
// enforces one limit. Each check-and-consume is one Lua script run by the
// server (atomic: no read-modify-write race between replicas), and the
// clock is the server's (TIME), so replicas whose clocks differ still agree.
// Times are kept in microseconds, which Lua's doubles hold exactly.
//
// Redis implements Store (GCRA), BudgetStore, RepeatStore and the session
// revocation list. Keys are prefixed (default "gatewaystack:").
//
// Every charge — a rate-limit step, a budget spend or refund, a loop-guard
// record — is applied at most once, although the client sends a command
// again when its reply is lost (a read timeout, a dropped connection) and
// Redis may already have run it. Each call carries an id of its own (the
// process's random nonce and a counter); the script that charges also
// stores its outcome under that id for RedisOptions.ReplayWindow, and a
// script that finds the outcome stored returns it without charging again.
// The id's key is written in the same script, so a check stays one round
// trip, and it is tagged into the charged key's Redis Cluster hash slot, so
// a script still touches one slot and a Redis Cluster works too. Refusals
// and peeks charge nothing and are not stored: a retry decides them afresh.
// When every attempt fails the call returns an error (the caller applies
// its failure mode) even though the first attempt may have charged: a call
// is never charged twice, and never passed without a charge or an error.
type Redis struct {
	*redisConn
	prefix string
}

// redisConn is what the namespaced views of one Redis share.
type redisConn struct {
	client redis.UniversalClient
	nonce  string
	seq    atomic.Uint64
	// replayMS is how long (ms) an applied charge's outcome is kept for a
	// retry of the same call, as a script argument.
	replayMS any

	mu      sync.Mutex
	lastErr error
	errAt   time.Time
	okAt    time.Time
	errors  uint64
}

var (
	_ Store        = (*Redis)(nil)
	_ BudgetStore  = (*Redis)(nil)
	_ RepeatStore  = (*Redis)(nil)
	_ BudgetLister = (*Redis)(nil)
)

// RedisOptions configures a Redis store.
type RedisOptions struct {
	// URL is redis://[user:password@]host:port[/db] or rediss:// for TLS.
	URL string
	// Prefix namespaces the keys (default "gatewaystack:").
	Prefix string
	// Timeout bounds each command, dial included (default 250ms): a Redis
	// that does not answer costs a request at most this long.
	Timeout time.Duration
	// ReplayWindow is how long Redis keeps the outcome of each applied
	// charge, so that the client's retry of a call whose reply was lost is
	// answered with it instead of charging again (default: 20 × Timeout,
	// at least DefaultReplayWindow). A retry is sent within about three
	// Timeouts of the first attempt; one that reaches Redis after the
	// window (a connection stalled that long) charges again. Each charge
	// keeps one small key for this long.
	ReplayWindow time.Duration
}

// DefaultReplayWindow is the least RedisOptions.ReplayWindow, and the
// window of a store made by NewRedisClient.
const DefaultReplayWindow = 10 * time.Second

// NewRedis connects lazily to the Redis at o.URL (no command is sent; see
// Ping).
func NewRedis(o RedisOptions) (*Redis, error) {
	opt, err := redis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", redactURLError(err, o.URL))
	}
	if o.Timeout <= 0 {
		o.Timeout = 250 * time.Millisecond
	}
	if o.Prefix == "" {
		o.Prefix = "gatewaystack:"
	}
	opt.DialTimeout = o.Timeout
	opt.ReadTimeout = o.Timeout
	opt.WriteTimeout = o.Timeout
	opt.MaxRetries = 1
	opt.MinRetryBackoff = 5 * time.Millisecond
	opt.MaxRetryBackoff = 50 * time.Millisecond
	opt.PoolTimeout = o.Timeout
	// One dial attempt per command: a Redis that is down must cost a
	// request milliseconds, not go-redis's default five dials with backoff.
	opt.DialerRetries = 1
	opt.DialerRetryTimeout = 10 * time.Millisecond
	opt.DisableIdentity = true // no CLIENT SETINFO round trip per connection
	if o.ReplayWindow <= 0 {
		o.ReplayWindow = max(DefaultReplayWindow, 20*o.Timeout)
	}
	r := NewRedisClient(redis.NewClient(opt), o.Prefix)
	r.replayMS = max(o.ReplayWindow.Milliseconds(), 1)
	return r, nil
}

// NewRedisClient wraps an existing client (a cluster or sentinel client,
// say), keeping charges' outcomes for DefaultReplayWindow. Close closes it.
func NewRedisClient(c redis.UniversalClient, prefix string) *Redis {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Redis{redisConn: &redisConn{
		client:   c,
		nonce:    hex.EncodeToString(b[:]),
		replayMS: DefaultReplayWindow.Milliseconds(),
	}, prefix: prefix}
}

// Namespace returns a view of the same connection whose keys are further
// prefixed by ns, so that limits sharing one Redis never share a key (a
// tenant and a subject both named "acme", say).
func (r *Redis) Namespace(ns string) *Redis {
	return &Redis{redisConn: r.redisConn, prefix: r.prefix + ns}
}

// redactURLError keeps a password in the URL out of an error message.
func redactURLError(err error, url string) error {
	msg := err.Error()
	if i := strings.Index(url, "@"); i > 0 {
		msg = strings.ReplaceAll(msg, url[:i], "redis://…")
	}
	return errors.New(msg)
}

// Close closes the connections (of every Namespace view).
func (r *Redis) Close() error { return r.client.Close() }

// Ping checks that Redis answers.
func (r *Redis) Ping(ctx context.Context) error {
	return r.note(r.client.Ping(ctx).Err())
}

// RedisHealth is the store's recent state, for health endpoints.
type RedisHealth struct {
	// OK: the last command succeeded.
	OK bool
	// LastError is the last failure's text (no credentials), if any.
	LastError string
	// LastErrorAt and LastOKAt are when the last failure and success were.
	LastErrorAt, LastOKAt time.Time
	// Errors counts failed commands since start.
	Errors uint64
}

// Health reports the store's recent state.
func (r *Redis) Health() RedisHealth {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := RedisHealth{LastErrorAt: r.errAt, LastOKAt: r.okAt, Errors: r.errors}
	h.OK = r.lastErr == nil
	if r.lastErr != nil {
		h.LastError = r.lastErr.Error()
	}
	return h
}

// note records the outcome of one command and wraps a failure.
func (r *redisConn) note(err error) error {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil || errors.Is(err, redis.Nil) {
		r.lastErr, r.okAt = nil, now
		return nil
	}
	r.lastErr, r.errAt = err, now
	r.errors++
	return fmt.Errorf("redis: %w", err)
}

// replayPrelude opens every script that charges. KEYS[2] is the call's own
// key (see Redis): when it holds an outcome, this very call was applied
// before and its reply lost, so the outcome is returned and nothing is
// charged again. remember, which the script calls where it charges, stores
// the outcome there for ARGV[1] ms.
const replayPrelude = `
local seen = redis.call('GET', KEYS[2])
if seen then
  local out = {}
  for v in string.gmatch(seen, '[^,]+') do out[#out + 1] = tonumber(v) end
  return out
end
local function remember(r)
  local s = {}
  for i = 1, #r do s[i] = string.format('%.0f', r[i]) end
  redis.call('SET', KEYS[2], table.concat(s, ','), 'PX', ARGV[1])
  return r
end
`

// opKey returns the key that keeps the outcome of one new call charging
// key: "{tag}" (key's hash slot), the prefix, "op:" and the call's id, which
// is unique across calls and, through the random nonce, across processes.
// The id is the part after the last ':'.
func (r *Redis) opKey(key string) string {
	var num [16]byte
	var b strings.Builder
	b.Grow(8 + len(r.prefix) + len(r.nonce) + 16)
	b.WriteByte('{')
	b.Write(appendSlotTag(num[:0], key))
	b.WriteByte('}')
	b.WriteString(r.prefix)
	b.WriteString("op:")
	b.WriteString(r.nonce)
	b.Write(strconv.AppendUint(num[:0], r.seq.Add(1), 36))
	return b.String()
}

// run runs script (which opens with replayPrelude) for one new call
// charging key: KEYS are key and the call's opKey, ARGV the replay window
// (r.replayMS, which args starts with) and the rest of args. A retry of the
// command carries the same opKey, so Redis applies it once. The reply must
// hold want values.
func (r *Redis) run(ctx context.Context, script *redis.Script, what, key string, want int, args ...any) ([]int64, error) {
	keys := []string{key, r.opKey(key)}
	v, err := script.Run(ctx, r.client, keys, args...).Int64Slice()
	if err = r.note(err); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(v) != want {
		return nil, fmt.Errorf("%s: redis script returned %d values, want %d", what, len(v), want)
	}
	return v, nil
}

// gcraScript is Store.Apply: the package comment's steps 1–4 on the key's
// TAT (µs), which expires when the bucket is full again.
// ARGV: replay window ms, interval µs, capacity, cost. Returns {allowed,
// remaining, retry_after µs, reset_after µs}.
var gcraScript = redis.NewScript(replayPrelude + `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local tau = cap * interval
local tat = now
local v = redis.call('GET', KEYS[1])
if v then
  tat = tonumber(v)
  if tat < now then tat = now end
end
local probe = cost
if probe <= 0 then probe = 1 end
local newTAT = tat + probe * interval
local allowAt = newTAT - tau
if allowAt > now then
  local rem = math.floor((now - (tat - tau)) / interval)
  if rem < 0 then rem = 0 end
  return {0, rem, allowAt - now, tat - now}
end
if cost <= 0 then
  return {1, math.floor((now - (tat - tau)) / interval), 0, tat - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', newTAT), 'PX', math.ceil((newTAT - now) / 1000) + 1)
return remember({1, math.floor((now - allowAt) / interval), 0, newTAT - now})
`)

// Apply implements Store.
func (r *Redis) Apply(ctx context.Context, key string, rt Rate, cost int) (Result, error) {
	if err := rt.Validate(); err != nil {
		return Result{}, err
	}
	interval := max(int64(rt.Interval()/time.Microsecond), 1)
	v, err := r.run(ctx, gcraScript, "rate limit", r.prefix+"rate:"+key, 4, r.replayMS, interval, rt.Capacity(), cost)
	if err != nil {
		return Result{}, err
	}
	return Result{
		Allowed:    v[0] == 1,
		Limit:      rt.Capacity(),
		Remaining:  int(v[1]),
		RetryAfter: time.Duration(v[2]) * time.Microsecond,
		ResetAfter: time.Duration(v[3]) * time.Microsecond,
	}, nil
}

// budgetScript is BudgetStore.Spend and Refund on a hash {start, used}
// holding the current period's spending; a hash from an older period counts
// as empty. The key expires when its period ends.
// ARGV: replay window ms, period µs, units, cost, refund (0/1). Returns
// {allowed, used, reset_after µs}.
var budgetScript = redis.NewScript(replayPrelude + `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local period = tonumber(ARGV[2])
local units = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local refund = ARGV[5] == '1'
local start = now - (now % period)
local stop = start + period
local sstart = string.format('%.0f', start)
local used = 0
local cur = redis.call('HMGET', KEYS[1], 'start', 'used')
if cur[1] == sstart and cur[2] then used = tonumber(cur[2]) end
if refund then
  if cost > 0 and cur[1] == sstart then
    used = used - cost
    if used < 0 then used = 0 end
    redis.call('HSET', KEYS[1], 'used', string.format('%.0f', used))
    return remember({1, used, stop - now})
  end
  return {1, used, stop - now}
end
if cost > 0 and used + cost > units then
  return {0, used, stop - now}
end
if cost > 0 then
  used = used + cost
  redis.call('HSET', KEYS[1], 'start', sstart, 'used', string.format('%.0f', used))
  redis.call('PEXPIREAT', KEYS[1], string.format('%.0f', math.ceil(stop / 1000) + 1000))
  return remember({1, used, stop - now})
end
return {1, used, stop - now}
`)

func (r *Redis) budget(ctx context.Context, key string, b Budget, cost int64, refund bool) (BudgetResult, error) {
	if err := b.Validate(); err != nil {
		return BudgetResult{}, err
	}
	period := max(int64(b.Period/time.Microsecond), 1)
	rf := "0"
	if refund {
		rf = "1"
	}
	v, err := r.run(ctx, budgetScript, "budget", r.budgetKey(key, b), 3, r.replayMS, period, b.Units, cost, rf)
	if err != nil {
		return BudgetResult{}, err
	}
	return BudgetResult{
		Allowed:    v[0] == 1,
		Limit:      b.Units,
		Used:       v[1],
		Remaining:  max(b.Units-v[1], 0),
		ResetAfter: time.Duration(v[2]) * time.Microsecond,
	}, nil
}

// budgetKey embeds the period so that two budgets of different periods on
// the same key (a day and a month) never share a counter.
func (r *Redis) budgetKey(key string, b Budget) string {
	return r.prefix + "budget:" + strconv.FormatInt(int64(b.Period/time.Second), 10) + ":" + key
}

// Spend implements BudgetStore.
func (r *Redis) Spend(ctx context.Context, key string, b Budget, cost int64) (BudgetResult, error) {
	return r.budget(ctx, key, b, cost, false)
}

// Refund implements BudgetStore.
func (r *Redis) Refund(ctx context.Context, key string, b Budget, cost int64) error {
	_, err := r.budget(ctx, key, b, cost, true)
	return err
}

// ListUsage implements BudgetLister: it scans the budget's keys (SCAN, so
// Redis is never blocked) and reads each one's spending this period.
func (r *Redis) ListUsage(ctx context.Context, b Budget, maxKeys int) ([]Usage, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	base := r.budgetKey("", b)
	var out []Usage
	var cursor uint64
	for {
		keys, next, err := r.client.Scan(ctx, cursor, escapeGlob(base)+"*", 512).Result()
		if err = r.note(err); err != nil {
			return nil, err
		}
		for _, k := range keys {
			res, err := r.Spend(ctx, strings.TrimPrefix(k, base), b, 0)
			if err != nil {
				return nil, err
			}
			if res.Used > 0 {
				out = append(out, Usage{Key: strings.TrimPrefix(k, base), BudgetResult: res})
			}
			if maxKeys > 0 && len(out) >= maxKeys {
				return out, nil
			}
		}
		cursor = next
		if cursor == 0 {
			return out, nil
		}
	}
}

// escapeGlob escapes Redis glob metacharacters in s.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// repeatScript is RepeatStore.Record on a sorted set of call times (µs)
// trimmed to the window; each member is a call's time and id (the end of
// KEYS[2]), unique. ARGV: replay window ms, window µs, max. Returns
// {allowed, count, retry_after µs}.
var repeatScript = redis.NewScript(replayPrelude + `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local w = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - w))
local n = redis.call('ZCARD', KEYS[1])
if n >= max then
  local oldest = redis.call('ZRANGE', KEYS[1], n - max, n - max, 'WITHSCORES')
  return {0, n, tonumber(oldest[2]) + w - now}
end
redis.call('ZADD', KEYS[1], string.format('%.0f', now), string.format('%.0f', now) .. ':' .. string.match(KEYS[2], '[^:]*$'))
redis.call('PEXPIRE', KEYS[1], math.ceil(w / 1000) + 1)
return remember({1, n + 1, 0})
`)

// Record implements RepeatStore.
func (r *Redis) Record(ctx context.Context, key string, rp Repeat) (RepeatResult, error) {
	if err := rp.Validate(); err != nil {
		return RepeatResult{}, err
	}
	w := max(int64(rp.Window/time.Microsecond), 1)
	v, err := r.run(ctx, repeatScript, "loop guard", r.prefix+"repeat:"+key, 3, r.replayMS, w, rp.Max)
	if err != nil {
		return RepeatResult{}, err
	}
	return RepeatResult{Allowed: v[0] == 1, Count: int(v[1]), RetryAfter: time.Duration(v[2]) * time.Microsecond}, nil
}

// Revoke records id as revoked until until (a session ended by its
// client), for every replica.
func (r *Redis) Revoke(ctx context.Context, id string, until time.Time) error {
	ttl := time.Until(until)
	if ttl <= 0 {
		return nil
	}
	return r.note(r.client.Set(ctx, r.prefix+"revoked:"+id, "1", ttl).Err())
}

// Revoked reports whether id was revoked.
func (r *Redis) Revoked(ctx context.Context, id string) (bool, error) {
	n, err := r.client.Exists(ctx, r.prefix+"revoked:"+id).Result()
	if err = r.note(err); err != nil {
		return false, err
	}
	return n > 0, nil
}
