package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// signRawJSON signs the exact header and payload JSON texts with RS256, so
// tests can carry duplicate names, invalid UTF-8 or trailing data that
// json.Marshal never produces.
func signRawJSON(key *rsa.PrivateKey, header, payload string) string {
	in := b64([]byte(header)) + "." + b64([]byte(payload))
	return in + "." + b64(rsaSig(key, in))
}

func rsaSig(key *rsa.PrivateKey, in string) []byte {
	sum := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		panic(err)
	}
	return sig
}

// signES256 signs header.payload with an ECDSA P-256 key (JWS r||s form).
func signES256(key *ecdsa.PrivateKey, header, cl map[string]any) string {
	in := signing(header, cl)
	sum := sha256.Sum256([]byte(in))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		panic(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return in + "." + b64(sig)
}

// claimsJSON is the JSON text of valid claims at now, then extra members
// verbatim.
func claimsJSON(now time.Time, extra string) string {
	s := fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"alice","iat":%d,"nbf":%d,"exp":%d,"jti":"j-1","scope":"tool:read","org_id":"acme"`,
		testIssuer, testAudience, now.Unix(), now.Unix(), now.Add(10*time.Minute).Unix())
	if extra != "" {
		s += "," + extra
	}
	return s + "}"
}

// Every row is a token signed by the published key (unless the row is
// about the encoding itself), so the property under test is the only
// reason it can be refused; none of them may cost a JWKS fetch.
func TestVerifyRefusesHostileTokens(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, pubKey{"kid-a", keyA()})
	clk := newClock()
	v := verifierFor(t, srv, clk, nil)
	base := srv.settle(t, v)
	now := clk.Now()
	const hdrJSON = `{"alg":"RS256","typ":"JWT","kid":"kid-a"}`
	raw := func(payloadExtra string) string { return signRawJSON(keyA(), hdrJSON, claimsJSON(now, payloadExtra)) }
	rawHdr := func(header string) string { return signRawJSON(keyA(), header, claimsJSON(now, "")) }
	rawBody := func(payload string) string { return signRawJSON(keyA(), hdrJSON, payload) }
	with := func(mod func(map[string]any)) string {
		c := claims(now)
		mod(c)
		return mint(keyA(), "kid-a", c)
	}
	hdr := func(kv ...any) string {
		h := map[string]any{"alg": "RS256", "typ": "JWT", "kid": "kid-a"}
		for i := 0; i+1 < len(kv); i += 2 {
			h[kv[i].(string)] = kv[i+1]
		}
		return signRSA(keyA(), "RS256", h, claims(now))
	}
	valid := mint(keyA(), "kid-a", claims(now))
	parts := strings.Split(valid, ".")
	h, p, s := parts[0], parts[1], parts[2]
	if _, err := v.Verify(context.Background(), valid); err != nil {
		t.Fatalf("the unmodified token must verify: %v", err)
	}
	// A signature whose standard base64 differs from its base64url.
	var stdSig string
	for stdSig == "" {
		tok := mint(keyA(), "kid-a", claims(now))
		sig, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[2])
		if enc := base64.RawStdEncoding.EncodeToString(sig); strings.ContainsAny(enc, "+/") {
			stdSig = strings.Join(strings.Split(tok, ".")[:2], ".") + "." + enc
		}
	}
	// The same signature bytes spelt with non-zero unused trailing bits: a
	// lenient decoder reads the same signature, a strict one refuses.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, s[len(s)-1])
	malleable := h + "." + p + "." + s[:len(s)-1] + string(alphabet[last|1])
	paddedHdr := base64.URLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"kid-a"}`))
	if !strings.HasSuffix(paddedHdr, "=") {
		t.Fatalf("the padded header %q has no padding", paddedHdr)
	}
	cl0 := claims(now)
	cl0["exp"] = 0

	tests := []struct {
		name   string
		token  string
		reason string
	}{
		// Serialization and base64url.
		{"a JWS JSON (flattened) serialization", fmt.Sprintf(`{"payload":%q,"protected":%q,"signature":%q}`, p, h, s), ReasonTokenMalformed},
		{"a JWS JSON (general) serialization", fmt.Sprintf(`{"payload":%q,"signatures":[{"protected":%q,"signature":%q}]}`, p, h, s), ReasonTokenMalformed},
		{"a padded header", paddedHdr + "." + p + "." + s, ReasonTokenMalformed},
		{"a padded signature", valid + "==", ReasonTokenMalformed},
		{"a signature in standard base64 ('+', '/')", stdSig, ReasonTokenMalformed},
		{"non-zero unused bits in the signature", malleable, ReasonTokenMalformed},
		{"a space after a dot", h + ". " + p + "." + s, ReasonTokenMalformed},
		{"a newline inside the header", h[:5] + "\n" + h[5:] + "." + p + "." + s, ReasonTokenMalformed},
		{"a tab inside the payload", h + "." + p[:5] + "\t" + p[5:] + "." + s, ReasonTokenMalformed},
		{"an empty signature with an allowed alg", h + "." + p + ".", ReasonTokenMalformed},
		// Header.
		{"a header that is a string", b64([]byte(`"RS256"`)) + "." + p + "." + s, ReasonTokenMalformed},
		{"a header that is a number", b64([]byte(`256`)) + "." + p + "." + s, ReasonTokenMalformed},
		{"a header that is null", b64([]byte(`null`)) + "." + p + "." + s, ReasonTokenMalformed},
		{"a header with invalid UTF-8", rawHdr("{\"alg\":\"RS256\",\"kid\":\"kid-a\",\"x\":\"\xff\"}"), ReasonTokenMalformed},
		{"a header with trailing data", rawHdr(hdrJSON + `{}`), ReasonTokenMalformed},
		{"a header repeating alg", rawHdr(`{"alg":"RS256","alg":"none","kid":"kid-a"}`), ReasonTokenMalformed},
		{"a header with alg and ALG", rawHdr(`{"alg":"RS256","ALG":"none","kid":"kid-a"}`), ReasonTokenMalformed},
		{"a header spelling kid as Kid", rawHdr(`{"alg":"RS256","Kid":"kid-a"}`), ReasonTokenMalformed},
		{"a header spelling jku as JKU", rawHdr(`{"alg":"RS256","kid":"kid-a","JKU":"http://127.0.0.1:1/"}`), ReasonTokenMalformed},
		{"alg as a number", hdr("alg", 256), ReasonAlgNotAllowed},
		{"kid null", rawHdr(`{"alg":"RS256","kid":null}`), ReasonTokenMalformed},
		{"kid empty", hdr("kid", ""), ReasonTokenMalformed},
		{"kid as an array", hdr("kid", []any{"kid-a"}), ReasonTokenMalformed},
		{"kid of 257 bytes", hdr("kid", strings.Repeat("k", MaxKidBytes+1)), ReasonTokenMalformed},
		{"kid of 10 KB", hdr("kid", strings.Repeat("k", 10<<10)), ReasonTokenTooLarge},
		{"typ as a number", hdr("typ", 1), ReasonTokenMalformed},
		{"a b64 header", hdr("b64", false), ReasonHeaderNotAllowed},
		{"an x5c header", hdr("x5c", []any{"MIIB"}), ReasonHeaderNotAllowed},
		{"a crit header naming nothing", hdr("crit", []any{}), ReasonHeaderNotAllowed},
		// Payload.
		{"a payload that is an array", rawBody(`["alice"]`), ReasonTokenMalformed},
		{"a payload that is a string", rawBody(`"alice"`), ReasonTokenMalformed},
		{"a payload that is a number", rawBody(`1`), ReasonTokenMalformed},
		{"a payload with invalid UTF-8", raw("\"name\":\"al\xc3\x28ce\""), ReasonTokenMalformed},
		{"a payload with trailing data", rawBody(claimsJSON(now, "") + `{"sub":"mallory"}`), ReasonTokenMalformed},
		{"a payload nested too deep", raw(`"deep":` + strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1)), ReasonTokenMalformed},
		// Duplicate and case-variant claim names.
		{"sub twice", raw(`"sub":"mallory"`), ReasonClaimDuplicate},
		{"sub and Sub", raw(`"Sub":"mallory"`), ReasonClaimDuplicate},
		{"sub and ſub (U+017F folds to s)", raw(`"ſub":"mallory"`), ReasonClaimDuplicate},
		{"exp twice", raw(fmt.Sprintf(`"exp":%d`, now.Add(time.Hour).Unix())), ReasonClaimDuplicate},
		{"aud twice", raw(`"aud":"https://evil.test/mcp"`), ReasonClaimDuplicate},
		{"iss and ISS", raw(`"ISS":"https://evil.test/"`), ReasonClaimDuplicate},
		{"a custom claim in two letter cases", raw(`"email":"a@x","Email":"b@x"`), ReasonClaimDuplicate},
		{"a registered name only in another case", with(func(c map[string]any) { c["Scope"] = "admin" }), ReasonClaimDuplicate},
		{"the tenant claim in another case", with(func(c map[string]any) { c["ORG_ID"] = "other" }), ReasonClaimDuplicate},
		{"a nested member twice", raw(`"cnf":{"jkt":"a","jkt":"b"}`), ReasonClaimDuplicate},
		// Time claims.
		{"exp as a date string", with(func(c map[string]any) { c["exp"] = "2030-01-02T03:14:05Z" }), ReasonClaimInvalid},
		{"exp as a numeric string", with(func(c map[string]any) { c["exp"] = fmt.Sprint(now.Add(time.Minute).Unix()) }), ReasonClaimInvalid},
		{"exp 1e300", rawBody(strings.Replace(claimsJSON(now, ""), fmt.Sprintf(`"exp":%d`, now.Add(10*time.Minute).Unix()), `"exp":1e300`, 1)), ReasonClaimInvalid},
		{"exp -1e300", rawBody(strings.Replace(claimsJSON(now, ""), fmt.Sprintf(`"exp":%d`, now.Add(10*time.Minute).Unix()), `"exp":-1e300`, 1)), ReasonClaimInvalid},
		{"exp negative", with(func(c map[string]any) { c["exp"] = -1 }), ReasonClaimInvalid},
		{"exp 0", mint(keyA(), "kid-a", cl0), ReasonClaimInvalid},
		{"exp true", with(func(c map[string]any) { c["exp"] = true }), ReasonClaimInvalid},
		{"iat negative", with(func(c map[string]any) { c["iat"] = -86400 }), ReasonClaimInvalid},
		{"nbf as a string", with(func(c map[string]any) { c["nbf"] = "soon" }), ReasonClaimInvalid},
		{"exp - iat over 24 h", with(func(c map[string]any) {
			c["iat"] = now.Add(-time.Hour).Unix()
			c["exp"] = now.Add(23*time.Hour + time.Second).Unix()
		}), ReasonTokenLifetimeTooLong},
		{"no iat and exp more than 24 h (and the skew) ahead", with(func(c map[string]any) {
			delete(c, "iat")
			c["exp"] = now.Add(24*time.Hour + DefaultSkew + time.Second).Unix()
		}), ReasonTokenLifetimeTooLong},
		// Registered claim types.
		{"iss as a number", with(func(c map[string]any) { c["iss"] = 1 }), ReasonClaimInvalid},
		{"sub as a number", with(func(c map[string]any) { c["sub"] = 42 }), ReasonClaimInvalid},
		{"jti as an object", with(func(c map[string]any) { c["jti"] = map[string]any{} }), ReasonClaimInvalid},
		{"aud as a number", with(func(c map[string]any) { c["aud"] = 7 }), ReasonClaimInvalid},
		{"aud as an array holding a number", with(func(c map[string]any) { c["aud"] = []any{testAudience, 7} }), ReasonClaimInvalid},
		// Values that end up in upstream headers.
		{"sub with NUL", with(func(c map[string]any) { c["sub"] = "alice\x00admin" }), ReasonClaimInvalid},
		{"sub with DEL", with(func(c map[string]any) { c["sub"] = "alice\x7f" }), ReasonClaimInvalid},
		{"sub with a C1 control (NEL)", with(func(c map[string]any) { c["sub"] = "alice\u0085admin" }), ReasonClaimInvalid},
		{"sub with U+2028", with(func(c map[string]any) { c["sub"] = "alice\u2028admin" }), ReasonClaimInvalid},
		{"sub with a tab", with(func(c map[string]any) { c["sub"] = "alice\tadmin" }), ReasonClaimInvalid},
		{"a tenant with NUL", with(func(c map[string]any) { c["org_id"] = "acme\x00" }), ReasonClaimInvalid},
		{"a tenant of 257 bytes", with(func(c map[string]any) { c["org_id"] = strings.Repeat("t", 257) }), ReasonClaimInvalid},
		{"a client_id with CR LF", with(func(c map[string]any) { c["client_id"] = "app\r\nX-User-Id: admin" }), ReasonClaimInvalid},
		{"an azp with a control character", with(func(c map[string]any) { c["azp"] = "app\x1b[31m" }), ReasonClaimInvalid},
		{"a client_id of 257 bytes", with(func(c map[string]any) { c["client_id"] = strings.Repeat("c", 257) }), ReasonClaimInvalid},
		// Scopes.
		{"scope as a number", with(func(c map[string]any) { c["scope"] = 1 }), ReasonClaimInvalid},
		{"scp as an object", with(func(c map[string]any) { c["scp"] = map[string]any{"a": true} }), ReasonClaimInvalid},
		{"scp as an array holding a number", with(func(c map[string]any) { c["scp"] = []any{"tool:read", 1} }), ReasonClaimInvalid},
		// ID tokens.
		{"a nonce claim (ID token)", with(func(c map[string]any) { c["nonce"] = "n-0S6_WzA2Mj" }), ReasonIDTokenPresented},
		{"an at_hash claim (ID token)", with(func(c map[string]any) { c["at_hash"] = "77QmUPtjPfzWtF2AnpK9RQ" }), ReasonIDTokenPresented},
		{"a c_hash claim (ID token)", with(func(c map[string]any) { c["c_hash"] = "LDktKdoQak3Pk0cnXxCltA" }), ReasonIDTokenPresented},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := v.Verify(context.Background(), tt.token)
			authError(t, err, http.StatusUnauthorized, CodeInvalidToken, tt.reason)
			if id.Subject != "" {
				t.Errorf("a refused token returned an identity: %+v", id)
			}
		})
	}
	if got := srv.fetches.Load() - base; got != 0 {
		t.Errorf("hostile tokens under a known kid caused %d JWKS fetches, want 0", got)
	}
}

