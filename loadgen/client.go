package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
)

// newTransport returns the one HTTP transport of a run: HTTP/1.1 with
// keep-alive, an idle connection kept for every session, no compression and
// no proxy from the environment.
func newTransport(concurrency int, timeout time.Duration) *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          2*concurrency + 8,
		MaxIdleConnsPerHost:   2*concurrency + 8,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: timeout,
		TLSHandshakeTimeout:   10 * time.Second,
		DisableCompression:    true,
	}
}

// worker is one session: its prebuilt requests, its reused buffers and its
// counters. Only its own goroutine touches it while the run is going.
type worker struct {
	era   Era
	rt    http.RoundTripper
	url   string
	token string
	tool  string
	args  json.RawMessage

	// The tools/call request: body and headers built once; the JSON-RPC id
	// (callID) is fixed per worker, distinct between workers.
	body   []byte
	tmpl   *http.Request
	callID []byte

	sessionID string
	proto     string
	ready     bool
	setup     time.Duration
	setupErr  string

	buf    []byte // the response body, reused
	joined []byte // a multi-line SSE event's data, reused
	lat    []time.Duration

	calls, errors, warmCalls, warmErrors, jsonN, sseN int64
}

// initID is the JSON-RPC id of initialize; calls use index+2.
const initID = "1"

// clientName is the client's name in initialize and in the stateless era's
// _meta clientInfo.
const clientName = "gatewaystack-bench"

