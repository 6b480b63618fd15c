package loadgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// failKind classifies the outcome of one request.
type failKind uint8

const (
	okCall         failKind = iota // a result that is not isError
	failTransport                  // no HTTP answer, or a broken body
	failStatus                     // a non-2xx status
	failNoResponse                 // no JSON-RPC response with the request's id
	failMalformed                  // a response that is not a JSON-RPC message
	failRPCError                   // a JSON-RPC error
	failToolError                  // a result with isError: true
	failNoResult                   // a response with neither result nor error
)

// maxSnippetBytes bounds the part of a body quoted in an error.
const maxSnippetBytes = 300

// failure is the outcome of one request, kept small and allocation-free:
// its text is built (describe) only for the first failure of a run, from
// the response still in the worker's buffer.
type failure struct {
	kind   failKind
	status int
	sse    bool
	err    error
	id     []byte
}

// classify decides the outcome of a request whose id is id from the status
// and the body in w.buf.
func (w *worker) classify(status int, sse bool, id []byte) failure {
	f := failure{status: status, sse: sse, id: id}
	if status/100 != 2 {
		f.kind = failStatus
		return f
	}
	msg, found := w.findResponse(sse, id)
	if !found {
		f.kind = failNoResponse
		return f
	}
	s, ok := summarize(msg)
	switch {
	case !ok:
		f.kind = failMalformed
	case s.result != nil && s.isError:
		f.kind = failToolError
	case s.result != nil:
		f.kind = okCall
	case s.errObj != nil:
		f.kind = failRPCError
	default:
		f.kind = failNoResult
	}
	return f
}

// findResponse returns the JSON-RPC response with the given id from the
// body in w.buf: the body itself when it is JSON, else the data of the
// stream's event holding it. Notifications and requests in the stream are
// skipped.
func (w *worker) findResponse(sse bool, id []byte) ([]byte, bool) {
	if !sse {
		s, ok := summarize(w.buf)
		if ok && !s.method && bytes.Equal(s.id, id) {
			return w.buf, true
		}
		return nil, false
	}
	rest := w.buf
	var data []byte
	lines := 0
	for {
		var line []byte
		end := len(rest) == 0
		if !end {
			if i := bytes.IndexByte(rest, '\n'); i >= 0 {
				line, rest = rest[:i], rest[i+1:]
			} else {
				line, rest = rest, nil
			}
			line = bytes.TrimSuffix(line, []byte{'\r'})
		}
		if len(line) == 0 { // an event ends
			if lines > 0 {
				if s, ok := summarize(data); ok && !s.method && bytes.Equal(s.id, id) {
					return data, true
				}
			}
			data, lines = nil, 0
			if end {
				return nil, false
			}
			continue
		}
		v, isData := bytes.CutPrefix(line, []byte("data:"))
		if !isData {
			continue // event:, id:, retry: and comments
		}
		v = bytes.TrimPrefix(v, []byte{' '})
		switch lines {
		case 0:
			data = v
		case 1:
			w.joined = append(append(append(w.joined[:0], data...), '\n'), v...)
			data = w.joined
		default:
			w.joined = append(append(w.joined, '\n'), v...)
			data = w.joined
		}
		lines++
	}
}

