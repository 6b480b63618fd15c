package auth

// Fuzz targets of the auth package: the Authorization header parser, the
// token verifier, the WWW-Authenticate renderer and the Protected Resource
// Metadata document. Each target is deterministic (a fixed RSA key, a fixed
// clock, a JWKS served once per target on 127.0.0.1) and asserts properties,
// not just the absence of panics. Run one with
//
//	go test -run '^$' -fuzz '^FuzzVerify$' -fuzztime 1m ./auth
//
// Seed inputs are added with f.Add below and stored under testdata/fuzz/.

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// fuzzKeyPEM is a 2048-bit RSA key made for these fuzz targets only. It is
// fixed (not generated per run) so that every signed seed, and every input
// the fuzzer derives from one, verifies the same way in every process: a
// crasher found by one fuzz worker reproduces in plain `go test`. ("TESTING
// KEY" keeps secret scanners quiet; it is replaced before parsing.)
const fuzzKeyPEM = `-----BEGIN TESTING KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQC0/jpQtK+TfXi1
MdMiwES51FpHLSfqm/P76b69cKsHEtCm82nDkQTt36BQfes+1IwxlMHAb4DWuTVJ
q3+0ULOF0I8WTO9VpDyQCv2ko6jzNdXkWeKv0AWPkopg3jc+cY4IAxU3AmK/xUnt
BKBzVJAIX869ra84T/phm9wdMJLYBAkhhFNTKAAPdzSFwt42kPef18eEobQgfjUq
6JWkwFd7X7uX3emguIvfZv5V15OPZeeo32o7NuiAq5hs6yybjW75mo1Y075Njzd7
wZFSW0aN6o5qzY5qPV2RXJrAa57hp7KiuXfx1p/t2llH+JJvuoUVt97SRM5GXpnP
Ejg9MSS7AgMBAAECggEAWa+cf/94/VHwbYEaCZ9Sru7OKXTz0aqj1RG3xbG93gxx
vjjiENmcoq7shtZOqtyx96Op+syGAGDYSgAkkNpoiweUz80hz8NJi2sW0u2SO6pS
qgvsa4heKQ3JakTTBStJ4Sh967tP6Y0+m6duRpgBo1SuYoldST9AZ/vOr9ww9776
0gva/zSIzMzn4TJx1W/DkD6yVzsrgF4m5Z7g9r+/5Q8KxZAkVokWsm5xS1eZ7YS4
PcE8chWmKIdjmkaPXrrllPfZq53XPhmTzD4vzvETUv90zJC+GZBeGA4nkjExx+hX
H0gadmKdiGjNAvPtdAv1r+cZG9Sf3hscLYe92v8xcQKBgQDcAYbrSUs1c0J7K3Sy
RJPDaWJquCRqzaQqIjzgg3M/NJJ79u+WYJZnkQ3F5PU3Yo+eTZrP5nZFb22rXBvb
6MNPwpUDa3YrhMZecDyurFkEWF1dumj8/wY86wE5qZN2vo/zsTGLUCCd+UBK15b9
/TMu2gmy05zcDIs3mnOxEyNcqQKBgQDSmrsD+rME+yalxUZiDhZTuJCqH6KXQCfw
0Rz7QI84Wpy440pmNi6CJh7bZFHOvts9LG5vsIB3sZnnWGLVFT72CwwDeKdkCeZC
k3IPdFC9UzmNpSG1CiP7gn7K5lujKH3coj/+fZ05Y3Eb3Zu6vj3SfGCyoPwPXxS1
Kz88Qx8QwwKBgQDOR4BBS8+ApjlHU09vdm01Y7Irbcx3d6jc+I0r1RRRxvEx2i56
SMW9BXxseGiTLY6LVyg4llV+dSPW794PKwc12bPuKOv7kdqM4Z+EB4TPVir0nruh
u1wV8iKL9juVssc2LoXNoatzcyidA9dG/gjnfPhq+46vo/NEh0TCWrdlQQKBgCdF
vUwPquRp5RoSgH52fAleqHNg9NPZndkVVZ8wucRbeVAs6knHHsMcUrK8sVipVH7C
01E2i65GSxnN7JgpnxUImFPpYuWPxwVxM1rYaNn1NA1K1s9Itc8H1ZcGf94cBeRn
ySEu0WvLNGNq3shjA2pF0U5eIMLJCzaBewhEx/07AoGBALH2gcQUDmA2OiTkLdNE
KjSPSexh/E7LOWc2h0jamLTyrWgpYEMPNEmuvtbz8uvTT50A16zXduoJNpP2VoKT
qkKdeqQMXGOpaJadgmh+Maa5nGrkVnR5+u5GFL27ib6SQb7BlGCrmYyuuVZxUy/m
aUrYRL1sXsWvGQe8NO93HGFU
-----END TESTING KEY-----
`

const fuzzKID = "fuzz-key-1"

