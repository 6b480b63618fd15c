package mcp

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// ServeHTTP serves h on ln until ctx is done, then shuts down gracefully:
// requests in flight get up to grace to finish. Connections that have not
// sent a request yet are closed at once; http.Server.Shutdown alone waits
// 5 s for each of them, and HTTP clients open such connections ahead of use.
// onShutdown, when set, runs once the listener is closed (it ends long-lived
// streams, which Shutdown would otherwise wait for).
func ServeHTTP(ctx context.Context, ln net.Listener, h http.Handler, grace time.Duration, onShutdown func()) error {
	var mu sync.Mutex
	fresh := map[net.Conn]struct{}{}
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ConnState: func(c net.Conn, s http.ConnState) {
			mu.Lock()
			defer mu.Unlock()
			if s == http.StateNew {
				fresh[c] = struct{}{}
			} else {
				delete(fresh, c)
			}
		},
	}
	// Shutdown runs this after it has closed the listener, so no new
	// connection can arrive behind it.
	hs.RegisterOnShutdown(func() {
		mu.Lock()
		defer mu.Unlock()
		for c := range fresh {
			_ = c.Close()
		}
	})
	if onShutdown != nil {
		hs.RegisterOnShutdown(onShutdown)
	}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		_ = hs.Close()
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
