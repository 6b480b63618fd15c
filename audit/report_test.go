package audit

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

const reportEvents = "testdata/report/events.jsonl"

// The figures below are computed by hand from testdata/report/events.jsonl
// (12 events, one operational line and one cut-off line).
func TestReportFigures(t *testing.T) {
	t.Parallel()
	day := func(d int) time.Time { return time.Date(2026, 3, d, 0, 0, 0, 0, time.UTC) }
	tests := []struct {
		name   string
		o      ReportOptions
		events int64
		want   []ReportRow
	}{
		{"by tenant", ReportOptions{By: ByTenant}, 12, []ReportRow{
			{Key: "", Calls: 1, Deny: 1, P50: 0.5, P90: 0.5, P99: 0.5},
			// latencies 1 2 10 12 20 30 40 100: ranks 4, 8, 8
			{Key: "acme", Calls: 8, Allow: 5, Deny: 1, Limited: 1, Error: 1, P50: 12, P90: 100, P99: 100, Cost: 10},
			// latencies 0.25 5.5 7.125: ranks 2, 3, 3
			{Key: "globex", Calls: 3, Allow: 2, Deny: 1, P50: 5.5, P90: 7.125, P99: 7.125, Cost: 7},
		}},
		{"by tenant on March 1", ReportOptions{By: ByTenant, Since: day(1), Until: day(2)}, 11, []ReportRow{
			{Key: "", Calls: 1, Deny: 1, P50: 0.5, P90: 0.5, P99: 0.5},
			// latencies 1 2 10 20 30 40 100: ranks 4, 7, 7
			{Key: "acme", Calls: 7, Allow: 4, Deny: 1, Limited: 1, Error: 1, P50: 20, P90: 100, P99: 100, Cost: 9},
			{Key: "globex", Calls: 3, Allow: 2, Deny: 1, P50: 5.5, P90: 7.125, P99: 7.125, Cost: 7},
		}},
		{"by tool", ReportOptions{By: ByTool}, 12, []ReportRow{
			{Key: "", Calls: 1, Deny: 1, P50: 0.5, P90: 0.5, P99: 0.5},
			// latencies 1 5.5 10 12 20 30 100: ranks 4, 7, 7
			{Key: "notes__read", Calls: 7, Allow: 5, Limited: 1, Error: 1, P50: 12, P90: 100, P99: 100, Cost: 8},
			// latencies 0.25 2 7.125 40: ranks 2, 4, 4
			{Key: "notes__write", Calls: 4, Allow: 2, Deny: 2, P50: 2, P90: 40, P99: 40, Cost: 9},
		}},
		{"by subject from 09:10 to 10:05", ReportOptions{By: BySubject,
			Since: time.Date(2026, 3, 1, 9, 10, 0, 0, time.UTC), Until: time.Date(2026, 3, 1, 10, 5, 0, 0, time.UTC)}, 6, []ReportRow{
			{Key: "alice", Calls: 2, Allow: 1, Error: 1, P50: 40, P90: 100, P99: 100, Cost: 5},
			{Key: "bob", Calls: 2, Deny: 1, Limited: 1, P50: 1, P90: 2, P99: 2},
			{Key: "carol", Calls: 1, Allow: 1, P50: 30, P90: 30, P99: 30, Cost: 2},
			{Key: "dave", Calls: 1, Allow: 1, P50: 5.5, P90: 5.5, P99: 5.5, Cost: 3},
		}},
	}
	for _, tc := range tests {
		res, err := Report(context.Background(), []string{reportEvents}, tc.o)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if res.Events != tc.events || res.Skipped != 2 {
			t.Errorf("%s: %d events, %d skipped; want %d and 2", tc.name, res.Events, res.Skipped, tc.events)
		}
		if !reflect.DeepEqual(res.Rows, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, res.Rows, tc.want)
		}
	}
}

func TestReportNearestRank(t *testing.T) {
	t.Parallel()
	// Latencies 1..100 ms, written by the writer sink in a shuffled order.
	path := filepath.Join(t.TempDir(), "stdout.jsonl")
	var buf bytes.Buffer
	for i := range 100 {
		ms := (i*37)%100 + 1
		buf.Write(Event{Time: time.Unix(int64(i), 0), Tenant: "acme", Decision: Allow, Latency: time.Duration(ms) * time.Millisecond, Cost: 2}.MarshalLine(nil))
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := Report(context.Background(), []string{path}, ReportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []ReportRow{{Key: "acme", Calls: 100, Allow: 100, P50: 50, P90: 90, P99: 99, Cost: 200}}
	if !reflect.DeepEqual(res.Rows, want) {
		t.Errorf("got %+v, want %+v", res.Rows, want)
	}
}

func TestReportFormats(t *testing.T) {
	t.Parallel()
	res, err := Report(context.Background(), []string{reportEvents}, ReportOptions{By: ByTenant})
	if err != nil {
		t.Fatal(err)
	}
	for ext, write := range map[string]func(*bytes.Buffer) error{
		"txt":  func(b *bytes.Buffer) error { return res.WriteTable(b) },
		"json": func(b *bytes.Buffer) error { return res.WriteJSON(b) },
		"csv":  func(b *bytes.Buffer) error { return res.WriteCSV(b) },
	} {
		var b bytes.Buffer
		if err := write(&b); err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", "report", "by-tenant."+ext)
		if updateGolden() {
			if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b.Bytes(), want) {
			t.Errorf("%s output:\n%s\nwant:\n%s", ext, b.Bytes(), want)
		}
	}
}

func TestReportRejectsUnknownGrouping(t *testing.T) {
	t.Parallel()
	if _, err := Report(context.Background(), []string{reportEvents}, ReportOptions{By: "client"}); err == nil {
		t.Error("grouping by client was accepted")
	}
}
