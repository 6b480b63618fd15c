package auth0

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/gatewaystack/gatewaystack/config"
)

// LogTypeSuccessAPIOperation is the Auth0 log event type code "sapi",
// "Success API Operation". Auth0's published table of log event type codes
// has no code of its own for Dynamic Client Registration: a successful POST
// /oidc/register is logged as a successful API operation whose
// details.request.path is /oidc/register and whose description names the
// dynamic client registration. The failed counterpart, "fapi" ("Failed API
// Operation"), is never acted on, nor is any other code.
const LogTypeSuccessAPIOperation = "sapi"

// isDCRLogType reports whether an Auth0 log event type code is one under
// which a successful Dynamic Client Registration is logged. The list is
// deliberately short: a type only qualifies an event, which must also show
// the /oidc/register request (see classify).
func isDCRLogType(code string) bool {
	switch code {
	case LogTypeSuccessAPIOperation:
		return true
	default:
		return false
	}
}

// Defaults of Options.
const (
	// DefaultMaxBodyBytes bounds a log-stream request body (5 MiB).
	DefaultMaxBodyBytes = 5 << 20
	// DefaultMaxAttempts bounds the attempts to promote one client,
	// including the first one made while the log stream waits.
	DefaultMaxAttempts = 6
	// DefaultRetryBackoff is the delay before the first retry; it doubles
	// for each further one.
	DefaultRetryBackoff = 2 * time.Second
	// DefaultMaxRetryBackoff caps the delay between retries.
	DefaultMaxRetryBackoff = 2 * time.Minute
	// DefaultAttemptTimeout bounds one promotion attempt (all its calls).
	DefaultAttemptTimeout = 20 * time.Second
	// DefaultSyncBudget bounds the promotion work done while the log
	// stream waits for its answer; what does not fit is left to the retry
	// worker.
	DefaultSyncBudget = 5 * time.Second
	// DefaultQueueSize bounds the clients waiting for a retry.
	DefaultQueueSize = 1024
	// DefaultDedupeSize bounds the log ids remembered to ignore replays.
	DefaultDedupeSize = 10000
	// DefaultHealthCacheTTL is how long Health reuses a token check.
	DefaultHealthCacheTTL = 30 * time.Second
	// DefaultHealthTimeout bounds Health's token check.
	DefaultHealthTimeout = 5 * time.Second
	// defaultHTTPTimeout bounds each Management API request of the default
	// HTTP client.
	defaultHTTPTimeout = 30 * time.Second
	// maxEventsPerRequest bounds the log events of one request.
	maxEventsPerRequest = 10000
	// minSyncAttempt is the least budget worth starting an attempt with.
	minSyncAttempt = 250 * time.Millisecond
	// maxClientIDLen bounds an accepted client id.
	maxClientIDLen = 128
)

// Options configures a Webhook. Zero durations and sizes take the defaults
// above.
type Options struct {
	// Auth0 is the gateway's auth0 configuration (config.Auth0):
	// ManagementURL, ClientID and ClientSecret of the machine-to-machine
	// application, WebhookSecret, Connection, Audience and Scopes.
	// WebhookSecret is required; without the Management API credentials
	// the webhook still authenticates and counts events but every
	// promotion fails, which Health reports.
	config.Auth0
	// HTTPClient makes the Management API calls (default: a client with a
	// 30 s timeout).
	HTTPClient *http.Client
	// Logger receives the webhook's logs (default: none). Secrets and
	// tokens are never logged.
	Logger zerolog.Logger
	// Now is the clock of token expiry and of the times Health reports
	// (default time.Now). Retry delays use real timers.
	Now func() time.Time

	// MaxBodyBytes bounds a request body; larger ones get 413.
	MaxBodyBytes int64
	// MaxAttempts bounds the attempts to promote one client.
	MaxAttempts int
	// RetryBackoff is the first retry delay (doubling, ±20 % jitter).
	RetryBackoff time.Duration
	// MaxRetryBackoff caps the retry delay.
	MaxRetryBackoff time.Duration
	// AttemptTimeout bounds one promotion attempt.
	AttemptTimeout time.Duration
	// SyncBudget bounds the work done before answering the log stream.
	SyncBudget time.Duration
	// QueueSize bounds the clients waiting for a retry.
	QueueSize int
	// DedupeSize bounds the remembered log ids.
	DedupeSize int
	// HealthCacheTTL is how long Health reuses its token check.
	HealthCacheTTL time.Duration
	// HealthTimeout bounds Health's token check.
	HealthTimeout time.Duration
}

