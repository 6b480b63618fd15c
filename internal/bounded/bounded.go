// Package bounded quotes caller-supplied strings in bounded space: what an
// error message, an audit event or a log line may hold of a value a caller
// chose (a tool name, a URI, a session id), so that no caller can make the
// gateway store, echo or log more than a fixed amount of it. It must never
// import another package of the gateway.
package bounded

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"unicode/utf8"
)

// MaxRunes is how many characters of a caller-supplied string are quoted.
const MaxRunes = 256

// String returns s when it has at most MaxRunes characters; otherwise its
// first MaxRunes characters followed by a marker with the full length in
// bytes and the first 16 hex digits of its SHA-256, e.g.
//
//	aaaa…(4194304 bytes, sha256 3f2a9c0d1e4b5a67)
//
// so two long values can still be told apart and matched against a copy.
// Invalid UTF-8 counts one character per byte; the cut never splits a
// valid character.
func String(s string) string {
	if len(s) <= MaxRunes {
		return s // at most MaxRunes bytes, so at most MaxRunes characters
	}
	cut, n := 0, 0
	for cut < len(s) && n < MaxRunes {
		_, size := utf8.DecodeRuneInString(s[cut:])
		cut += size
		n++
	}
	if cut == len(s) {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return s[:cut] + "…(" + strconv.Itoa(len(s)) + " bytes, sha256 " + hex.EncodeToString(sum[:8]) + ")"
}

// Bytes is String for a byte slice.
func Bytes(b []byte) string {
	if len(b) <= MaxRunes {
		return string(b)
	}
	cut, n := 0, 0
	for cut < len(b) && n < MaxRunes {
		_, size := utf8.DecodeRune(b[cut:])
		cut += size
		n++
	}
	if cut == len(b) {
		return string(b)
	}
	sum := sha256.Sum256(b)
	return string(b[:cut]) + "…(" + strconv.Itoa(len(b)) + " bytes, sha256 " + hex.EncodeToString(sum[:8]) + ")"
}
