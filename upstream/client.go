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
	// HTTPStatus is the status of the upstream's HTTP answer (0: not over
	// HTTP), for the audit event.
	HTTPStatus int
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
//
// The transport is the gateway's own thin client (httpmcp.go), not mcp-go's:
// each call's response stream is read to its end so the keep-alive
// connection goes back to the pool, and notifications sent on a call's own
// stream can be given to that call (WithCallNotifications).
type MCPClient struct {
	name    string
	url     string
	static  map[string]string
	hc      *http.Client
	rt      http.RoundTripper // hc's transport: every request goes straight to it (send)
	ownHC   bool              // hc was made here: Close releases its idle connections
	timeout time.Duration
	logger  *slog.Logger
	listen  bool
	// logLevel is set on every new session (MCPClientOptions.LogLevel).
	logLevel string

	initParams json.RawMessage // the initialize params, encoded once
	nextID     atomic.Int64
	// backoffMin and backoffMax bound the listening stream's retry delay.
	backoffMin, backoffMax time.Duration

	notify  handlerSlot
	readers sseReaderPool

	mu         sync.Mutex
	sess       *httpSession    // the live session; nil until connected
	connecting *connectAttempt // the connection attempt in flight, if any
	changed    chan struct{}   // closed, and replaced, whenever sess changes
	listening  bool            // the listening goroutine was started
	closed     bool

	life context.Context // ends at Close
	end  context.CancelFunc
	bg   sync.WaitGroup // the listening goroutine
}

var _ Notifier = (*MCPClient)(nil)

// SetNotificationHandler receives every notification the upstream sends on
// its listening stream, and those sent on a call's response stream when the
// call's context carries no WithCallNotifications sink (list changes always
// reach it).
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
	// HTTPClient is shared by all upstreams (tuned keep-alive pool). Without
	// one, the client makes its own.
	HTTPClient *http.Client
	// Timeout bounds each call.
	Timeout time.Duration
	// Version is the gateway version sent in clientInfo.
	Version string
	// Logger receives the transport's own messages (default: discarded).
	Logger *slog.Logger
	// Listen keeps a listening stream open for notifications.
	Listen bool
	// LogLevel, when set, is asked of the upstream with logging/setLevel
	// once per session, if the upstream declares the logging capability.
	// The upstream session is shared by every caller: a gateway that relays
	// log messages asks for all of them ("debug") and filters per caller.
	LogLevel string
}

// NewMCPClient returns a client; it does not connect until first used.
func NewMCPClient(o MCPClientOptions) *MCPClient {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	hc, own := o.HTTPClient, false
	if hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		hc, own = &http.Client{Transport: t}, true
	}
	init, _ := json.Marshal(map[string]any{
		"protocolVersion": ProtocolVersion,
		"capabilities":    clientCapabilities(),
		"clientInfo":      map[string]any{"name": "gatewaystack", "version": o.Version},
	})
	rt := hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	life, end := context.WithCancel(context.Background())
	return &MCPClient{life: life, end: end, name: o.Name, url: o.URL, static: o.Headers, hc: hc, rt: rt, ownHC: own,
		timeout: o.Timeout, logger: o.Logger.With("upstream", o.Name), listen: o.Listen, logLevel: o.LogLevel,
		initParams: init, changed: make(chan struct{}), backoffMin: listenBackoffMin, backoffMax: listenBackoffMax}
}

// Name returns the upstream's name.
func (c *MCPClient) Name() string { return c.name }

// Close stops the listening stream, ends the calls in flight, and ends the
// upstream session (DELETE, best effort, bounded). The shared HTTP client
// is left open.
func (c *MCPClient) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	s := c.sess
	c.sess = nil
	c.mu.Unlock()
	c.end()
	c.bg.Wait()
	if s != nil {
		s.cancel()
		c.deleteSession(s)
	}
	if c.ownHC {
		c.hc.CloseIdleConnections()
	}
	return nil
}

// connectAttempt is one connection (initialize) in progress; the callers
// that need a session meanwhile wait for it.
type connectAttempt struct {
	done chan struct{}
	err  error
	// shared: err is not about the caller that connected (its context or
	// its identity), so the callers that waited get it too.
	shared bool
}

// session returns the live session, connecting (initialize +
// notifications/initialized) when there is none. One connection attempt
// runs at a time; the other callers wait for it, each within its ctx.
func (c *MCPClient) session(ctx context.Context) (*httpSession, error) {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, fmt.Errorf("upstream %s is closed: %w", c.name, ErrUnavailable)
		}
		if s := c.sess; s != nil {
			c.mu.Unlock()
			return s, nil
		}
		if a := c.connecting; a != nil {
			c.mu.Unlock()
			select {
			case <-a.done:
				if a.shared {
					return nil, a.err
				}
				continue
			case <-ctx.Done():
				return nil, c.wrap(ctx, "initialize", ctx.Err())
			}
		}
		a := &connectAttempt{done: make(chan struct{})}
		c.connecting = a
		c.mu.Unlock()

		s, err := c.connect(ctx)
		c.mu.Lock()
		c.connecting = nil
		if err == nil && c.closed {
			err = fmt.Errorf("upstream %s is closed: %w", c.name, ErrUnavailable)
			go c.deleteSession(s)
		}
		if err == nil {
			c.sess = s
			close(c.changed)
			c.changed = make(chan struct{})
			if c.listen && !c.listening {
				c.listening = true
				c.bg.Add(1)
				go c.listenLoop()
			}
		}
		a.err = err
		a.shared = err != nil && ctx.Err() == nil && !callerSpecific(err)
		close(a.done)
		c.mu.Unlock()
		return s, err
	}
}

