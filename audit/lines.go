package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// maxLine bounds the length of a line read back from an event file.
const maxLine = maxTail

// Position is a line of an event file: its path and its 1-based number.
type Position struct {
	File string `json:"file"`
	Line int    `json:"line"`
}

// String returns "FILE:LINE".
func (p Position) String() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// lineScanner reads the lines of several files in turn, exactly as
// written (only the newline is removed; a final line without one is
// returned too).
type lineScanner struct {
	ctx   context.Context
	paths []string
	next  int // index of the next file to open
	f     *os.File
	r     *bufio.Reader
	pos   Position
	// idx numbers lines across all files, from 0.
	idx int
	acc []byte
}

func newLineScanner(ctx context.Context, paths []string) *lineScanner {
	return &lineScanner{ctx: ctx, paths: paths, idx: -1}
}

// scan returns the next line (valid until the next call), io.EOF after the
// last one.
func (s *lineScanner) scan() ([]byte, error) {
	for {
		if s.f == nil {
			if s.next >= len(s.paths) {
				return nil, io.EOF
			}
			path := s.paths[s.next]
			s.next++
			f, err := os.Open(path)
			if err != nil {
				return nil, fmt.Errorf("audit: %w", err)
			}
			s.f, s.pos = f, Position{File: path}
			if s.r == nil {
				s.r = bufio.NewReaderSize(f, 64<<10)
			} else {
				s.r.Reset(f)
			}
		}
		line, err := s.readLine()
		if errors.Is(err, io.EOF) && len(line) == 0 {
			s.closeFile()
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("audit: read %s: %w", s.pos.File, err)
		}
		s.pos.Line++
		s.idx++
		if s.idx%1024 == 0 && s.ctx.Err() != nil {
			return nil, fmt.Errorf("audit: %w", s.ctx.Err())
		}
		return line, nil
	}
}

// readLine reads one line without its newline; io.EOF with the rest of
// the file when it does not end with one.
func (s *lineScanner) readLine() ([]byte, error) {
	s.acc = s.acc[:0]
	for {
		chunk, err := s.r.ReadSlice('\n')
		if len(s.acc)+len(chunk) > maxLine+1 {
			return nil, fmt.Errorf("line %d is longer than %d bytes", s.pos.Line+1, maxLine)
		}
		switch {
		case err == nil:
			if len(s.acc) == 0 {
				return chunk[:len(chunk)-1], nil
			}
			s.acc = append(s.acc, chunk...)
			return s.acc[:len(s.acc)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			s.acc = append(s.acc, chunk...)
		default:
			s.acc = append(s.acc, chunk...)
			return s.acc, err
		}
	}
}

func (s *lineScanner) closeFile() {
	if s.f != nil {
		_ = s.f.Close()
		s.f = nil
	}
}

// Close closes the file being read.
func (s *lineScanner) Close() { s.closeFile() }
