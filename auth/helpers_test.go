package auth

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const (
	testIssuer   = "https://issuer.test/"
	testAudience = "http://127.0.0.1:8080/mcp"
)

// Real 2048-bit RSA keys, generated once per test binary: a and b are
// published by the test issuers, c never is (an attacker's key).
var testKeys = sync.OnceValue(func() [3]*rsa.PrivateKey {
	var ks [3]*rsa.PrivateKey
	var wg sync.WaitGroup
	for i := range ks {
		wg.Go(func() {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			ks[i] = k
		})
	}
	wg.Wait()
	return ks
})

func keyA() *rsa.PrivateKey { return testKeys()[0] }
func keyB() *rsa.PrivateKey { return testKeys()[1] }
func keyC() *rsa.PrivateKey { return testKeys()[2] }

// pubKey is one published key of a JWKS.
type pubKey struct {
	kid string
	key *rsa.PrivateKey
}

// jwksServer is a real JWKS endpoint on 127.0.0.1 that counts the fetches
// it answers, can be taken down, slowed down or made to hang, and can
// rotate its keys.
type jwksServer struct {
	*httptest.Server
	body     atomic.Pointer[[]byte]
	fetches  atomic.Int64
	inflight atomic.Int64
	down     atomic.Bool
	delay    atomic.Int64 // nanoseconds added to every answer
	hang     chan struct{}
	hanging  atomic.Bool
}

func newJWKSServer(t testing.TB, keys ...pubKey) *jwksServer {
	t.Helper()
	s := &jwksServer{hang: make(chan struct{})}
	s.setKeys(t, keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.inflight.Add(1)
		defer s.inflight.Add(-1)
		s.fetches.Add(1)
		if s.hanging.Load() {
			select {
			case <-s.hang:
			case <-r.Context().Done():
			}
			return
		}
		if d := s.delay.Load(); d > 0 {
			time.Sleep(time.Duration(d))
		}
		if s.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(*s.body.Load())
	}))
	t.Cleanup(func() {
		close(s.hang)
		s.Close()
	})
	return s
}

