package loadgen

import (
	"context"
	"net/http"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// EchoPath is the MCP endpoint of NewEchoServer.
const EchoPath = "/mcp"

// NewEchoServer returns a fast MCP server (mcp-go, streamable HTTP, both
// protocol eras) at EchoPath with one tool, echo, whose result is its text
// argument: an upstream cheap enough that a gateway's own cost shows in a
// benchmark. It is bench/echo's server and the tests' upstream.
func NewEchoServer() http.Handler {
	s := server.NewMCPServer("gatewaystack-bench-echo", "1.0.0", server.WithToolCapabilities(false))
	s.AddTool(mcpgo.NewTool("echo",
		mcpgo.WithDescription("Returns its text argument."),
		mcpgo.WithString("text", mcpgo.Description("The text to return.")),
	), func(_ context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		return mcpgo.NewToolResultText(req.GetString("text", "")), nil
	})
	mux := http.NewServeMux()
	mux.Handle(EchoPath, server.NewStreamableHTTPServer(s, server.WithEndpointPath(EchoPath)))
	return mux
}
