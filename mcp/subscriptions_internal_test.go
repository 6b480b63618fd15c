package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/gatewaystack/gatewaystack/upstream"
)

// namedCaller is an upstream connection that only has a name.
type namedCaller string

func (c namedCaller) Name() string { return string(c) }
func (namedCaller) Call(context.Context, string, json.RawMessage) (upstream.Response, error) {
	return upstream.Response{}, errors.New("not called in these tests")
}
func (namedCaller) Close() error { return nil }

// Subscriptions are counted per (upstream, URI): the first subscriber and
// the last one to leave — by unsubscribing or when its session ends — are
// the ones the upstream hears of.
func TestSubscriptionsAreCountedPerUpstreamAndURI(t *testing.T) {
	t.Parallel()
	lib, other := upstream.Upstream{Caller: namedCaller("lib")}, upstream.Upstream{Caller: namedCaller("other")}
	const uri = "lib://docs/readme"
	var s subscriptions
	must := func(first bool, err error) bool {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return first
	}

	if !must(s.subscribe(lib, uri, "A")) {
		t.Fatal("the first subscriber is not first")
	}
	if must(s.subscribe(lib, uri, "B")) || must(s.subscribe(lib, uri, "A")) {
		t.Fatal("a second subscriber, or the first one again, counts as first")
	}
	if !must(s.subscribe(other, uri, "B")) {
		t.Fatal("the same URI of another upstream is a subscription of its own")
	}
	if got := s.sessions("lib", uri); !slices.Equal(sorted(got), []string{"A", "B"}) {
		t.Fatalf("updates of lib go to %v", got)
	}
	if s.unsubscribe("lib", uri, "C") {
		t.Fatal("a session that never subscribed ends the subscription")
	}
	if s.unsubscribe("lib", uri, "A") {
		t.Fatal("A leaving ends the subscription B still holds")
	}
	if s.unsubscribe("lib", uri, "A") {
		t.Fatal("A leaving twice ends the subscription B still holds")
	}
	if got := s.sessions("lib", uri); !slices.Equal(got, []string{"B"}) {
		t.Fatalf("updates of lib go to %v, want [B]", got)
	}

	// B's session ends: both of its subscriptions were the last ones.
	pending := s.endSession("B")
	var names []string
	for _, p := range pending {
		if p.uri != uri {
			t.Errorf("pending unsubscribe of %q", p.uri)
		}
		names = append(names, p.up.Name())
	}
	if !slices.Equal(sorted(names), []string{"lib", "other"}) {
		t.Fatalf("pending unsubscribes for %v, want lib and other", names)
	}
	if keys, owners := s.size(); keys != 0 || owners != 0 {
		t.Fatalf("%d subscriptions of %d sessions left", keys, owners)
	}

	// An ended session that shared its subscriptions leaves them held.
	must(s.subscribe(lib, uri, "D"))
	must(s.subscribe(lib, uri, "E"))
	if p := s.endSession("D"); len(p) != 0 {
		t.Fatalf("D's end would unsubscribe %v while E subscribes", p)
	}
	if !s.unsubscribe("lib", uri, "E") {
		t.Fatal("the last subscriber leaving does not end the subscription")
	}
}

// Invariant: one session's subscriptions are bounded.
func TestSubscriptionsPerSessionAreBounded(t *testing.T) {
	t.Parallel()
	lib := upstream.Upstream{Caller: namedCaller("lib")}
	var s subscriptions
	for i := range maxSubscriptionsPerSession {
		if _, err := s.subscribe(lib, fmt.Sprintf("lib://%d", i), "A"); err != nil {
			t.Fatalf("subscription %d: %v", i, err)
		}
	}
	if _, err := s.subscribe(lib, "lib://one-more", "A"); !errors.Is(err, errTooManySubscriptions) {
		t.Fatalf("one more subscription: %v, want errTooManySubscriptions", err)
	}
	if _, err := s.subscribe(lib, "lib://one-more", "B"); err != nil {
		t.Fatalf("another session: %v", err)
	}
	if p := s.endSession("A"); len(p) != maxSubscriptionsPerSession {
		t.Fatalf("%d pending unsubscribes, want %d", len(p), maxSubscriptionsPerSession)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
