package demo

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// signingKey is one RSA key of the issuer with its key id.
type signingKey struct {
	kid string
	key *rsa.PrivateKey
	// retireAt is when a key rotated out of use leaves the JWKS: by then
	// every token it signed has expired.
	retireAt time.Time
}

// keyRing holds the key that signs (current), the key that will sign after
// the next rotation (next, already published so that verifiers which cached
// the JWKS know it in advance), and keys rotated out whose tokens may still
// be valid (previous).
type keyRing struct {
	mu       sync.RWMutex
	current  signingKey
	next     signingKey
	previous []signingKey
	jwks     []byte
}

func newSigningKey() (signingKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, rsaKeyBits)
	if err != nil {
		return signingKey{}, fmt.Errorf("generate RSA key: %w", err)
	}
	kid, err := randomToken(8)
	if err != nil {
		return signingKey{}, fmt.Errorf("generate key id: %w", err)
	}
	return signingKey{kid: kid, key: key}, nil
}

func newKeyRing() (*keyRing, error) {
	current, err := newSigningKey()
	if err != nil {
		return nil, err
	}
	next, err := newSigningKey()
	if err != nil {
		return nil, err
	}
	ring := &keyRing{current: current, next: next}
	if ring.jwks, err = ring.buildJWKS(); err != nil {
		return nil, err
	}
	return ring, nil
}

// signer returns the key that signs new tokens.
func (k *keyRing) signer() signingKey {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.current
}

// publicJWKS returns the JSON key set: current, next, then the previous keys
// that have not retired at now.
func (k *keyRing) publicJWKS(now time.Time) ([]byte, error) {
	k.mu.RLock()
	stale := slices.ContainsFunc(k.previous, func(p signingKey) bool { return !now.Before(p.retireAt) })
	jwks := k.jwks
	k.mu.RUnlock()
	if !stale {
		return jwks, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.previous = slices.DeleteFunc(k.previous, func(p signingKey) bool { return !now.Before(p.retireAt) })
	jwks, err := k.buildJWKS()
	if err != nil {
		return nil, err
	}
	k.jwks = jwks
	return jwks, nil
}

// rotate makes next the signing key, publishes a new next key and keeps the
// old signing key in the JWKS until retireAt.
func (k *keyRing) rotate(retireAt time.Time) error {
	fresh, err := newSigningKey()
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	old := k.current
	old.retireAt = retireAt
	previous := append(slices.Clone(k.previous), old)
	ring := keyRing{current: k.next, next: fresh, previous: previous}
	jwks, err := ring.buildJWKS()
	if err != nil {
		return err
	}
	k.current, k.next, k.previous, k.jwks = ring.current, ring.next, ring.previous, jwks
	return nil
}

// buildJWKS encodes the public halves of the ring's keys. The caller holds
// the lock or owns k.
func (k *keyRing) buildJWKS() ([]byte, error) {
	set := jwk.NewSet()
	for _, sk := range append([]signingKey{k.current, k.next}, k.previous...) {
		key, err := jwk.Import(&sk.key.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("import public key into JWK: %w", err)
		}
		for name, value := range map[string]any{
			jwk.KeyIDKey:     sk.kid,
			jwk.AlgorithmKey: jwa.RS256(),
			jwk.KeyUsageKey:  jwk.ForSignature,
		} {
			if err := key.Set(name, value); err != nil {
				return nil, fmt.Errorf("set JWK %s: %w", name, err)
			}
		}
		if err := set.AddKey(key); err != nil {
			return nil, fmt.Errorf("add key to JWKS: %w", err)
		}
	}
	body, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("encode JWKS: %w", err)
	}
	return body, nil
}
