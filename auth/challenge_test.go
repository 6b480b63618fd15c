package auth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestChallengeStringGolden(t *testing.T) {
	t.Parallel()
	const prm = "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp"
	cases := []struct {
		name string
		c    Challenge
	}{
		{"no credentials", Challenge{Scope: "tool:read", ResourceMetadata: prm}},
		{"no credentials and no baseline scope", Challenge{ResourceMetadata: prm}},
		{"invalid token", Challenge{Error: CodeInvalidToken, Description: "the token has expired", Scope: "tool:read", ResourceMetadata: prm}},
		{"invalid request", Challenge{Error: CodeInvalidRequest, Description: "send exactly one Authorization header", ResourceMetadata: prm}},
		{"insufficient scope step-up", Challenge{Error: CodeInsufficientScope, Description: "this tool needs more scope", Scope: "tool:write tool:read", ResourceMetadata: prm}},
		{"quotes and backslashes are stripped", Challenge{Error: CodeInvalidToken, Description: `bad "token" \ here`, Scope: `tool:"read\`, ResourceMetadata: `http://h/"x\`}},
		{"control and non-ASCII characters are stripped", Challenge{Error: CodeInvalidToken, Description: "line1\r\nline2\ttab caf\u00e9"}},
		{"a header-injection attempt stays one header value", Challenge{Description: "x\"\r\nSet-Cookie: a=b"}},
		{"the zero challenge", Challenge{}},
	}
	var b strings.Builder
	for _, tc := range cases {
		s := tc.c.String()
		fmt.Fprintf(&b, "%s\n\t%s\n", tc.name, s)
		// Structure, independently of the golden file: one line, starts with
		// the scheme and realm, and every quoted value is free of '"' and '\'.
		if strings.ContainsAny(s, "\r\n") || !strings.HasPrefix(s, `Bearer realm="mcp"`) {
			t.Errorf("%s: %q is not a single Bearer challenge line", tc.name, s)
		}
		for _, part := range strings.Split(s, ", ")[1:] {
			_, val, ok := strings.Cut(part, "=")
			if !ok || len(val) < 2 || val[0] != '"' || val[len(val)-1] != '"' || strings.ContainsAny(val[1:len(val)-1], "\"\\") {
				t.Errorf("%s: parameter %q of %q is not name=\"safe value\"", tc.name, part, s)
			}
		}
	}
	golden(t, "www-authenticate.golden", []byte(b.String()))
}

func TestChallengeParameterOrderAndOmission(t *testing.T) {
	t.Parallel()
	got := Challenge{Error: "e", Description: "d", Scope: "s", ResourceMetadata: "r"}.String()
	want := `Bearer realm="mcp", error="e", error_description="d", scope="s", resource_metadata="r"`
	if got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	// Without credentials there is no error parameter at all (RFC 6750 §3.1).
	if s := (Challenge{Scope: "s", ResourceMetadata: "r"}).String(); strings.Contains(s, "error") {
		t.Errorf("a no-credentials challenge carries an error: %s", s)
	}
}

func TestPRMPathsAndURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, resource, suffixed, root, url string
	}{
		{"/mcp", "http://127.0.0.1:8080/mcp",
			"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource",
			"http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp"},
		{"/gw/mcp", "https://gw.example.com/gw/mcp",
			"/.well-known/oauth-protected-resource/gw/mcp", "/.well-known/oauth-protected-resource",
			"https://gw.example.com/.well-known/oauth-protected-resource/gw/mcp"},
		{"a trailing slash is dropped", "https://gw.example.com/mcp/",
			"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource",
			"https://gw.example.com/.well-known/oauth-protected-resource/mcp"},
		{"a resource at the root has one location", "https://gw.example.com",
			"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource",
			"https://gw.example.com/.well-known/oauth-protected-resource"},
		{"an escaped path stays escaped", "https://gw.example.com/a%20b/mcp",
			"/.well-known/oauth-protected-resource/a%20b/mcp", "/.well-known/oauth-protected-resource",
			"https://gw.example.com/.well-known/oauth-protected-resource/a%20b/mcp"},
		{"an IPv6 host keeps its brackets and port", "http://[::1]:8080/mcp",
			"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource",
			"http://[::1]:8080/.well-known/oauth-protected-resource/mcp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			suffixed, root, err := PRMPaths(tt.resource)
			if err != nil {
				t.Fatal(err)
			}
			if suffixed != tt.suffixed || root != tt.root {
				t.Errorf("PRMPaths = %q, %q; want %q, %q", suffixed, root, tt.suffixed, tt.root)
			}
			u, err := PRMURL(tt.resource)
			if err != nil {
				t.Fatal(err)
			}
			if u != tt.url {
				t.Errorf("PRMURL = %q, want %q", u, tt.url)
			}
		})
	}
}

// Regression invariant: metadata URLs are built only from absolute http(s) resource URLs.
func TestPRMRefusesResourcesThatAreNotAbsoluteURLs(t *testing.T) {
	t.Parallel()
	for _, r := range []string{"", "/mcp", "gw.example.com/mcp", "ftp://gw.example.com/mcp", "https:///mcp", "https://gw.example.com/mcp?x=1", "https://gw.example.com/mcp#f", "http://[::1/mcp"} {
		t.Run(r, func(t *testing.T) {
			t.Parallel()
			if u, err := PRMURL(r); err == nil {
				t.Errorf("PRMURL(%q) = %q, want an error", r, u)
			}
			if s, _, err := PRMPaths(r); err == nil {
				t.Errorf("PRMPaths(%q) = %q, want an error", r, s)
			}
		})
	}
}

func TestPRMHandlerServesTheDocument(t *testing.T) {
	t.Parallel()
	md := ProtectedResourceMetadata{
		Resource:               "http://127.0.0.1:8080/mcp",
		AuthorizationServers:   []string{"http://127.0.0.1:5051"},
		ScopesSupported:        []string{"tool:read", "tool:write"},
		BearerMethodsSupported: []string{"header"},
		ResourceName:           "Gatewaystack",
	}
	h, err := PRMHandler(md)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	resp, err := http.Get(srv.URL + "/.well-known/oauth-protected-resource/mcp")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("GET: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("not JSON: %v: %s", err, body)
	}
	// The served bytes, indented (key order preserved), are the golden file.
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, body, "", "  "); err != nil {
		t.Fatal(err)
	}
	pretty.WriteByte('\n')
	golden(t, "prm.golden.json", pretty.Bytes())
	if doc["resource"] != md.Resource {
		t.Errorf("resource = %v", doc["resource"])
	}

	head, err := http.Head(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	head.Body.Close()
	if head.StatusCode != http.StatusOK {
		t.Errorf("HEAD: %d", head.StatusCode)
	}
	post, err := http.Post(srv.URL, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if post.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(post.Header.Get("Allow"), "GET") {
		t.Errorf("POST: %d Allow=%q, want 405 with Allow", post.StatusCode, post.Header.Get("Allow"))
	}
}
