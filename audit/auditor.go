package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Destination is where an Auditor delivers events: a writer, a file, a
// webhook, a ring. The Auditor calls Deliver from one goroutine per
// destination, never concurrently, and Close once, after the last Deliver.
type Destination interface {
	// Name names the destination in Stats and errors ("stdout", "file",
	// "webhook", …).
	Name() string
	// Delivery says how the Auditor batches and retries for it.
	Delivery() Delivery
	// Deliver writes batch, in order, and returns how many of its first
	// events were delivered. When that is less than len(batch) it returns
	// why; the Auditor retries the rest. It must return promptly once ctx
	// is done.
	Deliver(ctx context.Context, batch []Event) (int, error)
	// Close flushes and releases the destination.
	Close(ctx context.Context) error
}

// CheckpointCarrier is a Destination that also delivers checkpoints: when
// CarriesCheckpoints reports true, the Auditor hands it the checkpoints of
// its keyed file sinks, as events whose Checkpoint is set (MarshalLine
// writes them as checkpoint lines). The writer and webhook sinks are
// carriers; the ring and the file sink are not.
type CheckpointCarrier interface {
	CarriesCheckpoints() bool
}

// checkpointSource is a destination that produces checkpoints (a keyed
// FileSink with a checkpoint key).
type checkpointSource interface {
	setCheckpointOut(func(Checkpoint))
	shutdownCheckpoint() (Checkpoint, bool)
}

// Delivery is how an Auditor batches and retries for one destination.
type Delivery struct {
	// BatchSize is the most events per Deliver (at least 1).
	BatchSize int
	// FlushInterval is how long a batch that is not full waits for more
	// events; 0 delivers what is queued at once.
	FlushInterval time.Duration
	// MinBackoff is the wait before the first retry of a failed Deliver;
	// each further failure doubles it, up to MaxBackoff.
	MinBackoff time.Duration
	MaxBackoff time.Duration
}

// Default delivery settings.
const (
	DefaultQueueSize  = 10_000
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
)

func (d Delivery) withDefaults() Delivery {
	if d.BatchSize < 1 {
		d.BatchSize = 1
	}
	if d.FlushInterval < 0 {
		d.FlushInterval = 0
	}
	if d.MinBackoff <= 0 {
		d.MinBackoff = DefaultMinBackoff
	}
	if d.MaxBackoff <= 0 {
		d.MaxBackoff = DefaultMaxBackoff
	}
	if d.MinBackoff > d.MaxBackoff {
		d.MinBackoff = d.MaxBackoff
	}
	return d
}

// Options configures an Auditor.
type Options struct {
	// QueueSize bounds the events waiting for each destination (default
	// 10000). An event that finds the queue full is dropped for that
	// destination and counted.
	QueueSize int
	// Logger, when set, receives a warning when a destination starts
	// failing and a note when it recovers (never event contents).
	Logger *zerolog.Logger
}

// SinkStats is one destination's counters.
type SinkStats struct {
	Name string `json:"name"`
	// Queued is how many events wait for the destination, including a
	// batch being delivered.
	Queued int `json:"queued"`
	// Delivered counts events the destination accepted.
	Delivered uint64 `json:"delivered"`
	// Dropped counts events lost: queue full, written after Close, or
	// still undelivered when Close gave up.
	Dropped uint64 `json:"dropped"`
	// Failed counts failed delivery attempts (each retry counts).
	Failed uint64 `json:"failed"`
	// LastError is the last delivery error (no credentials, no bodies
	// beyond 200 bytes), LastErrorTime when it happened.
	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitzero"`
}

// Auditor fans events out to destinations without blocking the caller. It
// is a Sink. Close it to flush. Checkpoints of its file sinks go to its
// destinations that carry them (CheckpointCarrier); a checkpoint that finds
// such a queue full is dropped and counted like an event.
type Auditor struct {
	queues []*queue
	// mu orders Write against Close: writers hold it shared while they
	// send, Close exclusively while it closes the queues.
	mu     sync.RWMutex
	closed bool
	// stop ends deliveries (and retries) once Close's context is done.
	stopCtx context.Context
	stop    context.CancelFunc
	log     *zerolog.Logger
}

var _ Sink = (*Auditor)(nil)

