// Package upstream is the gateway's route stage: the MCP servers behind the
// gateway, the combined tool catalog across them (with <upstream>__<tool>
// namespacing), and the calls forwarded to them with the verified identity
// attached as headers. The caller's own headers never reach an upstream: each
// upstream request is built from scratch with the configured static headers
// and the identity headers.
//
// Payloads stay raw JSON end to end (json.RawMessage), so tool definitions
// and results reach the client exactly as the upstream sent them, except for
// the tool-name prefix.
package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/mark3labs/mcp-go/client/transport"
)

// ProtocolVersion is the MCP version the gateway speaks to upstreams.
const ProtocolVersion = "2025-06-18"

// Sentinel errors of this package, wrapped with the upstream's name.
var (
	// ErrTimeout: the upstream did not answer within its timeout.
	ErrTimeout = errors.New("upstream: timeout")
	// ErrUnavailable: the upstream could not be reached or answered badly.
	ErrUnavailable = errors.New("upstream: unavailable")
)

// RPCError is a JSON-RPC error returned by an upstream, passed to the client
// unchanged.
type RPCError = mcpgo.JSONRPCErrorDetails

// Response is an upstream's answer: exactly one of Result or Error is set.
type Response struct {
	Result json.RawMessage
	Error  *RPCError
}

// headersKey carries per-call headers (the identity) in a context, so that
// every HTTP request of a call — including a re-initialization it triggers —
// carries them.
type headersKey struct{}

// WithHeaders returns ctx carrying h for the upstream requests made with it.
func WithHeaders(ctx context.Context, h map[string]string) context.Context {
	return context.WithValue(ctx, headersKey{}, h)
}

func headersFrom(ctx context.Context) map[string]string {
	h, _ := ctx.Value(headersKey{}).(map[string]string)
	return h
}

// MCPClient is one upstream MCP server over streamable HTTP. It keeps one
// upstream session, created lazily on first use and re-created when the
// upstream forgets it (HTTP 404) or restarts. Safe for concurrent use.
type MCPClient struct {
	name    string
	url     string
	static  map[string]string
	hc      *http.Client
	timeout time.Duration
	version string
	logger  *slog.Logger
	listen  bool

	mu     sync.Mutex
	tr     *transport.StreamableHTTP
	nextID atomic.Int64

	notify handlerSlot

	life context.Context // ends at Close
	end  context.CancelFunc
}

var _ Notifier = (*MCPClient)(nil)

// SetNotificationHandler receives every notification the upstream sends.
func (c *MCPClient) SetNotificationHandler(h func(method string, params json.RawMessage)) {
	c.notify.set(h)
}

// MCPClientOptions configures an MCPClient.
type MCPClientOptions struct {
	// Name of the upstream, used in errors.
	Name string
	// URL of the upstream's MCP endpoint.
	URL string
	// Headers are static headers sent on every request (credentials).
	Headers map[string]string
	// HTTPClient is shared by all upstreams (tuned keep-alive pool).
	HTTPClient *http.Client
	// Timeout bounds each call.
	Timeout time.Duration
	// Version is the gateway version sent in clientInfo.
	Version string
	// Logger receives the transport's own messages (default: discarded).
	Logger *slog.Logger
	// Listen keeps a listening stream open for notifications.
	Listen bool
}

// NewMCPClient returns a client; it does not connect until first used.
func NewMCPClient(o MCPClientOptions) *MCPClient {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	life, end := context.WithCancel(context.Background())
	return &MCPClient{life: life, end: end, name: o.Name, url: o.URL, static: o.Headers, hc: o.HTTPClient, timeout: o.Timeout, version: o.Version,
		logger: o.Logger.With("upstream", o.Name), listen: o.Listen}
}

// Name returns the upstream's name.
func (c *MCPClient) Name() string { return c.name }

// Close ends the upstream session.
func (c *MCPClient) Close() error {
	c.end()
	c.mu.Lock()
	tr := c.tr
	c.tr = nil
	c.mu.Unlock()
	if tr != nil {
		if err := tr.Close(); err != nil {
			return fmt.Errorf("close upstream %s: %w", c.name, err)
		}
	}
	return nil
}

