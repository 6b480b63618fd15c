package demo

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// Regression invariant: with an upstream secret, the notes server believes
// X-User-Id only on requests that carry the secret, which only the gateway
// sends: any other local process is refused (401 without it, 403 with
// another value) before the identity is read.
func TestNotes_UpstreamSecretProvesTheGateway(t *testing.T) {
	t.Parallel()
	const secret = "per-run-secret-0123456789"
	for _, tt := range []struct {
		name, header string
	}{
		{"default header", ""},
		{"custom header", "X-From-Gateway"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			notes, srv := startNotes(t, NotesOptions{UpstreamSecret: secret, UpstreamSecretHeader: tt.header})
			name := DefaultUpstreamSecretHeader
			if tt.header != "" {
				name = tt.header
			}
			for _, c := range []struct {
				name   string
				values []string
				status int
			}{
				{"no secret", nil, http.StatusUnauthorized},
				{"wrong secret", []string{"guess"}, http.StatusForbidden},
				{"secret with a suffix", []string{secret + "x"}, http.StatusForbidden},
				{"secret sent twice", []string{secret, secret}, http.StatusForbidden},
				{"empty secret", []string{""}, http.StatusForbidden},
			} {
				h := http.Header{"Accept": {"application/json, text/event-stream"}, DefaultUserHeader: {"alice"}}
				if c.values != nil {
					h[http.CanonicalHeaderKey(name)] = c.values
				}
				body := strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`)
				resp, data := doRequest(t, srv, http.MethodPost, NotesEndpoint, "application/json", body, h)
				var got errorBody
				if resp.StatusCode != c.status || json.Unmarshal(data, &got) != nil || got.Error != "not_from_gateway" || !strings.Contains(got.ErrorDescription, http.CanonicalHeaderKey(name)) {
					t.Errorf("%s: %d %s, want %d not_from_gateway naming %s", c.name, resp.StatusCode, data, c.status, name)
				}
				if strings.Contains(string(data), secret) {
					t.Errorf("%s: the answer echoes the secret: %s", c.name, data)
				}
			}

			// With the secret, the identity works as before.
			c := connect(t, srv, map[string]string{DefaultUserHeader: "alice", name: secret})
			writeTestNote(t, c, "hello", "world")
			if got := listTestNotes(t, c); got.User != "alice" || len(got.Notes) != 1 {
				t.Errorf("with the secret: %+v, want alice's one note", got)
			}
			if notes.Count("alice") != 1 {
				t.Errorf("alice has %d notes, want 1", notes.Count("alice"))
			}
		})
	}
}

// Without an upstream secret (tests that call the server directly), the
// identity headers alone are enough, as documented.
func TestNotes_NoUpstreamSecretMeansNoCheck(t *testing.T) {
	t.Parallel()
	_, srv := startNotes(t, NotesOptions{})
	c := connect(t, srv, asUser("bob"))
	if got := listTestNotes(t, c); got.User != "bob" {
		t.Errorf("list_notes ran as %q, want bob", got.User)
	}
}
