package auth

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"
)

// BenchmarkVerify measures token verification:
//   - cold: a token the verifier has never seen, every iteration, so each
//     pays parsing, the JWKS lookup and the RSA-2048 signature check (the
//     tokens are minted before the timer starts; minting is the slow part);
//   - cached: one token repeated, served from the verified-token cache.
func BenchmarkVerify(b *testing.B) {
	srv := newJWKSServer(b, pubKey{"kid-a", keyA()})
	clk := &clock{}
	clk.ns.Store(time.Now().UnixNano())
	newV := func(b *testing.B) *Verifier {
		v := verifierFor(b, srv, clk, nil)
		srv.settle(b, v)
		return v
	}
	var pool []string // grows across rounds; each round has a fresh verifier
	mintPool := func(n int) {
		if len(pool) >= n {
			return
		}
		start := len(pool)
		pool = append(pool, make([]string, n-start)...)
		var wg sync.WaitGroup
		workers := runtime.GOMAXPROCS(0)
		for w := range workers {
			wg.Go(func() {
				for i := start + w; i < n; i += workers {
					c := claims(clk.Now())
					c["exp"] = clk.Now().Add(time.Hour).Unix()
					pool[i] = mint(keyA(), "kid-a", c)
				}
			})
		}
		wg.Wait()
	}

	b.Run("cold", func(b *testing.B) {
		v := newV(b)
		mintPool(b.N)
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := v.Verify(ctx, pool[i]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		v := newV(b)
		mintPool(1)
		ctx := context.Background()
		if _, err := v.Verify(ctx, pool[0]); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := v.Verify(ctx, pool[0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
