package mcp_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gatewaystack/gatewaystack/config"
	gsmcp "github.com/gatewaystack/gatewaystack/mcp"
)

// Regression invariant: the demo admin token is offered only when the
// gateway's public URL itself is on loopback. Behind a local tunnel
// (public URL https://…) every visitor's connection arrives from loopback,
// so a loopback peer proves nothing there: the endpoint refuses, and no
// token is minted.
func TestDemoTokenRefusedWhenThePublicURLIsNotOnLoopback(t *testing.T) {
	t.Parallel()
	var minted atomic.Int32
	var g *gateway
	g = newGateway(t, gatewayOptions{
		configure: func(c *config.Config) {
			c.Admin.Scope = adminScope
			c.PublicURL = "https://gw.example"
			c.Auth.Audience = c.Resource()
		},
		demoAdminToken: func(context.Context) (string, error) {
			minted.Add(1)
			return g.minter.token("admin", adminScope), nil
		},
	})
	// The tunnel's request: from 127.0.0.1, Host the public name.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, g.URL+gsmcp.AdminDemoToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "gw.example"
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "public URL is on loopback") {
		t.Errorf("demo token through a tunnel: %d %s, want 403", resp.StatusCode, body)
	}
	if n := minted.Load(); n != 0 {
		t.Errorf("the demo token was minted %d times", n)
	}
}
