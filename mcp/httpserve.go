package mcp

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
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
	return ServeHTTPWith(ctx, ln, h, ServeOptions{Grace: grace, OnShutdown: onShutdown})
}

// ServeOptions tune ServeHTTPWith; zero fields take the defaults.
type ServeOptions struct {
	// Grace is how long requests in flight may take to finish at shutdown.
	Grace time.Duration
	// OnShutdown runs once the listener is closed.
	OnShutdown func()
	// ReadHeaderTimeout bounds reading a request's headers (default 10s):
	// a slow-loris client cannot hold a connection.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes idle keep-alive connections (default 120s).
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the header block (default 32 KiB).
	MaxHeaderBytes int
	// TLS, when set, serves HTTPS on ln.
	TLS *tls.Config
}

// ServeHTTPWith is ServeHTTP with every option. There is deliberately no
// server-wide ReadTimeout: it would end long-lived event streams; the
// gateway bounds reading each request body itself.
func ServeHTTPWith(ctx context.Context, ln net.Listener, h http.Handler, o ServeOptions) error {
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = 10 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 120 * time.Second
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = 32 << 10
	}
	if o.TLS != nil {
		ln = tls.NewListener(ln, o.TLS)
	}
	grace, onShutdown := o.Grace, o.OnShutdown
	// Connections that have sent no request yet. http.Server.Shutdown
	// treats them as busy for 5 s; the gateway closes them at once. A
	// connection accepted just before the listener closed can reach
	// StateNew after the shutdown hook ran, so the hook also marks the
	// server as stopping and any later new connection is closed on arrival.
	var mu sync.Mutex
	fresh := map[net.Conn]struct{}{}
	stopping := false
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: o.ReadHeaderTimeout,
		IdleTimeout:       o.IdleTimeout,
		MaxHeaderBytes:    o.MaxHeaderBytes,
		ErrorLog:          log.New(io.Discard, "", 0), // TLS handshake noise from scanners
		ConnState: func(c net.Conn, s http.ConnState) {
			mu.Lock()
			defer mu.Unlock()
			if s == http.StateNew {
				if stopping {
					_ = c.Close()
					return
				}
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
		stopping = true
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
