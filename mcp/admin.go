package mcp

import (
	"cmp"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gatewaystack/gatewaystack/audit"
	"github.com/gatewaystack/gatewaystack/auth"
	"github.com/gatewaystack/gatewaystack/limit"
)

// AdminUsagePath serves the current budget usage and, for a given tenant or
// subject, their rate-limit state.
const AdminUsagePath = "/admin/usage"

// maxUsageKeys bounds the keys one usage answer lists per budget.
const maxUsageKeys = 10_000

// UsageReport is the answer of GET /admin/usage.
type UsageReport struct {
	// Time is when the report was made (RFC 3339).
	Time string `json:"time"`
	// Store is memory (this replica only) or redis (all replicas).
	Store string `json:"store"`
	// Budgets holds each enabled budget with who spent what this period.
	Budgets []BudgetUsage `json:"budgets"`
	// RateLimits holds, for the tenant or subject asked about, each rate
	// limit's state (without consuming anything).
	RateLimits []RateUsage `json:"rate_limits"`
}

// BudgetUsage is one budget's spending this period.
type BudgetUsage struct {
	Rule   string `json:"rule"`
	Scope  string `json:"scope"`
	Units  int64  `json:"units"`
	Period string `json:"period"`
	// Usage lists keys with their spending, most spent first.
	Usage []KeyUsage `json:"usage"`
	// Truncated: more keys spent something than were listed.
	Truncated bool `json:"truncated,omitempty"`
}

// KeyUsage is one tenant's or subject's spending of a budget.
type KeyUsage struct {
	Key       string `json:"key"`
	Used      int64  `json:"used"`
	Remaining int64  `json:"remaining"`
	// ResetAfter is seconds until the period ends.
	ResetAfter int64 `json:"reset_after"`
}

// RateUsage is one rate limit's state for one key.
type RateUsage struct {
	Rule      string `json:"rule"`
	Scope     string `json:"scope"`
	Key       string `json:"key"`
	Limit     int    `json:"limit"`
	Remaining int    `json:"remaining"`
	// ResetAfter is seconds until the bucket is full again.
	ResetAfter int64 `json:"reset_after"`
}

// serveAdminUsage answers GET /admin/usage[?tenant=T][&subject=S][&limit=N]
// for a verified token carrying the admin scope. Without tenant or subject
// it lists every key that spent something of each budget this period (N
// per budget, default and at most 10000); with them, just those keys, and
// their rate-limit state.
func (g *Gateway) serveAdminUsage(w http.ResponseWriter, r *http.Request) {
	st, ok := g.adminAuth(w, r, "admin/usage")
	if !ok {
		return
	}
	q := r.URL.Query()
	tenant, subject := q.Get("tenant"), q.Get("subject")
	n := maxUsageKeys
	if v := q.Get("limit"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > maxUsageKeys {
			g.audit(st, audit.Deny, "bad_request", http.StatusBadRequest)
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request",
				"error_description": "limit must be a whole number from 1 to " + strconv.Itoa(maxUsageKeys)})
			return
		}
	}
	rep, err := g.usageReport(r, tenant, subject, n)
	if err != nil {
		g.o.Logger.Warn().Str("request_id", st.event.RequestID).Err(err).Msg("usage report failed")
		w.Header().Set("Retry-After", "1")
		g.audit(st, audit.Error, "limit_unavailable", http.StatusServiceUnavailable)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "temporarily_unavailable",
			"error_description": "the limit store did not answer; retry shortly", "reason": "limit_unavailable"})
		return
	}
	g.audit(st, audit.Allow, "admin", http.StatusOK)
	writeJSON(w, http.StatusOK, rep)
}

