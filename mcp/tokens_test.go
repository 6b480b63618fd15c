package mcp_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatewaystack/gatewaystack/auth"
)

// tokenCase is one row of the token table: how the credentials are sent and
// what the gateway must answer.
type tokenCase struct {
	name string
	// token builds the bearer token (may be empty with header set).
	token func(t testing.TB, g *gateway) string
	// header overrides how credentials are sent; nil means one
	// "Authorization: Bearer <token>".
	header func(g *gateway, token string) http.Header
	// query is appended to the MCP URL.
	query string

	status    int
	challenge map[string]string // nil for accepted requests
	reason    string            // audit and body reason code
}

// TestTokens is the token table at the HTTP level. Every row sends a
// stateless tools/call of rec__echo carrying a unique marker, so each row
// can tell whether that very request reached the upstream: rejected
// credentials must never reach it, accepted ones must, exactly once.
func TestTokens(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{})
	prm := g.PRM

	noError := map[string]string{"realm": "mcp", "resource_metadata": prm, "scope": baselineScope}
	invalidToken := map[string]string{"realm": "mcp", "error": "invalid_token", "resource_metadata": prm, "scope": baselineScope}
	invalidRequest := map[string]string{"realm": "mcp", "error": "invalid_request", "resource_metadata": prm}

	valid := func(mut func(c map[string]any)) func(testing.TB, *gateway) string {
		return func(_ testing.TB, g *gateway) string {
			c := g.minter.claims("alice", baselineScope)
			if mut != nil {
				mut(c)
			}
			return g.minter.sign(c)
		}
	}
	signedWith := func(header map[string]any, sign func(t testing.TB, in string) []byte) func(testing.TB, *gateway) string {
		return func(t testing.TB, g *gateway) string {
			return compactJWS(t, header, g.minter.claims("alice", baselineScope), func(in string) []byte { return sign(t, in) })
		}
	}
	rs256 := func(t testing.TB, in string) []byte { return signRS256(t, signingKey(), in) }
	now := time.Now()

	cases := []tokenCase{
		{
			name:  "no Authorization header is challenged without an error code",
			token: func(testing.TB, *gateway) string { return "" },
			header: func(*gateway, string) http.Header {
				return http.Header{}
			},
			status: http.StatusUnauthorized, challenge: noError, reason: auth.ReasonCredentialsMissing,
		},
		{
			name:  "Basic scheme is challenged without an error code",
			token: valid(nil),
			header: func(_ *gateway, tok string) http.Header {
				return http.Header{"Authorization": {"Basic YWxpY2U6c2VjcmV0"}}
			},
			status: http.StatusUnauthorized, challenge: noError, reason: auth.ReasonSchemeUnsupported,
		},
		{
			name:  "two Authorization headers are an invalid request",
			token: valid(nil),
			header: func(_ *gateway, tok string) http.Header {
				return http.Header{"Authorization": {bearer(tok), bearer(tok)}}
			},
			status: http.StatusBadRequest, challenge: invalidRequest, reason: auth.ReasonCredentialsDuplicate,
		},
		{
			name:   "a header plus an access_token query parameter is an invalid request",
			token:  valid(nil),
			query:  "access_token=whatever",
			status: http.StatusBadRequest, challenge: invalidRequest, reason: auth.ReasonCredentialsDuplicate,
		},
		{
			name:  "a token only in the access_token query parameter counts as no credentials",
			token: valid(nil),
			header: func(*gateway, string) http.Header {
				return http.Header{}
			},
			query:  "access_token=PLACEHOLDER",
			status: http.StatusUnauthorized, challenge: noError, reason: auth.ReasonTokenInQuery,
		},
		{
			name:   "a malformed token is invalid",
			token:  func(testing.TB, *gateway) string { return "not-a-jwt" },
			status: http.StatusUnauthorized, challenge: invalidToken, reason: auth.ReasonTokenMalformed,
		},
		{
			name:   "three parts of garbage are invalid",
			token:  func(testing.TB, *gateway) string { return "@@@.###.$$$" },
			status: http.StatusUnauthorized, challenge: invalidToken, reason: auth.ReasonTokenMalformed,
		},
		{
			name:   "alg none is refused",
			token:  signedWith(map[string]any{"alg": "none", "kid": signingKID}, func(testing.TB, string) []byte { return nil }),
			status: http.StatusUnauthorized, challenge: invalidToken, reason: auth.ReasonAlgNotAllowed,
		},
		{
			name: "HS256 keyed with the RSA public key is refused",
			token: signedWith(map[string]any{"alg": "HS256", "typ": "JWT", "kid": signingKID}, func(t testing.TB, in string) []byte {
				der, err := x509.MarshalPKIXPublicKey(&signingKey().PublicKey)
				if err != nil {
					t.Fatal(err)
				}
				mac := hmac.New(sha256.New, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
				mac.Write([]byte(in))
				return mac.Sum(nil)
			}),
			status: http.StatusUnauthorized, challenge: invalidToken, reason: auth.ReasonAlgNotAllowed,
		},
		{
			name:   "header alg RS512 over a valid RS256 signature is refused",
			token:  signedWith(map[string]any{"alg": "RS512", "typ": "JWT", "kid": signingKID}, rs256),
			status: http.StatusUnauthorized, challenge: invalidToken, reason: auth.ReasonAlgNotAllowed,
		},
		{
			name: "a valid signature by an unknown key reusing a real kid is refused",
			token: signedWith(map[string]any{"alg": "RS256", "typ": "JWT", "kid": signingKID}, func(t testing.TB, in string) []byte {
				return signRS256(t, strangerKey(), in)
			}),
			status: http.StatusUnauthorized, challenge: invalidToken, reason: auth.ReasonSignatureInvalid,
		},
		{
			name:   "an unknown kid is refused",
			token:  signedWith(map[string]any{"alg": "RS256", "typ": "JWT", "kid": "rotated-away"}, rs256),
			status: http.StatusUnauthorized, challenge: invalidToken, reason: auth.ReasonKeyUnknown,
		},
		{
			name: "a tampered payload is refused",
			token: func(t testing.TB, g *gateway) string {
				parts := strings.Split(valid(nil)(t, g), ".")
				c := g.minter.claims("alice", baselineScope+" "+stepUpScope+" "+entitleScope)
				parts[1] = b64(mustJSON(t, c))
				return strings.Join(parts, ".")
			},
			status: http.StatusUnauthorized, challenge: invalidToken, reason: auth.ReasonSignatureInvalid,
		},
		{
			name: "a five-part JWE is refused",
			token: func(testing.TB, *gateway) string {
				return b64([]byte(`{"alg":"RSA-OAEP","enc":"A256GCM","kid":"`+signingKID+`"}`)) + ".ZW5j.aXY.Y2lwaGVy.dGFn"
			},
			status: http.StatusUnauthorized, challenge: invalidToken, reason: auth.ReasonTokenEncrypted,
		},
		{
			name: "a token expired beyond the skew is refused",
			token: valid(func(c map[string]any) {
				c["exp"] = now.Add(-5 * time.Minute).Unix()
				c["iat"] = now.Add(-time.Hour).Unix()
				c["nbf"] = c["iat"]
			}),
			status: http.StatusUnauthorized, challenge: invalidToken, reason: auth.ReasonTokenExpired,
		},
		{
			name: "a token expired within the skew is accepted",
			token: valid(func(c map[string]any) {
				c["exp"] = now.Add(-20 * time.Second).Unix()
				c["iat"] = now.Add(-time.Hour).Unix()
				c["nbf"] = c["iat"]
			}),
			status: http.StatusOK,
		},
		{
			name:   "nbf in the future beyond the skew is refused",
			token:  valid(func(c map[string]any) { c["nbf"] = now.Add(5 * time.Minute).Unix() }),
			status: http.StatusUnauthorized, challenge: invalidToken, reason: auth.ReasonTokenNotYetValid,
		},
		{
			name:   "a wrong issuer is refused",
			token:  valid(func(c map[string]any) { c["iss"] = "https://evil.example/" }),
			status: http.StatusUnauthorized, challenge: invalidToken, reason: auth.ReasonIssuerMismatch,
		},
		{
			name:   "an issuer differing only by a trailing slash is refused",
			token:  valid(func(c map[string]any) { c["iss"] = strings.TrimSuffix(testIssuer, "/") }),
			status: http.StatusUnauthorized, challenge: invalidToken, reason: auth.ReasonIssuerMismatch,
		},
		{
			name:   "a wrong audience is refused",
			token:  valid(func(c map[string]any) { c["aud"] = "https://other.example/mcp" }),
			status: http.StatusUnauthorized, challenge: invalidToken, reason: auth.ReasonAudienceMismatch,
		},
		{
			name:   "an audience array without ours is refused",
			token:  valid(func(c map[string]any) { c["aud"] = []string{"https://a.example/mcp", "https://b.example/mcp"} }),
			status: http.StatusUnauthorized, challenge: invalidToken, reason: auth.ReasonAudienceMismatch,
		},
		{
			name:   "an audience array containing ours is accepted",
			token:  valid(func(c map[string]any) { c["aud"] = []string{"https://a.example/mcp", g.MCP} }),
			status: http.StatusOK,
		},
		{
			name:   "a token without exp is refused",
			token:  valid(func(c map[string]any) { delete(c, "exp") }),
			status: http.StatusUnauthorized, challenge: invalidToken, reason: auth.ReasonClaimMissing,
		},
		{
			name:   "a token without sub is refused",
			token:  valid(func(c map[string]any) { delete(c, "sub") }),
			status: http.StatusUnauthorized, challenge: invalidToken, reason: auth.ReasonClaimMissing,
		},
		{
			name:   "an empty bearer token is invalid",
			token:  func(testing.TB, *gateway) string { return "" },
			header: func(*gateway, string) http.Header { return http.Header{"Authorization": {"Bearer "}} },
			status: http.StatusUnauthorized, challenge: invalidToken, reason: auth.ReasonTokenMalformed,
		},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tok := tc.token(t, g)
			marker := "tok-" + randomHex(6)
			body := rpcBody(t, "tools/call", modernParams(map[string]any{"name": "rec__echo", "arguments": map[string]any{"marker": marker}}))
			h := hdr("Mcp-Protocol-Version", modernVersion, "Mcp-Method", "tools/call", "Mcp-Name", "rec__echo")
			if tc.header != nil {
				for k, v := range tc.header(g, tok) {
					h[k] = v
				}
			} else {
				h.Set("Authorization", bearer(tok))
			}
			u := g.MCP
			if tc.query != "" {
				u += "?" + strings.ReplaceAll(tc.query, "PLACEHOLDER", url.QueryEscape(tok))
			}
			r := do(t, g.client, http.MethodPost, u, h, body)

			if r.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d; body %s; challenge %q", r.StatusCode, tc.status, r.body, r.Header.Get("WWW-Authenticate"))
			}
			lines := g.audit.forRequest(t, r.Header.Get("X-Request-Id"))
			if len(lines) != 1 {
				t.Fatalf("want exactly one audit line for the request, got %v", lines)
			}
			if tok != "" && strings.Contains(g.audit.String(), tok) {
				t.Fatal("the audit stream contains the raw token")
			}
			if tc.challenge == nil {
				r.result(t)
				if got := len(g.upstream.runs(marker)); got != 1 {
					t.Fatalf("accepted request reached the upstream %d times, want 1", got)
				}
				if lines[0]["decision"] != "allow" || lines[0]["subject"] != "alice" {
					t.Fatalf("audit line = %v, want an allow for alice", lines[0])
				}
				return
			}
			wantChallenge(t, r, tc.challenge)
			if g.upstream.sawMarker(marker) {
				t.Fatal("rejected credentials reached the upstream")
			}
			var eb struct {
				Error  string `json:"error"`
				Reason string `json:"reason"`
			}
			if err := json.Unmarshal(r.body, &eb); err != nil {
				t.Fatalf("error body is not JSON: %s", r.body)
			}
			if eb.Reason != tc.reason {
				t.Errorf("reason = %q, want %q", eb.Reason, tc.reason)
			}
			if lines[0]["decision"] != "deny" || lines[0]["reason"] != tc.reason {
				t.Errorf("audit line = %v, want deny/%s", lines[0], tc.reason)
			}
		})
	}
}

