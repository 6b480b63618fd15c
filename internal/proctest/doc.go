// Package proctest starts and stops the helper processes that tests run
// (pinned MCP servers, the gateway's own binary) as whole process groups, so
// nothing a test starts outlives it.
package proctest