// session returns the live transport, connecting (initialize +
// notifications/initialized) when there is none.
func (c *MCPClient) session(ctx context.Context) (*transport.StreamableHTTP, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tr != nil {
		return c.tr, nil
	}
	opts := []transport.StreamableHTTPCOption{
		transport.WithHTTPHeaderFunc(func(ctx context.Context) map[string]string { return headersFrom(ctx) }),
		transport.WithHTTPLogger(c.logger),
	}
	if c.listen {
		// The listening stream brings list changes and other notifications
		// that are not tied to a request.
		opts = append(opts, transport.WithContinuousListening())
	}
	if c.hc != nil {
		opts = append(opts, transport.WithHTTPBasicClient(c.hc))
	}
	if len(c.static) > 0 {
		opts = append(opts, transport.WithHTTPHeaders(c.static))
	}
	tr, err := transport.NewStreamableHTTP(c.url, opts...)
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w: %w", c.name, ErrUnavailable, err)
	}
	tr.SetRequestHandler(relayServerRequest)
	tr.SetNotificationHandler(func(n mcpgo.JSONRPCNotification) {
		params, err := json.Marshal(n.Params)
		if err != nil {
			return
		}
		c.notify.deliver(n.Method, params)
	})
	// The transport (and its listening stream) lives as long as the client,
	// not as long as the request that happened to connect it.
	if err := tr.Start(c.life); err != nil {
		return nil, fmt.Errorf("upstream %s: %w: start: %w", c.name, ErrUnavailable, err)
	}
	init := map[string]any{
		"protocolVersion": ProtocolVersion,
		"capabilities":    clientCapabilities(),
		"clientInfo":      map[string]any{"name": "gatewaystack", "version": c.version},
	}
	resp, err := tr.SendRequest(ctx, transport.JSONRPCRequest{JSONRPC: "2.0", ID: mcpgo.NewRequestId(c.nextID.Add(1)), Method: "initialize", Params: init})
	if err != nil {
		_ = tr.Close()
		return nil, c.wrap(ctx, "initialize", err)
	}
	if resp.Error != nil {
		_ = tr.Close()
		return nil, fmt.Errorf("upstream %s: %w: initialize refused: %s", c.name, ErrUnavailable, resp.Error.Message)
	}
	var ir struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	if err := json.Unmarshal(resp.Result, &ir); err == nil && ir.ProtocolVersion != "" {
		tr.SetProtocolVersion(ir.ProtocolVersion)
	}
	if err := tr.SendNotification(ctx, mcpgo.JSONRPCNotification{JSONRPC: "2.0", Notification: mcpgo.Notification{Method: "notifications/initialized"}}); err != nil {
		_ = tr.Close()
		return nil, c.wrap(ctx, "notifications/initialized", err)
	}
	c.tr = tr
	return tr, nil
}

// clientCapabilities is what the gateway declares to upstreams: it relays
// these requests to the client that made the call, and refuses them for
// clients that cannot answer. Declaring them keeps tool lists faithful:
// some servers only offer the tools that use them to clients that declare
// them.
func clientCapabilities() map[string]any {
	return map[string]any{"sampling": map[string]any{}, "elicitation": map[string]any{}, "roots": map[string]any{}}
}

// relayServerRequest answers a request the upstream sent while working on a
// call, through the relay the call put in its context.
func relayServerRequest(ctx context.Context, req transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
	relay := ServerRequestsFrom(ctx)
	if relay == nil {
		return transport.NewJSONRPCErrorResponse(req.ID, mcpgo.METHOD_NOT_FOUND,
			req.Method+" is only relayed while a client call is in progress", nil), nil
	}
	params, err := json.Marshal(req.Params)
	if err != nil {
		return nil, fmt.Errorf("encode %s params: %w", req.Method, err)
	}
	result, rpcErr, err := relay(ctx, req.Method, params)
	if err != nil {
		return nil, err
	}
	if rpcErr != nil {
		return transport.NewJSONRPCErrorResponse(req.ID, rpcErr.Code, rpcErr.Message, rpcErr.Data), nil
	}
	return transport.NewJSONRPCResultResponse(req.ID, result), nil
}

var _ Prober = (*MCPClient)(nil)

// Probe connects to the upstream (initialize) without a caller's identity.
// An upstream that answers, even with 401 because it wants an identity, is
// reachable.
func (c *MCPClient) Probe(ctx context.Context) error {
	_, err := c.session(ctx)
	return err
}

