package audit

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// sampleEvent is an event with every field set.
func sampleEvent() Event {
	return Event{
		Time:    time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.FixedZone("CET", 3600)),
		EventID: "00000000000000aa", RequestID: "req-1", SessionID: "sess-1",
		Subject: "alice", Tenant: "acme", ClientID: "cli", TokenID: "jti-1",
		Method: "tools/call", Tool: "notes__read_note", Upstream: "notes",
		Decision: Allow, Reason: "allowed", Rule: "notes__*", PolicyVersion: "0123456789ab",
		Status: 200, Latency: 12345 * time.Microsecond, UpstreamStatus: 200,
		UpstreamLatency: 10500 * time.Microsecond, ResultBytes: 321,
		ArgsSHA256: strings.Repeat("ab", 32), Args: []byte(`{"id":"n1"}`), Cost: 3,
	}
}

func TestMarshalLineOrderAndChain(t *testing.T) {
	t.Parallel()
	e := sampleEvent()
	line := e.MarshalLine(&Link{Seq: 7, PrevHash: GenesisHash})
	want := `{"type":"audit","time":"2026-03-01T09:00:00.123456789Z","schema":1,"event_id":"00000000000000aa",` +
		`"request_id":"req-1","session_id":"sess-1","subject":"alice","tenant":"acme","client_id":"cli",` +
		`"token_id":"jti-1","method":"tools/call","tool":"notes__read_note","upstream":"notes","decision":"allow",` +
		`"reason":"allowed","rule":"notes__*","policy_version":"0123456789ab","status":200,"latency_ms":12.345,` +
		`"upstream_status":200,"upstream_latency_ms":10.5,"result_bytes":321,"args_sha256":"` + strings.Repeat("ab", 32) +
		`","args":{"id":"n1"},"cost":3,"seq":7,"prev_hash":"` + GenesisHash + `"}` + "\n"
	if string(line) != want {
		t.Fatalf("MarshalLine:\n got %s\nwant %s", line, want)
	}
	plain := e.MarshalLine(nil)
	if bytes.Contains(plain, []byte("prev_hash")) || bytes.Contains(plain, []byte(`"seq"`)) {
		t.Errorf("a line without a link carries chain fields: %s", plain)
	}
}

func TestMarshalLineZeroTimeIsNow(t *testing.T) {
	t.Parallel()
	before := time.Now().Add(-time.Second)
	r, err := ParseLine(Event{Decision: Deny}.MarshalLine(nil))
	if err != nil {
		t.Fatal(err)
	}
	if r.Time.Before(before) || r.Time.After(time.Now().Add(time.Second)) || r.Time.Location() != time.UTC {
		t.Errorf("time %v is not now in UTC", r.Time)
	}
}

func TestParseLineRoundTrip(t *testing.T) {
	t.Parallel()
	e := sampleEvent()
	r, err := ParseLine(e.MarshalLine(&Link{Seq: 9, PrevHash: GenesisHash}))
	if err != nil {
		t.Fatal(err)
	}
	want := e
	want.Time = e.Time.UTC()
	if !r.Time.Equal(want.Time) {
		t.Errorf("time %v, want %v", r.Time, want.Time)
	}
	r.Time, want.Time = time.Time{}, time.Time{}
	gotJSON, _ := json.Marshal(r.Event)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("round trip:\n got %s\nwant %s", gotJSON, wantJSON)
	}
	if r.Type != "audit" || r.Schema != SchemaVersion || r.Seq != 9 || r.PrevHash != GenesisHash {
		t.Errorf("record header %q %d %d %q", r.Type, r.Schema, r.Seq, r.PrevHash)
	}
}

func TestParseLineTolerance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, line string
		wantErr    bool
		check      func(Record) bool
	}{
		{"unknown fields are ignored", `{"type":"audit","time":"2026-03-01T10:00:00Z","future":{"x":1},"tenant":"acme"}`, false,
			func(r Record) bool { return r.Tenant == "acme" }},
		{"seconds-only RFC 3339 (the old stdout lines)", `{"time":"2026-03-01T10:00:00+01:00","type":"audit","decision":"deny"}`, false,
			func(r Record) bool {
				return r.Time.Equal(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)) && r.Decision == Deny
			}},
		{"unix seconds", `{"type":"audit","time":1772359200}`, false,
			func(r Record) bool { return r.Time.Equal(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)) }},
		{"trailing newline", `{"type":"audit","time":"2026-03-01T10:00:00Z"}` + "\n", false, func(Record) bool { return true }},
		{"another type", `{"type":"request","time":"2026-03-01T10:00:00Z"}`, true, nil},
		{"no time", `{"type":"audit"}`, true, nil},
		{"not JSON", `{"type":"audit",`, true, nil},
	}
	for _, tc := range tests {
		r, err := ParseLine([]byte(tc.line))
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: err %v, want error %v", tc.name, err, tc.wantErr)
			continue
		}
		if err == nil && !tc.check(r) {
			t.Errorf("%s: parsed %+v", tc.name, r)
		}
	}
}

func TestInvalidArgsStayValidJSON(t *testing.T) {
	t.Parallel()
	line := Event{Time: time.Unix(0, 0), Args: []byte(`{"broken":`)}.MarshalLine(nil)
	if !json.Valid(line) {
		t.Fatalf("line is not JSON: %s", line)
	}
	r, err := ParseLine(line)
	if err != nil || string(r.Args) != `"{\"broken\":"` {
		t.Errorf("args %s, err %v", r.Args, err)
	}
}

func TestJSONSink(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	s := NewJSONSink(&buf)
	s.Write(sampleEvent())
	s.Write(Event{Decision: Deny, Reason: "scope_missing"})
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2: %q", len(lines), buf.String())
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, `{"type":"audit","time":"`) {
			t.Errorf("line does not start with type and time: %s", l)
		}
	}
	if r, err := ParseLine([]byte(lines[1])); err != nil || r.Reason != "scope_missing" {
		t.Errorf("second line %+v, %v", r, err)
	}
}