var fuzzKey = sync.OnceValue(func() *rsa.PrivateKey {
	block, _ := pem.Decode([]byte(strings.ReplaceAll(fuzzKeyPEM, "TESTING KEY", "PRIVATE KEY")))
	if block == nil {
		panic("fuzz key: no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		panic(err)
	}
	return k.(*rsa.PrivateKey)
})

// fuzzSignRaw signs the exact header and payload JSON texts with RS256
// (PKCS #1 v1.5 is deterministic), so seeds can carry duplicate keys,
// invalid UTF-8 or trailing data that json.Marshal would never produce.
func fuzzSignRaw(key *rsa.PrivateKey, header, payload string) string {
	in := b64([]byte(header)) + "." + b64([]byte(payload))
	sum := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		panic(err)
	}
	return in + "." + b64(sig)
}

// verifySeed is one hand-written token. accept: the verifier may return an
// Identity for it (it is signed by the published key and its claims are
// acceptable), and then the subject must be sub. Every other input, seeded
// or mutated, must be refused.
type verifySeed struct {
	name   string
	token  string
	accept bool
	sub    string
}

func verifySeeds(now time.Time) []verifySeed {
	key := fuzzKey()
	iat, exp := now.Unix(), now.Add(10*time.Minute).Unix()
	cl := func(kv ...any) map[string]any {
		c := map[string]any{"iss": testIssuer, "aud": testAudience, "sub": "alice", "iat": iat, "nbf": iat,
			"exp": exp, "jti": "fuzz-jti-1", "scope": "tool:read", "org_id": "acme"}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		return c
	}
	hd := func(kv ...any) map[string]any {
		h := map[string]any{"alg": "RS256", "typ": "JWT", "kid": fuzzKID}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(h, kv[i].(string))
			} else {
				h[kv[i].(string)] = kv[i+1]
			}
		}
		return h
	}
	sign := func(h, c map[string]any) string { return signRSA(key, "RS256", h, c) }
	hdrJSON := string(mustJSON(hd()))
	// payload builds a claims JSON text by hand: the valid claims, then
	// extra members verbatim (duplicates included).
	payload := func(extra string) string {
		s := fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"alice","iat":%d,"nbf":%d,"exp":%d,"jti":"fuzz-jti-1","scope":"tool:read","org_id":"acme"`,
			testIssuer, testAudience, iat, iat, exp)
		if extra != "" {
			s += "," + extra
		}
		return s + "}"
	}
	valid := sign(hd(), cl())
	parts := strings.Split(valid, ".")
	h, p, s := parts[0], parts[1], parts[2]
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		panic(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hs := func(secret []byte, h map[string]any) string { return signHMAC(secret, "HS256", h, cl()) }
	sigOver := func(in string) string { // RS256 signature of an arbitrary signing input
		sum := sha256.Sum256([]byte(in))
		sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
		if err != nil {
			panic(err)
		}
		return b64(sig)
	}
	flip := []byte(s)
	flip[10] ^= 1
	if flip[10] == '.' { // unreachable for base64url, but keep three parts
		flip[10] = 'A'
	}

	return []verifySeed{
		// Accepted: signed by the published key with acceptable claims.
		{name: "valid", token: valid, accept: true, sub: "alice"},
		{name: "valid without kid (single-key set)", token: sign(hd("kid", nil), cl()), accept: true, sub: "alice"},
		{name: "valid with an audience array", token: sign(hd(), cl("aud", []any{"other", testAudience})), accept: true, sub: "alice"},
		{name: "valid with a null kid", token: fuzzSignRaw(key, `{"alg":"RS256","kid":null}`, payload("")), accept: true, sub: "alice"},
		// RFC 7519 §4: duplicate claim names are refused or the lexically last wins.
		{name: "duplicate sub: the last one wins", token: fuzzSignRaw(key, hdrJSON, payload(`"sub":"mallory"`)), accept: true, sub: "mallory"},
		{name: "duplicate exp, the last one valid", token: fuzzSignRaw(key, hdrJSON, payload(fmt.Sprintf(`"exp":%d`, exp+60))), accept: true, sub: "alice"},
		{name: "sub and a case variant Sub", token: fuzzSignRaw(key, hdrJSON, payload(`"Sub":"mallory"`)), accept: true, sub: "alice"},

		// Refused: serialization.
		{name: "empty", token: ""},
		{name: "dots only", token: ".."},
		{name: "four dots", token: "...."},
		{name: "five-part JWE", token: h + "." + p + "." + s + ".a.b"},
		{name: "two parts", token: h + "." + p},
		{name: "four parts", token: valid + "." + s},
		{name: "JWS JSON flattened serialization", token: fmt.Sprintf(`{"payload":%q,"protected":%q,"signature":%q}`, p, h, s)},
		{name: "JWS JSON general serialization", token: fmt.Sprintf(`{"payload":%q,"signatures":[{"protected":%q,"signature":%q}]}`, p, h, s)},
		{name: "JWS JSON with dots in an unprotected header", token: fmt.Sprintf(`{"payload":%q,"signatures":[{"protected":%q,"header":{"kid":"a.b"},"signature":%q}]}`, p, h, s)},
		{name: "header in standard base64 with padding", token: base64.StdEncoding.EncodeToString([]byte(hdrJSON)) + "." + p + "." + s},
		{name: "payload with padding", token: h + "." + p + "==." + s},
		{name: "signature with padding", token: valid + "=="},
		{name: "signature in standard base64", token: h + "." + p + "." + strings.NewReplacer("-", "+", "_", "/").Replace(s)},
		{name: "percent signs", token: "%%%." + p + "." + s},
		{name: "spaces around the dots", token: h + " . " + p + " . " + s},
		{name: "CR LF inside the header", token: h[:4] + "\r\n" + h[4:] + "." + p + "." + s},
		{name: "flipped signature bit", token: h + "." + p + "." + string(flip)},
		{name: "truncated signature", token: h + "." + p + "." + s[:len(s)-4]},
		{name: "empty signature", token: h + "." + p + "."},
		{name: "signature of another payload", token: h + "." + b64([]byte(payload(`"x":1`))) + "." + s},
		{name: "token over the size limit", token: strings.Repeat("a", DefaultMaxTokenBytes+1)},

		// Refused: header.
		{name: "header is an array", token: b64([]byte(`["RS256"]`)) + "." + p + "." + s},
		{name: "header is a string", token: b64([]byte(`"RS256"`)) + "." + p + "." + s},
		{name: "header is null", token: b64([]byte(`null`)) + "." + p + "." + s},
		{name: "header with trailing data", token: b64([]byte(hdrJSON+`{}`)) + "." + p + "." + s},
		{name: "header truncated", token: b64([]byte(`{"alg":"RS256"`)) + "." + p + "." + s},
		{name: "header with invalid UTF-8", token: fuzzSignRaw(key, "{\"alg\":\"RS256\",\"kid\":\"\xff\xfe"+fuzzKID+"\"}", payload(""))},
		{name: "alg none", token: signing(hd("alg", "none"), cl()) + "."},
		{name: "alg None", token: signing(hd("alg", "None"), cl()) + "."},
		{name: "alg NONE with a real signature", token: sign(hd("alg", "NONE"), cl())},
		{name: "alg missing", token: sign(hd("alg", nil), cl())},
		{name: "alg as an array", token: sign(hd("alg", []any{"RS256"}), cl())},
		{name: "alg RS512 over RS256", token: sign(hd("alg", "RS512"), cl())},
		{name: "HS256 keyed with the PEM public key", token: hs(pubPEM, hd("alg", "HS256"))},
		{name: "HS256 keyed with the DER public key", token: hs(pubDER, hd("alg", "HS256"))},
		{name: "HS256 keyed with the modulus", token: hs(key.N.Bytes(), hd("alg", "HS256"))},
		{name: "kid path traversal", token: sign(hd("kid", "../../../../etc/passwd"), cl())},
		{name: "kid SQL injection", token: sign(hd("kid", "' OR '1'='1' --"), cl())},
		{name: "kid with NUL", token: sign(hd("kid", fuzzKID+"\x00"), cl())},
		{name: "kid of 5 KB", token: sign(hd("kid", strings.Repeat("k", 5<<10)), cl())},
		{name: "kid of 10 KB", token: sign(hd("kid", strings.Repeat("k", 10<<10)), cl())},
		{name: "kid as a number", token: sign(hd("kid", 1), cl())},
		{name: "kid as an object", token: sign(hd("kid", map[string]any{"kid": fuzzKID}), cl())},
		{name: "jku header", token: sign(hd("jku", "http://127.0.0.1:1/jwks.json"), cl())},
		{name: "x5u header", token: sign(hd("x5u", "http://127.0.0.1:1/cert.pem"), cl())},
		{name: "embedded jwk header", token: sign(hd("jwk", map[string]any{"kty": "RSA", "kid": fuzzKID}), cl())},
		{name: "x5c header", token: sign(hd("x5c", []any{"MIIB"}), cl())},
		{name: "crit header", token: sign(hd("crit", []any{"exp"}), cl())},
		{name: "crit null", token: fuzzSignRaw(key, `{"alg":"RS256","kid":"`+fuzzKID+`","crit":null}`, payload(""))},
		{name: "b64 false (unencoded payload)", token: func() string {
			hj := `{"alg":"RS256","kid":"` + fuzzKID + `","b64":false,"crit":["b64"]}`
			in := b64([]byte(hj)) + "." + payload("")
			return b64([]byte(hj)) + "." + b64([]byte(payload(""))) + "." + sigOver(in)
		}()},
		{name: "b64 false without crit", token: func() string {
			hj := `{"alg":"RS256","kid":"` + fuzzKID + `","b64":false}`
			return b64([]byte(hj)) + "." + b64([]byte(payload(""))) + "." + sigOver(b64([]byte(hj))+"."+payload(""))
		}()},

		// Refused: payload.
		{name: "payload is an array", token: fuzzSignRaw(key, hdrJSON, `["alice"]`)},
		{name: "payload is a string", token: fuzzSignRaw(key, hdrJSON, `"alice"`)},
		{name: "payload is null", token: fuzzSignRaw(key, hdrJSON, `null`)},
		{name: "payload is empty", token: fuzzSignRaw(key, hdrJSON, ``)},
		{name: "payload with trailing data", token: fuzzSignRaw(key, hdrJSON, payload("")+`{"sub":"mallory"}`)},
		{name: "payload truncated", token: fuzzSignRaw(key, hdrJSON, payload("")[:40])},
		{name: "exp as a string", token: sign(hd(), cl("exp", "2030-01-02T03:14:05Z"))},
		{name: "exp as a numeric string", token: sign(hd(), cl("exp", fmt.Sprint(exp)))},
		{name: "exp 0", token: sign(hd(), cl("exp", 0))},
		{name: "exp negative", token: sign(hd(), cl("exp", -1))},
		{name: "exp missing", token: sign(hd(), cl("exp", nil))},
		{name: "exp in the past", token: sign(hd(), cl("exp", iat-3600))},
		{name: "exp huge float", token: fuzzSignRaw(key, hdrJSON, strings.Replace(payload(""), fmt.Sprintf(`"exp":%d`, exp), `"exp":1e300`, 1))},
		{name: "exp beyond int64", token: fuzzSignRaw(key, hdrJSON, strings.Replace(payload(""), fmt.Sprintf(`"exp":%d`, exp), `"exp":99999999999999999999999`, 1))},
		{name: "exp -1e300", token: fuzzSignRaw(key, hdrJSON, strings.Replace(payload(""), fmt.Sprintf(`"exp":%d`, exp), `"exp":-1e300`, 1))},
		{name: "nbf far in the future", token: sign(hd(), cl("nbf", exp+86400))},
		{name: "nbf as a string", token: sign(hd(), cl("nbf", "soon"))},
		{name: "iat far in the future", token: sign(hd(), cl("iat", exp+86400))},
		{name: "duplicate exp, the last one expired", token: fuzzSignRaw(key, hdrJSON, payload(fmt.Sprintf(`"exp":%d`, iat-3600)))},
		{name: "duplicate iss, the last one foreign", token: fuzzSignRaw(key, hdrJSON, payload(`"iss":"https://evil.test/"`))},
		{name: "duplicate aud, the last one foreign", token: fuzzSignRaw(key, hdrJSON, payload(`"aud":"https://evil.test/mcp"`))},
		{name: "wrong issuer", token: sign(hd(), cl("iss", "https://evil.test/"))},
		{name: "issuer without the trailing slash", token: sign(hd(), cl("iss", strings.TrimSuffix(testIssuer, "/")))},
		{name: "wrong audience", token: sign(hd(), cl("aud", "https://evil.test/mcp"))},
		{name: "empty audience array", token: sign(hd(), cl("aud", []any{}))},
		{name: "sub missing", token: sign(hd(), cl("sub", nil))},
		{name: "sub empty", token: sign(hd(), cl("sub", ""))},
		{name: "sub a number", token: sign(hd(), cl("sub", 42))},
		{name: "sub with CR LF", token: sign(hd(), cl("sub", "alice\r\nX-Injected: 1"))},
		{name: "sub with LF", token: sign(hd(), cl("sub", "alice\nadmin"))},
		{name: "sub with NUL", token: sign(hd(), cl("sub", "alice\x00admin"))},
		{name: "sub with DEL", token: sign(hd(), cl("sub", "alice\x7f"))},
		{name: "sub of 257 characters", token: sign(hd(), cl("sub", strings.Repeat("s", 257)))},
		{name: "tenant with LF", token: sign(hd(), cl("org_id", "acme\nevil"))},
		{name: "sub padded with spaces", token: sign(hd(), cl("sub", " alice "))},
		{name: "sub of spaces only", token: sign(hd(), cl("sub", "   "))},
		{name: "sub with a zero-width space", token: sign(hd(), cl("sub", "al\u200bice"))},
		{name: "sub with a right-to-left override", token: sign(hd(), cl("sub", "\u202eecila"))},
		{name: "sub of a lone surrogate escape", token: fuzzSignRaw(key, hdrJSON, strings.Replace(payload(""), `"sub":"alice"`, `"sub":"\udc80"`, 1))},
		{name: "tenant a number", token: sign(hd(), cl("org_id", 42))},
		{name: "tenant an object", token: sign(hd(), cl("org_id", map[string]any{"a": 1}))},
		{name: "tenant empty", token: sign(hd(), cl("org_id", ""))},
		{name: "duplicate sub, the last one with CR LF", token: fuzzSignRaw(key, hdrJSON, payload(`"sub":"alice\r\nadmin"`))},
	}
}

// FuzzVerify feeds arbitrary token strings to a Verifier of a real JWKS
// (one RSA key, served on 127.0.0.1) with a fixed clock. Properties: no
// panic; an Identity only for the signed seeds marked accept (the fuzzer
// cannot forge RS256, so any other accepted input, however close to a valid
// token, is a bug), with their subject, no control characters in it, and an
// expiry still ahead; otherwise an *Error wrapping ErrUnauthorized with a
// reason, a quotable description and a 4xx or 503 status; and the same
// answer when asked twice (the verified-token cache agrees with the
// verifier).
func FuzzVerify(f *testing.F) {
	srv := newJWKSServer(f, pubKey{fuzzKID, fuzzKey()})
	clk := newClock()
	v := verifierFor(f, srv, clk, nil)
	srv.settle(f, v)
	seeds := verifySeeds(clk.Now())
	accept, names := map[string]string{}, map[string]string{}
	for _, s := range seeds {
		f.Add(s.token)
		names[s.token] = s.name
		if s.accept {
			accept[s.token] = s.sub
		}
	}
	f.Fuzz(func(t *testing.T, raw string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if name, ok := names[raw]; ok {
			t.Logf("seed %q", name)
		}
		check := func(id Identity, err error) (string, bool) {
			t.Helper()
			if err == nil {
				want, ok := accept[raw]
				if !ok {
					t.Fatalf("Verify accepted a token that is not one of the tokens signed for this test (a non-canonical or forged encoding):\n%q\nidentity: %+v", raw, id)
				}
				if id.Subject != want {
					t.Fatalf("Verify(%q): subject %q, want %q", raw, id.Subject, want)
				}
				if strings.ContainsFunc(id.Subject+id.Tenant, unicode.IsControl) {
					t.Fatalf("Verify(%q): identity carries control characters: %q / %q", raw, id.Subject, id.Tenant)
				}
				if checkIdentityValue("subject", id.Subject) != nil || id.Tenant != "" && checkIdentityValue("tenant", id.Tenant) != nil {
					t.Fatalf("Verify(%q): identity carries a value the checks refuse: %q / %q", raw, id.Subject, id.Tenant)
				}
				if !clk.Now().Before(id.ExpiresAt.Add(DefaultSkew)) {
					t.Fatalf("Verify(%q): accepted a token that expires at %v (now %v)", raw, id.ExpiresAt, clk.Now())
				}
				return id.Subject, true
			}
			var ae *Error
			if !errors.As(err, &ae) {
				t.Fatalf("Verify(%q): error %v (%T) is not an *auth.Error", raw, err, err)
			}
			if !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("Verify(%q): error %v does not wrap ErrUnauthorized", raw, err)
			}
			if ae.Reason == "" || ae.Description == "" || strings.ContainsAny(ae.Description, "\"\\\r\n") {
				t.Fatalf("Verify(%q): error without a reason or with an unquotable description: %#v", raw, ae)
			}
			if (ae.Status < 400 || ae.Status > 499) && ae.Status != http.StatusServiceUnavailable {
				t.Fatalf("Verify(%q): status %d, want 4xx or 503 (%v)", raw, ae.Status, err)
			}
			return ae.Reason, false
		}
		first, ok1 := check(v.Verify(ctx, raw))
		second, ok2 := check(v.Verify(ctx, raw))
		if ok1 != ok2 || first != second {
			t.Fatalf("Verify(%q) is not stable: first %v %q, then %v %q", raw, ok1, first, ok2, second)
		}
	})
}

// authorizationHeaderSeeds are hand-written Authorization header values.
func authorizationHeaderSeeds() []string {
	return []string{
		"Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln",
		"bearer abc", "BEARER abc", "Bearer    abc   ", "  Bearer abc  ",
		"", "Bearer", "Bearer ", "Bearer\tabc", "Bearer  \t ", "Basic YWxpY2U6cHc=", "Bearerx abc", "abc",
		"Bearer abc def", "Bearer abc\tdef", "Bearer abc,def", "Bearer abc, Bearer def",
		"Bearer abc\r\nX-Injected: 1", "Bearer abc\ndef", "Bearer abc\x00def", "Bearer abc\vdef", "Bearer abc\fdef",
		"Bearer abc\u00a0def", "Bearer abc\u2028def", "Bearer abc\u3000def", "Bearer \u00a0abc\u00a0",
		"Bearer abc\xffdef", "Bearer \xc3\x28", "Bearer\u00a0abc", "Bearer abc\x7f",
		"Bearer " + strings.Repeat("a", MaxAuthorizationHeaderBytes-len("Bearer ")),
		"Bearer " + strings.Repeat("a", MaxAuthorizationHeaderBytes),
	}
}

// FuzzAuthorizationHeader feeds arbitrary Authorization header values to
// BearerToken. Properties: no panic; an accepted token is non-empty, at most
// MaxAuthorizationHeaderBytes long, part of the header after a
// case-insensitive "Bearer" scheme, and free of whitespace and control
// characters; a refusal is an *Error with a 400 or 401 status, a reason and
// a description that renders into a well-formed challenge.
func FuzzAuthorizationHeader(f *testing.F) {
	for _, s := range authorizationHeaderSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		r := &http.Request{Header: http.Header{"Authorization": {h}}, URL: &url.URL{Path: "/mcp"}}
		tok, aerr := BearerToken(r)
		if aerr == nil {
			if tok == "" || len(tok) > MaxAuthorizationHeaderBytes {
				t.Fatalf("BearerToken(%q) = %q: empty or over the %d-byte bound", h, tok, MaxAuthorizationHeaderBytes)
			}
			if i := strings.IndexFunc(tok, func(r rune) bool {
				return unicode.IsSpace(r) || unicode.IsControl(r)
			}); i >= 0 {
				r, _ := utf8.DecodeRuneInString(tok[i:])
				t.Fatalf("BearerToken(%q) accepted %q, which holds whitespace or a control character (%q at byte %d)", h, tok, r, i)
			}
			scheme, _, _ := strings.Cut(strings.TrimSpace(h), " ")
			if !strings.EqualFold(scheme, "Bearer") || !strings.Contains(h, tok) {
				t.Fatalf("BearerToken(%q) = %q: not the credentials of a Bearer header", h, tok)
			}
			return
		}
		if aerr.Status != http.StatusBadRequest && aerr.Status != http.StatusUnauthorized {
			t.Fatalf("BearerToken(%q): status %d", h, aerr.Status)
		}
		if aerr.Reason == "" || aerr.Description == "" {
			t.Fatalf("BearerToken(%q): error without reason or description: %#v", h, aerr)
		}
		if !errors.Is(aerr, ErrUnauthorized) {
			t.Fatalf("BearerToken(%q): %v does not wrap ErrUnauthorized", h, aerr)
		}
		ch := Challenge{Error: aerr.Code, Description: aerr.Description, Scope: "tool:read"}.String()
		if _, _, params, err := parseAuthChallenge(ch); err != nil || len(params) == 0 || params[0] != (authParam{"realm", "mcp"}) {
			t.Fatalf("BearerToken(%q): its challenge %q does not parse: %v", h, ch, err)
		}
	})
}

// ---------------------------------------------------------------------------
// WWW-Authenticate.

type authParam struct{ name, value string }

func isTchar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isToken68Char(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~+/", c) >= 0
}

// parseAuthChallenge parses one challenge strictly by RFC 9110 §11:
//
//	challenge  = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//	auth-param = token BWS "=" BWS ( token / quoted-string )
//
// with quoted-pair escapes (\" and \\) unescaped. Empty list elements, bytes
// outside HTAB/SP/VCHAR/obs-text and trailing garbage are errors.
func parseAuthChallenge(s string) (scheme, token68 string, params []authParam, err error) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '\t' && (c < 0x20 || c == 0x7f) {
			return "", "", nil, fmt.Errorf("control byte %#x at %d", c, i)
		}
	}
	i := 0
	for i < len(s) && isTchar(s[i]) {
		i++
	}
	if i == 0 {
		return "", "", nil, errors.New("no auth-scheme")
	}
	scheme = s[:i]
	if i == len(s) {
		return scheme, "", nil, nil
	}
	if s[i] != ' ' {
		return "", "", nil, fmt.Errorf("byte %q after the scheme", s[i])
	}
	for i < len(s) && s[i] == ' ' {
		i++
	}
	rest := s[i:]
	// token68: the whole rest.
	j := 0
	for j < len(rest) && isToken68Char(rest[j]) {
		j++
	}
	k := j
	for k < len(rest) && rest[k] == '=' {
		k++
	}
	if j > 0 && k == len(rest) && (k > j || j == len(rest)) {
		return scheme, rest, nil, nil
	}
	ows := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
	}
	for {
		start := i
		for i < len(s) && isTchar(s[i]) {
			i++
		}
		if i == start {
			return "", "", nil, fmt.Errorf("no auth-param name at %d in %q", start, s)
		}
		name := s[start:i]
		ows()
		if i >= len(s) || s[i] != '=' {
			return "", "", nil, fmt.Errorf("no '=' after %q", name)
		}
		i++
		ows()
		var val strings.Builder
		switch {
		case i < len(s) && s[i] == '"':
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				if c == '"' {
					i++
					closed = true
					break
				}
				if c == '\\' {
					if i+1 >= len(s) {
						return "", "", nil, errors.New("dangling backslash")
					}
					val.WriteByte(s[i+1])
					i += 2
					continue
				}
				val.WriteByte(c)
				i++
			}
			if !closed {
				return "", "", nil, fmt.Errorf("unterminated quoted-string for %q", name)
			}
		default:
			vs := i
			for i < len(s) && isTchar(s[i]) {
				i++
			}
			if i == vs {
				return "", "", nil, fmt.Errorf("empty value for %q", name)
			}
			val.WriteString(s[vs:i])
		}
		params = append(params, authParam{name, val.String()})
		ows()
		if i == len(s) {
			return scheme, "", params, nil
		}
		if s[i] != ',' {
			return "", "", nil, fmt.Errorf("byte %q after the value of %q", s[i], name)
		}
		i++
		ows()
		if i == len(s) {
			return "", "", nil, errors.New("trailing comma")
		}
	}
}

// TestParseAuthChallenge checks the oracle FuzzChallenge relies on.
func TestParseAuthChallenge(t *testing.T) {
	t.Parallel()
	ok := []struct {
		in      string
		scheme  string
		token68 string
		params  []authParam
	}{
		{`Bearer`, "Bearer", "", nil},
		{`Bearer realm="mcp"`, "Bearer", "", []authParam{{"realm", "mcp"}}},
		{`Bearer realm="mcp", error="invalid_token"`, "Bearer", "", []authParam{{"realm", "mcp"}, {"error", "invalid_token"}}},
		{`Bearer realm = "a\"b\\c" ,x=tok`, "Bearer", "", []authParam{{"realm", `a"b\c`}, {"x", "tok"}}},
		{`Basic YWxpY2U6cHc=`, "Basic", "YWxpY2U6cHc=", nil},
		{`Negotiate abc`, "Negotiate", "abc", nil},
		{`Bearer realm=`, "Bearer", "realm=", nil}, // token68, not an auth-param
	}
	for _, tt := range ok {
		scheme, t68, params, err := parseAuthChallenge(tt.in)
		if err != nil || scheme != tt.scheme || t68 != tt.token68 || !reflect.DeepEqual(params, tt.params) {
			t.Errorf("parseAuthChallenge(%q) = %q, %q, %q, %v", tt.in, scheme, t68, params, err)
		}
	}
	for _, in := range []string{
		``, ` Bearer`, `Bearer realm="mcp`, `Bearer realm="mcp",`, `Bearer realm="mcp" error="x"`,
		"Bearer realm=\"m\r\ncp\"", `Bearer realm==x`, `Bearer realm="a\`, `Bearer =x`, `Bearer realm="mcp", , a="b"`,
		"Bearer realm=\"mcp\"\x00",
	} {
		if _, _, _, err := parseAuthChallenge(in); err == nil {
			t.Errorf("parseAuthChallenge(%q) accepted it", in)
		}
	}
}

// challengeSafe is what the renderer documents for quoted values: the RFC
// 6750 characters (printable ASCII without '"' and '\') are kept, every
// other byte is dropped.
func challengeSafe(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// challengeSeeds are hand-written challenge fields: error, description,
// scope, resource_metadata.
func challengeSeeds() [][4]string {
	const prm = "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp"
	return [][4]string{
		{"", "", "tool:read", prm},
		{CodeInvalidToken, "the token has expired", "tool:read", prm},
		{CodeInsufficientScope, "this tool needs more scope", "tool:write tool:read", prm},
		{"x\"\r\nSet-Cookie: a=b", "line1\r\nline2", "a\x00b", "http://h/\"x\\"},
		{`\"`, `\\`, `"`, `\`},
		{"\xff\xfe", "caf\u00e9", "\u2028", "\t"},
		{", error=\"forged\"", "\", scope=\"admin", "realm=evil", "Basic realm=x"},
		{"", "", "", ""},
		{"\x7f", " ", "  ", "="},
	}
}

// FuzzChallenge renders arbitrary challenge fields. Properties: no panic;
// the value is printable ASCII only (no CR, LF or NUL: no header injection);
// it parses back by RFC 9110 as one Bearer challenge whose first parameter
// is realm="mcp", with no parameter twice (names compared ignoring case);
// every non-empty field is present and every empty one absent; a field made
// only of RFC 6750 characters round-trips exactly, any other loses exactly
// its other bytes (the documented sanitizing), never gains any.
func FuzzChallenge(f *testing.F) {
	for _, c := range challengeSeeds() {
		f.Add(c[0], c[1], c[2], c[3])
	}
	f.Fuzz(func(t *testing.T, code, desc, scope, rm string) {
		in := Challenge{Error: code, Description: desc, Scope: scope, ResourceMetadata: rm}
		s := in.String()
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c > 0x7e {
				t.Fatalf("%#v renders %q with byte %#x at %d", in, s, c, i)
			}
		}
		scheme, t68, params, err := parseAuthChallenge(s)
		if err != nil {
			t.Fatalf("%#v renders %q, which does not parse: %v", in, s, err)
		}
		if scheme != "Bearer" || t68 != "" || len(params) == 0 || params[0] != (authParam{"realm", "mcp"}) {
			t.Fatalf("%#v renders %q: scheme %q, token68 %q, params %q", in, s, scheme, t68, params)
		}
		got := map[string]string{}
		for _, p := range params[1:] {
			ln := strings.ToLower(p.name)
			if _, dup := got[ln]; dup || ln == "realm" {
				t.Fatalf("%#v renders %q: parameter %q twice", in, s, p.name)
			}
			got[ln] = p.value
		}
		for name, v := range map[string]string{"error": code, "error_description": desc, "scope": scope, "resource_metadata": rm} {
			gv, present := got[name]
			delete(got, name)
			switch {
			case v == "" && present:
				t.Fatalf("%#v renders %q: empty %s is present", in, s, name)
			case v != "" && !present:
				t.Fatalf("%#v renders %q: %s is missing", in, s, name)
			case present && gv != challengeSafe(v):
				t.Fatalf("%#v renders %q: %s round-trips to %q, want %q", in, s, name, gv, challengeSafe(v))
			}
		}
		if len(got) > 0 {
			t.Fatalf("%#v renders %q: unexpected parameters %q", in, s, got)
		}
	})
}

// jsonString is what encoding/json makes of s: each byte of an invalid
// UTF-8 sequence becomes U+FFFD.
func jsonString(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		b.WriteRune(r) // RuneError for an invalid byte
		s = s[n:]
	}
	return b.String()
}

// prmSeeds are hand-written metadata fields: resource, authorization
// server, scopes, resource name.
func prmSeeds() [][4]string {
	return [][4]string{
		{"http://127.0.0.1:8080/mcp", "https://issuer.test/", "tool:read tool:write", "Gatewaystack MCP gateway"},
		{"https://gw.example/gw/mcp/", "https://a.example", "", ""},
		{"https://gw.example", "\xff", "a\x00b", "</script><script>alert(1)</script>"},
		{"https://gw.example/a\"b\\c", "\"", "\\", "\u2028\u2029"},
		{"https://user:pw@gw.example/mcp", "", "", ""},
		{"https://gw.example/mcp?x=1#f", "", "", ""},
		{"javascript:alert(1)", "", "", ""},
		{"https://gw.example/%2e%2e/%2F/mcp", "", "", ""},
		{"https://[::1]:443/m%20cp", "", "", ""},
		{"http://h\"x/mcp", "", "", ""},
		{"https://gw.example/\r\nX: y", "", "", ""},
		{"//gw.example/mcp", "", "", ""},
	}
}

// FuzzPRM builds the Protected Resource Metadata document and its URLs from
// arbitrary strings. Properties: no panic; PRMHandler always succeeds and
// serves GET and HEAD as 200 application/json, whose body is one valid JSON
// object that decodes (strictly) back to the fields, each string exactly as
// given (invalid UTF-8 bytes as U+FFFD); other methods get 405 with Allow;
// PRMPaths and PRMURL agree, and a PRM URL is an absolute http(s) URL of the
// resource's host whose characters survive a challenge's quoted value
// unchanged (a resource_metadata the renderer would alter sends clients to
// the wrong document).
func FuzzPRM(f *testing.F) {
	for _, c := range prmSeeds() {
		f.Add(c[0], c[1], c[2], c[3])
	}
	f.Fuzz(func(t *testing.T, resource, as, scopes, name string) {
		md := ProtectedResourceMetadata{
			Resource:               resource,
			AuthorizationServers:   []string{as, resource},
			ScopesSupported:        append([]string{scopes}, strings.Fields(scopes)...),
			BearerMethodsSupported: []string{"header"},
			ResourceName:           name,
		}
		h, err := PRMHandler(md)
		if err != nil {
			t.Fatalf("PRMHandler: %v", err)
		}
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(method, "/.well-known/oauth-protected-resource", nil))
			if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("%s: status %d, Content-Type %q", method, rec.Code, rec.Header().Get("Content-Type"))
			}
			body := rec.Body.Bytes()
			if !json.Valid(body) {
				t.Fatalf("%s: the document is not valid JSON: %q", method, body)
			}
			dec := json.NewDecoder(strings.NewReader(string(body)))
			dec.DisallowUnknownFields()
			var got ProtectedResourceMetadata
			if err := dec.Decode(&got); err != nil || dec.More() {
				t.Fatalf("%s: the document does not decode as one metadata object: %v: %q", method, err, body)
			}
			want := ProtectedResourceMetadata{
				Resource:               jsonString(md.Resource),
				BearerMethodsSupported: md.BearerMethodsSupported,
				ResourceName:           jsonString(md.ResourceName),
			}
			for _, s := range md.AuthorizationServers {
				want.AuthorizationServers = append(want.AuthorizationServers, jsonString(s))
			}
			for _, s := range md.ScopesSupported {
				want.ScopesSupported = append(want.ScopesSupported, jsonString(s))
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: the document decodes to\n%#v\nwant\n%#v", method, got, want)
			}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/.well-known/oauth-protected-resource", nil))
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") == "" {
			t.Fatalf("POST: status %d, Allow %q", rec.Code, rec.Header().Get("Allow"))
		}

		suffixed, root, perr := PRMPaths(resource)
		prmURL, uerr := PRMURL(resource)
		if (perr == nil) != (uerr == nil) {
			t.Fatalf("PRMPaths(%q) error %v but PRMURL error %v", resource, perr, uerr)
		}
		if perr != nil {
			return
		}
		const wellKnown = "/.well-known/oauth-protected-resource"
		if root != wellKnown || !strings.HasPrefix(suffixed, wellKnown) {
			t.Fatalf("PRMPaths(%q) = %q, %q", resource, suffixed, root)
		}
		if challengeSafe(prmURL) != prmURL {
			t.Fatalf("PRMURL(%q) = %q, which a challenge cannot carry unchanged", resource, prmURL)
		}
		ru, _ := url.Parse(resource)
		pu, err := url.Parse(prmURL)
		if err != nil {
			t.Fatalf("PRMURL(%q) = %q, which does not parse: %v", resource, prmURL, err)
		}
		if pu.Scheme != ru.Scheme || pu.Host != ru.Host || pu.RawQuery != "" || pu.Fragment != "" || pu.User != nil || pu.EscapedPath() != suffixed {
			t.Fatalf("PRMURL(%q) = %q: scheme %q host %q path %q, want %q %q %q", resource, prmURL, pu.Scheme, pu.Host, pu.EscapedPath(), ru.Scheme, ru.Host, suffixed)
		}
	})
}
