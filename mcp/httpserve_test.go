package mcp

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// heldListener hands out each accepted connection only once release is
// closed, so a test can make a connection reach the server after its
// shutdown has begun: the order a loaded machine produces now and then.
type heldListener struct {
	net.Listener
	release  chan struct{}
	closed   chan struct{}
	once     sync.Once
	accepted chan struct{}
}

func (l *heldListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	close(l.accepted)
	<-l.release
	return c, nil
}

func (l *heldListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// TestServeHTTPClosesAConnectionAcceptedDuringShutdown checks that a
// connection which sent no request and reached the server only after the
// shutdown hook ran is closed at once, not waited for until the grace
// period ends.
func TestServeHTTPClosesAConnectionAcceptedDuringShutdown(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &heldListener{Listener: inner, release: make(chan struct{}), closed: make(chan struct{}), accepted: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const grace = 20 * time.Second
	done := make(chan error, 1)
	go func() {
		done <- ServeHTTP(ctx, ln, http.NotFoundHandler(), grace, nil)
	}()

	c, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-ln.accepted
	cancel()
	<-ln.closed
	// Shutdown runs its hooks right after closing the listener; give them
	// time to run before the held connection reaches the server.
	time.Sleep(200 * time.Millisecond)
	close(ln.release)

	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ServeHTTP: %v", err)
		}
	case <-time.After(3 * time.Second):
		// http.Server.Shutdown alone closes such a connection only once it
		// is 5 s old.
		t.Fatalf("ServeHTTP still waiting for an idle connection 3s after shutdown began")
	}
	// The server closed its end: the client reads EOF.
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes from a connection the server should have closed", n)
	}
}
