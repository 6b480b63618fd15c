package conformance

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// Status is the outcome of one check.
type Status string

// The outcomes of a check.
const (
	Pass Status = "pass"
	Fail Status = "fail"
	// Skip: the check could not apply (e.g. the gateway advertises no
	// step-up scope) or was not asked for; it is not a failure.
	Skip Status = "skip"
)

// Check is one check's result.
type Check struct {
	// ID is stable and machine-readable, e.g. "token-alg-none".
	ID string `json:"id"`
	// Name says what was checked.
	Name string `json:"name"`
	// Status is pass, fail or skip.
	Status Status `json:"status"`
	// Detail says what was seen (on failure: what was wrong).
	Detail string `json:"detail,omitempty"`
	// DurationMS is how long the check took.
	DurationMS int64 `json:"duration_ms"`
}

// Report is the result of Run.
type Report struct {
	// Tool names the program that made the report.
	Tool string `json:"tool"`
	// Version is the program's version, when the caller sets it.
	Version string `json:"version,omitempty"`
	// URL is the gateway's MCP endpoint that was checked.
	URL string `json:"url"`
	// Issuer is the token issuer that was used.
	Issuer string `json:"issuer"`
	// StartedAt is when the run started (UTC).
	StartedAt time.Time `json:"started_at"`
	// DurationMS is how long the whole run took.
	DurationMS int64 `json:"duration_ms"`
	// Passed, Failed and Skipped count the checks by status.
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
	// Checks are the results, in the order they ran.
	Checks []Check `json:"checks"`
}

// OK reports whether no check failed.
func (r Report) OK() bool { return r.Failed == 0 }

// Check returns the check with the given id, if it ran.
func (r Report) Check(id string) (Check, bool) {
	for _, c := range r.Checks {
		if c.ID == id {
			return c, true
		}
	}
	return Check{}, false
}

func (r *Report) add(c Check) {
	switch c.Status {
	case Pass:
		r.Passed++
	case Fail:
		r.Failed++
	default:
		r.Skipped++
	}
	r.Checks = append(r.Checks, c)
}

// WriteTable prints the results as an aligned plain-text table with a
// summary line, for a terminal.
func (r Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "RESULT\tCHECK\tDETAIL\n")
	for _, c := range r.Checks {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", strings.ToUpper(string(c.Status)), c.Name, oneLine(c.Detail, 160))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\n%d passed, %d failed, %d skipped (%s against %s)\n", r.Passed, r.Failed, r.Skipped,
		(time.Duration(r.DurationMS) * time.Millisecond).String(), r.URL)
	return err
}

// Markdown renders the report as a Markdown document with one table row per
// check.
func (r Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Gatewaystack conformance report\n\n")
	fmt.Fprintf(&b, "- gateway: `%s`\n- issuer: `%s`\n", r.URL, r.Issuer)
	if r.Version != "" {
		fmt.Fprintf(&b, "- checked by: %s %s\n", r.Tool, r.Version)
	}
	fmt.Fprintf(&b, "- started: %s, took %d ms\n", r.StartedAt.Format(time.RFC3339), r.DurationMS)
	fmt.Fprintf(&b, "- result: **%d passed, %d failed, %d skipped**\n\n", r.Passed, r.Failed, r.Skipped)
	fmt.Fprintf(&b, "| check | id | result | detail |\n|---|---|---|---|\n")
	for _, c := range r.Checks {
		mark := "pass"
		switch c.Status {
		case Fail:
			mark = "**FAIL**"
		case Skip:
			mark = "skip"
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s |\n", mdCell(c.Name), c.ID, mark, mdCell(c.Detail))
	}
	return b.String()
}

// WriteFiles writes report.json and report.md into dir (created if needed)
// and returns their paths.
func (r Report) WriteFiles(dir string) (jsonPath, mdPath string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("conformance: create report directory: %w", err)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", "", fmt.Errorf("conformance: encode report: %w", err)
	}
	jsonPath = filepath.Join(dir, "report.json")
	if err := os.WriteFile(jsonPath, append(data, '\n'), 0o644); err != nil {
		return "", "", fmt.Errorf("conformance: write report: %w", err)
	}
	mdPath = filepath.Join(dir, "report.md")
	if err := os.WriteFile(mdPath, []byte(r.Markdown()), 0o644); err != nil {
		return "", "", fmt.Errorf("conformance: write report: %w", err)
	}
	return jsonPath, mdPath, nil
}

// oneLine collapses s to one line of at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// mdCell makes s safe inside a Markdown table cell.
func mdCell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.ReplaceAll(s, "|", `\|`)
}
