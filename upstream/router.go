package upstream

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/gatewaystack/gatewaystack/internal/jsonscan"
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
	// MaxConcurrency caps its calls in flight (0: no cap); further calls
	// wait up to QueueWait for a slot, so a slow upstream cannot take every
	// worker of the gateway.
	MaxConcurrency int
	// QueueWait bounds the wait for a slot (default 30 s).
	QueueWait time.Duration

	state *upstreamState
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

// CatalogRefreshInterval is the least time between two catalog refreshes of
// one upstream caused by calls to names it has not listed: a flood of calls
// to made-up tool, prompt or resource names costs at most one listing of
// each upstream per interval, whatever the other upstreams do.
const CatalogRefreshInterval = 5 * time.Second

// CatalogRetryMax caps the wait before listing again an upstream whose
// listings keep failing: the wait starts at CatalogRefreshInterval and
// doubles with each consecutive failure, unless the upstream answers
// another call meanwhile.
const CatalogRetryMax = 60 * time.Second

// Router resolves exposed tool names to upstreams and builds the catalog.
//
// Only tools an upstream has listed are callable through it: a call to any
// other name is answered as unknown by the gateway itself, exactly like a
// tool the caller may not see, so that neither the upstream's own "not
// found" error nor the un-prefixed name ever reaches the client.
type Router struct {
	ups    []Upstream
	byName map[string]Upstream
	now    func() time.Time

	refreshes singleflight.Group

	mu         sync.RWMutex
	unprefixed map[string]string                     // exposed name -> upstream, for unprefixed upstreams
	known      map[string]map[string]json.RawMessage // upstream -> original tool name -> its latest definition
	relists    map[string]relist                     // relistKey -> how the last listing went

	entries entryCatalog // prompts, resources and templates seen in listings
}

// NewRouter returns a router over ups (in configuration order).
func NewRouter(ups []Upstream) *Router {
	r := &Router{ups: ups, byName: make(map[string]Upstream, len(ups)), now: time.Now,
		unprefixed: map[string]string{}, known: map[string]map[string]json.RawMessage{}, relists: map[string]relist{}}
	for i := range ups {
		ups[i].state = newUpstreamState(ups[i].MaxConcurrency)
		if ups[i].QueueWait <= 0 {
			ups[i].QueueWait = 30 * time.Second
		}
		r.byName[ups[i].Name()] = ups[i]
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
	return fanOut(ctx, r.ups, r.listOne, r.remember)
}

// fanOut lists every upstream concurrently with list and returns the
// results in configuration order; each success is also handed to keep. An
// upstream that fails is reported in the errors and left out.
func fanOut[T any](ctx context.Context, ups []Upstream, list func(context.Context, Upstream) ([]T, error), keep func(Upstream, []T)) ([]T, []ListError) {
	results := make([][]T, len(ups))
	errs := make([]error, len(ups))
	var wg sync.WaitGroup
	for i, u := range ups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = list(ctx, u)
		}()
	}
	wg.Wait()
	var out []T
	var lerrs []ListError
	for i, u := range ups {
		if errs[i] != nil {
			lerrs = append(lerrs, ListError{Upstream: u.Name(), Err: errs[i]})
			continue
		}
		out = append(out, results[i]...)
		keep(u, results[i])
	}
	return out, lerrs
}

// remember adds a successful listing of u to the catalog. Names are only
// ever added: an upstream may list different tools to different users, and
// a tool one caller was shown must stay callable for the others.
func (r *Router) remember(u Upstream, tools []Tool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	known := r.known[u.Name()]
	if known == nil {
		known = make(map[string]json.RawMessage, len(tools))
		r.known[u.Name()] = known
	}
	for _, t := range tools {
		known[t.Original] = t.Definition
		if !u.Prefixed {
			r.unprefixed[t.Name] = u.Name()
		}
	}
	r.relists[relistKey(toolsList, u.Name())] = relist{at: r.now()}
}

// ToolDefinition returns the latest definition the upstream named up listed
// for its tool original (with the exposed name).
func (r *Router) ToolDefinition(up, original string) (json.RawMessage, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	def, ok := r.known[up][original]
	return def, ok
}