// The limits are inclusive and the checks narrow: what is just inside them
// is accepted.
func TestVerifyAcceptsWhatTheLimitsAllow(t *testing.T) {
	t.Parallel()
	longKid := strings.Repeat("k", MaxKidBytes)
	srv := newJWKSServer(t, pubKey{"kid-a", keyA()}, pubKey{longKid, keyB()})
	clk := newClock()
	v := verifierFor(t, srv, clk, nil)
	now := clk.Now()
	with := func(mod func(map[string]any)) string {
		c := claims(now)
		mod(c)
		return mint(keyA(), "kid-a", c)
	}
	tests := []struct {
		name   string
		token  string
		scopes []string
	}{
		{"exp - iat of exactly 24 h", with(func(c map[string]any) {
			c["iat"] = now.Add(-time.Hour).Unix()
			c["exp"] = now.Add(23 * time.Hour).Unix()
		}), []string{"tool:read"}},
		{"no iat and exp 24 h ahead", with(func(c map[string]any) {
			delete(c, "iat")
			c["exp"] = now.Add(24 * time.Hour).Unix()
		}), []string{"tool:read"}},
		{"fractional time claims", with(func(c map[string]any) { c["exp"] = float64(now.Add(time.Minute).Unix()) + 0.5 }), []string{"tool:read"}},
		{"a kid of 256 bytes", mint(keyB(), longKid, claims(now)), []string{"tool:read"}},
		{"scope and scp are united, in token order", with(func(c map[string]any) {
			c["scope"] = "a b"
			c["scp"] = []any{"b", "c"}
		}), []string{"a", "b", "c"}},
		{"scope as an array", with(func(c map[string]any) { c["scope"] = []any{"x:read", "x:write"} }), []string{"x:read", "x:write"}},
		{"scp as a space-separated string", with(func(c map[string]any) { delete(c, "scope"); c["scp"] = "s1 s2" }), []string{"s1", "s2"}},
		{"a null scope counts as absent", with(func(c map[string]any) { c["scope"] = nil; c["scp"] = "only" }), []string{"only"}},
		{"a scope string split only at spaces", with(func(c map[string]any) { c["scope"] = "a  b\tc" }), []string{"a"}},
		{"nested members may differ only in case", with(func(c map[string]any) {
			c["resource_access"] = map[string]any{"App": []any{"r"}, "app": []any{"s"}}
		}), []string{"tool:read"}},
		{"a non-ASCII printable subject", with(func(c map[string]any) { c["sub"] = "zoë|ünïcode" }), []string{"tool:read"}},
		{"a subject of 256 bytes", with(func(c map[string]any) { c["sub"] = strings.Repeat("é", 128) }), []string{"tool:read"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := v.Verify(context.Background(), tt.token)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !reflect.DeepEqual(id.Scopes, tt.scopes) {
				t.Errorf("Scopes = %q, want %q", id.Scopes, tt.scopes)
			}
		})
	}
}