// describe returns the text of a failure; the response it is about must
// still be in w.buf.
func (w *worker) describe(f failure) string {
	switch f.kind {
	case failTransport:
		return f.err.Error()
	case failStatus:
		if msg := rpcErrorText(w.buf); msg != "" {
			return fmt.Sprintf("HTTP %d: %s", f.status, msg)
		}
		return fmt.Sprintf("HTTP %d: %s", f.status, snippet(w.buf))
	case failNoResponse:
		kind := "JSON"
		if f.sse {
			kind = "event stream"
		}
		return fmt.Sprintf("HTTP %d %s answer holds no JSON-RPC response with id %s: %s", f.status, kind, f.id, snippet(w.buf))
	}
	msg, _ := w.findResponse(f.sse, f.id)
	s, _ := summarize(msg)
	switch f.kind {
	case failRPCError:
		return rpcErrorText(msg)
	case failToolError:
		var r struct {
			Content []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"content"`
		}
		_ = json.Unmarshal(s.result, &r)
		var texts []string
		for _, c := range r.Content {
			if c.Text != "" {
				texts = append(texts, c.Text)
			}
		}
		if len(texts) == 0 {
			return "tool result with isError: true: " + snippet(s.result)
		}
		return "tool result with isError: true: " + snippet([]byte(strings.Join(texts, " ")))
	case failNoResult:
		return "JSON-RPC response with neither result nor error: " + snippet(msg)
	}
	return "malformed JSON-RPC response: " + snippet(msg)
}

// rpcErrorText returns "JSON-RPC error <code>: <message>" when msg is a
// JSON-RPC error response, else "".
func rpcErrorText(msg []byte) string {
	var r struct {
		Error *struct {
			Code    int             `json:"code"`
			Message string          `json:"message"`
			Data    json.RawMessage `json:"data"`
		} `json:"error"`
	}
	if json.Unmarshal(msg, &r) != nil || r.Error == nil {
		return ""
	}
	text := fmt.Sprintf("JSON-RPC error %d: %s", r.Error.Code, r.Error.Message)
	if len(r.Error.Data) > 0 && !bytes.Equal(r.Error.Data, []byte("null")) {
		text += " (data: " + snippet(r.Error.Data) + ")"
	}
	return text
}

// snippet returns b trimmed and shortened for a message.
func snippet(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "(empty body)"
	}
	if len(b) <= maxSnippetBytes {
		return string(b)
	}
	cut := maxSnippetBytes
	for cut > 0 && !utf8.RuneStart(b[cut]) {
		cut--
	}
	return string(b[:cut]) + "…"
}

// rpcSummary is what the load generator needs of a JSON-RPC message: raw
// slices of the message, no copies.
type rpcSummary struct {
	id      []byte // the id token as sent, e.g. 7 or "a"
	method  bool   // a request or notification, not a response
	result  []byte // the result value, when present
	errObj  []byte // the error value, when present
	isError bool   // result.isError is true
}

// summarize scans a JSON-RPC message without allocating. It reports false
// when msg is not a JSON object.
func summarize(msg []byte) (rpcSummary, bool) {
	var s rpcSummary
	it := fields{data: msg}
	if !it.start() {
		return s, false
	}
	for {
		key, val, ok := it.next()
		if !ok {
			return s, !it.bad
		}
		switch string(key) {
		case "id":
			s.id = val
		case "method":
			s.method = true
		case "result":
			s.result = val
			s.isError = bytes.Equal(field(val, "isError"), []byte("true"))
		case "error":
			s.errObj = val
		}
	}
}

// field returns the raw value of the top-level key name of a JSON object,
// or nil.
func field(obj []byte, name string) []byte {
	it := fields{data: obj}
	if !it.start() {
		return nil
	}
	for {
		key, val, ok := it.next()
		if !ok {
			return nil
		}
		if string(key) == name {
			return val
		}
	}
}

// fields iterates over the members of a JSON object: keys as written
// between their quotes, values as raw JSON. It checks the structure only as
// far as it needs to delimit values.
type fields struct {
	data []byte
	pos  int
	bad  bool // the object is malformed
	done bool
}

// start consumes the opening brace; false when data is not an object.
func (it *fields) start() bool {
	it.pos = skipWS(it.data, 0)
	if it.pos >= len(it.data) || it.data[it.pos] != '{' {
		it.bad = true
		return false
	}
	it.pos = skipWS(it.data, it.pos+1)
	if it.pos < len(it.data) && it.data[it.pos] == '}' {
		it.done = true
	}
	return true
}

// next returns the next member; ok is false at the end or on malformed
// input (bad is then set).
func (it *fields) next() (key, val []byte, ok bool) {
	if it.done || it.bad {
		return nil, nil, false
	}
	d := it.data
	i := skipWS(d, it.pos)
	kEnd, good := skipString(d, i)
	if !good {
		it.bad = true
		return nil, nil, false
	}
	key = d[i+1 : kEnd-1]
	i = skipWS(d, kEnd)
	if i >= len(d) || d[i] != ':' {
		it.bad = true
		return nil, nil, false
	}
	i = skipWS(d, i+1)
	vEnd, good := skipValue(d, i)
	if !good {
		it.bad = true
		return nil, nil, false
	}
	val = d[i:vEnd]
	i = skipWS(d, vEnd)
	switch {
	case i < len(d) && d[i] == ',':
		it.pos = i + 1
	case i < len(d) && d[i] == '}':
		it.done = true
	default:
		it.bad = true
		return nil, nil, false
	}
	return key, val, true
}

// skipWS returns the index of the first non-whitespace byte at or after i.
func skipWS(d []byte, i int) int {
	for i < len(d) && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at d[i].
func skipString(d []byte, i int) (int, bool) {
	if i >= len(d) || d[i] != '"' {
		return 0, false
	}
	for j := i + 1; j < len(d); j++ {
		switch d[j] {
		case '\\':
			j++
		case '"':
			return j + 1, true
		}
	}
	return 0, false
}

// skipValue returns the index just past the JSON value starting at d[i].
func skipValue(d []byte, i int) (int, bool) {
	if i >= len(d) {
		return 0, false
	}
	switch d[i] {
	case '"':
		return skipString(d, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(d); j++ {
			switch d[j] {
			case '"':
				end, ok := skipString(d, j)
				if !ok {
					return 0, false
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, true
				}
			}
		}
		return 0, false
	}
	j := i
	for j < len(d) && !strings.ContainsRune(",}] \t\r\n", rune(d[j])) {
		j++
	}
	return j, j > i
}