// KnownTools returns, per upstream, the exposed names of the tools it has
// listed to the gateway so far (sorted): what callers have been shown, with
// no listing of its own.
func (r *Router) KnownTools() map[string][]string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make(map[string][]string, len(r.ups))
	for _, u := range r.ups {
		names := make([]string, 0, len(r.known[u.Name()]))
		for original := range r.known[u.Name()] {
			if u.Prefixed {
				names = append(names, u.Name()+Separator+original)
			} else {
				names = append(names, original)
			}
		}
		slices.Sort(names)
		out[u.Name()] = names
	}
	return out
}

// has reports whether u has listed a tool named original.
func (r *Router) has(u Upstream, original string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.known[u.Name()][original]
	return ok
}

// errRefreshedRecently: the catalog of the upstream is fresh enough.
var errRefreshedRecently = errors.New("upstream: catalog refreshed recently")

// toolsList is the method that lists tools.
const toolsList = "tools/list"

// relist is how the last listing of one kind of one upstream went, for the
// re-listing throttle.
type relist struct {
	at       time.Time // when it ended
	failures int       // consecutive failed listings
	err      error     // the last failure
}

// relistKey names the throttle of the listing method of upstream.
func relistKey(method, upstream string) string { return method + "\x00" + upstream }

// wait is how long after x.at the next listing may start:
// CatalogRefreshInterval after a success, doubling with each consecutive
// failure up to CatalogRetryMax.
func (x relist) wait() time.Duration {
	d := CatalogRefreshInterval
	for i := 1; i < x.failures && d < CatalogRetryMax; i++ {
		d *= 2
	}
	return min(d, CatalogRetryMax)
}

// relistDue reports whether the listing named key of u may run now. When it
// may not, err is the last listing's failure (nil after a success), so an
// upstream that is down keeps being reported as down rather than its names
// as unknown. An upstream that failed to list but has answered another
// call since waits only CatalogRefreshInterval.
func (r *Router) relistDue(u Upstream, key string) (due bool, err error) {
	r.mu.RLock()
	x, ok := r.relists[key]
	r.mu.RUnlock()
	if !ok {
		return true, nil
	}
	since := r.now().Sub(x.at)
	switch {
	case since < CatalogRefreshInterval:
		return false, x.err
	case since >= x.wait() || reachedSince(u, x.at):
		return true, nil
	}
	return false, x.err
}

// relistDone records how the listing named key ended (err nil: it
// succeeded).
func (r *Router) relistDone(key string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	x := relist{at: r.now()}
	if err != nil {
		x.failures, x.err = r.relists[key].failures+1, err
	}
	r.relists[key] = x
}

