package policy

import (
	"strings"
	"testing"
)

// Regression invariant: MayMatchPrefix says yes exactly when a name with
// the prefix that the pattern matches exists (each yes has a witness name,
// checked with MatchPattern; the fuzz target checks that no matching name
// is ever missed).
func TestMayMatchPrefixDecidesFromThePatternAlone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, prefix string
		want            bool
		witness         string // a name with the prefix that matches, for a yes
	}{
		{"notes__*", "notes__", true, "notes__x"},
		{"notes__read_note", "notes__", true, "notes__read_note"},
		{"notes__read_note", "crm__", false, ""},
		{"*", "crm__", true, "crm__"},
		{"*__*", "crm__", true, "crm__x"},
		{"c*", "crm__", true, "crm__x"},
		{"cr?__*", "crm__", true, "crm__x"},
		{"cr?__*", "crm2__", false, ""},
		{"[a-c]rm__x", "crm__", true, "crm__x"},
		{"[^c]rm__*", "crm__", false, ""},
		{"notes_*", "notes__", true, "notes__x"},
		{"notes__", "notes__", true, "notes__"},
		{"note", "notes__", false, ""},
		{"*_note", "notes__", true, "notes___note"},
		{"no*s__x", "notes__", true, "notes__s__x"},
		{"no*x__y", "notes__", true, "notes__x__y"},
		{`notes\_\_*`, "notes__", true, "notes__x"},
		{`crm\*`, "crm__", false, ""},
		{"?", "crm__", false, ""},
		{"?????*", "crm__", true, "crm__"},
		{"????", "crm__", false, ""},
		{"[", "crm__", false, ""}, // malformed
		{"", "", false, ""},       // malformed
		{"éa*", "é", true, "éa"},
		{"files__file:///data/*", "files__", true, "files__file:///data/a"},
	}
	for _, tt := range tests {
		if got := MayMatchPrefix(tt.pattern, tt.prefix); got != tt.want {
			t.Errorf("MayMatchPrefix(%q, %q) = %v, want %v", tt.pattern, tt.prefix, got, tt.want)
		}
		if tt.want && (!strings.HasPrefix(tt.witness, tt.prefix) || !MatchPattern(tt.pattern, tt.witness)) {
			t.Errorf("bad witness %q for %q and prefix %q", tt.witness, tt.pattern, tt.prefix)
		}
	}
}

func FuzzMayMatchPrefix(f *testing.F) {
	for _, s := range [][2]string{{"notes__*", "notes__"}, {"a*b", "ab"}, {"[a-z]?*", "x"}, {`\*`, "*"}} {
		f.Add(s[0], s[1], "rest")
	}
	f.Fuzz(func(t *testing.T, pattern, prefix, rest string) {
		// Soundness: a name with the prefix that matches means yes.
		if MatchPattern(pattern, prefix+rest) && ValidatePattern(pattern) == nil && !MayMatchPrefix(pattern, prefix) {
			t.Fatalf("MayMatchPrefix(%q, %q) = false, but %q matches", pattern, prefix, prefix+rest)
		}
	})
}
