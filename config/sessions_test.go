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
	testServerCap(t, "server.max_sessions_per_subject", DefaultMaxSessionsPerSubject,
		func(c *Config) *int { return &c.Server.MaxSessionsPerSubject }, []int{1, 100_000}, []int{-1, 100_001})
}

// server.max_streams_per_session and max_streams_per_subject default to 4
// and 32 and are bounded (the subject's cap at least the session's).
func TestMaxStreams(t *testing.T) {
	t.Parallel()
	testServerCap(t, "server.max_streams_per_session", DefaultMaxStreamsPerSession,
		func(c *Config) *int { return &c.Server.MaxStreamsPerSession }, []int{1, 32}, []int{-1, 1001})
	testServerCap(t, "server.max_streams_per_subject", DefaultMaxStreamsPerSubject,
		func(c *Config) *int { return &c.Server.MaxStreamsPerSubject }, []int{4, 100_000}, []int{-1, 3, 100_001})
}

// testServerCap checks that the setting field defaults to def when 0, that
// each of ok validates and that each of bad is a problem naming field.
func testServerCap(t *testing.T, field string, def int, at func(*Config) *int, ok, bad []int) {
	t.Helper()
	for _, tc := range append(append([]struct {
		set     int
		problem bool
	}{{0, false}}, cases(ok, false)...), cases(bad, true)...) {
		c := validREST()
		*at(c) = tc.set
		c.SetDefaults()
		err := c.Validate()
		if tc.set == 0 && *at(c) != def {
			t.Errorf("%s 0 defaulted to %d, want %d", field, *at(c), def)
		}
		got := err != nil && strings.Contains(err.Error(), field)
		if got != tc.problem {
			t.Errorf("%s %d: Validate = %v, want a %s problem: %v", field, tc.set, err, field, tc.problem)
		}
	}
}

func cases(vs []int, problem bool) []struct {
	set     int
	problem bool
} {
	out := make([]struct {
		set     int
		problem bool
	}, len(vs))
	for i, v := range vs {
		out[i].set, out[i].problem = v, problem
	}
	return out
}
