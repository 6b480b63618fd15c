package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// Separator joins an upstream's name and a tool name: notes__read_note.
const Separator = "__"

// maxListPages bounds how many tools/list pages are read from one upstream.
const maxListPages = 50

// ErrUnknownTool: no upstream offers the tool.
var ErrUnknownTool = errors.New("upstream: unknown tool")

// Caller is what the router needs of an upstream connection.
type Caller interface {
	Name() string
	Call(ctx context.Context, method string, params json.RawMessage) (Response, error)
	Close() error
}

var _ Caller = (*MCPClient)(nil)

// Upstream is one configured upstream and how its names are exposed.
type Upstream struct {
	Caller
	// Prefixed: tool names are exposed as <name>__<tool>.
	Prefixed bool
}

// Tool is one tool of the combined catalog.
type Tool struct {
	// Name is what the client sees.
	Name string
	// Original is the upstream's own name.
	Original string
	// Upstream is the upstream's name.
	Upstream string
	// Definition is the upstream's tool object with "name" rewritten.
	Definition json.RawMessage
}

// ListError is the failure of one upstream while listing; the others still
// contribute.
type ListError struct {
	Upstream string
	Err      error
}

// Router resolves exposed tool names to upstreams and builds the catalog.
type Router struct {
	ups    []Upstream
	byName map[string]Upstream

	mu         sync.RWMutex
	unprefixed map[string]string // exposed name -> upstream, for unprefixed upstreams
}

// NewRouter returns a router over ups (in configuration order).
func NewRouter(ups []Upstream) *Router {
	r := &Router{ups: ups, byName: make(map[string]Upstream, len(ups)), unprefixed: map[string]string{}}
	for _, u := range ups {
		r.byName[u.Name()] = u
	}
	return r
}

// Names returns the upstreams' names in configuration order.
func (r *Router) Names() []string {
	out := make([]string, len(r.ups))
	for i, u := range r.ups {
		out[i] = u.Name()
	}
	return out
}

// Close closes every upstream connection.
func (r *Router) Close() error {
	var errs []error
	for _, u := range r.ups {
		errs = append(errs, u.Close())
	}
	return errors.Join(errs...)
}

// ListTools asks every upstream for its tools (concurrently, all pages) and
// returns them with exposed names, in upstream then upstream order. An
// upstream that fails is reported in the errors and left out.
func (r *Router) ListTools(ctx context.Context) ([]Tool, []ListError) {
	results := make([][]Tool, len(r.ups))
	errs := make([]error, len(r.ups))
	var wg sync.WaitGroup
	for i, u := range r.ups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = r.listOne(ctx, u)
		}()
	}
	wg.Wait()
	var tools []Tool
	var lerrs []ListError
	for i, u := range r.ups {
		if errs[i] != nil {
			lerrs = append(lerrs, ListError{Upstream: u.Name(), Err: errs[i]})
			continue
		}
		tools = append(tools, results[i]...)
		if !u.Prefixed {
			r.mu.Lock()
			for _, t := range results[i] {
				r.unprefixed[t.Name] = u.Name()
			}
			r.mu.Unlock()
		}
	}
	return tools, lerrs
}

func (r *Router) listOne(ctx context.Context, u Upstream) ([]Tool, error) {
	var tools []Tool
	var cursor string
	for page := 0; page < maxListPages; page++ {
		var params json.RawMessage
		if cursor != "" {
			b, err := json.Marshal(map[string]string{"cursor": cursor})
			if err != nil {
				return nil, fmt.Errorf("encode cursor: %w", err)
			}
			params = b
		}
		resp, err := u.Call(ctx, "tools/list", params)
		if err != nil {
			return nil, err
		}
		if resp.Error != nil {
			return nil, fmt.Errorf("upstream %s refused tools/list: %s: %w", u.Name(), resp.Error.Message, ErrUnavailable)
		}
		var res struct {
			Tools      []json.RawMessage `json:"tools"`
			NextCursor string            `json:"nextCursor"`
		}
		if err := json.Unmarshal(resp.Result, &res); err != nil {
			return nil, fmt.Errorf("upstream %s sent a malformed tools/list result: %w: %w", u.Name(), ErrUnavailable, err)
		}
		for _, raw := range res.Tools {
			t, err := exposeTool(u, raw)
			if err != nil {
				return nil, fmt.Errorf("upstream %s: %w: %w", u.Name(), ErrUnavailable, err)
			}
			tools = append(tools, t)
		}
		if res.NextCursor == "" {
			return tools, nil
		}
		cursor = res.NextCursor
	}
	return tools, nil
}

// exposeTool rewrites the tool object's name; every other field stays as the
// upstream sent it.
func exposeTool(u Upstream, raw json.RawMessage) (Tool, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return Tool{}, fmt.Errorf("tool definition is not an object: %w", err)
	}
	var name string
	if err := json.Unmarshal(obj["name"], &name); err != nil || name == "" {
		return Tool{}, fmt.Errorf("tool definition without a name")
	}
	exposed := name
	if u.Prefixed {
		exposed = u.Name() + Separator + name
	}
	def := raw
	if exposed != name {
		n, err := json.Marshal(exposed)
		if err != nil {
			return Tool{}, fmt.Errorf("encode tool name: %w", err)
		}
		obj["name"] = n
		if def, err = json.Marshal(obj); err != nil {
			return Tool{}, fmt.Errorf("encode tool definition: %w", err)
		}
	}
	return Tool{Name: exposed, Original: name, Upstream: u.Name(), Definition: def}, nil
}

// Resolve maps an exposed tool name to its upstream and original name.
// Prefixed upstreams are resolved by name; tools of unprefixed upstreams are
// found in the last catalog, refreshed once when missing.
func (r *Router) Resolve(ctx context.Context, exposed string) (Upstream, string, error) {
	if name, tool, ok := strings.Cut(exposed, Separator); ok {
		if u, found := r.byName[name]; found && u.Prefixed && tool != "" {
			return u, tool, nil
		}
	}
	if u, ok := r.lookupUnprefixed(exposed); ok {
		return u, exposed, nil
	}
	hasUnprefixed := false
	for _, u := range r.ups {
		if !u.Prefixed {
			hasUnprefixed = true
			tools, err := r.listOne(ctx, u)
			if err != nil {
				continue
			}
			r.mu.Lock()
			for _, t := range tools {
				r.unprefixed[t.Name] = u.Name()
			}
			r.mu.Unlock()
		}
	}
	if hasUnprefixed {
		if u, ok := r.lookupUnprefixed(exposed); ok {
			return u, exposed, nil
		}
	}
	return Upstream{}, "", fmt.Errorf("%w: %s", ErrUnknownTool, exposed)
}

func (r *Router) lookupUnprefixed(exposed string) (Upstream, bool) {
	r.mu.RLock()
	name, ok := r.unprefixed[exposed]
	r.mu.RUnlock()
	if !ok {
		return Upstream{}, false
	}
	u, ok := r.byName[name]
	return u, ok
}

// RenameParams returns tools/call params with "name" set to original; every
// other field is kept as sent.
func RenameParams(params json.RawMessage, original string) (json.RawMessage, error) {
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(params))
	if err := dec.Decode(&obj); err != nil {
		return nil, fmt.Errorf("decode tools/call params: %w", err)
	}
	n, err := json.Marshal(original)
	if err != nil {
		return nil, fmt.Errorf("encode tool name: %w", err)
	}
	obj["name"] = n
	out, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encode tools/call params: %w", err)
	}
	return out, nil
}
