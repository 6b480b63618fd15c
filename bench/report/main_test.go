package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestReport(t *testing.T) {
	t.Parallel()
	// Three rounds of direct and gateway, one of bare, as run.sh writes
	// them; the gateway's CPU splits into hop (pid 2) and upstream (pid 1).
	in := strings.Join([]string{
		`{"upstream":"echo","path":"direct","c":16,"round":1,"upstream_pid":1,"result":{"calls":1000,"calls_per_second":1000,"latency_ms":{"p50":1,"p99":4},"cpu":{"processes":[{"pid":1,"cpu_ms_per_call":0.1}],"total_ms_per_call":0.1}}}`,
		`{"upstream":"echo","path":"direct","c":16,"round":2,"upstream_pid":1,"result":{"calls":1200,"calls_per_second":1200,"latency_ms":{"p50":0.8,"p99":3},"cpu":{"processes":[{"pid":1,"cpu_ms_per_call":0.1}],"total_ms_per_call":0.1}}}`,
		`{"upstream":"echo","path":"direct","c":16,"round":3,"upstream_pid":1,"result":{"calls":800,"calls_per_second":800,"latency_ms":{"p50":1.2,"p99":5},"cpu":{"processes":[{"pid":1,"cpu_ms_per_call":0.1}],"total_ms_per_call":0.1}}}`,
		`{"upstream":"echo","path":"bare","c":16,"round":1,"upstream_pid":1,"result":{"calls":800,"calls_per_second":800,"latency_ms":{"p50":1.5,"p99":6},"cpu":{"processes":[{"pid":3,"cpu_ms_per_call":0.1},{"pid":1,"cpu_ms_per_call":0.1}],"total_ms_per_call":0.2}}}`,
		``,
		`{"upstream":"echo","path":"gateway","c":16,"round":1,"upstream_pid":1,"result":{"calls":500,"calls_per_second":500,"errors":2,"first_error":"HTTP 429: a|b","latency_ms":{"p50":2,"p99":8},"cpu":{"processes":[{"pid":2,"cpu_ms_per_call":0.3},{"pid":1,"cpu_ms_per_call":0.1}],"total_ms_per_call":0.4},"client_cpu":{"pid":9,"cpu_ms_per_call":0.05}}}`,
		`{"upstream":"echo","path":"gateway","c":16,"round":2,"upstream_pid":1,"result":{"calls":400,"calls_per_second":400,"latency_ms":{"p50":2.5,"p99":9},"cpu":{"processes":[{"pid":2,"cpu_ms_per_call":0.3},{"pid":1,"cpu_ms_per_call":0.1}],"total_ms_per_call":0.4}}}`,
		`{"upstream":"echo","path":"gateway","c":16,"round":3,"upstream_pid":1,"result":{"calls":600,"calls_per_second":600,"latency_ms":{"p50":1.5,"p99":7},"cpu":{"processes":[{"pid":2,"cpu_ms_per_call":0.3},{"pid":1,"cpu_ms_per_call":0.1}],"total_ms_per_call":0.4}}}`,
	}, "\n")
	var out bytes.Buffer
	if err := run(nil, strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| echo | 16 | direct | 1000 (800–1200) | 1.000 (0.800–1.200) | 4.000 (3.000–5.000) | 0.100 (0.100–0.100) | — | — | 0 |",
		"| echo | 16 | bare | 800 | 1.500 | 6.000 | 0.200 | 0.100 | — | 0 |",
		"| echo | 16 | gateway | 500 (400–600) | 2.000 (1.500–2.500) | 8.000 (7.000–9.000) | 0.400 (0.400–0.400) | 0.300 (0.300–0.300) | 0.050 | 2 of 1502 (HTTP 429: a\\|b) |",
		"| echo | 16 | gateway/direct | 0.50× | 2.00× | 2.00× | 4.00× |",
		"| echo | 16 | gateway/bare | 0.62× | 1.33× | 1.33× | 2.00× |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if err := run(nil, strings.NewReader("{not json"), &out); err == nil {
		t.Error("report accepted a broken line")
	}
	if err := run(nil, strings.NewReader(""), &out); err == nil {
		t.Error("report accepted no results")
	}
}
