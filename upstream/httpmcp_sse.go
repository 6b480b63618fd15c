package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
)

// maxMessageBytes bounds one JSON-RPC message from an upstream: a JSON
// response body, or the data of one event of an event stream.
const maxMessageBytes = 16 << 20

// errEventTooLarge: an event (or one of its lines) exceeds maxMessageBytes.
var errEventTooLarge = fmt.Errorf("an event of the stream exceeds %d MiB", maxMessageBytes>>20)

// sseReader reads an event stream as the HTML Living Standard's "server-sent
// events" parser does:
//   - lines end with CRLF, LF or a lone CR;
//   - a line starting with ':' is a comment;
//   - "field: value" (one space after the colon is dropped; a line without
//     a colon is a field with an empty value);
//   - data lines of one event are joined with "\n";
//   - an empty line dispatches the event; an event without data is not
//     dispatched, but its id still counts;
//   - an id containing NUL is ignored; retry takes ASCII digits only;
//   - unknown fields are ignored.
//
// Deliberately lenient in one place: an event the server did not terminate
// with an empty line before closing the stream is still dispatched (a
// response written that way is still the response).
type sseReader struct {
	br *bufio.Reader

	line   []byte // the current line, when it spans buffer refills
	skipLF bool   // the last line ended with CR: a following LF belongs to it

	data    []byte // data of the event being read
	hasData bool
	event   []byte // its event type

	// LastEventID is the id of the last dispatched event (for resuming).
	LastEventID string
	pendingID   string
	hasID       bool
	// Retry is the reconnection time the server asked for, if HasRetry.
	Retry    time.Duration
	HasRetry bool
}

func newSSEReader(r io.Reader) *sseReader {
	return &sseReader{br: bufio.NewReaderSize(r, sseBufferSize)}
}

const sseBufferSize = 16 << 10

// sseReaderPool recycles the readers of call streams (their 16 KiB
// buffers).
type sseReaderPool struct{ p sync.Pool }

// get returns a reader of r.
func (p *sseReaderPool) get(r io.Reader) *sseReader {
	s, _ := p.p.Get().(*sseReader)
	if s == nil {
		return newSSEReader(r)
	}
	s.reset(r)
	s.LastEventID, s.pendingID, s.Retry, s.HasRetry = "", "", 0, false
	return s
}

// put recycles s unless an event made its buffers large; s must not be used
// afterwards.
func (p *sseReaderPool) put(s *sseReader) {
	if cap(s.line) > 64<<10 || cap(s.data) > 64<<10 {
		return
	}
	s.br.Reset(nil)
	p.p.Put(s)
}

// reset makes s read from r, keeping LastEventID and Retry (a resumed
// stream continues the same sequence).
func (s *sseReader) reset(r io.Reader) {
	s.br.Reset(r)
	s.line, s.skipLF = s.line[:0], false
	s.data, s.hasData, s.event = s.data[:0], false, s.event[:0]
	s.hasID = false
}

// Next returns the event type ("message" when unnamed) and data of the next
// event. The slices are valid until the next call. At the end of the stream
// it returns io.EOF; a broken stream returns the read error.
func (s *sseReader) Next() (event, data []byte, err error) {
	for {
		line, err := s.readLine()
		if err != nil {
			if err == io.EOF && s.hasData {
				event, data = s.dispatch()
				return event, data, nil
			}
			return nil, nil, err
		}
		if len(line) == 0 {
			if s.hasID {
				s.LastEventID, s.hasID = s.pendingID, false
			}
			if !s.hasData {
				s.event = s.event[:0]
				continue
			}
			event, data = s.dispatch()
			return event, data, nil
		}
		if line[0] == ':' {
			continue // comment
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			if s.hasData {
				s.data = append(s.data, '\n')
			}
			if len(s.data)+len(value) > maxMessageBytes {
				return nil, nil, errEventTooLarge
			}
			s.data = append(s.data, value...)
			s.hasData = true
		case "event":
			s.event = append(s.event[:0], value...)
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				s.pendingID, s.hasID = string(value), true
			}
		case "retry":
			if ms, err := strconv.ParseUint(string(value), 10, 31); err == nil {
				s.Retry, s.HasRetry = time.Duration(ms)*time.Millisecond, true
			}
		}
	}
}

// dispatch returns the event read so far and clears it.
func (s *sseReader) dispatch() (event, data []byte) {
	event, data = s.event, s.data
	if len(event) == 0 {
		event = messageEvent
	}
	s.data, s.hasData, s.event = s.data[:0], false, s.event[:0]
	return event, data
}

var messageEvent = []byte("message")

// readLine returns the next line without its terminator; at the end of the
// stream a last unterminated line is returned first, then io.EOF.
func (s *sseReader) readLine() ([]byte, error) {
	s.line = s.line[:0]
	for {
		if _, err := s.br.Peek(1); err != nil {
			if len(s.line) > 0 && errors.Is(err, io.EOF) {
				return s.line, nil
			}
			return nil, err
		}
		buf, _ := s.br.Peek(s.br.Buffered())
		if s.skipLF {
			s.skipLF = false
			if buf[0] == '\n' {
				_, _ = s.br.Discard(1)
				continue
			}
		}
		i := bytes.IndexAny(buf, "\r\n")
		if i < 0 {
			if len(s.line)+len(buf) > maxMessageBytes {
				return nil, errEventTooLarge
			}
			s.line = append(s.line, buf...)
			_, _ = s.br.Discard(len(buf))
			continue
		}
		if len(s.line)+i > maxMessageBytes {
			return nil, errEventTooLarge
		}
		line := buf[:i]
		if len(s.line) > 0 {
			s.line = append(s.line, line...)
			line = s.line
		}
		// A line that was wholly in the buffer is returned in place: Discard
		// does not move the buffer, and Next consumes the line before it
		// reads again.
		s.skipLF = buf[i] == '\r'
		_, _ = s.br.Discard(i + 1)
		return line, nil
	}
}