func (s *jwksServer) setKeys(t testing.TB, keys ...pubKey) {
	t.Helper()
	set := jwk.NewSet()
	for _, k := range keys {
		jk, err := jwk.Import(&k.key.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		for name, v := range map[string]string{jwk.KeyIDKey: k.kid, jwk.AlgorithmKey: "RS256", jwk.KeyUsageKey: "sig"} {
			if err := jk.Set(name, v); err != nil {
				t.Fatal(err)
			}
		}
		if err := set.AddKey(jk); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	s.body.Store(&b)
}

// setDoc publishes a JWKS made of the given JWK objects (see jwkOf).
func (s *jwksServer) setDoc(t testing.TB, keys ...map[string]any) {
	t.Helper()
	if keys == nil {
		keys = []map[string]any{}
	}
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	s.body.Store(&b)
}

// setBody makes the JWKS endpoint answer 200 with body, whatever it is.
func (s *jwksServer) setBody(body string) {
	b := []byte(body)
	s.body.Store(&b)
}

// jwkOf returns the public JWK of key (an RSA or ECDSA private key) as a
// JSON object, with the extra members given as name, value pairs. RSA keys
// are written by hand, so that keys too weak for jwk.Import can be
// published too.
func jwkOf(t testing.TB, key crypto.Signer, kv ...string) map[string]any {
	t.Helper()
	var m map[string]any
	if pub, ok := key.Public().(*rsa.PublicKey); ok {
		m = map[string]any{"kty": "RSA", "n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes())}
	} else {
		jk, err := jwk.Import(key.Public())
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(mustJSON(jk), &m); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func (s *jwksServer) jwksURI() string { return s.URL + "/.well-known/jwks.json" }

// settle waits until the verifier has a key set and the start-up fetches
// (the cache's own first fetch and the warm-up) are over, and returns the
// number of fetches the server answered so far.
func (s *jwksServer) settle(t testing.TB, v *Verifier) int64 {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if v.Ready() && s.inflight.Load() == 0 {
			n := s.fetches.Load()
			time.Sleep(100 * time.Millisecond)
			if s.fetches.Load() == n && s.inflight.Load() == 0 {
				return n
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the verifier did not load the JWKS within 10s (fetches: %d)", s.fetches.Load())
	return 0
}

// clock is a settable clock for the verifier and for minting.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return c
}

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// verifierFor returns a verifier of s's keys with a fake clock and a long
// refetch cooldown (so every fetch a test sees is one it caused); mod may
// change the configuration. It is closed when the test ends.
func verifierFor(t testing.TB, s *jwksServer, clk *clock, mod func(*VerifierConfig)) *Verifier {
	t.Helper()
	cfg := VerifierConfig{
		Issuer:          testIssuer,
		Audience:        testAudience,
		JWKSURI:         s.jwksURI(),
		RefetchCooldown: time.Hour,
		HTTPClient:      &http.Client{Timeout: 5 * time.Second},
		Now:             clk.Now,
	}
	if mod != nil {
		mod(&cfg)
	}
	v, err := NewVerifier(context.Background(), cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	t.Cleanup(func() {
		if err := v.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return v
}

// claims returns valid claims at now; jti is unique per call.
func claims(now time.Time) map[string]any {
	return map[string]any{
		"iss":   testIssuer,
		"aud":   testAudience,
		"sub":   "alice",
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   now.Add(10 * time.Minute).Unix(),
		"jti":   randomHex(8),
		"scope": "tool:read",
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// signing returns header.payload for a header and claims.
func signing(header, claims map[string]any) string {
	return b64(mustJSON(header)) + "." + b64(mustJSON(claims))
}

// signRSA signs header.payload with key: alg picks PKCS#1 v1.5 or PSS and
// the hash, independently of what the header claims.
func signRSA(key *rsa.PrivateKey, alg string, header, cl map[string]any) string {
	in := signing(header, cl)
	var h crypto.Hash
	switch alg[2:] {
	case "256":
		h = crypto.SHA256
	case "384":
		h = crypto.SHA384
	default:
		h = crypto.SHA512
	}
	hh := h.New()
	hh.Write([]byte(in))
	sum := hh.Sum(nil)
	var sig []byte
	var err error
	if strings.HasPrefix(alg, "PS") {
		sig, err = rsa.SignPSS(rand.Reader, key, h, sum, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	} else {
		sig, err = rsa.SignPKCS1v15(nil, key, h, sum)
	}
	if err != nil {
		panic(err)
	}
	return in + "." + b64(sig)
}

// mint returns an RS256 token of cl signed by key under kid.
func mint(key *rsa.PrivateKey, kid string, cl map[string]any) string {
	return signRSA(key, "RS256", map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid}, cl)
}

// signHMAC signs with HS256 or HS512 using secret.
func signHMAC(secret []byte, alg string, header, cl map[string]any) string {
	in := signing(header, cl)
	h := sha256.New
	if alg == "HS512" {
		h = sha512.New
	}
	m := hmac.New(h, secret)
	m.Write([]byte(in))
	return in + "." + b64(m.Sum(nil))
}

// authError asserts err is an *Error wrapping ErrUnauthorized with the
// given status, OAuth code and reason, and a description that is safe to
// quote in a challenge.
func authError(t testing.TB, err error, status int, code, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want %d %s %s, got no error", status, code, reason)
	}
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an *auth.Error", err, err)
	}
	if !errors.Is(err, ErrUnauthorized) {
		t.Errorf("error %v does not wrap ErrUnauthorized", err)
	}
	if ae.Status != status || ae.Code != code || ae.Reason != reason {
		t.Errorf("got {status %d, code %q, reason %q}, want {%d, %q, %q} (%v)", ae.Status, ae.Code, ae.Reason, status, code, reason, err)
	}
	if ae.Description == "" || strings.ContainsAny(ae.Description, "\"\\") {
		t.Errorf("description %q must be non-empty and free of '\"' and '\\'", ae.Description)
	}
}

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from golden file (run go test ./auth -update if the change is intended)\n got:\n%s\nwant:\n%s", p, got, want)
	}
}
