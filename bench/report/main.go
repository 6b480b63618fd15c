// Command report turns the JSON lines written by bench/run.sh into Markdown
// tables: for each upstream, concurrency and path (direct, bare proxy,
// gateway), the median and min–max over the rounds of calls/s, latency p50
// and p99, and server CPU milliseconds per call; then the ratios
// gateway/direct and gateway/bare of those medians. "servers" is the CPU of
// the upstream and the hop together, "hop" the proxy's or the gateway's
// alone, "bench" the load generator's own.
//
// Each input line is {"upstream": U, "path": P, "c": N, "round": R,
// "upstream_pid": PID, "result": <gatewaystack bench --json output>}; the
// CPU of every process but upstream_pid is the hop's (the proxy's or the
// gateway's).
//
//	go run ./bench/report results.jsonl
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/gatewaystack/gatewaystack/loadgen"
)

// line is one bench run as bench/run.sh records it.
type line struct {
	Upstream    string         `json:"upstream"`
	Path        string         `json:"path"`
	C           int            `json:"c"`
	Round       int            `json:"round"`
	UpstreamPID int            `json:"upstream_pid"`
	Result      loadgen.Result `json:"result"`
}

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func run(files []string, stdin io.Reader, out io.Writer) error {
	var lines []line
	read := func(name string, r io.Reader) error {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
		for n := 1; sc.Scan(); n++ {
			if strings.TrimSpace(sc.Text()) == "" {
				continue
			}
			var l line
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				return fmt.Errorf("%s:%d: %w", name, n, err)
			}
			lines = append(lines, l)
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		return nil
	}
	if len(files) == 0 {
		if err := read("stdin", stdin); err != nil {
			return err
		}
	}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return fmt.Errorf("open results: %w", err)
		}
		err = read(f, fh)
		_ = fh.Close()
		if err != nil {
			return err
		}
	}
	if len(lines) == 0 {
		return errors.New("no results")
	}
	writeReport(out, lines)
	return nil
}

// key names one table row.
type key struct {
	upstream string
	c        int
	path     string
}

// figures are one row's values over the rounds.
type figures struct {
	rps, p50, p99, cpu, hopCPU, benchCPU []float64
	cpuKnown                             bool
	errors, calls                        int64
	firstError                           string
}

// median of a non-empty slice (sorted in place); 0 when empty.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// spread formats "median (min–max)", or the value alone for one round.
func spread(v []float64, format string) string {
	if len(v) == 0 {
		return "—"
	}
	m := median(v)
	if len(v) == 1 {
		return fmt.Sprintf(format, m)
	}
	return fmt.Sprintf(format+" ("+format+"–"+format+")", m, v[0], v[len(v)-1])
}

func writeReport(out io.Writer, lines []line) {
	rows := map[key]*figures{}
	var upstreams []string
	var concs []int
	for _, l := range lines {
		k := key{l.Upstream, l.C, l.Path}
		f := rows[k]
		if f == nil {
			f = &figures{}
			rows[k] = f
		}
		if !slices.Contains(upstreams, l.Upstream) {
			upstreams = append(upstreams, l.Upstream)
		}
		if !slices.Contains(concs, l.C) {
			concs = append(concs, l.C)
		}
		r := l.Result
		f.rps = append(f.rps, r.CallsPerSecond)
		f.p50 = append(f.p50, r.LatencyMS.P50)
		f.p99 = append(f.p99, r.LatencyMS.P99)
		f.errors += r.Errors
		f.calls += r.Calls
		if f.firstError == "" {
			f.firstError = r.FirstError
		}
		if r.ClientCPU != nil {
			f.benchCPU = append(f.benchCPU, r.ClientCPU.CPUMSPerCall)
		}
		if r.CPU != nil {
			f.cpuKnown = true
			f.cpu = append(f.cpu, r.CPU.TotalMSPerCall)
			hop := 0.0
			for _, p := range r.CPU.Processes {
				if p.PID != l.UpstreamPID {
					hop += p.CPUMSPerCall
				}
			}
			f.hopCPU = append(f.hopCPU, hop)
		}
	}
	slices.Sort(concs)

	fmt.Fprintln(out, "| upstream | c | path | calls/s | p50 ms | p99 ms | CPU ms/call, servers | CPU ms/call, hop | CPU ms/call, bench | errors |")
	fmt.Fprintln(out, "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, u := range upstreams {
		for _, c := range concs {
			for _, p := range []string{"direct", "bare", "gateway"} {
				f := rows[key{u, c, p}]
				if f == nil {
					continue
				}
				hop := spread(f.hopCPU, "%.3f")
				if p == "direct" {
					hop = "—"
				}
				errs := fmt.Sprintf("%d", f.errors)
				if f.errors > 0 {
					errs += fmt.Sprintf(" of %d (%s)", f.errors+f.calls, strings.ReplaceAll(f.firstError, "|", "\\|"))
				}
				fmt.Fprintf(out, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", u, c, p,
					spread(f.rps, "%.0f"), spread(f.p50, "%.3f"), spread(f.p99, "%.3f"), spread(f.cpu, "%.3f"), hop, spread(f.benchCPU, "%.3f"), errs)
			}
		}
	}

	fmt.Fprintln(out)
	fmt.Fprintln(out, "Ratios of the medians (throughput below 1× and latency or CPU above 1× are the hop's cost):")
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| upstream | c | ratio | calls/s | p50 | p99 | CPU ms/call |")
	fmt.Fprintln(out, "|---|---:|---|---:|---:|---:|---:|")
	for _, u := range upstreams {
		for _, c := range concs {
			g := rows[key{u, c, "gateway"}]
			if g == nil {
				continue
			}
			for _, base := range []string{"direct", "bare"} {
				b := rows[key{u, c, base}]
				if b == nil {
					continue
				}
				cpu := "—"
				if g.cpuKnown && b.cpuKnown {
					cpu = ratio(median(g.cpu), median(b.cpu))
				}
				fmt.Fprintf(out, "| %s | %d | gateway/%s | %s | %s | %s | %s |\n", u, c, base,
					ratio(median(g.rps), median(b.rps)), ratio(median(g.p50), median(b.p50)), ratio(median(g.p99), median(b.p99)), cpu)
			}
		}
	}
}

// ratio formats a/b as "1.23×", or "—" when b is 0.
func ratio(a, b float64) string {
	if b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a/b)
}
