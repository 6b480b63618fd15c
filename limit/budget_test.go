package limit

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func spend(t testing.TB, s BudgetStore, key string, b Budget, cost int64) BudgetResult {
	t.Helper()
	res, err := s.Spend(context.Background(), key, b, cost)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// Invariant: a budget is a fixed window aligned to the period (the fake
// clock starts 1h46m40s before a UTC day boundary).
func TestBudgetExhaustsAndResetsAtThePeriodBoundary(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := NewBudgetMemory(BudgetMemoryOptions{Now: clk.Now})
	b := Budget{Units: 10, Period: 24 * time.Hour}
	toMidnight := 24*time.Hour - time.Duration(clk.Now().Unix()%86400)*time.Second
	for i := range 3 {
		if r := spend(t, s, "acme", b, 3); !r.Allowed || r.Used != int64(3*(i+1)) || r.Remaining != int64(10-3*(i+1)) {
			t.Fatalf("spend %d: %+v", i, r)
		}
	}
	r := spend(t, s, "acme", b, 3)
	if r.Allowed || r.Remaining != 1 || r.Used != 9 || r.ResetAfter != toMidnight {
		t.Fatalf("over budget: %+v, want refused with 1 remaining, reset in %s", r, toMidnight)
	}
	if r := spend(t, s, "acme", b, 1); !r.Allowed || r.Remaining != 0 {
		t.Fatalf("the last unit: %+v", r)
	}
	if r := spend(t, s, "acme", b, 1); r.Allowed {
		t.Fatalf("spent budget allowed: %+v", r)
	}
	if r := spend(t, s, "globex", b, 10); !r.Allowed {
		t.Fatalf("another key is not affected: %+v", r)
	}
	// A fixed window: one nanosecond before the boundary it is still spent,
	// at the boundary it is full again, whenever it was first spent.
	clk.Advance(toMidnight - time.Nanosecond)
	if r := spend(t, s, "acme", b, 1); r.Allowed || r.ResetAfter != time.Nanosecond {
		t.Fatalf("just before the boundary: %+v", r)
	}
	clk.Advance(time.Nanosecond)
	if r := spend(t, s, "acme", b, 10); !r.Allowed || r.Remaining != 0 || r.ResetAfter != 24*time.Hour {
		t.Fatalf("after the boundary: %+v, want the whole budget and a full day to reset", r)
	}
}

func TestBudgetRefundAndPeek(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := NewBudgetMemory(BudgetMemoryOptions{Now: clk.Now})
	b := Budget{Units: 5, Period: time.Hour}
	spend(t, s, "k", b, 4)
	if err := s.Refund(context.Background(), "k", b, 3); err != nil {
		t.Fatal(err)
	}
	if r := spend(t, s, "k", b, 0); !r.Allowed || r.Used != 1 || r.Remaining != 4 {
		t.Fatalf("peek after refund: %+v", r)
	}
	// A refund never goes below zero, and never reaches into a new period.
	_ = s.Refund(context.Background(), "k", b, 100)
	if r := spend(t, s, "k", b, 5); !r.Allowed {
		t.Fatalf("after an oversized refund: %+v", r)
	}
	clk.Advance(time.Hour)
	_ = s.Refund(context.Background(), "k", b, 5)
	if r := spend(t, s, "k", b, 6); r.Allowed {
		t.Fatalf("a refund from the last period created units: %+v", r)
	}
}

func TestBadBudgetsAreRefused(t *testing.T) {
	t.Parallel()
	s := NewBudgetMemory(BudgetMemoryOptions{})
	for _, b := range []Budget{{}, {Units: 1}, {Period: time.Hour}, {Units: -1, Period: time.Hour}} {
		if _, err := s.Spend(context.Background(), "k", b, 1); err == nil {
			t.Errorf("Spend with %+v accepted", b)
		}
	}
}

func TestBudgetMemoryIsBounded(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := NewBudgetMemory(BudgetMemoryOptions{MaxKeys: 3_200, Now: clk.Now})
	b := Budget{Units: 10, Period: time.Minute}
	for i := range 20_000 {
		spend(t, s, fmt.Sprintf("k-%d", i), b, 1)
		if i%1000 == 999 {
			clk.Advance(time.Minute) // every key so far is in a past period
		}
	}
	if st := s.Stats(); st.Keys > 3_200 || st.Evicted != 0 {
		t.Fatalf("stats %+v: past periods were not swept first", st)
	}
	for i := range 20_000 {
		spend(t, s, fmt.Sprintf("busy-%d", i), b, 1)
	}
	if st := s.Stats(); st.Keys > 3_200 || st.Evicted == 0 {
		t.Fatalf("stats %+v: want at most 3200 keys and some evicted", st)
	}
}

func record(t testing.TB, s RepeatStore, key string, r Repeat) RepeatResult {
	t.Helper()
	res, err := s.Record(context.Background(), key, r)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestLoopGuardWindow(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := NewRepeatMemory(BudgetMemoryOptions{Now: clk.Now})
	r := Repeat{Max: 3, Window: time.Minute}
	for i := range 3 {
		if res := record(t, s, "alice|echo|h1", r); !res.Allowed || res.Count != i+1 {
			t.Fatalf("call %d: %+v", i+1, res)
		}
		clk.Advance(10 * time.Second)
	}
	// t=30s: calls at 0, 10, 20 are in the window; the 4th is refused until
	// the first leaves it at t=60s.
	res := record(t, s, "alice|echo|h1", r)
	if res.Allowed || res.Count != 3 || res.RetryAfter != 30*time.Second {
		t.Fatalf("4th call: %+v, want refused, retry after 30s", res)
	}
	if !record(t, s, "alice|echo|h2", r).Allowed || !record(t, s, "bob|echo|h1", r).Allowed {
		t.Fatal("other arguments or another subject were refused")
	}
	clk.Advance(30*time.Second - time.Nanosecond)
	if record(t, s, "alice|echo|h1", r).Allowed {
		t.Fatal("allowed before the oldest call left the window")
	}
	clk.Advance(time.Nanosecond)
	if res := record(t, s, "alice|echo|h1", r); !res.Allowed || res.Count != 3 {
		t.Fatalf("after the oldest left the window: %+v", res)
	}
	// The next is refused again (sliding: calls at 10, 20, 60 remain).
	if res := record(t, s, "alice|echo|h1", r); res.Allowed || res.RetryAfter != 10*time.Second {
		t.Fatalf("sliding window: %+v, want retry after 10s", res)
	}
}

func TestLoopGuardEvictsOldEntries(t *testing.T) {
	t.Parallel()
	clk := newClock()
	s := NewRepeatMemory(BudgetMemoryOptions{MaxKeys: 3_200, Now: clk.Now})
	r := Repeat{Max: 5, Window: time.Minute}
	for i := range 50_000 {
		record(t, s, fmt.Sprintf("call-%d", i), r)
		if i%1000 == 999 {
			clk.Advance(time.Minute + time.Second) // every call so far left the window
		}
	}
	if st := s.Stats(); st.Keys > 3_200 || st.Evicted != 0 {
		t.Fatalf("stats %+v: calls outside the window were not swept first", st)
	}
	for i := range 20_000 {
		record(t, s, fmt.Sprintf("busy-%d", i), r)
	}
	if st := s.Stats(); st.Keys > 3_200 || st.Evicted == 0 {
		t.Fatalf("stats %+v: want at most 3200 keys and some evicted", st)
	}
}

func TestBadRepeatsAreRefused(t *testing.T) {
	t.Parallel()
	s := NewRepeatMemory(BudgetMemoryOptions{})
	for _, r := range []Repeat{{}, {Max: 1}, {Window: time.Second}, {Max: MaxRepeatsCap + 1, Window: time.Second}} {
		if _, err := s.Record(context.Background(), "k", r); err == nil {
			t.Errorf("Record with %+v accepted", r)
		}
	}
}

func BenchmarkLoopGuardRecord(b *testing.B) {
	s := NewRepeatMemory(BudgetMemoryOptions{})
	r := Repeat{Max: 1_000, Window: time.Nanosecond}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = s.Record(ctx, "alice|echo|hash", r)
	}
}
