package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Defaults of Options.
const (
	DefaultSubject        = "conformance-user"
	DefaultRequestTimeout = 15 * time.Second
	// DefaultTimeout bounds a whole Run (an ExpiryWait is added to it).
	DefaultTimeout = 2 * time.Minute
)

// Options configures Run.
type Options struct {
	// URL is the gateway's MCP endpoint, e.g. http://127.0.0.1:8080/mcp.
	// It must be exactly the resource of the gateway's metadata. Required.
	URL string
	// Issuer is the base URL of a token issuer with the demo issuer's
	// POST /mint (gatewaystack demo or gatewaystack issuer), whose tokens the
	// gateway trusts. Required.
	Issuer string
	// Subject is the sub of the minted tokens (default DefaultSubject).
	Subject string
	// StepUpTool names the tool the step-up check calls. Empty: the first
	// listed tool that is not annotated read-only or destructive and answers
	// 403 insufficient_scope to the baseline token.
	StepUpTool string
	// ExpiryWait, when positive, adds a check with a correctly signed token
	// that expires: minted with a one-second lifetime, it must be refused
	// within ExpiryWait (which must cover the gateway's clock skew).
	ExpiryWait time.Duration
	// RequestTimeout bounds each HTTP request (default DefaultRequestTimeout).
	RequestTimeout time.Duration
	// HTTPClient sends the requests (default: a client without redirects).
	HTTPClient *http.Client
	// Progress, when set, gets one line per finished check.
	Progress io.Writer
}

// ErrOptions is wrapped by the errors Run returns for unusable options.
var ErrOptions = errors.New("conformance: invalid options")

// Run checks the gateway at opts.URL and returns the report. Failed checks
// are in the report, not in the error: the error is non-nil only when the
// options are unusable. Run is bounded by ctx and DefaultTimeout plus
// ExpiryWait.
func Run(ctx context.Context, opts Options) (Report, error) {
	res, err := url.Parse(opts.URL)
	if err != nil || (res.Scheme != "http" && res.Scheme != "https") || res.Host == "" {
		return Report{}, fmt.Errorf("%w: --url %q must be the gateway's absolute http(s) MCP URL, e.g. http://127.0.0.1:8080/mcp", ErrOptions, opts.URL)
	}
	iss, err := url.Parse(opts.Issuer)
	if err != nil || (iss.Scheme != "http" && iss.Scheme != "https") || iss.Host == "" {
		return Report{}, fmt.Errorf("%w: --issuer %q must be the issuer's absolute http(s) URL, e.g. http://127.0.0.1:5051", ErrOptions, opts.Issuer)
	}
	if opts.Subject == "" {
		opts.Subject = DefaultSubject
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout+max(opts.ExpiryWait, 0))
	defer cancel()

	r := &runner{
		opts:     opts,
		c:        &client{hc: hc},
		resource: res,
		issuer:   strings.TrimSuffix(opts.Issuer, "/"),
		report: Report{
			Tool: "gatewaystack conformance", URL: opts.URL, Issuer: opts.Issuer,
			StartedAt: time.Now().UTC().Truncate(time.Millisecond), Checks: []Check{},
		},
	}
	r.run(ctx)
	r.report.DurationMS = time.Since(r.report.StartedAt).Milliseconds()
	return r.report, nil
}

// runner holds what the checks learn from each other.
type runner struct {
	opts     Options
	c        *client
	resource *url.URL
	issuer   string
	report   Report

	// baselineScope is the 401's scope.
	baselineScope string
	// prm is the path-suffixed metadata document.
	prm map[string]any
	// token is a valid token for baselineScope, and parts its decoding.
	token string
	parts jwtParts
	// tools are those listed to token.
	tools []tool
}

// check runs fn as the check id and records its outcome: fn returns the
// detail and nil (pass), an error (fail), or a skipError.
func (r *runner) check(ctx context.Context, id, name string, fn func(ctx context.Context) (string, error)) bool {
	start := time.Now()
	c := Check{ID: id, Name: name, Status: Pass}
	detail, err := fn(ctx)
	var skip skipError
	switch {
	case errors.As(err, &skip):
		c.Status, detail = Skip, skip.reason
	case err != nil:
		c.Status = Fail
		if detail != "" {
			detail = err.Error() + " (" + detail + ")"
		} else {
			detail = err.Error()
		}
	}
	c.Detail = detail
	c.DurationMS = time.Since(start).Milliseconds()
	r.report.add(c)
	if r.opts.Progress != nil {
		fmt.Fprintf(r.opts.Progress, "%-4s %s\n", strings.ToUpper(string(c.Status)), c.Name)
	}
	return c.Status == Pass
}

