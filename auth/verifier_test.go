package auth

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNewVerifierRefusesUnsafeConfig(t *testing.T) {
	t.Parallel()
	base := VerifierConfig{Issuer: testIssuer, Audience: testAudience, JWKSURI: "http://127.0.0.1:1/jwks"}
	tests := []struct {
		name string
		mod  func(*VerifierConfig)
		want string
	}{
		{"an empty issuer is refused", func(c *VerifierConfig) { c.Issuer = "" }, "issuer"},
		{"an empty audience is refused", func(c *VerifierConfig) { c.Audience = "" }, "audience"},
		{"an empty JWKS URI is refused", func(c *VerifierConfig) { c.JWKSURI = "" }, "jwks_uri"},
		{"alg none is refused", func(c *VerifierConfig) { c.Algorithms = []string{"RS256", "none"} }, `"none"`},
		{"HS256 is refused", func(c *VerifierConfig) { c.Algorithms = []string{"HS256"} }, `"HS256"`},
		{"an unknown algorithm is refused", func(c *VerifierConfig) { c.Algorithms = []string{"RS257"} }, `"RS257"`},
		// Regression invariant: the unknown-kid refetch limit cannot be configured away.
		{"a negative refetch cooldown is refused", func(c *VerifierConfig) { c.RefetchCooldown = -time.Second }, "negative"},
		{"a negative skew is refused", func(c *VerifierConfig) { c.Skew = -time.Second }, "negative"},
		{"a negative max lifetime is refused", func(c *VerifierConfig) { c.MaxLifetime = -time.Second }, "negative"},
		{"a negative max stale is refused", func(c *VerifierConfig) { c.MaxStale = -time.Second }, "negative"},
		{"an empty token type is refused", func(c *VerifierConfig) { c.TokenTypes = []string{"at+jwt", " "} }, "token types"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := base
			tt.mod(&cfg)
			v, err := NewVerifier(context.Background(), cfg)
			if err == nil {
				_ = v.Close()
				t.Fatal("NewVerifier: want an error, got none")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestVerifyBuildsTheCanonicalIdentity(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, pubKey{"kid-a", keyA()})
	clk := newClock()
	now := clk.Now()
	exp := now.Add(7 * time.Minute).Truncate(time.Second)
	tests := []struct {
		name   string
		mod    func(VerifierConfig) VerifierConfig
		claims map[string]any
		want   Identity // Claims is not compared
	}{
		{
			name: "every field is read from its claim",
			claims: map[string]any{
				"sub": "alice", "org_id": "acme", "scope": "tool:read tool:write", "permissions": []any{"notes:admin", "tool:read"},
				"roles": []any{"admin", "editor"}, "client_id": "inspector", "azp": "other", "jti": "tok-1", "exp": exp.Unix(),
			},
			want: Identity{Subject: "alice", Tenant: "acme", Scopes: []string{"tool:read", "tool:write", "notes:admin"},
				Roles: []string{"admin", "editor"}, ClientID: "inspector", TokenID: "tok-1", ExpiresAt: exp},
		},
		{
			name:   "scp as a string, scope and permissions are merged without duplicates, in token order",
			claims: map[string]any{"sub": "bob", "scope": "a b", "scp": "b c", "permissions": []any{"d", "a"}, "exp": exp.Unix()},
			want:   Identity{Subject: "bob", Scopes: []string{"a", "b", "c", "d"}, ExpiresAt: exp},
		},
		{
			name:   "scp as an array is read too",
			claims: map[string]any{"sub": "bob", "scp": []any{"x:read", "x:write"}, "exp": exp.Unix()},
			want:   Identity{Subject: "bob", Scopes: []string{"x:read", "x:write"}, ExpiresAt: exp},
		},
		{
			name:   "azp is the client id when client_id is absent",
			claims: map[string]any{"sub": "bob", "azp": "claude", "exp": exp.Unix()},
			want:   Identity{Subject: "bob", ClientID: "claude", ExpiresAt: exp},
		},
		{
			name:   "roles may be a space-separated string",
			claims: map[string]any{"sub": "bob", "roles": "sales support", "exp": exp.Unix()},
			want:   Identity{Subject: "bob", Roles: []string{"sales", "support"}, ExpiresAt: exp},
		},
		{
			name:   "the tenant comes from the configured claim",
			mod:    func(c VerifierConfig) VerifierConfig { c.TenantClaim = "tid"; c.RolesClaim = "groups"; return c },
			claims: map[string]any{"sub": "bob", "org_id": "ignored", "tid": "t-42", "groups": []any{"g1"}, "roles": []any{"ignored"}, "exp": exp.Unix()},
			want:   Identity{Subject: "bob", Tenant: "t-42", Roles: []string{"g1"}, ExpiresAt: exp},
		},
		{
			name:   "a null tenant is no tenant",
			claims: map[string]any{"sub": "bob", "org_id": nil, "exp": exp.Unix()},
			want:   Identity{Subject: "bob", ExpiresAt: exp},
		},
		// Regression invariant: every scope is one RFC 6749 scope token, so X-User-Scopes splits back into exactly these.
		{
			name:   "permissions that are not scope tokens are dropped",
			claims: map[string]any{"sub": "bob", "permissions": []any{"tool:read notes:admin", "", "ok", "bad\"quote", 7, "bad\r\nx"}, "exp": exp.Unix()},
			want:   Identity{Subject: "bob", Scopes: []string{"ok"}, ExpiresAt: exp},
		},
		{
			name:   "a subject of exactly 256 characters is accepted",
			claims: map[string]any{"sub": strings.Repeat("s", 256), "exp": exp.Unix()},
			want:   Identity{Subject: strings.Repeat("s", 256), ExpiresAt: exp},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := verifierFor(t, srv, clk, func(c *VerifierConfig) {
				if tt.mod != nil {
					*c = tt.mod(*c)
				}
			})
			cl := tt.claims
			cl["iss"], cl["aud"] = testIssuer, testAudience
			got, err := v.Verify(context.Background(), mint(keyA(), "kid-a", cl))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.Claims["sub"] != tt.claims["sub"] || got.Claims["iss"] != testIssuer {
				t.Errorf("Claims = %v, want the token's claims", got.Claims)
			}
			if !got.ExpiresAt.Equal(exp) {
				t.Errorf("ExpiresAt = %v, want %v", got.ExpiresAt, exp)
			}
			got.Claims, got.ExpiresAt, tt.want.ExpiresAt = nil, time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Identity:\n got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestVerifyRejectsBadTokens(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, pubKey{"kid-a", keyA()})
	clk := newClock()
	v := verifierFor(t, srv, clk, func(c *VerifierConfig) { c.Algorithms = []string{"RS256", "PS256"} })
	now := clk.Now()
	with := func(mod func(map[string]any)) map[string]any {
		c := claims(now)
		mod(c)
		return c
	}
	hdr := func(kv ...any) map[string]any {
		h := map[string]any{"alg": "RS256", "typ": "JWT", "kid": "kid-a"}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(h, kv[i].(string))
			} else {
				h[kv[i].(string)] = kv[i+1]
			}
		}
		return h
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&keyA().PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	valid := mint(keyA(), "kid-a", claims(now))
	parts := strings.Split(valid, ".")

	tests := []struct {
		name   string
		token  string
		status int
		code   string
		reason string
	}{
		{"an empty token is malformed", "", 401, CodeInvalidToken, ReasonTokenMalformed},
		{"garbage is malformed", "not-a-jwt", 401, CodeInvalidToken, ReasonTokenMalformed},
		{"two parts are malformed", parts[0] + "." + parts[1], 401, CodeInvalidToken, ReasonTokenMalformed},
		{"a header that is not base64url is malformed", "%%%." + parts[1] + "." + parts[2], 401, CodeInvalidToken, ReasonTokenMalformed},
		{"a header that is not a JSON object is malformed", b64([]byte(`["RS256"]`)) + "." + parts[1] + "." + parts[2], 401, CodeInvalidToken, ReasonTokenMalformed},
		{"a five-part JWE is refused as encrypted", "a.b.c.d.e", 401, CodeInvalidToken, ReasonTokenEncrypted},
		{"a token over the size limit is refused before parsing", strings.Repeat("a", DefaultMaxTokenBytes+1), 401, CodeInvalidToken, ReasonTokenTooLarge},
		{"alg none is refused", signing(hdr("alg", "none"), claims(now)) + ".", 401, CodeInvalidToken, ReasonAlgNotAllowed},
		{"alg None (any case) is refused", signing(hdr("alg", "None"), claims(now)) + ".", 401, CodeInvalidToken, ReasonAlgNotAllowed},
		{"HS256 signed with the RSA public key bytes is refused", signHMAC(pubPEM, "HS256", hdr("alg", "HS256"), claims(now)), 401, CodeInvalidToken, ReasonAlgNotAllowed},
		{"HS256 signed with the DER public key is refused", signHMAC(pubDER, "HS256", hdr("alg", "HS256"), claims(now)), 401, CodeInvalidToken, ReasonAlgNotAllowed},
		{"a header alg of RS512 over an RS256 signature is refused", signRSA(keyA(), "RS256", hdr("alg", "RS512"), claims(now)), 401, CodeInvalidToken, ReasonAlgNotAllowed},
		{"an allowed header alg (PS256) is refused when the key is published for RS256", signRSA(keyA(), "RS256", hdr("alg", "PS256"), claims(now)), 401, CodeInvalidToken, ReasonKeyUnknown},
		{"a missing alg is refused", signRSA(keyA(), "RS256", hdr("alg", nil), claims(now)), 401, CodeInvalidToken, ReasonAlgNotAllowed},
		{"a non-string alg is refused", signRSA(keyA(), "RS256", hdr("alg", []any{"RS256"}), claims(now)), 401, CodeInvalidToken, ReasonAlgNotAllowed},
		{"a non-string kid is malformed", signRSA(keyA(), "RS256", hdr("kid", 1), claims(now)), 401, CodeInvalidToken, ReasonTokenMalformed},
		{"a jku header is refused, never fetched", signRSA(keyA(), "RS256", hdr("jku", srv.URL+"/evil"), claims(now)), 401, CodeInvalidToken, ReasonHeaderNotAllowed},
		{"an embedded jwk header is refused", signRSA(keyA(), "RS256", hdr("jwk", map[string]any{"kty": "RSA"}), claims(now)), 401, CodeInvalidToken, ReasonHeaderNotAllowed},
		{"an x5u header is refused", signRSA(keyA(), "RS256", hdr("x5u", "http://x"), claims(now)), 401, CodeInvalidToken, ReasonHeaderNotAllowed},
		{"a crit header is refused", signRSA(keyA(), "RS256", hdr("crit", []any{"exp"}), claims(now)), 401, CodeInvalidToken, ReasonHeaderNotAllowed},
		{"a valid signature by an unknown key reusing a real kid is refused", mint(keyC(), "kid-a", claims(now)), 401, CodeInvalidToken, ReasonSignatureInvalid},
		{"a tampered payload is refused", parts[0] + "." + b64(mustJSON(with(func(c map[string]any) { c["sub"] = "admin" }))) + "." + parts[2], 401, CodeInvalidToken, ReasonSignatureInvalid},
		{"a truncated signature is refused", parts[0] + "." + parts[1] + "." + parts[2][:20], 401, CodeInvalidToken, ReasonSignatureInvalid},
		{"an expired token beyond the skew is refused", mint(keyA(), "kid-a", with(func(c map[string]any) { c["exp"] = now.Add(-61 * time.Second).Unix() })), 401, CodeInvalidToken, ReasonTokenExpired},
		{"a token whose nbf is beyond the skew in the future is refused", mint(keyA(), "kid-a", with(func(c map[string]any) { c["nbf"] = now.Add(2 * time.Minute).Unix() })), 401, CodeInvalidToken, ReasonTokenNotYetValid},
		{"a token issued beyond the skew in the future is refused", mint(keyA(), "kid-a", with(func(c map[string]any) { c["iat"] = now.Add(2 * time.Minute).Unix() })), 401, CodeInvalidToken, ReasonTokenNotYetValid},
		{"a wrong issuer is refused", mint(keyA(), "kid-a", with(func(c map[string]any) { c["iss"] = "https://issuer.test" })), 401, CodeInvalidToken, ReasonIssuerMismatch},
		{"a wrong audience is refused", mint(keyA(), "kid-a", with(func(c map[string]any) { c["aud"] = "https://gateway.local/api" })), 401, CodeInvalidToken, ReasonAudienceMismatch},
		{"an audience array without ours is refused", mint(keyA(), "kid-a", with(func(c map[string]any) { c["aud"] = []any{"a", "b"} })), 401, CodeInvalidToken, ReasonAudienceMismatch},
		{"a missing audience is refused", mint(keyA(), "kid-a", with(func(c map[string]any) { delete(c, "aud") })), 401, CodeInvalidToken, ReasonAudienceMismatch},
		{"a missing exp is refused", mint(keyA(), "kid-a", with(func(c map[string]any) { delete(c, "exp") })), 401, CodeInvalidToken, ReasonClaimMissing},
		{"a missing sub is refused", mint(keyA(), "kid-a", with(func(c map[string]any) { delete(c, "sub") })), 401, CodeInvalidToken, ReasonClaimMissing},
		{"an empty sub is refused", mint(keyA(), "kid-a", with(func(c map[string]any) { c["sub"] = "" })), 401, CodeInvalidToken, ReasonClaimInvalid},
		{"a sub with CR/LF is refused", mint(keyA(), "kid-a", with(func(c map[string]any) { c["sub"] = "alice\r\nX-User-Id: admin" })), 401, CodeInvalidToken, ReasonClaimInvalid},
		{"a sub with a lone LF is refused", mint(keyA(), "kid-a", with(func(c map[string]any) { c["sub"] = "alice\nbob" })), 401, CodeInvalidToken, ReasonClaimInvalid},
		{"a sub over 256 characters is refused", mint(keyA(), "kid-a", with(func(c map[string]any) { c["sub"] = strings.Repeat("s", 257) })), 401, CodeInvalidToken, ReasonClaimInvalid},
		{"a tenant with CR/LF is refused", mint(keyA(), "kid-a", with(func(c map[string]any) { c["org_id"] = "acme\r\nX: y" })), 401, CodeInvalidToken, ReasonClaimInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := v.Verify(context.Background(), tt.token)
			authError(t, err, tt.status, tt.code, tt.reason)
			if id.Subject != "" {
				t.Errorf("a refused token returned an identity: %+v", id)
			}
		})
	}
}

func TestVerifyHonoursSkewAndAudienceArrays(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, pubKey{"kid-a", keyA()})
	clk := newClock()
	v := verifierFor(t, srv, clk, nil)
	now := clk.Now()
	kidA := map[string]any{"alg": "RS256", "kid": "kid-a"}
	tests := []struct {
		name   string
		header map[string]any
		mod    func(map[string]any)
	}{
		{"a token expired within the skew is accepted", kidA, func(c map[string]any) { c["exp"] = now.Add(-30 * time.Second).Unix() }},
		{"a token whose nbf is within the skew is accepted", kidA, func(c map[string]any) { c["nbf"] = now.Add(30 * time.Second).Unix() }},
		{"an audience array containing ours is accepted", kidA, func(c map[string]any) { c["aud"] = []any{"https://other", testAudience} }},
		{"a token without kid is accepted when the set has one key", map[string]any{"alg": "RS256"}, func(c map[string]any) {}},
		{"a token without nbf and iat is accepted", kidA, func(c map[string]any) { delete(c, "nbf"); delete(c, "iat") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := claims(now)
			tt.mod(c)
			tok := signRSA(keyA(), "RS256", tt.header, c)
			if _, err := v.Verify(context.Background(), tok); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

func TestVerifyPS256WhenConfigured(t *testing.T) {
	t.Parallel()
	// The key is published without "alg": it may verify RS256 and PS256.
	srv := newJWKSServer(t)
	srv.setDoc(t, jwkOf(t, keyA(), "kid", "kid-a", "use", "sig"))
	clk := newClock()
	ps := signRSA(keyA(), "PS256", map[string]any{"alg": "PS256", "kid": "kid-a"}, claims(clk.Now()))
	v := verifierFor(t, srv, clk, func(c *VerifierConfig) { c.Algorithms = []string{"RS256", "PS256"} })
	if _, err := v.Verify(context.Background(), ps); err != nil {
		t.Errorf("PS256 with RS256,PS256 configured: %v", err)
	}
	// An allowed header alg over a signature made with another one.
	_, err := v.Verify(context.Background(), signRSA(keyA(), "RS256", map[string]any{"alg": "PS256", "kid": "kid-a"}, claims(clk.Now())))
	authError(t, err, 401, CodeInvalidToken, ReasonSignatureInvalid)
	rsOnly := verifierFor(t, srv, clk, nil)
	_, err = rsOnly.Verify(context.Background(), ps)
	authError(t, err, 401, CodeInvalidToken, ReasonAlgNotAllowed)
}

// The JWKS is loaded on demand when a request arrives before the
// background warm-up has succeeded.
func TestVerifyFetchesTheJWKSOnDemandOnceItIsReachable(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, pubKey{"kid-a", keyA()})
	srv.down.Store(true)
	clk := newClock()
	v := verifierFor(t, srv, clk, nil)

	// Wait until the warm-up has failed twice: it is now sleeping in its
	// backoff (at least 1s), so the next fetch is the request's own.
	deadline := time.Now().Add(10 * time.Second)
	for srv.fetches.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the warm-up did not retry: %d fetches", srv.fetches.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if v.Ready() {
		t.Fatal("Ready() with the JWKS down")
	}
	_, err := v.Verify(context.Background(), mint(keyA(), "kid-a", claims(clk.Now())))
	authError(t, err, http.StatusServiceUnavailable, "", ReasonJWKSUnavailable)

	srv.down.Store(false)
	before := srv.fetches.Load()
	start := time.Now()
	id, err := v.Verify(context.Background(), mint(keyA(), "kid-a", claims(clk.Now())))
	if err != nil {
		t.Fatalf("first request after the JWKS came up: %v", err)
	}
	if id.Subject != "alice" || !v.Ready() {
		t.Errorf("identity %+v, Ready %v", id, v.Ready())
	}
	if srv.fetches.Load() == before {
		t.Error("the request succeeded without fetching the JWKS")
	}
	// The warm-up failed three times and sleeps 2 s before its next try
	// (0.5 s, 1 s, 2 s): a request that waited for it instead of fetching
	// on demand takes that long. The bound is the warm-up's sleep, not a
	// performance figure, so a loaded machine does not fail the test.
	if d := time.Since(start); d >= 1900*time.Millisecond {
		t.Errorf("the request took %s: it waited for the warm-up instead of fetching on demand", d)
	}
}

// Fail closed: with no key set ever loaded, every token is refused with
// 503 jwks_unavailable, never accepted and never a 401 that would send the
// client to log in again.
func TestVerifyFailsClosedWhenTheJWKSIsUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // nothing listens here now: connections are refused
	clk := newClock()
	cfg := VerifierConfig{Issuer: testIssuer, Audience: testAudience, JWKSURI: "http://" + addr + "/jwks", Now: clk.Now,
		HTTPClient: &http.Client{Timeout: 2 * time.Second}}
	v, err := NewVerifier(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = v.Close() }()
	for i := range 3 {
		_, err := v.Verify(context.Background(), mint(keyA(), "kid-a", claims(clk.Now())))
		authError(t, err, http.StatusServiceUnavailable, "", ReasonJWKSUnavailable)
		if i == 0 && v.Ready() {
			t.Fatal("Ready() with the JWKS unreachable")
		}
	}

	// The same address comes up: the next request loads the keys on demand.
	l2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("re-listen on %s: %v", addr, err)
	}
	up := newJWKSServerOn(t, l2, pubKey{"kid-a", keyA()})
	if _, err := v.Verify(context.Background(), mint(keyA(), "kid-a", claims(clk.Now()))); err != nil {
		t.Fatalf("after the JWKS came up: %v", err)
	}
	if up.fetches.Load() == 0 {
		t.Error("no fetch reached the JWKS that came up")
	}
}

// newJWKSServerOn is newJWKSServer on a given listener.
func newJWKSServerOn(t *testing.T, l net.Listener, keys ...pubKey) *jwksServer {
	t.Helper()
	s := newJWKSServer(t, keys...)
	h := s.Config.Handler
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: h}}
	srv.Start()
	t.Cleanup(srv.Close)
	return s
}