func TestVerifyHonoursConfiguredTokenTypesAndLifetime(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, pubKey{"kid-a", keyA()})
	clk := newClock()
	now := clk.Now()
	typed := func(typ any) string {
		h := map[string]any{"alg": "RS256", "kid": "kid-a"}
		if typ != nil {
			h["typ"] = typ
		}
		return signRSA(keyA(), "RS256", h, claims(now))
	}
	t.Run("token types", func(t *testing.T) {
		t.Parallel()
		v := verifierFor(t, srv, clk, func(c *VerifierConfig) { c.TokenTypes = []string{"at+jwt"} })
		for _, typ := range []string{"at+jwt", "application/at+jwt", "AT+JWT", "Application/At+Jwt"} {
			if _, err := v.Verify(context.Background(), typed(typ)); err != nil {
				t.Errorf("typ %q with at+jwt allowed: %v", typ, err)
			}
		}
		for _, typ := range []any{"JWT", "jwt", "JOSE", "at+jwt2", "application/jwt", nil} {
			_, err := v.Verify(context.Background(), typed(typ))
			authError(t, err, http.StatusUnauthorized, CodeInvalidToken, ReasonTokenTypeNotAllowed)
		}
		anyTyp := verifierFor(t, srv, clk, nil)
		for _, typ := range []any{"JWT", "at+jwt", "whatever", nil} {
			if _, err := anyTyp.Verify(context.Background(), typed(typ)); err != nil {
				t.Errorf("typ %v with no token types configured: %v", typ, err)
			}
		}
	})
	t.Run("max lifetime", func(t *testing.T) {
		t.Parallel()
		v := verifierFor(t, srv, clk, func(c *VerifierConfig) { c.MaxLifetime = time.Hour })
		life := func(d time.Duration) string {
			c := claims(now)
			c["exp"] = now.Add(d).Unix()
			return mint(keyA(), "kid-a", c)
		}
		if _, err := v.Verify(context.Background(), life(time.Hour)); err != nil {
			t.Errorf("a lifetime of exactly MaxLifetime: %v", err)
		}
		_, err := v.Verify(context.Background(), life(time.Hour+time.Second))
		authError(t, err, http.StatusUnauthorized, CodeInvalidToken, ReasonTokenLifetimeTooLong)
	})
}