// queue is one destination's queue, counters and goroutine.
type queue struct {
	dest Destination
	name string
	pol  Delivery
	ch   chan *Event
	// inFlight is the size of the batch being delivered.
	inFlight  atomic.Int64
	delivered atomic.Uint64
	dropped   atomic.Uint64
	failed    atomic.Uint64
	// closeDropped counts events dropped because Close gave up.
	closeDropped atomic.Uint64
	// carrier: the destination takes checkpoints.
	carrier   bool
	mu        sync.Mutex
	lastErr   string
	lastErrAt time.Time
	done      chan struct{}
}

// NewAuditor starts one goroutine per destination and returns the Auditor
// feeding them. Close stops them.
func NewAuditor(o Options, dests ...Destination) *Auditor {
	size := o.QueueSize
	if size <= 0 {
		size = DefaultQueueSize
	}
	ctx, stop := context.WithCancel(context.Background())
	a := &Auditor{stopCtx: ctx, stop: stop, log: o.Logger}
	for _, d := range dests {
		q := &queue{dest: d, name: d.Name(), pol: d.Delivery().withDefaults(),
			ch: make(chan *Event, size), done: make(chan struct{})}
		if c, ok := d.(CheckpointCarrier); ok && c.CarriesCheckpoints() {
			q.carrier = true
		}
		a.queues = append(a.queues, q)
	}
	for _, q := range a.queues {
		if src, ok := q.dest.(checkpointSource); ok {
			src.setCheckpointOut(func(cp Checkpoint) { a.sendCheckpoint(ctx, cp, false) })
		}
	}
	for _, q := range a.queues {
		go a.run(ctx, q)
	}
	return a
}

// sendCheckpoint queues cp for every carrier. With wait false a full queue
// drops it (counted); otherwise it waits for room until ctx is done. The
// carriers' queues are still open: they close only after the sources are
// done (Close).
func (a *Auditor) sendCheckpoint(ctx context.Context, cp Checkpoint, wait bool) {
	e := &Event{Time: cp.Time, Checkpoint: &cp}
	for _, q := range a.queues {
		if !q.carrier {
			continue
		}
		if !wait {
			select {
			case q.ch <- e:
			default:
				q.dropped.Add(1)
			}
			continue
		}
		select {
		case q.ch <- e:
		case <-ctx.Done():
			q.dropped.Add(1)
			q.closeDropped.Add(1)
		}
	}
}

// Write queues e for every destination and returns at once. Where a queue
// is full, or after Close, the event is dropped for that destination and
// counted. A zero e.Time is set to now, so every destination writes the
// same time.
func (a *Auditor) Write(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed {
		for _, q := range a.queues {
			q.dropped.Add(1)
		}
		return
	}
	p := &e
	for _, q := range a.queues {
		select {
		case q.ch <- p:
		default:
			q.dropped.Add(1)
		}
	}
}

// Stats returns each destination's counters, in the order given to
// NewAuditor.
func (a *Auditor) Stats() []SinkStats {
	out := make([]SinkStats, len(a.queues))
	for i, q := range a.queues {
		q.mu.Lock()
		out[i] = SinkStats{Name: q.name, Queued: len(q.ch) + int(q.inFlight.Load()),
			Delivered: q.delivered.Load(), Dropped: q.dropped.Load(), Failed: q.failed.Load(),
			LastError: q.lastErr, LastErrorTime: q.lastErrAt}
		q.mu.Unlock()
	}
	return out
}

// Close stops accepting events and delivers what is queued: it waits until
// every queue is empty or ctx is done. Events not delivered by then are
// dropped, counted and reported in the error. The destinations that carry
// checkpoints are drained last, after each keyed file sink has written
// everything and handed them a final checkpoint. Then it closes every
// destination (a file is synced). A second Close returns nil at once.
func (a *Auditor) Close(ctx context.Context) error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	for _, q := range a.queues {
		if !q.carrier {
			close(q.ch)
		}
	}
	a.mu.Unlock()
	defer a.stop()

	a.wait(ctx, false)
	for _, q := range a.queues {
		if src, ok := q.dest.(checkpointSource); ok {
			if cp, ok := src.shutdownCheckpoint(); ok {
				a.sendCheckpoint(ctx, cp, true)
			}
		}
	}
	for _, q := range a.queues {
		if q.carrier {
			close(q.ch)
		}
	}
	a.wait(ctx, true)
	var errs []error
	var lost []string
	total := uint64(0)
	for _, q := range a.queues {
		if n := q.closeDropped.Load(); n > 0 {
			total += n
			s := fmt.Sprintf("%s: %d", q.name, n)
			q.mu.Lock()
			if q.lastErr != "" {
				s += " (last error: " + q.lastErr + ")"
			}
			q.mu.Unlock()
			lost = append(lost, s)
		}
	}
	if total > 0 {
		errs = append(errs, fmt.Errorf("audit: %d event(s) not delivered before the shutdown deadline (%s)", total, strings.Join(lost, "; ")))
	}
	for _, q := range a.queues {
		if err := q.dest.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("audit: close %s: %w", q.name, err))
		}
	}
	return errors.Join(errs...)
}

