package audit

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// updateGolden regenerates audit/testdata when set:
// GATEWAYSTACK_UPDATE_GOLDEN=1 go test ./audit
func updateGolden() bool { return os.Getenv("GATEWAYSTACK_UPDATE_GOLDEN") == "1" }

// goldenMaxBytes rotates the golden chain after every sixth line.
const goldenMaxBytes = 3450

// goldenEvents are the 18 events of testdata/chain.
func goldenEvents() []Event {
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	subjects := []string{"alice", "bob", "carol"}
	tenants := []string{"acme", "globex", "acme"}
	var out []Event
	for i := range 18 {
		e := Event{Time: base.Add(time.Duration(i) * time.Minute), EventID: fmt.Sprintf("%016x", 0xa000+i),
			RequestID: fmt.Sprintf("req-%03d", i), SessionID: "sess-" + subjects[i%3], Subject: subjects[i%3],
			Tenant: tenants[i%3], ClientID: "demo-client", TokenID: fmt.Sprintf("jti-%03d", i),
			Method: "tools/call", Tool: []string{"notes__read_note", "notes__write_note"}[i%2], Upstream: "notes",
			Decision: Allow, Reason: "allowed", Rule: "notes__*", PolicyVersion: "0123456789ab", Status: 200,
			Latency: time.Duration(1000+137*i) * time.Microsecond, UpstreamStatus: 200,
			UpstreamLatency: time.Duration(800+101*i) * time.Microsecond, ResultBytes: int64(100 + i), Cost: int64(1 + i%3)}
		if i%5 == 2 {
			e.Decision, e.Reason, e.Status, e.UpstreamStatus, e.UpstreamLatency, e.ResultBytes, e.Cost = Deny, "scope_missing", 403, 0, 0, 0, 0
		}
		out = append(out, e)
	}
	return out
}

