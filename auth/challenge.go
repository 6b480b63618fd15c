package auth

import (
	"strings"
)

// Challenge is the content of one WWW-Authenticate: Bearer challenge.
type Challenge struct {
	// Error is the RFC 6750 error code; empty for "no credentials".
	Error string
	// Description is a short human-readable reason.
	Description string
	// Scope is the space-separated scope list the client should request.
	Scope string
	// ResourceMetadata is the URL of the Protected Resource Metadata.
	ResourceMetadata string
}

// String renders the challenge as a WWW-Authenticate header value:
// Bearer realm="mcp", error=..., error_description=..., scope=...,
// resource_metadata=.... Quoted values never contain '"' or '\': such
// characters are dropped, so a header is always well-formed.
func (c Challenge) String() string {
	var b strings.Builder
	b.Grow(128 + len(c.Scope) + len(c.ResourceMetadata) + len(c.Description))
	b.WriteString(`Bearer realm="mcp"`)
	param := func(name, value string) {
		if value == "" {
			return
		}
		b.WriteString(", ")
		b.WriteString(name)
		b.WriteString(`="`)
		b.WriteString(quoteSafe(value))
		b.WriteByte('"')
	}
	param("error", c.Error)
	param("error_description", c.Description)
	param("scope", c.Scope)
	param("resource_metadata", c.ResourceMetadata)
	return b.String()
}

// quoteSafe keeps only printable ASCII other than '"' and '\', which is what
// RFC 6750 allows in error_description and scope values.
func quoteSafe(s string) string {
	ok := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x20 && c <= 0x7e && c != '"' && c != '\\' {
			b.WriteByte(c)
		}
	}
	return b.String()
}
