package upstream

// The wire side of MCPClient: a thin streamable-HTTP client (MCP 2025-06-18
// transport) over the shared, tuned *http.Client.
//
//   - Every JSON-RPC message is POSTed with Content-Type application/json,
//     Accept "application/json, text/event-stream", the session id and the
//     negotiated protocol version once known, the configured static headers
//     and the call's identity headers (WithHeaders) — nothing of the
//     gateway's caller.
//   - A request's answer is either one JSON body or an event stream that
//     carries notifications and requests of the upstream before the
//     response. The stream is read to its end (bounded in bytes and time
//     after the response), so the connection is reused, not dialled again.
//   - Notifications on a call's stream go to the call's sink
//     (WithCallNotifications) or else to the global handler; list changes
//     always reach the global handler. Requests of the upstream on a call's
//     stream go to the call's relay (WithServerRequests); the answer is
//     POSTed back with the call's headers.
//   - A stream the upstream ends before the response, after an event id, is
//     resumed with GET and Last-Event-ID (SEP-1699).
//   - One listening stream (GET) per client when asked for, following the
//     session and retrying with capped backoff.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/gatewaystack/gatewaystack/internal/jsonscan"
)

const (
	acceptBoth   = "application/json, text/event-stream"
	acceptStream = "text/event-stream"

	headerSession  = "Mcp-Session-Id"
	headerProtocol = "Mcp-Protocol-Version"

	// drainBytes and drainWait bound reading a response stream after the
	// response (and the rest of a body that is not needed): a stream that
	// goes on longer costs its connection instead.
	drainBytes    = 256 << 10
	drainWait     = 2 * time.Second
	drainSyncWait = 50 * time.Millisecond
	// errorBodyBytes bounds reading the body of an error status.
	errorBodyBytes = 64 << 10
	// maxResumes bounds how often one response stream is resumed.
	maxResumes = 100
	// answerTimeout bounds POSTing an answer to an upstream's request.
	answerTimeout = 10 * time.Second

	listenBackoffMin = time.Second
	listenBackoffMax = 30 * time.Second
)

var (
	// errSessionLost: the upstream answered 404 to a request carrying the
	// session id; it no longer knows the session and did not process it.
	errSessionLost = errors.New("the upstream no longer knows the session (HTTP 404)")
	// errNoListening: the upstream offers no listening stream (405).
	errNoListening = errors.New("the upstream offers no listening stream")
)

// httpSession is one upstream session.
type httpSession struct {
	id      string // Mcp-Session-Id; "" when the upstream uses none
	version string // the negotiated protocol version
	// ctx ends when the session is forgotten or the client is closed; the
	// listening stream on this session uses it.
	ctx    context.Context
	cancel context.CancelFunc
}

// statusError is an HTTP status an upstream answered with, without a
// JSON-RPC error in the body.
type statusError struct {
	Code   int
	Detail string // a short excerpt of the body, never for 401/403
}

