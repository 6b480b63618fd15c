package auth0

import (
	"errors"
	"math/rand/v2"
	"time"
)

// errQueueFull reports a retry that could not be queued.
var errQueueFull = errors.New("auth0: retry queue full or shutting down; registration dropped (replay the log to promote it)")

// job is a registration waiting for a retry.
type job struct {
	reg      registration
	attempts int       // attempts made so far
	next     time.Time // when to try again (real clock)
}

// backoff is the delay after the given number of failed attempts: the
// first retry delay doubled for each further attempt, capped, with ±20 %
// jitter so that many clients do not retry in step.
func (h *Webhook) backoff(attempts int) time.Duration {
	if attempts <= 0 {
		return 0
	}
	d := h.opts.RetryBackoff
	for i := 1; i < attempts && d < h.opts.MaxRetryBackoff; i++ {
		d *= 2
	}
	d = min(d, h.opts.MaxRetryBackoff)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// enqueue hands reg to the retry worker after attempts failed attempts. It
// reports false when it cannot (closed, or the queue is full); a client
// already waiting keeps its place.
func (h *Webhook) enqueue(reg registration, attempts int) bool {
	h.mu.Lock()
	if _, waiting := h.pending[reg.clientID]; waiting {
		h.mu.Unlock()
		return true
	}
	if h.closed || len(h.pending) >= h.opts.QueueSize {
		h.mu.Unlock()
		return false
	}
	h.pending[reg.clientID] = &job{reg: reg, attempts: attempts, next: time.Now().Add(h.backoff(attempts))}
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default: // the worker is already due to look
	}
	return true
}

// giveUp records that reg will not be promoted; cause, when not nil, is
// recorded as the last error. Its log id is forgotten so that a replay is
// tried afresh.
func (h *Webhook) giveUp(reg registration, cause error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stats.abandoned++
	if cause != nil {
		h.lastError = truncate(cause.Error(), 2*maxErrorText)
		h.lastErrorAt = h.opts.Now()
		h.lastFailed = true
	}
	if reg.logID != "" {
		h.seen.forget(reg.logID)
	}
	h.log.Error().Str("log_id", reg.logID).Str("client_id", reg.clientID).Msg("auth0 log webhook: gave up promoting the registered client")
}

// run is the retry worker: it sleeps until the earliest pending retry is
// due (or it is woken, or stopped), then makes that attempt. It runs until
// Close; every iteration blocks on a timer or a channel.
func (h *Webhook) run() {
	defer close(h.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		j, wait, ok := h.nextJob()
		switch {
		case !ok:
			select {
			case <-h.stopCtx.Done():
				return
			case <-h.wake:
			}
		case wait > 0:
			timer.Reset(wait)
			select {
			case <-h.stopCtx.Done():
				return
			case <-h.wake:
				timer.Stop()
			case <-timer.C:
			}
		default:
			h.retry(j)
		}
	}
}

// nextJob returns the pending job due first and how long until it is due.
func (h *Webhook) nextJob() (*job, time.Duration, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var first *job
	for _, j := range h.pending {
		if first == nil || j.next.Before(first.next) {
			first = j
		}
	}
	if first == nil {
		return nil, 0, false
	}
	return first, time.Until(first.next), true
}

// retry makes the next attempt of j and reschedules or ends it.
func (h *Webhook) retry(j *job) {
	h.count(func(c *counters) { c.retried++ })
	n := j.attempts + 1
	err := h.attempt(h.stopCtx, h.opts.AttemptTimeout, j.reg, n)
	if h.stopCtx.Err() != nil {
		return // closing: the attempt was cut short, not failed
	}
	h.mu.Lock()
	if err == nil {
		delete(h.pending, j.reg.clientID)
		h.mu.Unlock()
		return
	}
	j.attempts = n
	if retryable(err) && n < h.opts.MaxAttempts {
		j.next = time.Now().Add(h.backoff(n))
		h.mu.Unlock()
		return
	}
	delete(h.pending, j.reg.clientID)
	h.mu.Unlock()
	h.giveUp(j.reg, nil)
}

// dedupe is a bounded set of log ids: when full, the oldest id is dropped.
// It is not safe for concurrent use (the Webhook guards it with its mutex).
type dedupe struct {
	ids  map[string]uint64 // id → sequence number of its ring slot
	ring []dedupeEntry
	pos  int
	seq  uint64
}

type dedupeEntry struct {
	id  string
	seq uint64
}

func newDedupe(size int) *dedupe {
	return &dedupe{ids: make(map[string]uint64, size), ring: make([]dedupeEntry, size)}
}

// add records id and reports whether it was new.
func (d *dedupe) add(id string) bool {
	if _, ok := d.ids[id]; ok {
		return false
	}
	old := d.ring[d.pos]
	if old.id != "" && d.ids[old.id] == old.seq {
		delete(d.ids, old.id)
	}
	d.seq++
	d.ring[d.pos] = dedupeEntry{id: id, seq: d.seq}
	d.ids[id] = d.seq
	d.pos = (d.pos + 1) % len(d.ring)
	return true
}

// forget removes id (its ring slot is reused in turn).
func (d *dedupe) forget(id string) { delete(d.ids, id) }