// Keys the issuer publishes for something else, of another type or
// algorithm, or too weak never verify a token, even under their own kid;
// the other keys of the same set keep working.
func TestJWKSKeysUnfitForTheTokenAreIgnored(t *testing.T) {
	t.Parallel()
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srv := newJWKSServer(t)
	doc := []map[string]any{
		jwkOf(t, keyA(), "kid", "enc", "use", "enc", "alg", "RS256"),
		jwkOf(t, keyA(), "kid", "ops"),
		jwkOf(t, keyA(), "kid", "ps", "alg", "PS256"),
		jwkOf(t, ec, "kid", "ec", "alg", "ES256", "use", "sig"),
		jwkOf(t, weak, "kid", "weak", "alg", "RS256", "use", "sig"),
		jwkOf(t, keyB(), "kid", "good", "alg", "RS256", "use", "sig"),
	}
	doc[1]["key_ops"] = []string{"encrypt"} // an array: set by hand
	srv.setDoc(t, doc...)
	clk := newClock()
	v := verifierFor(t, srv, clk, func(c *VerifierConfig) { c.Algorithms = []string{"RS256", "ES256"} })
	now := clk.Now()
	if _, err := v.Verify(context.Background(), mint(keyB(), "good", claims(now))); err != nil {
		t.Fatalf("the good key of a set that also holds a 1024-bit key: %v", err)
	}
	if st := v.JWKSStats(); st.Keys != 5 {
		t.Errorf("the loaded set holds %d keys, want 5 (the 1024-bit key dropped, the rest kept)", st.Keys)
	}
	for _, tc := range []struct{ name, token string }{
		{"a key published for encryption (use=enc)", mint(keyA(), "enc", claims(now))},
		{"a key whose key_ops exclude verify", mint(keyA(), "ops", claims(now))},
		{"a key published for PS256, token RS256", mint(keyA(), "ps", claims(now))},
		{"an EC key, token RS256", mint(keyA(), "ec", claims(now))},
		{"an RSA key of 1024 bits", mint(weak, "weak", claims(now))},
		{"an RS256 key, token ES256 signed by the EC key", signES256(ec, map[string]any{"alg": "ES256", "kid": "good"}, claims(now))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), tc.token)
			authError(t, err, http.StatusUnauthorized, CodeInvalidToken, ReasonKeyUnknown)
		})
	}
	// The EC key is usable for what it is published for.
	if _, err := v.Verify(context.Background(), signES256(ec, map[string]any{"alg": "ES256", "kid": "ec"}, claims(now))); err != nil {
		t.Errorf("ES256 by the EC key: %v", err)
	}
}