// withDefaults fills the zero fields of o.
func (o Options) withDefaults() Options {
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: defaultHTTPTimeout}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	setDefault(&o.MaxBodyBytes, DefaultMaxBodyBytes)
	setDefault(&o.MaxAttempts, DefaultMaxAttempts)
	setDefault(&o.RetryBackoff, DefaultRetryBackoff)
	setDefault(&o.MaxRetryBackoff, DefaultMaxRetryBackoff)
	setDefault(&o.AttemptTimeout, DefaultAttemptTimeout)
	setDefault(&o.SyncBudget, DefaultSyncBudget)
	setDefault(&o.QueueSize, DefaultQueueSize)
	setDefault(&o.DedupeSize, DefaultDedupeSize)
	setDefault(&o.HealthCacheTTL, DefaultHealthCacheTTL)
	setDefault(&o.HealthTimeout, DefaultHealthTimeout)
	o.MaxRetryBackoff = max(o.MaxRetryBackoff, o.RetryBackoff)
	if o.Connection == "" {
		o.Connection = "google-oauth2"
	}
	return o
}

// setDefault sets *p to d when *p is not positive.
func setDefault[T int | int64 | time.Duration](p *T, d T) {
	if *p <= 0 {
		*p = d
	}
}

// Webhook receives Auth0 log-stream batches and promotes dynamically
// registered clients. It is an http.Handler for POST /webhooks/auth0/logs;
// Health reports its state; Close stops its retry worker.
type Webhook struct {
	opts      Options
	log       zerolog.Logger
	secretSum [sha256.Size]byte
	mgmt      *management // nil when the Management API is not configured

	// sem serialises promotions (the webhook's and the worker's), so the
	// read-then-write steps of two promotions never interleave.
	sem chan struct{}

	mu           sync.Mutex
	stats        counters
	seen         *dedupe
	pending      map[string]*job // client id → retry waiting
	closed       bool
	lastWebhook  time.Time
	lastError    string
	lastErrorAt  time.Time
	lastPromoted time.Time
	lastFailed   bool // the last outcome recorded was a failure

	wake    chan struct{} // nudges the worker (buffered, 1)
	stopCtx context.Context
	stop    context.CancelFunc
	done    chan struct{} // closed when the worker has returned
	once    sync.Once

	healthMu sync.Mutex // one token check at a time
	tokCheck tokenCheck
}

// counters are the totals Health reports.
type counters struct {
	received  uint64
	promoted  uint64
	skipped   uint64
	failed    uint64
	abandoned uint64
	retried   uint64
}

// New returns a Webhook and starts its retry worker; call Close to stop it.
func New(opts Options) (*Webhook, error) {
	opts = opts.withDefaults()
	if opts.WebhookSecret == "" {
		return nil, errors.New("auth0: webhook secret is required (auth0.webhook_secret, LOG_WEBHOOK_SECRET)")
	}
	opts.Scopes = normaliseScopes(opts.Scopes)
	h := &Webhook{
		opts:      opts,
		log:       opts.Logger.With().Str("component", "auth0-webhook").Logger(),
		secretSum: sha256.Sum256([]byte(opts.WebhookSecret)),
		sem:       make(chan struct{}, 1),
		seen:      newDedupe(opts.DedupeSize),
		pending:   make(map[string]*job),
		wake:      make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
	if opts.ManagementConfigured() {
		base := strings.TrimSuffix(opts.ManagementURL, "/")
		u, err := url.Parse(base)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("auth0: management URL %q is not an absolute http(s) URL", opts.ManagementURL)
		}
		h.mgmt = &management{
			base:         base,
			clientID:     opts.ClientID,
			clientSecret: opts.ClientSecret,
			connection:   opts.Connection,
			audience:     opts.Audience,
			scopes:       opts.Scopes,
			hc:           opts.HTTPClient,
			now:          opts.Now,
		}
	}
	h.stopCtx, h.stop = context.WithCancel(context.Background())
	go h.run()
	return h, nil
}

