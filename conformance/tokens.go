package conformance

// Tokens for the attack table, made without the issuer's signing key: a real
// token's parts re-encoded, or tokens signed by a key of our own.

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

var b64 = base64.RawURLEncoding

// jwtParts is a decoded compact JWS.
type jwtParts struct {
	header  map[string]any
	claims  map[string]any
	signing string // base64url(header) "." base64url(payload), as received
	sig     string // base64url(signature), as received
}

// decodeJWT splits and decodes a compact JWS without verifying it.
func decodeJWT(token string) (jwtParts, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return jwtParts{}, fmt.Errorf("not a compact JWS: %d parts", len(parts))
	}
	var p jwtParts
	for i, dst := range []*map[string]any{&p.header, &p.claims} {
		raw, err := b64.DecodeString(parts[i])
		if err != nil {
			return jwtParts{}, fmt.Errorf("JWS part %d is not base64url: %w", i+1, err)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return jwtParts{}, fmt.Errorf("JWS part %d is not a JSON object: %w", i+1, err)
		}
	}
	p.signing = parts[0] + "." + parts[1]
	p.sig = parts[2]
	return p, nil
}

// encodeSegment is base64url(JSON(v)).
func encodeSegment(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return b64.EncodeToString(b), nil
}

// withClaims returns a copy of claims with the changes applied (a nil value
// deletes the claim).
func withClaims(claims map[string]any, changes map[string]any) map[string]any {
	out := make(map[string]any, len(claims)+len(changes))
	for k, v := range claims {
		out[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = v
	}
	return out
}

// resign returns header.claims.signature where signature is the original
// one: the payload no longer matches it.
func (p jwtParts) resign(claims map[string]any) (string, error) {
	h, _, _ := strings.Cut(p.signing, ".")
	c, err := encodeSegment(claims)
	if err != nil {
		return "", err
	}
	return h + "." + c + "." + p.sig, nil
}

// unsigned returns a token with alg "none" and an empty signature.
func unsigned(header, claims map[string]any) (string, error) {
	h, err := encodeSegment(withClaims(header, map[string]any{"alg": "none"}))
	if err != nil {
		return "", err
	}
	c, err := encodeSegment(claims)
	if err != nil {
		return "", err
	}
	return h + "." + c + ".", nil
}

// signRS256 signs header+claims with key (header's alg set to RS256).
func signRS256(key *rsa.PrivateKey, header, claims map[string]any) (string, error) {
	h, err := encodeSegment(withClaims(header, map[string]any{"alg": "RS256"}))
	if err != nil {
		return "", err
	}
	c, err := encodeSegment(claims)
	if err != nil {
		return "", err
	}
	digest := sha256.Sum256([]byte(h + "." + c))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		return "", err
	}
	return h + "." + c + "." + b64.EncodeToString(sig), nil
}

// signHS256 signs header+claims with HMAC-SHA256 and secret (the key
// confusion attack uses the issuer's public key as the secret).
func signHS256(secret []byte, header, claims map[string]any) (string, error) {
	h, err := encodeSegment(withClaims(header, map[string]any{"alg": "HS256"}))
	if err != nil {
		return "", err
	}
	c, err := encodeSegment(claims)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(h + "." + c))
	return h + "." + c + "." + b64.EncodeToString(mac.Sum(nil)), nil
}

// randomKID returns a key id no issuer has.
func randomKID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "conformance-" + b64.EncodeToString(b)
}

// jwk is one key of a JWKS (RSA fields only).
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// publicKeyPEM returns the PEM encoding ("PUBLIC KEY", PKIX) of the RSA key
// kid in set, or of the set's first RSA key when kid is not found.
func publicKeyPEM(set []jwk, kid string) ([]byte, error) {
	var chosen *jwk
	for i := range set {
		if set[i].Kty != "RSA" {
			continue
		}
		if chosen == nil || set[i].Kid == kid {
			chosen = &set[i]
		}
	}
	if chosen == nil {
		return nil, errors.New("the JWKS has no RSA key")
	}
	n, err := b64.DecodeString(chosen.N)
	if err != nil {
		return nil, fmt.Errorf("JWK n: %w", err)
	}
	e, err := b64.DecodeString(chosen.E)
	if err != nil {
		return nil, fmt.Errorf("JWK e: %w", err)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
