package upstream

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
)

// Notification is a JSON-RPC notification an upstream sent (list changes,
// progress, log messages, resource updates).
type Notification struct {
	// Upstream is the sender's name.
	Upstream string
	// Method is the notification method, e.g. notifications/tools/list_changed.
	Method string
	// Params is the raw params object (may be empty).
	Params json.RawMessage
}

// Notifier is implemented by callers that deliver the notifications their
// upstream sends, during calls (on the response stream) or at any time (on
// the listening stream).
type Notifier interface {
	SetNotificationHandler(h func(method string, params json.RawMessage))
}

// handlerSlot holds a notification handler that may be set after the
// connection exists.
type handlerSlot struct {
	h atomic.Pointer[func(method string, params json.RawMessage)]
}

func (s *handlerSlot) set(h func(method string, params json.RawMessage)) { s.h.Store(&h) }

func (s *handlerSlot) deliver(method string, params json.RawMessage) {
	if h := s.h.Load(); h != nil {
		(*h)(method, params)
	}
}

// OnNotification routes every upstream's notifications to h, after the
// router has handled list changes itself: a notifications/*/list_changed
// makes the next lookup list that upstream again.
func (r *Router) OnNotification(h func(Notification)) {
	for _, u := range r.ups {
		n, ok := u.Caller.(Notifier)
		if !ok {
			continue
		}
		name := u.Name()
		n.SetNotificationHandler(func(method string, params json.RawMessage) {
			if strings.HasSuffix(method, "/list_changed") {
				r.invalidate(name, method)
			}
			if h != nil {
				h(Notification{Upstream: name, Method: method, Params: params})
			}
		})
	}
}

// invalidate forgets when an upstream (or a kind) was last listed, so the
// next lookup of a name it does not know lists it again at once.
func (r *Router) invalidate(upstream, method string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.relists, relistKey(toolsList, upstream))
	switch method {
	case "notifications/prompts/list_changed":
		delete(r.relists, relistKey(Prompts.Method, upstream))
	case "notifications/resources/list_changed":
		delete(r.relists, relistKey(Resources.Method, upstream))
		delete(r.relists, relistKey(ResourceTemplates.Method, upstream))
	}
}

// ServerRequestFunc answers a request an upstream sent to its client
// (sampling, elicitation, roots) by asking the gateway's caller: it returns
// the result, or a JSON-RPC error to pass back, or a Go error.
type ServerRequestFunc func(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, *RPCError, error)

type serverRequestsKey struct{}

// WithServerRequests returns ctx whose upstream calls relay the upstream's
// own requests to f.
func WithServerRequests(ctx context.Context, f ServerRequestFunc) context.Context {
	return context.WithValue(ctx, serverRequestsKey{}, f)
}

// ServerRequestsFrom returns the relay put in ctx by WithServerRequests.
func ServerRequestsFrom(ctx context.Context) ServerRequestFunc {
	f, _ := ctx.Value(serverRequestsKey{}).(ServerRequestFunc)
	return f
}

// callSink receives the notifications an upstream sends on one call's own
// response stream.
type callSink func(method string, params json.RawMessage)

type callNotificationsKey struct{}

// WithCallNotifications returns ctx whose upstream calls hand the
// notifications the upstream sends on the call's own response stream
// (progress, log messages, …) to f instead of the global handler: they
// belong to this call. List changes reach the global handler as well (the
// router invalidates its catalog there). f runs on the goroutine reading the
// stream, before the call returns; it should not block for long.
// Notifications on the listening stream always go to the global handler.
func WithCallNotifications(ctx context.Context, f func(method string, params json.RawMessage)) context.Context {
	return context.WithValue(ctx, callNotificationsKey{}, callSink(f))
}

// callNotificationsFrom returns the sink put in ctx by WithCallNotifications.
func callNotificationsFrom(ctx context.Context) callSink {
	f, _ := ctx.Value(callNotificationsKey{}).(callSink)
	return f
}
