package mcp_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gatewaystack/gatewaystack/config"
	"github.com/gatewaystack/gatewaystack/internal/redistest"
)

// capSessions sets server.max_sessions_per_subject.
func capSessions(n int) func(*config.Config) {
	return func(c *config.Config) { c.Server.MaxSessionsPerSubject = n }
}

// wantSessionGone checks that sid answers like an ended session: 404 with
// the message that tells the client to initialize again.
func wantSessionGone(t *testing.T, g *gateway, token, sid, what string) {
	t.Helper()
	r := g.list(t, token, sid)
	if r.StatusCode != http.StatusNotFound {
		t.Fatalf("%s: status %d, body %.200s; want 404", what, r.StatusCode, r.body)
	}
	if _, msg, _ := r.rpcError(t); !strings.Contains(msg, "start a new session with initialize") {
		t.Errorf("%s: message %q", what, msg)
	}
}

// Invariant: one subject holds at most server.max_sessions_per_subject
// sessions on a replica. A session started beyond the cap ends the
// subject's least recently used one, whose next use gets 404 (the client
// initializes again); the other sessions, and other subjects' sessions, are
// untouched.
func TestSessionsPerSubjectAreCapped(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{configure: capSessions(3)})
	alice, bob := g.minter.token("alice", baselineScope), g.minter.token("bob", baselineScope)

	bobs := g.initialize(t, bob)
	var sids []string
	for range 4 {
		sids = append(sids, g.initialize(t, alice))
	}
	wantSessionGone(t, g, alice, sids[0], "alice's first session after her fourth initialize")
	for i, sid := range sids[1:] {
		if r := g.list(t, alice, sid); r.StatusCode != http.StatusOK {
			t.Errorf("alice's session %d: status %d, body %s", i+2, r.StatusCode, r.body)
		}
	}
	g.list(t, bob, bobs).result(t)

	// Least recently used, not oldest: using sids[1] now makes sids[2] the
	// one a fifth session ends.
	g.list(t, alice, sids[1]).result(t)
	fifth := g.initialize(t, alice)
	wantSessionGone(t, g, alice, sids[2], "alice's least recently used session after her fifth initialize")
	for _, sid := range []string{sids[1], sids[3], fifth} {
		g.list(t, alice, sid).result(t)
	}
	g.list(t, bob, bobs).result(t)
}

// Invariant: a session evicted by the per-subject cap is ended on every
// replica sharing the Redis store, not only on the one that evicted it.
func TestEvictedSessionIsEndedOnEveryReplica(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	o := limited(func(l *config.Limits) {
		l.Store = srv.URL()
		l.LoopGuard.MaxRepeats = intp(0)
	})
	inner := o.configure
	o.configure = func(c *config.Config) {
		inner(c)
		c.Server.SessionKey = sharedSessionKey
		c.Server.MaxSessionsPerSubject = 2
	}
	a, b := newGateway(t, o), newGateway(t, o)
	ta, tb := a.minter.token("alice", baselineScope), b.minter.token("alice", baselineScope)

	first := a.initialize(t, ta)
	b.list(t, tb, first).result(t) // the other replica accepts it
	second := a.initialize(t, ta)
	third := a.initialize(t, ta)
	wantSessionGone(t, b, tb, first, "the evicted session on the other replica")
	wantSessionGone(t, a, ta, first, "the evicted session on the replica that evicted it")
	for _, sid := range []string{second, third} {
		b.list(t, tb, sid).result(t)
		a.list(t, ta, sid).result(t)
	}
}
