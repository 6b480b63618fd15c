// Package audit is the gateway's audit stage: one structured event per
// decision (allow or deny), written as a JSON line. An event names who
// (subject, tenant, client, token id — never the token), what (method, tool,
// upstream), the decision with its reason code, and how long it took.
package audit

import (
	"io"
	"time"

	"github.com/rs/zerolog"
)

// Decisions.
const (
	Allow = "allow"
	Deny  = "deny"
	Error = "error"
	// Limited: refused by a rate limit (reason rate_limited).
	Limited = "limited"
)

// Event is one audited decision.
type Event struct {
	RequestID string
	SessionID string
	Subject   string
	Tenant    string
	ClientID  string
	TokenID   string
	Method    string
	Tool      string
	Upstream  string
	Decision  string
	Reason    string
	Rule      string
	Status    int
	Latency   time.Duration
}

// Sink receives audit events.
type Sink interface {
	Write(e Event)
}

// JSONSink writes each event as one JSON line (zerolog) to a writer.
type JSONSink struct {
	log zerolog.Logger
}

var _ Sink = (*JSONSink)(nil)

// NewJSONSink returns a sink writing JSON lines to w. zerolog writes each
// line with a single Write call, so lines never interleave.
func NewJSONSink(w io.Writer) *JSONSink {
	return &JSONSink{log: zerolog.New(w).With().Timestamp().Str("type", "audit").Logger()}
}

// Write emits e. Empty fields are left out.
func (s *JSONSink) Write(e Event) {
	ev := s.log.Log()
	str := func(k, v string) {
		if v != "" {
			ev.Str(k, v)
		}
	}
	str("request_id", e.RequestID)
	str("session_id", e.SessionID)
	str("subject", e.Subject)
	str("tenant", e.Tenant)
	str("client_id", e.ClientID)
	str("token_id", e.TokenID)
	str("method", e.Method)
	str("tool", e.Tool)
	str("upstream", e.Upstream)
	str("decision", e.Decision)
	str("reason", e.Reason)
	str("rule", e.Rule)
	if e.Status != 0 {
		ev.Int("status", e.Status)
	}
	ev.Float64("latency_ms", float64(e.Latency.Microseconds())/1000)
	ev.Send()
}

// Discard drops events (audit turned off).
type Discard struct{}

// Write does nothing.
func (Discard) Write(Event) {}
