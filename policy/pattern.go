package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// ErrBadPattern is a name pattern that is not a valid glob.
var ErrBadPattern = errors.New("policy: syntax error in pattern")

// ValidatePattern reports whether p is a usable name pattern (see the
// package documentation for the syntax): nil, or an error wrapping
// ErrBadPattern that says what is wrong. Every configured pattern is checked
// with it.
func ValidatePattern(p string) error {
	if p == "" {
		return fmt.Errorf("%w: empty pattern", ErrBadPattern)
	}
	if _, err := matchGlob(p, ""); err != nil {
		return fmt.Errorf("%w: %s", ErrBadPattern, badPatternWhy(p))
	}
	return nil
}

// badPatternWhy says what is wrong with a malformed pattern.
func badPatternWhy(p string) string {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			if i == len(p)-1 {
				return `it ends in a lone '\'; write \\ for a backslash`
			}
			i++
		case '[':
			j := i + 1
			for j < len(p) && p[j] != ']' {
				if p[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(p) {
				return `a '[' opens a character class that is not closed; write \[ for a literal '['`
			}
			i = j
		}
	}
	return "a character class is empty or malformed; write e.g. [abc], [a-z] or [^a], and \\- or \\] inside one for '-' or ']'"
}

// MatchPattern reports whether name matches pattern. A malformed pattern
// matches nothing.
func MatchPattern(pattern, name string) bool {
	if !isGlob(pattern) {
		return pattern == name
	}
	ok, _ := matchGlob(pattern, name)
	return ok
}

// MatchAny reports whether any of patterns matches name: for lists where
// every pattern means the same (which one matches does not matter).
func MatchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if MatchPattern(p, name) {
			return true
		}
	}
	return false
}