// An unknown kid costs exactly one refetch; a second unknown kid within
// the cooldown costs none.
func TestUnknownKidTriggersExactlyOneRefetch(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, pubKey{"kid-a", keyA()})
	clk := newClock()
	v := verifierFor(t, srv, clk, nil)
	base := srv.settle(t, v)

	_, err := v.Verify(context.Background(), mint(keyC(), "kid-unknown", claims(clk.Now())))
	authError(t, err, 401, CodeInvalidToken, ReasonKeyUnknown)
	if got := srv.fetches.Load() - base; got != 1 {
		t.Fatalf("fetches for one unknown kid = %d, want exactly 1", got)
	}
	_, err = v.Verify(context.Background(), mint(keyC(), "kid-other", claims(clk.Now())))
	authError(t, err, 401, CodeInvalidToken, ReasonKeyUnknown)
	if got := srv.fetches.Load() - base; got != 1 {
		t.Fatalf("fetches after a second unknown kid within the cooldown = %d, want still 1", got)
	}
	// A known kid still verifies from the cache, with no fetch.
	if _, err := v.Verify(context.Background(), mint(keyA(), "kid-a", claims(clk.Now()))); err != nil {
		t.Fatal(err)
	}
	if got := srv.fetches.Load() - base; got != 1 {
		t.Errorf("fetches after a known kid = %d, want still 1", got)
	}
}

