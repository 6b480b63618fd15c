package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gatewaystack/gatewaystack/config"
	"github.com/gatewaystack/gatewaystack/demo"
	"github.com/gatewaystack/gatewaystack/mcp"
)

// Demo policy: tool:read is the baseline, tool:write a step-up scope, and
// notes:admin an entitlement only the admin user holds.
var (
	demoBaseline = []string{"tool:read"}
	demoStepUp   = []string{"tool:write"}
)

func demoPolicy() map[string]config.ToolRule {
	return map[string]config.ToolRule{
		"notes__list_notes":       {Scopes: []string{"tool:read"}},
		"notes__read_note":        {Scopes: []string{"tool:read"}},
		"notes__write_note":       {Scopes: []string{"tool:write"}},
		"notes__delete_all_notes": {Scopes: []string{"notes:admin"}},
	}
}

// loopbackURL turns a listen address into the one URL spelling the demo
// uses everywhere (127.0.0.1), because MCP clients compare the metadata's
// resource with the URL they were given.
func loopbackURL(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", usageError{fmt.Sprintf("%q is not host:port", addr)}
	}
	if host == "" || host == "0.0.0.0" || host == "::" || host == "localhost" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	gwAddr := fs.String("gateway-addr", "127.0.0.1:8080", "address of the gateway")
	issAddr := fs.String("issuer-addr", "127.0.0.1:5051", "address of the demo OAuth issuer")
	upAddr := fs.String("upstream-addr", "127.0.0.1:5052", "address of the demo notes MCP server")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	gwURL, err := loopbackURL(*gwAddr)
	if err != nil {
		return err
	}
	issURL, err := loopbackURL(*issAddr)
	if err != nil {
		return err
	}
	upURL, err := loopbackURL(*upAddr)
	if err != nil {
		return err
	}
	log := newLogger(stderr, *level)

	// Bind every port first, so a busy port fails before anything starts.
	var lns []net.Listener
	closeAll := func() {
		for _, l := range lns {
			_ = l.Close()
		}
	}
	for _, a := range []string{*issAddr, *upAddr, *gwAddr} {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			closeAll()
			return fmt.Errorf("listen %s: %w (is another demo running? move it with --gateway-addr, --issuer-addr, --upstream-addr)", a, err)
		}
		lns = append(lns, ln)
	}

	cfg := &config.Config{
		Listen:    *gwAddr,
		PublicURL: gwURL,
		Auth: config.Auth{
			Issuer:         issURL,
			JWKSURI:        issURL + "/.well-known/jwks.json",
			BaselineScopes: demoBaseline,
			StepUpScopes:   demoStepUp,
		},
		Upstreams: []config.Upstream{{Name: "notes", MCP: &config.MCPUpstream{URL: upURL + "/mcp"}}},
		Policy:    config.Policy{Tools: demoPolicy()},
		Log:       config.Log{Level: *level},
	}
	cfg.Auth.Audience = cfg.Resource()
	cfg.SetDefaults()

	issuer, err := demo.NewIssuer(demo.IssuerOptions{Issuer: issURL, Audience: cfg.Resource(), DefaultScope: strings.Join(demoBaseline, " ")})
	if err != nil {
		closeAll()
		return fmt.Errorf("start demo issuer: %w", err)
	}
	notes := demo.NewNotes(demo.NotesOptions{})
	srv, err := mcp.Build(ctx, cfg, mcp.BuildOptions{Version: version, Logger: log, AuditWriter: stdout})
	if err != nil {
		closeAll()
		return err
	}
	defer func() { _ = srv.Close(context.Background()) }()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	serve := func(name string, ln net.Listener, h http.Handler) {
		defer wg.Done()
		hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		done := make(chan error, 1)
		go func() { done <- hs.Serve(ln) }()
		select {
		case err := <-done:
			errc <- fmt.Errorf("%s: %w", name, err)
			return
		case <-ctx.Done():
		}
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		if err := hs.Shutdown(sctx); err != nil {
			_ = hs.Close()
		}
		<-done
	}
	wg.Add(3)
	go serve("issuer", lns[0], issuer.Handler())
	go serve("notes upstream", lns[1], notes.Handler())
	go func() {
		defer wg.Done()
		if err := srv.Serve(ctx, lns[2]); err != nil {
			errc <- err
		}
	}()

	fmt.Fprint(stdout, demoBanner(cfg.Resource(), issURL, upURL))
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	cancel()
	wg.Wait()
	if runErr != nil && !errors.Is(runErr, http.ErrServerClosed) {
		return runErr
	}
	fmt.Fprintln(stdout, "demo stopped")
	return nil
}

