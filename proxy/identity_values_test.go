package proxy_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/gatewaystack/gatewaystack/auth"
	"github.com/gatewaystack/gatewaystack/proxy"
	"github.com/gatewaystack/gatewaystack/upstream"
)

// Regression invariant: identity values a header cannot carry raw (a comma
// that backends split on, non-ASCII letters, spaces) reach the backend in
// the one encoding of upstream.EncodeIdentityValue, each header as a single
// value that decodes back to exactly the verified one; the injected query
// parameter carries the same encoding. Plain values are unchanged (see
// TestProxyReplacesCredentialsAndIdentityHeaders).
func TestProxyEncodesIdentityValues(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	p, err := proxy.New(proxy.Options{
		Target:      b.URL,
		InjectQuery: "user_id",
		Routes:      []proxy.Route{{Prefix: "/"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	id := auth.Identity{Subject: "cn=José,ou=people", Tenant: "acme, evilcorp", Scopes: []string{"tool:read", "odd,scope"}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.ServeHTTP(w, r.WithContext(upstream.WithIdentity(r.Context(), names, id)))
	}))
	t.Cleanup(srv.Close)

	resp, _ := send(t, "GET", srv.URL+"/proxy/things?user_id=mallory", map[string][]string{"X-User-Id": {"mallory"}}, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := b.last(t)
	want := map[string]string{
		"X-User-Id":     "cn=Jos%C3%A9%2Cou=people",
		"X-Org-Id":      "acme%2C%20evilcorp",
		"X-User-Scopes": "tool:read odd%2Cscope",
	}
	for k, v := range want {
		vals := got.Header.Values(k)
		if len(vals) != 1 || vals[0] != v {
			t.Errorf("backend header %s = %q, want [%q]", k, vals, v)
		}
	}
	for k, raw := range map[string]string{"X-User-Id": id.Subject, "X-Org-Id": id.Tenant} {
		if dec, err := upstream.DecodeIdentityValue(got.Header.Get(k)); err != nil || dec != raw {
			t.Errorf("%s decodes to %q, %v, want %q", k, dec, err, raw)
		}
	}
	q, err := url.ParseQuery(got.Query)
	if err != nil {
		t.Fatal(err)
	}
	if v := q["user_id"]; len(v) != 1 || v[0] != want["X-User-Id"] {
		t.Errorf("user_id = %q, want [%q]", v, want["X-User-Id"])
	}
}