// A flood of random kids in parallel costs at most one JWKS fetch per
// cooldown, counted at the JWKS server.
func TestFloodOfRandomKidsCostsOneFetchPerCooldown(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, pubKey{"kid-a", keyA()})
	srv.delay.Store(int64(50 * time.Millisecond)) // a slow IdP widens every race window
	clk := newClock()
	const cooldown = 30 * time.Second
	v := verifierFor(t, srv, clk, func(c *VerifierConfig) { c.RefetchCooldown = cooldown })
	base := srv.settle(t, v)

	// Pre-mint outside the flood: RSA signing is slow.
	tokens := make([]string, 100)
	for i := range tokens {
		tokens[i] = mint(keyC(), "kid-"+randomHex(6), claims(clk.Now()))
	}
	flood := func() {
		var wg sync.WaitGroup
		for _, tok := range tokens {
			wg.Go(func() {
				_, err := v.Verify(context.Background(), tok)
				authError(t, err, 401, CodeInvalidToken, ReasonKeyUnknown)
			})
		}
		wg.Wait()
	}
	for round := 1; round <= 3; round++ {
		flood()
		if got := srv.fetches.Load() - base; got != int64(round) {
			t.Fatalf("after flood %d: %d fetches, want %d (one per cooldown)", round, got, round)
		}
		flood() // within the same cooldown: no more fetches
		if got := srv.fetches.Load() - base; got != int64(round) {
			t.Fatalf("after a second flood in cooldown %d: %d fetches, want %d", round, got, round)
		}
		clk.Advance(cooldown + time.Second)
	}
}