// reachedSince reports whether a call reached u after t.
func reachedSince(u Upstream, t time.Time) bool {
	st := u.state
	if st == nil {
		return false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.reachable && st.lastOK.After(t)
}

// refresh lists u's tools into the catalog, once for all concurrent callers
// and at most once per CatalogRefreshInterval (longer after failures; see
// relistDue). While it may not list, it reports the last listing's failure,
// or errRefreshedRecently after a success.
func (r *Router) refresh(ctx context.Context, u Upstream) error {
	key := relistKey(toolsList, u.Name())
	throttled := func() error {
		due, err := r.relistDue(u, key)
		switch {
		case due:
			return nil
		case err != nil:
			return err
		}
		return errRefreshedRecently
	}
	if err := throttled(); err != nil {
		return err
	}
	ch := r.refreshes.DoChan(key, func() (any, error) {
		if err := throttled(); err != nil {
			return nil, err
		}
		// The flight outlives a caller that gives up; each upstream call
		// is bounded by the upstream's own timeout.
		tools, err := r.listOne(context.WithoutCancel(ctx), u)
		if err != nil {
			r.relistDone(key, err)
			return nil, err
		}
		r.remember(u, tools)
		return nil, nil
	})
	select {
	case <-ctx.Done():
		return fmt.Errorf("upstream %s did not list its tools in time: %w: %w", u.Name(), ErrTimeout, ctx.Err())
	case res := <-ch:
		return res.Err
	}
}

func (r *Router) listOne(ctx context.Context, u Upstream) ([]Tool, error) {
	items, err := listPages(ctx, u, toolsList, "tools")
	if err != nil {
		return nil, err
	}
	tools := make([]Tool, 0, len(items))
	for _, raw := range items {
		t, err := exposeTool(u, raw)
		if err != nil {
			return nil, fmt.Errorf("upstream %s: %w: %w", u.Name(), ErrUnavailable, err)
		}
		tools = append(tools, t)
	}
	return tools, nil
}

// listPages reads every page (at most maxListPages) of a list method and
// returns the raw entries of its result field. An upstream that does not
// have the method (-32601) has no entries.
func listPages(ctx context.Context, u Upstream, method, field string) ([]json.RawMessage, error) {
	var out []json.RawMessage
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
		resp, err := u.Call(ctx, method, params)
		if err != nil {
			return nil, err
		}
		if resp.Error != nil && resp.Error.Code == codeMethodNotFound {
			return nil, nil
		}
		if resp.Error != nil {
			return nil, fmt.Errorf("upstream %s refused %s: %s: %w", u.Name(), method, resp.Error.Message, ErrUnavailable)
		}
		var res map[string]json.RawMessage
		var items []json.RawMessage
		var next string
		if err := json.Unmarshal(resp.Result, &res); err == nil && res[field] != nil {
			err = json.Unmarshal(res[field], &items)
			if err == nil && res["nextCursor"] != nil {
				err = json.Unmarshal(res["nextCursor"], &next)
			}
			if err != nil {
				return nil, fmt.Errorf("upstream %s sent a malformed %s result: %w: %w", u.Name(), method, ErrUnavailable, err)
			}
		} else if err != nil {
			return nil, fmt.Errorf("upstream %s sent a malformed %s result: %w: %w", u.Name(), method, ErrUnavailable, err)
		}
		out = append(out, items...)
		if next == "" {
			return out, nil
		}
		cursor = next
	}
	return out, nil
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

// Resolve maps an exposed tool name to its upstream and original name. The
// tool must be one the upstream has listed; when it is not in the catalog
// yet, the upstream (or, for a name without prefix, every unprefixed
// upstream) is listed again, at most once per CatalogRefreshInterval. The
// error is ErrUnknownTool for a name no upstream offers, or the upstream's
// ErrUnavailable / ErrTimeout when it could not be asked (the returned
// Upstream then names it). Headers from WithHeaders in ctx go with the
// listing, so upstreams that need the caller's identity to list still can.
func (r *Router) Resolve(ctx context.Context, exposed string) (Upstream, string, error) {
	if name, tool, ok := strings.Cut(exposed, Separator); ok {
		if u, found := r.byName[name]; found && u.Prefixed && tool != "" {
			if r.has(u, tool) {
				return u, tool, nil
			}
			if err := r.refresh(ctx, u); err != nil && !errors.Is(err, errRefreshedRecently) {
				return u, "", err
			}
			if r.has(u, tool) {
				return u, tool, nil
			}
		}
	}
	if u, ok := r.lookupUnprefixed(exposed); ok {
		return u, exposed, nil
	}
	var failed Upstream
	var ferr error
	for _, u := range r.ups {
		if u.Prefixed {
			continue
		}
		if err := r.refresh(ctx, u); err != nil && !errors.Is(err, errRefreshedRecently) && ferr == nil {
			failed, ferr = u, err
		}
		if found, ok := r.lookupUnprefixed(exposed); ok {
			return found, exposed, nil
		}
	}
	if ferr != nil {
		// An unprefixed upstream that could not be asked may own the tool.
		return failed, "", ferr
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

// ErrParamsInvalid: tools/call params that are not an object with a
// non-empty string "name", or that are ambiguous about the name.
var ErrParamsInvalid = errors.New("upstream: tools/call params invalid")

// CallParams is the params object of a tools/call, decoded once: the tool
// name the gateway decides on, and every member as sent.
type CallParams struct {
	// Name is the value of the identifying key the caller sent: the exposed
	// tool or prompt name, or a resource URI.
	Name    string
	key     string
	members []jsonscan.Member
}

// ParseCallParams decodes tools/call params; see ParseParams.
func ParseCallParams(raw json.RawMessage) (CallParams, error) { return ParseParams(raw, "name") }

// ParseParams decodes params identified by key ("name" for tools/call and
// prompts/get, "uri" for resources/read). The key is read exactly; params
// that also carry a key equal to it up to letter case ("NAME", "Uri") are
// refused, because JSON decoders disagree on them (Go's matches keys
// case-insensitively, most others do not) and what the gateway authorizes
// must be what every upstream runs. A member repeated exactly counts once,
// with its last value, as encoding/json reads it.
func ParseParams(raw json.RawMessage, key string) (CallParams, error) {
	members, ok := jsonscan.Object(raw, make([]jsonscan.Member, 0, 4))
	if !ok {
		// Not an object, or input the scanner leaves to encoding/json.
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
			return CallParams{}, fmt.Errorf("%w: not a JSON object", ErrParamsInvalid)
		}
		members = members[:0]
		for k, v := range fields {
			members = append(members, jsonscan.Member{Key: k, Value: v})
		}
		slices.SortFunc(members, func(a, b jsonscan.Member) int { return cmp.Compare(a.Key, b.Key) })
	}
	members = lastOfEach(members)
	var value []byte
	for _, m := range members {
		switch {
		case m.Key == key:
			value = m.Value
		case strings.EqualFold(m.Key, key):
			return CallParams{}, fmt.Errorf("%w: %q next to %q", ErrParamsInvalid, m.Key, key)
		}
	}
	name, ok := jsonscan.String(value)
	if !ok || name == "" {
		return CallParams{}, fmt.Errorf("%w: no %q string", ErrParamsInvalid, key)
	}
	return CallParams{Name: name, key: key, members: members}, nil
}

// lastOfEach keeps, of members repeating a name, only the last (in its
// place), as decoding into a map does.
func lastOfEach(members []jsonscan.Member) []jsonscan.Member {
	dup := false
	if len(members) <= 16 {
		for i := range members {
			for j := i + 1; j < len(members) && !dup; j++ {
				dup = members[i].Key == members[j].Key
			}
		}
	} else {
		seen := make(map[string]struct{}, len(members))
		for _, m := range members {
			if _, dup = seen[m.Key]; dup {
				break
			}
			seen[m.Key] = struct{}{}
		}
	}
	if !dup {
		return members
	}
	last := make(map[string]int, len(members))
	for i, m := range members {
		last[m.Key] = i
	}
	out := members[:0:0]
	for i, m := range members {
		if last[m.Key] == i {
			out = append(out, m)
		}
	}
	return out
}

// Field returns the raw value of the params member named key (nil when
// absent).
func (p CallParams) Field(key string) json.RawMessage {
	return jsonscan.Get(p.members, key)
}

// Encode returns the params to send upstream: the identifying key set to
// original, once, first, and every other member as the caller sent it,
// compacted. The params are always re-encoded, so a repeated key never
// reaches an upstream whose decoder might pick another duplicate than the
// gateway's did.
func (p CallParams) Encode(original string) (json.RawMessage, error) {
	key := p.key
	if key == "" {
		key = "name"
	}
	size := len(key) + len(original) + 8
	for _, m := range p.members {
		size += len(m.Key) + len(m.Value) + 4
	}
	out := make([]byte, 0, size)
	out = append(out, '{')
	out = jsonscan.AppendString(out, key)
	out = append(out, ':')
	out = jsonscan.AppendString(out, original)
	for _, m := range p.members {
		if m.Key == key {
			continue
		}
		out = append(out, ',')
		out = jsonscan.AppendString(out, m.Key)
		out = append(out, ':')
		buf := bytes.NewBuffer(out)
		if err := json.Compact(buf, m.Value); err != nil {
			return nil, fmt.Errorf("encode params member %q: %w", m.Key, err)
		}
		out = buf.Bytes()
	}
	return append(out, '}'), nil
}

// Members returns the params' members (the identifying key included), as
// sent, in order. The slice is shared: callers must not change it.
func (p CallParams) Members() []jsonscan.Member { return p.members }

// ToolCandidates returns the names of the upstreams that may own the
// exposed tool name, from the catalog alone (no upstream is asked): the
// upstream that listed it, when one did; else the prefixed upstream its
// prefix names and every unprefixed upstream. A decision that depends on
// the owner can be made for each before any upstream work.
func (r *Router) ToolCandidates(exposed string) []string {
	if name, tool, ok := strings.Cut(exposed, Separator); ok {
		if u, found := r.byName[name]; found && u.Prefixed && tool != "" && r.has(u, tool) {
			return []string{name}
		}
	}
	if u, ok := r.lookupUnprefixed(exposed); ok {
		return []string{u.Name()}
	}
	return r.candidates(exposed)
}

// candidates are the upstreams an exposed name not yet in the catalog could
// belong to: the prefixed one its prefix names, and every unprefixed one.
func (r *Router) candidates(exposed string) []string {
	var out []string
	if name, rest, ok := strings.Cut(exposed, Separator); ok && rest != "" {
		if u, found := r.byName[name]; found && u.Prefixed {
			out = append(out, name)
		}
	}
	for _, u := range r.ups {
		if !u.Prefixed {
			out = append(out, u.Name())
		}
	}
	return out
}
