package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// testKey returns a chain key made of b.
func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, ChainKeySize) }

// testSigner returns a fresh checkpoint key pair.
func testSigner(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// keyedOptions are the file options of the keyed tests: about four lines
// per file.
func keyedOptions(path string, key []byte) FileOptions {
	return FileOptions{Path: path, MaxBytes: 2048, MaxFiles: 100, ChainKey: key}
}

// writeKeyed writes events [from, to) with s.
func writeKeyed(t *testing.T, o FileOptions, from, to int) {
	t.Helper()
	s, err := NewFileSink(o)
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, s, from, to)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// keyedChain writes 30 events into a keyed chain in a new directory and
// returns its files, oldest first.
func keyedChain(t *testing.T, key []byte) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	writeKeyed(t, keyedOptions(path, key), 0, 30)
	files := rotated(t, path)
	if len(files) < 5 {
		t.Fatalf("the chain has %d files, want at least 5", len(files))
	}
	return files
}

// lastOf returns the last line of path without its newline.
func lastOf(t *testing.T, path string) []byte {
	t.Helper()
	lines := readLines(t, path)
	return bytes.TrimSuffix(lines[len(lines)-1], []byte("\n"))
}

// forgeKeyed returns event e as the keyed line after prev, MACed with key.
func forgeKeyed(t *testing.T, e Event, prev []byte, key []byte) []byte {
	t.Helper()
	rec, err := ParseLine(prev)
	if err != nil {
		t.Fatal(err)
	}
	var prevMAC [32]byte
	if _, err := hex.Decode(prevMAC[:], []byte(rec.MAC)); err != nil {
		t.Fatal(err)
	}
	line, _, err := e.marshalKeyed(&lineWriter{}, rec.Seq+1, rec.Chain, &prevMAC, newMACer(key))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(line)
}