func demoBanner(resource, issuer, upstreamURL string) string {
	return fmt.Sprintf(`
Gatewaystack demo is running.

  MCP gateway    %[1]s
  demo issuer    %[2]s   (JWKS: %[2]s/.well-known/jwks.json, POST /mint)
  notes upstream %[3]s/mcp   (refuses calls without the gateway's identity)

Demo users: alice and bob (tool:read, tool:write on request), admin (also notes:admin).

1. Mint a token:
   TOKEN=$(curl -s -X POST %[2]s/mint -H 'Content-Type: application/json' \
     -d '{"sub":"alice","scope":"tool:read tool:write","org_id":"acme"}' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')

2. List the tools alice may use:
   npx @modelcontextprotocol/inspector --cli %[1]s --transport http \
     --header "Authorization: Bearer $TOKEN" --method tools/list

3. Call one:
   npx @modelcontextprotocol/inspector --cli %[1]s --transport http \
     --header "Authorization: Bearer $TOKEN" --method tools/call \
     --tool-name notes__write_note --tool-arg title=hello --tool-arg text=world

Audit lines follow, one per decision. Press Ctrl-C to stop.

`, resource, issuer, upstreamURL)
}

func cmdIssuer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("issuer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:5051", "listen address")
	aud := fs.String("audience", "http://127.0.0.1:8080/mcp", "audience (the gateway's resource URL) of minted tokens")
	scope := fs.String("default-scope", "tool:read", "scope of tokens minted without one")
	if err := fs.Parse(args); err != nil {
		return err
	}
	issURL, err := loopbackURL(*addr)
	if err != nil {
		return err
	}
	issuer, err := demo.NewIssuer(demo.IssuerOptions{Issuer: issURL, Audience: *aud, DefaultScope: *scope})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", *addr, err)
	}
	hs := &http.Server{Handler: issuer.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		defer c()
		_ = hs.Shutdown(sctx)
	}()
	fmt.Fprintf(stdout, "demo issuer %s (JWKS %s/.well-known/jwks.json, POST /mint) for audience %s\n", issURL, issURL, *aud)
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve issuer: %w", err)
	}
	return nil
}

func cmdMint(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	issuer := fs.String("issuer", "http://127.0.0.1:5051", "URL of the demo issuer")
	sub := fs.String("sub", "", "subject (user id) of the token (required)")
	scope := fs.String("scope", "", "space-separated scopes (default: the issuer's default scope)")
	org := fs.String("org", "", "org_id (tenant) claim")
	exp := fs.Int("expires-in", 0, "lifetime in seconds (default 600)")
	asJSON := fs.Bool("json", false, "print the whole JSON response instead of only the token")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sub == "" {
		return usageError{"--sub is required, e.g. --sub alice"}
	}
	body, err := json.Marshal(demo.MintRequest{Sub: *sub, Scope: *scope, OrgID: *org, ExpiresIn: *exp})
	if err != nil {
		return fmt.Errorf("encode mint request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(*issuer, "/")+"/mint", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("mint: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("mint at %s: %w (is the issuer running? start it with gatewaystack demo or gatewaystack issuer)", *issuer, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("mint: read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("mint at %s: HTTP %d: %s", *issuer, resp.StatusCode, strings.TrimSpace(string(data)))
	}
	if *asJSON {
		fmt.Fprintln(stdout, strings.TrimSpace(string(data)))
		return nil
	}
	var mr demo.MintResponse
	if err := json.Unmarshal(data, &mr); err != nil || mr.AccessToken == "" {
		return fmt.Errorf("mint at %s: unexpected response: %s", *issuer, strings.TrimSpace(string(data)))
	}
	fmt.Fprintln(stdout, mr.AccessToken)
	return nil
}
