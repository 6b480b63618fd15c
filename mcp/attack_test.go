package mcp_test

// Attacks on the identify stage at the HTTP level, beyond the token table
// of tokens_test.go: how the Authorization header is parsed, how strictly
// a JWS is decoded, which header parameters and JWKS keys are trusted, the
// time and identity claims, duplicate claim names, ID tokens, configured
// token types, and a key set that can no longer be refreshed. Every row is
// a tools/call of rec__echo with a unique marker; a refused row must show
// the status, the challenge (error= and resource_metadata), the JSON reason
// and an upstream that never saw the marker. Tokens are signed by the
// issuer's real key unless the row is about the key, so the property under
// test is the only reason a row can be refused.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gatewaystack/gatewaystack/audit"
	"github.com/gatewaystack/gatewaystack/auth"
	"github.com/gatewaystack/gatewaystack/config"
	gsmcp "github.com/gatewaystack/gatewaystack/mcp"
	"github.com/gatewaystack/gatewaystack/upstream"
)

// ---------------------------------------------------------------------------
// Fixtures.

// keySetServer is a JWKS endpoint on 127.0.0.1 whose keys a test chooses
// and which can fail on demand (500, garbage, no answer). It counts hits.
type keySetServer struct {
	URL  string
	hits atomic.Int64
	mode atomic.Int32 // one of the keySet* modes
	body atomic.Pointer[[]byte]
}

const (
	keySetOK int32 = iota
	keySet500
	keySetGarbage
	keySetHang
)

func newKeySetServer(t testing.TB, keys ...map[string]any) *keySetServer {
	t.Helper()
	s := &keySetServer{}
	s.setKeys(t, keys...)
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		switch s.mode.Load() {
		case keySet500:
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		case keySetGarbage:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`<html>maintenance</html>`))
			return
		case keySetHang:
			select {
			case <-r.Context().Done():
			case <-stop:
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(*s.body.Load())
	}))
	t.Cleanup(func() {
		close(stop)
		srv.Close()
	})
	s.URL = srv.URL + "/.well-known/jwks.json"
	return s
}

func (s *keySetServer) setKeys(t testing.TB, keys ...map[string]any) {
	t.Helper()
	if keys == nil {
		keys = []map[string]any{}
	}
	b := mustJSON(t, map[string]any{"keys": keys})
	s.body.Store(&b)
}