// Invariant: audit links are keyed. Whoever can write the files but does
// not hold the chain key cannot edit, insert, reorder, remove or append a
// line, the last one included, nor rewrite the files with recomputed
// hashes; verify with the key says what was done and where.
func TestKeyedChainRefusesTampering(t *testing.T) {
	t.Parallel()
	key := testKey(7)
	tests := []struct {
		name   string
		tamper func(t *testing.T, files []string) []string
		kind   string
		// at is the index of the file and the line the problem is about
		// (-1: not checked).
		atFile, atLine int
	}{
		{"untouched", func(_ *testing.T, f []string) []string { return f }, "", 0, 0},
		{"the last line edited", func(t *testing.T, f []string) []string {
			cur := f[len(f)-1]
			lines := readLines(t, cur)
			lines[len(lines)-1] = bytes.Replace(lines[len(lines)-1], []byte(`"decision":"allow"`), []byte(`"decision":"deny"`), 1)
			writeLines(t, cur, lines)
			return f
		}, ProblemAltered, -1, -1},
		{"the oldest lines deleted", func(t *testing.T, f []string) []string {
			writeLines(t, f[0], readLines(t, f[0])[2:])
			return f
		}, ProblemStartMissing, 0, 1},
		{"the oldest rotated file deleted", func(t *testing.T, f []string) []string {
			if err := os.Remove(f[0]); err != nil {
				t.Fatal(err)
			}
			return f[1:]
		}, ProblemStartMissing, 0, 1},
		{"a rotated file in the middle deleted", func(t *testing.T, f []string) []string {
			if err := os.Remove(f[2]); err != nil {
				t.Fatal(err)
			}
			return append(f[:2:2], f[3:]...)
		}, ProblemRemoved, 2, 1},
		{"a forged line appended with a recomputed plain SHA-256", func(t *testing.T, f []string) []string {
			cur := f[len(f)-1]
			last := lastOf(t, cur)
			rec, _ := ParseLine(last)
			forged := eventN(99).MarshalLine(&Link{Seq: rec.Seq + 1, PrevHash: lineHash(last)})
			writeLines(t, cur, append(readLines(t, cur), forged))
			return f
		}, ProblemUnkeyed, -1, -1},
		{"a forged keyed line appended under another key", func(t *testing.T, f []string) []string {
			cur := f[len(f)-1]
			writeLines(t, cur, append(readLines(t, cur), forgeKeyed(t, eventN(99), lastOf(t, cur), testKey(8))))
			return f
		}, ProblemAltered, -1, -1},
		{"the files rewritten as a plain SHA-256 chain", func(t *testing.T, f []string) []string {
			// Everything recomputed without the key, as before keying.
			dir := t.TempDir()
			path := filepath.Join(dir, "audit.jsonl")
			writeKeyed(t, keyedOptions(path, nil), 0, 30)
			return rotated(t, path)
		}, ProblemUnkeyed, -1, -1},
		{"the files rewritten under another key", func(t *testing.T, f []string) []string {
			dir := t.TempDir()
			path := filepath.Join(dir, "audit.jsonl")
			writeKeyed(t, keyedOptions(path, testKey(9)), 0, 30)
			return rotated(t, path)
		}, ProblemAltered, 0, 1},
		{"two lines swapped", func(t *testing.T, f []string) []string {
			lines := readLines(t, f[1])
			lines[0], lines[1] = lines[1], lines[0]
			writeLines(t, f[1], lines)
			return f
		}, ProblemReordered, 1, 1},
		{"a line inserted (a copy of another)", func(t *testing.T, f []string) []string {
			lines := readLines(t, f[1])
			writeLines(t, f[1], append(lines[:2:2], append([][]byte{lines[0]}, lines[2:]...)...))
			return f
		}, ProblemInserted, 1, 3},
		{"a MAC spelled in upper case", func(t *testing.T, f []string) []string {
			lines := readLines(t, f[1])
			l := lines[1]
			i := len(l) - 1 - 2 - 64
			copy(l[i:], bytes.ToUpper(l[i:i+64]))
			writeLines(t, f[1], lines)
			return f
		}, ProblemAltered, 1, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			files := tc.tamper(t, keyedChain(t, key))
			res, err := Verify(context.Background(), files, VerifyOptions{Key: key})
			if err != nil {
				t.Fatal(err)
			}
			if tc.kind == "" {
				if !res.OK() || !res.Keyed || !res.Genesis || res.LastSeq != 30 || res.Chain == "" {
					t.Errorf("an untouched chain: %+v %+v", res, res.Problem)
				}
				return
			}
			p := res.Problem
			if p == nil || p.Kind != tc.kind {
				t.Fatalf("problem %+v, want %s", p, tc.kind)
			}
			if tc.atFile >= 0 && p.At != (Position{files[tc.atFile], tc.atLine}) {
				t.Errorf("problem at %s, want %s:%d (%s)", p.At, files[tc.atFile], tc.atLine, p.Detail)
			}
			if tc.atFile < 0 && p.At.File != files[len(files)-1] {
				t.Errorf("problem at %s, want in the current file (%s)", p.At, p.Detail)
			}
		})
	}
}

// With AllowPartial a keyed chain whose oldest files rotation removed is
// accepted from its first line on.
func TestKeyedChainAllowPartial(t *testing.T) {
	t.Parallel()
	key := testKey(7)
	files := keyedChain(t, key)[2:]
	res, err := Verify(context.Background(), files, VerifyOptions{Key: key, AllowPartial: true})
	if err != nil || !res.OK() || res.Genesis || res.Anchor == "" || res.FirstSeq <= 1 || res.LastSeq != 30 {
		t.Errorf("a partial chain with AllowPartial: %+v %v", res, err)
	}
	// Edits are still found.
	lines := readLines(t, files[0])
	lines[0] = bytes.Replace(lines[0], []byte(`"subject":"alice"`), []byte(`"subject":"mallo"`), 1)
	writeLines(t, files[0], lines)
	res, err = Verify(context.Background(), files, VerifyOptions{Key: key, AllowPartial: true})
	if err != nil || res.Problem == nil || res.Problem.Kind != ProblemAltered || res.Problem.At != (Position{files[0], 1}) {
		t.Errorf("an edited first line with AllowPartial: %+v %v", res.Problem, err)
	}
}

