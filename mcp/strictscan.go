package mcp

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// errScan reports input the fast scanner does not follow; the caller then
// falls back to the decoder walk, which decides.
var errScan = errors.New("scan")

// scanUnambiguous is checkUnambiguous's fast path: one pass over the bytes
// of a body that already parsed as JSON, reading only the member names of
// the message, of params and of params.arguments, and skipping every value
// without decoding it. It applies the same rules as the decoder walk.
func scanUnambiguous(body []byte) error {
	s := byteScanner{b: body}
	return s.object("message", messageKeys, func(key string) error {
		if key == "params" && s.peek() == '{' {
			return s.object("params", paramKeys, func(pkey string) error {
				if pkey == "arguments" && s.peek() == '{' {
					return s.object("params.arguments", nil, func(string) error { return s.skip() })
				}
				return s.skip()
			})
		}
		return s.skip()
	})
}

type byteScanner struct {
	b []byte
	i int
}

func (s *byteScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte (0 at the end).
func (s *byteScanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// object reads an object, checking its member names as walkObject does,
// and hands each name to member, which must consume the value.
func (s *byteScanner) object(where string, known []string, member func(key string) error) error {
	if s.peek() != '{' {
		return errScan
	}
	s.i++
	exact := known == nil
	seen := make(map[string]string, 8)
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		if s.peek() != '"' {
			return errScan
		}
		key, err := s.key()
		if err != nil {
			return err
		}
		fold := key
		if !exact {
			fold = strings.ToLower(key)
		}
		if prev, dup := seen[fold]; dup {
			return fmt.Errorf("%w: %s repeats the key %q (as %q)", errAmbiguousMessage, where, key, prev)
		}
		seen[fold] = key
		for _, k := range known {
			if key != k && strings.EqualFold(key, k) {
				return fmt.Errorf("%w: %s has the key %q, which some parsers read as %q", errAmbiguousMessage, where, key, k)
			}
		}
		if s.peek() != ':' {
			return errScan
		}
		s.i++
		if err := member(key); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return errScan
		}
	}
}

// key reads a member name; one with escapes is decoded as encoding/json
// would ("\u006dethod" is "method").
func (s *byteScanner) key() (string, error) {
	start := s.i
	if err := s.str(); err != nil {
		return "", err
	}
	raw := s.b[start:s.i]
	for _, c := range raw[1 : len(raw)-1] {
		if c == '\\' {
			var k string
			if json.Unmarshal(raw, &k) != nil {
				return "", errScan
			}
			return k, nil
		}
	}
	return string(raw[1 : len(raw)-1]), nil
}

// str skips a string starting at s.i (the opening quote).
func (s *byteScanner) str() error {
	s.i++
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '\\':
			s.i += 2
		case '"':
			s.i++
			return nil
		default:
			s.i++
		}
	}
	return errScan
}

// skip skips one value of any kind.
func (s *byteScanner) skip() error {
	switch c := s.peek(); c {
	case '"':
		return s.str()
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if err := s.str(); err != nil {
					return err
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return nil
				}
			}
			s.i++
		}
		return errScan
	case 0:
		return errScan
	default:
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return nil
			}
			s.i++
		}
		return nil
	}
}
