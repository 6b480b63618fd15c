package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// FileOptions configures a FileSink.
type FileOptions struct {
	// Name names the sink in stats (default "file").
	Name string
	// Path is the file written to. Rotated files are Path.1 (the newest),
	// Path.2, …
	Path string
	// MaxBytes rotates the file before a line would take it past this size
	// (0: never). A line longer than MaxBytes gets a file of its own.
	MaxBytes int64
	// MaxFiles is how many rotated files are kept (default 10); older ones
	// are removed.
	MaxFiles int
	// BatchSize is the most events written with one write call (default
	// 256).
	BatchSize int
	// ChainKey, when set, keys the chain (ChainKeySize bytes): every line
	// carries an HMAC-SHA256 of its bytes, chained to the previous line's,
	// so nobody without the key can change, add or forge a line. Empty:
	// the plain SHA-256 chain, which proves nothing against anyone who can
	// write the file. The key never appears in errors or logs.
	ChainKey []byte
	// CheckpointKey, when set, signs a Checkpoint of the chain's head every
	// CheckpointEvery lines and when the Auditor closes; the Auditor hands
	// them to its destinations that carry checkpoints. Needs ChainKey.
	CheckpointKey ed25519.PrivateKey
	// CheckpointEvery is how many lines are written between checkpoints
	// (default DefaultCheckpointEvery); a checkpoint follows the first batch
	// that reaches it.
	CheckpointEvery int
	// Logger, when set, is told about an incomplete last line removed at
	// open (its size in bytes).
	Logger *zerolog.Logger
}

// FileSink appends JSON lines to a file, each carrying "seq" (1, 2, … from
// the first line ever written) and its link to the previous line. Without
// a chain key the link is "prev_hash", the hex SHA-256 of the previous
// line's exact bytes without its newline (64 zeros for the very first
// line); with one it is "prev_mac", and the line ends with its own "mac"
// (see ChainKeySize and chain.go). The chain continues across restarts
// (from the file's last line) and rotations (the new file's first line
// chains to the rotated file's last), so Verify detects lines edited,
// removed, inserted or reordered anywhere, and, keyed, the last line edited
// or lines appended; with checkpoints also lines cut off the end.
type FileSink struct {
	name     string
	path     string
	maxBytes int64
	maxFiles int
	batch    int

	mu   sync.Mutex
	f    *os.File
	size int64
	// seq and last are the last line written: its seq (0: none yet) and
	// its hash (GenesisHash: none yet) in an unkeyed chain.
	seq  uint64
	last string
	// keyed chains: m computes MACs; chain is the chain's id; lastMAC the
	// last line's MAC (zeros: none yet); w the buffer lines are built in.
	m       *macer
	chain   string
	lastMAC [32]byte
	w       lineWriter
	// checkpoints: signer signs them, every spaces them, cpSeq is the seq
	// of the last one, out receives them (set by the Auditor).
	signer ed25519.PrivateKey
	every  uint64
	cpSeq  uint64
	out    func(Checkpoint)
	// cut is the size of an incomplete last line removed at open.
	cut int64
	buf []byte
}

var (
	_ Destination      = (*FileSink)(nil)
	_ checkpointSource = (*FileSink)(nil)
)

// maxTail bounds the bytes read back from a file's end to find its last
// line (and hence the longest line a file may end with).
const maxTail = 64 << 20