func (e *statusError) Error() string {
	msg := "HTTP " + strconv.Itoa(e.Code) + " " + http.StatusText(e.Code)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// callerSpecific reports whether err is about the caller's identity (401,
// 403) rather than the upstream or the session.
func callerSpecific(err error) bool {
	var se *statusError
	return errors.As(err, &se) && (se.Code == http.StatusUnauthorized || se.Code == http.StatusForbidden)
}

// newStatusError builds the error for a status, with a short, printable
// excerpt of body (none for 401 and 403: such bodies are the upstream's
// business with the caller).
func newStatusError(code int, body []byte) *statusError {
	e := &statusError{Code: code}
	if code == http.StatusUnauthorized || code == http.StatusForbidden {
		return e
	}
	const max = 200
	if len(body) > max {
		body = body[:max]
		for len(body) > 0 && !utf8.Valid(body) {
			body = body[:len(body)-1]
		}
	}
	e.Detail = strings.Join(strings.Fields(strings.ToValidUTF8(string(body), "")), " ")
	return e
}

// send sends one request to the upstream's transport, without
// http.Client: no redirect is followed — the identity headers go to the
// configured URL and nowhere else, and a 3xx answer is an error — and no
// per-request header copy is made for redirects that never happen. Every
// request is bounded by its context. What http.Client would do that still
// matters is done here: credentials in the URL become Basic authorization
// (unless the upstream's headers set Authorization), and a transport error
// is a *url.Error, a net.Error, as the health checks expect of a failure
// to reach the upstream.
func (c *MCPClient) send(req *http.Request) (*http.Response, error) {
	if u := req.URL.User; u != nil && req.Header.Get("Authorization") == "" {
		password, _ := u.Password()
		req.SetBasicAuth(u.Username(), password)
	}
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		return nil, &url.Error{Op: urlErrorOp(req.Method), URL: req.URL.Redacted(), Err: err}
	}
	return resp, nil
}

// urlErrorOp is the Op http.Client gives its errors ("Post", "Get", ...).
func urlErrorOp(method string) string {
	if method == "" {
		return "Get"
	}
	return method[:1] + strings.ToLower(method[1:])
}

// newHTTPRequest builds one request from scratch: static headers, then the
// identity headers in ctx, then the protocol's own headers.
func (c *MCPClient) newHTTPRequest(ctx context.Context, verb string, s *httpSession, body []byte, accept string) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, verb, c.url, rd)
	if err != nil {
		return nil, err
	}
	h := req.Header
	for k, v := range c.static {
		h.Set(k, v)
	}
	for k, v := range headersFrom(ctx) {
		h.Set(k, v)
	}
	if body != nil {
		h["Content-Type"] = []string{"application/json"}
	}
	h["Accept"] = []string{accept}
	if s != nil {
		if s.id != "" {
			h[headerSession] = []string{s.id}
		}
		if s.version != "" {
			h[headerProtocol] = []string{s.version}
		}
	}
	return req, nil
}

// connect runs the handshake: initialize, then notifications/initialized.
// Errors are wrapped.
func (c *MCPClient) connect(ctx context.Context) (*httpSession, error) {
	id := c.nextID.Add(1)
	resp, hdr, err := c.request(ctx, nil, id, encodeRequest(id, "initialize", c.initParams))
	if err != nil {
		return nil, c.wrap(ctx, "initialize", err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("upstream %s: %w: initialize refused: %s (%d)", c.name, ErrUnavailable, resp.Error.Message, resp.Error.Code)
	}
	var ir struct {
		ProtocolVersion string `json:"protocolVersion"`
		Capabilities    struct {
			Logging json.RawMessage `json:"logging"`
		} `json:"capabilities"`
	}
	_ = json.Unmarshal(resp.Result, &ir)
	if ir.ProtocolVersion == "" {
		ir.ProtocolVersion = ProtocolVersion
	}
	sctx, cancel := context.WithCancel(c.life)
	s := &httpSession{id: hdr.Get(headerSession), version: ir.ProtocolVersion, ctx: sctx, cancel: cancel}
	if err := c.post(ctx, s, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)); err != nil {
		cancel()
		if s.id != "" {
			go c.deleteSession(s)
		}
		return nil, c.wrap(ctx, "notifications/initialized", err)
	}
	if c.logLevel != "" && len(ir.Capabilities.Logging) > 0 && string(ir.Capabilities.Logging) != "null" {
		c.setLogLevel(ctx, s)
	}
	return s, nil
}

// setLogLevel asks the upstream for log messages at c.logLevel and above on
// session s. Best effort: without it the upstream sends what it decides.
func (c *MCPClient) setLogLevel(ctx context.Context, s *httpSession) {
	params, _ := json.Marshal(map[string]string{"level": c.logLevel})
	id := c.nextID.Add(1)
	resp, _, err := c.request(ctx, s, id, encodeRequest(id, "logging/setLevel", params))
	switch {
	case err != nil:
		c.logger.Debug("logging/setLevel failed", "err", err)
	case resp.Error != nil:
		c.logger.Debug("logging/setLevel refused", "code", resp.Error.Code, "message", resp.Error.Message)
	}
}