// forget drops s if it is still the live session, so the next call
// connects anew; end also ends s at the upstream (DELETE, in the
// background) when it was still live.
func (c *MCPClient) forget(s *httpSession, end bool) {
	c.mu.Lock()
	live := c.sess == s
	if live {
		c.sess = nil
		close(c.changed)
		c.changed = make(chan struct{})
	}
	c.mu.Unlock()
	s.cancel()
	if live && end {
		go c.deleteSession(s)
	}
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
// call, through the relay the call put in its context: it returns the result,
// or the JSON-RPC error to send back. Without a relay (a request outside a
// call, e.g. on the listening stream) the answer is "method not found".
func relayServerRequest(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, *RPCError) {
	relay := ServerRequestsFrom(ctx)
	if relay == nil {
		return nil, &RPCError{Code: mcpgo.METHOD_NOT_FOUND, Message: method + " is only relayed while a client call is in progress"}
	}
	result, rpcErr, err := relay(ctx, method, params)
	switch {
	case errors.Is(err, context.Canceled):
		return nil, &RPCError{Code: mcpgo.REQUEST_INTERRUPTED, Message: method + " was cancelled: the call it belongs to ended"}
	case errors.Is(err, context.DeadlineExceeded):
		return nil, &RPCError{Code: mcpgo.REQUEST_INTERRUPTED, Message: method + " timed out: the gateway's caller did not answer in time"}
	case err != nil:
		return nil, &RPCError{Code: mcpgo.INTERNAL_ERROR, Message: method + " could not be relayed: " + err.Error()}
	case rpcErr != nil:
		return nil, rpcErr
	case len(result) == 0:
		return json.RawMessage(`{}`), nil
	}
	return result, nil
}

var _ Prober = (*MCPClient)(nil)

// Probe connects to the upstream (initialize) without a caller's identity.
// An upstream that answers, even with 401 because it wants an identity, is
// reachable.
func (c *MCPClient) Probe(ctx context.Context) error {
	_, err := c.session(ctx)
	return err
}

// Call sends one JSON-RPC request (params as raw JSON) and returns the
// upstream's raw answer. Headers from WithHeaders in ctx are attached. The
// call is bounded by the upstream's timeout (and ends at Close); an upstream
// that lost the session is re-initialized and the call retried once (a 404
// means the request was not processed). When ctx ends first, the upstream
// is sent notifications/cancelled for the request.
func (c *MCPClient) Call(ctx context.Context, method string, params json.RawMessage) (Response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	defer context.AfterFunc(c.life, cancel)()
	if len(params) > 0 {
		params = legacyParams(params)
	}
	for attempt := 0; ; attempt++ {
		s, err := c.session(ctx)
		if err != nil {
			return Response{}, err
		}
		id := c.nextID.Add(1)
		resp, _, err := c.request(ctx, s, id, encodeRequest(id, method, params))
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			c.cancelUpstream(ctx, s, id, ctx.Err())
			return Response{}, c.wrap(ctx, method, err)
		}
		switch {
		case errors.Is(err, errSessionLost):
			c.forget(s, false)
			if attempt == 0 {
				continue
			}
		case !callerSpecific(err) && !errors.Is(err, errEventTooLarge):
			// A broken connection, a stream that ended early, a status
			// the session may not survive: start afresh next time.
			c.forget(s, true)
		}
		return Response{}, c.wrap(ctx, method, err)
	}
}

// cancelUpstream tells the upstream that the gateway gave up on request id
// (the caller cancelled, went away, or the timeout passed), so it can stop
// working on it. Best effort: it runs in the background, bounded, with the
// call's identity headers.
func (c *MCPClient) cancelUpstream(ctx context.Context, s *httpSession, id int64, cause error) {
	reason := "the gateway's caller cancelled the request"
	if errors.Is(cause, context.DeadlineExceeded) {
		reason = "the gateway's timeout for this upstream passed"
	}
	body := fmt.Appendf(nil, `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":%d,"reason":%q}}`, id, reason)
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	go func() {
		defer cancel()
		if err := c.post(bg, s, body); err != nil {
			c.logger.Debug("notifications/cancelled was not delivered", "request", id, "err", err)
		}
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

// EraMetaKey reports whether k is one of the 2026-07-28 per-request _meta
// keys (protocol version, client info and capabilities, log level), which a
// session-era upstream gets at initialize instead.
func EraMetaKey(k string) bool {
	for _, e := range eraMetaKeys {
		if k == e {
			return true
		}
	}
	return false
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
