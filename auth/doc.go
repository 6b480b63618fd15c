// Package auth is the gateway's identify stage: it takes the bearer token
// from a request, verifies it, and turns it into one canonical Identity.
//
// Verify performs these steps, in order, and fails closed at each:
//
//  1. bound the token's size before any splitting or decoding;
//  2. require the JWS compact form (three parts; a five-part JWE is refused);
//  3. decode the protected header and require its "alg" to be one of the
//     configured algorithms (default RS256 only) and "kid", when present, to
//     be a string; "crit" and key-carrying headers (jku, x5u, jwk, x5c) are
//     refused, never fetched;
//  4. find the signing key in the issuer's JWKS by kid (if no key set has
//     been loaded yet, fetch it now, single-flight; if that fails, answer
//     503 jwks_unavailable); an unknown kid triggers at most one refetch per
//     cooldown, shared by all callers that arrive while it runs (the
//     start-up fetch does not count against the cooldown);
//  5. verify the signature with that key and the header's (allowed) alg;
//  6. validate iss and aud exactly, require exp and sub, and honour exp, nbf
//     and iat with the configured clock skew;
//  7. build the Identity (subject, tenant, scopes, roles, client id, token
//     id, expiry, raw claims) and cache it by the token's SHA-256 until exp,
//     so repeated calls with one token do not pay for RSA again.
//
// The package also renders the OAuth challenges (WWW-Authenticate) and serves
// the RFC 9728 Protected Resource Metadata that MCP clients follow to log in.
package auth