// A key rotated in at the issuer (new kid) is picked up by the unknown-kid
// refetch, also by callers that arrive while that refetch is in flight.
func TestRotatedKeyIsPickedUpByTheUnknownKidRefetch(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, pubKey{"kid-a", keyA()})
	clk := newClock()
	v := verifierFor(t, srv, clk, nil)
	base := srv.settle(t, v)
	if _, err := v.Verify(context.Background(), mint(keyA(), "kid-a", claims(clk.Now()))); err != nil {
		t.Fatal(err)
	}

	srv.setKeys(t, pubKey{"kid-a", keyA()}, pubKey{"kid-b", keyB()})
	srv.delay.Store(int64(200 * time.Millisecond)) // every caller arrives during the refetch
	tokens := make([]string, 20)
	for i := range tokens {
		tokens[i] = mint(keyB(), "kid-b", claims(clk.Now()))
	}
	// Regression invariant: callers arriving during an unknown-kid refetch share its result, not a cooldown refusal.
	var wg sync.WaitGroup
	for _, tok := range tokens {
		wg.Go(func() {
			id, err := v.Verify(context.Background(), tok)
			if err != nil {
				t.Errorf("token signed by the rotated-in key: %v", err)
			} else if id.Subject != "alice" {
				t.Errorf("subject %q", id.Subject)
			}
		})
	}
	wg.Wait()
	if got := srv.fetches.Load() - base; got != 1 {
		t.Errorf("fetches for the rotation = %d, want exactly 1", got)
	}
	// The old key keeps working while it is published.
	if _, err := v.Verify(context.Background(), mint(keyA(), "kid-a", claims(clk.Now()))); err != nil {
		t.Errorf("old key after rotation: %v", err)
	}
}

