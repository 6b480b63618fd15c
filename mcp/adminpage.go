package mcp

import (
	_ "embed"
	"net/http"
)

// adminPageHTML is the admin page: static, embedded in the binary, with no
// build step. Its data comes from the JSON admin API, which needs a bearer
// token with the admin scope; the page asks for it.
//
//go:embed adminpage/index.html
var adminPageHTML []byte

// serveAdminPage serves the admin page itself (no data, no token needed).
func (g *Gateway) serveAdminPage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method_not_allowed", "error_description": "use GET"})
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	_, _ = w.Write(adminPageHTML)
}