// adminAuth runs the admin endpoints' pipeline: GET only, per-IP flood
// limit, a verified bearer token carrying the admin scope. It answers
// every refusal (audited) itself and reports whether the request may go
// on.
func (g *Gateway) adminAuth(w http.ResponseWriter, r *http.Request, method string) (*requestState, bool) {
	st := &requestState{start: time.Now()}
	st.event.RequestID = newRequestID()
	st.event.Method = method
	w.Header().Set("X-Request-Id", st.event.RequestID)
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		g.audit(st, audit.Deny, "method_not_allowed", http.StatusMethodNotAllowed)
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method_not_allowed", "error_description": "use GET"})
		return st, false
	}
	ip := g.o.Limits.clientIP(r)
	if g.ipRefused(w, r, st, ip) {
		return st, false
	}
	id, aerr := g.verifyBearer(r)
	if aerr != nil {
		g.chargeIP(r.Context(), ip)
		g.audit(st, audit.Deny, aerr.Reason, aerr.Status)
		g.writeAuthError(w, aerr)
		return st, false
	}
	st.event.Subject, st.event.Tenant, st.event.ClientID, st.event.TokenID = id.Subject, id.Tenant, id.ClientID, id.TokenID
	if !id.HasScope(g.o.Admin.Scope) {
		w.Header().Set("WWW-Authenticate", auth.Challenge{Error: auth.CodeInsufficientScope,
			Description: "the admin endpoints need the " + g.o.Admin.Scope + " scope",
			Scope:       g.o.Admin.Scope, ResourceMetadata: g.prmURL}.String())
		g.audit(st, audit.Deny, "insufficient_scope", http.StatusForbidden)
		writeJSON(w, http.StatusForbidden, map[string]string{"error": auth.CodeInsufficientScope,
			"error_description": "the admin endpoints need the " + g.o.Admin.Scope + " scope", "reason": "insufficient_scope"})
		return st, false
	}
	return st, true
}

// usageReport reads the stores (consuming nothing).
func (g *Gateway) usageReport(r *http.Request, tenant, subject string, n int) (UsageReport, error) {
	ctx := r.Context()
	lim := g.o.Limits
	rep := UsageReport{Time: time.Now().UTC().Format(time.RFC3339), Store: "memory", Budgets: []BudgetUsage{}, RateLimits: []RateUsage{}}
	if lim.Shared != nil {
		rep.Store = "redis"
	}
	if bs := lim.Budgets; bs != nil {
		for _, b := range []*Budget{bs.PerTenant, bs.PerSubject} {
			if b == nil {
				continue
			}
			bu := BudgetUsage{Rule: b.Rule, Scope: b.Scope, Units: b.Budget.Units, Period: shortDuration(b.Budget.Period), Usage: []KeyUsage{}}
			key := tenant
			if b.Scope == ScopeSubject {
				key = subject
			}
			switch {
			case key != "":
				res, err := b.Store.Spend(ctx, key, b.Budget, 0)
				if err != nil {
					return rep, err
				}
				bu.Usage = append(bu.Usage, keyUsage(key, res))
			case tenant == "" && subject == "":
				lister, ok := b.Store.(limit.BudgetLister)
				if !ok {
					break
				}
				all, err := lister.ListUsage(ctx, b.Budget, 0)
				if err != nil {
					return rep, err
				}
				slices.SortFunc(all, func(a, b limit.Usage) int {
					return cmp.Or(cmp.Compare(b.Used, a.Used), cmp.Compare(a.Key, b.Key))
				})
				if len(all) > n {
					all, bu.Truncated = all[:n], true
				}
				for _, u := range all {
					bu.Usage = append(bu.Usage, keyUsage(u.Key, u.BudgetResult))
				}
			}
			rep.Budgets = append(rep.Budgets, bu)
		}
	}
	peek := func(rl *RateLimit, key string) error {
		if rl == nil || key == "" {
			return nil
		}
		res, err := rl.Limiter.Allow(ctx, key, 0)
		if err != nil {
			return err
		}
		rep.RateLimits = append(rep.RateLimits, RateUsage{Rule: rl.Rule, Scope: rl.Scope, Key: key,
			Limit: res.Limit, Remaining: res.Remaining, ResetAfter: int64((res.ResetAfter + time.Second - 1) / time.Second)})
		return nil
	}
	if err := peek(lim.PerSubject, subject); err != nil {
		return rep, err
	}
	if err := peek(lim.PerTenant, tenant); err != nil {
		return rep, err
	}
	return rep, nil
}

func keyUsage(key string, res limit.BudgetResult) KeyUsage {
	return KeyUsage{Key: key, Used: res.Used, Remaining: res.Remaining, ResetAfter: int64((res.ResetAfter + time.Second - 1) / time.Second)}
}
