package demo

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// errorBody is the JSON shape of every error answered by this package's
// HTTP handlers, modelled on RFC 6749 section 5.2.
type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// writeJSON writes v as a JSON response with the given status code.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only values built in this package are marshalled, so this is a
		// programming error; answer with a fixed body rather than nothing.
		status = http.StatusInternalServerError
		body = []byte(`{"error":"server_error","error_description":"failed to encode response"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// writeError writes an errorBody with the given status code.
func writeError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, errorBody{Error: code, ErrorDescription: description})
}

// isLoopbackOrigin reports whether origin (the value of an Origin header) is
// an http or https origin whose host is 127.0.0.1, localhost or [::1].
func isLoopbackOrigin(origin string) bool {
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil {
		return false
	}
	if u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return false
	}
	switch strings.ToLower(u.Hostname()) {
	case "127.0.0.1", "localhost", "::1":
		return true
	default:
		return false
	}
}
