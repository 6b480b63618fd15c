// Package audit is the gateway's audit stage: one structured event per
// decision (allow or deny), written as a JSON line. An event names who
// (subject, tenant, client, token id — never the token), what (method, tool,
// upstream), the decision with its reason code, and how long it took.
//
// Events reach their destinations through an Auditor, which never blocks the
// request path: every destination has its own bounded queue and goroutine,
// and an event that cannot be queued or delivered is counted as dropped.
// Destinations are a writer (stdout), an append-only hash-chained file
// (FileSink, checked with Verify), a webhook (WebhookSink) and an in-memory
// ring of the latest events (Ring). Report summarises event files.
//
// With a chain key the file's chain is keyed: every line carries an
// HMAC-SHA256 of its bytes and the previous line's, so nobody without the
// key can edit, insert or append a line. A keyed FileSink with a
// checkpoint key also signs Checkpoints of its head, which the Auditor
// hands to the other destinations; Verify checks the chain against them,
// so lines cut off the end and deleted files show too.
package audit

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
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
	// Workflow is the agent task the call belongs to, as the client named
	// it in _meta["io.gatewaystack/workflow"] (validated and bounded).
	Workflow string
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
	// audit.raw_arguments. Sinks share it: it must not change once the
	// event is written.
	Args []byte
	// Cost is the budget units the call was charged.
	Cost int64
	// Checkpoint, when set, makes this not a decision but a checkpoint of
	// a keyed file chain on its way to the destinations that carry
	// checkpoints (see CheckpointCarrier); MarshalLine writes it as a
	// checkpoint line and the other fields are ignored.
	Checkpoint *Checkpoint
}

// Sink receives audit events.
type Sink interface {
	Write(e Event)
}

// Link is a line's place in a file's hash chain: the sequence number of
// the line (1 for the first line ever written, continuing across restarts
// and rotations) and the hex SHA-256 of the previous line.
type Link struct {
	Seq      uint64
	PrevHash string
}

// GenesisHash is the prev_hash of the first line of a chain.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// lineWriter keeps the one line zerolog writes.
type lineWriter struct{ line []byte }

func (w *lineWriter) Write(p []byte) (int, error) {
	w.line = append(w.line[:0], p...)
	return len(p), nil
}

// MarshalLine returns e as one JSON object followed by a newline, fields in
// schema order: "type":"audit", "time" (RFC 3339 with nanoseconds, UTC; now
// when e.Time is zero), the fields of Fields, then, when link is not nil,
// "seq" and "prev_hash". An event holding a Checkpoint is written as the
// checkpoint line instead (link is ignored). It returns nil only when
// zerolog is disabled globally (zerolog.SetGlobalLevel(zerolog.Disabled)).
func (e Event) MarshalLine(link *Link) []byte {
	if e.Checkpoint != nil {
		return e.Checkpoint.marshal()
	}
	t := e.Time
	if t.IsZero() {
		t = time.Now()
	}
	w := &lineWriter{}
	l := zerolog.New(w)
	ev := l.Log()
	ev.Str("type", "audit")
	ev.Str("time", t.UTC().Format(time.RFC3339Nano))
	Fields(ev, e)
	if link != nil {
		ev.Uint64("seq", link.Seq)
		ev.Str("prev_hash", link.PrevHash)
	}
	ev.Send()
	return w.line
}

// marshalKeyed returns e as a line of a keyed chain, ending with its MAC
// (see chain.go), and that MAC. w is reused for the line's bytes.
func (e *Event) marshalKeyed(w *lineWriter, seq uint64, chain string, prevMAC *[32]byte, m *macer) ([]byte, [32]byte, error) {
	t := e.Time
	if t.IsZero() {
		t = time.Now()
	}
	l := zerolog.New(w)
	ev := l.Log()
	ev.Str("type", "audit")
	ev.Str("time", t.UTC().Format(time.RFC3339Nano))
	Fields(ev, *e)
	ev.Uint64("seq", seq)
	ev.Str("chain", chain)
	ev.Hex("prev_mac", prevMAC[:])
	w.line = w.line[:0]
	ev.Send()
	if len(w.line) == 0 {
		return nil, [32]byte{}, errZerologDisabled
	}
	line, mac, err := appendMAC(w.line, m)
	w.line = line // keep the room the MAC took for the next line
	return line, mac, err
}

// JSONSink writes each event as one JSON line (MarshalLine) to a writer,
// synchronously. An Auditor with a WriterSink does the same off the
// request path.
type JSONSink struct {
	w io.Writer
}

var _ Sink = (*JSONSink)(nil)

// NewJSONSink returns a sink writing JSON lines to w, each line with a
// single Write call, so lines never interleave.
func NewJSONSink(w io.Writer) *JSONSink {
	return &JSONSink{w: w}
}

// Write emits e. Empty fields are left out. A write error is dropped: the
// writer is the process's stdout.
func (s *JSONSink) Write(e Event) {
	if line := e.MarshalLine(nil); line != nil {
		_, _ = s.w.Write(line)
	}
}

// Fields adds e's fields to a zerolog event, in schema order; empty ones
// are left out. Arguments that are not valid JSON are written as a string.
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
	str("workflow", e.Workflow)
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
		if json.Valid(e.Args) {
			ev.RawJSON("args", e.Args)
		} else {
			ev.Str("args", string(e.Args))
		}
	}
	if e.Cost != 0 {
		ev.Int64("cost", e.Cost)
	}
}

