package upstream

import (
	"context"
	"strings"

	"github.com/gatewaystack/gatewaystack/auth"
)

// HeaderNames names the headers that carry the verified identity upstream.
type HeaderNames struct {
	User   string
	Tenant string
	Scopes string
}

// IdentityHeaders returns the identity headers for id. Empty values are
// sent as absent, never as empty strings.
func IdentityHeaders(n HeaderNames, id auth.Identity) map[string]string {
	h := make(map[string]string, 3)
	h[n.User] = id.Subject
	if id.Tenant != "" {
		h[n.Tenant] = id.Tenant
	}
	if len(id.Scopes) > 0 {
		h[n.Scopes] = strings.Join(id.Scopes, " ")
	}
	return h
}

// identityKey carries the verified identity of a call in a context.
type identityKey struct{}

// WithIdentity returns ctx carrying the verified identity for upstream calls:
// HTTP upstreams get it as the headers named by n (derived once, here),
// stdio upstreams in the request's _meta, REST tools as headers and query.
func WithIdentity(ctx context.Context, n HeaderNames, id auth.Identity) context.Context {
	ctx = context.WithValue(ctx, identityKey{}, identityCarrier{id: id, names: n})
	return WithHeaders(ctx, IdentityHeaders(n, id))
}

type identityCarrier struct {
	id    auth.Identity
	names HeaderNames
}

// IdentityFrom returns the identity and header names put in ctx by
// WithIdentity.
func IdentityFrom(ctx context.Context) (auth.Identity, HeaderNames, bool) {
	c, ok := ctx.Value(identityKey{}).(identityCarrier)
	return c.id, c.names, ok
}
