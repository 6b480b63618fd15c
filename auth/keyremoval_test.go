package auth

import (
	"context"
	"net/http"
	"reflect"
	"testing"
	"time"
)

// Regression invariant: a verified token is served from the cache only
// while the key that verified it is still in the issuer's key set. Once a
// fetched JWKS no longer holds that key (removed, or replaced under the
// same kid), the token is verified again and refused, however long before
// its exp that happens.
func TestCachedTokenIsRefusedOnceItsKeyLeavesTheJWKS(t *testing.T) {
	t.Parallel()
	// refetch makes the verifier load the served key set again: by a token
	// under a kid the set lacks (the unknown-kid refetch), or by waiting
	// for the background refresh.
	refetchByUnknownKid := func(t *testing.T, srv *jwksServer, v *Verifier, clk *clock) {
		t.Helper()
		before := srv.fetches.Load()
		_, err := v.Verify(context.Background(), mint(keyC(), "kid-unknown", claims(clk.Now())))
		authError(t, err, http.StatusUnauthorized, CodeInvalidToken, ReasonKeyUnknown)
		if srv.fetches.Load() == before {
			t.Fatal("the unknown kid did not make the verifier fetch the JWKS")
		}
	}
	refetchByRefresh := func(t *testing.T, srv *jwksServer, v *Verifier, _ *clock) {
		t.Helper()
		before := srv.fetches.Load()
		deadline := time.Now().Add(10 * time.Second)
		for srv.fetches.Load() == before || srv.inflight.Load() != 0 {
			if time.Now().After(deadline) {
				t.Fatal("the background refresh did not fetch the JWKS within 10s")
			}
			time.Sleep(20 * time.Millisecond)
		}
		// The answer is read after the server counted the fetch: wait
		// until the verifier's set reflects it.
		for v.JWKSStats().Keys != 1 {
			if time.Now().After(deadline) {
				t.Fatal("the refreshed key set was not loaded within 10s")
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond)
	}

	tests := []struct {
		name    string
		after   []pubKey // the key set served once the token is cached
		refetch func(*testing.T, *jwksServer, *Verifier, *clock)
		refresh time.Duration
		reason  string
	}{
		{"a removed key, noticed by the unknown-kid refetch", []pubKey{{"kid-b", keyB()}}, refetchByUnknownKid, 0, ReasonKeyUnknown},
		{"a removed key, noticed by the background refresh", []pubKey{{"kid-b", keyB()}}, refetchByRefresh, time.Second, ReasonKeyUnknown},
		{"a kid now naming another key", []pubKey{{"kid-a", keyC()}, {"kid-b", keyB()}}, refetchByUnknownKid, 0, ReasonSignatureInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newJWKSServer(t, pubKey{"kid-a", keyA()}, pubKey{"kid-b", keyB()})
			clk := &clock{}
			clk.ns.Store(time.Now().UnixNano())
			v := verifierFor(t, srv, clk, func(c *VerifierConfig) {
				if tt.refresh > 0 {
					c.RefreshInterval = tt.refresh
				}
			})
			srv.settle(t, v)
			ctx := context.Background()
			tokA := mint(keyA(), "kid-a", claims(clk.Now()))
			tokB := mint(keyB(), "kid-b", claims(clk.Now()))
			if _, err := v.Verify(ctx, tokA); err != nil {
				t.Fatalf("token of key A before the rotation: %v", err)
			}
			idB, err := v.Verify(ctx, tokB)
			if err != nil {
				t.Fatalf("token of key B before the rotation: %v", err)
			}
			if _, err := v.Verify(ctx, tokA); err != nil {
				t.Fatalf("cached token of key A before the rotation: %v", err)
			}

			srv.setKeys(t, tt.after...)
			tt.refetch(t, srv, v, clk)

			_, err = v.Verify(ctx, tokA)
			authError(t, err, http.StatusUnauthorized, CodeInvalidToken, tt.reason)
			_, err = v.Verify(ctx, tokA)
			authError(t, err, http.StatusUnauthorized, CodeInvalidToken, tt.reason)

			// A key that stayed keeps its cached tokens.
			again, err := v.Verify(ctx, tokB)
			if err != nil {
				t.Fatalf("token of key B, which stayed: %v", err)
			}
			if reflect.ValueOf(again.Claims).UnsafePointer() != reflect.ValueOf(idB.Claims).UnsafePointer() {
				t.Error("the token of the key that stayed was verified again instead of served from the cache")
			}
		})
	}
}
