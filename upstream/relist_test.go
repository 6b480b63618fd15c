package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// listCounter is an upstream connection that lists nothing (or fails every
// call when down) and counts the calls of each method.
type listCounter struct {
	name string

	mu    sync.Mutex
	down  bool
	calls map[string]int
}

func newListCounter(name string, down bool) *listCounter {
	return &listCounter{name: name, down: down, calls: map[string]int{}}
}

func (c *listCounter) Name() string { return c.name }
func (c *listCounter) Close() error { return nil }

func (c *listCounter) Call(_ context.Context, method string, _ json.RawMessage) (Response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls[method]++
	if c.down {
		return Response{}, fmt.Errorf("upstream %s: dial: connection refused: %w", c.name, ErrTimeout)
	}
	switch method {
	case "tools/list":
		return Response{Result: json.RawMessage(`{"tools":[]}`)}, nil
	case "resources/list":
		return Response{Result: json.RawMessage(`{"resources":[]}`)}, nil
	case "resources/templates/list":
		return Response{Result: json.RawMessage(`{"resourceTemplates":[]}`)}, nil
	}
	return Response{Result: json.RawMessage(`{}`)}, nil
}

func (c *listCounter) count(method string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[method]
}

func (c *listCounter) setDown(down bool) {
	c.mu.Lock()
	c.down = down
	c.mu.Unlock()
}

// testClock is a settable clock for the router.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) set(d time.Duration, start time.Time) {
	c.mu.Lock()
	c.now = start.Add(d)
	c.mu.Unlock()
}

func relistRouter(t *testing.T) (*Router, *listCounter, *listCounter, *testClock, time.Time) {
	t.Helper()
	good, bad := newListCounter("good", false), newListCounter("bad", true)
	r := NewRouter([]Upstream{{Caller: good, Prefixed: true}, {Caller: bad, Prefixed: true}})
	start := time.Unix(1_800_000_000, 0)
	clock := &testClock{now: start}
	r.now = clock.Now
	return r, good, bad, clock, start
}

// Invariant: made-up names cost at most one listing of each upstream per
// CatalogRefreshInterval, each upstream on its own schedule: an upstream
// that is down neither makes the healthy one list again on every lookup nor
// is asked on every lookup itself.
func TestRelistingIsThrottledPerUpstream(t *testing.T) {
	t.Parallel()
	r, good, bad, clock, start := relistRouter(t)
	ctx := context.Background()
	for i := range 20 {
		clock.set(time.Duration(i)*200*time.Millisecond, start) // 0 to 3.8 s
		_, err := r.ResolveResource(ctx, fmt.Sprintf("lib://made-up/%d", i))
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("lookup %d: %v, want the down upstream's failure", i, err)
		}
		_, _, err = r.ResolvePrompt(ctx, fmt.Sprintf("good__made_up_%d", i))
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("prompt lookup %d: %v, want the down upstream's failure", i, err)
		}
		_, _, err = r.Resolve(ctx, fmt.Sprintf("bad__made_up_%d", i))
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("tool lookup %d: %v, want the down upstream reported as down", i, err)
		}
	}
	for _, m := range []string{"resources/list", "resources/templates/list", "prompts/list"} {
		if n := good.count(m); n != 1 {
			t.Errorf("the healthy upstream got %d %s, want 1", n, m)
		}
		if n := bad.count(m); n != 1 {
			t.Errorf("the down upstream got %d %s, want 1", n, m)
		}
	}
	if n := bad.count("tools/list"); n != 1 {
		t.Errorf("the down upstream got %d tools/list, want 1", n)
	}

	clock.set(CatalogRefreshInterval+time.Second, start)
	if _, err := r.ResolveResource(ctx, "lib://made-up/later"); !errors.Is(err, ErrTimeout) {
		t.Fatalf("later lookup: %v", err)
	}
	if n, m := good.count("resources/list"), bad.count("resources/list"); n != 2 || m != 2 {
		t.Errorf("after the interval: healthy listed %d times, down %d; want 2 each", n, m)
	}
}

// Invariant: an upstream whose listings keep failing is listed again after
// a wait that doubles from CatalogRefreshInterval up to CatalogRetryMax, and
// at once after it announces a list change; meanwhile lookups report its
// last failure.
func TestFailedListingsBackOff(t *testing.T) {
	t.Parallel()
	r, _, bad, clock, start := relistRouter(t)
	ctx := context.Background()
	lookup := func(at time.Duration) {
		t.Helper()
		clock.set(at, start)
		if _, _, err := r.Resolve(ctx, "bad__made_up"); !errors.Is(err, ErrTimeout) {
			t.Fatalf("at %s: %v, want the last failure", at, err)
		}
	}
	s := time.Second
	// Attempts end at 0, 5, 15, 35, 75, 135, 195 s: waits 5, 10, 20, 40, 60, 60.
	steps := []struct {
		at   time.Duration
		want int
	}{
		{0, 1}, {4 * s, 1}, {5 * s, 2}, {14 * s, 2}, {15 * s, 3}, {34 * s, 3}, {35 * s, 4},
		{74 * s, 4}, {75 * s, 5}, {134 * s, 5}, {135 * s, 6}, {194 * s, 6}, {195 * s, 7},
	}
	for _, st := range steps {
		lookup(st.at)
		if n := bad.count("tools/list"); n != st.want {
			t.Fatalf("at %s: %d tools/list, want %d", st.at, n, st.want)
		}
	}

	// It comes back and says so: listed again at once, then throttled.
	bad.setDown(false)
	r.invalidate("bad", "notifications/tools/list_changed")
	clock.set(196*s, start)
	if _, _, err := r.Resolve(ctx, "bad__made_up"); !errors.Is(err, ErrUnknownTool) {
		t.Fatalf("after the upstream came back: %v, want ErrUnknownTool", err)
	}
	if n := bad.count("tools/list"); n != 8 {
		t.Fatalf("%d tools/list after the list change, want 8", n)
	}
}

// An upstream that failed to list but has answered another call since is
// listed again after CatalogRefreshInterval, without the longer backoff.
func TestFailedListingIsRetriedOnceTheUpstreamAnswers(t *testing.T) {
	t.Parallel()
	r, _, bad, clock, start := relistRouter(t)
	ctx := context.Background()
	for _, at := range []time.Duration{0, 5 * time.Second} { // two failures: the next wait is 10 s
		clock.set(at, start)
		_, _, _ = r.Resolve(ctx, "bad__made_up")
	}
	bad.setDown(false)
	u := r.byName["bad"]
	u.state.mu.Lock()
	u.state.reachable, u.state.lastOK = true, start.Add(6*time.Second)
	u.state.mu.Unlock()
	clock.set(5*time.Second+CatalogRefreshInterval, start)
	if _, _, err := r.Resolve(ctx, "bad__made_up"); !errors.Is(err, ErrUnknownTool) {
		t.Fatalf("%v, want ErrUnknownTool from a fresh listing", err)
	}
	if n := bad.count("tools/list"); n != 3 {
		t.Fatalf("%d tools/list, want 3", n)
	}
}
