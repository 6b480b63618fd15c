package mcp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/gatewaystack/gatewaystack/upstream"
)

// Requests from an upstream to a client (sampling/createMessage,
// elicitation/create, roots/list) arrive while the upstream works on a
// client's call. The gateway relays each one to the client that made that
// call, on the call's own response stream, under a gateway id, and passes the
// client's answer back to the upstream. A client that did not declare the
// capability at initialize gets nothing: the upstream gets an error. In the
// stateless 2026-07-28 era such requests became multi-round-trip results,
// which this gateway does not bridge to session-era upstreams yet, so the
// upstream gets a clear error there too.

// clientAnswers holds the relayed requests waiting for a client's answer.
type clientAnswers struct {
	mu      sync.Mutex
	waiting map[string]chan json.RawMessage // owner + id -> answer
}

func (c *clientAnswers) expect(owner, id string) chan json.RawMessage {
	ch := make(chan json.RawMessage, 1)
	c.mu.Lock()
	if c.waiting == nil {
		c.waiting = map[string]chan json.RawMessage{}
	}
	c.waiting[owner+"\x00"+id] = ch
	c.mu.Unlock()
	return ch
}

func (c *clientAnswers) forget(owner, id string) {
	c.mu.Lock()
	delete(c.waiting, owner+"\x00"+id)
	c.mu.Unlock()
}

// deliver hands a client's JSON-RPC response to the relayed request it
// answers, if that request came from this owner; it reports whether it did.
func (c *clientAnswers) deliver(owner string, rawID json.RawMessage, body []byte) bool {
	var id string
	if json.Unmarshal(rawID, &id) != nil {
		return false
	}
	key := owner + "\x00" + id
	c.mu.Lock()
	ch, ok := c.waiting[key]
	delete(c.waiting, key)
	c.mu.Unlock()
	if ok {
		ch <- bytes.Clone(body)
	}
	return ok
}

// relayer returns the function an upstream call uses to ask this call's
// client something; send writes to the call's outgoing message stream.
func (g *Gateway) relayer(st *requestState, send func([]byte)) upstream.ServerRequestFunc {
	return func(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, *upstream.RPCError, error) {
		if st.modern {
			return nil, &upstream.RPCError{Code: -32601, Message: method +
				" cannot be relayed to a client on protocol 2026-07-28 through this gateway yet"}, nil
		}
		need, known := capsForMethod(method)
		if !known || st.caps&need == 0 {
			return nil, &upstream.RPCError{Code: -32601, Message: "the client did not declare support for " + method}, nil
		}
		var b [12]byte
		_, _ = rand.Read(b[:])
		id := "gs-" + hex.EncodeToString(b[:])
		answer := g.clientAnswers.expect(st.owner, id)
		defer g.clientAnswers.forget(st.owner, id)
		msg, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
		if err != nil {
			return nil, nil, fmt.Errorf("encode %s for the client: %w", method, err)
		}
		send(msg)
		g.o.Logger.Debug().Str("request_id", st.event.RequestID).Str("method", method).Msg("relayed a request to the client")
		select {
		case body := <-answer:
			var resp struct {
				Result json.RawMessage    `json:"result"`
				Error  *upstream.RPCError `json:"error"`
			}
			if err := json.Unmarshal(body, &resp); err != nil {
				return nil, nil, fmt.Errorf("the client's answer to %s is not JSON-RPC: %w", method, err)
			}
			if resp.Error != nil {
				return nil, resp.Error, nil
			}
			if len(resp.Result) == 0 {
				return nil, nil, errors.New("the client's answer has neither result nor error")
			}
			return resp.Result, nil, nil
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
}