// skipError marks a check that does not apply.
type skipError struct{ reason string }

func (e skipError) Error() string { return "skipped: " + e.reason }

// reqCtx bounds one request.
func (r *runner) reqCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.opts.RequestTimeout)
}

func (r *runner) run(ctx context.Context) {
	suffixed, root := prmURLs(r.resource)

	r.check(ctx, "challenge-no-token", "no token: 401 Bearer challenge with realm, resource_metadata, scope, no error", func(ctx context.Context) (string, error) {
		a, err := r.unauthenticated(ctx, "")
		if err != nil {
			return "", err
		}
		scope, err := checkFirstChallenge(a, suffixed)
		r.baselineScope = scope
		return a.describe(), err
	})
	r.check(ctx, "challenge-not-bearer", "Basic credentials: the same 401 challenge", func(ctx context.Context) (string, error) {
		a, err := r.unauthenticated(ctx, "Basic Y29uZm9ybWFuY2U6Y29uZm9ybWFuY2U=")
		if err != nil {
			return "", err
		}
		_, err = checkFirstChallenge(a, suffixed)
		return a.describe(), err
	})
	r.check(ctx, "prm-path", "metadata at the path-suffixed URL", func(ctx context.Context) (string, error) {
		rc, cancel := r.reqCtx(ctx)
		defer cancel()
		var doc map[string]any
		if _, err := r.c.getJSON(rc, suffixed, &doc); err != nil {
			return "", err
		}
		r.prm = doc
		return r.checkPRM(doc)
	})
	r.check(ctx, "prm-root", "metadata at the root URL: the same document", func(ctx context.Context) (string, error) {
		rc, cancel := r.reqCtx(ctx)
		defer cancel()
		var doc map[string]any
		if _, err := r.c.getJSON(rc, root, &doc); err != nil {
			return "", err
		}
		if r.prm == nil {
			if d, err := r.checkPRM(doc); err != nil {
				return d, err
			}
			return "", errors.New("the path-suffixed document was missing; this one is valid")
		}
		a, _ := json.Marshal(doc)
		b, _ := json.Marshal(r.prm)
		if !bytes.Equal(a, b) {
			return "", fmt.Errorf("differs from the path-suffixed document: %s vs %s", a, b)
		}
		return fmt.Sprintf("resource %v", doc["resource"]), nil
	})
	r.check(ctx, "health", "/health answers ok", func(ctx context.Context) (string, error) {
		rc, cancel := r.reqCtx(ctx)
		defer cancel()
		u := url.URL{Scheme: r.resource.Scheme, Host: r.resource.Host, Path: "/health"}
		var h map[string]any
		a, err := r.c.getJSON(rc, u.String(), &h)
		if err != nil {
			return "", err
		}
		if h["ok"] != true {
			return "", fmt.Errorf("ok is %v, want true: %s", h["ok"], oneLine(string(a.body), 200))
		}
		return "ok: true", nil
	})
	validOK := r.check(ctx, "token-valid", "token for the 401's scope: initialize, tools/list", func(ctx context.Context) (string, error) {
		scope := r.baselineScope
		tok, err := r.mint(ctx, scope, 300)
		if err != nil {
			return "", err
		}
		parts, err := decodeJWT(tok)
		if err != nil {
			return "", fmt.Errorf("the minted token: %w", err)
		}
		r.token, r.parts = tok, parts
		rc, cancel := r.reqCtx(ctx)
		defer cancel()
		s, err := r.c.openSession(rc, r.opts.URL, tok)
		if err != nil {
			return "", err
		}
		defer s.close(rc)
		tools, err := s.listTools(rc)
		if err != nil {
			return "", err
		}
		if len(tools) == 0 {
			return "", fmt.Errorf("tools/list is empty for scope %q", scope)
		}
		r.tools = tools
		names := make([]string, len(tools))
		for i, t := range tools {
			names[i] = t.Name
		}
		return fmt.Sprintf("scope %q: %d tools (%s)", scope, len(tools), strings.Join(names, ", ")), nil
	})
	r.attacks(ctx, validOK)
	r.stepUp(ctx, validOK)
}