// request POSTs one JSON-RPC request (body, with the given id) and returns
// the upstream's response and the response's HTTP headers. A non-2xx status
// with a JSON-RPC error body is that error, as a Response.
func (c *MCPClient) request(ctx context.Context, s *httpSession, id int64, body []byte) (Response, http.Header, error) {
	// The HTTP request ends with ctx until the response has arrived. What
	// is left of an event stream after it is read on its own terms
	// (finishStream), so that neither the caller's return nor its
	// cancellation throws the connection away.
	rctx, rcancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, rcancel)
	release := func() { stop(); rcancel() }
	req, err := c.newHTTPRequest(rctx, http.MethodPost, s, body, acceptBoth)
	if err != nil {
		release()
		return Response{}, nil, err
	}
	resp, err := c.send(req)
	if err != nil {
		release()
		return Response{}, nil, err
	}
	want := strconv.AppendInt(make([]byte, 0, 20), id, 10)
	ct := resp.Header.Get("Content-Type")
	if resp.StatusCode == http.StatusOK && mediaTypeIs(ct, "text/event-stream") {
		sr := c.readers.get(resp.Body)
		r, found, body, err := c.readCallStream(ctx, rctx, s, sr, resp.Body, want)
		if found && stop() {
			c.finishStream(sr, body, rcancel)
		} else {
			rcancel()
			_ = body.Close()
			c.readers.put(sr)
		}
		r.HTTPStatus = resp.StatusCode
		return r, resp.Header, err
	}
	defer func() {
		release()
		_ = resp.Body.Close()
	}()
	switch {
	case resp.StatusCode != http.StatusOK:
		r, err := c.badStatus(s, resp)
		r.HTTPStatus = resp.StatusCode
		return r, resp.Header, err
	case mediaTypeIs(ct, "application/json"):
		b, err := readMessage(resp.Body, resp.ContentLength)
		if err != nil {
			return Response{}, resp.Header, err
		}
		r, err := jsonResponse(b, want)
		r.HTTPStatus = resp.StatusCode
		return r, resp.Header, err
	default:
		drain(resp.Body)
		return Response{}, resp.Header, fmt.Errorf("unexpected content type %q in the answer", ct)
	}
}

// badStatus handles a non-200 answer to a request.
func (c *MCPClient) badStatus(s *httpSession, resp *http.Response) (Response, error) {
	switch code := resp.StatusCode; {
	case code == http.StatusNotFound && s != nil && s.id != "":
		drain(resp.Body)
		return Response{}, errSessionLost
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		drain(resp.Body)
		return Response{}, newStatusError(code, nil)
	case code >= 200 && code < 300:
		drain(resp.Body)
		return Response{}, fmt.Errorf("HTTP %d without a response", code)
	default:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyBytes))
		drain(resp.Body)
		if e := rpcErrorBody(b); e != nil {
			return Response{Error: e}, nil
		}
		return Response{}, newStatusError(code, b)
	}
}

// rpcErrorBody returns the JSON-RPC error b carries, if it is one.
func rpcErrorBody(b []byte) *RPCError {
	var m struct {
		Error *RPCError `json:"error"`
	}
	if json.Unmarshal(b, &m) != nil || m.Error == nil || (m.Error.Code == 0 && m.Error.Message == "") {
		return nil
	}
	return m.Error
}