// wait waits for the goroutines of the carriers (or of the others) to
// finish; once ctx is done it stops deliveries and retries, and each
// goroutine counts what it could not deliver and returns promptly.
func (a *Auditor) wait(ctx context.Context, carriers bool) {
	for _, q := range a.queues {
		if q.carrier != carriers {
			continue
		}
		select {
		case <-q.done:
		case <-ctx.Done():
			a.stop()
			<-q.done
		}
	}
}

// run is q's goroutine: it batches events from the queue and delivers them
// until the queue is closed and empty, or ctx (stop) is done.
func (a *Auditor) run(ctx context.Context, q *queue) {
	defer close(q.done)
	batch := make([]Event, 0, q.pol.BatchSize)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	failing := false
	for p := range q.ch {
		batch = append(batch[:0], *p)
		batch = q.fill(batch, timer)
		q.inFlight.Store(int64(len(batch)))
		if !a.deliver(ctx, q, batch, &failing) {
			break
		}
	}
	// Stopped: what is left in the (closed) queue is lost.
	for range q.ch {
		q.dropped.Add(1)
		q.closeDropped.Add(1)
	}
}

// fill adds queued events to batch, up to the batch size, waiting up to
// the flush interval for them.
func (q *queue) fill(batch []Event, timer *time.Timer) []Event {
	size := q.pol.BatchSize
	if len(batch) >= size {
		return batch
	}
	if q.pol.FlushInterval <= 0 {
		for len(batch) < size {
			select {
			case p, ok := <-q.ch:
				if !ok {
					return batch
				}
				batch = append(batch, *p)
			default:
				return batch
			}
		}
		return batch
	}
	timer.Reset(q.pol.FlushInterval)
	defer timer.Stop()
	for len(batch) < size {
		select {
		case p, ok := <-q.ch:
			if !ok {
				return batch
			}
			batch = append(batch, *p)
		case <-timer.C:
			return batch
		}
	}
	return batch
}

// deliver delivers batch, retrying with capped exponential backoff until
// it is all delivered (true) or ctx is done (false; the rest is counted as
// dropped).
func (a *Auditor) deliver(ctx context.Context, q *queue, batch []Event, failing *bool) bool {
	backoff := q.pol.MinBackoff
	for ctx.Err() == nil {
		n, err := q.dest.Deliver(ctx, batch)
		n = max(0, min(n, len(batch)))
		q.delivered.Add(uint64(n))
		batch = batch[n:]
		q.inFlight.Store(int64(len(batch)))
		if err == nil && len(batch) > 0 {
			err = errors.New("delivered only part of the batch")
		}
		switch {
		case err != nil && ctx.Err() == nil:
			a.failure(q, err, failing)
		case err == nil && *failing:
			*failing = false
			if a.log != nil {
				a.log.Info().Str("sink", q.name).Msg("audit sink delivers again")
			}
		}
		if len(batch) == 0 {
			return true
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		backoff = min(backoff*2, q.pol.MaxBackoff)
	}
	q.dropped.Add(uint64(len(batch)))
	q.closeDropped.Add(uint64(len(batch)))
	q.inFlight.Store(0)
	return false
}

// failure records a failed delivery attempt.
func (a *Auditor) failure(q *queue, err error, failing *bool) {
	q.failed.Add(1)
	msg := truncate(err.Error(), 300)
	q.mu.Lock()
	q.lastErr, q.lastErrAt = msg, time.Now()
	q.mu.Unlock()
	if !*failing && a.log != nil {
		a.log.Warn().Str("sink", q.name).Str("error", msg).Msg("audit sink failing; retrying with backoff")
	}
	*failing = true
}

// truncate cuts s to at most n bytes, on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && (s[cut]&0xC0) == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