// A kid is opaque: path traversal and SQL are just unknown kids, bounded by
// the refetch cooldown like any other; an oversized kid never reaches the
// lookup at all.
func TestKidIsOpaqueAndBounded(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, pubKey{"kid-a", keyA()})
	clk := newClock()
	v := verifierFor(t, srv, clk, nil) // cooldown 1 h
	base := srv.settle(t, v)
	for _, kid := range []string{"../../etc/passwd", "' OR 1=1 --", "kid-a\x00", "kid-a ", "KID-A", "%2e%2e%2fetc"} {
		_, err := v.Verify(context.Background(), mint(keyA(), kid, claims(clk.Now())))
		authError(t, err, http.StatusUnauthorized, CodeInvalidToken, ReasonKeyUnknown)
	}
	if got := srv.fetches.Load() - base; got != 1 {
		t.Errorf("six unknown kids within one cooldown caused %d fetches, want exactly 1", got)
	}
	for kid, reason := range map[string]string{strings.Repeat("x", 1<<10): ReasonTokenMalformed, strings.Repeat("x", 10<<10): ReasonTokenTooLarge} {
		_, err := v.Verify(context.Background(), mint(keyA(), kid, claims(clk.Now())))
		authError(t, err, http.StatusUnauthorized, CodeInvalidToken, reason)
	}
	clk.Advance(2 * time.Hour) // past the cooldown: only a lookup could fetch now
	for _, n := range []int{MaxKidBytes + 1, 10 << 10} {
		_, _ = v.Verify(context.Background(), mint(keyA(), strings.Repeat("y", n), claims(clk.Now())))
	}
	if got := srv.fetches.Load() - base; got > 2 {
		t.Errorf("oversized kids caused JWKS fetches (%d in all)", got)
	}
}