// unauthenticated posts an initialize with the given Authorization header
// (none when empty).
func (r *runner) unauthenticated(ctx context.Context, authorization string) (answer, error) {
	rc, cancel := r.reqCtx(ctx)
	defer cancel()
	a, _, err := r.c.post(rc, r.opts.URL, mcpRequest{auth: authorization, method: "initialize", params: initializeParams()})
	return a, err
}

// checkFirstChallenge checks the 401 a request without a usable credential
// gets, and returns its scope.
func checkFirstChallenge(a answer, wantPRM string) (string, error) {
	if a.status != http.StatusUnauthorized {
		return "", fmt.Errorf("HTTP %d, want 401", a.status)
	}
	ch, ok := a.challenge()
	if !ok {
		return "", errors.New("no WWW-Authenticate: Bearer challenge")
	}
	var problems []string
	if _, ok := ch.get("realm"); !ok {
		problems = append(problems, "no realm")
	}
	if rm, ok := ch.get("resource_metadata"); !ok {
		problems = append(problems, "no resource_metadata")
	} else if rm != wantPRM {
		problems = append(problems, fmt.Sprintf("resource_metadata %q, want %q", rm, wantPRM))
	}
	scope, ok := ch.get("scope")
	if !ok || strings.TrimSpace(scope) == "" {
		problems = append(problems, "no scope")
	}
	if e, ok := ch.get("error"); ok {
		problems = append(problems, fmt.Sprintf("error=%q on a request without a token (RFC 6750 section 3.1: no error code)", e))
	}
	if len(problems) > 0 {
		return scope, errors.New(strings.Join(problems, "; "))
	}
	return scope, nil
}

// checkPRM checks a Protected Resource Metadata document.
func (r *runner) checkPRM(doc map[string]any) (string, error) {
	var problems []string
	if doc["resource"] != r.opts.URL {
		problems = append(problems, fmt.Sprintf("resource %v, want %q (clients compare it with the URL they were given)", doc["resource"], r.opts.URL))
	}
	servers := stringList(doc["authorization_servers"])
	if !slices.ContainsFunc(servers, func(s string) bool { return strings.TrimSuffix(s, "/") == r.issuer }) {
		problems = append(problems, fmt.Sprintf("authorization_servers %v does not name the issuer %q", servers, r.opts.Issuer))
	}
	supported := stringList(doc["scopes_supported"])
	for s := range strings.FieldsSeq(r.baselineScope) {
		if !slices.Contains(supported, s) {
			problems = append(problems, fmt.Sprintf("scopes_supported %v lacks the 401's scope %q", supported, s))
		}
	}
	if bm, ok := doc["bearer_methods_supported"]; ok && !slices.Contains(stringList(bm), "header") {
		problems = append(problems, fmt.Sprintf("bearer_methods_supported %v lacks header", bm))
	}
	detail := fmt.Sprintf("resource %v, authorization_servers %v, scopes_supported %v", doc["resource"], servers, supported)
	if len(problems) > 0 {
		return detail, errors.New(strings.Join(problems, "; "))
	}
	return detail, nil
}

