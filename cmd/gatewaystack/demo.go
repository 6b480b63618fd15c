package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
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

// loopbackURL turns the listen address of flag name into the one URL
// spelling the demo uses everywhere (127.0.0.1), because MCP clients compare
// the metadata's resource with the URL they were given.
func loopbackURL(name, addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return "", usageError{msg: fmt.Sprintf("--%s %q is not host:port; use e.g. 127.0.0.1:%s", name, addr, defaultPort(name))}
	}
	if host == "" || host == "0.0.0.0" || host == "::" || host == "localhost" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

func defaultPort(flagName string) string {
	switch flagName {
	case "issuer-addr", "addr":
		return "5051"
	case "upstream-addr":
		return "5052"
	}
	return "8080"
}

// isLoopback reports whether a listen address only accepts connections from
// this machine.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// warnExposed tells the user when a demo part listens beyond this machine:
// the demo issuer signs in demo users for whoever reaches its page, and the
// notes server is plain http.
func warnExposed(stderr io.Writer, flagName, addr, what string) {
	if !isLoopback(addr) {
		fmt.Fprintf(stderr, "warning: --%s %s makes the %s reachable from other machines; %s\n", flagName, addr, what,
			"it is meant for this machine only (use 127.0.0.1)")
	}
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ", ") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// flagSet reports whether flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// checkPublicURL checks the value of a flag naming a public base URL: an
// absolute http or https URL without user info, query or fragment.
func checkPublicURL(fs *flag.FlagSet, name, raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", usageError{msg: fmt.Sprintf("--%s %q is not an absolute http or https URL without query or fragment; use e.g. https://gateway.example.com", name, raw), fs: fs}
	}
	return strings.TrimSuffix(raw, "/"), nil
}

// urlOnLoopback reports whether the host of an absolute URL is localhost
// or a loopback address.
func urlOnLoopback(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Hostname(), "localhost") {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}

// demoPasswordEnv names the environment variable that sets the demo
// issuer's sign-in password, like --password (which other users of the
// machine can read in the process list).
const demoPasswordEnv = "GATEWAYSTACK_DEMO_PASSWORD"

// issuerFlags are the flags that guard a demo issuer on a public URL.
type issuerFlags struct {
	password               *string
	allowAdmin             *bool
	allowClientCredentials *bool
}

func addIssuerFlags(fs *flag.FlagSet) issuerFlags {
	return issuerFlags{
		password: fs.String("password", "", "password the sign-in page asks for (or "+demoPasswordEnv+"); on a public issuer URL one is generated and printed when neither is set; on loopback none unless set"),
		allowAdmin: fs.Bool("allow-admin", false,
			"offer the admin user (granted notes:admin) on a public issuer URL's sign-in page; always offered on loopback"),
		allowClientCredentials: fs.Bool("allow-client-credentials", false,
			"serve the client_credentials grant on a public issuer URL (anyone who registers gets tokens); always served on loopback"),
	}
}

// signInPassword is the sign-in page's password and where it came from.
type signInPassword struct {
	value string
	// source is "--password", demoPasswordEnv, "generated", or "" (none).
	source string
}

// choosePassword picks the sign-in password: --password, else the
// environment, else, for a public issuer URL without auto-approve, a
// random one. A password with auto-approve is a usage error: the page that
// would ask for it is never shown.
func choosePassword(fs *flag.FlagSet, f issuerFlags, issuerURL string, autoApprove bool) (signInPassword, error) {
	p := signInPassword{value: *f.password, source: "--password"}
	if p.value == "" {
		p = signInPassword{value: os.Getenv(demoPasswordEnv), source: demoPasswordEnv}
	}
	switch {
	case p.value != "" && autoApprove:
		return signInPassword{}, usageError{msg: fmt.Sprintf("--auto-approve shows no sign-in page, so the password from %s would never be asked for; drop one of them", p.source), fs: fs}
	case p.value != "":
		if n := len([]rune(p.value)); n < demo.MinPasswordLength || n > demo.MaxPasswordLength {
			return signInPassword{}, usageError{msg: fmt.Sprintf("the password from %s must have %d to %d characters", p.source, demo.MinPasswordLength, demo.MaxPasswordLength), fs: fs}
		}
		return p, nil
	case urlOnLoopback(issuerURL) || autoApprove:
		return signInPassword{}, nil
	}
	return signInPassword{value: rand.Text(), source: "generated"}, nil
}