// normaliseScopes trims, drops empty and duplicate scopes, and never
// returns nil (so a grant is created with "scope": []).
func normaliseScopes(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		s = strings.TrimSpace(s)
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Close stops the retry worker and waits for it; retries still pending are
// dropped (Auth0 keeps the logs; a replay promotes them). Requests arriving
// after Close get 503. Close is safe to call more than once.
func (h *Webhook) Close() error {
	h.once.Do(func() {
		h.mu.Lock()
		h.closed = true
		h.mu.Unlock()
		h.stop()
		<-h.done
	})
	return nil
}

// Summary is the JSON answer to a log-stream batch.
type Summary struct {
	// Received counts the log events in the batch.
	Received int `json:"received"`
	// Promoted counts the clients promoted while the request waited.
	Promoted int `json:"promoted"`
	// Skipped counts events that are not successful registrations, that
	// were seen before (same log_id), or whose client is already waiting
	// for a retry.
	Skipped int `json:"skipped"`
	// Failed counts registrations whose promotion failed in this request
	// (Queued of them will be retried).
	Failed int `json:"failed"`
	// Queued counts registrations handed to the retry worker.
	Queued int `json:"queued"`
}

// errorBody is the JSON shape of the webhook's error answers.
type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// ServeHTTP receives one Auth0 log-stream request: POST only, authenticated
// by the shared secret in X-Webhook-Secret or Authorization: Bearer, with a
// JSON array of log events, one event object, or JSON lines.
func (h *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "method_not_allowed", ErrorDescription: "use POST"})
		return
	}
	if !h.authorized(r) {
		h.log.Warn().Str("remote", r.RemoteAddr).Msg("auth0 log webhook: missing or wrong shared secret")
		writeJSON(w, http.StatusUnauthorized, errorBody{Error: "unauthorized", ErrorDescription: "missing or wrong webhook secret"})
		return
	}
	h.mu.Lock()
	closed := h.closed
	if !closed {
		h.lastWebhook = h.opts.Now()
	}
	h.mu.Unlock()
	if closed {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "unavailable", ErrorDescription: "shutting down"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Error: "too_large", ErrorDescription: fmt.Sprintf("body exceeds %d bytes", h.opts.MaxBodyBytes)})
			return
		}
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "bad_request", ErrorDescription: "could not read body"})
		return
	}
	events, err := parseBatch(body)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, errTooManyEvents) {
			status = http.StatusRequestEntityTooLarge
		}
		writeJSON(w, status, errorBody{Error: "invalid_batch", ErrorDescription: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, h.process(r.Context(), events))
}

// authorized reports whether r carries the shared secret, comparing SHA-256
// digests in constant time (so neither content nor length leaks).
func (h *Webhook) authorized(r *http.Request) bool {
	ok := 0
	if v := r.Header.Get("X-Webhook-Secret"); v != "" {
		sum := sha256.Sum256([]byte(v))
		ok |= subtle.ConstantTimeCompare(sum[:], h.secretSum[:])
	}
	if v := r.Header.Get("Authorization"); len(v) > len("Bearer ") && strings.EqualFold(v[:len("Bearer ")], "Bearer ") {
		sum := sha256.Sum256([]byte(strings.TrimSpace(v[len("Bearer "):])))
		ok |= subtle.ConstantTimeCompare(sum[:], h.secretSum[:])
	}
	return ok == 1
}

// writeJSON writes v as a JSON answer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"error":"server_error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// errTooManyEvents reports a batch beyond maxEventsPerRequest.
var errTooManyEvents = fmt.Errorf("more than %d log events in one request", maxEventsPerRequest)

// parseBatch decodes a log-stream body into its events: a JSON array of
// events, one event object, an object holding a "logs" array, or several
// of these one after another (JSON lines). An element that is not an
// object is kept as nil (and skipped).
func parseBatch(body []byte) ([]map[string]any, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, errors.New("empty body")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var events []map[string]any
	// Each value read is at least one event or one byte of body, so the
	// loop is bounded by both limits.
	for range maxEventsPerRequest + 1 {
		var v any
		if err := dec.Decode(&v); errors.Is(err, io.EOF) {
			return events, nil
		} else if err != nil {
			return nil, fmt.Errorf("body is not JSON: %w", err)
		}
		switch t := v.(type) {
		case []any:
			for _, e := range t {
				m, _ := e.(map[string]any)
				events = append(events, m)
			}
		case map[string]any:
			if logs, ok := t["logs"].([]any); ok && t["data"] == nil && t["log_id"] == nil {
				for _, e := range logs {
					m, _ := e.(map[string]any)
					events = append(events, m)
				}
			} else {
				events = append(events, t)
			}
		default:
			return nil, errors.New("body is neither a JSON array nor a JSON object")
		}
		if len(events) > maxEventsPerRequest {
			return nil, errTooManyEvents
		}
	}
	return nil, errTooManyEvents
}