// settleJWKS waits until the gateway has loaded its keys and the start-up
// fetches are over, and returns the fetch count.
func settleJWKS(t *testing.T, g *gateway) int64 {
	t.Helper()
	// A valid token forces the initial load if it has not happened yet.
	g.modernCall(t, g.minter.token("alice", baselineScope), "rec__echo", nil).result(t)
	deadline := time.Now().Add(5 * time.Second)
	last := g.jwks.fetches.Load()
	for stable := 0; stable < 5; {
		if time.Now().After(deadline) {
			t.Fatal("JWKS fetches never settled")
		}
		time.Sleep(20 * time.Millisecond)
		if n := g.jwks.fetches.Load(); n != last {
			last, stable = n, 0
			continue
		}
		stable++
	}
	if !g.srv.Verifier.Ready() {
		t.Fatal("verifier not ready after a valid token was accepted")
	}
	return last
}

func unknownKidToken(t *testing.T, g *gateway, kid string) string {
	return compactJWS(t, map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid}, g.minter.claims("alice", baselineScope),
		func(in string) []byte { return signRS256(t, signingKey(), in) })
}

// TestJWKSRefetch guards the JWKS cost of unknown key ids: the first unknown
// kid refetches the key set exactly once, and within the cooldown nothing a
// caller sends causes another fetch, however many distinct kids arrive at
// once.
func TestJWKSRefetch(t *testing.T) {
	t.Parallel()

	t.Run("an unknown kid causes exactly one refetch, then 401 invalid_token", func(t *testing.T) {
		t.Parallel()
		g := newGateway(t, gatewayOptions{})
		base := settleJWKS(t, g)
		r := g.modernCall(t, unknownKidToken(t, g, "kid-"+randomHex(4)), "rec__echo", nil)
		if r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status = %d, want 401: %s", r.StatusCode, r.body)
		}
		wantChallenge(t, r, map[string]string{"realm": "mcp", "error": "invalid_token", "resource_metadata": g.PRM, "scope": baselineScope})
		if got := g.jwks.fetches.Load() - base; got != 1 {
			t.Fatalf("JWKS fetches caused by one unknown kid = %d, want 1", got)
		}
		// Within the cooldown the same and another unknown kid cost nothing.
		for _, kid := range []string{"kid-again", "kid-" + randomHex(4)} {
			if r := g.modernCall(t, unknownKidToken(t, g, kid), "rec__echo", nil); r.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401", r.StatusCode)
			}
		}
		if got := g.jwks.fetches.Load() - base; got != 1 {
			t.Fatalf("JWKS fetches after more unknown kids within the cooldown = %d, want still 1", got)
		}
		// Known tokens keep working.
		g.modernCall(t, g.minter.token("bob", baselineScope), "rec__echo", nil).result(t)
	})

	t.Run("a flood of 50 random kids causes at most one fetch per cooldown", func(t *testing.T) {
		t.Parallel()
		g := newGateway(t, gatewayOptions{})
		base := settleJWKS(t, g)
		var wg sync.WaitGroup
		statuses := make([]int, 50)
		tokens := make([]string, len(statuses))
		for i := range tokens {
			tokens[i] = unknownKidToken(t, g, "flood-"+randomHex(8))
		}
		for i := range statuses {
			wg.Add(1)
			go func() {
				defer wg.Done()
				h, body := g.modernRequest(tokens[i], "rec__echo", nil)
				r, err := send(g.client, http.MethodPost, g.MCP, h, body)
				if err != nil {
					t.Error(err)
					return
				}
				statuses[i] = r.StatusCode
			}()
		}
		wg.Wait()
		for i, s := range statuses {
			if s != http.StatusUnauthorized {
				t.Fatalf("request %d: status %d, want 401", i, s)
			}
		}
		// At least one: unknown kids do trigger a refetch; at most one: the
		// flood is de-duplicated and cooled down.
		if got := g.jwks.fetches.Load() - base; got != 1 {
			t.Fatalf("JWKS fetches caused by 50 random kids = %d, want exactly 1", got)
		}
	})
}
