// Command stdioserver is the MCP server over stdio that the stdio upstream
// tests start as a real child process. Its tools report what the process
// received (the identity in _meta, its environment, its working directory)
// and misbehave on demand (sleep, crash, write to stderr, spawn a
// grandchild).
//
// Flags:
//
//	-ignore-term  ignore SIGTERM and keep running after stdin closes (to
//	              test the SIGKILL after the grace period)
//	-hang         do not serve MCP at all: just sleep (used for grandchildren)
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// identityKey is the _meta key the gateway puts the verified identity in.
const identityKey = "io.gatewaystack/identity"

func main() {
	ignoreTerm := flag.Bool("ignore-term", false, "ignore SIGTERM and stdin EOF")
	hang := flag.Bool("hang", false, "sleep forever without serving")
	flag.Parse()

	if *ignoreTerm {
		signal.Ignore(syscall.SIGTERM)
	}
	if *hang {
		fmt.Println("ready") // SIGTERM is ignored from now on
		for {
			time.Sleep(time.Hour)
		}
	}

	var (
		mu   sync.Mutex
		seen = map[string]json.RawMessage{} // method -> the _meta of its last request
	)
	hooks := &server.Hooks{}
	hooks.AddBeforeAny(func(_ context.Context, _ any, method mcp.MCPMethod, message any) {
		b, err := json.Marshal(message)
		if err != nil {
			return
		}
		var m struct {
			Params struct {
				Meta json.RawMessage `json:"_meta"`
			} `json:"params"`
		}
		if json.Unmarshal(b, &m) != nil {
			return
		}
		mu.Lock()
		seen[string(method)] = m.Params.Meta
		mu.Unlock()
	})

	s := server.NewMCPServer("stdioserver", "1.0.0",
		server.WithToolCapabilities(false),
		server.WithResourceCapabilities(false, false),
		server.WithPromptCapabilities(false),
		server.WithHooks(hooks),
	)

	meta := func(req mcp.CallToolRequest) (identity any, all map[string]any) {
		if req.Params.Meta == nil {
			return nil, nil
		}
		b, _ := json.Marshal(req.Params.Meta)
		_ = json.Unmarshal(b, &all)
		return req.Params.Meta.AdditionalFields[identityKey], all
	}

	s.AddTool(mcp.NewTool("whoami", mcp.WithDescription("Returns the identity received in _meta."),
		mcp.WithString("marker")),
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			id, all := meta(req)
			return mcp.NewToolResultStructuredOnly(map[string]any{
				"identity": id, "meta": all, "marker": req.GetArguments()["marker"],
			}), nil
		})

	s.AddTool(mcp.NewTool("env", mcp.WithDescription("Returns the process's environment, directory and ids.")),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			wd, _ := os.Getwd()
			pgid, _ := syscall.Getpgid(0)
			return mcp.NewToolResultStructuredOnly(map[string]any{
				"env": os.Environ(), "dir": wd, "pid": os.Getpid(), "pgid": pgid,
			}), nil
		})

	s.AddTool(mcp.NewTool("sleep", mcp.WithDescription("Sleeps ms milliseconds, then echoes."),
		mcp.WithNumber("ms"), mcp.WithString("echo")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			args := req.GetArguments()
			ms, _ := args["ms"].(float64)
			select {
			case <-time.After(time.Duration(ms) * time.Millisecond):
			case <-ctx.Done():
			}
			id, _ := meta(req)
			return mcp.NewToolResultStructuredOnly(map[string]any{"echo": args["echo"], "identity": id}), nil
		})

	s.AddTool(mcp.NewTool("crash", mcp.WithDescription("Exits with status 3 at once.")),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			fmt.Fprintln(os.Stderr, "crashing on purpose")
			os.Exit(3)
			return nil, nil
		})

	s.AddTool(mcp.NewTool("closeout", mcp.WithDescription("Closes stdout and keeps running.")),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			_ = os.Stdout.Close()
			return mcp.NewToolResultText("unseen"), nil
		})

	s.AddTool(mcp.NewTool("stderr", mcp.WithDescription("Writes each line to stderr."),
		mcp.WithArray("lines", mcp.WithStringItems())),
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			lines, _ := req.GetArguments()["lines"].([]any)
			for _, l := range lines {
				fmt.Fprintln(os.Stderr, l)
			}
			return mcp.NewToolResultText(fmt.Sprintf("wrote %d lines", len(lines))), nil
		})

	s.AddTool(mcp.NewTool("spawn", mcp.WithDescription("Starts a grandchild that sleeps forever (in this process group) and returns its pid.")),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			self, err := os.Executable()
			if err != nil {
				return mcp.NewToolResultError(err.Error()), nil
			}
			cmd := exec.Command(self, "-hang", "-ignore-term")
			out, err := cmd.StdoutPipe()
			if err != nil {
				return mcp.NewToolResultError(err.Error()), nil
			}
			if err := cmd.Start(); err != nil {
				return mcp.NewToolResultError(err.Error()), nil
			}
			// Answer once it ignores SIGTERM.
			if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
				return mcp.NewToolResultError("grandchild: " + err.Error()), nil
			}
			go func() { _ = cmd.Wait() }()
			return mcp.NewToolResultStructuredOnly(map[string]any{"pid": cmd.Process.Pid}), nil
		})

	s.AddTool(mcp.NewTool("seen", mcp.WithDescription("Returns the _meta of the last request of each method.")),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			mu.Lock()
			defer mu.Unlock()
			out := make(map[string]any, len(seen))
			for k, v := range seen {
				out[k] = v
			}
			return mcp.NewToolResultStructuredOnly(out), nil
		})

	s.AddResource(mcp.NewResource("test://hello", "hello", mcp.WithMIMEType("text/plain")),
		func(context.Context, mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			return []mcp.ResourceContents{mcp.TextResourceContents{URI: "test://hello", MIMEType: "text/plain", Text: "hello"}}, nil
		})
	s.AddPrompt(mcp.NewPrompt("greet", mcp.WithPromptDescription("Greets.")),
		func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return mcp.NewGetPromptResult("greeting", []mcp.PromptMessage{
				mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent("hello")),
			}), nil
		})

	ctx := context.Background()
	if !*ignoreTerm {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
		defer stop()
	}
	stdio := server.NewStdioServer(s)
	server.WithWorkerPoolSize(64)(stdio)
	err := stdio.Listen(ctx, os.Stdin, os.Stdout)
	if *ignoreTerm {
		for { // stdin closed: keep running until SIGKILL
			time.Sleep(time.Hour)
		}
	}
	if err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "stdioserver:", err)
		os.Exit(1)
	}
}
