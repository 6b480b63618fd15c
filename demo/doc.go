// Package demo provides the demo OAuth 2.1 authorization server and demo
// upstream MCP servers with per-user data used by `gatewaystack demo` and
// the tests.
//
// The authorization server (Issuer) serves RFC 8414 metadata, dynamic
// client registration (RFC 7591) and Client ID Metadata Documents, an
// authorization endpoint with PKCE S256, an approval page for the demo
// users alice, bob and admin (or auto-approval for headless tests), a token
// endpoint (authorization_code, rotating refresh tokens, client_credentials)
// issuing RS256 access tokens (RFC 9068), a JWKS, and, on a loopback issuer
// URL only, /mint for tokens of any subject.
//
// An issuer whose URL is not on loopback (public, e.g. behind a tunnel)
// issues tokens only through its approval page, which asks for a password
// and refuses an address after repeated wrong ones; /mint is off, and
// client_credentials and the admin user are off unless enabled.
//
// Nothing in this package is meant for production traffic: the issuer has
// one password for every demo user (none on loopback), and the notes
// server trusts the identity headers set by the gateway in front of it,
// from requests that carry the secret it shares with the gateway.
package demo
