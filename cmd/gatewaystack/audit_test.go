package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatewaystack/gatewaystack/audit"
)

var (
	auditChain = []string{"../../audit/testdata/chain/audit.jsonl.2", "../../audit/testdata/chain/audit.jsonl.1", "../../audit/testdata/chain/audit.jsonl"}
	auditEvts  = "../../audit/testdata/report/events.jsonl"
)

func runAudit(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(append([]string{"audit"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestAuditVerifyCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// A copy of the chain with the second line of the middle file removed.
	var cut []string
	for _, p := range auditChain {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(p, ".1") {
			lines := strings.SplitAfter(string(data), "\n")
			data = []byte(lines[0] + strings.Join(lines[2:], ""))
		}
		q := filepath.Join(dir, filepath.Base(p))
		if err := os.WriteFile(q, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cut = append(cut, q)
	}
	tampered := "../../audit/testdata/tampered/"
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   string
		stderr   string
		notInOut string
	}{
		{"an intact chain", auditChain, 0,
			"ok: the chain is intact: 3 file(s), 18 line(s), seq 1 to 18, from the genesis\nlast hash: ", "", "TAMPERED"},
		{"from an anchor", auditChain[1:], 0, "seq 7 to 18, from an anchor", "", ""},
		{"an edited line", []string{tampered + "edited.jsonl"}, 1,
			"TAMPERED: altered at " + tampered + "edited.jsonl:3\n", "gatewaystack audit: the audit chain is broken", ""},
		{"a deleted line", []string{tampered + "deleted.jsonl"}, 1,
			"TAMPERED: removed at " + tampered + "deleted.jsonl:3\n  1 line(s) removed", "", ""},
		{"reordered lines", []string{tampered + "reordered.jsonl"}, 1,
			"TAMPERED: reordered at " + tampered + "reordered.jsonl:3\n", "", ""},
		{"an inserted line", []string{tampered + "inserted.jsonl"}, 1,
			"TAMPERED: inserted at " + tampered + "inserted.jsonl:4\n", "", ""},
		{"an unparseable line", []string{tampered + "unparseable.jsonl"}, 1,
			"TAMPERED: unparseable at " + tampered + "unparseable.jsonl:3\n", "", ""},
		{"a line removed in a rotated file", cut, 1,
			"TAMPERED: removed at " + cut[1] + ":2\n", "", ""},
		{"no files", nil, 2, "", "name at least one file", ""},
		{"a missing file", []string{filepath.Join(dir, "nope.jsonl")}, 2, "", "nope.jsonl: no such file", ""},
		{"a bad head", append([]string{"--head", "abc"}, auditChain...), 2, "", "--head must be a hex SHA-256", ""},
	}
	for _, tc := range tests {
		code, out, errOut := runAudit(t, append([]string{"verify"}, tc.args...)...)
		if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errOut, tc.stderr) ||
			(tc.notInOut != "" && strings.Contains(out, tc.notInOut)) {
			t.Errorf("%s: exit %d (want %d)\nstdout: %s\nstderr: %s\nwant stdout to contain %q, stderr %q", tc.name, code, tc.code, out, errOut, tc.stdout, tc.stderr)
		}
	}
}

func TestAuditVerifyCommandJSONAndHead(t *testing.T) {
	t.Parallel()
	code, out, errOut := runAudit(t, append([]string{"verify", "--json"}, auditChain...)...)
	var res audit.VerifyResult
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || !res.OK() || res.Lines != 18 {
		t.Fatalf("verify --json: exit %d, %s %s", code, out, errOut)
	}
	// The head recorded now, checked later against a chain cut short.
	dir := t.TempDir()
	var short []string
	for _, p := range auditChain {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if p == auditChain[2] {
			data = data[:bytes.LastIndexByte(data[:len(data)-1], '\n')+1]
		}
		q := filepath.Join(dir, filepath.Base(p))
		if err := os.WriteFile(q, data, 0o600); err != nil {
			t.Fatal(err)
		}
		short = append(short, q)
	}
	if code, out, _ := runAudit(t, append([]string{"verify"}, short...)...); code != 0 {
		t.Fatalf("a chain cut short looks intact without the head, yet: exit %d %s", code, out)
	}
	// Flags may follow the files.
	code, out, _ = runAudit(t, append(append([]string{"verify"}, short...), "--head", res.LastHash)...)
	if code != 1 || !strings.Contains(out, "TAMPERED: head_missing at "+short[2]+":5") {
		t.Errorf("with the head: exit %d, %s", code, out)
	}
}

func TestAuditReportCommand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"table by tenant (the default)", []string{auditEvts}, 0,
			"TENANT  CALLS  ALLOW  DENY  LIMITED  ERROR  P50_MS  P90_MS  P99_MS  COST\n" +
				"(none)  1      0      1     0        0      0.5     0.5     0.5     0\n" +
				"acme    8      5      1     1        1      12      100     100     10\n" +
				"globex  3      2      1     0        0      5.5     7.125   7.125   7\n",
			"skipped 2 line(s) that are not audit events"},
		{"csv by tool, flags after the file", []string{auditEvts, "--by", "tool", "--format", "csv"}, 0,
			"tool,calls,allow,deny,limited,error,latency_p50_ms,latency_p90_ms,latency_p99_ms,cost\n" +
				",1,0,1,0,0,0.5,0.5,0.5,0\n" +
				"notes__read,7,5,0,1,1,12,100,100,8\n" +
				"notes__write,4,2,2,0,0,2,40,40,9\n", ""},
		{"one day, as dates", []string{"--since", "2026-03-01", "--until", "2026-03-01", "--format", "csv", auditEvts}, 0,
			"acme,7,4,1,1,1,20,100,100,9\n", ""},
		{"RFC 3339 bounds", []string{auditEvts, "--since", "2026-03-02T00:00:00Z", "--format", "csv"}, 0,
			"tenant,calls,allow,deny,limited,error,latency_p50_ms,latency_p90_ms,latency_p99_ms,cost\nacme,1,1,0,0,0,12,12,12,1\n", ""},
		{"json", []string{auditEvts, "--by", "subject", "--format", "json"}, 0, `"key": "dave",`, ""},
		{"bad --by", []string{auditEvts, "--by", "client"}, 2, "", `--by "client": use tenant, subject or tool`},
		{"bad --format", []string{auditEvts, "--format", "xml"}, 2, "", `--format "xml"`},
		{"bad --since", []string{auditEvts, "--since", "yesterday"}, 2, "", "--since: \"yesterday\" is neither"},
		{"since after until", []string{auditEvts, "--since", "2026-03-02", "--until", "2026-03-01"}, 2, "", "--since must be before --until"},
		{"an unknown flag", []string{auditEvts, "--nope"}, 2, "", "flag provided but not defined: -nope"},
		{"no files", []string{"--by", "tool"}, 2, "", "name at least one file"},
	}
	for _, tc := range tests {
		code, out, errOut := runAudit(t, append([]string{"report"}, tc.args...)...)
		if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errOut, tc.stderr) {
			t.Errorf("%s: exit %d (want %d)\nstdout: %s\nstderr: %s\nwant stdout to contain %q, stderr %q", tc.name, code, tc.code, out, errOut, tc.stdout, tc.stderr)
		}
	}
}

func TestAuditCommandUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
		stdout string
	}{
		{nil, 2, "gatewaystack audit: want a subcommand: verify or report\nusage: gatewaystack audit verify", ""},
		{[]string{"check"}, 2, `unknown subcommand "check"`, ""},
		{[]string{"-h"}, 0, "usage: gatewaystack audit verify", ""},
		{[]string{"report", "-h"}, 0, "-format string", ""},
	} {
		code, out, errOut := runAudit(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.stderr) || !strings.Contains(out, tc.stdout) {
			t.Errorf("audit %v: exit %d (want %d)\nstdout: %s\nstderr: %s", tc.args, code, tc.code, out, errOut)
		}
	}
	var out bytes.Buffer
	run([]string{"help"}, &out, &out)
	if !strings.Contains(out.String(), "gatewaystack audit verify") || !strings.Contains(out.String(), "gatewaystack audit report") {
		t.Error("the main usage does not list the audit commands")
	}
}
