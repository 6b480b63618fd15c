package auth

import (
	"math/big"
	"slices"
	"strings"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// MinRSAKeyBits is the smallest RSA modulus a JWKS key may have to be used.
const MinRSAKeyBits = 2048

// keyMatch is the outcome of looking a token's key up in a key set.
type keyMatch int

const (
	keyFound     keyMatch = iota
	keyNotFound           // no usable key has the kid: a refetch may help
	keyAmbiguous          // no kid, and the set holds several keys
)

// lookupKey finds the key that verifies a token signed with alg under kid.
// Only usable keys count (see usableKey): a key with the right kid that is
// meant for encryption, is of another type or algorithm, or is too weak is
// skipped as if it were absent. A token without kid is accepted only when
// the set holds exactly one key (which must be usable): with several, the
// verifier would have to guess, and a guess is refused (keyAmbiguous).
func lookupKey(set jwk.Set, kid string, alg jwa.SignatureAlgorithm) (jwk.Key, keyMatch) {
	if kid == "" {
		switch set.Len() {
		case 0:
			return nil, keyNotFound
		case 1:
			if k, ok := set.Key(0); ok && usableKey(k, alg) {
				return k, keyFound
			}
			return nil, keyNotFound
		default:
			return nil, keyAmbiguous
		}
	}
	for i := range set.Len() {
		k, ok := set.Key(i)
		if !ok {
			continue
		}
		if id, ok := k.KeyID(); ok && id == kid && usableKey(k, alg) {
			return k, keyFound
		}
	}
	return nil, keyNotFound
}

// usableKey reports whether k may verify a signature made with alg: its
// "use", when present, is "sig"; its "key_ops", when present, include
// "verify"; its "alg", when present, is alg itself; its type is the one alg
// needs (RSA for RS* and PS*, EC on the matching curve for ES*, OKP for
// EdDSA); and an RSA modulus has at least MinRSAKeyBits bits.
func usableKey(k jwk.Key, alg jwa.SignatureAlgorithm) bool {
	if use, ok := k.KeyUsage(); ok && use != "sig" {
		return false
	}
	if ops, ok := k.KeyOps(); ok && !slices.Contains(ops, jwk.KeyOpVerify) {
		return false
	}
	if ka, ok := k.Algorithm(); ok && ka.String() != alg.String() {
		return false
	}
	name := alg.String()
	switch {
	case strings.HasPrefix(name, "RS"), strings.HasPrefix(name, "PS"):
		if k.KeyType().String() != jwa.RSA().String() {
			return false
		}
		rk, ok := k.(interface{ N() ([]byte, bool) })
		if !ok {
			return false
		}
		n, ok := rk.N()
		return ok && new(big.Int).SetBytes(n).BitLen() >= MinRSAKeyBits
	case strings.HasPrefix(name, "ES"):
		if k.KeyType().String() != jwa.EC().String() {
			return false
		}
		ck, ok := k.(interface {
			Crv() (jwa.EllipticCurveAlgorithm, bool)
		})
		if !ok {
			return false
		}
		crv, ok := ck.Crv()
		if !ok {
			return false
		}
		switch name {
		case "ES256":
			return crv.String() == jwa.P256().String()
		case "ES384":
			return crv.String() == jwa.P384().String()
		case "ES512":
			return crv.String() == jwa.P521().String()
		}
		return false
	case name == "EdDSA" || name == "Ed25519" || name == "Ed448":
		return k.KeyType().String() == jwa.OKP().String()
	}
	return false
}