// Regression invariant: only unknown-kid refetches count against the refetch cooldown, not the start-up fetch.
func TestStartupFetchDoesNotUseUpTheRefetchCooldown(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, pubKey{"kid-a", keyA()})
	clk := newClock()
	v := verifierFor(t, srv, clk, nil) // cooldown: 1h
	srv.settle(t, v)
	srv.setKeys(t, pubKey{"kid-b", keyB()})
	if _, err := v.Verify(context.Background(), mint(keyB(), "kid-b", claims(clk.Now()))); err != nil {
		t.Fatalf("a key rotated in right after start-up: %v", err)
	}
}

// A verified token is cached until it expires: a repeat returns the very
// same identity without verifying again, and the entry dies with the token.
func TestVerifiedTokenCacheReturnsTheSameIdentityUntilExpiry(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, pubKey{"kid-a", keyA()})
	clk := newClock()
	v := verifierFor(t, srv, clk, func(c *VerifierConfig) { c.Skew = 10 * time.Second })
	c := claims(clk.Now())
	c["exp"] = clk.Now().Add(time.Minute).Unix()
	tok := mint(keyA(), "kid-a", c)

	first, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	srv.settle(t, v)
	srv.down.Store(true) // a cache hit needs no JWKS at all
	clk.Advance(30 * time.Second)
	second, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("repeat within lifetime: %v", err)
	}
	if reflect.ValueOf(first.Claims).UnsafePointer() != reflect.ValueOf(second.Claims).UnsafePointer() {
		t.Error("the repeat was verified again instead of served from the cache")
	}
	if !reflect.DeepEqual(first, second) {
		t.Errorf("cached identity differs:\n%+v\n%+v", first, second)
	}

	clk.Advance(35 * time.Second) // past exp, within skew
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Errorf("within the skew after exp: %v", err)
	}
	clk.Advance(10 * time.Second) // past exp + skew
	_, err = v.Verify(context.Background(), tok)
	authError(t, err, 401, CodeInvalidToken, ReasonTokenExpired)
	v.mu.Lock()
	n := len(v.verified)
	v.mu.Unlock()
	if n != 0 {
		t.Errorf("the expired entry is still cached (%d entries)", n)
	}
}