// rsaJWK is the public JWK of an RSA key (of any size) with extra members.
func rsaJWK(pub *rsa.PublicKey, kv ...any) map[string]any {
	m := map[string]any{"kty": "RSA", "n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes())}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// ecJWK is the public JWK of a P-256 key with extra members.
func ecJWK(t testing.TB, key *ecdsa.PrivateKey, kv ...any) map[string]any {
	t.Helper()
	pt, err := key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{"kty": "EC", "crv": "P-256", "x": b64(pt[1:33]), "y": b64(pt[33:])}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// issuerJWK is the issuer's published key as the default test JWKS has it.
func issuerJWK() map[string]any {
	return rsaJWK(&signingKey().PublicKey, "kid", signingKID, "alg", "RS256", "use", "sig")
}

// signInputWith returns input.signature, RS256 by key over input exactly as
// given (whatever its encoding).
func signInputWith(t testing.TB, key *rsa.PrivateKey, input string) string {
	t.Helper()
	return input + "." + b64(signRS256(t, key, input))
}

// rawToken signs the exact header and payload JSON texts with the issuer's
// key, so a token can carry duplicate names, invalid UTF-8 or a JSON value
// that is not an object.
func rawToken(t testing.TB, header, payload string) string {
	t.Helper()
	return signInputWith(t, signingKey(), b64([]byte(header))+"."+b64([]byte(payload)))
}

// issuerHeader is the JSON text of the header the minter uses.
const issuerHeader = `{"alg":"RS256","typ":"JWT","kid":"` + signingKID + `"}`

// claimsText is the JSON text of valid claims for alice on g, followed by
// extra members verbatim (duplicates included).
func claimsText(t testing.TB, g *gateway, extra string) string {
	t.Helper()
	s := string(mustJSON(t, g.minter.claims("alice", baselineScope)))
	if extra == "" {
		return s
	}
	return strings.TrimSuffix(s, "}") + "," + extra + "}"
}

// newVerifierGateway serves a gateway front (mcp.New) with the policy and
// recording upstream of a gateway built by newGateway, but with a verifier
// built here from an auth.VerifierConfig: for fields the configuration does
// not reach (a fake clock), or not yet. Its audience is its own URL.
func newVerifierGateway(t *testing.T, jwksURI string, mod func(*auth.VerifierConfig)) *gateway {
	t.Helper()
	var cfg *config.Config
	base := newGateway(t, gatewayOptions{configure: func(c *config.Config) { cfg = c }})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	g := &gateway{URL: u, MCP: u + "/mcp", PRM: u + "/.well-known/oauth-protected-resource/mcp",
		audit: &syncBuffer{}, upstream: base.upstream, client: base.client}
	g.minter = tokenMinter{audience: g.MCP}
	vc := auth.VerifierConfig{Issuer: testIssuer, Audience: g.MCP, JWKSURI: jwksURI,
		RefetchCooldown: time.Minute, HTTPClient: &http.Client{Timeout: 2 * time.Second}}
	if mod != nil {
		mod(&vc)
	}
	v, err := auth.NewVerifier(context.Background(), vc)
	if err != nil {
		_ = ln.Close()
		t.Fatalf("NewVerifier: %v", err)
	}
	t.Cleanup(func() { _ = v.Close() })
	sessions, err := gsmcp.NewSessions(nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gsmcp.New(gsmcp.Options{
		Endpoint: gsmcp.EndpointOptions{
			Resource:             g.MCP,
			Path:                 "/mcp",
			AuthorizationServers: []string{testIssuer},
			BaselineScopes:       cfg.Auth.BaselineScopes,
			StepUpScopes:         cfg.Auth.StepUpScopes,
		},
		Verifier: v,
		Ready:    v.Ready,
		Policy: gsmcp.PolicyOptions{
			Tools:     gsmcp.NewAuthorizer(cfg.Policy.Tools, cfg),
			Prompts:   gsmcp.NewAuthorizer(cfg.Policy.Prompts, cfg),
			Resources: gsmcp.NewAuthorizer(cfg.Policy.Resources, cfg),
		},
		Router: base.srv.Router,
		IdentityHeaders: upstream.HeaderNames{User: cfg.IdentityHeaders.User, Tenant: cfg.IdentityHeaders.Tenant,
			Scopes: cfg.IdentityHeaders.Scopes},
		Audit:    gsmcp.AuditOptions{Sink: audit.NewJSONSink(g.audit)},
		Sessions: sessions,
		HTTP:     gsmcp.HTTPOptions{MaxBodyBytes: cfg.Server.MaxBodyBytes, AllowedHosts: []string{ln.Addr().String()}},
		Version:  "test",
		Logger:   zerolog.Nop(),
	})
	if err != nil {
		_ = ln.Close()
		t.Fatalf("build gateway: %v", err)
	}
	hs := &httptest.Server{Listener: ln, Config: &http.Server{Handler: gw.Handler(), ReadHeaderTimeout: 5 * time.Second}}
	hs.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = gw.Close(ctx)
		hs.CloseClientConnections()
		hs.Close()
	})
	return g
}

// fakeClock is a settable clock for a verifier.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// ---------------------------------------------------------------------------
// The row runner.

// attack is one request: the Authorization header values to send and what
// the gateway must answer.
type attack struct {
	// auth returns the Authorization header values (nil: none).
	auth func(t testing.TB, g *gateway) []string
	// status is the expected status; 200 rows must reach the upstream once.
	status int
	// code is the challenge's error= ("" for a challenge without one);
	// ignored for 503, which carries no challenge.
	code string
	// reason is the JSON body's reason.
	reason string
}

// run sends a to g and asserts everything about the answer.
func (a attack) run(t *testing.T, g *gateway) response {
	t.Helper()
	values := a.auth(t, g)
	marker := "atk-" + randomHex(6)
	body := rpcBody(t, "tools/call", modernParams(map[string]any{"name": "rec__echo", "arguments": map[string]any{"marker": marker}}))
	h := hdr("Mcp-Protocol-Version", modernVersion, "Mcp-Method", "tools/call", "Mcp-Name", "rec__echo")
	if values != nil {
		h["Authorization"] = values
	}
	r := do(t, g.client, http.MethodPost, g.MCP, h, body)
	if r.StatusCode != a.status {
		t.Fatalf("status = %d, want %d; body %s; challenge %q", r.StatusCode, a.status, r.body, r.Header.Get("WWW-Authenticate"))
	}
	for _, v := range values {
		if tok := strings.TrimSpace(v[min(len(v), 7):]); len(tok) > 32 && strings.Contains(g.audit.String(), tok) {
			t.Fatal("the audit stream contains the raw token")
		}
	}
	if a.status == http.StatusOK {
		r.result(t)
		if got := len(g.upstream.runs(marker)); got != 1 {
			t.Fatalf("accepted request reached the upstream %d times, want 1", got)
		}
		return r
	}
	if g.upstream.sawMarker(marker) || len(g.upstream.runs(marker)) != 0 {
		t.Fatal("refused credentials reached the upstream")
	}
	vs := r.Header.Values("WWW-Authenticate")
	if a.status == http.StatusServiceUnavailable {
		if len(vs) != 0 {
			t.Errorf("a 503 carries a challenge %q: it would send the client to log in again", vs)
		}
		if r.Header.Get("Retry-After") == "" {
			t.Error("a 503 without Retry-After")
		}
	} else {
		if len(vs) != 1 {
			t.Fatalf("want exactly one WWW-Authenticate header, got %q", vs)
		}
		c := parseChallenge(t, vs[0])
		if c.Scheme != "Bearer" {
			t.Errorf("challenge scheme %q, want Bearer", c.Scheme)
		}
		if got, has := c.Params["error"]; got != a.code || has != (a.code != "") {
			t.Errorf("challenge error=%q (present %v), want %q: %q", got, has, a.code, vs[0])
		}
		if c.Params["resource_metadata"] != g.PRM {
			t.Errorf("challenge resource_metadata=%q, want %q", c.Params["resource_metadata"], g.PRM)
		}
	}
	var eb struct {
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(r.body, &eb); err != nil {
		t.Fatalf("error body is not JSON: %s", r.body)
	}
	if eb.Reason != a.reason {
		t.Errorf("reason = %q, want %q (body %s)", eb.Reason, a.reason, r.body)
	}
	return r
}

// Shorthands for rows.
func headers(values ...string) func(testing.TB, *gateway) []string {
	return func(testing.TB, *gateway) []string { return values }
}

func bearerOf(tok func(t testing.TB, g *gateway) string) func(testing.TB, *gateway) []string {
	return func(t testing.TB, g *gateway) []string { return []string{bearer(tok(t, g))} }
}

// ---------------------------------------------------------------------------
// The table.

// TestAttacks is the attack table at the HTTP level. Rows run against the
// default gateway unless they name another: one whose JWKS holds several
// keys, one whose JWKS holds keys unfit for the token, one configured to
// accept only at+jwt tokens.
func TestAttacks(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{})

	// An attacker's JWKS (and certificate URL) that counts its hits.
	evil := newKeySetServer(t, rsaJWK(&strangerKey().PublicKey, "kid", "evil", "alg", "RS256"))

	// A JWKS with two keys (a token without kid is ambiguous).
	twoKeys := newKeySetServer(t, issuerJWK(), rsaJWK(&strangerKey().PublicKey, "kid", "other", "alg", "RS256", "use", "sig"))
	gTwo := newGateway(t, gatewayOptions{configure: func(c *config.Config) { c.Auth.JWKSURI = twoKeys.URL }})

	// A JWKS whose other keys are unfit for an RS256 access token.
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	unfit := newKeySetServer(t,
		issuerJWK(),
		rsaJWK(&strangerKey().PublicKey, "kid", "enc", "alg", "RS256", "use", "enc"),
		rsaJWK(&strangerKey().PublicKey, "kid", "ps256", "alg", "PS256", "use", "sig"),
		ecJWK(t, ec, "kid", "ec", "alg", "ES256", "use", "sig"),
		rsaJWK(&weak.PublicKey, "kid", "weak", "alg", "RS256", "use", "sig"),
	)
	gUnfit := newGateway(t, gatewayOptions{configure: func(c *config.Config) { c.Auth.JWKSURI = unfit.URL }})

	// A verifier that accepts only RFC 9068 access tokens (typ at+jwt).
	// Wired directly: the config's auth.token_types reaches the verifier
	// only through mcp.Build.
	typed := newKeySetServer(t, issuerJWK())
	gTyp := newVerifierGateway(t, typed.URL, func(c *auth.VerifierConfig) { c.TokenTypes = []string{"at+jwt"} })

	// Token builders.
	valid := func(mut func(c map[string]any)) func(testing.TB, *gateway) string {
		return func(_ testing.TB, g *gateway) string {
			c := g.minter.claims("alice", baselineScope)
			if mut != nil {
				mut(c)
			}
			return g.minter.sign(c)
		}
	}
	withHeader := func(header map[string]any, key *rsa.PrivateKey, mut func(c map[string]any)) func(testing.TB, *gateway) string {
		return func(t testing.TB, g *gateway) string {
			c := g.minter.claims("alice", baselineScope)
			if mut != nil {
				mut(c)
			}
			return compactJWS(t, header, c, func(in string) []byte { return signRS256(t, key, in) })
		}
	}
	issuerHdr := func(kv ...any) map[string]any {
		h := map[string]any{"alg": "RS256", "typ": "JWT", "kid": signingKID}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(h, kv[i].(string))
			} else {
				h[kv[i].(string)] = kv[i+1]
			}
		}
		return h
	}
	raw := func(header, extra string) func(testing.TB, *gateway) string {
		return func(t testing.TB, g *gateway) string { return rawToken(t, header, claimsText(t, g, extra)) }
	}
	rawPayload := func(payload string) func(testing.TB, *gateway) string {
		return func(t testing.TB, g *gateway) string { return rawToken(t, issuerHeader, payload) }
	}
	now := time.Now()
	selfSigned := func(t testing.TB) string {
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "issuer.gatewaystack.test"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &strangerKey().PublicKey, strangerKey())
		if err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(der)
	}

	cases := []struct {
		name string
		gw   *gateway
		attack
	}{
		// --- The Authorization header.
		{name: "a valid token plus an empty second Authorization header is an invalid request",
			attack: attack{auth: func(t testing.TB, g *gateway) []string {
				return []string{bearer(g.minter.token("alice", baselineScope)), ""}
			},
				status: http.StatusBadRequest, code: "invalid_request", reason: auth.ReasonCredentialsDuplicate}},
		{name: "a Basic header plus a valid Bearer header is an invalid request",
			attack: attack{auth: func(t testing.TB, g *gateway) []string {
				return []string{"Basic YWxpY2U6c2VjcmV0", bearer(g.minter.token("alice", baselineScope))}
			}, status: http.StatusBadRequest, code: "invalid_request", reason: auth.ReasonCredentialsDuplicate}},
		{name: "the scheme in lower case (bearer) is accepted",
			attack: attack{auth: func(t testing.TB, g *gateway) []string {
				return []string{"bearer " + g.minter.token("alice", baselineScope)}
			},
				status: http.StatusOK}},
		{name: "the scheme in upper case (BEARER) is accepted",
			attack: attack{auth: func(t testing.TB, g *gateway) []string {
				return []string{"BEARER " + g.minter.token("alice", baselineScope)}
			},
				status: http.StatusOK}},
		{name: "several spaces between scheme and token are accepted",
			attack: attack{auth: func(t testing.TB, g *gateway) []string {
				return []string{"Bearer    " + g.minter.token("alice", baselineScope)}
			},
				status: http.StatusOK}},
		{name: "a tab right after the scheme is another scheme",
			attack: attack{auth: func(t testing.TB, g *gateway) []string {
				return []string{"Bearer\t" + g.minter.token("alice", baselineScope)}
			},
				status: http.StatusUnauthorized, code: "", reason: auth.ReasonSchemeUnsupported}},
		{name: "a tab between the space and the token is malformed",
			attack: attack{auth: func(t testing.TB, g *gateway) []string {
				return []string{"Bearer \t" + g.minter.token("alice", baselineScope)}
			},
				status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonTokenMalformed}},
		{name: "a second credential after a comma is malformed",
			attack: attack{auth: func(t testing.TB, g *gateway) []string {
				tok := g.minter.token("alice", baselineScope)
				return []string{"Bearer " + tok + ", Bearer " + tok}
			}, status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonTokenMalformed}},
		{name: "an Authorization header over 16 KiB is refused before it is split",
			attack: attack{auth: headers("Bearer " + strings.Repeat("a.", 9<<10)),
				status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonTokenTooLarge}},
		{name: "a token over 8 KiB is refused before it is decoded",
			attack: attack{auth: bearerOf(valid(func(c map[string]any) { c["pad"] = strings.Repeat("p", 7<<10) })),
				status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonTokenTooLarge}},

		// --- Serialization and base64url.
		{name: "a JWS JSON serialization is refused",
			attack: attack{auth: func(t testing.TB, g *gateway) []string {
				parts := strings.Split(g.minter.token("alice", baselineScope), ".")
				return []string{bearer(fmt.Sprintf(`{"payload":%q,"protected":%q,"signature":%q}`, parts[1], parts[0], parts[2]))}
			}, status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonTokenMalformed}},
		{name: "a padded header, correctly signed, is refused",
			attack: attack{auth: bearerOf(func(t testing.TB, g *gateway) string {
				h := base64.URLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"` + signingKID + `"}`))
				if !strings.HasSuffix(h, "=") {
					t.Fatalf("header %q has no padding", h)
				}
				return signInputWith(t, signingKey(), h+"."+b64(mustJSON(t, g.minter.claims("alice", baselineScope))))
			}), status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonTokenMalformed}},
		{name: "a payload in standard base64 ('+', '/'), correctly signed, is refused",
			attack: attack{auth: bearerOf(func(t testing.TB, g *gateway) string {
				for {
					c := g.minter.claims("alice", baselineScope)
					c["x"] = "??>>??>>" // encodes to '/' and '+' in standard base64
					p := base64.RawStdEncoding.EncodeToString(mustJSON(t, c))
					if strings.ContainsAny(p, "+/") {
						return signInputWith(t, signingKey(), b64([]byte(issuerHeader))+"."+p)
					}
				}
			}), status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonTokenMalformed}},
		{name: "a tab inside the token is refused",
			attack: attack{auth: func(t testing.TB, g *gateway) []string {
				tok := g.minter.token("alice", baselineScope)
				return []string{"Bearer " + tok[:10] + "\t" + tok[10:]}
			}, status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonTokenMalformed}},
		{name: "a header that is a JSON array is refused", attack: attack{auth: bearerOf(raw(`["RS256"]`, "")),
			status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonTokenMalformed}},
		{name: "a header that is a JSON string is refused", attack: attack{auth: bearerOf(raw(`"RS256"`, "")),
			status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonTokenMalformed}},
		{name: "a header that is a JSON number is refused", attack: attack{auth: bearerOf(raw(`256`, "")),
			status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonTokenMalformed}},
		{name: "a payload that is a JSON array is refused", attack: attack{auth: bearerOf(rawPayload(`[{"sub":"alice"}]`)),
			status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonTokenMalformed}},
		{name: "a payload that is a JSON string is refused", attack: attack{auth: bearerOf(rawPayload(`"alice"`)),
			status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonTokenMalformed}},
		{name: "a payload that is a JSON number is refused", attack: attack{auth: bearerOf(rawPayload(`42`)),
			status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonTokenMalformed}},
		{name: "invalid UTF-8 in the header is refused",
			attack: attack{auth: bearerOf(raw("{\"alg\":\"RS256\",\"kid\":\""+signingKID+"\",\"x\":\"\xff\xfe\"}", "")),
				status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonTokenMalformed}},
		{name: "invalid UTF-8 in the payload is refused",
			attack: attack{auth: bearerOf(raw(issuerHeader, "\"name\":\"al\xc3\x28ce\"")),
				status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonTokenMalformed}},

		// --- alg and kid.
		{name: "a header without alg is refused", attack: attack{auth: bearerOf(withHeader(issuerHdr("alg", nil), signingKey(), nil)),
			status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonAlgNotAllowed}},
		{name: "an alg that is not a string is refused", attack: attack{auth: bearerOf(withHeader(issuerHdr("alg", []any{"RS256"}), signingKey(), nil)),
			status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonAlgNotAllowed}},
		{name: "a header repeating alg is refused", attack: attack{auth: bearerOf(raw(`{"alg":"RS256","alg":"none","kid":"`+signingKID+`"}`, "")),
			status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonTokenMalformed}},
		{name: "a kid that is not a string is refused", attack: attack{auth: bearerOf(withHeader(issuerHdr("kid", 1), signingKey(), nil)),
			status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonTokenMalformed}},
		{name: "no kid is accepted when the JWKS holds exactly one key",
			attack: attack{auth: bearerOf(withHeader(issuerHdr("kid", nil), signingKey(), nil)), status: http.StatusOK}},
		{name: "no kid is refused when the JWKS holds several keys", gw: gTwo,
			attack: attack{auth: bearerOf(withHeader(issuerHdr("kid", nil), signingKey(), nil)),
				status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonKidMissing}},
		{name: "the same token with its kid is accepted by the several-key JWKS", gw: gTwo,
			attack: attack{auth: bearerOf(valid(nil)), status: http.StatusOK}},

		// --- Headers that carry or point at keys, and crit.
		{name: "jku pointing at the attacker's JWKS is refused, never fetched",
			attack: attack{auth: bearerOf(withHeader(map[string]any{"alg": "RS256", "kid": "evil", "jku": evil.URL}, strangerKey(), nil)),
				status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonHeaderNotAllowed}},
		{name: "jku with the issuer's kid is refused, never fetched",
			attack: attack{auth: bearerOf(withHeader(map[string]any{"alg": "RS256", "kid": signingKID, "jku": evil.URL}, strangerKey(), nil)),
				status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonHeaderNotAllowed}},
		{name: "x5u pointing at the attacker's server is refused, never fetched",
			attack: attack{auth: bearerOf(withHeader(map[string]any{"alg": "RS256", "kid": "evil", "x5u": evil.URL}, strangerKey(), nil)),
				status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonHeaderNotAllowed}},
		{name: "the attacker's key embedded as jwk is refused",
			attack: attack{auth: bearerOf(withHeader(map[string]any{"alg": "RS256", "jwk": rsaJWK(&strangerKey().PublicKey, "kid", "evil")}, strangerKey(), nil)),
				status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonHeaderNotAllowed}},
		{name: "the attacker's certificate embedded as x5c is refused",
			attack: attack{auth: func(t testing.TB, g *gateway) []string {
				return []string{bearer(withHeader(map[string]any{"alg": "RS256", "x5c": []any{selfSigned(t)}}, strangerKey(), nil)(t, g))}
			}, status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonHeaderNotAllowed}},
		{name: "a crit header is refused", attack: attack{auth: bearerOf(withHeader(issuerHdr("crit", []any{"exp"}), signingKey(), nil)),
			status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonHeaderNotAllowed}},

		// --- JWKS keys unfit for the token.
		{name: "a key published for encryption (use=enc) is not used", gw: gUnfit,
			attack: attack{auth: bearerOf(withHeader(map[string]any{"alg": "RS256", "kid": "enc"}, strangerKey(), nil)),
				status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonKeyUnknown}},
		{name: "a key published for another alg (PS256) is not used", gw: gUnfit,
			attack: attack{auth: bearerOf(withHeader(map[string]any{"alg": "RS256", "kid": "ps256"}, strangerKey(), nil)),
				status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonKeyUnknown}},
		{name: "an EC key is not used for RS256", gw: gUnfit,
			attack: attack{auth: bearerOf(withHeader(map[string]any{"alg": "RS256", "kid": "ec"}, strangerKey(), nil)),
				status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonKeyUnknown}},
		{name: "an RSA key under 2048 bits is not used", gw: gUnfit,
			attack: attack{auth: bearerOf(withHeader(map[string]any{"alg": "RS256", "kid": "weak"}, weak, nil)),
				status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonKeyUnknown}},
		{name: "the issuer's key beside the unfit ones is used", gw: gUnfit,
			attack: attack{auth: bearerOf(valid(nil)), status: http.StatusOK}},

		// --- Configured token types.
		{name: "typ JWT is refused when only at+jwt is accepted", gw: gTyp,
			attack: attack{auth: bearerOf(withHeader(issuerHdr("typ", "JWT"), signingKey(), nil)),
				status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonTokenTypeNotAllowed}},
		{name: "no typ is refused when only at+jwt is accepted", gw: gTyp,
			attack: attack{auth: bearerOf(withHeader(issuerHdr("typ", nil), signingKey(), nil)),
				status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonTokenTypeNotAllowed}},
		{name: "typ at+jwt is accepted when only at+jwt is accepted", gw: gTyp,
			attack: attack{auth: bearerOf(withHeader(issuerHdr("typ", "at+jwt"), signingKey(), nil)), status: http.StatusOK}},
		{name: "typ application/at+jwt is accepted as at+jwt", gw: gTyp,
			attack: attack{auth: bearerOf(withHeader(issuerHdr("typ", "application/at+jwt"), signingKey(), nil)), status: http.StatusOK}},

		// --- Time claims.
		{name: "exp as a string is refused", attack: attack{auth: bearerOf(valid(func(c map[string]any) { c["exp"] = fmt.Sprint(now.Add(time.Hour).Unix()) })),
			status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonClaimInvalid}},
		{name: "iat as a string is refused", attack: attack{auth: bearerOf(valid(func(c map[string]any) { c["iat"] = "yesterday" })),
			status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonClaimInvalid}},
		{name: "exp of 1e300 is refused", attack: attack{auth: bearerOf(valid(func(c map[string]any) { c["exp"] = 1e300 })),
			status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonClaimInvalid}},
		{name: "a negative exp is refused", attack: attack{auth: bearerOf(valid(func(c map[string]any) { c["exp"] = -1 })),
			status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonClaimInvalid}},
		{name: "a negative nbf is refused", attack: attack{auth: bearerOf(valid(func(c map[string]any) { c["nbf"] = -1e18 })),
			status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonClaimInvalid}},
		{name: "exp of 0 is refused", attack: attack{auth: bearerOf(valid(func(c map[string]any) { c["exp"] = 0 })),
			status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonClaimInvalid}},
		{name: "exp - iat over the 24 h maximum lifetime is refused",
			attack: attack{auth: bearerOf(valid(func(c map[string]any) {
				c["iat"] = now.Add(-time.Hour).Unix()
				c["nbf"] = c["iat"]
				c["exp"] = now.Add(24 * time.Hour).Unix()
			})), status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonTokenLifetimeTooLong}},
		{name: "without iat, exp more than 24 h ahead is refused",
			attack: attack{auth: bearerOf(valid(func(c map[string]any) {
				delete(c, "iat")
				c["exp"] = now.Add(25 * time.Hour).Unix()
			})), status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonTokenLifetimeTooLong}},
		{name: "a lifetime of 23 h is accepted",
			attack: attack{auth: bearerOf(valid(func(c map[string]any) { c["exp"] = now.Add(23 * time.Hour).Unix() })), status: http.StatusOK}},

		// --- ID tokens presented as access tokens.
		{name: "a token with nonce (an ID token) is refused",
			attack: attack{auth: bearerOf(valid(func(c map[string]any) { c["nonce"] = "n-0S6_WzA2Mj" })),
				status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonIDTokenPresented}},
		{name: "a token with at_hash (an ID token) is refused",
			attack: attack{auth: bearerOf(valid(func(c map[string]any) { c["at_hash"] = "77QmUPtjPfzWtF2AnpK9RQ" })),
				status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonIDTokenPresented}},
		{name: "an ID token whose aud is the client id is refused by the audience check",
			attack: attack{auth: bearerOf(valid(func(c map[string]any) { c["aud"] = c["client_id"] })),
				status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonAudienceMismatch}},

		// --- Duplicate and case-variant claim names.
		{name: "sub twice is refused", attack: attack{auth: bearerOf(raw(issuerHeader, `"sub":"mallory"`)),
			status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonClaimDuplicate}},
		{name: "sub and Sub are refused", attack: attack{auth: bearerOf(raw(issuerHeader, `"Sub":"mallory"`)),
			status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonClaimDuplicate}},
		{name: "sub and ſub (folds to sub) are refused", attack: attack{auth: bearerOf(raw(issuerHeader, `"ſub":"mallory"`)),
			status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonClaimDuplicate}},
		{name: "exp twice is refused", attack: attack{auth: bearerOf(raw(issuerHeader, fmt.Sprintf(`"exp":%d`, now.Add(time.Hour).Unix()))),
			status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonClaimDuplicate}},
		{name: "aud twice is refused", attack: attack{auth: bearerOf(raw(issuerHeader, `"aud":"https://other.example/mcp"`)),
			status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonClaimDuplicate}},
		{name: "a registered claim only in another letter case is refused",
			attack: attack{auth: bearerOf(valid(func(c map[string]any) { c["Scope"] = entitleScope })),
				status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonClaimDuplicate}},

		// --- Identity values that end up in upstream headers.
		{name: "sub with CR LF is refused", attack: attack{auth: bearerOf(valid(func(c map[string]any) { c["sub"] = "alice\r\nX-User-Id: admin" })),
			status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonClaimInvalid}},
		{name: "sub with NUL is refused", attack: attack{auth: bearerOf(valid(func(c map[string]any) { c["sub"] = "alice\x00admin" })),
			status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonClaimInvalid}},
		{name: "sub with an escape sequence is refused", attack: attack{auth: bearerOf(valid(func(c map[string]any) { c["sub"] = "alice\x1b[2J" })),
			status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonClaimInvalid}},
		{name: "sub over 256 bytes is refused", attack: attack{auth: bearerOf(valid(func(c map[string]any) { c["sub"] = strings.Repeat("a", 257) })),
			status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonClaimInvalid}},
		{name: "a tenant with LF is refused", attack: attack{auth: bearerOf(valid(func(c map[string]any) { c["org_id"] = "acme\nX-Org-Id: evil" })),
			status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonClaimInvalid}},
		{name: "a client_id with a control character is refused", attack: attack{auth: bearerOf(valid(func(c map[string]any) { c["client_id"] = "app\x07" })),
			status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonClaimInvalid}},

		// --- scope and scp.
		{name: "scp as an array grants its scopes",
			attack: attack{auth: bearerOf(valid(func(c map[string]any) { delete(c, "scope"); c["scp"] = []any{baselineScope} })), status: http.StatusOK}},
		{name: "scope as a number is refused", attack: attack{auth: bearerOf(valid(func(c map[string]any) { c["scope"] = 1 })),
			status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonClaimInvalid}},
		{name: "scp holding a non-string is refused", attack: attack{auth: bearerOf(valid(func(c map[string]any) { c["scp"] = []any{baselineScope, true} })),
			status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonClaimInvalid}},
	}

	t.Run("rows", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				gw := tc.gw
				if gw == nil {
					gw = g
				}
				tc.run(t, gw)
			})
		}
	})
	if n := evil.hits.Load(); n != 0 {
		t.Errorf("the attacker's JWKS server was fetched %d times; jku, x5u and jwk must never be followed", n)
	}
}

// scope and scp are united: a step-up scope in scp and the baseline in
// scope together reach a tool that needs the step-up scope, and the
// upstream is told both.
func TestAttackScopeAndScpAreUnited(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{})
	c := g.minter.claims("alice", baselineScope)
	c["scp"] = []any{stepUpScope}
	tok := g.minter.sign(c)
	marker := "scp-" + randomHex(6)
	g.modernCall(t, tok, "rec__write_thing", map[string]any{"marker": marker}).result(t)
	runs := g.upstream.runs(marker)
	if len(runs) != 1 {
		t.Fatalf("upstream runs = %d, want 1", len(runs))
	}
	if got := runs[0].Header.Get("X-User-Scopes"); got != baselineScope+" "+stepUpScope {
		t.Errorf("X-User-Scopes = %q, want %q", got, baselineScope+" "+stepUpScope)
	}
	// Control: without scp the step-up tool is refused.
	if r := g.modernCall(t, g.minter.token("alice", baselineScope), "rec__write_thing", nil); r.StatusCode == http.StatusOK {
		t.Fatalf("without scp the step-up tool answered %d: %s", r.StatusCode, r.body)
	}
}

// A kid is opaque: traversal and SQL strings are unknown kids, all of them
// together costing one JWKS refetch per cooldown; oversized kids are
// refused before any lookup and cost none.
func TestAttackKidsAreOpaqueAndBounded(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{})
	base := settleJWKS(t, g)
	kidToken := func(kid string) func(testing.TB, *gateway) []string {
		return func(t testing.TB, g *gateway) []string {
			return []string{bearer(compactJWS(t, map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid}, g.minter.claims("alice", baselineScope),
				func(in string) []byte { return signRS256(t, signingKey(), in) }))}
		}
	}
	for _, tc := range []struct {
		name string
		attack
	}{
		{"a kid of 10 KB is refused as too large", attack{auth: kidToken(strings.Repeat("k", 10<<10)),
			status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonTokenTooLarge}},
		{"a kid of 1 KB is refused as malformed", attack{auth: kidToken(strings.Repeat("k", 1<<10)),
			status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonTokenMalformed}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, g) })
	}
	if got := g.jwks.fetches.Load() - base; got != 0 {
		t.Fatalf("oversized kids caused %d JWKS fetches, want 0", got)
	}
	for _, kid := range []string{"../../etc/passwd", "' OR 1=1 --", `"; DROP TABLE keys; --`, "..%2f..%2fetc%2fpasswd", "kid-" + randomHex(4)} {
		t.Run("kid "+kid, func(t *testing.T) {
			attack{auth: kidToken(kid), status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonKeyUnknown}.run(t, g)
		})
	}
	if got := g.jwks.fetches.Load() - base; got != 1 {
		t.Fatalf("five unknown kids within one cooldown caused %d JWKS fetches, want exactly 1", got)
	}
	// Known tokens keep working.
	g.modernCall(t, g.minter.token("bob", baselineScope), "rec__echo", nil).result(t)
}

// While the JWKS endpoint fails, the last good key set keeps verifying
// for MaxStale after the last successful fetch; after that every token,
// also one already verified, is refused with 503 jwks_unavailable (never a
// 401 that would send the client to log in again) and never reaches the
// upstream; when the endpoint is back, the next fetch (at most one per
// refetch cooldown) restores service.
func TestAttackStaleKeySetFailsClosed(t *testing.T) {
	t.Parallel()
	const maxStale, cooldown = 10 * time.Minute, time.Minute
	for _, mode := range []struct {
		name string
		mode int32
	}{{"500", keySet500}, {"garbage", keySetGarbage}, {"timeout", keySetHang}} {
		t.Run("the JWKS endpoint answers "+mode.name, func(t *testing.T) {
			t.Parallel()
			jwks := newKeySetServer(t, issuerJWK())
			clk := &fakeClock{}
			clk.ns.Store(time.Now().UnixNano())
			g := newVerifierGateway(t, jwks.URL, func(c *auth.VerifierConfig) {
				c.Now, c.MaxStale, c.RefetchCooldown = clk.Now, maxStale, cooldown
				c.HTTPClient = &http.Client{Timeout: 300 * time.Millisecond}
			})
			// Tokens live an hour: the clock moves by minutes below.
			hourToken := func() string {
				c := g.minter.claims("alice", baselineScope)
				c["exp"] = clk.Now().Add(time.Hour).Unix()
				return g.minter.sign(c)
			}
			ok := attack{auth: func(testing.TB, *gateway) []string { return []string{bearer(hourToken())} }, status: http.StatusOK}
			cachedTok := hourToken()
			cached := attack{auth: headers(bearer(cachedTok)), status: http.StatusOK}
			ok.run(t, g)
			cached.run(t, g)

			jwks.mode.Store(mode.mode)
			clk.Advance(maxStale / 2)
			// The endpoint fails (an unknown kid makes the verifier try it)...
			hits := jwks.hits.Load()
			unknown := attack{auth: func(t testing.TB, g *gateway) []string {
				return []string{bearer(compactJWS(t, map[string]any{"alg": "RS256", "kid": "rotated-" + randomHex(3)}, g.minter.claims("alice", baselineScope),
					func(in string) []byte { return signRS256(t, signingKey(), in) }))}
			}, status: http.StatusUnauthorized, code: "invalid_token", reason: auth.ReasonKeyUnknown}
			unknown.run(t, g)
			if jwks.hits.Load() == hits {
				t.Fatal("the unknown kid did not make the verifier try the failing endpoint")
			}
			// ...and within MaxStale the last good set still verifies.
			ok.run(t, g)
			cached.run(t, g)

			clk.Advance(maxStale/2 + time.Second)
			down := attack{status: http.StatusServiceUnavailable, reason: auth.ReasonJWKSUnavailable}
			down.auth = ok.auth
			down.run(t, g)
			down.auth = cached.auth
			down.run(t, g)

			// The endpoint is back, but within the cooldown nothing is
			// fetched: still 503.
			jwks.mode.Store(keySetOK)
			hits = jwks.hits.Load()
			down.run(t, g)
			if got := jwks.hits.Load() - hits; got != 0 {
				t.Fatalf("%d JWKS fetches within the cooldown, want 0", got)
			}
			clk.Advance(cooldown + time.Second)
			ok.run(t, g)
			cached.run(t, g)
			if got := jwks.hits.Load() - hits; got != 1 {
				t.Errorf("recovery took %d JWKS fetches, want 1", got)
			}
		})
	}
}

// Many requests at once while the key set is stale cost at most one JWKS
// fetch per cooldown, and all of them are refused.
func TestAttackStaleKeySetFloodCostsOneFetch(t *testing.T) {
	t.Parallel()
	jwks := newKeySetServer(t, issuerJWK())
	clk := &fakeClock{}
	clk.ns.Store(time.Now().UnixNano())
	g := newVerifierGateway(t, jwks.URL, func(c *auth.VerifierConfig) {
		c.Now, c.MaxStale, c.RefetchCooldown = clk.Now, 10*time.Minute, time.Minute
	})
	attack{auth: func(testing.TB, *gateway) []string { return []string{bearer(g.minter.token("alice", baselineScope))} },
		status: http.StatusOK}.run(t, g)
	jwks.mode.Store(keySet500)
	clk.Advance(11 * time.Minute)
	hits := jwks.hits.Load()
	tokens := make([]string, 30)
	for i := range tokens {
		tokens[i] = g.minter.token("alice", baselineScope)
	}
	var wg sync.WaitGroup
	statuses := make([]int, len(tokens))
	for i := range tokens {
		wg.Go(func() {
			h, body := g.modernRequest(tokens[i], "rec__echo", nil)
			r, err := send(g.client, http.MethodPost, g.MCP, h, body)
			if err != nil {
				t.Error(err)
				return
			}
			statuses[i] = r.StatusCode
		})
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusServiceUnavailable {
			t.Errorf("request %d: status %d, want 503", i, s)
		}
	}
	if got := jwks.hits.Load() - hits; got != 1 {
		t.Errorf("30 requests with a stale key set caused %d JWKS fetches, want exactly 1", got)
	}
}
