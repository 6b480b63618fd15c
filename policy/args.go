package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// errNotObject: a call's arguments must be a JSON object.
var errNotObject = errors.New("arguments are not a JSON object")

// decodeArguments reads a call's arguments as a condition sees them:
// absent or null is an empty object; anything but an object is an error.
// Values decode as encoding/json decodes them into any (a repeated member
// name keeps its last value; strings as encoding/json reads them), except
// numbers, which keep the value the upstream reads: an integer (no
// fraction, no exponent) is an int64, or a uint64 beyond int64; an integer
// beyond both is an error, so a condition never decides on a rounded value;
// every other number is a float64 (a CEL double), and one beyond the range
// of a float64 is an error.
func decodeArguments(raw json.RawMessage) (map[string]any, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return map[string]any{}, nil
	}
	if !json.Valid(raw) {
		return nil, errNotObject
	}
	r := argReader{b: raw}
	r.space()
	if r.i >= len(r.b) || r.b[r.i] != '{' {
		if r.literal("null") {
			return map[string]any{}, nil
		}
		return nil, errNotObject
	}
	return r.object()
}

// argReader walks JSON that json.Valid accepted.
type argReader struct {
	b []byte
	i int
}

func (r *argReader) space() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// literal skips word if it comes next.
func (r *argReader) literal(word string) bool {
	if len(r.b)-r.i >= len(word) && string(r.b[r.i:r.i+len(word)]) == word {
		r.i += len(word)
		return true
	}
	return false
}

// value reads the value at r.i (after any space) and the space after it.
func (r *argReader) value() (v any, err error) {
	r.space()
	switch c := r.b[r.i]; {
	case c == '{':
		v, err = r.object()
	case c == '[':
		v, err = r.array()
	case c == '"':
		v = r.string()
	case r.literal("true"):
		v = true
	case r.literal("false"):
		v = false
	case r.literal("null"):
		v = nil
	default:
		start := r.i
		for r.i < len(r.b) {
			c := r.b[r.i]
			if c != '-' && c != '+' && c != '.' && c != 'e' && c != 'E' && (c < '0' || c > '9') {
				break
			}
			r.i++
		}
		v, err = exactNumber(string(r.b[start:r.i]))
	}
	if err != nil {
		return nil, err
	}
	r.space()
	return v, nil
}

func (r *argReader) object() (map[string]any, error) {
	m := map[string]any{}
	r.i++ // '{'
	r.space()
	if r.b[r.i] == '}' {
		r.i++
		return m, nil
	}
	for {
		r.space()
		k := r.string()
		r.space()
		r.i++ // ':'
		e, err := r.value()
		if err != nil {
			return nil, err
		}
		m[k] = e // a repeated name keeps its last value, as in encoding/json
		c := r.b[r.i]
		r.i++ // ',' or '}'
		if c == '}' {
			return m, nil
		}
	}
}

func (r *argReader) array() ([]any, error) {
	l := []any{}
	r.i++ // '['
	r.space()
	if r.b[r.i] == ']' {
		r.i++
		return l, nil
	}
	for {
		e, err := r.value()
		if err != nil {
			return nil, err
		}
		l = append(l, e)
		c := r.b[r.i]
		r.i++ // ',' or ']'
		if c == ']' {
			return l, nil
		}
	}
}

// string reads the string at r.i as encoding/json decodes it.
func (r *argReader) string() string {
	start := r.i
	r.i++
	escaped, ascii := false, true
	for r.b[r.i] != '"' {
		switch c := r.b[r.i]; {
		case c == '\\':
			escaped = true
			r.i++ // the escaped character: never the closing quote
		case c >= utf8.RuneSelf:
			ascii = false
		}
		r.i++
	}
	r.i++
	raw := r.b[start:r.i]
	if !escaped && (ascii || utf8.Valid(raw)) {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	_ = json.Unmarshal(raw, &s) // valid JSON: cannot fail
	return s
}

// exactNumber reads a JSON number (see decodeArguments).
func exactNumber(s string) (any, error) {
	integer := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '.' || c == 'e' || c == 'E' {
			integer = false
			break
		}
	}
	if integer {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, nil
		}
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			return u, nil
		}
		return nil, fmt.Errorf("the argument integer %s is beyond the range of 64-bit integers; conditions compare integers exactly", shortNumber(s))
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, fmt.Errorf("the argument number %s is beyond the range of a double", shortNumber(s))
	}
	return f, nil
}

// shortNumber cuts a number for an error message.
func shortNumber(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