// registration is a successful Dynamic Client Registration found in a log.
type registration struct {
	logID    string
	clientID string
}

// classify looks at one log event. It reports whether the event is a
// successful Dynamic Client Registration and, if so, the registration; for
// an event that is one but names no usable client id, err says why.
func classify(ev map[string]any) (reg registration, isDCR bool, err error) {
	if ev == nil {
		return reg, false, nil
	}
	data, ok := ev["data"].(map[string]any)
	if !ok {
		data = ev // a bare log record, not wrapped in {log_id, data}
	}
	reg.logID = firstString(str(ev, "log_id"), str(data, "log_id"), str(data, "_id"))
	if !isDCRLogType(str(data, "type")) {
		return reg, false, nil
	}
	path := str(data, "details", "request", "path")
	if path == "" {
		if u, err := url.Parse(str(data, "details", "request", "url")); err == nil {
			path = u.Path
		}
	}
	path = strings.TrimSuffix(strings.ToLower(strings.SplitN(path, "?", 2)[0]), "/")
	desc := strings.ToLower(str(data, "description"))
	if !strings.HasSuffix(path, "/oidc/register") && !strings.Contains(desc, "dynamic client registration") {
		return reg, false, nil
	}
	if m := str(data, "details", "request", "method"); m != "" && !strings.EqualFold(m, http.MethodPost) {
		return reg, false, nil
	}
	if code, ok := number(data, "details", "response", "statusCode"); ok && (code < 200 || code > 299) {
		return reg, false, nil
	}
	reg.clientID = firstString(str(data, "details", "response", "body", "client_id"), str(data, "client_id"))
	switch {
	case reg.clientID == "":
		return reg, true, errors.New("registration log has no client_id")
	case !validClientID(reg.clientID):
		return reg, true, fmt.Errorf("registration log has an invalid client_id %q", truncate(reg.clientID, 40))
	}
	return reg, true, nil
}

// validClientID accepts the characters Auth0 client ids are made of.
func validClientID(id string) bool {
	if len(id) == 0 || len(id) > maxClientIDLen {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == '.':
		default:
			return false
		}
	}
	return true
}

// str walks m along keys and returns the string found, or "".
func str(m map[string]any, keys ...string) string {
	v, ok := walk(m, keys)
	if !ok {
		return ""
	}
	s, _ := v.(string)
	return s
}

// number walks m along keys and returns the integer found.
func number(m map[string]any, keys ...string) (int64, bool) {
	v, ok := walk(m, keys)
	if !ok {
		return 0, false
	}
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	case float64:
		return int64(n), true
	default:
		return 0, false
	}
}

// walk follows keys through nested objects.
func walk(m map[string]any, keys []string) (any, bool) {
	var v any = m
	for _, k := range keys {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = obj[k]; !ok {
			return nil, false
		}
	}
	return v, true
}

