package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// Kind is one kind of listable entry besides tools.
type Kind struct {
	// Method lists the entries (e.g. "prompts/list").
	Method string
	// Field is the result's array field (e.g. "prompts").
	Field string
	// Key is the entry's identifying field ("name", "uri", "uriTemplate").
	Key string
	// Prefixed: the key is a name exposed as <upstream>__<name>; otherwise
	// it is a URI, passed through unchanged.
	Prefixed bool
}

// The listable kinds besides tools.
var (
	Prompts           = Kind{Method: "prompts/list", Field: "prompts", Key: "name", Prefixed: true}
	Resources         = Kind{Method: "resources/list", Field: "resources", Key: "uri"}
	ResourceTemplates = Kind{Method: "resources/templates/list", Field: "resourceTemplates", Key: "uriTemplate"}
)

// ErrUnknownEntry: no upstream offers the prompt or resource.
var ErrUnknownEntry = errors.New("upstream: unknown prompt or resource")

// codeMethodNotFound is JSON-RPC's "method not found": an upstream without
// the capability.
const codeMethodNotFound = -32601

// Entry is one prompt, resource or resource template of the combined catalog.
type Entry struct {
	// Key is what the client sees: the exposed prompt name, or the URI
	// (template), unchanged.
	Key string
	// Original is the upstream's own name or URI.
	Original string
	// Upstream is the owner's name.
	Upstream string
	// Definition is the upstream's object (name rewritten for prompts).
	Definition json.RawMessage
}

// PolicyKey is the name policy patterns match for an entry: the exposed
// prompt name, or "<upstream>__<uri>" for resources and templates.
func (e Entry) PolicyKey(k Kind) string {
	if k.Prefixed {
		return e.Key
	}
	return e.Upstream + Separator + e.Key
}

// entryCatalog remembers which upstream owns which prompt name, resource URI
// and URI template, from the listings seen so far.
type entryCatalog struct {
	mu        sync.RWMutex
	owners    map[string]map[string]string // kind method -> key -> upstream
	templates map[string][]uriTemplate     // upstream -> templates
}

type uriTemplate struct {
	template string
	re       *regexp.Regexp
}

// List asks every upstream for entries of kind k (concurrently, all pages).
// An upstream without the capability contributes nothing; one that fails is
// reported and left out.
func (r *Router) List(ctx context.Context, k Kind) ([]Entry, []ListError) {
	return fanOut(ctx, r.ups,
		func(ctx context.Context, u Upstream) ([]Entry, error) { return r.listEntries(ctx, u, k) },
		func(_ Upstream, entries []Entry) { r.rememberEntries(k, entries) })
}