// Headers that carry or point at a key are refused and never followed: an
// attacker's JWKS that counts its hits sees none.
func TestKeyCarryingHeadersAreNeverFetched(t *testing.T) {
	t.Parallel()
	srv := newJWKSServer(t, pubKey{"kid-a", keyA()})
	var hits atomic.Int64
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(mustJSON(map[string]any{"keys": []any{jwkOf(t, keyC(), "kid", "evil", "alg", "RS256")}}))
	}))
	t.Cleanup(evil.Close)
	clk := newClock()
	v := verifierFor(t, srv, clk, nil)
	now := clk.Now()
	for _, h := range []map[string]any{
		{"alg": "RS256", "kid": "evil", "jku": evil.URL + "/jwks.json"},
		{"alg": "RS256", "jku": evil.URL + "/jwks.json"},
		{"alg": "RS256", "kid": "evil", "x5u": evil.URL + "/cert.pem"},
		{"alg": "RS256", "jwk": jwkOf(t, keyC(), "kid", "evil")},
		{"alg": "RS256", "kid": "kid-a", "jwk": jwkOf(t, keyC(), "kid", "kid-a")},
		{"alg": "RS256", "kid": "evil", "x5c": []any{b64(keyC().N.Bytes())}},
	} {
		_, err := v.Verify(context.Background(), signRSA(keyC(), "RS256", h, claims(now)))
		authError(t, err, http.StatusUnauthorized, CodeInvalidToken, ReasonHeaderNotAllowed)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the attacker's server was fetched %d times", n)
	}
}