// firstString returns the first non-empty value.
func firstString(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// process handles the events of one request: the first promotion attempts
// run here, within SyncBudget; the rest goes to the retry worker.
func (h *Webhook) process(ctx context.Context, events []map[string]any) Summary {
	var s Summary
	deadline := time.Now().Add(h.opts.SyncBudget)
	for _, ev := range events {
		s.Received++
		h.count(func(c *counters) { c.received++ })
		reg, isDCR, err := classify(ev)
		if !isDCR {
			s.Skipped++
			h.count(func(c *counters) { c.skipped++ })
			continue
		}
		logger := h.log.With().Str("log_id", reg.logID).Str("client_id", reg.clientID).Logger()
		if err != nil {
			s.Failed++
			h.fail(fmt.Errorf("auth0: log %s: %w", reg.logID, err), true)
			logger.Error().Err(err).Msg("auth0 log webhook: cannot promote the registered client")
			continue
		}
		switch h.admit(reg) {
		case admitDuplicate:
			s.Skipped++
			logger.Debug().Msg("auth0 log webhook: registration already handled or waiting for a retry")
			continue
		case admitSelf:
			s.Skipped++
			logger.Warn().Msg("auth0 log webhook: refusing to promote the Management API client itself")
			continue
		}
		if h.mgmt == nil {
			s.Failed++
			h.forget(reg.logID)
			h.fail(errors.New("auth0: management API not configured (auth0.domain, auth0.client_id, auth0.client_secret)"), true)
			logger.Error().Msg("auth0 log webhook: management API not configured; client not promoted")
			continue
		}
		budget := time.Until(deadline)
		if budget < minSyncAttempt {
			if h.enqueue(reg, 0) {
				s.Queued++
			} else {
				s.Failed++
				h.count(func(c *counters) { c.failed++ })
				h.giveUp(reg, errQueueFull)
			}
			continue
		}
		err = h.attempt(ctx, min(budget, h.opts.AttemptTimeout), reg, 1)
		switch {
		case err == nil:
			s.Promoted++
		case !retryable(err) || h.opts.MaxAttempts <= 1:
			s.Failed++
			h.giveUp(reg, nil)
		case h.enqueue(reg, 1):
			s.Failed++
			s.Queued++
		default:
			s.Failed++
			h.giveUp(reg, errQueueFull)
		}
	}
	return s
}

// admission is what admit decided about a registration.
type admission int

const (
	admitOK        admission = iota // go ahead
	admitDuplicate                  // same log seen, or client waiting for a retry
	admitSelf                       // the Management API client itself
)

// admit decides whether reg is to be worked on, and remembers its log id.
func (h *Webhook) admit(reg registration) admission {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.mgmt != nil && reg.clientID == h.mgmt.clientID {
		h.stats.skipped++
		return admitSelf
	}
	if _, waiting := h.pending[reg.clientID]; waiting {
		h.stats.skipped++
		return admitDuplicate
	}
	if reg.logID != "" && !h.seen.add(reg.logID) {
		h.stats.skipped++
		return admitDuplicate
	}
	return admitOK
}

// attempt makes attempt number n to promote reg, bounded by timeout, and
// records its outcome (a failure is not yet final: the caller decides
// whether to retry).
func (h *Webhook) attempt(ctx context.Context, timeout time.Duration, reg registration, n int) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	logger := h.log.With().Str("log_id", reg.logID).Str("client_id", reg.clientID).Int("attempt", n).Logger()
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		err := fmt.Errorf("promote client %s: waiting for another promotion: %w", reg.clientID, ctx.Err())
		h.fail(err, false)
		logger.Warn().Err(err).Msg("auth0 log webhook: promotion attempt failed")
		return err
	}
	res, err := h.mgmt.promote(ctx, reg.clientID)
	<-h.sem
	if err != nil {
		err = fmt.Errorf("promote client %s: %w", reg.clientID, err)
		h.fail(err, false)
		logger.Warn().Err(err).Bool("retryable", retryable(err)).Msg("auth0 log webhook: promotion attempt failed")
		return err
	}
	h.mu.Lock()
	h.stats.promoted++
	h.lastPromoted = h.opts.Now()
	h.lastFailed = false
	h.mu.Unlock()
	logger.Info().
		Bool("client_patched", res.clientPatched).
		Bool("connection_enabled", res.connectionEnabled).
		Bool("grant_created", res.grantCreated).
		Bool("grant_patched", res.grantPatched).
		Msg("auth0 log webhook: client promoted")
	return nil
}

// count applies f to the counters under the lock.
func (h *Webhook) count(f func(*counters)) {
	h.mu.Lock()
	f(&h.stats)
	h.mu.Unlock()
}

// fail records a failed attempt; final also counts it as abandoned.
func (h *Webhook) fail(err error, final bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stats.failed++
	if final {
		h.stats.abandoned++
	}
	h.lastError = truncate(err.Error(), 2*maxErrorText)
	h.lastErrorAt = h.opts.Now()
	h.lastFailed = true
}

// forget drops a log id from the replay set, so a replay of a log whose
// promotion was given up is tried again.
func (h *Webhook) forget(logID string) {
	if logID == "" {
		return
	}
	h.mu.Lock()
	h.seen.forget(logID)
	h.mu.Unlock()
}
