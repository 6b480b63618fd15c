package mcp_test

import (
	"strings"
	"testing"
	"time"
)

// Invariant: the upstream session the gateway shares among its clients is
// subscribed to a resource exactly while some client session is. Only the
// first subscriber's resources/subscribe goes upstream (the others are
// answered {} by the gateway); one client's resources/unsubscribe does not
// end the others' subscription (the other subscribers keep getting
// notifications/resources/updated); when the last subscriber's session
// ends, the gateway itself sends resources/unsubscribe upstream, as that
// subscriber.
func TestOneUnsubscribeLeavesOtherSubscribersSubscribed(t *testing.T) {
	t.Parallel()
	sh := newShelf(t)
	g := shelfGateway(t, sh)
	alice, bob := g.minter.token("alice", baselineScope), g.minter.token("bob", baselineScope)
	sa, sb := g.initialize(t, alice), g.initialize(t, bob)
	sub := map[string]any{"uri": shelfURI}

	for _, s := range []struct{ token, sid string }{{alice, sa}, {bob, sb}} {
		if res := g.post(t, s.token, s.sid, rpcBody(t, "resources/subscribe", sub)).result(t); string(res) != "{}" {
			t.Fatalf("resources/subscribe result %s, want {}", res)
		}
	}
	if n := sh.count("resources/subscribe"); n != 1 {
		t.Fatalf("the upstream got %d resources/subscribe for two subscribers of one URI, want 1", n)
	}

	updates := g.listenFor(t, bob, sb, "notifications/resources/updated")
	if res := g.post(t, alice, sa, rpcBody(t, "resources/unsubscribe", sub)).result(t); string(res) != "{}" {
		t.Fatalf("resources/unsubscribe result %s, want {}", res)
	}
	if n := sh.count("resources/unsubscribe"); n != 0 {
		t.Fatalf("alice's unsubscribe reached the upstream (%d) while bob still subscribes", n)
	}
	deadline := time.After(5 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for delivered := false; !delivered; {
		select {
		case line := <-updates:
			if !strings.Contains(line, shelfURI) {
				t.Fatalf("update %q", line)
			}
			delivered = true
		case <-tick.C:
			if sh.update(shelfURI) == 0 {
				t.Fatal("the upstream session is no longer subscribed after alice's unsubscribe")
			}
		case <-deadline:
			t.Fatal("bob got no notifications/resources/updated after alice unsubscribed")
		}
	}

	g.deleteSession(t, bob, sb)
	eventually(t, "the upstream got resources/unsubscribe once bob's session, the last subscriber, ended", func() bool {
		return sh.count("resources/unsubscribe") == 1
	})
	if by := sh.unsubscribedBy(); len(by) != 1 || by[0] != "bob" {
		t.Errorf("the gateway's resources/unsubscribe came as %q, want bob", by)
	}
	if subs, owners, _ := g.srv.Gateway.SessionStateSizes(); subs != 0 || owners != 0 {
		t.Errorf("after every subscriber left: %d subscriptions of %d sessions remain", subs, owners)
	}
}