// writeChain writes the golden events with a FileSink into dir and returns
// the files oldest first.
func writeChain(t *testing.T, dir string) []string {
	t.Helper()
	path := filepath.Join(dir, "audit.jsonl")
	s, err := NewFileSink(FileOptions{Path: path, MaxBytes: goldenMaxBytes, MaxFiles: 5})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range goldenEvents() {
		if n, err := s.Deliver(context.Background(), []Event{e}); n != 1 || err != nil {
			t.Fatalf("Deliver: %d, %v", n, err)
		}
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return []string{path + ".2", path + ".1", path}
}

// goldenChain returns the committed chain, oldest first.
func goldenChain() []string {
	dir := filepath.Join("testdata", "chain")
	return []string{filepath.Join(dir, "audit.jsonl.2"), filepath.Join(dir, "audit.jsonl.1"), filepath.Join(dir, "audit.jsonl")}
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(data, []byte("\n"))[:bytes.Count(data, []byte("\n"))]
}

func writeLines(t *testing.T, path string, lines [][]byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestGoldenChainIsReproduced: the file sink writes, byte for byte, the
// committed chain (the line format is stable), six lines per file.
func TestGoldenChainIsReproduced(t *testing.T) {
	t.Parallel()
	got := writeChain(t, t.TempDir())
	for i, want := range goldenChain() {
		data, err := os.ReadFile(got[i])
		if err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(data, []byte("\n")); n != 6 {
			t.Errorf("%s has %d lines, want 6", filepath.Base(got[i]), n)
		}
		if updateGolden() {
			if err := os.MkdirAll(filepath.Dir(want), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(want, data, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		golden, err := os.ReadFile(want)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, golden) {
			t.Errorf("%s differs from the golden file:\n got %s\nwant %s", filepath.Base(got[i]), data, golden)
		}
	}
}

// tampering is one way of damaging a golden file and what Verify must
// say about it: the kind, the line it is about, the line where the chain
// breaks, how many lines are missing.
type tampering struct {
	name    string
	tamper  func(t *testing.T, lines [][]byte) [][]byte
	kind    string
	at, brk int
	missing uint64
}

// tamperings derive the small golden tampered files from the oldest
// golden file (6 lines, from the genesis).
func tamperings() []tampering {
	return []tampering{
		{"edited", func(t *testing.T, l [][]byte) [][]byte {
			// Line 3 is a deny; turn it into an allow.
			if !bytes.Contains(l[2], []byte(`"decision":"deny"`)) {
				t.Fatal("line 3 of the golden file is not a deny")
			}
			l[2] = bytes.Replace(l[2], []byte(`"decision":"deny"`), []byte(`"decision":"allow"`), 1)
			return l
		}, ProblemAltered, 3, 4, 0},
		{"deleted", func(_ *testing.T, l [][]byte) [][]byte {
			return append(l[:2:2], l[3:]...)
		}, ProblemRemoved, 3, 3, 1},
		{"reordered", func(_ *testing.T, l [][]byte) [][]byte {
			l[2], l[3] = l[3], l[2]
			return l
		}, ProblemReordered, 3, 3, 0},
		{"inserted", func(_ *testing.T, l [][]byte) [][]byte {
			// A forged line chained to line 3 (a copy of line 4 with another
			// event id), put before the real line 4.
			forged := bytes.Replace(l[3], []byte(`"event_id":"000000000000a003"`), []byte(`"event_id":"000000000000f00d"`), 1)
			return append(l[:3:3], append([][]byte{forged}, l[3:]...)...)
		}, ProblemInserted, 4, 5, 0},
		{"unparseable", func(_ *testing.T, l [][]byte) [][]byte {
			l[2] = append(l[2][:40:40], '\n')
			return l
		}, ProblemUnparseable, 3, 0, 0},
	}
}

func TestVerifyGoldenTamperedFiles(t *testing.T) {
	t.Parallel()
	src := goldenChain()[0]
	for _, tc := range tamperings() {
		golden := filepath.Join("testdata", "tampered", tc.name+".jsonl")
		derived := tc.tamper(t, readLines(t, src))
		if updateGolden() {
			if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
				t.Fatal(err)
			}
			writeLines(t, golden, derived)
		}
		if data, err := os.ReadFile(golden); err != nil || !bytes.Equal(data, bytes.Join(derived, nil)) {
			t.Errorf("%s: the golden file differs from its derivation (%v)", tc.name, err)
		}
		res, err := Verify(context.Background(), []string{golden}, VerifyOptions{})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		p := res.Problem
		if p == nil {
			t.Errorf("%s: verify found no problem", tc.name)
			continue
		}
		wantBreak := Position{}
		if tc.brk != 0 {
			wantBreak = Position{golden, tc.brk}
		}
		if p.Kind != tc.kind || p.At != (Position{golden, tc.at}) || p.Break != wantBreak || p.Missing != tc.missing {
			t.Errorf("%s: problem %+v, want %s at line %d, break at %d, %d missing", tc.name, *p, tc.kind, tc.at, tc.brk, tc.missing)
		}
	}
}

func TestVerifyGoodChain(t *testing.T) {
	t.Parallel()
	res, err := Verify(context.Background(), goldenChain(), VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() || !res.Genesis || res.Files != 3 || res.Lines != 18 || res.FirstSeq != 1 || res.LastSeq != 18 {
		t.Errorf("result %+v, want an intact chain of 18 lines in 3 files from the genesis", res)
	}
	lines := readLines(t, goldenChain()[2])
	if want := lineHash(bytes.TrimSuffix(lines[len(lines)-1], []byte("\n"))); res.LastHash != want {
		t.Errorf("last hash %s, want %s", res.LastHash, want)
	}
	// Without the oldest file the chain starts at an anchor.
	res, err = Verify(context.Background(), goldenChain()[1:], VerifyOptions{})
	if err != nil || !res.OK() || res.Genesis || res.Anchor == "" || res.FirstSeq != 7 {
		t.Errorf("from an anchor: %+v, %v", res, err)
	}
}

// chainCopy copies the golden chain into a temporary directory, lets
// tamper change the lines of each file (oldest first) and returns the
// paths.
func chainCopy(t *testing.T, tamper func(files [][][]byte) [][][]byte) []string {
	t.Helper()
	dir := t.TempDir()
	var files [][][]byte
	var paths []string
	for _, p := range goldenChain() {
		files = append(files, readLines(t, p))
		paths = append(paths, filepath.Join(dir, filepath.Base(p)))
	}
	files = tamper(files)
	for i, p := range paths {
		writeLines(t, p, files[i])
	}
	return paths
}

func TestVerifyTamperedChains(t *testing.T) {
	t.Parallel()
	type want struct {
		kind           string
		atFile, atLine int
		missing        uint64
	}
	tests := []struct {
		name   string
		tamper func(f [][][]byte) [][][]byte
		files  func(p []string) []string
		want   want
	}{
		{"edited last line of the oldest file", func(f [][][]byte) [][][]byte {
			f[0][5] = bytes.Replace(f[0][5], []byte(`"subject":"carol"`), []byte(`"subject":"mallory"`), 1)
			return f
		}, nil, want{ProblemAltered, 0, 6, 0}},
		{"edited prev_hash of a line", func(f [][][]byte) [][][]byte {
			i := bytes.Index(f[1][3], []byte(`"prev_hash":"`)) + len(`"prev_hash":"`)
			copy(f[1][3][i:i+64], strings.Repeat("f", 64))
			return f
		}, nil, want{ProblemAltered, 1, 4, 0}},
		{"deleted the last line of a rotated file", func(f [][][]byte) [][][]byte {
			f[0] = f[0][:5]
			return f
		}, nil, want{ProblemRemoved, 1, 1, 1}},
		{"deleted two lines across a rotation", func(f [][][]byte) [][][]byte {
			f[1] = f[1][1:]
			f[0] = f[0][:5]
			return f
		}, nil, want{ProblemRemoved, 1, 1, 2}},
		{"deleted in the current file", func(f [][][]byte) [][][]byte {
			f[2] = append(f[2][:1:1], f[2][4:]...)
			return f
		}, nil, want{ProblemRemoved, 2, 2, 3}},
		{"a rotated file left out", nil, func(p []string) []string { return []string{p[0], p[2]} },
			want{ProblemRemoved, 2, 1, 6}},
		{"files in the wrong order", nil, func(p []string) []string { return []string{p[1], p[0], p[2]} },
			want{ProblemReordered, 0, 1, 0}},
		{"a line moved into the previous file", func(f [][][]byte) [][][]byte {
			f[0] = append(f[0], f[1][0])
			f[1] = f[1][1:]
			f[0][5], f[0][6] = f[0][6], f[0][5]
			return f
		}, nil, want{ProblemReordered, 0, 6, 0}},
		{"a line duplicated", func(f [][][]byte) [][][]byte {
			f[2] = append(f[2][:3:3], append([][]byte{f[2][2]}, f[2][3:]...)...)
			return f
		}, nil, want{ProblemInserted, 2, 4, 0}},
		{"a blank line", func(f [][][]byte) [][][]byte {
			f[1] = append(f[1][:2:2], append([][]byte{[]byte("\n")}, f[1][2:]...)...)
			return f
		}, nil, want{ProblemUnparseable, 1, 3, 0}},
	}
	for _, tc := range tests {
		tamper := tc.tamper
		if tamper == nil {
			tamper = func(f [][][]byte) [][][]byte { return f }
		}
		paths := chainCopy(t, tamper)
		given := paths
		if tc.files != nil {
			given = tc.files(paths)
		}
		res, err := Verify(context.Background(), given, VerifyOptions{})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		p := res.Problem
		wantAt := Position{paths[tc.want.atFile], tc.want.atLine}
		if p == nil || p.Kind != tc.want.kind || p.At != wantAt || p.Missing != tc.want.missing {
			t.Errorf("%s: problem %+v, want %s at %s with %d missing", tc.name, p, tc.want.kind, wantAt, tc.want.missing)
		}
	}
}

func TestVerifyHead(t *testing.T) {
	t.Parallel()
	good, err := Verify(context.Background(), goldenChain(), VerifyOptions{})
	if err != nil || !good.OK() {
		t.Fatal(good, err)
	}
	// The head recorded earlier is found: the chain grew past it.
	lines := readLines(t, goldenChain()[1])
	mid := lineHash(bytes.TrimSuffix(lines[2], []byte("\n")))
	if res, err := Verify(context.Background(), goldenChain(), VerifyOptions{Head: mid}); err != nil || !res.OK() {
		t.Errorf("a head in the middle: %+v %v", res.Problem, err)
	}
	// The last line cut off: the chain alone cannot tell, the head can.
	paths := chainCopy(t, func(f [][][]byte) [][][]byte {
		f[2] = f[2][:5]
		return f
	})
	if res, err := Verify(context.Background(), paths, VerifyOptions{}); err != nil || !res.OK() {
		t.Fatalf("a truncated chain without a head: %+v %v", res.Problem, err)
	}
	res, err := Verify(context.Background(), paths, VerifyOptions{Head: good.LastHash})
	if err != nil || res.Problem == nil || res.Problem.Kind != ProblemHeadMissing || res.Problem.At != (Position{paths[2], 5}) {
		t.Errorf("truncated with the head: %+v %v", res.Problem, err)
	}
}

func TestVerifyUnreadable(t *testing.T) {
	t.Parallel()
	if _, err := Verify(context.Background(), []string{filepath.Join(t.TempDir(), "nope.jsonl")}, VerifyOptions{}); err == nil || !strings.Contains(err.Error(), "nope.jsonl") {
		t.Errorf("a missing file: %v", err)
	}
	empty := filepath.Join(t.TempDir(), "empty.jsonl")
	writeLines(t, empty, nil)
	if _, err := Verify(context.Background(), []string{empty}, VerifyOptions{}); err == nil {
		t.Error("an empty file verified")
	}
}