// A keyed chain cannot be checked without its key, and the file sink
// refuses to go on with a keyed file under another key or none.
func TestKeyedChainNeedsItsKey(t *testing.T) {
	t.Parallel()
	files := keyedChain(t, testKey(7))
	if _, err := Verify(context.Background(), files, VerifyOptions{}); !errors.Is(err, ErrChainKeyRequired) {
		t.Errorf("verify without the key: %v, want ErrChainKeyRequired", err)
	}
	path := files[len(files)-1]
	if _, err := NewFileSink(keyedOptions(path, testKey(8))); err == nil || !strings.Contains(err.Error(), "does not verify with the chain key") {
		t.Errorf("another key: %v", err)
	} else if strings.Contains(err.Error(), hex.EncodeToString(testKey(8))) || strings.Contains(err.Error(), string(testKey(8))) {
		t.Errorf("the error names the key: %v", err)
	}
	if _, err := NewFileSink(keyedOptions(path, nil)); err == nil || !strings.Contains(err.Error(), "keyed chain") {
		t.Errorf("no key: %v", err)
	}
	if _, err := NewFileSink(keyedOptions(filepath.Join(t.TempDir(), "a.jsonl"), []byte("short"))); err == nil || strings.Contains(err.Error(), "short") {
		t.Errorf("a short key: %v", err)
	}
}

// An unkeyed file goes on keyed once a key is set: the first keyed line
// binds every unkeyed line before it, and no unkeyed line may follow.
func TestKeyedChainContinuesAnUnkeyedFile(t *testing.T) {
	t.Parallel()
	key := testKey(7)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	writeKeyed(t, keyedOptions(path, nil), 0, 6)
	writeKeyed(t, keyedOptions(path, key), 6, 12)
	files := rotated(t, path)
	res, err := Verify(context.Background(), files, VerifyOptions{Key: key})
	if err != nil || !res.OK() || res.Unkeyed != 6 || res.LastSeq != 12 || !res.Genesis {
		t.Fatalf("unkeyed then keyed: %+v %+v %v", res, res.Problem, err)
	}
	// An unkeyed line edited, and the unkeyed chain after it recomputed:
	// the first keyed line no longer matches.
	lines := readLines(t, files[0])
	lines[0] = bytes.Replace(lines[0], []byte(`"subject":"alice"`), []byte(`"subject":"mallo"`), 1)
	prev := bytes.TrimSuffix(lines[0], []byte("\n"))
	for i := 1; i < len(lines); i++ {
		rec, err := ParseLine(lines[i])
		if err != nil || rec.MAC != "" {
			break
		}
		lines[i] = bytes.Replace(lines[i], []byte(rec.PrevHash), []byte(lineHash(prev)), 1)
		prev = bytes.TrimSuffix(lines[i], []byte("\n"))
	}
	writeLines(t, files[0], lines)
	res, err = Verify(context.Background(), files, VerifyOptions{Key: key})
	if err != nil || res.Problem == nil || res.Problem.Kind != ProblemAltered {
		t.Errorf("an edited unkeyed prefix: %+v %v", res.Problem, err)
	}
}

