// Package auth is the gateway's identify stage: it takes the bearer token
// from a request, verifies it, and turns it into one canonical Identity.
//
// BearerToken reads the single Authorization header (see its doc for the
// exact grammar). Verify then performs these steps, in order, and fails
// closed at each:
//
//  1. bound the token's size before any splitting or decoding;
//  2. require the JWS compact form: base64url characters and exactly two
//     dots (a five-part JWE is refused as encrypted; a JWS JSON
//     serialization, padding, '+', '/' and whitespace as malformed), each
//     part strictly decoded (no non-zero unused bits);
//  3. decode the protected header as one UTF-8 JSON object without
//     duplicate or case-variant names; require "alg" to be one of the
//     configured algorithms (default RS256 only), "kid", when present, to
//     be a non-empty string of at most MaxKidBytes, and "typ" to be a
//     string, one of VerifierConfig.TokenTypes when those are set; "crit",
//     "b64" and key-carrying headers (jku, x5u, jwk, x5c) are refused,
//     never fetched;
//  4. decode the payload the same strict way: a claim name twice, two
//     top-level names that differ only in letter case, or a registered
//     claim name spelt in another case is refused (claim_duplicate); exp,
//     nbf and iat must be JSON numbers in range, iss, sub and jti strings,
//     aud a string or an array of strings;
//  5. find the signing key in the issuer's JWKS by kid, among the keys fit
//     for the token (use sig, key_ops verify, the token's alg, the alg's key
//     type, RSA of at least 2048 bits); a token without kid needs a set of
//     exactly one key. If no key set has been loaded yet, fetch it now,
//     single-flight; if the loaded set is older than MaxStale, try one
//     fetch per cooldown and answer 503 jwks_unavailable until one
//     succeeds. An unknown kid triggers at most one refetch per cooldown,
//     shared by all callers that arrive while it runs (the start-up fetch
//     does not count against the cooldown). Nothing decided in steps 1-4
//     ever causes a fetch;
//  6. verify the signature with that key and the header's (allowed) alg;
//  7. validate iss and aud exactly, require exp and sub, honour exp, nbf
//     and iat with the configured clock skew, and refuse a lifetime (exp −
//     iat, or exp − now without iat) over MaxLifetime;
//  8. refuse ID tokens (nonce, at_hash or c_hash present);
//  9. build the Identity (subject, tenant, scopes, roles, client id, token
//     id, expiry, raw claims), refusing (claim_invalid) a sub, tenant or
//     client id that is empty or blank, padded with whitespace, holds a
//     control, format (bidi, zero-width), line or paragraph separator or
//     replacement character, or exceeds MaxClaimValueBytes, and a tenant
//     claim that is not a string (null counts as absent); and cache it by
//     the token's SHA-256, with the thumbprint of the key that verified
//     it, until exp, so repeated calls with one token do not pay for RSA
//     again. A cached token counts only while its key is in the last
//     fetched key set (a key removed or replaced at the issuer takes its
//     tokens with it at the next fetch), and is refused too once the key
//     set is older than MaxStale.
//
// The package also renders the OAuth challenges (WWW-Authenticate) and serves
// the RFC 9728 Protected Resource Metadata that MCP clients follow to log in.
package auth
