package audit

import (
	"cmp"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report groupings.
const (
	ByTenant  = "tenant"
	BySubject = "subject"
	ByTool    = "tool"
)

// ReportOptions selects and groups events for Report.
type ReportOptions struct {
	// By is tenant, subject or tool (default tenant).
	By string
	// Since keeps events at or after it; Until events before it (zero:
	// no bound).
	Since, Until time.Time
}

// ReportRow is one group's figures.
type ReportRow struct {
	// Key is the group's tenant, subject or tool ("" for events without
	// one).
	Key string `json:"key"`
	// Calls counts every event of the group; Allow, Deny, Limited and
	// Error count them by decision.
	Calls   int64 `json:"calls"`
	Allow   int64 `json:"allow"`
	Deny    int64 `json:"deny"`
	Limited int64 `json:"limited"`
	Error   int64 `json:"error"`
	// P50, P90 and P99 are latency_ms percentiles (nearest rank).
	P50 float64 `json:"latency_p50_ms"`
	P90 float64 `json:"latency_p90_ms"`
	P99 float64 `json:"latency_p99_ms"`
	// Cost is the sum of the events' budget cost.
	Cost int64 `json:"cost"`
}

// ReportResult is Report's answer.
type ReportResult struct {
	By    string    `json:"by"`
	Since time.Time `json:"since,omitzero"`
	Until time.Time `json:"until,omitzero"`
	// Events counts the events in the window; Skipped the lines that are
	// not audit events (or do not parse).
	Events  int64       `json:"events"`
	Skipped int64       `json:"skipped"`
	Rows    []ReportRow `json:"groups"`
}

// Report summarises the audit events of files (JSON lines, as written to
// stdout or by a FileSink) per tenant, subject or tool, ordered by key.
// Lines that are not audit events are skipped and counted.
func Report(ctx context.Context, paths []string, o ReportOptions) (ReportResult, error) {
	if o.By == "" {
		o.By = ByTenant
	}
	key, ok := map[string]func(*Event) string{
		ByTenant:  func(e *Event) string { return e.Tenant },
		BySubject: func(e *Event) string { return e.Subject },
		ByTool:    func(e *Event) string { return e.Tool },
	}[o.By]
	if !ok {
		return ReportResult{}, fmt.Errorf("audit: report: cannot group by %q; use tenant, subject or tool", o.By)
	}
	res := ReportResult{By: o.By, Since: o.Since, Until: o.Until}
	type group struct {
		row ReportRow
		lat []float64
	}
	groups := map[string]*group{}
	sc := newLineScanner(ctx, paths)
	defer sc.Close()
	for {
		raw, err := sc.scan()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, err
		}
		rec, err := ParseLine(raw)
		if err != nil {
			res.Skipped++
			continue
		}
		if (!o.Since.IsZero() && rec.Time.Before(o.Since)) || (!o.Until.IsZero() && !rec.Time.Before(o.Until)) {
			continue
		}
		res.Events++
		k := key(&rec.Event)
		g := groups[k]
		if g == nil {
			g = &group{row: ReportRow{Key: k}}
			groups[k] = g
		}
		g.row.Calls++
		switch rec.Decision {
		case Allow:
			g.row.Allow++
		case Deny:
			g.row.Deny++
		case Limited:
			g.row.Limited++
		case Error:
			g.row.Error++
		}
		g.row.Cost += rec.Cost
		g.lat = append(g.lat, float64(rec.Latency.Microseconds())/1000)
	}
	for _, g := range groups {
		slices.Sort(g.lat)
		g.row.P50, g.row.P90, g.row.P99 = nearestRank(g.lat, 50), nearestRank(g.lat, 90), nearestRank(g.lat, 99)
		res.Rows = append(res.Rows, g.row)
	}
	slices.SortFunc(res.Rows, func(a, b ReportRow) int { return cmp.Compare(a.Key, b.Key) })
	return res, nil
}

// nearestRank is the p-th percentile of sorted values: the value at rank
// ceil(p/100 × n).
func nearestRank(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// ms formats milliseconds as Fields does (shortest exact form).
func ms(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// WriteTable writes r as an aligned text table.
func (r ReportResult) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\tCALLS\tALLOW\tDENY\tLIMITED\tERROR\tP50_MS\tP90_MS\tP99_MS\tCOST\n", strings.ToUpper(r.By))
	for _, row := range r.Rows {
		k := row.Key
		if k == "" {
			k = "(none)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%d\n", k, row.Calls, row.Allow, row.Deny,
			row.Limited, row.Error, ms(row.P50), ms(row.P90), ms(row.P99), row.Cost)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// WriteJSON writes r as one indented JSON object.
func (r ReportResult) WriteJSON(w io.Writer) error {
	if r.Rows == nil {
		r.Rows = []ReportRow{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// WriteCSV writes r as CSV with a header row.
func (r ReportResult) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{r.By, "calls", "allow", "deny", "limited", "error", "latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "cost"})
	for _, row := range r.Rows {
		_ = cw.Write([]string{row.Key, itoa(row.Calls), itoa(row.Allow), itoa(row.Deny), itoa(row.Limited), itoa(row.Error),
			ms(row.P50), ms(row.P90), ms(row.P99), itoa(row.Cost)})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
