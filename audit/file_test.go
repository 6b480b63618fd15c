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

	"github.com/rs/zerolog"
)

func deliver(t *testing.T, s *FileSink, from, to int) {
	t.Helper()
	var batch []Event
	for i := from; i < to; i++ {
		batch = append(batch, eventN(i))
	}
	if n, err := s.Deliver(context.Background(), batch); n != len(batch) || err != nil {
		t.Fatalf("Deliver: %d of %d, %v", n, len(batch), err)
	}
}

// rotated lists path's rotated files oldest first, then path.
func rotated(t *testing.T, path string) []string {
	t.Helper()
	var out []string
	for n := 100; n >= 1; n-- {
		p := fmt.Sprintf("%s.%d", path, n)
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return append(out, path)
}

func TestFileSinkRotationContinuesTheChain(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := NewFileSink(FileOptions{Path: path, MaxBytes: 2048, MaxFiles: 3})
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, s, 0, 40) // ~400 bytes a line: ~5 lines a file, 8 files, 3 kept
	seq, head := s.Head()
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	files := rotated(t, path)
	if len(files) != 4 {
		t.Fatalf("files %v, want the current one and 3 rotated", files)
	}
	if _, err := os.Stat(path + ".4"); err == nil {
		t.Error("a fourth rotated file was kept")
	}
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 2048 || st.Size() == 0 {
			t.Errorf("%s is %d bytes, want 1 to 2048", f, st.Size())
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	// Each rotated file's first line chains to the previous file's last.
	for i := 1; i < len(files); i++ {
		prev := readLines(t, files[i-1])
		first, err := ParseLine(readLines(t, files[i])[0])
		if err != nil {
			t.Fatal(err)
		}
		if want := lineHash(bytes.TrimSuffix(prev[len(prev)-1], []byte("\n"))); first.PrevHash != want {
			t.Errorf("%s starts with prev_hash %s, want the hash of %s's last line %s", files[i], first.PrevHash, files[i-1], want)
		}
	}
	res, err := Verify(context.Background(), files, VerifyOptions{Head: head})
	if err != nil || !res.OK() || res.Genesis || res.LastSeq != 40 || seq != 40 || res.LastHash != head {
		t.Errorf("verify: %+v %v (head seq %d)", res, err, seq)
	}
}

func TestFileSinkRestartContinuesTheChain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	paths := writeChain(t, dir) // the golden chain, closed
	s, err := NewFileSink(FileOptions{Path: paths[2], MaxBytes: goldenMaxBytes, MaxFiles: 5})
	if err != nil {
		t.Fatal(err)
	}
	if seq, _ := s.Head(); seq != 18 {
		t.Errorf("reopened at seq %d, want 18", seq)
	}
	deliver(t, s, 100, 103)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The current file was full: the restart's lines rotated it away.
	all := rotated(t, paths[2])
	res, err := Verify(context.Background(), all, VerifyOptions{})
	if err != nil || !res.OK() || !res.Genesis || res.Lines != 21 || res.LastSeq != 21 || len(all) != 4 {
		t.Errorf("verify %v: %+v %v", all, res, err)
	}
}

func TestFileSinkRemovesAnIncompleteLastLine(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := NewFileSink(FileOptions{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, s, 0, 3)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A crash in the middle of a write leaves half a line.
	half := eventN(3).MarshalLine(&Link{Seq: 4, PrevHash: GenesisHash})[:100]
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(half); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = NewFileSink(FileOptions{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if s.Truncated() != 100 {
		t.Errorf("Truncated %d, want 100", s.Truncated())
	}
	deliver(t, s, 3, 5)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, err := Verify(context.Background(), []string{path}, VerifyOptions{})
	if err != nil || !res.OK() || res.Lines != 5 || res.LastSeq != 5 {
		t.Errorf("verify: %+v %v", res, err)
	}
}

func TestFileSinkContinuesFromTheRotatedFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	paths := writeChain(t, dir)
	// A crash between the rotation's renames and the first line of the
	// new file: the current file is missing.
	for _, mv := range [][2]string{{paths[0], paths[2] + ".3"}, {paths[1], paths[2] + ".2"}, {paths[2], paths[2] + ".1"}} {
		if err := os.Rename(mv[0], mv[1]); err != nil {
			t.Fatal(err)
		}
	}
	s, err := NewFileSink(FileOptions{Path: paths[2]})
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, s, 100, 102)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	all := rotated(t, paths[2])
	res, err := Verify(context.Background(), all, VerifyOptions{})
	if err != nil || !res.OK() || res.Lines != 20 || !res.Genesis {
		t.Errorf("verify %v: %+v %v", all, res, err)
	}
}

func TestFileSinkRefusesAForeignFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"notes.txt":     "shopping list\nmilk\n",
		"plain.jsonl":   `{"type":"audit","time":"2026-03-01T10:00:00Z","decision":"allow"}` + "\n",
		"no-newline.md": "# a document without a final newline",
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if s, err := NewFileSink(FileOptions{Path: path}); err == nil {
			_ = s.Close(context.Background())
			t.Errorf("%s: the file sink took over a file that is not a chain", name)
		}
		if data, _ := os.ReadFile(path); string(data) != content {
			t.Errorf("%s was changed", name)
		}
	}
}

func TestFileSinkRotationFailureKeepsWriting(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := NewFileSink(FileOptions{Path: path, MaxBytes: 1024, MaxFiles: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Path.1 is a directory that cannot be removed: rotation fails.
	if err := os.MkdirAll(filepath.Join(path+".1", "keep"), 0o700); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := zerolog.New(&logs)
	a := NewAuditor(Options{Logger: &log}, s)
	for i := range 20 {
		a.Write(eventN(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st := statsOf(t, a, "file")
	if st.Delivered != 20 || st.Dropped != 0 || st.Failed == 0 || !strings.Contains(st.LastError, "rotate") {
		t.Errorf("stats %+v, want 20 delivered and the rotation failures", st)
	}
	if !strings.Contains(logs.String(), `"sink":"file"`) || !strings.Contains(logs.String(), "audit sink failing") {
		t.Errorf("no warning logged: %s", logs.String())
	}
	res, err := Verify(context.Background(), []string{path}, VerifyOptions{})
	if err != nil || !res.OK() || res.Lines != 20 {
		t.Errorf("verify: %+v %v", res, err)
	}
}