// NewFileSink opens (or creates, mode 0600) o.Path for appending and
// continues the chain from its last line, or from Path.1's when the file
// is empty, or from the genesis. An incomplete last line (a write cut short
// by a crash) is removed first (see Truncated) and logged. It refuses a
// file whose last line is not a chained audit line; with a chain key, a
// keyed last line whose MAC does not verify (another key, or a forged
// line), and without one, a keyed file. An unkeyed file goes on keyed
// when a key is set: its first keyed line binds the lines before it.
func NewFileSink(o FileOptions) (*FileSink, error) {
	if o.Path == "" {
		return nil, errors.New("audit: file sink: no path")
	}
	if o.Name == "" {
		o.Name = "file"
	}
	if o.MaxFiles <= 0 {
		o.MaxFiles = 10
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 256
	}
	if o.CheckpointEvery <= 0 {
		o.CheckpointEvery = DefaultCheckpointEvery
	}
	s := &FileSink{name: o.Name, path: o.Path, maxBytes: max(0, o.MaxBytes), maxFiles: o.MaxFiles, batch: o.BatchSize,
		last: GenesisHash, every: uint64(o.CheckpointEvery)}
	switch {
	case o.ChainKey != nil && len(o.ChainKey) != ChainKeySize:
		return nil, fmt.Errorf("audit: file sink: the chain key is %d bytes, want %d", len(o.ChainKey), ChainKeySize)
	case o.ChainKey != nil:
		s.m = newMACer(o.ChainKey)
	}
	if o.CheckpointKey != nil {
		if s.m == nil {
			return nil, errors.New("audit: file sink: checkpoints need a chain key")
		}
		if len(o.CheckpointKey) != ed25519.PrivateKeySize {
			return nil, errors.New("audit: file sink: the checkpoint key is not an Ed25519 private key")
		}
		s.signer = o.CheckpointKey
	}
	f, err := os.OpenFile(o.Path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if err := s.resume(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	s.f = f
	s.cpSeq = s.seq
	if s.cut > 0 && o.Logger != nil {
		o.Logger.Warn().Str("path", s.path).Int64("bytes", s.cut).
			Msg("audit file: removed an incomplete last line (a write cut short by a crash)")
	}
	return s, nil
}

// resume reads the chain's head from f (or Path.1) and removes an
// incomplete last line.
func (s *FileSink) resume(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("audit: stat %s: %w", s.path, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("audit: %s is not a regular file", s.path)
	}
	line, end, err := lastLine(f, st.Size())
	if err != nil {
		return fmt.Errorf("audit: read the end of %s: %w", s.path, err)
	}
	if end < st.Size() {
		head := make([]byte, min(st.Size()-end, int64(len(linePrefix))))
		if _, err := f.ReadAt(head, end); err != nil {
			return fmt.Errorf("audit: read the end of %s: %w", s.path, err)
		}
		if !strings.HasPrefix(linePrefix, string(head)) {
			return fmt.Errorf("audit: %s does not end with a newline and its last line is not an audit line; move it away or choose another path", s.path)
		}
		if err := f.Truncate(end); err != nil {
			return fmt.Errorf("audit: remove the incomplete last line of %s: %w", s.path, err)
		}
		s.cut = st.Size() - end
	}
	s.size = end
	from := s.path
	if line == nil {
		// Empty: continue from the newest rotated file, if any (a crash
		// between the rotation's rename and the first write).
		from = s.path + ".1"
		if line, err = lastLineOf(from); err != nil {
			return err
		}
	}
	if line == nil {
		return s.startChain()
	}
	rec, err := ParseLine(line)
	if err != nil {
		return fmt.Errorf("audit: the last line of %s is not a hash-chained audit line; move the file away or choose another path", from)
	}
	if rec.MAC != "" {
		return s.resumeKeyed(from, line, rec)
	}
	if !validHash(rec.PrevHash) {
		return fmt.Errorf("audit: the last line of %s is not a hash-chained audit line; move the file away or choose another path", from)
	}
	s.seq, s.last = rec.Seq, lineHash(line)
	if s.m != nil {
		// An unkeyed chain goes on keyed: the first keyed line's prev_mac
		// is the MAC of this line, which binds every line before it.
		s.lastMAC = s.m.mac(line)
		return s.newChainID()
	}
	return nil
}

// resumeKeyed continues a keyed chain from its last line, which must
// verify with the sink's key.
func (s *FileSink) resumeKeyed(from string, line []byte, rec Record) error {
	if s.m == nil {
		return fmt.Errorf("audit: %s holds a keyed chain (its lines carry a mac); set audit.chain_key to the key it was written with, or move the files away", from)
	}
	covered, mac, ok := splitKeyed(line)
	if !ok || !validChainID(rec.Chain) || !validHash(rec.PrevMAC) || rec.Seq == 0 {
		return fmt.Errorf("audit: the last line of %s is not a keyed audit line; move the file away or choose another path", from)
	}
	if got := s.m.mac(covered); !hmac.Equal(got[:], mac[:]) {
		return fmt.Errorf("audit: the last line of %s does not verify with the chain key: the key is not the one the file was written with, or the line was forged; check the files with gatewaystack audit verify, then move them away", from)
	}
	s.seq, s.chain, s.lastMAC = rec.Seq, rec.Chain, mac
	return nil
}

// startChain starts a chain at the genesis.
func (s *FileSink) startChain() error {
	if s.m == nil {
		return nil
	}
	return s.newChainID()
}

func (s *FileSink) newChainID() error {
	id, err := newChainID()
	if err != nil {
		return err
	}
	s.chain = id
	return nil
}

// linePrefix is how every line MarshalLine writes begins.
const linePrefix = `{"type":"audit",`

// lastLineOf returns the last complete line of the file at path (nil when
// it does not exist or has none).
func lastLineOf(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("audit: stat %s: %w", path, err)
	}
	line, _, err := lastLine(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("audit: read the end of %s: %w", path, err)
	}
	return line, nil
}

// lastLine returns the last newline-terminated line of the first size
// bytes of r, without its newline, and end, the offset just past that
// newline (0 when there is none).
func lastLine(r io.ReaderAt, size int64) (line []byte, end int64, err error) {
	const chunk = 64 << 10
	var buf []byte // r[base:size]
	base := size
	for {
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
			end = base + int64(i) + 1
			if j := bytes.LastIndexByte(buf[:i], '\n'); j >= 0 {
				return buf[j+1 : i], end, nil
			}
			if base == 0 {
				return buf[:i], end, nil
			}
		} else if base == 0 {
			return nil, 0, nil
		}
		if size-base >= maxTail {
			return nil, 0, fmt.Errorf("the last line is longer than %d bytes", maxTail)
		}
		n := min(chunk, base)
		base -= n
		b := make([]byte, int(n)+len(buf))
		if _, err := r.ReadAt(b[:n], base); err != nil {
			return nil, 0, err
		}
		copy(b[n:], buf)
		buf = b
	}
}

