// Package interop holds the gateway's interoperability tests against real
// third-party MCP servers and clients. It has no code of its own: everything
// is in its _test.go files.
//
// The servers are pinned and installed by `make test`:
//
//   - the go-sdk conformance fixture
//     (github.com/modelcontextprotocol/go-sdk/conformance/everything-server,
//     v1.8.0, installed with go install into bin/everything-server);
//   - @modelcontextprotocol/server-everything (npm, pinned with
//     @modelcontextprotocol/sdk in interop/npm/package.json and its lockfile,
//     installed with npm ci into interop/npm/node_modules).
//
// `make test` tells the tests where they are with environment variables:
//
//	GATEWAYSTACK_INTEROP_NODE_MODULES       interop/npm/node_modules
//	GATEWAYSTACK_INTEROP_EVERYTHING_SERVER  bin/everything-server
//	GATEWAYSTACK_INTEROP_NODE               node binary (optional; default: node in PATH)
//
// Without any of them (a plain `go test ./...`) the tests skip and say to run
// `make test`; with any of them set, a missing tool fails the tests, so a
// broken install step can never pass silently.
//
// Every server runs as a real process on 127.0.0.1 (or over stdio), in its
// own process group that the test kills when it ends. The fidelity tests
// start each upstream, put a gateway built with mcp.Build from a real
// configuration in front of it, and require the JSON of tools/list,
// resources/list, resources/templates/list, prompts/list and a sample of
// tools/call, resources/read and prompts/get to be equal directly and
// through the gateway, apart from the tool and prompt name prefix,
// "serverInfo" and the cache hints "cacheScope" and "ttlMs" (which the
// gateway may keep, drop or tighten to "private" and 0, never loosen) — for
// a session-era client (raw HTTP JSON-RPC, 2025-11-25) and for a 2026-07-28
// client (mark3labs/mcp-go's client, whose wire traffic is captured so the
// raw JSON is compared, not its typed structs). Upstreams: the go-sdk
// fixture over HTTP with sessions, stateless, and over stdio;
// server-everything over HTTP and over stdio.
package interop
