package main

import (
	"context"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/gatewaystack/gatewaystack/loadgen"
)

// The bare proxy carries both protocol eras to the echo server unchanged.
func TestProxyToEcho(t *testing.T) {
	t.Parallel()
	echo := httptest.NewServer(loadgen.NewEchoServer())
	t.Cleanup(echo.Close)
	target, err := url.Parse(echo.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewServer(newProxy(target))
	t.Cleanup(proxy.Close)
	for _, era := range []loadgen.Era{loadgen.EraSession, loadgen.EraStateless} {
		t.Run(string(era), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			r, err := loadgen.Run(ctx, loadgen.Options{URL: proxy.URL + loadgen.EchoPath, Tool: "echo", Args: []byte(`{"text":"hi"}`),
				Era: era, Concurrency: 2, Duration: 20 * time.Second, MaxCalls: 50})
			if err != nil {
				t.Fatal(err)
			}
			if r.Calls != 50 || r.Errors != 0 {
				t.Errorf("calls %d, errors %d (%s); want 50 and none", r.Calls, r.Errors, r.FirstError)
			}
		})
	}
}
