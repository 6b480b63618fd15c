package audit

import (
	"bytes"
	"context"
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
}

// FileSink appends JSON lines to a file, each carrying "seq" (1, 2, … from
// the first line ever written) and "prev_hash", the hex SHA-256 of the
// previous line's exact bytes without its newline (64 zeros for the very
// first line). The chain continues across restarts (from the file's last
// line) and rotations (the new file's first line chains to the rotated
// file's last), so Verify detects lines edited, removed, inserted or
// reordered anywhere but at the very end.
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
	// its hash (GenesisHash: none yet).
	seq  uint64
	last string
	// cut is the size of an incomplete last line removed at open.
	cut int64
	buf []byte
}

var _ Destination = (*FileSink)(nil)

// maxTail bounds the bytes read back from a file's end to find its last
// line (and hence the longest line a file may end with).
const maxTail = 64 << 20

// NewFileSink opens (or creates, mode 0600) o.Path for appending and
// continues the hash chain from its last line, or from Path.1's when the
// file is empty, or from the genesis. An incomplete last line (a write cut
// short by a crash) is removed first (see Truncated). It refuses a file
// whose last line is not a chained audit line.
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
	s := &FileSink{name: o.Name, path: o.Path, maxBytes: max(0, o.MaxBytes), maxFiles: o.MaxFiles, batch: o.BatchSize, last: GenesisHash}
	f, err := os.OpenFile(o.Path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if err := s.resume(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	s.f = f
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
		return nil
	}
	rec, err := ParseLine(line)
	if err != nil || !validHash(rec.PrevHash) {
		return fmt.Errorf("audit: the last line of %s is not a hash-chained audit line; move the file away or choose another path", from)
	}
	s.seq, s.last = rec.Seq, lineHash(line)
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
// hash (0 and GenesisHash before the first line). Keeping the head
// elsewhere lets Verify's caller notice lines cut off the end.
func (s *FileSink) Head() (seq uint64, hash string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seq, s.last
}

// Truncated returns the size of an incomplete last line that NewFileSink
// removed (0: none).
func (s *FileSink) Truncated() int64 { return s.cut }

// Deliver appends batch, one line per event, rotating first when a line
// would take the file past MaxBytes. A failed write is undone (the file is
// truncated back), so a retry continues the chain cleanly. When rotation
// fails, the lines go to the current file and the error is returned with
// every event delivered.
func (s *FileSink) Deliver(_ context.Context, batch []Event) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return 0, fmt.Errorf("audit: %s is closed", s.path)
	}
	buf := s.buf[:0]
	defer func() { s.buf = buf[:0] }()
	seq, last := s.seq, s.last
	done, pending := 0, 0
	var rotErr error
	for _, e := range batch {
		line := e.MarshalLine(&Link{Seq: seq + 1, PrevHash: last})
		if line == nil {
			if err := s.write(buf, seq, last); err != nil {
				return done, err
			}
			return done + pending, errZerologDisabled
		}
		if s.maxBytes > 0 && rotErr == nil && s.size+int64(len(buf)+len(line)) > s.maxBytes && s.size+int64(len(buf)) > 0 {
			if err := s.write(buf, seq, last); err != nil {
				return done, err
			}
			done, pending, buf = done+pending, 0, buf[:0]
			rotErr = s.rotate()
		}
		buf = append(buf, line...)
		seq, last = seq+1, lineHash(line[:len(line)-1])
		pending++
	}
	if err := s.write(buf, seq, last); err != nil {
		return done, err
	}
	return len(batch), rotErr
}

// write appends buf, whose last line has seq and hash last. On failure it
// truncates the file back to its size before.
func (s *FileSink) write(buf []byte, seq uint64, last string) error {
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
	s.seq, s.last = seq, last
	return nil
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
