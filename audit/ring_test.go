package audit

import (
	"fmt"
	"testing"
	"time"
)

func TestRingQuery(t *testing.T) {
	t.Parallel()
	r := NewRing(RingOptions{Size: 5})
	base := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	// Seven events in a ring of five: the first two are forgotten.
	for i := range 7 {
		e := Event{Time: base.Add(time.Duration(i) * time.Minute), EventID: fmt.Sprint(i),
			Subject: []string{"alice", "bob"}[i%2], Tenant: "acme", Tool: "notes__read", Decision: Allow}
		if i == 5 {
			e.Tenant, e.Tool, e.Decision = "globex", "notes__write", Deny
		}
		r.Write(e)
	}
	ids := func(es []Event) string {
		s := ""
		for _, e := range es {
			s += e.EventID
		}
		return s
	}
	tests := []struct {
		f    Filter
		want string
	}{
		{Filter{}, "65432"},
		{Filter{Limit: 2}, "65"},
		{Filter{Subject: "alice"}, "642"},
		{Filter{Tenant: "globex"}, "5"},
		{Filter{Tool: "notes__read", Subject: "bob"}, "3"},
		{Filter{Decision: Deny}, "5"},
		{Filter{Since: base.Add(4 * time.Minute)}, "654"},
		{Filter{Subject: "carol"}, ""},
	}
	for _, tc := range tests {
		if got := ids(r.Query(tc.f)); got != tc.want {
			t.Errorf("Query(%+v) = %q, want %q", tc.f, got, tc.want)
		}
	}
	if r.Len() != 5 {
		t.Errorf("Len %d, want 5", r.Len())
	}
}
