package policy

import (
	"errors"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Regression invariant: the pattern language is path.Match's, except that
// '*' and '?' also match '/'; on names without '/' the two agree exactly,
// and a pattern is malformed exactly when path.Match says so.
func TestMatchPatternIsPathMatchWhereNoSlashIsInvolved(t *testing.T) {
	t.Parallel()
	patterns := []string{
		"notes__*", "notes__write_*", "notes__write_note", "*", "?", "a?c", "a*b*c", "*_note", "notes__[rw]*",
		"notes__[^r]*", "notes__[a-z]rite*", `notes__\*`, `notes__read\_note`, "[]]", "[", `\`, "a[", "[a-]", "[-a]",
		"[^]", "x[\\]]y", "é*", "[é-ü]x", "**", "*a*", "a**b",
	}
	names := []string{
		"", "notes__write_note", "notes__read_note", "notes__*", "abc", "a", "ac", "aXbYc", "x]y", "éa", "üx", "aab", "ab",
		"notes__wrote", "notes__xrite_it", "notes__\xff", "\xff",
	}
	for _, p := range patterns {
		_, perr := path.Match(p, "")
		if got := ValidatePattern(p); (got == nil) != (perr == nil) || got != nil && !errors.Is(got, ErrBadPattern) {
			t.Errorf("ValidatePattern(%q) = %v, path.Match says %v", p, got, perr)
		}
		for _, n := range names {
			want, _ := path.Match(p, n)
			if got := MatchPattern(p, n); got != want {
				t.Errorf("MatchPattern(%q, %q) = %v, path.Match says %v", p, n, got, want)
			}
		}
	}
}

func TestWildcardsCrossSlashes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"files__file:///data/*", "files__file:///data/a/b/c.txt", true},
		{"files__file:///data/*", "files__file:///data/", true},
		{"files__file:///data/*", "files__file:///datax/a", false},
		{"files__*/b", "files__a/x/b", true},
		{"files__a?b", "files__a/b", true},
		{"*", "a/b/c", true},
		{"*/", "a/b/", true},
		{"a/*/c", "a/x/y/c", true},
		{"a/*/c", "a/c", false},
		{"[/]", "/", true},
		{"a/b", "a/b", true},
		{"a/b", "a\x00b", false},
	}
	for _, tt := range tests {
		if got := MatchPattern(tt.pattern, tt.name); got != tt.want {
			t.Errorf("MatchPattern(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestEscapePatternMatchesExactlyTheString(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "plain", "/files/[id]", `a\b`, "what?", "*", "**", "[", "]", `\`, "/a*b/c"} {
		p := EscapePattern(s)
		if err := ValidatePattern(p); s != "" && err != nil {
			t.Errorf("EscapePattern(%q) = %q is not a valid pattern: %v", s, p, err)
		}
		if !MatchPattern(p, s) {
			t.Errorf("EscapePattern(%q) = %q does not match the string itself", s, p)
		}
		for _, other := range []string{s + "x", "x" + s, strings.ReplaceAll(s, "*", "x"), strings.ReplaceAll(s, "?", "x")} {
			if other != s && MatchPattern(p, other) {
				t.Errorf("EscapePattern(%q) = %q also matches %q", s, p, other)
			}
		}
	}
}

// precedenceCases are the precedence rules every pattern table follows.
var precedenceCases = []struct {
	name     string
	patterns []string
	tool     string
	want     string // the deciding pattern; "" for no match
}{
	{"an exact name beats a glob", []string{"notes__*", "notes__write_note"}, "notes__write_note", "notes__write_note"},
	{"an exact name beats a longer glob", []string{"notes__write_not?", "notes__write_note"}, "notes__write_note", "notes__write_note"},
	{"the glob decides for other names", []string{"notes__*", "notes__write_note"}, "notes__read_note", "notes__*"},
	{"a longer literal prefix beats a shorter one", []string{"notes__*", "notes__w*", "*"}, "notes__write_note", "notes__w*"},
	{"with equal prefixes more literal characters win", []string{"notes__*", "notes__*_note"}, "notes__read_note", "notes__*_note"},
	{"? counts as a wildcard, not a literal", []string{"notes__????_note", "notes__*_note"}, "notes__read_note", "notes__*_note"},
	{"a [...] class counts as no literal characters", []string{"notes__[abcdefghr]*", "notes__*_note"}, "notes__read_note", "notes__*_note"},
	{"an escaped character counts once in the literal prefix", []string{`notes__\w*`, "notes__wr*"}, "notes__write_note", "notes__wr*"},
	{"equal specificity: the lexically smaller pattern", []string{"notes__*read_*", "notes__*_note"}, "notes__read_note", "notes__*_note"},
	{"a longer pattern is not more specific by length alone", []string{"rec__ad*", "rec__ad??"}, "rec__adxy", "rec__ad*"},
	{"* crosses a slash", []string{"files__file:///data/*", "files__*"}, "files__file:///data/a/b.txt", "files__file:///data/*"},
	{"a literal slash still matches only a slash", []string{"files__file:///data/*"}, "files__file:///datax/a", ""},
	// Regression invariant: '/' is an ordinary character to the matcher,
	// not mapped to another one, so no other character can stand in for it.
	{"a NUL is not a slash", []string{"files__file:///data/*"}, "files__file:///data\x00/etc/passwd", ""},
	{"no pattern matching means no value", []string{"crm__*"}, "notes__read_note", ""},
}

func TestTableMostSpecificPatternDecides(t *testing.T) {
	t.Parallel()
	for _, tt := range precedenceCases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := map[string]int{}
			for i, p := range tt.patterns {
				m[p] = i
			}
			// Map order is random: build the table many times so an
			// order-dependent outcome shows up.
			for range 50 {
				tab, err := NewTable(m)
				if err != nil {
					t.Fatal(err)
				}
				v, p, ok := tab.Match(tt.tool)
				if p != tt.want || ok != (tt.want != "") || ok && tt.patterns[v] != p {
					t.Fatalf("%q under %q: got %q (value %d, ok %v), want %q", tt.tool, tt.patterns, p, v, ok, tt.want)
				}
				if d := New(rulesOf(tt.patterns), nil, nil).Decide(id(), Action{Name: tt.tool}); d.Rule != tt.want {
					t.Fatalf("the Authorizer decides %q by %q, the Table by %q", tt.tool, d.Rule, tt.want)
				}
			}
		})
	}
}

func rulesOf(patterns []string) map[string]Rule {
	rules := map[string]Rule{}
	for _, p := range patterns {
		rules[p] = Rule{}
	}
	return rules
}

func TestTablePatternsLookupAndLen(t *testing.T) {
	t.Parallel()
	tab, err := NewTable(map[string]string{"b": "B", "a": "A", "x*": "X", "xy*": "XY", "*": "ANY"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tab.Patterns(), []string{"a", "b", "xy*", "x*", "*"}; !slices.Equal(got, want) {
		t.Errorf("Patterns() = %q, want %q (exact names sorted, then globs most specific first)", got, want)
	}
	if v, ok := tab.Lookup("x*"); !ok || v != "X" {
		t.Errorf("Lookup(x*) = %q, %v", v, ok)
	}
	if _, ok := tab.Lookup("xyz"); ok {
		t.Error("Lookup finds a pattern by matching; it must only find the pattern itself")
	}
	if tab.Len() != 5 {
		t.Errorf("Len() = %d", tab.Len())
	}
	var none *Table[string]
	if v, p, ok := none.Match("a"); ok || p != "" || v != "" || none.Len() != 0 || none.Patterns() != nil {
		t.Error("a nil table must match nothing")
	}
}

func TestNewTableRefusesMalformedPatterns(t *testing.T) {
	t.Parallel()
	tab, err := NewTable(map[string]int{"ok__*": 1, "bad__[": 2, `bad\`: 3})
	if tab != nil || !errors.Is(err, ErrBadPattern) {
		t.Fatalf("got %v, %v; want no table and ErrBadPattern", tab, err)
	}
	for _, want := range []string{`"bad__["`, `"bad\\"`, "not closed", "lone"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	// The Authorizer cannot fail: a malformed pattern there matches
	// nothing, as before (the config package refuses it first).
	a := New(map[string]Rule{"bad__[": {}, "ok__*": {}}, nil, nil)
	if d := a.Decide(id(), Action{Name: "bad__["}); d.Reason != ReasonToolUnknown {
		t.Errorf("a malformed pattern decided: %+v", d)
	}
}

func TestTableIsSafeForConcurrentUse(t *testing.T) {
	t.Parallel()
	m := map[string]int{"a*": 1, "ab*": 2, "abc": 3}
	tab, err := NewTable(m)
	if err != nil {
		t.Fatal(err)
	}
	m["a*"] = 100 // the table copied the map
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if v, _, _ := tab.Match("abd"); v != 2 {
					t.Errorf("Match(abd) = %d", v)
					return
				}
			}
		})
	}
	wg.Wait()
}

// FuzzMatchPattern checks the matcher against path.Match: on names without
// '/' they agree, patterns are malformed alike, an escaped string matches
// itself, and a Table of one pattern matches exactly what MatchPattern
// does.
func FuzzMatchPattern(f *testing.F) {
	for _, tt := range precedenceCases {
		for _, p := range tt.patterns {
			f.Add(p, tt.tool)
		}
	}
	f.Add("[a-", "a")
	f.Add("*[", "")
	f.Add(`a\`, "a")
	f.Add("[^\xff]", "x")
	f.Fuzz(func(t *testing.T, pattern, name string) {
		_, perr := path.Match(pattern, "")
		if pattern != "" && (ValidatePattern(pattern) == nil) != (perr == nil) {
			t.Fatalf("ValidatePattern(%q) = %v, path.Match says %v", pattern, ValidatePattern(pattern), perr)
		}
		got := MatchPattern(pattern, name)
		if !strings.Contains(name, "/") {
			if want, _ := path.Match(pattern, name); got != want {
				t.Fatalf("MatchPattern(%q, %q) = %v, path.Match says %v", pattern, name, got, want)
			}
		}
		if tab, err := NewTable(map[string]bool{pattern: true}); err == nil {
			if _, _, ok := tab.Match(name); ok != got {
				t.Fatalf("Table{%q}.Match(%q) = %v, MatchPattern says %v", pattern, name, ok, got)
			}
		}
		if !MatchPattern(EscapePattern(name), name) {
			t.Fatalf("EscapePattern(%q) = %q does not match itself", name, EscapePattern(name))
		}
	})
}
