package auth0

import (
	"context"
	"time"
)

// Health states.
const (
	// StatusOK: the Management API token can be had, no retry is pending
	// and the last promotion outcome was a success (or nothing failed).
	StatusOK = "ok"
	// StatusDegraded: the token can be had, but retries are pending or the
	// last outcome was a failure.
	StatusDegraded = "degraded"
	// StatusDown: the Management API is not configured or no token can be
	// had, so no client can be promoted.
	StatusDown = "down"
)

// Health is the state of the webhook, shaped for JSON (/health/auth0). It
// holds no secret or token.
type Health struct {
	// Status is StatusOK, StatusDegraded or StatusDown.
	Status string `json:"status"`
	// OK is Status == StatusOK.
	OK bool `json:"ok"`
	// ManagementConfigured: management URL, client id and secret are set.
	ManagementConfigured bool `json:"management_configured"`
	// ManagementURL is the Management API base URL (no credentials).
	ManagementURL string `json:"management_url,omitempty"`
	// Connection is the connection enabled for promoted clients.
	Connection string `json:"connection"`
	// Audience is the API promoted clients are granted.
	Audience string `json:"audience,omitempty"`
	// TokenObtainable: a Management API token is cached or could be
	// fetched at TokenCheckedAt.
	TokenObtainable bool `json:"token_obtainable"`
	// TokenError says why no token could be had.
	TokenError string `json:"token_error,omitempty"`
	// TokenCheckedAt is when the token was last checked (checks are
	// reused for Options.HealthCacheTTL).
	TokenCheckedAt *time.Time `json:"token_checked_at,omitempty"`
	// LastWebhookAt is when an authenticated log-stream request last
	// arrived.
	LastWebhookAt *time.Time `json:"last_webhook_at,omitempty"`
	// Received counts log events received.
	Received uint64 `json:"received"`
	// Promoted counts successful promotions.
	Promoted uint64 `json:"promoted"`
	// Skipped counts events that were not registrations, replays, or
	// clients already waiting for a retry.
	Skipped uint64 `json:"skipped"`
	// Failed counts failed promotion attempts and registrations that could
	// not be worked on (no client id, no Management API).
	Failed uint64 `json:"failed"`
	// Retried counts attempts made by the retry worker.
	Retried uint64 `json:"retried"`
	// Abandoned counts registrations given up on (permanent error,
	// attempts exhausted, queue full).
	Abandoned uint64 `json:"abandoned"`
	// PendingRetries counts clients waiting for a retry.
	PendingRetries int `json:"pending_retries"`
	// LastError is the last failure (no secrets), LastErrorAt its time.
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	// LastPromotedAt is when a client was last promoted.
	LastPromotedAt *time.Time `json:"last_promoted_at,omitempty"`
}

// tokenCheck is the cached outcome of Health's token check.
type tokenCheck struct {
	at  time.Time
	ok  bool
	err string
}

// Health reports the webhook's state. It checks that a Management API token
// can be had (a cached token counts; otherwise one is fetched, within
// Options.HealthTimeout) and reuses that check for Options.HealthCacheTTL,
// so polling Health does not load Auth0.
func (h *Webhook) Health(ctx context.Context) Health {
	tc := h.checkToken(ctx)

	h.mu.Lock()
	out := Health{
		ManagementConfigured: h.mgmt != nil,
		Connection:           h.opts.Connection,
		Audience:             h.opts.Audience,
		Received:             h.stats.received,
		Promoted:             h.stats.promoted,
		Skipped:              h.stats.skipped,
		Failed:               h.stats.failed,
		Retried:              h.stats.retried,
		Abandoned:            h.stats.abandoned,
		PendingRetries:       len(h.pending),
		LastError:            h.lastError,
		LastWebhookAt:        timePtr(h.lastWebhook),
		LastErrorAt:          timePtr(h.lastErrorAt),
		LastPromotedAt:       timePtr(h.lastPromoted),
	}
	lastFailed := h.lastFailed
	h.mu.Unlock()

	if h.mgmt != nil {
		out.ManagementURL = h.mgmt.base
	}
	out.TokenObtainable = tc.ok
	out.TokenError = tc.err
	out.TokenCheckedAt = timePtr(tc.at)
	switch {
	case !out.ManagementConfigured || !out.TokenObtainable:
		out.Status = StatusDown
	case out.PendingRetries > 0 || lastFailed:
		out.Status = StatusDegraded
	default:
		out.Status = StatusOK
	}
	out.OK = out.Status == StatusOK
	return out
}

// checkToken returns the token check, making a new one when the cached one
// is older than HealthCacheTTL.
func (h *Webhook) checkToken(ctx context.Context) tokenCheck {
	if h.mgmt == nil {
		return tokenCheck{err: "management API not configured"}
	}
	h.healthMu.Lock()
	defer h.healthMu.Unlock()
	now := h.opts.Now()
	if !h.tokCheck.at.IsZero() && now.Sub(h.tokCheck.at) < h.opts.HealthCacheTTL && now.Sub(h.tokCheck.at) >= 0 {
		return h.tokCheck
	}
	ctx, cancel := context.WithTimeout(ctx, h.opts.HealthTimeout)
	defer cancel()
	_, err := h.mgmt.token(ctx)
	h.tokCheck = tokenCheck{at: now, ok: err == nil}
	if err != nil {
		h.tokCheck.err = truncate(err.Error(), 2*maxErrorText)
		h.log.Warn().Err(err).Msg("auth0 health: no Management API token")
	}
	return h.tokCheck
}

// timePtr returns nil for the zero time, so JSON omits it.
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
