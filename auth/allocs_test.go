package auth

import (
	"context"
	"testing"
	"time"
)

// Allocation budget of the hot path: verifying a token already verified
// (the cached path) allocates at most the Identity's copy. A regression
// fails here, in CI, without timing anything.
func TestCachedVerifyAllocationBudget(t *testing.T) {
	srv := newJWKSServer(t, pubKey{"kid-a", keyA()})
	clk := &clock{}
	clk.ns.Store(time.Now().UnixNano())
	v := verifierFor(t, srv, clk, nil)
	srv.settle(t, v)
	c := claims(clk.Now())
	c["exp"] = clk.Now().Add(time.Hour).Unix()
	tok := mint(keyA(), "kid-a", c)
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	const budget = 2
	if n := testing.AllocsPerRun(200, func() {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}); n > budget {
		t.Errorf("a cached verification allocates %.1f times, budget %d", n, budget)
	}
}