func (r *Router) listEntries(ctx context.Context, u Upstream, k Kind) ([]Entry, error) {
	items, err := listPages(ctx, u, k.Method, k.Field)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(items))
	for _, raw := range items {
		e, err := exposeEntry(u, k, raw)
		if err != nil {
			return nil, fmt.Errorf("upstream %s: %w: %w", u.Name(), ErrUnavailable, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// exposeEntry rewrites a prompt's name (when the upstream is prefixed);
// resources and templates keep their URIs, so links inside contents stay
// valid.
func exposeEntry(u Upstream, k Kind, raw json.RawMessage) (Entry, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return Entry{}, fmt.Errorf("%s entry is not an object: %w", k.Field, err)
	}
	var key string
	if err := json.Unmarshal(obj[k.Key], &key); err != nil || key == "" {
		return Entry{}, fmt.Errorf("%s entry without a %s", k.Field, k.Key)
	}
	e := Entry{Key: key, Original: key, Upstream: u.Name(), Definition: raw}
	if k.Prefixed && u.Prefixed {
		e.Key = u.Name() + Separator + key
		n, err := json.Marshal(e.Key)
		if err != nil {
			return Entry{}, fmt.Errorf("encode name: %w", err)
		}
		obj[k.Key] = n
		if e.Definition, err = json.Marshal(obj); err != nil {
			return Entry{}, fmt.Errorf("encode %s entry: %w", k.Field, err)
		}
	}
	return e, nil
}

func (r *Router) rememberEntries(k Kind, entries []Entry) {
	c := &r.entries
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.owners == nil {
		c.owners = map[string]map[string]string{}
		c.templates = map[string][]uriTemplate{}
	}
	m := c.owners[k.Method]
	if m == nil {
		m = map[string]string{}
		c.owners[k.Method] = m
	}
	for _, e := range entries {
		if _, taken := m[e.Key]; !taken {
			m[e.Key] = e.Upstream
		}
		if k == ResourceTemplates {
			if re, err := templateRegexp(e.Original); err == nil && !hasTemplate(c.templates[e.Upstream], e.Original) {
				c.templates[e.Upstream] = append(c.templates[e.Upstream], uriTemplate{template: e.Original, re: re})
			}
		}
	}
}

func hasTemplate(ts []uriTemplate, t string) bool {
	for _, x := range ts {
		if x.template == t {
			return true
		}
	}
	return false
}

// templateRegexp turns an RFC 6570 URI template into a matcher: every
// {expression} matches any run of characters.
func templateRegexp(t string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	for {
		i := strings.IndexByte(t, '{')
		if i < 0 {
			b.WriteString(regexp.QuoteMeta(t))
			break
		}
		j := strings.IndexByte(t[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("unterminated expression in URI template")
		}
		b.WriteString(regexp.QuoteMeta(t[:i]))
		b.WriteString(".*")
		t = t[i+j+1:]
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// ResolvePrompt maps an exposed prompt name to its upstream and original
// name, listing prompts again when the name is not known yet.
func (r *Router) ResolvePrompt(ctx context.Context, exposed string) (Upstream, string, error) {
	find := func() (Upstream, string, bool) {
		r.entries.mu.RLock()
		owner, ok := r.entries.owners[Prompts.Method][exposed]
		r.entries.mu.RUnlock()
		if !ok {
			return Upstream{}, "", false
		}
		u := r.byName[owner]
		original := exposed
		if u.Prefixed {
			original = strings.TrimPrefix(exposed, owner+Separator)
		}
		return u, original, true
	}
	if u, o, ok := find(); ok {
		return u, o, nil
	}
	if _, lerrs := r.listKindOnce(ctx, Prompts); len(lerrs) > 0 {
		if u, o, ok := find(); ok {
			return u, o, nil
		}
		return r.byName[lerrs[0].Upstream], "", lerrs[0].Err
	}
	if u, o, ok := find(); ok {
		return u, o, nil
	}
	return Upstream{}, "", fmt.Errorf("%w: prompt %s", ErrUnknownEntry, exposed)
}

// ResolveResource finds the upstream that serves uri: the one that listed
// it, else one whose URI template matches it, else — when only one upstream
// exists — that one.
func (r *Router) ResolveResource(ctx context.Context, uri string) (Upstream, error) {
	find := func() (Upstream, bool) { return r.findResource(uri) }
	if u, ok := find(); ok {
		return u, nil
	}
	if len(r.ups) == 1 {
		return r.ups[0], nil
	}
	_, lerrs1 := r.listKindOnce(ctx, Resources)
	_, lerrs2 := r.listKindOnce(ctx, ResourceTemplates)
	if u, ok := find(); ok {
		return u, nil
	}
	if lerrs := append(lerrs1, lerrs2...); len(lerrs) > 0 {
		return r.byName[lerrs[0].Upstream], lerrs[0].Err
	}
	return Upstream{}, fmt.Errorf("%w: resource %s", ErrUnknownEntry, uri)
}

// findResource is the catalog's owner of uri: the upstream that listed it,
// else the first whose URI template matches it.
func (r *Router) findResource(uri string) (Upstream, bool) {
	r.entries.mu.RLock()
	defer r.entries.mu.RUnlock()
	if owner, ok := r.entries.owners[Resources.Method][uri]; ok {
		return r.byName[owner], true
	}
	for _, u := range r.ups {
		for _, t := range r.entries.templates[u.Name()] {
			if t.re.MatchString(uri) {
				return u, true
			}
		}
	}
	return Upstream{}, false
}

// listKindOnce refreshes the catalog of kind k: each upstream is listed
// once for all concurrent callers and at most once per
// CatalogRefreshInterval (longer after failures; see relistDue), each on its
// own schedule, so lookups of made-up names cannot make the gateway list
// upstreams at request rate, whichever of them fail. An upstream that may
// not be listed yet contributes nothing, and its last failure if it failed.
func (r *Router) listKindOnce(ctx context.Context, k Kind) ([]Entry, []ListError) {
	return fanOut(ctx, r.ups,
		func(ctx context.Context, u Upstream) ([]Entry, error) { return r.relistKind(ctx, u, k) },
		func(Upstream, []Entry) {})
}

// relistKind lists the entries of kind k of u into the catalog when its
// throttle allows.
func (r *Router) relistKind(ctx context.Context, u Upstream, k Kind) ([]Entry, error) {
	key := relistKey(k.Method, u.Name())
	if due, err := r.relistDue(u, key); !due {
		return nil, err
	}
	ch := r.refreshes.DoChan(key, func() (any, error) {
		if due, err := r.relistDue(u, key); !due {
			return []Entry(nil), err
		}
		// The flight outlives a caller that gives up; each upstream call
		// is bounded by the upstream's own timeout.
		entries, err := r.listEntries(context.WithoutCancel(ctx), u, k)
		r.relistDone(key, err)
		if err != nil {
			return []Entry(nil), err
		}
		r.rememberEntries(k, entries)
		return entries, nil
	})
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("upstream %s did not list %s in time: %w: %w", u.Name(), k.Field, ErrTimeout, ctx.Err())
	case res := <-ch:
		entries, _ := res.Val.([]Entry)
		return entries, res.Err
	}
}

// PromptCandidates returns the names of the upstreams that may own the
// exposed prompt name, from the catalog alone (see ToolCandidates).
func (r *Router) PromptCandidates(exposed string) []string {
	r.entries.mu.RLock()
	owner, ok := r.entries.owners[Prompts.Method][exposed]
	r.entries.mu.RUnlock()
	if ok {
		return []string{owner}
	}
	return r.candidates(exposed)
}

// CachedResourceOwner returns the upstream that serves uri according to the
// catalog alone (a listed resource, else a matching URI template; with one
// upstream, that one), without asking any upstream.
func (r *Router) CachedResourceOwner(uri string) (Upstream, bool) {
	if u, ok := r.findResource(uri); ok {
		return u, true
	}
	if len(r.ups) == 1 {
		return r.ups[0], true
	}
	return Upstream{}, false
}