// drop forgets tr if it is still the live transport.
func (c *MCPClient) drop(tr *transport.StreamableHTTP) {
	c.mu.Lock()
	if c.tr == tr {
		c.tr = nil
	}
	c.mu.Unlock()
	_ = tr.Close()
}

// Call sends one JSON-RPC request (params as raw JSON) and returns the
// upstream's raw answer. Headers from WithHeaders in ctx are attached. The
// call is bounded by the upstream's timeout; an upstream that lost the
// session is re-initialized and the call retried once (a 404 means the
// request was not processed).
func (c *MCPClient) Call(ctx context.Context, method string, params json.RawMessage) (Response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	for attempt := 0; ; attempt++ {
		tr, err := c.session(ctx)
		if err != nil {
			return Response{}, err
		}
		req := transport.JSONRPCRequest{JSONRPC: "2.0", ID: mcpgo.NewRequestId(c.nextID.Add(1)), Method: method}
		if len(params) > 0 {
			req.Params = legacyParams(params)
		}
		resp, err := tr.SendRequest(ctx, req)
		if err != nil && ctx.Err() != nil {
			c.cancelUpstream(ctx, tr, req.ID, ctx.Err())
		}
		if err != nil {
			if errors.Is(err, transport.ErrSessionTerminated) && attempt == 0 {
				c.drop(tr)
				continue
			}
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				c.drop(tr)
			}
			return Response{}, c.wrap(ctx, method, err)
		}
		return Response{Result: resp.Result, Error: resp.Error}, nil
	}
}

// cancelUpstream tells the upstream that the gateway gave up on request id
// (the caller cancelled, went away, or the timeout passed), so it can stop
// working on it. Best effort: it runs in the background, bounded.
func (c *MCPClient) cancelUpstream(ctx context.Context, tr *transport.StreamableHTTP, id mcpgo.RequestId, cause error) {
	reason := "the gateway's caller cancelled the request"
	if errors.Is(cause, context.DeadlineExceeded) {
		reason = "the gateway's timeout for this upstream passed"
	}
	n := mcpgo.JSONRPCNotification{JSONRPC: "2.0", Notification: mcpgo.Notification{
		Method: "notifications/cancelled",
		Params: mcpgo.NotificationParams{AdditionalFields: map[string]any{"requestId": id, "reason": reason}},
	}}
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	go func() {
		defer cancel()
		_ = tr.SendNotification(bg, n)
	}()
}

// eraMetaKeys are the per-request _meta keys of the stateless 2026-07-28
// era: what the initialize handshake establishes once per session in the
// era this client speaks upstream. They describe the gateway's caller, not
// the gateway, and an upstream on a session-era protocol refuses a request
// whose _meta names a protocol version its session did not negotiate.
var eraMetaKeys = []string{
	mcpgo.MetaKeyProtocolVersion,
	mcpgo.MetaKeyClientInfo,
	mcpgo.MetaKeyClientCapabilities,
	mcpgo.MetaKeyLogLevel,
}

// legacyParams returns params without the 2026-07-28 per-request _meta keys
// (and without _meta when nothing else is left in it); everything else is
// kept as sent. Params without such keys are returned unchanged.
func legacyParams(params json.RawMessage) json.RawMessage {
	if !bytes.Contains(params, []byte("io.modelcontextprotocol/")) {
		return params
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(params, &obj) != nil {
		return params
	}
	var meta map[string]json.RawMessage
	if json.Unmarshal(obj["_meta"], &meta) != nil || meta == nil {
		return params
	}
	n := len(meta)
	for _, k := range eraMetaKeys {
		delete(meta, k)
	}
	if len(meta) == n {
		return params
	}
	if len(meta) == 0 {
		delete(obj, "_meta")
	} else {
		b, err := json.Marshal(meta)
		if err != nil {
			return params
		}
		obj["_meta"] = b
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return params
	}
	return out
}

// wrap classifies a transport error into ErrTimeout or ErrUnavailable with a
// message that names the upstream.
func (c *MCPClient) wrap(ctx context.Context, method string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("upstream %s did not answer %s within %s: %w", c.name, method, c.timeout, ErrTimeout)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("upstream %s did not answer %s within %s: %w", c.name, method, c.timeout, ErrTimeout)
	}
	return fmt.Errorf("upstream %s is unavailable (%s): %w: %w", c.name, method, ErrUnavailable, err)
}