// The last good key set keeps verifying for MaxStale after the last
// successful fetch while the JWKS endpoint fails; then every token, also
// one verified before, is refused with 503 until a fetch succeeds, and
// recovery fetches are bounded by the refetch cooldown.
func TestStaleKeySetFailsClosedAfterMaxStale(t *testing.T) {
	t.Parallel()
	const maxStale, cooldown = 10 * time.Minute, time.Minute
	modes := []struct {
		name       string
		fail, heal func(t *testing.T, s *jwksServer)
	}{
		{"the endpoint answers 500",
			func(_ *testing.T, s *jwksServer) { s.down.Store(true) },
			func(_ *testing.T, s *jwksServer) { s.down.Store(false) }},
		{"the endpoint answers garbage",
			func(_ *testing.T, s *jwksServer) { s.setBody("<html>maintenance</html>") },
			func(t *testing.T, s *jwksServer) { s.setKeys(t, pubKey{"kid-a", keyA()}) }},
		{"the endpoint answers a set of unusable keys",
			func(_ *testing.T, s *jwksServer) {
				s.setBody(`{"keys":[{"kty":"RSA","kid":"kid-a","n":"AQAB","e":"AQAB"}]}`)
			},
			func(t *testing.T, s *jwksServer) { s.setKeys(t, pubKey{"kid-a", keyA()}) }},
		{"the endpoint times out",
			func(_ *testing.T, s *jwksServer) { s.hanging.Store(true) },
			func(_ *testing.T, s *jwksServer) { s.hanging.Store(false) }},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			srv := newJWKSServer(t, pubKey{"kid-a", keyA()})
			clk := newClock()
			v := verifierFor(t, srv, clk, func(c *VerifierConfig) {
				c.MaxStale, c.RefetchCooldown = maxStale, cooldown
				c.HTTPClient = &http.Client{Timeout: 300 * time.Millisecond}
			})
			srv.settle(t, v)
			ctx := context.Background()
			token := func() string {
				c := claims(clk.Now())
				c["exp"] = clk.Now().Add(time.Hour).Unix()
				return mint(keyA(), "kid-a", c)
			}
			cached := token()
			if _, err := v.Verify(ctx, cached); err != nil {
				t.Fatal(err)
			}
			m.fail(t, srv)

			// Within MaxStale: the endpoint fails (an unknown kid makes the
			// verifier try it), the last good set keeps verifying.
			clk.Advance(maxStale / 2)
			failures := v.JWKSStats().Failures
			_, err := v.Verify(ctx, mint(keyA(), "kid-new", claims(clk.Now())))
			authError(t, err, http.StatusUnauthorized, CodeInvalidToken, ReasonKeyUnknown)
			if v.JWKSStats().Failures == failures {
				t.Fatal("the refetch did not fail: the endpoint is not failing")
			}
			if _, err := v.Verify(ctx, token()); err != nil {
				t.Fatalf("a new token within MaxStale: %v", err)
			}
			if _, err := v.Verify(ctx, cached); err != nil {
				t.Fatalf("a cached token within MaxStale: %v", err)
			}

			// Beyond MaxStale: 503 for new and cached tokens alike.
			clk.Advance(maxStale/2 + time.Second)
			for _, tok := range []string{token(), cached} {
				_, err := v.Verify(ctx, tok)
				authError(t, err, http.StatusServiceUnavailable, "", ReasonJWKSUnavailable)
			}
			if !v.JWKSStats().Stale {
				t.Error("JWKSStats().Stale is false beyond MaxStale")
			}
			// Within the cooldown no further fetch is tried, even once the
			// endpoint is back.
			m.heal(t, srv)
			before := srv.fetches.Load()
			_, err = v.Verify(ctx, token())
			authError(t, err, http.StatusServiceUnavailable, "", ReasonJWKSUnavailable)
			if got := srv.fetches.Load() - before; got != 0 {
				t.Errorf("%d fetches within the cooldown, want 0", got)
			}

			// After the cooldown the next request fetches and recovers.
			clk.Advance(cooldown + time.Second)
			if _, err := v.Verify(ctx, token()); err != nil {
				t.Fatalf("after the endpoint recovered: %v", err)
			}
			if got := srv.fetches.Load() - before; got != 1 {
				t.Errorf("recovery took %d fetches, want 1", got)
			}
			if _, err := v.Verify(ctx, cached); err != nil {
				t.Errorf("the cached token after recovery: %v", err)
			}
			if v.JWKSStats().Stale {
				t.Error("JWKSStats().Stale after recovery")
			}
		})
	}
}

