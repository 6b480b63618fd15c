package mcp

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gatewaystack/gatewaystack/internal/jsonscan"
)

// errScan reports input the fast scanner does not follow; the caller then
// falls back to the decoder walk, which decides.
var errScan = errors.New("scan")

// scanUnambiguous is checkUnambiguous's fast path: one pass over the bytes
// of a body that already parsed as JSON (jsonscan), reading only the member
// names of the message and of params, and never
// decoding a value. It applies the same rules as the decoder walk.
func scanUnambiguous(body []byte) error {
	var buf [8]jsonscan.Member
	members, ok := jsonscan.Object(body, buf[:0])
	if !ok {
		return errScan
	}
	if err := checkMemberNames("message", messageKeys, members); err != nil {
		return err
	}
	params := jsonscan.Get(members, "params")
	if len(params) == 0 || params[0] != '{' {
		return nil // absent, or of a type the method refuses
	}
	var pbuf [8]jsonscan.Member
	if members, ok = jsonscan.Object(params, pbuf[:0]); !ok {
		return errScan
	}
	return checkMemberNames("params", paramKeys, members)
}

// checkMemberNames applies walkObject's rules to the names of one object,
// in order: with known set, no two names may be equal up to letter case and
// none may be a case variant of a known name; without, no name may repeat
// exactly.
func checkMemberNames(where string, known []string, members []jsonscan.Member) error {
	exact := known == nil
	var seen map[string]string
	if len(members) > 8 {
		seen = make(map[string]string, len(members))
	}
	for i, m := range members {
		key := m.Key
		fold := key
		if !exact {
			fold = strings.ToLower(key)
		}
		if seen != nil {
			if prev, dup := seen[fold]; dup {
				return fmt.Errorf("%w: %s repeats the key %q (as %q)", errAmbiguousMessage, where, key, prev)
			}
			seen[fold] = key
		} else {
			for _, p := range members[:i] {
				pfold := p.Key
				if !exact {
					pfold = strings.ToLower(p.Key)
				}
				if pfold == fold {
					return fmt.Errorf("%w: %s repeats the key %q (as %q)", errAmbiguousMessage, where, key, p.Key)
				}
			}
		}
		for _, k := range known {
			if key != k && strings.EqualFold(key, k) {
				return fmt.Errorf("%w: %s has the key %q, which some parsers read as %q", errAmbiguousMessage, where, key, k)
			}
		}
	}
	return nil
}
