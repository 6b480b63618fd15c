package mcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// errAmbiguousMessage reports a JSON-RPC message whose meaning depends on
// the parser: encoding/json matches keys case-insensitively and keeps the
// last of duplicate keys, other parsers (the upstream's) may keep the first
// or match exactly, so the gateway could authorize one message and the
// upstream run another.
var errAmbiguousMessage = errors.New("ambiguous JSON-RPC message")

// checkUnambiguous refuses a message whose top-level members, or whose
// params' top-level members, repeat a key — exactly or in another letter
// case. Nested values are skipped without being decoded twice; the params
// of a request the gateway forwards are checked in full, at every depth,
// when they are canonicalized (parseCanonical).
func checkUnambiguous(body []byte) error {
	if err := scanUnambiguous(body); !errors.Is(err, errScan) {
		return err
	}
	// The fast scanner did not follow the input: the decoder walk decides.
	return checkUnambiguousSlow(body)
}

// checkUnambiguousSlow is the decoder walk: json.Decoder tokens, slower,
// and the reference the fast scanner is tested against.
func checkUnambiguousSlow(body []byte) error {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	return walkObject(d, "message", messageKeys, func(key string) error {
		if key != "params" {
			return skipValue(d)
		}
		return nested(d, func(pd *json.Decoder) error {
			return walkObject(pd, "params", paramKeys, func(string) error { return skipValue(pd) })
		})
	})
}

// nested reads the next value and, when it is an object, walks it with a
// decoder of its own (a value of another type is left to the method to
// refuse).
func nested(d *json.Decoder, walk func(*json.Decoder) error) error {
	var raw json.RawMessage
	if err := d.Decode(&raw); err != nil {
		return err
	}
	if len(raw) == 0 || raw[0] != '{' {
		return nil
	}
	nd := json.NewDecoder(bytes.NewReader(raw))
	nd.UseNumber()
	return walk(nd)
}

// Members whose spelling matters: a key equal to one of them in another
// letter case is refused, as encoding/json would read it as the member.
var (
	messageKeys = []string{"jsonrpc", "id", "method", "params"}
	paramKeys   = []string{"name", "arguments", "uri", "_meta", "cursor", "ref", "argument", "level"}
)

// walkObject reads one JSON object, calling member for each key (which must
// consume the value), and refuses repeated keys. With known set (a level
// encoding/json reads case-insensitively), keys repeated in any letter case
// and case variants of the known members are refused; with known nil only
// exact repeats are.
func walkObject(d *json.Decoder, where string, known []string, member func(key string) error) error {
	exact := known == nil
	t, err := d.Token()
	if err != nil {
		return err
	}
	if t != json.Delim('{') {
		return fmt.Errorf("%s is not an object", where)
	}
	seen := map[string]string{}
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return err
		}
		key, _ := t.(string)
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
		if err := member(key); err != nil {
			return err
		}
	}
	_, err = d.Token() // '}'
	return err
}

// skipValue consumes the next value, however nested.
func skipValue(d *json.Decoder) error {
	var raw json.RawMessage
	return d.Decode(&raw)
}