// lineHash is the hex SHA-256 of a line without its newline.
func lineHash(line []byte) string {
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:])
}

// Name returns the sink's name.
func (s *FileSink) Name() string { return s.name }

// Delivery writes what is queued at once, retrying a failed write from
// 100ms up to 5s apart.
func (s *FileSink) Delivery() Delivery {
	return Delivery{BatchSize: s.batch, MinBackoff: DefaultMinBackoff, MaxBackoff: 5 * time.Second}
}

// Head returns the last line written (or found at open): its seq and its
// link, the hash (unkeyed) or MAC (keyed) the next line chains to (0 and
// GenesisHash before the first line). Keeping the head elsewhere lets
// Verify's caller notice lines cut off the end.
func (s *FileSink) Head() (seq uint64, hash string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m != nil {
		return s.seq, hex.EncodeToString(s.lastMAC[:])
	}
	return s.seq, s.last
}

// Chain returns the id of the keyed chain ("" when unkeyed).
func (s *FileSink) Chain() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.chain
}

// Truncated returns the size of an incomplete last line that NewFileSink
// removed (0: none).
func (s *FileSink) Truncated() int64 { return s.cut }

// Deliver appends batch, one line per event, rotating first when a line
// would take the file past MaxBytes. A failed write is undone (the file is
// truncated back), so a retry continues the chain cleanly. When rotation
// fails, the lines go to the current file and the error is returned with
// every event delivered. Events holding a Checkpoint are skipped. With a
// checkpoint key, once CheckpointEvery lines were written since the last
// checkpoint, the file is synced and a checkpoint of its head handed on.
func (s *FileSink) Deliver(_ context.Context, batch []Event) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return 0, fmt.Errorf("audit: %s is closed", s.path)
	}
	buf := s.buf[:0]
	defer func() { s.buf = buf[:0] }()
	h := head{seq: s.seq, last: s.last, mac: s.lastMAC}
	done, pending := 0, 0
	var rotErr error
	for i := range batch {
		e := &batch[i]
		if e.Checkpoint != nil {
			pending++
			continue
		}
		line, next, err := s.marshal(e, h)
		if err != nil {
			if werr := s.write(buf, h); werr != nil {
				return done, werr
			}
			return done + pending, err
		}
		if s.maxBytes > 0 && rotErr == nil && s.size+int64(len(buf)+len(line)) > s.maxBytes && s.size+int64(len(buf)) > 0 {
			if err := s.write(buf, h); err != nil {
				return done, err
			}
			done, pending, buf = done+pending, 0, buf[:0]
			rotErr = s.rotate()
		}
		buf = append(buf, line...)
		h = next
		pending++
	}
	if err := s.write(buf, h); err != nil {
		return done, err
	}
	if err := s.checkpoint(); err != nil {
		return len(batch), errors.Join(rotErr, err)
	}
	return len(batch), rotErr
}

// head is the chain's state after a line: its seq, and its hash (unkeyed)
// or MAC (keyed).
type head struct {
	seq  uint64
	last string
	mac  [32]byte
}

// marshal returns e as the line after h, and the chain's state after it.
// The line is valid until the next call.
func (s *FileSink) marshal(e *Event, h head) ([]byte, head, error) {
	if s.m == nil {
		line := e.MarshalLine(&Link{Seq: h.seq + 1, PrevHash: h.last})
		if line == nil {
			return nil, h, errZerologDisabled
		}
		return line, head{seq: h.seq + 1, last: lineHash(line[:len(line)-1])}, nil
	}
	line, mac, err := e.marshalKeyed(&s.w, h.seq+1, s.chain, &h.mac, s.m)
	if err != nil {
		return nil, h, err
	}
	return line, head{seq: h.seq + 1, mac: mac}, nil
}