// post sends one notification or answer; the upstream accepts it with 202
// (any 2xx does).
func (c *MCPClient) post(ctx context.Context, s *httpSession, body []byte) error {
	req, err := c.newHTTPRequest(ctx, http.MethodPost, s, body, acceptBoth)
	if err != nil {
		return err
	}
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		drain(resp.Body)
		return nil
	case code == http.StatusNotFound && s != nil && s.id != "":
		drain(resp.Body)
		return errSessionLost
	default:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyBytes))
		drain(resp.Body)
		return newStatusError(code, b)
	}
}

// deleteSession ends s at the upstream: DELETE with the static headers,
// best effort, within 2 s.
func (c *MCPClient) deleteSession(s *httpSession) {
	if s.id == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := c.newHTTPRequest(ctx, http.MethodDelete, s, nil, acceptBoth)
	if err != nil {
		return
	}
	resp, err := c.send(req)
	if err != nil {
		c.logger.Debug("ending the upstream session failed", "err", err)
		return
	}
	drain(resp.Body)
	_ = resp.Body.Close()
}

// wireMessage is any JSON-RPC message: a request (method and id), a
// notification (method) or a response (id, and result or error).
type wireMessage struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  *RPCError       `json:"error"`
}

func (m *wireMessage) hasID() bool { return len(m.ID) > 0 && string(m.ID) != "null" }

// answers reports whether m is the response to request want (a response
// with a null id is an error about the request the stream belongs to).
func (m *wireMessage) answers(want []byte) bool {
	if m.Method != "" {
		return false
	}
	return bytes.Equal(bytes.TrimSpace(m.ID), want) || (!m.hasID() && m.Error != nil)
}

func (m *wireMessage) response() (Response, error) {
	if m.Error != nil {
		return Response{Error: m.Error}, nil
	}
	if len(m.Result) == 0 {
		return Response{}, errors.New("a response with neither result nor error")
	}
	return Response{Result: m.Result}, nil
}

// jsonResponse decodes a JSON answer to request want.
func jsonResponse(b []byte, want []byte) (Response, error) {
	if r, ok := plainResult(b, want); ok {
		return r, nil
	}
	var m wireMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return Response{}, fmt.Errorf("the answer is not JSON-RPC: %w", err)
	}
	if !m.answers(want) {
		return Response{}, fmt.Errorf("the answer is not the response to request %s", want)
	}
	return m.response()
}

// wireKeys are the members of a JSON-RPC message wireMessage reads.
var wireKeys = []string{"jsonrpc", "id", "method", "params", "result", "error"}

// plainResult is jsonResponse's fast path, for the common answer: a valid
// JSON object with the result of request want, every member named exactly
// once and in its exact case. The result is kept as the bytes it came in
// (no copy, no second decoding). Anything else (ok false) is left to
// encoding/json.
func plainResult(b []byte, want []byte) (Response, bool) {
	var buf [8]jsonscan.Member
	members, ok := jsonscan.Plain(b, buf[:0], wireKeys)
	if !ok {
		return Response{}, false
	}
	var id, result []byte
	for _, m := range members {
		switch m.Key {
		case "id":
			id = m.Value
		case "result":
			result = m.Value
		case "method", "error":
			return Response{}, false
		}
	}
	if len(result) == 0 || string(result) == "null" || !bytes.Equal(id, want) {
		return Response{}, false
	}
	return Response{Result: result}, true
}

// readCallStream reads a call's response stream (sr over body) until the
// response to want, handling what comes before it with the call's ctx;
// found reports that the response came. A stream the upstream ends before
// the response, after giving an event id, is resumed (GET with rctx, the
// context of the call's HTTP requests): sr then reads the resumed stream and
// the body read before is closed. It returns the body sr reads last, for the
// caller to finish and close.
func (c *MCPClient) readCallStream(ctx, rctx context.Context, s *httpSession, sr *sseReader, body io.ReadCloser, want []byte) (r Response, found bool, last io.ReadCloser, err error) {
	for resumes := 0; ; resumes++ {
		for {
			_, data, err := sr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return Response{}, false, body, fmt.Errorf("the response stream broke off: %w", err)
			}
			if r, ok, err := c.onCallMessage(ctx, s, data, want); ok {
				return r, true, body, err
			}
		}
		if sr.LastEventID == "" || resumes >= maxResumes || ctx.Err() != nil {
			return Response{}, false, body, errors.New("the response stream ended without the response")
		}
		next, err := c.resume(rctx, s, sr)
		if err != nil {
			return Response{}, false, body, fmt.Errorf("resuming the response stream: %w", err)
		}
		_ = body.Close()
		body = next
		sr.reset(next)
	}
}