// checkpointRun writes n events through an Auditor with a keyed file sink
// signing a checkpoint every 10 lines and a writer sink (stdout) that
// carries them; it returns the chain's files and the stdout file.
func checkpointRun(t *testing.T, key []byte, priv ed25519.PrivateKey, n int) (files []string, stdout string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	o := keyedOptions(path, key)
	o.CheckpointKey, o.CheckpointEvery = priv, 10
	fs, err := NewFileSink(o)
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	ws, err := NewWriterSink(WriterOptions{Writer: &out})
	if err != nil {
		t.Fatal(err)
	}
	a := NewAuditor(Options{}, NewRing(RingOptions{}), fs, ws)
	for i := range n {
		a.Write(eventN(i))
		// Batches of 5: a checkpoint after lines 10, 20, 30.
		for i%5 == 4 && statsOf(t, a, "file").Delivered < uint64(i+1) {
			time.Sleep(time.Millisecond)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	stdout = filepath.Join(dir, "stdout.jsonl")
	if err := os.WriteFile(stdout, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return rotated(t, path), stdout
}

// syncBuffer is a bytes.Buffer safe for a writer sink and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// Invariant: checkpoints elsewhere bound the chain. Lines cut off the end
// and whole files deleted show against any copy of the checkpoints, and
// even a holder of the chain key cannot rewrite a checkpointed line.
func TestCheckpointsDetectTruncation(t *testing.T) {
	t.Parallel()
	key := testKey(7)
	pub, priv := testSigner(t)
	files, stdout := checkpointRun(t, key, priv, 35)
	cps, err := ReadCheckpoints(context.Background(), []string{stdout}, []ed25519.PublicKey{pub})
	if err != nil {
		t.Fatal(err)
	}
	if len(cps) != 4 || cps[len(cps)-1].Reason != CheckpointShutdown || cps[len(cps)-1].Seq != 35 {
		t.Fatalf("checkpoints %+v, want some every 10 lines and a last one at shutdown, at seq 35", cps)
	}
	for i, cp := range cps[:len(cps)-1] {
		if cp.Reason != CheckpointInterval || cp.Seq != uint64(10*(i+1)) || cp.File != files[len(files)-1] {
			t.Errorf("checkpoint %+v, want one at seq %d", cp, 10*(i+1))
		}
	}
	// The stdout events are all there, the checkpoints after the events
	// they cover.
	lines := readLines(t, stdout)
	if len(lines) != 35+len(cps) || !bytes.Contains(lines[len(lines)-1], []byte(`"reason":"shutdown"`)) {
		t.Errorf("stdout has %d lines, want 35 events and %d checkpoints, the shutdown one last", len(lines), len(cps))
	}
	verify := func(files []string, o VerifyOptions) VerifyResult {
		t.Helper()
		o.Key = key
		res, err := Verify(context.Background(), files, o)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := verify(files, VerifyOptions{Checkpoints: cps}); !res.OK() || res.NewestCheckpoint != 35 || res.Checkpoints != len(cps) {
		t.Fatalf("an untouched chain with its checkpoints: %+v %+v", res, res.Problem)
	}

	// The last three lines cut off.
	cut := copyFiles(t, files)
	cur := cut[len(cut)-1]
	lines = readLines(t, cur)
	writeLines(t, cur, lines[:len(lines)-min(3, len(lines))])
	if res := verify(cut, VerifyOptions{}); !res.OK() {
		t.Fatalf("without checkpoints a cut end cannot show, yet: %+v", res.Problem)
	}
	if res := verify(cut, VerifyOptions{Checkpoints: cps}); res.Problem == nil || res.Problem.Kind != ProblemTruncated || !strings.Contains(res.Problem.Detail, "records seq 35") {
		t.Errorf("a cut end with checkpoints: %+v", res.Problem)
	}

	// The newest file deleted.
	gone := copyFiles(t, files)
	if res := verify(gone[:len(gone)-1], VerifyOptions{Checkpoints: cps}); res.Problem == nil || res.Problem.Kind != ProblemTruncated {
		t.Errorf("the newest file deleted: %+v", res.Problem)
	}

	// The oldest files rotated away: accepted with AllowPartial only.
	if res := verify(files[2:], VerifyOptions{Checkpoints: cps}); res.Problem == nil || res.Problem.Kind != ProblemStartMissing {
		t.Errorf("a partial chain: %+v", res.Problem)
	}
	if res := verify(files[2:], VerifyOptions{Checkpoints: cps, AllowPartial: true}); !res.OK() || res.NewestCheckpoint != 35 {
		t.Errorf("a partial chain with AllowPartial: %+v", res.Problem)
	}

	// A holder of the chain key rewrites line 5 and every line after it:
	// the chain verifies, the checkpoints do not agree.
	rw := rewriteFrom(t, copyFiles(t, files), key, 5)
	if res := verify(rw, VerifyOptions{}); !res.OK() {
		t.Fatalf("the rewritten chain should verify on its own: %+v", res.Problem)
	}
	if res := verify(rw, VerifyOptions{Checkpoints: cps}); res.Problem == nil || res.Problem.Kind != ProblemCheckpointMismatch {
		t.Errorf("a rewritten chain with checkpoints: %+v", res.Problem)
	}

	// Checkpoints of another chain only.
	_, other := checkpointRun(t, key, priv, 12)
	ocps, err := ReadCheckpoints(context.Background(), []string{other}, []ed25519.PublicKey{pub})
	if err != nil {
		t.Fatal(err)
	}
	if res := verify(files, VerifyOptions{Checkpoints: ocps}); res.Problem == nil || res.Problem.Kind != ProblemCheckpointChain {
		t.Errorf("checkpoints of another chain: %+v", res.Problem)
	}
	if res := verify(files, VerifyOptions{Checkpoints: append(ocps, cps...)}); !res.OK() || res.OtherCheckpoints != len(ocps) {
		t.Errorf("checkpoints of two chains: %+v %+v", res, res.Problem)
	}
}

// copyFiles copies files into a new directory.
func copyFiles(t *testing.T, files []string) []string {
	t.Helper()
	dir := t.TempDir()
	var out []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.Base(f))
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// rewriteFrom edits the line of seq from (its subject) and recomputes,
// with key, the MAC of every line from it on.
func rewriteFrom(t *testing.T, files []string, key []byte, from uint64) []string {
	t.Helper()
	m := newMACer(key)
	var prevMAC string
	for _, f := range files {
		lines := readLines(t, f)
		for i, l := range lines {
			rec, err := ParseLine(l)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Seq < from {
				prevMAC = rec.MAC
				continue
			}
			l = bytes.TrimSuffix(l, []byte("\n"))
			if rec.Seq == from {
				l = bytes.Replace(l, []byte(`"subject":"alice"`), []byte(`"subject":"mallo"`), 1)
			}
			l = bytes.Replace(l, []byte(`"prev_mac":"`+rec.PrevMAC), []byte(`"prev_mac":"`+prevMAC), 1)
			covered, _, ok := splitKeyed(l)
			if !ok {
				t.Fatal("not a keyed line")
			}
			line, mac, err := appendMAC(append(bytes.Clone(covered), '}', '\n'), m)
			if err != nil {
				t.Fatal(err)
			}
			lines[i], prevMAC = line, hex.EncodeToString(mac[:])
		}
		writeLines(t, f, lines)
	}
	return files
}

// Invariant: only the checkpoint key's holder can make a checkpoint the
// verifier accepts; the verifier holds public keys only.
func TestCheckpointSignatures(t *testing.T) {
	t.Parallel()
	key := testKey(7)
	pub, priv := testSigner(t)
	_, stdout := checkpointRun(t, key, priv, 12)
	cps, err := ReadCheckpoints(context.Background(), []string{stdout}, []ed25519.PublicKey{pub})
	if err != nil || len(cps) == 0 {
		t.Fatal(cps, err)
	}
	oldPub, _ := testSigner(t)
	// Several keys (an old one kept after a rotation) are fine.
	if got, err := ReadCheckpoints(context.Background(), []string{stdout}, []ed25519.PublicKey{oldPub, pub}); err != nil || len(got) != len(cps) {
		t.Errorf("with an old key too: %d, %v", len(got), err)
	}
	_, otherPriv := testSigner(t)
	forged := cps[len(cps)-1]
	forged.Seq += 100
	forgedSameID := forged
	forgedSameID.sign(otherPriv)
	forgedSameID.KeyID = KeyID(pub) // claims the real key
	ownID := forged
	ownID.sign(otherPriv)
	edited := cps[len(cps)-1]
	edited.Seq--
	for _, tc := range []struct {
		name string
		cp   Checkpoint
		want string
	}{
		{"signed with another key, naming the real one", forgedSameID, "does not verify"},
		{"signed with another key, naming it", ownID, "not among the checkpoint public keys"},
		{"its seq edited", edited, "does not verify"},
	} {
		path := filepath.Join(t.TempDir(), "cps.jsonl")
		data, _ := os.ReadFile(stdout)
		data = append(data, tc.cp.marshal()...)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := ReadCheckpoints(context.Background(), []string{path}, []ed25519.PublicKey{pub})
		var ce *CheckpointError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a refusal saying %q", tc.name, err, tc.want)
		}
	}
	// A webhook body (a JSON array) holds checkpoints too.
	var arr bytes.Buffer
	arr.WriteString("[")
	arr.Write(bytes.TrimSuffix(eventN(1).MarshalLine(nil), []byte("\n")))
	arr.WriteString(",")
	arr.Write(bytes.TrimSuffix(cps[0].marshal(), []byte("\n")))
	arr.WriteString("]\n")
	path := filepath.Join(t.TempDir(), "hook.jsonl")
	if err := os.WriteFile(path, arr.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadCheckpoints(context.Background(), []string{path}, []ed25519.PublicKey{pub}); err != nil || len(got) != 1 || got[0].Seq != cps[0].Seq {
		t.Errorf("a webhook body: %+v, %v", got, err)
	}
}

// A half-written last line removed at start-up is logged with its size.
func TestKeyedFileSinkLogsAnIncompleteLastLine(t *testing.T) {
	t.Parallel()
	key := testKey(7)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	writeKeyed(t, keyedOptions(path, key), 0, 2)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte(`{"type":"audit","time":"2026-`)); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	var logs bytes.Buffer
	log := zerolog.New(&logs)
	o := keyedOptions(path, key)
	o.Logger = &log
	writeKeyed(t, o, 2, 4)
	if !strings.Contains(logs.String(), `"bytes":29`) || !strings.Contains(logs.String(), "incomplete last line") {
		t.Errorf("log %q, want the removed line's size", logs.String())
	}
	res, err := Verify(context.Background(), rotated(t, path), VerifyOptions{Key: key})
	if err != nil || !res.OK() || res.LastSeq != 4 {
		t.Errorf("verify: %+v %v", res.Problem, err)
	}
}

// Keys are read in the documented spellings, and errors never repeat them.
func TestParseKeys(t *testing.T) {
	t.Parallel()
	raw := testKey(0xab)
	for _, s := range []string{hex.EncodeToString(raw), strings.ToUpper(hex.EncodeToString(raw)),
		"q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=", "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s", " q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n"} {
		if k, err := ParseChainKey(s); err != nil || !bytes.Equal(k, raw) {
			t.Errorf("ParseChainKey(%q): %x %v", s, k, err)
		}
	}
	if k, err := ParseChainKeyFile(raw); err != nil || !bytes.Equal(k, raw) {
		t.Errorf("32 raw bytes: %v", err)
	}
	for _, s := range []string{"", "secret-but-too-short", hex.EncodeToString(raw[:31]), "zz" + hex.EncodeToString(raw)[2:]} {
		if _, err := ParseChainKey(s); err == nil || (s != "" && strings.Contains(err.Error(), s)) {
			t.Errorf("ParseChainKey(%q): %v", s, err)
		}
	}
	pub, priv := testSigner(t)
	for _, s := range []string{hex.EncodeToString(priv.Seed()), hex.EncodeToString(priv)} {
		if k, err := ParseCheckpointPrivateKey([]byte(s)); err != nil || !k.Equal(priv) {
			t.Errorf("ParseCheckpointPrivateKey: %v", err)
		}
	}
	if k, err := ParseCheckpointPublicKey([]byte(hex.EncodeToString(pub))); err != nil || !k.Equal(pub) {
		t.Errorf("ParseCheckpointPublicKey: %v", err)
	}
	// The PEM files openssl genpkey -algorithm ed25519 and openssl pkey
	// -pubout write.
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := ParseCheckpointPrivateKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil || !k.Equal(priv) {
		t.Errorf("a PEM private key: %v", err)
	}
	der, err = x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := ParseCheckpointPublicKey(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})); err != nil || !k.Equal(pub) {
		t.Errorf("a PEM public key: %v", err)
	}
	if _, err := ParseCheckpointPrivateKey([]byte("not-a-key-value")); err == nil || strings.Contains(err.Error(), "not-a-key-value") {
		t.Errorf("a bad private key: %v", err)
	}
}
