package policy

import (
	"strings"
	"unicode/utf8"
)

// MayMatchPrefix reports whether some name that starts with prefix matches
// pattern: whether a rule with this pattern can decide any name of a
// namespace known only by its prefix, such as "notes__" for the tools of
// an upstream whose tools are not listed in the configuration. It decides
// from the pattern alone. A malformed pattern matches nothing.
//
// A name prefix+rest matches the pattern exactly when the pattern splits,
// between two of its elements (a character, '?', a class, '*'), into a
// head that matches prefix and a tail that matches rest; a '*' that spans
// the end of prefix is the last element of the head and may be repeated as
// the first of the tail. Every valid tail matches some rest, so the test
// is whether some head matches prefix.
func MayMatchPrefix(pattern, prefix string) bool {
	if ValidatePattern(pattern) != nil {
		return false
	}
	if !isGlob(pattern) {
		return strings.HasPrefix(pattern, prefix)
	}
	for _, end := range elementEnds(pattern) {
		if ok, _ := matchGlob(pattern[:end], prefix); ok {
			return true
		}
	}
	return false
}

// elementEnds returns 0 and the offset just after each element of a valid
// glob: an escaped character, a character class, '*', '?' or one literal
// character.
func elementEnds(p string) []int {
	ends := []int{0}
	for i := 0; i < len(p); {
		switch p[i] {
		case '\\':
			i += 2
		case '[':
			j := i + 1
			for j < len(p) && p[j] != ']' {
				if p[j] == '\\' {
					j++
				}
				j++
			}
			i = j + 1
		case '*', '?':
			i++
		default:
			_, n := utf8.DecodeRuneInString(p[i:])
			i += n
		}
		ends = append(ends, min(i, len(p)))
	}
	return ends
}