// newWorker prepares worker i of a run. The latency slice is sized for
// the calls expected, within bounds, so that recording rarely grows it.
func newWorker(ctx context.Context, o Options, rt http.RoundTripper, i int) (*worker, error) {
	w := &worker{
		era:    o.Era,
		rt:     rt,
		url:    o.URL,
		token:  o.Token,
		tool:   o.Tool,
		args:   o.Args,
		callID: strconv.AppendInt(nil, int64(i)+2, 10),
		buf:    make([]byte, 0, 16<<10),
		ready:  o.Era == EraStateless,
		proto:  SessionProtocolVersion,
	}
	// At most 64 Ki latencies per worker and 4 Mi (32 MiB) in all are
	// preallocated; beyond, the slice grows.
	c := int64(o.Concurrency)
	expect := int64(1024)
	if o.MaxCalls > 0 {
		expect = o.MaxCalls/c + 1
	}
	expect = min(expect, 1<<16, (4<<20)/c+1)
	w.lat = make([]time.Duration, 0, expect)
	if o.Era == EraStateless {
		w.proto = StatelessProtocolVersion
		if err := w.prepareCall(ctx); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// baseHeader returns the headers every request of the worker carries.
func (w *worker) baseHeader() http.Header {
	h := http.Header{
		"Content-Type": {"application/json"},
		"Accept":       {"application/json, text/event-stream"},
	}
	if w.token != "" {
		h.Set("Authorization", "Bearer "+w.token)
	}
	if w.sessionID != "" {
		h.Set(mcpgo.HeaderSessionID, w.sessionID)
	}
	return h
}

// prepareCall builds the tools/call body, headers and request template;
// every call runs under ctx.
func (w *worker) prepareCall(ctx context.Context) error {
	params := map[string]any{"name": w.tool, "arguments": w.args}
	h := w.baseHeader()
	h.Set(mcpgo.HeaderProtocolVersion, w.proto)
	if w.era == EraStateless {
		params["_meta"] = map[string]any{
			mcpgo.MetaKeyProtocolVersion:    StatelessProtocolVersion,
			mcpgo.MetaKeyClientInfo:         map[string]string{"name": clientName, "version": "1"},
			mcpgo.MetaKeyClientCapabilities: map[string]any{},
		}
		h.Set(mcpgo.HeaderMethod, "tools/call")
		name, ok := mcpgo.EncodeHeaderValue(w.tool)
		if !ok {
			return fmt.Errorf("tool name %q cannot be sent in the %s header", w.tool, mcpgo.HeaderName)
		}
		h.Set(mcpgo.HeaderName, name)
	}
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": json.RawMessage(w.callID), "method": "tools/call", "params": params})
	if err != nil {
		return fmt.Errorf("encode tools/call: %w", err)
	}
	tmpl, err := newTemplate(ctx, w.url, h, body)
	if err != nil {
		return err
	}
	w.body, w.tmpl = body, tmpl
	return nil
}

// newTemplate returns a POST request to be copied for every send of body.
func newTemplate(ctx context.Context, url string, h http.Header, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header = h
	return req, nil
}

// open runs the session-era handshake (initialize, then
// notifications/initialized, bounded by timeout) and prepares the calls of
// the session, which run under ctx.
func (w *worker) open(ctx context.Context, timeout time.Duration) {
	setupCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	if err := w.handshake(setupCtx); err != nil {
		w.setupErr = err.Error()
		return
	}
	w.setup = time.Since(start)
	if err := w.prepareCall(ctx); err != nil {
		w.setupErr = err.Error()
		return
	}
	w.ready = true
}

// handshake sends initialize and notifications/initialized.
func (w *worker) handshake(ctx context.Context) error {
	body := []byte(`{"jsonrpc":"2.0","id":` + initID + `,"method":"initialize","params":{"protocolVersion":"` + SessionProtocolVersion +
		`","capabilities":{},"clientInfo":{"name":"` + clientName + `","version":"1"}}}`)
	tmpl, err := newTemplate(ctx, w.url, w.baseHeader(), body)
	if err != nil {
		return err
	}
	status, header, sse, err := w.roundTrip(tmpl, body)
	if err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	if f := w.classify(status, sse, []byte(initID)); f.kind != okCall {
		return fmt.Errorf("initialize: %s", w.describe(f))
	}
	msg, _ := w.findResponse(sse, []byte(initID))
	s, _ := summarize(msg)
	var init struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	if err := json.Unmarshal(s.result, &init); err != nil {
		return fmt.Errorf("initialize: result: %w", err)
	}
	if init.ProtocolVersion != "" {
		w.proto = init.ProtocolVersion
	}
	w.sessionID = header.Get(mcpgo.HeaderSessionID)

	h := w.baseHeader()
	h.Set(mcpgo.HeaderProtocolVersion, w.proto)
	body = []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	if tmpl, err = newTemplate(ctx, w.url, h, body); err != nil {
		return err
	}
	status, _, _, err = w.roundTrip(tmpl, body)
	switch {
	case err != nil:
		return fmt.Errorf("notifications/initialized: %w", err)
	case status/100 != 2:
		return fmt.Errorf("notifications/initialized: HTTP %d: %s", status, snippet(w.buf))
	}
	return nil
}

// closeSessions ends the workers' sessions with DELETE, at most a couple of
// seconds, not measured; failures are ignored (the server may not allow it).
func closeSessions(ctx context.Context, workers []*worker) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, w := range workers {
		if w.sessionID == "" {
			continue
		}
		wg.Go(func() {
			req, err := http.NewRequestWithContext(ctx, http.MethodDelete, w.url, nil)
			if err != nil {
				return
			}
			req.Header = w.baseHeader()
			req.Header.Set(mcpgo.HeaderProtocolVersion, w.proto)
			if resp, err := w.rt.RoundTrip(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
		})
	}
	wg.Wait()
}

// loop calls the tool until the window ends, MaxCalls measured calls have
// started, or ctx ends.
func (w *worker) loop(ctx context.Context, rs *runState) {
	for ctx.Err() == nil {
		start := time.Now()
		if !start.Before(rs.end) {
			return
		}
		measured := !start.Before(rs.measureFrom)
		if measured && rs.maxCalls > 0 && rs.tickets.Add(1) > rs.maxCalls {
			rs.maxReached.Store(true)
			return
		}
		f := w.call()
		elapsed := time.Since(start)
		if ctx.Err() != nil {
			return // interrupted: the call's outcome is not the server's
		}
		switch {
		case !measured && f.kind == okCall:
			w.warmCalls++
		case !measured:
			w.warmErrors++
		case f.kind == okCall:
			w.calls++
			w.lat = append(w.lat, elapsed)
			if f.sse {
				w.sseN++
			} else {
				w.jsonN++
			}
		default:
			w.errors++
			rs.fail(func() string { return w.describe(f) })
		}
	}
}

// call sends the tools/call once and classifies the answer.
func (w *worker) call() failure {
	status, _, sse, err := w.roundTrip(w.tmpl, w.body)
	if err != nil {
		return failure{kind: failTransport, err: err}
	}
	return w.classify(status, sse, w.callID)
}

// sendReq is one send of a template: the request copy and its body reader,
// allocated together.
type sendReq struct {
	req  http.Request
	body bodyReader
}

// bodyReader is a request body over prebuilt bytes.
type bodyReader struct{ bytes.Reader }

// Close implements io.Closer.
func (*bodyReader) Close() error { return nil }

// roundTrip sends a copy of tmpl with a fresh reader over body (tmpl's
// body bytes) and reads the whole answer into w.buf. A fresh copy per send
// keeps a transport still holding the previous one from racing with it;
// the headers and the body bytes are shared, read-only.
func (w *worker) roundTrip(tmpl *http.Request, body []byte) (status int, header http.Header, sse bool, err error) {
	s := &sendReq{req: *tmpl}
	s.body.Reset(body)
	s.req.Body = &s.body
	resp, err := w.rt.RoundTrip(&s.req)
	if err != nil {
		return 0, nil, false, err
	}
	sse = strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	err = w.readBody(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return resp.StatusCode, resp.Header, sse, fmt.Errorf("read response: %w", err)
	}
	return resp.StatusCode, resp.Header, sse, nil
}

// readBody reads r to its end into w.buf, keeping at most MaxResponseBytes;
// the rest is read and dropped, and reported as an error.
func (w *worker) readBody(r io.Reader) error {
	w.buf = w.buf[:0]
	for {
		if len(w.buf) == cap(w.buf) {
			if cap(w.buf) >= MaxResponseBytes {
				n, err := io.Copy(io.Discard, r)
				if err != nil {
					return err
				}
				return fmt.Errorf("response body of %d bytes is over the %d MiB kept", int64(len(w.buf))+n, MaxResponseBytes>>20)
			}
			w.buf = slices.Grow(w.buf, min(max(cap(w.buf), 4<<10), MaxResponseBytes-len(w.buf)))
		}
		n, err := r.Read(w.buf[len(w.buf):cap(w.buf)])
		w.buf = w.buf[:len(w.buf)+n]
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
