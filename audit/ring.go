package audit

import (
	"context"
	"sync"
	"time"
)

// RingOptions configures a Ring.
type RingOptions struct {
	// Name names the ring in stats (default "ring").
	Name string
	// Size is how many of the latest events are kept (default 1000).
	Size int
}

// Ring keeps the latest events in memory for the admin page. It is a Sink
// (synchronous) and a Destination (behind an Auditor).
type Ring struct {
	name string
	mu   sync.Mutex
	buf  []Event
	// next is where the next event goes; n how many are held.
	next, n int
}

var (
	_ Sink        = (*Ring)(nil)
	_ Destination = (*Ring)(nil)
)

// NewRing returns an empty ring.
func NewRing(o RingOptions) *Ring {
	if o.Name == "" {
		o.Name = "ring"
	}
	if o.Size <= 0 {
		o.Size = 1000
	}
	return &Ring{name: o.Name, buf: make([]Event, o.Size)}
}

// Write keeps e, forgetting the oldest event when the ring is full. A
// checkpoint is not an event and is not kept.
func (r *Ring) Write(e Event) {
	if e.Checkpoint != nil {
		return
	}
	r.mu.Lock()
	r.buf[r.next] = e
	r.next = (r.next + 1) % len(r.buf)
	r.n = min(r.n+1, len(r.buf))
	r.mu.Unlock()
}

// Filter selects events in Query. Empty fields match everything.
type Filter struct {
	Subject  string
	Tenant   string
	Tool     string
	Decision string
	// Since keeps events at or after this time.
	Since time.Time
	// Limit caps the result (0: no cap).
	Limit int
}

func (f Filter) match(e *Event) bool {
	return (f.Subject == "" || e.Subject == f.Subject) &&
		(f.Tenant == "" || e.Tenant == f.Tenant) &&
		(f.Tool == "" || e.Tool == f.Tool) &&
		(f.Decision == "" || e.Decision == f.Decision) &&
		(f.Since.IsZero() || !e.Time.Before(f.Since))
}

// Query returns the held events that match f, newest first.
func (r *Ring) Query(f Filter) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for i := range r.n {
		e := &r.buf[(r.next-1-i+2*len(r.buf))%len(r.buf)]
		if !f.match(e) {
			continue
		}
		out = append(out, *e)
		if f.Limit > 0 && len(out) >= f.Limit {
			break
		}
	}
	return out
}

// Len returns how many events the ring holds.
func (r *Ring) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// Name returns the ring's name.
func (r *Ring) Name() string { return r.name }

// Delivery takes what is queued at once.
func (r *Ring) Delivery() Delivery { return Delivery{BatchSize: 256} }

// Deliver keeps every event of batch.
func (r *Ring) Deliver(_ context.Context, batch []Event) (int, error) {
	for _, e := range batch {
		r.Write(e)
	}
	return len(batch), nil
}

// Close does nothing; the ring stays readable.
func (r *Ring) Close(context.Context) error { return nil }