// write appends buf, whose last line leaves the chain at h. On failure it
// truncates the file back to its size before.
func (s *FileSink) write(buf []byte, h head) error {
	if len(buf) == 0 {
		return nil
	}
	if _, err := s.f.Write(buf); err != nil {
		if terr := s.f.Truncate(s.size); terr != nil {
			return fmt.Errorf("audit: write %s: %w (and truncating back failed: %v)", s.path, err, terr)
		}
		return fmt.Errorf("audit: write %s: %w", s.path, err)
	}
	s.size += int64(len(buf))
	s.seq, s.last, s.lastMAC = h.seq, h.last, h.mac
	return nil
}

// setCheckpointOut makes out receive the sink's checkpoints.
func (s *FileSink) setCheckpointOut(out func(Checkpoint)) {
	s.mu.Lock()
	s.out = out
	s.mu.Unlock()
}

// checkpoint hands on a checkpoint of the head when one is due (every
// CheckpointEvery lines), after syncing the file so that the lines it
// covers are on disk. Called with s.mu held.
func (s *FileSink) checkpoint() error {
	if s.signer == nil || s.out == nil || s.seq-s.cpSeq < s.every {
		return nil
	}
	cp, err := s.takeCheckpoint(false)
	if err != nil {
		return err
	}
	s.out(cp)
	return nil
}

// takeCheckpoint syncs the file and signs a checkpoint of the head.
// Called with s.mu held.
func (s *FileSink) takeCheckpoint(final bool) (Checkpoint, error) {
	if err := s.f.Sync(); err != nil {
		return Checkpoint{}, fmt.Errorf("audit: sync %s before a checkpoint: %w", s.path, err)
	}
	reason := CheckpointInterval
	if final {
		reason = CheckpointShutdown
	}
	cp := Checkpoint{Time: time.Now().UTC(), File: s.path, Chain: s.chain, Seq: s.seq,
		MAC: hex.EncodeToString(s.lastMAC[:]), Reason: reason}
	cp.sign(s.signer)
	s.cpSeq = s.seq
	return cp, nil
}

// shutdownCheckpoint returns a checkpoint of the head for the Auditor to
// hand on when it closes (false: no checkpoint key, nothing written yet,
// or the file is closed).
func (s *FileSink) shutdownCheckpoint() (Checkpoint, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.signer == nil || s.f == nil || s.seq == 0 {
		return Checkpoint{}, false
	}
	cp, err := s.takeCheckpoint(true)
	if err != nil {
		return Checkpoint{}, false
	}
	return cp, true
}

// rotate syncs the file, shifts Path.N to Path.N+1 (removing the oldest
// beyond MaxFiles), renames Path to Path.1 and starts a new Path. When it
// fails, writing goes on in the current file.
func (s *FileSink) rotate() error {
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("audit: rotate %s: sync: %w", s.path, err)
	}
	name := func(n int) string { return s.path + "." + strconv.Itoa(n) }
	if err := os.Remove(name(s.maxFiles)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("audit: rotate %s: %w", s.path, err)
	}
	for n := s.maxFiles - 1; n >= 1; n-- {
		if err := os.Rename(name(n), name(n+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("audit: rotate %s: %w", s.path, err)
		}
	}
	if err := os.Rename(s.path, name(1)); err != nil {
		return fmt.Errorf("audit: rotate %s: %w", s.path, err)
	}
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		// The open file is now Path.1; lines go on there.
		return fmt.Errorf("audit: rotate %s: open the new file: %w", s.path, err)
	}
	syncDir(filepath.Dir(s.path))
	old := s.f
	s.f, s.size = f, 0
	if err := old.Close(); err != nil {
		return fmt.Errorf("audit: rotate %s: close the old file: %w", s.path, err)
	}
	return nil
}

// syncDir makes renames in dir durable, where the platform allows it.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}

// Close syncs and closes the file. Further Delivers fail.
func (s *FileSink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	f := s.f
	s.f = nil
	serr := f.Sync()
	cerr := f.Close()
	if serr != nil {
		return fmt.Errorf("audit: sync %s: %w", s.path, serr)
	}
	if cerr != nil {
		return fmt.Errorf("audit: close %s: %w", s.path, cerr)
	}
	return nil
}