func TestDecodeObject(t *testing.T) {
	t.Parallel()
	good := map[string]any{
		`{}`:                          map[string]any{},
		` {"a":1} `:                   map[string]any{"a": 1.0},
		`{"a":[1,"x",null,true,{}]}`:  map[string]any{"a": []any{1.0, "x", nil, true, map[string]any{}}},
		`{"a":{"b":1},"c":{"b":2}}`:   map[string]any{"a": map[string]any{"b": 1.0}, "c": map[string]any{"b": 2.0}},
		`{"a":{"X":1,"x":2}}`:         map[string]any{"a": map[string]any{"X": 1.0, "x": 2.0}},
		`{"a":[]}`:                    map[string]any{"a": []any{}},
		`{"\u0073ub":"escaped name"}`: map[string]any{"sub": "escaped name"},
	}
	for in, want := range good {
		got, err := decodeObject([]byte(in))
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("decodeObject(%s) = %#v, %v; want %#v", in, got, err, want)
		}
	}
	dup := []string{`{"a":1,"a":2}`, `{"a":1,"A":2}`, `{"sub":1,"\u0073ub":2}`, `{"k":1,"\u212a":2}`, `{"x":{"b":1,"b":2}}`, `{"x":[{"b":1,"b":2}]}`}
	for _, in := range dup {
		if _, err := decodeObject([]byte(in)); err == nil || !strings.Contains(err.Error(), errDuplicateName.Error()) {
			t.Errorf("decodeObject(%s): %v, want a duplicate name error", in, err)
		}
	}
	bad := []string{``, ` `, `[]`, `"s"`, `1`, `null`, `{`, `{"a"}`, `{"a":1,}`, `{"a":1}x`, `{"a":1}{}`, `{a:1}`,
		"{\"a\":\"\xff\"}", `{"a":1e400}`, `{"a":` + strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth) + `}`}
	for _, in := range bad {
		if _, err := decodeObject([]byte(in)); err == nil || strings.Contains(err.Error(), errDuplicateName.Error()) {
			t.Errorf("decodeObject(%q): %v, want a syntax error", in, err)
		}
	}
}

func TestFoldName(t *testing.T) {
	t.Parallel()
	same := [][2]string{{"sub", "SUB"}, {"sub", "Sub"}, {"sub", "ſub"}, {"kid", "\u212aid"}, {"org_id", "ORG_ID"}, {"straße", "STRAßE"}}
	for _, p := range same {
		if foldName(p[0]) != foldName(p[1]) || !strings.EqualFold(p[0], p[1]) {
			t.Errorf("foldName(%q) = %q, foldName(%q) = %q: want equal", p[0], foldName(p[0]), p[1], foldName(p[1]))
		}
	}
	differ := [][2]string{{"sub", "sub "}, {"sub", "su"}, {"org_id", "org-id"}, {"a", "á"}}
	for _, p := range differ {
		if foldName(p[0]) == foldName(p[1]) {
			t.Errorf("foldName(%q) == foldName(%q)", p[0], p[1])
		}
	}
}