// resume waits the reconnection time the upstream asked for, then reopens
// the stream after its last event (GET with Last-Event-ID).
func (c *MCPClient) resume(ctx context.Context, s *httpSession, sr *sseReader) (io.ReadCloser, error) {
	wait := time.Second
	if sr.HasRetry {
		wait = max(sr.Retry, 10*time.Millisecond)
	}
	t := time.NewTimer(wait)
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		return nil, ctx.Err()
	}
	req, err := c.newHTTPRequest(ctx, http.MethodGet, s, nil, acceptStream)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Last-Event-ID", sr.LastEventID)
	resp, err := c.send(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || !mediaTypeIs(resp.Header.Get("Content-Type"), "text/event-stream") {
		drain(resp.Body)
		_ = resp.Body.Close()
		// Not errSessionLost even for 404: the request was received, so
		// it must not be sent again.
		return nil, newStatusError(resp.StatusCode, nil)
	}
	return resp.Body, nil
}

// onCallMessage handles one event of a call's stream; ok reports that it
// carried the response to want (or a batch holding it).
func (c *MCPClient) onCallMessage(ctx context.Context, s *httpSession, data []byte, want []byte) (r Response, ok bool, err error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return Response{}, false, nil // e.g. an event that only primes an id
	}
	if data[0] == '[' {
		var batch []json.RawMessage
		if json.Unmarshal(data, &batch) != nil {
			c.logger.Debug("ignored an event that is not JSON-RPC", "bytes", len(data))
			return Response{}, false, nil
		}
		for _, one := range batch {
			if r1, ok1, err1 := c.onCallMessage(ctx, s, one, want); ok1 {
				r, ok, err = r1, true, err1
			}
		}
		return r, ok, err
	}
	if r, ok := plainResult(data, want); ok {
		// data is the stream reader's buffer, which it reuses.
		r.Result = bytes.Clone(r.Result)
		return r, true, nil
	}
	var m wireMessage
	if err := json.Unmarshal(data, &m); err != nil {
		c.logger.Debug("ignored an event that is not JSON-RPC", "bytes", len(data), "err", err)
		return Response{}, false, nil
	}
	switch {
	case m.Method != "" && m.hasID():
		go c.answerServerRequest(ctx, s, m)
	case m.Method != "":
		c.callNotification(ctx, m.Method, m.Params)
	case m.answers(want):
		r, err := m.response()
		return r, true, err
	default:
		c.logger.Debug("ignored a response to another request on a call's stream", "id", string(m.ID))
	}
	return Response{}, false, nil
}

// callNotification delivers a notification sent on a call's own stream: to
// the call's sink if it has one, else to the global handler. List changes
// always reach the global handler too (catalogs are invalidated there).
func (c *MCPClient) callNotification(ctx context.Context, method string, params json.RawMessage) {
	sink := callNotificationsFrom(ctx)
	if sink == nil {
		c.notify.deliver(method, params)
		return
	}
	if strings.HasSuffix(method, "/list_changed") {
		c.notify.deliver(method, params)
	}
	sink(method, params)
}

