package interop

// The gateway under test: built with mcp.Build from a real configuration,
// served on 127.0.0.1, trusting a demo issuer (real RS256 tokens, JWKS over
// HTTP) that mints the test identity's token.

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gatewaystack/gatewaystack/config"
	"github.com/gatewaystack/gatewaystack/demo"
	gsmcp "github.com/gatewaystack/gatewaystack/mcp"
)

const (
	// upstreamName is the name (and tool/prompt prefix) of the upstream in
	// every fidelity test.
	upstreamName = "ev"
	// prefix is what the gateway puts before tool and prompt names.
	prefix = upstreamName + "__"
	// interopScope is the one scope the policy asks for, and the token has.
	interopScope = "interop:use"
)

// gateway is a running gateway and a token it accepts.
type gateway struct {
	// mcp is the MCP endpoint (= resource = token audience).
	mcp string
	// token is a valid access token of the test identity.
	token string
}

// startGateway builds and serves a gateway in front of ups with a policy
// that allows every tool, resource and prompt of the "ev" upstream to the
// test identity. The gateway's operational logs are shown when t fails.
func startGateway(t *testing.T, ups ...config.Upstream) *gateway {
	t.Helper()
	issLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gwLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = issLn.Close()
		t.Fatal(err)
	}
	issuerURL := "http://" + issLn.Addr().String()
	base := "http://" + gwLn.Addr().String()
	g := &gateway{mcp: base + "/mcp"}

	iss, err := demo.NewIssuer(demo.IssuerOptions{Issuer: issuerURL, Audience: g.mcp})
	if err != nil {
		t.Fatal(err)
	}
	issSrv := &httptest.Server{Listener: issLn, Config: &http.Server{Handler: iss.Handler(), ReadHeaderTimeout: 5 * time.Second}}
	issSrv.Start()
	t.Cleanup(issSrv.Close)

	rule := config.ToolRule{Scopes: []string{interopScope}}
	cfg := &config.Config{Listen: gwLn.Addr().String(), PublicURL: base}
	cfg.Auth.Issuer = issuerURL
	cfg.Auth.Audience = g.mcp
	cfg.Auth.JWKSURI = issuerURL + demo.JWKSPath
	cfg.Outbound.AllowHTTPLoopback = true
	cfg.Auth.BaselineScopes = []string{interopScope}
	cfg.Policy.Tools = map[string]config.ToolRule{prefix + "*": rule}
	cfg.Policy.Resources = map[string]config.ToolRule{prefix + "*": rule}
	cfg.Policy.Prompts = map[string]config.ToolRule{prefix + "*": rule}
	cfg.Server.UpstreamTimeout = callTimeout
	cfg.Upstreams = ups
	cfg.SetDefaults()

	logs := &tailBuffer{max: 256 << 10}
	srv, err := gsmcp.Build(context.Background(), cfg, gsmcp.BuildOptions{
		Version: "interop-test", Logger: zerolog.New(logs).With().Timestamp().Logger(), AuditWriter: io.Discard,
	})
	if err != nil {
		_ = gwLn.Close()
		t.Fatalf("build gateway: %v", err)
	}
	gwSrv := &httptest.Server{Listener: gwLn, Config: &http.Server{Handler: srv.Gateway.Handler(), ReadHeaderTimeout: 10 * time.Second}}
	gwSrv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Close(ctx) // stops stdio upstreams too
		gwSrv.CloseClientConnections()
		gwSrv.Close()
		if t.Failed() {
			t.Logf("gateway logs:\n%s", logs.String())
		}
	})

	waitJWKS(t, base+"/health")
	tok, err := iss.Mint(demo.MintRequest{Sub: "interop-user", Scope: interopScope, OrgID: "interop-org", ExpiresIn: 3600})
	if err != nil {
		t.Fatal(err)
	}
	g.token = tok.AccessToken
	return g
}

// waitJWKS polls /health until the gateway has loaded the issuer's keys
// (before that, every request is refused with 503).
func waitJWKS(t *testing.T, healthURL string) {
	t.Helper()
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(readyTimeout)
	var last string
	for time.Now().Before(deadline) {
		resp, err := hc.Get(healthURL)
		if err == nil {
			var h struct {
				JWKSReady bool `json:"jwks_ready"`
			}
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			_ = resp.Body.Close()
			if json.Unmarshal(b, &h) == nil && h.JWKSReady {
				return
			}
			last = string(b)
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("gateway did not load the issuer's keys within %s; last /health: %s", readyTimeout, last)
}