// note is what the command prints about the sign-in password. A
// generated password is printed here, once, on stdout (never in a log); a
// password the user chose is not printed.
func (p signInPassword) note() string {
	switch p.source {
	case "":
		return ""
	case "generated":
		return "sign-in password: " + p.value + " (generated for this run; the sign-in page asks for it; choose your own with " + demoPasswordEnv + ")"
	}
	return "sign-in password: the one from " + p.source + " (the sign-in page asks for it)"
}

// warnAutoApprove tells the user that --auto-approve on an issuer reachable
// through a public URL hands a token to anyone who asks.
func warnAutoApprove(stderr io.Writer, iss *demo.Issuer, autoApprove bool) {
	if autoApprove && !iss.MintEnabled() {
		fmt.Fprintf(stderr, "warning: --auto-approve with the public issuer URL %s approves every sign-in without asking anyone; leave it off so that the approval page is shown\n", iss.Issuer())
	}
}

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", stderr)
	gwAddr := fs.String("gateway-addr", "127.0.0.1:8080", "address of the gateway")
	issAddr := fs.String("issuer-addr", "127.0.0.1:5051", "address of the demo OAuth issuer")
	upAddr := fs.String("upstream-addr", "127.0.0.1:5052", "address of the demo notes MCP server")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	publicURL := fs.String("public-url", "", "public URL of the gateway, e.g. a tunnel's https URL (default http://<gateway-addr>); the MCP resource is this + /mcp")
	issuerURL := fs.String("issuer-url", "", "public URL of the demo issuer, its iss claim (default http://<issuer-addr>); /mint is off unless its host is loopback")
	autoApprove := fs.Bool("auto-approve", false, "approve sign-ins at once, as the login_hint user or alice, without the approval page (headless tests)")
	guard := addIssuerFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		val  *string
	}{{"public-url", publicURL}, {"issuer-url", issuerURL}} {
		if *f.val != "" {
			v, err := checkPublicURL(fs, f.name, *f.val)
			if err != nil {
				return err
			}
			*f.val = v
		}
	}
	switch *level {
	case "debug", "info", "warn", "error":
	default:
		return usageError{msg: fmt.Sprintf("--log-level %q is not one of debug, info, warn, error", *level), fs: fs}
	}
	parts := []struct{ flag, addr string }{{"issuer-addr", *issAddr}, {"upstream-addr", *upAddr}, {"gateway-addr", *gwAddr}}
	for _, p := range parts {
		if _, err := loopbackURL(p.flag, p.addr); err != nil {
			return err
		}
	}
	warnExposed(stderr, "issuer-addr", *issAddr, "demo issuer, which signs in demo users for whoever reaches its sign-in page,")
	warnExposed(stderr, "upstream-addr", *upAddr, "notes server, which speaks plain http (the gateway's secret header would cross the network in clear),")
	log := newLogger(stderr, *level)

	// Bind every port first, so a busy port fails before anything starts.
	// Port 0 picks a free port; the URLs use the ports actually bound.
	var lns []net.Listener
	closeAll := func() {
		for _, l := range lns {
			_ = l.Close()
		}
	}
	urls := make([]string, len(parts))
	for i, p := range parts {
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			closeAll()
			return fmt.Errorf("listen %s: %w (is another demo running? move this part with --%s, e.g. --%s 127.0.0.1:0 picks a free port)", p.addr, err, p.flag, p.flag)
		}
		lns = append(lns, ln)
		host, _, _ := net.SplitHostPort(p.addr)
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		urls[i], _ = loopbackURL(p.flag, net.JoinHostPort(host, port))
	}
	issLocalURL, upURL, gwURL := urls[0], urls[1], urls[2]
	// The public URLs are what clients see (iss, the resource, the PRM);
	// the gateway fetches the keys over loopback.
	issURL := issLocalURL
	if *issuerURL != "" {
		issURL = *issuerURL
	}
	if *publicURL != "" {
		gwURL = *publicURL
	}
	password, err := choosePassword(fs, guard, issURL, *autoApprove)
	if err != nil {
		closeAll()
		return err
	}
	// The notes server believes the identity headers only from requests
	// that carry this run's secret, which only the gateway sends.
	upstreamSecret := rand.Text()

	cfg := &config.Config{
		Listen:    lns[2].Addr().String(),
		PublicURL: gwURL,
		Auth: config.Auth{
			Issuer:         issURL,
			JWKSURI:        issLocalURL + demo.JWKSPath,
			BaselineScopes: demoBaseline,
			StepUpScopes:   demoStepUp,
		},
		// The notes server refuses every request without this run's secret
		// and a user identity, the listening stream included, and never
		// changes its tool list.
		Upstreams: []config.Upstream{{Name: "notes", MCP: &config.MCPUpstream{URL: upURL + "/mcp", Listen: new(false),
			Headers: map[string]string{demo.DefaultUpstreamSecretHeader: upstreamSecret}}}},
		Policy: config.Policy{Tools: demoPolicy()},
		Log:    config.Log{Level: *level},
		Admin:  config.Admin{Scope: demoAdminScope},
		// The demo issuer's keys are fetched over loopback, in plain http.
		Outbound: config.Outbound{AllowHTTPLoopback: true},
	}
	cfg.Auth.Audience = cfg.Resource()
	cfg.SetDefaults()

	// The issuer issues tokens for the gateway's resource only.
	issuer, err := demo.NewIssuer(demo.IssuerOptions{
		Issuer:                 issURL,
		Audience:               cfg.Resource(),
		DefaultScope:           strings.Join(demoBaseline, " "),
		AutoApprove:            *autoApprove,
		Password:               password.value,
		AllowAdmin:             *guard.allowAdmin,
		AllowClientCredentials: *guard.allowClientCredentials,
	})
	if err != nil {
		closeAll()
		return fmt.Errorf("start demo issuer: %w", err)
	}
	warnAutoApprove(stderr, issuer, *autoApprove)
	notes := demo.NewNotes(demo.NotesOptions{UpstreamSecret: upstreamSecret})
	bo := mcp.BuildOptions{Version: version, Logger: log, AuditWriter: stdout}
	if issuer.MintEnabled() && urlOnLoopback(gwURL) {
		// The admin page offers loopback visitors a token for the demo's
		// admin user, so the demo needs no sign-in to look at. Only when
		// the gateway's public URL is on loopback: behind a tunnel every
		// visitor's connection comes from loopback.
		bo.DemoAdminToken = func(context.Context) (string, error) {
			mr, err := issuer.Mint(demo.MintRequest{Sub: "admin", Scope: demoAdminScope + " " + strings.Join(demoBaseline, " "), OrgID: "acme", ExpiresIn: 3600})
			return mr.AccessToken, err
		}
	}
	srv, err := mcp.Build(ctx, cfg, bo)
	if err != nil {
		closeAll()
		return err
	}
	defer closeServer(srv, log)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	serve := func(name string, ln net.Listener, h http.Handler) {
		defer wg.Done()
		if err := mcp.ServeHTTP(ctx, ln, h, 5*time.Second, nil); err != nil {
			errc <- fmt.Errorf("%s: %w", name, err)
		}
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

	fmt.Fprint(stdout, demoBanner(cfg.Resource(), issURL, upURL, issuer, *autoApprove, password))
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	cancel()
	wg.Wait()
	if runErr != nil {
		return runErr
	}
	fmt.Fprintln(stdout, "demo stopped")
	return nil
}

