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

// SchemaVersion is the version of the event schema, written as "schema"
// in every event. It changes only when a field changes meaning or is
// removed; new fields may be added within a version.
const SchemaVersion = 1

// Event is one audited decision.
type Event struct {
	// Time is when the decision was made (set by the gateway; sinks set it
	// when zero).
	Time time.Time
	// EventID is unique per event (random, 16 hex digits).
	EventID   string
	RequestID string
	SessionID string
	Subject   string
	Tenant    string
	ClientID  string
	// TokenID is the token's jti, never the token.
	TokenID string
	// Method is the JSON-RPC method (or the HTTP method when there is none).
	Method string
	// Tool, Prompt and Resource name what the request acted on (at most
	// one is set).
	Tool     string
	Prompt   string
	Resource string
	Upstream string
	// Decision is allow, deny, limited or error.
	Decision string
	// Reason is the reason code, Rule the policy pattern or limit that
	// decided.
	Reason string
	Rule   string
	// PolicyVersion is a hash of the policy in force (first 12 hex digits
	// of its SHA-256).
	PolicyVersion string
	// Status is the HTTP status of the gateway's answer.
	Status int
	// Latency is how long the gateway took, upstream included.
	Latency time.Duration
	// UpstreamStatus is the upstream's HTTP status (0: not called or not
	// HTTP).
	UpstreamStatus int
	// UpstreamLatency is how long the upstream took (0: not called).
	UpstreamLatency time.Duration
	// ResultBytes is the size of the upstream's result (0: none).
	ResultBytes int64
	// ArgsSHA256 is the hex SHA-256 of the canonical JSON of the call's
	// arguments (tools/call, prompts/get).
	ArgsSHA256 string
	// Args holds the raw arguments, only for tools configured in
	// audit.raw_arguments.
	Args []byte
	// Cost is the budget units the call was charged.
	Cost int64
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
	Fields(ev, e)
	ev.Send()
}

// Fields adds e's fields to a zerolog event, in schema order; empty ones
// are left out.
func Fields(ev *zerolog.Event, e Event) {
	str := func(k, v string) {
		if v != "" {
			ev.Str(k, v)
		}
	}
	ev.Int("schema", SchemaVersion)
	str("event_id", e.EventID)
	str("request_id", e.RequestID)
	str("session_id", e.SessionID)
	str("subject", e.Subject)
	str("tenant", e.Tenant)
	str("client_id", e.ClientID)
	str("token_id", e.TokenID)
	str("method", e.Method)
	str("tool", e.Tool)
	str("prompt", e.Prompt)
	str("resource", e.Resource)
	str("upstream", e.Upstream)
	str("decision", e.Decision)
	str("reason", e.Reason)
	str("rule", e.Rule)
	str("policy_version", e.PolicyVersion)
	if e.Status != 0 {
		ev.Int("status", e.Status)
	}
	ev.Float64("latency_ms", float64(e.Latency.Microseconds())/1000)
	if e.UpstreamStatus != 0 {
		ev.Int("upstream_status", e.UpstreamStatus)
	}
	if e.UpstreamLatency != 0 {
		ev.Float64("upstream_latency_ms", float64(e.UpstreamLatency.Microseconds())/1000)
	}
	if e.ResultBytes != 0 {
		ev.Int64("result_bytes", e.ResultBytes)
	}
	str("args_sha256", e.ArgsSHA256)
	if len(e.Args) > 0 {
		ev.RawJSON("args", e.Args)
	}
	if e.Cost != 0 {
		ev.Int64("cost", e.Cost)
	}
}

// Discard drops events (audit turned off).
type Discard struct{}

// Write does nothing.
func (Discard) Write(Event) {}
