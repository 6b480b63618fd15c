package mcp

import (
	"net/http"
	"strconv"

	"github.com/gatewaystack/gatewaystack/audit"
)

// refusal is a limit stage's decision to refuse a request, with its reason
// and retry information: the stages (rate limits, budgets, loop guard,
// concurrency and stream caps, an unavailable store) decide and return one;
// only render writes the answer (HTTP status and headers, a JSON-RPC error
// on /mcp or plain JSON on /proxy) and the audit event.
type refusal struct {
	// Status is the HTTP status; Code the JSON-RPC error code.
	Status, Code int
	// Decision is the audit decision (limited, or error for a store that
	// failed); Reason the reason code; Rule the limit that refused.
	Decision, Reason, Rule string
	// Message says what happened and what to do, for a person.
	Message string
	// Data is the JSON-RPC error's data (and the plain body's members).
	Data map[string]any
	// RetryAfter is the Retry-After header in seconds (0: none).
	RetryAfter int64
	// RateLimit, when set, is the RateLimit-* headers' limit and
	// remaining count (the reset is RetryAfter).
	RateLimit *[2]int
}

// render answers r's refusal and audits it; it reports whether there was
// one (nil: the request goes on).
func (g *Gateway) render(w http.ResponseWriter, st *requestState, rid []byte, r *refusal) bool {
	if r == nil {
		return false
	}
	h := w.Header()
	if r.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(r.RetryAfter, 10))
	}
	if r.RateLimit != nil {
		h.Set("RateLimit-Limit", strconv.Itoa(r.RateLimit[0]))
		h.Set("RateLimit-Remaining", strconv.Itoa(r.RateLimit[1]))
		h.Set("RateLimit-Reset", strconv.FormatInt(r.RetryAfter, 10))
	}
	if r.Rule != "" {
		st.event.Rule = r.Rule
	}
	decision := r.Decision
	if decision == "" {
		decision = audit.Limited
	}
	g.audit(st, decision, r.Reason, r.Status)
	g.writeRefusal(w, st, r.Status, rid, r.Code, r.Message, r.Data)
	return true
}
