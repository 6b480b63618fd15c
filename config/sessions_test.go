package config

import (
	"strings"
	"testing"
)

// server.max_sessions_per_subject defaults to 256 and is bounded: 0 means
// the default (there is no setting without a cap), a value outside
// 1..100000 is a problem naming the field.
func TestMaxSessionsPerSubject(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		set     int
		problem bool
	}{{0, false}, {1, false}, {100_000, false}, {-1, true}, {100_001, true}} {
		c := validREST()
		c.Server.MaxSessionsPerSubject = tc.set
		c.SetDefaults()
		err := c.Validate()
		if tc.set == 0 && c.Server.MaxSessionsPerSubject != DefaultMaxSessionsPerSubject {
			t.Errorf("max_sessions_per_subject 0 defaulted to %d, want %d", c.Server.MaxSessionsPerSubject, DefaultMaxSessionsPerSubject)
		}
		got := err != nil && strings.Contains(err.Error(), "server.max_sessions_per_subject")
		if got != tc.problem {
			t.Errorf("max_sessions_per_subject %d: Validate = %v, want a server.max_sessions_per_subject problem: %v", tc.set, err, tc.problem)
		}
	}
}