// EscapePattern returns a pattern that matches exactly s: every '*', '?',
// '[' and '\\' is escaped with '\\'.
func EscapePattern(s string) string {
	if !strings.ContainsAny(s, `*?[\`) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 4)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '*', '?', '[', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Table maps name patterns to values and finds the value of the most
// specific pattern that matches a name (see the package documentation for
// the syntax and the precedence). It is the one matcher of every pattern
// table of the gateway. It is immutable after NewTable and safe for
// concurrent use; a nil *Table matches nothing.
type Table[T any] struct {
	entries []tableEntry[T] // exact names (sorted), then globs in precedence order
	exact   map[string]int  // exact name → index in entries
	globs   int             // index of the first glob in entries
}

type tableEntry[T any] struct {
	pattern string
	value   T
	// A glob matches a name that starts with prefix (its literal prefix,
	// unescaped) and whose rest matches rest; any is true when rest is "*".
	prefix  string
	rest    string
	any     bool
	literal int
}

// NewTable builds a table from pattern → value. Every pattern must be valid
// (ValidatePattern); otherwise NewTable returns an error wrapping
// ErrBadPattern that names each bad pattern, and no table. The map is
// copied: changing it afterwards does not change the table.
func NewTable[T any](m map[string]T) (*Table[T], error) {
	t, bad := compileTable(m)
	if len(bad) > 0 {
		errs := make([]error, len(bad))
		for i, p := range bad {
			errs[i] = fmt.Errorf("pattern %q: %w", p, ValidatePattern(p))
		}
		return nil, errors.Join(errs...)
	}
	return t, nil
}

// compileTable builds a table from the valid patterns of m and returns the
// invalid ones, sorted.
func compileTable[T any](m map[string]T) (*Table[T], []string) {
	t := &Table[T]{exact: make(map[string]int), entries: make([]tableEntry[T], 0, len(m))}
	var globs []tableEntry[T]
	var bad []string
	for p, v := range m {
		if !isGlob(p) {
			t.entries = append(t.entries, tableEntry[T]{pattern: p, value: v})
			continue
		}
		if ValidatePattern(p) != nil {
			bad = append(bad, p)
			continue
		}
		prefix, rest, literal := splitGlob(p)
		globs = append(globs, tableEntry[T]{pattern: p, value: v, prefix: prefix, rest: rest, any: rest == "*", literal: literal})
	}
	slices.SortFunc(t.entries, func(x, y tableEntry[T]) int { return strings.Compare(x.pattern, y.pattern) })
	slices.SortFunc(globs, func(x, y tableEntry[T]) int {
		if len(x.prefix) != len(y.prefix) {
			return len(y.prefix) - len(x.prefix)
		}
		if x.literal != y.literal {
			return y.literal - x.literal
		}
		return strings.Compare(x.pattern, y.pattern)
	})
	for i, e := range t.entries {
		t.exact[e.pattern] = i
	}
	t.globs = len(t.entries)
	t.entries = append(t.entries, globs...)
	slices.Sort(bad)
	return t, bad
}

// Match returns the value and the pattern of the most specific pattern that
// matches name; ok is false when none does.
func (t *Table[T]) Match(name string) (value T, pattern string, ok bool) {
	if t == nil {
		return value, "", false
	}
	if i, found := t.exact[name]; found {
		e := &t.entries[i]
		return e.value, e.pattern, true
	}
	for i := t.globs; i < len(t.entries); i++ {
		e := &t.entries[i]
		if !strings.HasPrefix(name, e.prefix) {
			continue
		}
		if e.any {
			return e.value, e.pattern, true
		}
		if ok, _ := matchGlob(e.rest, name[len(e.prefix):]); ok {
			return e.value, e.pattern, true
		}
	}
	return value, "", false
}

// Lookup returns the value of pattern itself (not of the pattern that
// would match it as a name).
func (t *Table[T]) Lookup(pattern string) (value T, ok bool) {
	if t == nil {
		return value, false
	}
	if i, found := t.exact[pattern]; found {
		return t.entries[i].value, true
	}
	for i := t.globs; i < len(t.entries); i++ {
		if t.entries[i].pattern == pattern {
			return t.entries[i].value, true
		}
	}
	return value, false
}

// Patterns returns the table's patterns in precedence order: exact names
// (sorted), then globs, most specific first.
func (t *Table[T]) Patterns() []string {
	if t == nil {
		return nil
	}
	out := make([]string, len(t.entries))
	for i, e := range t.entries {
		out[i] = e.pattern
	}
	return out
}

// Len is the number of patterns in the table.
func (t *Table[T]) Len() int {
	if t == nil {
		return 0
	}
	return len(t.entries)
}

// isGlob reports whether p has any glob syntax ('*', '?', '[' or '\\');
// a pattern without is an exact name.
func isGlob(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// splitGlob reads a valid glob: its literal prefix (the characters it
// matches before its first '*', '?' or class, escapes removed), the rest of
// the pattern after that prefix, and its number of literal characters (a
// class and a wildcard count as none, an escaped character as one).
func splitGlob(p string) (prefix, rest string, literal int) {
	var b strings.Builder
	inPrefix := true
	for i := 0; i < len(p); i++ {
		switch c := p[i]; c {
		case '*', '?':
			if inPrefix {
				rest, inPrefix = p[i:], false
			}
		case '[':
			if inPrefix {
				rest, inPrefix = p[i:], false
			}
			// skip the class up to its closing, unescaped ']'
			j := i + 1
			for j < len(p) && p[j] != ']' {
				if p[j] == '\\' {
					j++
				}
				j++
			}
			i = j
		case '\\':
			i++
			literal++
			if inPrefix && i < len(p) {
				b.WriteByte(p[i])
			}
		default:
			literal++
			if inPrefix {
				b.WriteByte(c)
			}
		}
	}
	return b.String(), rest, literal
}

// matchGlob reports whether name matches the whole of pattern, in
// path.Match syntax but with '*' and '?' also matching '/'. Like
// path.Match, it reports a malformed pattern (ErrBadPattern) whether or not
// the name matches.
func matchGlob(pattern, name string) (bool, error) {
Pattern:
	for len(pattern) > 0 {
		star, chunk, rest := scanChunk(pattern)
		pattern = rest
		if star && chunk == "" {
			return true, nil // a trailing '*' matches the rest
		}
		// The chunk at the current position. Taking the leftmost match of
		// a chunk followed by a '*' is safe: that '*' absorbs whatever
		// the chunk could have matched further right.
		t, ok, err := matchChunk(chunk, name)
		if ok && (len(t) == 0 || len(pattern) > 0) {
			name = t
			continue
		}
		if err != nil {
			return false, err
		}
		if star {
			for i := 0; i < len(name); i++ {
				t, ok, err := matchChunk(chunk, name[i+1:])
				if ok {
					if len(pattern) == 0 && len(t) > 0 {
						continue // the last chunk must end the name
					}
					name = t
					continue Pattern
				}
				if err != nil {
					return false, err
				}
			}
		}
		// No match: still report a malformed rest of the pattern.
		for len(pattern) > 0 {
			_, chunk, pattern = scanChunk(pattern)
			if _, _, err := matchChunk(chunk, ""); err != nil {
				return false, err
			}
		}
		return false, nil
	}
	return len(name) == 0, nil
}

// scanChunk splits off the next chunk of pattern: the '*'s before it (star)
// and the characters up to the next '*' outside a class.
func scanChunk(pattern string) (star bool, chunk, rest string) {
	for len(pattern) > 0 && pattern[0] == '*' {
		pattern = pattern[1:]
		star = true
	}
	inClass := false
	for i := 0; i < len(pattern); i++ {
		switch pattern[i] {
		case '\\':
			if i+1 < len(pattern) {
				i++
			}
		case '[':
			inClass = true
		case ']':
			inClass = false
		case '*':
			if !inClass {
				return star, pattern[:i], pattern[i:]
			}
		}
	}
	return star, pattern, ""
}

// matchChunk matches a chunk (literals, classes and '?') against the start
// of s and returns the rest of s. After a mismatch it goes on reading the
// chunk, so that a malformed chunk is always reported.
func matchChunk(chunk, s string) (rest string, ok bool, err error) {
	failed := false
	for len(chunk) > 0 {
		failed = failed || len(s) == 0
		switch chunk[0] {
		case '[':
			var r rune
			if !failed {
				var n int
				r, n = utf8.DecodeRuneInString(s)
				s = s[n:]
			}
			chunk = chunk[1:]
			negated := false
			if len(chunk) > 0 && chunk[0] == '^' {
				negated = true
				chunk = chunk[1:]
			}
			match, ranges := false, 0
			for {
				if len(chunk) > 0 && chunk[0] == ']' && ranges > 0 {
					chunk = chunk[1:]
					break
				}
				var lo, hi rune
				if lo, chunk, err = classChar(chunk); err != nil {
					return "", false, err
				}
				hi = lo
				if chunk[0] == '-' {
					if hi, chunk, err = classChar(chunk[1:]); err != nil {
						return "", false, err
					}
				}
				match = match || lo <= r && r <= hi
				ranges++
			}
			failed = failed || match == negated
		case '?':
			if !failed {
				_, n := utf8.DecodeRuneInString(s)
				s = s[n:]
			}
			chunk = chunk[1:]
		case '\\':
			chunk = chunk[1:]
			if len(chunk) == 0 {
				return "", false, ErrBadPattern
			}
			fallthrough
		default:
			if !failed {
				failed = chunk[0] != s[0]
				s = s[1:]
			}
			chunk = chunk[1:]
		}
	}
	if failed {
		return "", false, nil
	}
	return s, true, nil
}

// classChar reads one possibly escaped character of a class; a class must
// go on after it.
func classChar(chunk string) (r rune, rest string, err error) {
	if len(chunk) == 0 || chunk[0] == '-' || chunk[0] == ']' {
		return 0, "", ErrBadPattern
	}
	if chunk[0] == '\\' {
		chunk = chunk[1:]
		if len(chunk) == 0 {
			return 0, "", ErrBadPattern
		}
	}
	r, n := utf8.DecodeRuneInString(chunk)
	if r == utf8.RuneError && n == 1 {
		return 0, "", ErrBadPattern
	}
	rest = chunk[n:]
	if len(rest) == 0 {
		return 0, "", ErrBadPattern
	}
	return r, rest, nil
}