// answerServerRequest answers a request the upstream sent on a call's
// stream through the call's relay, and POSTs the answer back with the
// call's session and identity headers.
func (c *MCPClient) answerServerRequest(ctx context.Context, s *httpSession, m wireMessage) {
	result, rpcErr := relayServerRequest(ctx, m.Method, m.Params)
	body, err := encodeAnswer(m.ID, result, rpcErr)
	if err != nil {
		c.logger.Warn("could not encode the answer to an upstream request", "method", m.Method, "err", err)
		body, _ = encodeAnswer(m.ID, nil, &RPCError{Code: mcpgo.INTERNAL_ERROR, Message: "the answer to " + m.Method + " is not valid JSON"})
	}
	bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), answerTimeout)
	defer cancel()
	if err := c.post(bg, s, body); err != nil {
		c.logger.Warn("the answer to an upstream request was not delivered", "method", m.Method, "err", err)
	}
}

// encodeAnswer builds the JSON-RPC response to request id.
func encodeAnswer(id json.RawMessage, result json.RawMessage, rpcErr *RPCError) ([]byte, error) {
	if rpcErr != nil {
		return json.Marshal(struct {
			JSONRPC string          `json:"jsonrpc"`
			ID      json.RawMessage `json:"id"`
			Error   *RPCError       `json:"error"`
		}{"2.0", id, rpcErr})
	}
	return json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Result  json.RawMessage `json:"result"`
	}{"2.0", id, result})
}