// demoAdminScope is the scope of the demo's admin endpoints.
const demoAdminScope = "gateway:admin"

func demoBanner(resource, issuer, upstreamURL string, iss *demo.Issuer, autoApprove bool, password signInPassword) string {
	mint := iss.MintEnabled()
	users, hinted := "alice, bob or admin", "bob or admin"
	if !iss.AdminOffered() {
		users, hinted = "alice or bob", "bob"
	}
	approval := "opens its approval page, where you\npick " + users + " and approve the scopes."
	if iss.PasswordRequired() {
		approval = "opens its approval page, where you\nenter the sign-in password, pick " + users + " and approve the scopes."
	}
	if autoApprove {
		approval = "is signed in at once as alice\n(--auto-approve; a login_hint picks " + hinted + ")."
	}
	lead := "Or sign in"
	if !mint {
		lead = "Sign in"
	}
	login := fmt.Sprintf(`
%[4]s from an MCP client: it follows the gateway's 401 to the demo
issuer %[2]s, registers itself and %[3]s
  MCP Inspector  npx @modelcontextprotocol/inspector, Transport "Streamable HTTP",
                 URL %[1]s, Connect
  Cursor         ~/.cursor/mcp.json: {"mcpServers":{"gatewaystack-demo":{"url":"%[1]s"}}}
`, resource, issuer, approval, lead)
	if note := password.note(); note != "" {
		login += "\n" + note + "\n"
	}
	if !mint {
		admin := "that only admin is granted."
		if !iss.AdminOffered() {
			admin = "that no one is granted: admin is not offered (--allow-admin)."
		}
		grants := "tokens only from the sign-in page"
		if iss.ClientCredentialsEnabled() {
			grants = "client_credentials on (--allow-client-credentials)"
		}
		return fmt.Sprintf(`
Gatewaystack demo is running.

  MCP gateway    %[1]s
  demo issuer    %[2]s   (OAuth metadata: %[2]s/.well-known/oauth-authorization-server; /mint off: the issuer URL is not on loopback; %[6]s)
  notes upstream %[3]s/mcp   (answers only the gateway: its per-run secret header and the identity)

Demo policy: tool:read is the baseline scope (list_notes, read_note), tool:write
a step-up scope (write_note) and notes:admin an entitlement (delete_all_notes)
%[5]s
%[4]s
Audit lines follow, one per decision. Press Ctrl-C to stop.

`, resource, issuer, upstreamURL, login, admin, grants)
	}
	return fmt.Sprintf(`
Gatewaystack demo is running.

  MCP gateway    %[1]s
  demo issuer    %[2]s   (JWKS: %[2]s/.well-known/jwks.json, POST /mint, OAuth 2.1 sign-in)
  notes upstream %[3]s/mcp   (answers only the gateway: its per-run secret header and the identity)
  admin page     %[5]s/admin   (health, upstreams, latest audit events, usage today)

Demo policy: tool:read is the baseline scope (list_notes, read_note), tool:write
a step-up scope (write_note) and notes:admin an entitlement (delete_all_notes).
The demo issuer mints a token for any user with the scopes you ask for: try
alice and bob with "tool:read tool:write", and admin with "tool:read notes:admin".

1. Mint a token (it expires after 10 minutes; add "expires_in":3600 for an hour):
   TOKEN=$(curl -s -X POST %[2]s/mint -H 'Content-Type: application/json' \
     -d '{"sub":"alice","scope":"tool:read tool:write","org_id":"acme"}' | sed -E 's/.*"access_token":"([^"]+)".*/\1/')

2. List the tools alice may use:
   npx @modelcontextprotocol/inspector --cli %[1]s --transport http \
     --header "Authorization: Bearer $TOKEN" --method tools/list

3. Call one:
   npx @modelcontextprotocol/inspector --cli %[1]s --transport http \
     --header "Authorization: Bearer $TOKEN" --method tools/call \
     --tool-name notes__write_note --tool-arg title=hello --tool-arg text=world
%[4]s
Audit lines follow, one per decision. Press Ctrl-C to stop.

`, resource, issuer, upstreamURL, login, strings.TrimSuffix(resource, "/mcp"))
}