func TestVerifiedTokenCacheIsBounded(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, pubKey{"kid-a", keyA()})
	clk := newClock()
	v := verifierFor(t, srv, clk, func(c *VerifierConfig) { c.CacheEntries = 3 })
	for range 10 {
		if _, err := v.Verify(context.Background(), mint(keyA(), "kid-a", claims(clk.Now()))); err != nil {
			t.Fatal(err)
		}
		v.mu.Lock()
		n := len(v.verified)
		v.mu.Unlock()
		if n > 3 {
			t.Fatalf("cache holds %d entries, bound is 3", n)
		}
	}
}

// verifyWithin runs Verify and fails the test if it does not answer within d.
func verifyWithin(t *testing.T, v *Verifier, tok string, d time.Duration) (Identity, error) {
	t.Helper()
	type result struct {
		id  Identity
		err error
	}
	ch := make(chan result, 1)
	go func() {
		id, err := v.Verify(context.Background(), tok)
		ch <- result{id, err}
	}()
	select {
	case r := <-ch:
		return r.id, r.err
	case <-time.After(d):
		t.Fatalf("Verify did not answer within %s", d)
		return Identity{}, nil
	}
}

// Regression invariant: Verify never blocks on a closed verifier (it used to hang forever on the stopped JWKS cache).
// A closed verifier answers at once, with the keys it holds, and never fetches again.
func TestVerifyAfterCloseAnswersPromptly(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, pubKey{"kid-a", keyA()})
	clk := newClock()
	v, err := NewVerifier(context.Background(), VerifierConfig{Issuer: testIssuer, Audience: testAudience,
		JWKSURI: srv.jwksURI(), Now: clk.Now, RefetchCooldown: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	base := srv.settle(t, v)
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if id, err := verifyWithin(t, v, mint(keyA(), "kid-a", claims(clk.Now())), 3*time.Second); err != nil || id.Subject != "alice" {
		t.Errorf("known key after Close: %+v, %v", id, err)
	}
	_, err = verifyWithin(t, v, mint(keyC(), "kid-new", claims(clk.Now())), 3*time.Second)
	authError(t, err, 401, CodeInvalidToken, ReasonKeyUnknown)
	if n := srv.fetches.Load(); n != base {
		t.Errorf("a closed verifier fetched the JWKS: %d fetches, want %d", n, base)
	}
	if err := v.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

// A request waiting for the first JWKS fetch gets 503 as soon as the
// verifier is closed, and a closed verifier that never loaded keys refuses
// at once.
func TestCloseEndsAnInFlightJWKSFetch(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, pubKey{"kid-a", keyA()})
	srv.hanging.Store(true)
	clk := newClock()
	v, err := NewVerifier(context.Background(), VerifierConfig{Issuer: testIssuer, Audience: testAudience,
		JWKSURI: srv.jwksURI(), Now: clk.Now, HTTPClient: &http.Client{Timeout: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	tok := mint(keyA(), "kid-a", claims(clk.Now()))
	done := make(chan error, 1)
	go func() {
		_, err := v.Verify(context.Background(), tok)
		done <- err
	}()
	for srv.inflight.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- v.Close() }()
	select {
	case err := <-done:
		authError(t, err, http.StatusServiceUnavailable, "", ReasonJWKSUnavailable)
	case <-time.After(3 * time.Second):
		t.Fatal("Verify still waits on the JWKS 3s after Close")
	}
	select {
	case <-closed:
	case <-time.After(6 * time.Second):
		t.Fatal("Close did not return")
	}
	_, err = verifyWithin(t, v, tok, 3*time.Second)
	authError(t, err, http.StatusServiceUnavailable, "", ReasonJWKSUnavailable)
}

func TestVerifyHonoursTheCallersContext(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, pubKey{"kid-a", keyA()})
	srv.hanging.Store(true)
	clk := newClock()
	v := verifierFor(t, srv, clk, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := v.Verify(ctx, mint(keyA(), "kid-a", claims(clk.Now())))
	authError(t, err, http.StatusServiceUnavailable, "", ReasonJWKSUnavailable)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not carry the context's deadline", err)
	}
}

// A token without kid is accepted only when the issuer publishes exactly one
// key: with several, the verifier never guesses.
func TestTokenWithoutKidNeedsASingleKeySet(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, pubKey{"kid-a", keyA()}, pubKey{"kid-b", keyB()})
	clk := newClock()
	v := verifierFor(t, srv, clk, nil)
	base := srv.settle(t, v)
	_, err := v.Verify(context.Background(), signRSA(keyA(), "RS256", map[string]any{"alg": "RS256"}, claims(clk.Now())))
	authError(t, err, 401, CodeInvalidToken, ReasonKidMissing)
	if got := srv.fetches.Load() - base; got != 0 {
		t.Errorf("a token without kid caused %d JWKS fetches, want 0: refetching cannot make a guess safe", got)
	}
	if _, err := v.Verify(context.Background(), mint(keyB(), "kid-b", claims(clk.Now()))); err != nil {
		t.Errorf("the same set with a kid: %v", err)
	}
}