// finishStream reads what is left of a call's stream after its response —
// normally only the end of the chunked body — so that the connection goes
// back to the pool, then closes body, ends the request (cancel) and
// recycles sr. It waits briefly for that, so a next call finds the
// connection idle; a stream that goes on is read in the background for at
// most drainBytes and drainWait, then its connection is closed.
func (c *MCPClient) finishStream(sr *sseReader, body io.Closer, cancel context.CancelFunc) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer c.readers.put(sr)
		t := time.AfterFunc(drainWait, cancel)
		defer t.Stop()
		if _, err := io.CopyN(io.Discard, sr.br, drainBytes); err == nil {
			c.logger.Debug("a response stream went on after its response; its connection is closed")
			cancel()
		}
		_ = body.Close()
		cancel()
	}()
	t := time.NewTimer(drainSyncWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// drain reads the rest of a body, bounded, so its connection can be reused.
func drain(body io.Reader) {
	_, _ = io.CopyN(io.Discard, body, drainBytes)
}

// readMessage reads one JSON message body of at most maxMessageBytes.
func readMessage(body io.Reader, length int64) ([]byte, error) {
	if length > maxMessageBytes {
		return nil, fmt.Errorf("the answer has %d bytes, more than %d MiB", length, maxMessageBytes>>20)
	}
	size := 512
	if length > 0 {
		size = int(length) + 1 // +1: the read that sees EOF
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	n, err := buf.ReadFrom(io.LimitReader(body, maxMessageBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	if n > maxMessageBytes {
		return nil, fmt.Errorf("the answer is larger than %d MiB", maxMessageBytes>>20)
	}
	return buf.Bytes(), nil
}

// mediaTypeIs reports whether a Content-Type header names the media type
// want (parameters and case aside).
func mediaTypeIs(ct, want string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), want)
}

// encodeRequest builds a JSON-RPC request; params (raw JSON) may be empty.
func encodeRequest(id int64, method string, params json.RawMessage) []byte {
	b := make([]byte, 0, 48+len(method)+len(params))
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, method)
	if len(params) > 0 {
		b = append(b, `,"params":`...)
		b = append(b, params...)
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if ch := s[i]; ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// listenLoop keeps one listening stream (GET) open on the live session, for
// the notifications not tied to a request. It follows the session: when a
// new one starts, the stream moves to it. 405 stops it quietly; so does a
// 404 on a session the stream never opened on (the upstream has no such
// stream). A 404 on a session it did open on means the upstream forgot the
// session: the session is dropped and the stream waits for the next one.
// Other failures are retried with backoff (1 s doubling to 30 s), logged at
// debug level.
func (c *MCPClient) listenLoop() {
	defer c.bg.Done()
	backoff := c.backoffMin
	var openedOn, gone *httpSession
	for {
		c.mu.Lock()
		s, changed := c.sess, c.changed
		c.mu.Unlock()
		if s == nil || s == gone {
			select {
			case <-changed:
				continue
			case <-c.life.Done():
				return
			}
		}
		opened, retry, err := c.listenOn(s)
		if c.life.Err() != nil {
			return
		}
		if opened {
			openedOn, backoff = s, c.backoffMin
		}
		switch {
		case errors.Is(err, errNoListening):
			c.logger.Debug("the upstream offers no listening stream")
			return
		case errors.Is(err, errSessionLost):
			if openedOn != s && c.isLive(s) {
				c.logger.Debug("the upstream answered the listening stream with 404: it offers none")
				return
			}
			c.logger.Debug("the upstream forgot the session; listening again on the next one")
			c.forget(s, false)
			gone = s
			continue
		case s.ctx.Err() != nil:
			continue // the session ended or changed: follow it
		}
		wait := backoff
		if opened {
			wait = max(retry, c.backoffMin)
		} else {
			backoff = min(backoff*2, c.backoffMax)
		}
		if err != nil {
			c.logger.Debug("listening stream failed; retrying", "err", err, "in", wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
		case <-c.life.Done():
			t.Stop()
			return
		}
	}
}

// isLive reports whether s is the live session.
func (c *MCPClient) isLive(s *httpSession) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess == s
}

// listenOn reads one listening stream on s until it ends. opened reports
// that the upstream accepted the stream; retry is the reconnection time it
// asked for (0: none).
func (c *MCPClient) listenOn(s *httpSession) (opened bool, retry time.Duration, err error) {
	req, err := c.newHTTPRequest(s.ctx, http.MethodGet, s, nil, acceptStream)
	if err != nil {
		return false, 0, err
	}
	resp, err := c.send(req)
	if err != nil {
		return false, 0, err
	}
	defer resp.Body.Close()
	switch code := resp.StatusCode; {
	case code == http.StatusMethodNotAllowed:
		drain(resp.Body)
		return false, 0, errNoListening
	case code == http.StatusNotFound && s.id == "":
		drain(resp.Body)
		return false, 0, errNoListening
	case code == http.StatusNotFound:
		drain(resp.Body)
		return false, 0, errSessionLost
	case code != http.StatusOK:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyBytes))
		return false, 0, newStatusError(code, b)
	}
	if ct := resp.Header.Get("Content-Type"); !mediaTypeIs(ct, "text/event-stream") {
		return false, 0, fmt.Errorf("unexpected content type %q on the listening stream", ct)
	}
	sr := newSSEReader(resp.Body)
	for {
		_, data, err := sr.Next()
		if err != nil {
			if sr.HasRetry {
				retry = sr.Retry
			}
			if err == io.EOF {
				return true, retry, nil
			}
			return true, retry, err
		}
		c.onListenMessage(s, data)
	}
}

// onListenMessage handles one event of the listening stream: notifications
// go to the global handler; requests cannot be attributed to a call and are
// answered "method not found".
func (c *MCPClient) onListenMessage(s *httpSession, data []byte) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return
	}
	if data[0] == '[' {
		var batch []json.RawMessage
		if json.Unmarshal(data, &batch) == nil {
			for _, one := range batch {
				c.onListenMessage(s, one)
			}
		}
		return
	}
	var m wireMessage
	if err := json.Unmarshal(data, &m); err != nil {
		c.logger.Debug("ignored an event that is not JSON-RPC on the listening stream", "bytes", len(data))
		return
	}
	switch {
	case m.Method != "" && m.hasID():
		go c.answerServerRequest(s.ctx, s, m)
	case m.Method != "":
		c.notify.deliver(m.Method, m.Params)
	}
}