func stringList(v any) []string {
	arr, _ := v.([]any)
	out := make([]string, 0, len(arr))
	for _, x := range arr {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// mint asks the issuer's /mint for a token.
func (r *runner) mint(ctx context.Context, scope string, expiresIn int) (string, error) {
	rc, cancel := r.reqCtx(ctx)
	defer cancel()
	body, _ := json.Marshal(map[string]any{"sub": r.opts.Subject, "scope": scope, "expires_in": expiresIn})
	a, err := r.c.do(rc, http.MethodPost, r.issuer+"/mint", http.Header{"Content-Type": {"application/json"}}, body)
	if err != nil {
		return "", fmt.Errorf("mint at %s/mint: %w", r.issuer, err)
	}
	if a.status != http.StatusOK {
		return "", fmt.Errorf("mint at %s/mint (the issuer must offer the demo issuer's POST /mint): %s", r.issuer, a.describe())
	}
	var mr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(a.body, &mr); err != nil || mr.AccessToken == "" {
		return "", fmt.Errorf("%w: %s", errNoToken, oneLine(string(a.body), 200))
	}
	return mr.AccessToken, nil
}

// attacks runs the token attack table: each token must get 401 with
// error="invalid_token".
func (r *runner) attacks(ctx context.Context, haveToken bool) {
	type attack struct {
		id, name string
		make     func(ctx context.Context) (token, note string, err error)
	}
	now := time.Now().Unix()
	foreignKey := func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) }
	table := []attack{
		{"token-expired", "expired (exp rewritten; signature broken)", func(context.Context) (string, string, error) {
			t, err := r.parts.resign(withClaims(r.parts.claims, map[string]any{"exp": now - 3600, "iat": now - 7200, "nbf": now - 7200}))
			return t, "an issuer token with exp an hour ago; without the issuer's key it cannot be re-signed, so --expiry-wait adds a correctly signed one", err
		}},
		{"token-wrong-audience", "wrong audience (foreign key, issuer's kid)", func(context.Context) (string, string, error) {
			k, err := foreignKey()
			if err != nil {
				return "", "", err
			}
			t, err := signRS256(k, r.parts.header, withClaims(r.parts.claims, map[string]any{"aud": "https://other-resource.invalid/mcp"}))
			return t, "aud of another resource, signed by a foreign key under the issuer's kid (the issuer mints only for the gateway's resource)", err
		}},
		{"token-wrong-issuer", "wrong issuer (self-signed)", func(context.Context) (string, string, error) {
			k, err := foreignKey()
			if err != nil {
				return "", "", err
			}
			t, err := signRS256(k, withClaims(r.parts.header, map[string]any{"kid": randomKID()}),
				withClaims(r.parts.claims, map[string]any{"iss": "https://attacker.invalid"}))
			return t, "iss of another issuer, signed by that issuer's own key", err
		}},
		{"token-unknown-key", "unknown key", func(context.Context) (string, string, error) {
			k, err := foreignKey()
			if err != nil {
				return "", "", err
			}
			t, err := signRS256(k, withClaims(r.parts.header, map[string]any{"kid": randomKID()}), r.parts.claims)
			return t, "the issuer token's claims, signed by a key whose kid the issuer does not publish", err
		}},
		{"token-alg-none", `alg "none"`, func(context.Context) (string, string, error) {
			t, err := unsigned(r.parts.header, r.parts.claims)
			return t, "the issuer token's claims, no signature", err
		}},
		{"token-alg-hs256-confusion", "alg HS256 keyed with the issuer's public key", func(ctx context.Context) (string, string, error) {
			secret, note := r.issuerPublicPEM(ctx)
			t, err := signHS256(secret, r.parts.header, r.parts.claims)
			return t, "the issuer token's claims, HMAC-SHA256 with the issuer's RSA public key (PEM) as the secret" + note, err
		}},
		{"token-tampered-payload", "tampered payload (scope widened)", func(context.Context) (string, string, error) {
			scope := strings.Join(append(strings.Fields(r.baselineScope), stringList(r.prm["scopes_supported"])...), " ")
			t, err := r.parts.resign(withClaims(r.parts.claims, map[string]any{"scope": scope + " admin"}))
			return t, "an issuer token whose scope was widened to every scope the metadata lists, and admin", err
		}},
	}
	for _, at := range table {
		r.check(ctx, at.id, at.name+": 401 invalid_token", func(ctx context.Context) (string, error) {
			if !haveToken {
				return "", errors.New("no valid token to derive the attack from (see token-valid)")
			}
			tok, note, err := at.make(ctx)
			if err != nil {
				return "", fmt.Errorf("make the token: %w", err)
			}
			detail, err := r.expectInvalidToken(ctx, tok)
			if note != "" {
				detail += "; " + note
			}
			return detail, err
		})
	}
	if r.opts.ExpiryWait <= 0 {
		r.check(ctx, "token-expired-signed", "expired, correctly signed: 401 invalid_token", func(context.Context) (string, error) {
			return "", skipError{"not asked for: pass --expiry-wait (longer than the gateway's clock skew) to mint a 1-second token and wait for its refusal"}
		})
		return
	}
	r.check(ctx, "token-expired-signed", "expired, correctly signed: 401 invalid_token", func(ctx context.Context) (string, error) {
		tok, err := r.mint(ctx, r.baselineScope, 1)
		if err != nil {
			return "", err
		}
		start := time.Now()
		deadline := start.Add(r.opts.ExpiryWait)
		for {
			detail, err := r.expectInvalidToken(ctx, tok)
			if err == nil {
				return fmt.Sprintf("refused %s after minting; %s", time.Since(start).Round(time.Second), detail), nil
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return detail, fmt.Errorf("still not refused %s after it expired: %w", r.opts.ExpiryWait, err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	})
}

// expectInvalidToken sends initialize with tok and requires 401 with
// error="invalid_token".
func (r *runner) expectInvalidToken(ctx context.Context, tok string) (string, error) {
	rc, cancel := r.reqCtx(ctx)
	defer cancel()
	a, _, err := r.c.post(rc, r.opts.URL, mcpRequest{token: tok, method: "initialize", params: initializeParams()})
	if err != nil {
		return "", err
	}
	if a.status != http.StatusUnauthorized {
		return a.describe(), fmt.Errorf("HTTP %d, want 401", a.status)
	}
	ch, ok := a.challenge()
	if !ok {
		return a.describe(), errors.New("no WWW-Authenticate: Bearer challenge")
	}
	if e, _ := ch.get("error"); e != "invalid_token" {
		return a.describe(), fmt.Errorf("error=%q, want invalid_token", e)
	}
	desc, _ := ch.get("error_description")
	return fmt.Sprintf("401 invalid_token: %s", desc), nil
}

// issuerPublicPEM returns the issuer's signing key (the minted token's kid)
// as PEM, the secret of the key confusion attack. When the JWKS cannot be
// read it returns a random secret and says so.
func (r *runner) issuerPublicPEM(ctx context.Context) ([]byte, string) {
	rc, cancel := r.reqCtx(ctx)
	defer cancel()
	var set struct {
		Keys []jwk `json:"keys"`
	}
	jwksURL := r.issuer + "/.well-known/jwks.json"
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if _, err := r.c.getJSON(rc, r.issuer+"/.well-known/oauth-authorization-server", &meta); err == nil && meta.JWKSURI != "" {
		jwksURL = meta.JWKSURI
	}
	kid, _ := r.parts.header["kid"].(string)
	if _, err := r.c.getJSON(rc, jwksURL, &set); err == nil {
		if p, err := publicKeyPEM(set.Keys, kid); err == nil {
			return p, ""
		}
	}
	return []byte(randomKID()), " (the issuer's JWKS was not readable: a random secret was used)"
}

// stepUp finds a listed tool that needs a step-up scope, checks its 403
// challenge, and calls it again with a token for the challenge's scope.
func (r *runner) stepUp(ctx context.Context, haveToken bool) {
	var challengeScope, toolName string
	var toolArgs map[string]any
	ok := r.check(ctx, "step-up-403", "step-up tool: 403 insufficient_scope, scope = held + missing", func(ctx context.Context) (string, error) {
		if !haveToken {
			return "", errors.New("no valid token (see token-valid)")
		}
		held := strings.Fields(r.baselineScope)
		var stepUp []string
		for _, s := range stringList(r.prm["scopes_supported"]) {
			if !slices.Contains(held, s) {
				stepUp = append(stepUp, s)
			}
		}
		if len(stepUp) == 0 && r.opts.StepUpTool == "" {
			return "", skipError{fmt.Sprintf("the metadata's scopes_supported %v lists no scope beyond the 401's %q, so no tool can need a step-up", stringList(r.prm["scopes_supported"]), r.baselineScope)}
		}
		candidates := stepUpCandidates(r.tools, r.opts.StepUpTool)
		if len(candidates) == 0 {
			if r.opts.StepUpTool != "" {
				return "", fmt.Errorf("tool %q is not listed to a token with scope %q", r.opts.StepUpTool, r.baselineScope)
			}
			return "", skipError{"no listed tool is a candidate (every one is annotated read-only or destructive); name one with --step-up-tool"}
		}
		rc, cancel := r.reqCtx(ctx)
		defer cancel()
		s, err := r.c.openSession(rc, r.opts.URL, r.token)
		if err != nil {
			return "", err
		}
		defer s.close(rc)
		var ran []string
		for _, t := range candidates {
			args := exampleArguments(t.InputSchema)
			a, _, err := s.call(rc, "tools/call", map[string]any{"name": t.Name, "arguments": args})
			if err != nil {
				return "", fmt.Errorf("tools/call %s: %w", t.Name, err)
			}
			if a.status == http.StatusOK {
				ran = append(ran, t.Name)
				continue
			}
			if a.status != http.StatusForbidden {
				return a.describe(), fmt.Errorf("tools/call %s: HTTP %d, want 403 or 200", t.Name, a.status)
			}
			ch, ok := a.challenge()
			if !ok {
				return a.describe(), fmt.Errorf("tools/call %s: 403 without a Bearer challenge", t.Name)
			}
			var problems []string
			if e, _ := ch.get("error"); e != "insufficient_scope" {
				problems = append(problems, fmt.Sprintf("error=%q, want insufficient_scope", e))
			}
			scope, _ := ch.get("scope")
			got := strings.Fields(scope)
			for _, h := range held {
				if !slices.Contains(got, h) {
					problems = append(problems, fmt.Sprintf("scope %q lacks the token's %q (clients replace their scope with the challenge's)", scope, h))
				}
			}
			if !slices.ContainsFunc(got, func(s string) bool { return slices.Contains(stepUp, s) }) && len(stepUp) > 0 {
				problems = append(problems, fmt.Sprintf("scope %q holds none of the step-up scopes %v", scope, stepUp))
			}
			if _, ok := ch.get("resource_metadata"); !ok {
				problems = append(problems, "no resource_metadata")
			}
			detail := fmt.Sprintf("%s: %s", t.Name, a.describe())
			if len(problems) > 0 {
				return detail, errors.New(strings.Join(problems, "; "))
			}
			challengeScope, toolName, toolArgs = scope, t.Name, args
			if len(ran) > 0 {
				detail += fmt.Sprintf(" (allowed and ran first: %s)", strings.Join(ran, ", "))
			}
			return detail, nil
		}
		return "", fmt.Errorf("none of %d candidate tools answered 403 insufficient_scope (allowed: %s)", len(candidates), strings.Join(ran, ", "))
	})
	r.check(ctx, "step-up-granted", "step-up: a token for the challenge's scope succeeds", func(ctx context.Context) (string, error) {
		if !ok {
			if c, found := r.report.Check("step-up-403"); found && c.Status == Skip {
				return "", skipError{"no step-up challenge to answer"}
			}
			return "", errors.New("no step-up challenge to answer (see step-up-403)")
		}
		tok, err := r.mint(ctx, challengeScope, 300)
		if err != nil {
			return "", err
		}
		rc, cancel := r.reqCtx(ctx)
		defer cancel()
		s, err := r.c.openSession(rc, r.opts.URL, tok)
		if err != nil {
			return "", err
		}
		defer s.close(rc)
		a, m, err := s.call(rc, "tools/call", map[string]any{"name": toolName, "arguments": toolArgs})
		if err != nil {
			return "", err
		}
		if a.status != http.StatusOK {
			return a.describe(), fmt.Errorf("HTTP %d, want 200", a.status)
		}
		if m.Error != nil {
			return "", fmt.Errorf("JSON-RPC error %d: %s", m.Error.Code, m.Error.Message)
		}
		return fmt.Sprintf("%s with scope %q: result %s", toolName, challengeScope, oneLine(string(m.Result), 160)), nil
	})
}

// stepUpCandidates returns the tools the step-up check may call: the named
// one, or every tool not annotated read-only or destructive.
func stepUpCandidates(tools []tool, named string) []tool {
	var out []tool
	for _, t := range tools {
		switch {
		case named != "":
			if t.Name == named {
				out = append(out, t)
			}
		case t.Annotations.ReadOnlyHint != nil && *t.Annotations.ReadOnlyHint:
		case t.Annotations.DestructiveHint != nil && *t.Annotations.DestructiveHint:
		default:
			out = append(out, t)
		}
	}
	return out
}

// exampleArguments builds arguments for the required properties of a JSON
// schema: a short string, 1, false, [] or {}.
func exampleArguments(schema json.RawMessage) map[string]any {
	var s struct {
		Properties map[string]struct {
			Type any   `json:"type"`
			Enum []any `json:"enum"`
		} `json:"properties"`
		Required []string `json:"required"`
	}
	args := map[string]any{}
	if json.Unmarshal(schema, &s) != nil {
		return args
	}
	for _, name := range s.Required {
		p := s.Properties[name]
		if len(p.Enum) > 0 {
			args[name] = p.Enum[0]
			continue
		}
		typ, _ := p.Type.(string)
		if list, ok := p.Type.([]any); ok && len(list) > 0 {
			typ, _ = list[0].(string)
		}
		switch typ {
		case "integer", "number":
			args[name] = 1
		case "boolean":
			args[name] = false
		case "array":
			args[name] = []any{}
		case "object":
			args[name] = map[string]any{}
		default:
			args[name] = "gatewaystack conformance check"
		}
	}
	return args
}
