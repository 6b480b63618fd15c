package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// ErrBusy: the upstream is at its concurrency cap and no slot freed in time.
var ErrBusy = errors.New("upstream: at its concurrency limit")

// upstreamState is what the router tracks of one upstream: its concurrency
// slots and its health.
type upstreamState struct {
	slots chan struct{} // nil: no cap

	mu        sync.Mutex
	reachable bool
	checked   bool
	lastOK    time.Time
	lastErr   string
	lastErrAt time.Time
}

func newUpstreamState(maxConcurrency int) *upstreamState {
	s := &upstreamState{}
	if maxConcurrency > 0 {
		s.slots = make(chan struct{}, maxConcurrency)
	}
	return s
}

// Call runs one call on the upstream within its concurrency cap and records
// the outcome for health reporting.
func (u Upstream) Call(ctx context.Context, method string, params json.RawMessage) (Response, error) {
	st := u.state
	if st != nil && st.slots != nil {
		wait := time.NewTimer(u.QueueWait)
		select {
		case st.slots <- struct{}{}:
			wait.Stop()
			defer func() { <-st.slots }()
		case <-wait.C:
			return Response{}, fmt.Errorf("upstream %s has %d calls in flight and none finished within %s: %w: %w",
				u.Name(), cap(st.slots), u.QueueWait, ErrBusy, ErrTimeout)
		case <-ctx.Done():
			wait.Stop()
			return Response{}, fmt.Errorf("upstream %s: waiting for a free slot: %w", u.Name(), ctx.Err())
		}
	}
	resp, err := u.Caller.Call(ctx, method, params)
	if st != nil && ctx.Err() == nil {
		st.record(err)
	}
	return resp, err
}

// record notes whether a call (or probe) reached the upstream.
func (s *upstreamState) record(err error) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checked = true
	if err != nil && unreachable(err) {
		s.reachable = false
		s.lastErr, s.lastErrAt = err.Error(), now
		return
	}
	s.reachable = true
	s.lastOK = now
}

// unreachable reports whether err means the upstream could not be reached
// or did not answer (rather than answering with an HTTP or JSON-RPC error).
func unreachable(err error) bool {
	var ne net.Error
	return errors.Is(err, ErrTimeout) || errors.Is(err, ErrUnavailable) && (errors.As(err, &ne) || errors.Is(err, ErrCrashed)) ||
		errors.Is(err, context.DeadlineExceeded)
}

// ErrCrashed: a local upstream process exited.
var ErrCrashed = errors.New("upstream: process exited")

// Health is the state of one upstream as /health reports it.
type Health struct {
	Name      string    `json:"name"`
	Status    string    `json:"status"` // "up", "down" or "unknown"
	LastOK    time.Time `json:"last_ok,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	LastErrAt time.Time `json:"last_error_at,omitzero"`
	InFlight  int       `json:"in_flight"`
}

// Health reports every upstream's state, in configuration order.
func (r *Router) Health() []Health {
	out := make([]Health, 0, len(r.ups))
	for _, u := range r.ups {
		h := Health{Name: u.Name(), Status: "unknown"}
		if st := u.state; st != nil {
			st.mu.Lock()
			if st.checked {
				h.Status = "down"
				if st.reachable {
					h.Status = "up"
				}
			}
			h.LastOK, h.LastError, h.LastErrAt = st.lastOK, st.lastErr, st.lastErrAt
			st.mu.Unlock()
			h.InFlight = len(st.slots)
		}
		out = append(out, h)
	}
	return out
}

// Prober is implemented by callers that can check their upstream without a
// caller's request (connect and handshake).
type Prober interface {
	Probe(ctx context.Context) error
}

// Start probes every upstream in the background until it has been reached
// once, retrying with capped exponential backoff, so /health tells at once
// which upstreams are down and a down upstream is connected as soon as it
// comes up. It returns at once; the probes end with ctx.
func (r *Router) Start(ctx context.Context) {
	for _, u := range r.ups {
		p, ok := u.Caller.(Prober)
		if !ok {
			continue
		}
		go func() {
			backoff := 500 * time.Millisecond
			for {
				pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err := p.Probe(pctx)
				cancel()
				if ctx.Err() != nil {
					return
				}
				u.state.record(err)
				if err == nil || !unreachable(err) {
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(backoff*2, 30*time.Second)
			}
		}()
	}
}