func cmdIssuer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("issuer", stderr)
	addr := fs.String("addr", "127.0.0.1:5051", "listen address")
	pubURL := fs.String("url", "", "public URL of the issuer, its iss claim, e.g. a tunnel's https URL (default http://<addr>); /mint is off unless its host is loopback")
	var resources stringList
	fs.Var(&resources, "resource", "resource URL (the gateway's public URL + /mcp) tokens may be issued for; repeatable (default: --audience)")
	aud := fs.String("audience", "http://127.0.0.1:8080/mcp", "audience of /mint tokens and the default resource (default: the first --resource when --resource is given)")
	scope := fs.String("default-scope", "tool:read", "scope of tokens minted or authorized without one")
	autoApprove := fs.Bool("auto-approve", false, "approve sign-ins at once, as the login_hint user or alice, without the approval page (headless tests)")
	guard := addIssuerFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if _, err := loopbackURL("addr", *addr); err != nil {
		return err
	}
	if *pubURL != "" {
		v, err := checkPublicURL(fs, "url", *pubURL)
		if err != nil {
			return err
		}
		*pubURL = v
	}
	audience := *aud
	if len(resources) == 0 {
		resources = stringList{audience}
	} else if !flagSet(fs, "audience") {
		audience = resources[0]
	}
	warnExposed(stderr, "addr", *addr, "demo issuer, which signs in demo users for whoever reaches its sign-in page,")
	// The issuer URL's host decides whether the sign-in page needs a
	// password; a usage error is reported before anything is bound.
	hostURL := *pubURL
	if hostURL == "" {
		hostURL, _ = loopbackURL("addr", *addr)
	}
	password, err := choosePassword(fs, guard, hostURL, *autoApprove)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w (move the issuer with --addr)", *addr, err)
	}
	defer ln.Close()
	// Port 0 picks a free port; the issuer URL names the one bound.
	host, _, _ := net.SplitHostPort(*addr)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	issURL, _ := loopbackURL("addr", net.JoinHostPort(host, port))
	if *pubURL != "" {
		issURL = *pubURL
	}
	issuer, err := demo.NewIssuer(demo.IssuerOptions{
		Issuer:                 issURL,
		Audience:               audience,
		Resources:              resources,
		DefaultScope:           *scope,
		AutoApprove:            *autoApprove,
		Password:               password.value,
		AllowAdmin:             *guard.allowAdmin,
		AllowClientCredentials: *guard.allowClientCredentials,
	})
	if err != nil {
		return usageError{msg: err.Error(), fs: fs}
	}
	warnAutoApprove(stderr, issuer, *autoApprove)
	mint := "POST /mint"
	if !issuer.MintEnabled() {
		mint = "/mint off: the issuer URL is not on loopback"
	}
	approval := "approval page"
	switch {
	case *autoApprove:
		approval = "auto-approve as alice or the login_hint user"
	case issuer.PasswordRequired():
		approval = "approval page with password"
	}
	if !issuer.AdminOffered() {
		approval += "; admin not offered (--allow-admin)"
	}
	if !issuer.ClientCredentialsEnabled() {
		approval += "; client_credentials off (--allow-client-credentials)"
	}
	fmt.Fprintf(stdout, "demo issuer %s (JWKS %s%s, %s) for audience %s\n", issURL, issURL, demo.JWKSPath, mint, audience)
	fmt.Fprintf(stdout, "OAuth 2.1 metadata %s%s; resources %s; sign-in: %s\n", strings.TrimSuffix(issURL, "/"), demo.MetadataPath, strings.Join(issuer.Resources(), ", "), approval)
	if note := password.note(); note != "" {
		fmt.Fprintln(stdout, note)
	}
	if err := mcp.ServeHTTP(ctx, ln, issuer.Handler(), 5*time.Second, nil); err != nil {
		return fmt.Errorf("serve issuer: %w", err)
	}
	return nil
}

func cmdMint(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("mint", stderr)
	issuer := fs.String("issuer", "http://127.0.0.1:5051", "URL of the demo issuer")
	sub := fs.String("sub", "", "subject (user id) of the token (required)")
	scope := fs.String("scope", "", "space-separated scopes (default: the issuer's default scope)")
	org := fs.String("org", "", "org_id (tenant) claim")
	exp := fs.Int("expires-in", 0, "lifetime in seconds (default 600)")
	asJSON := fs.Bool("json", false, "print the whole JSON response instead of only the token")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *sub == "" {
		return usageError{msg: "--sub is required, e.g. --sub alice", fs: fs}
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
