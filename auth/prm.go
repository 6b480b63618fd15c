package auth

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// ProtectedResourceMetadata is the RFC 9728 document of the gateway's MCP
// endpoint.
type ProtectedResourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name,omitempty"`
}

// PRMPaths returns the well-known paths the metadata of resource is served
// at: the path-suffixed location of RFC 9728 §3.1 (for
// https://gw.example/gw/mcp that is /.well-known/oauth-protected-resource/gw/mcp)
// and the root location for clients that look only there.
func PRMPaths(resource string) (suffixed, root string, err error) {
	u, err := parseResource(resource)
	if err != nil {
		return "", "", err
	}
	root = "/.well-known/oauth-protected-resource"
	p := strings.TrimSuffix(u.EscapedPath(), "/")
	if p == "" {
		return root, root, nil
	}
	return root + p, root, nil
}

// PRMURL returns the absolute URL of the path-suffixed metadata document, the
// one put into resource_metadata of every challenge.
func PRMURL(resource string) (string, error) {
	u, err := parseResource(resource)
	if err != nil {
		return "", err
	}
	suffixed, _, err := PRMPaths(resource)
	if err != nil {
		return "", err
	}
	return u.Scheme + "://" + u.Host + suffixed, nil
}

// parseResource parses an RFC 9728 resource identifier: an absolute http(s)
// URL without query or fragment (§1.2). Anything else would produce a
// metadata URL that no client can match against the resource it called.
func parseResource(resource string) (*url.URL, error) {
	u, err := url.Parse(resource)
	if err != nil {
		return nil, fmt.Errorf("parse resource %q: %w", resource, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("resource %q is not an absolute http(s) URL without query or fragment", resource)
	}
	// The metadata URL is quoted in every challenge: a host with a byte a
	// quoted value cannot carry unchanged would send clients elsewhere.
	if strings.ContainsFunc(u.Host, func(r rune) bool { return !isHostChar(r) }) {
		return nil, fmt.Errorf("resource %q has a host with characters a URL host cannot hold", resource)
	}
	return u, nil
}

// isHostChar reports whether r may appear in the host (and port) of a URL:
// RFC 3986 unreserved and sub-delims, '%' of percent-encoding, and the ':',
// '[' and ']' of ports and IP literals.
func isHostChar(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		return true
	}
	return strings.ContainsRune("-._~!$&'()*+,;=%:[]", r)
}

// PRMHandler serves the metadata document as JSON. It is public: no
// credentials are needed to learn how to obtain them.
func PRMHandler(md ProtectedResourceMetadata) (http.Handler, error) {
	body, err := json.Marshal(md)
	if err != nil {
		return nil, fmt.Errorf("encode protected resource metadata: %w", err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD, OPTIONS")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(body)
	}), nil
}