// Discard drops events (audit turned off).
type Discard struct{}

// Write does nothing.
func (Discard) Write(Event) {}

// Record is one audit line read back by ParseLine.
type Record struct {
	Event
	// Type is the line's "type" ("audit").
	Type string
	// Schema is the line's "schema".
	Schema int
	// Seq and PrevHash are the line's place in its file's hash chain
	// (zero and empty for lines written without one).
	Seq      uint64
	PrevHash string
	// Chain, PrevMAC and MAC are set instead of PrevHash on a line of a
	// keyed chain: the chain's id, the previous line's MAC and the line's
	// own (hex).
	Chain   string
	PrevMAC string
	MAC     string
}

// wireEvent is an audit line as JSON; unknown fields are ignored.
type wireEvent struct {
	Type              string          `json:"type"`
	Time              json.RawMessage `json:"time"`
	Schema            int             `json:"schema"`
	EventID           string          `json:"event_id"`
	RequestID         string          `json:"request_id"`
	SessionID         string          `json:"session_id"`
	Subject           string          `json:"subject"`
	Tenant            string          `json:"tenant"`
	ClientID          string          `json:"client_id"`
	TokenID           string          `json:"token_id"`
	Method            string          `json:"method"`
	Tool              string          `json:"tool"`
	Prompt            string          `json:"prompt"`
	Resource          string          `json:"resource"`
	Upstream          string          `json:"upstream"`
	Workflow          string          `json:"workflow"`
	Decision          string          `json:"decision"`
	Reason            string          `json:"reason"`
	Rule              string          `json:"rule"`
	PolicyVersion     string          `json:"policy_version"`
	Status            int             `json:"status"`
	LatencyMS         float64         `json:"latency_ms"`
	UpstreamStatus    int             `json:"upstream_status"`
	UpstreamLatencyMS float64         `json:"upstream_latency_ms"`
	ResultBytes       int64           `json:"result_bytes"`
	ArgsSHA256        string          `json:"args_sha256"`
	Args              json.RawMessage `json:"args"`
	Cost              int64           `json:"cost"`
	Seq               uint64          `json:"seq"`
	PrevHash          string          `json:"prev_hash"`
	Chain             string          `json:"chain"`
	PrevMAC           string          `json:"prev_mac"`
	MAC               string          `json:"mac"`
}

// ErrNotAudit is returned by ParseLine for a JSON object that is not an
// audit event (its "type" is not "audit").
var ErrNotAudit = errors.New(`not an audit event (no "type":"audit")`)

// ParseLine reads one audit line (with or without its trailing newline).
// Unknown fields are ignored; "time" may be an RFC 3339 string or Unix
// seconds.
func ParseLine(line []byte) (Record, error) {
	var w wireEvent
	if err := json.Unmarshal(line, &w); err != nil {
		return Record{}, fmt.Errorf("parse audit line: %w", err)
	}
	if w.Type != "audit" {
		return Record{}, ErrNotAudit
	}
	t, err := parseTime(w.Time)
	if err != nil {
		return Record{}, fmt.Errorf("parse audit line: %w", err)
	}
	r := Record{Type: w.Type, Schema: w.Schema, Seq: w.Seq, PrevHash: w.PrevHash, Chain: w.Chain, PrevMAC: w.PrevMAC, MAC: w.MAC}
	r.Event = Event{
		Time: t, EventID: w.EventID, RequestID: w.RequestID, SessionID: w.SessionID,
		Subject: w.Subject, Tenant: w.Tenant, ClientID: w.ClientID, TokenID: w.TokenID,
		Method: w.Method, Tool: w.Tool, Prompt: w.Prompt, Resource: w.Resource, Upstream: w.Upstream, Workflow: w.Workflow,
		Decision: w.Decision, Reason: w.Reason, Rule: w.Rule, PolicyVersion: w.PolicyVersion,
		Status: w.Status, Latency: fromMillis(w.LatencyMS), UpstreamStatus: w.UpstreamStatus,
		UpstreamLatency: fromMillis(w.UpstreamLatencyMS), ResultBytes: w.ResultBytes,
		ArgsSHA256: w.ArgsSHA256, Cost: w.Cost,
	}
	if len(w.Args) > 0 {
		r.Args = []byte(w.Args)
	}
	return r, nil
}

// parseTime reads "time": an RFC 3339 string, or Unix seconds.
func parseTime(raw json.RawMessage) (time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, errors.New(`no "time"`)
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return time.Time{}, fmt.Errorf(`"time": %w`, err)
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, fmt.Errorf(`"time": %w`, err)
		}
		return t, nil
	}
	secs, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return time.Time{}, fmt.Errorf(`"time" %s is neither RFC 3339 nor Unix seconds`, raw)
	}
	whole, frac := math.Modf(secs)
	return time.Unix(int64(whole), int64(frac*1e9)).UTC(), nil
}

// fromMillis turns milliseconds (as Fields writes them, to the
// microsecond) back into a duration.
func fromMillis(ms float64) time.Duration {
	return time.Duration(math.Round(ms*1000)) * time.Microsecond
}

// validHash reports whether s is a hex SHA-256.
func validHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
