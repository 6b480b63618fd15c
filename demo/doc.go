// Package demo provides the demo OAuth issuer and demo upstream MCP servers
// with per-user data used by `gatewaystack demo` and the tests.
//
// Nothing in this package is meant for production traffic: the issuer mints
// tokens for any subject it is asked about, and the upstream servers trust
// the identity headers set by the gateway in front of them.
package demo
