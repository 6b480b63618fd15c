package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxJSONDepth bounds the nesting of a token's header and payload.
const maxJSONDepth = 32

// Errors of decodeObject. errDuplicateName is the only one that is not
// about the syntax of the text.
var (
	errNotObject     = errors.New("not a JSON object")
	errInvalidUTF8   = errors.New("not valid UTF-8")
	errTooDeep       = fmt.Errorf("nested deeper than %d levels", maxJSONDepth)
	errTrailingData  = errors.New("data after the JSON object")
	errDuplicateName = errors.New("duplicate member name")
)

// decodeObject decodes b, which must be exactly one JSON object in valid
// UTF-8, the way encoding/json decodes into a map[string]any (numbers become
// float64), but strictly: it walks the tokens itself so that it can refuse
// what encoding/json silently resolves.
//
//   - A member name that appears twice in one object, at any depth, is
//     refused (encoding/json keeps the last; other parsers keep the first,
//     so two parsers could see two different tokens).
//   - At the top level, two names that are equal under Unicode case
//     folding ("sub" and "Sub", or "sub" and "ſub", which encoding/json
//     matches to a struct field "sub") are refused as well.
//
// Both are reported with errDuplicateName; every other failure means the
// text is not an acceptable JSON object.
func decodeObject(b []byte) (map[string]any, error) {
	if !utf8.Valid(b) {
		return nil, errInvalidUTF8
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNotObject, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errNotObject
	}
	m, err := decodeMembers(dec, 1, true)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errTrailingData
	}
	return m, nil
}

// decodeMembers decodes the members of an object whose '{' has been read,
// and its closing '}'.
func decodeMembers(dec *json.Decoder, depth int, top bool) (map[string]any, error) {
	m := make(map[string]any)
	var folded map[string]string
	if top {
		folded = make(map[string]string)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, ok := tok.(string)
		if !ok {
			return nil, errors.New("member name is not a string")
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("%w %q", errDuplicateName, name)
		}
		if top {
			f := foldName(name)
			if other, dup := folded[f]; dup {
				return nil, fmt.Errorf("%w: %q and %q differ only in letter case", errDuplicateName, other, name)
			}
			folded[f] = name
		}
		if tok, err = dec.Token(); err != nil {
			return nil, err
		}
		v, err := decodeValue(dec, tok, depth)
		if err != nil {
			return nil, err
		}
		m[name] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	return m, nil
}

// decodeValue decodes the value that starts with tok.
func decodeValue(dec *json.Decoder, tok json.Token, depth int) (any, error) {
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil // string, float64, bool or nil
	}
	if depth >= maxJSONDepth {
		return nil, errTooDeep
	}
	switch d {
	case '{':
		return decodeMembers(dec, depth+1, false)
	case '[':
		arr := []any{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := decodeValue(dec, tok, depth+1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
		return arr, nil
	}
	return nil, fmt.Errorf("unexpected %v", d)
}

// foldName maps s to a canonical form under Unicode simple case folding:
// two names are equal ignoring case (in the sense of strings.EqualFold)
// exactly when their foldName is equal. ASCII letters map to upper case.
func foldName(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToUpper(s)
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		// The smallest rune of r's folding orbit: 'S' for 's', 'S' and
		// 'ſ'; 'K' for 'k', 'K' and the Kelvin sign.
		lo := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			lo = min(lo, f)
		}
		b.WriteRune(lo)
	}
	return b.String()
}

// caseVariant returns the canonical name among names (a map from foldName
// to the canonical spelling) that key spells in another letter case, if any.
func caseVariant(key string, names map[string]string) (string, bool) {
	canonical, ok := names[foldName(key)]
	if !ok || canonical == key {
		return "", false
	}
	return canonical, true
}

// foldedNames builds the lookup table of caseVariant.
func foldedNames(names ...string) map[string]string {
	m := make(map[string]string, len(names))
	for _, n := range names {
		m[foldName(n)] = n
	}
	return m
}
