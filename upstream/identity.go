package upstream

import (
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
