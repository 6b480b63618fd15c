// Package jsonscan reads the members of a JSON object in one pass over its
// bytes, keeping each value as the raw bytes it was sent as, so that the hot
// path of the gateway does not decode a message into maps only to encode it
// again. It reads input that is already known to be valid JSON (json.Valid);
// whatever it does not follow it reports, and the caller then falls back to
// encoding/json, which decides.
package jsonscan

import (
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf8"
)

// Member is one member of an object: its name, decoded, and its value's
// raw bytes (no surrounding space).
type Member struct {
	Key   string
	Value []byte
}

// Object appends the members of the object b to dst, in the order they
// were sent, and reports whether b is an object the scanner followed. b must
// be valid JSON; space around the object is allowed.
func Object(b []byte, dst []Member) ([]Member, bool) {
	s := scanner{b: b}
	if s.peek() != '{' {
		return dst, false
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return dst, s.end()
	}
	for {
		if s.peek() != '"' {
			return dst, false
		}
		start := s.i
		if !s.str() {
			return dst, false
		}
		key, ok := String(b[start:s.i])
		if !ok {
			return dst, false
		}
		if s.peek() != ':' {
			return dst, false
		}
		s.i++
		s.ws()
		vstart := s.i
		if !s.skip() {
			return dst, false
		}
		dst = append(dst, Member{Key: key, Value: b[vstart:s.i]})
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return dst, s.end()
		default:
			return dst, false
		}
	}
}

// Plain appends to dst the members of b, and reports whether b is a
// message every JSON decoder reads alike: valid JSON, an object, each member
// named once, and no name a case variant of one in known (encoding/json
// matches names case-insensitively, most other decoders exactly). With ok
// false, the caller leaves b to encoding/json.
func Plain(b []byte, dst []Member, known []string) ([]Member, bool) {
	if !json.Valid(b) {
		return dst, false
	}
	members, ok := Object(b, dst)
	if !ok {
		return dst, false
	}
	for i, m := range members {
		for _, k := range known {
			if m.Key != k && strings.EqualFold(m.Key, k) {
				return dst, false
			}
		}
		for _, prev := range members[:i] {
			if prev.Key == m.Key {
				return dst, false
			}
		}
	}
	return members, true
}

// Get returns the value of the member named key (nil when absent).
func Get(members []Member, key string) []byte {
	for _, m := range members {
		if m.Key == key {
			return m.Value
		}
	}
	return nil
}

// String decodes the JSON string raw (quotes included) as encoding/json
// would; ok is false when raw is not a string.
func String(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	plain := true
	for _, c := range inner {
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			plain = false
			break
		}
	}
	if plain {
		if k := known(inner); k != "" {
			return k, true
		}
		return string(inner), true
	}
	var v string
	if json.Unmarshal(raw, &v) != nil {
		return "", false
	}
	return v, true
}

// known returns the member names of JSON-RPC and MCP messages the gateway
// reads on every call without allocating a string for each ("" for others).
func known(b []byte) string {
	switch string(b) {
	case "jsonrpc":
		return "jsonrpc"
	case "id":
		return "id"
	case "method":
		return "method"
	case "params":
		return "params"
	case "result":
		return "result"
	case "error":
		return "error"
	case "name":
		return "name"
	case "arguments":
		return "arguments"
	case "_meta":
		return "_meta"
	case "2.0":
		return "2.0"
	case "tools/call":
		return "tools/call"
	case "tools/list":
		return "tools/list"
	}
	return ""
}

// AppendString appends s as a JSON string, escaped as encoding/json
// escapes it (HTML characters included).
func AppendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			enc, err := json.Marshal(s)
			if err != nil {
				return append(b, `""`...)
			}
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// Canonical appends the canonical form of the JSON value v to dst: what
// encoding/json produces when it decodes v (numbers kept as written) and
// encodes the result again — object members sorted by name, no space,
// strings escaped as encoding/json escapes them. ok is false when v holds
// what the scanner leaves to encoding/json (a repeated member name, whose
// decoding keeps the last).
func Canonical(dst, v []byte) ([]byte, bool) {
	s := scanner{b: v}
	out, ok := s.canonical(dst, 0)
	if !ok || !s.end() {
		return dst, false
	}
	return out, true
}

// maxDepth bounds the nesting Canonical follows (encoding/json's own limit
// is 10000; deeper input goes to it).
const maxDepth = 64

func (s *scanner) canonical(dst []byte, depth int) ([]byte, bool) {
	if depth > maxDepth {
		return dst, false
	}
	switch c := s.peek(); {
	case c == '{':
		start := s.i
		if !s.skip() {
			return dst, false
		}
		members, ok := Object(s.b[start:s.i], nil)
		if !ok {
			return dst, false
		}
		slices.SortFunc(members, func(a, b Member) int { return strings.Compare(a.Key, b.Key) })
		dst = append(dst, '{')
		for i, m := range members {
			if i > 0 {
				if members[i-1].Key == m.Key {
					return dst, false
				}
				dst = append(dst, ',')
			}
			dst = AppendString(dst, m.Key)
			dst = append(dst, ':')
			sub := scanner{b: m.Value}
			var ok bool
			if dst, ok = sub.canonical(dst, depth+1); !ok {
				return dst, false
			}
		}
		return append(dst, '}'), true
	case c == '[':
		s.i++
		dst = append(dst, '[')
		if s.peek() == ']' {
			s.i++
			return append(dst, ']'), true
		}
		for n := 0; ; n++ {
			if n > 0 {
				dst = append(dst, ',')
			}
			var ok bool
			if dst, ok = s.canonical(dst, depth+1); !ok {
				return dst, false
			}
			switch s.peek() {
			case ',':
				s.i++
			case ']':
				s.i++
				return append(dst, ']'), true
			default:
				return dst, false
			}
		}
	case c == '"':
		start := s.i
		if !s.str() {
			return dst, false
		}
		str, ok := String(s.b[start:s.i])
		if !ok {
			return dst, false
		}
		return AppendString(dst, str), true
	case c == 0:
		return dst, false
	default:
		start := s.i
		if !s.skip() {
			return dst, false
		}
		return append(dst, s.b[start:s.i]...), true
	}
}

type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next byte after space (0 at the end).
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// end reports whether only space is left.
func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.b)
}

// str moves past the string that starts at s.i (its opening quote).
func (s *scanner) str() bool {
	s.i++
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '\\':
			s.i += 2
		case '"':
			s.i++
			return true
		default:
			s.i++
		}
	}
	return false
}

// skip moves past one value of any kind, starting at s.i.
func (s *scanner) skip() bool {
	switch c := s.peek(); c {
	case '"':
		return s.str()
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if !s.str() {
					return false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return true
				}
			}
			s.i++
		}
		return false
	case 0:
		return false
	default:
		start := s.i
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return s.i > start
			}
			s.i++
		}
		return s.i > start
	}
}
