package bounded

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 4<<20)
	sum := sha256.Sum256([]byte(long))
	cases := []struct {
		name, in, want string
	}{
		{"short is kept", "notes__read", "notes__read"},
		{"exactly the bound is kept", strings.Repeat("x", MaxRunes), strings.Repeat("x", MaxRunes)},
		{"256 two-byte characters are kept", strings.Repeat("é", MaxRunes), strings.Repeat("é", MaxRunes)},
		{"long is cut with length and digest", long, strings.Repeat("a", MaxRunes) + "…(4194304 bytes, sha256 " + hex.EncodeToString(sum[:8]) + ")"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := String(tc.in); got != tc.want {
				t.Errorf("String = %.80q…, want %.80q…", got, tc.want)
			}
			if got := Bytes([]byte(tc.in)); got != tc.want {
				t.Errorf("Bytes = %.80q…", got)
			}
		})
	}
	// A cut never splits a character, and the output stays small.
	s := strings.Repeat("€", 1000)
	out := String(s)
	if !utf8.ValidString(out) || !strings.HasPrefix(out, strings.Repeat("€", MaxRunes)+"…(3000 bytes") {
		t.Errorf("String(1000 euros) = %q", out)
	}
	if len(out) > 4*MaxRunes+64 {
		t.Errorf("bounded output is %d bytes", len(out))
	}
}
