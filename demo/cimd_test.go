package demo

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatewaystack/gatewaystack/safehttp"
)

// cimdHandler serves Client ID Metadata Documents for the tests. Each
// document's client_id is the URL it is served at, except where a test
// needs otherwise.
func cimdHandler(scheme string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		self := scheme + "://" + r.Host + r.URL.Path
		doc := func(extra string) string {
			return fmt.Sprintf(`{"client_id":%q,"client_name":"Metadata App","redirect_uris":[%q]%s}`, self, testRedirect, extra)
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/good.json":
			fmt.Fprint(w, doc(`,"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"]`))
		case "/mismatch.json":
			fmt.Fprintf(w, `{"client_id":"https://other.example/client.json","client_name":"x","redirect_uris":[%q]}`, testRedirect)
		case "/no-client-id.json":
			fmt.Fprintf(w, `{"client_name":"x","redirect_uris":[%q]}`, testRedirect)
		case "/basic.json":
			fmt.Fprint(w, doc(`,"token_endpoint_auth_method":"client_secret_basic"`))
		case "/post.json":
			fmt.Fprint(w, doc(`,"token_endpoint_auth_method":"client_secret_post"`))
		case "/secret.json":
			fmt.Fprint(w, doc(`,"client_secret":"s3cret"`))
		case "/private-key-jwt.json":
			fmt.Fprint(w, doc(`,"token_endpoint_auth_method":"private_key_jwt"`))
		case "/client-credentials.json":
			fmt.Fprint(w, doc(`,"grant_types":["client_credentials"]`))
		case "/bad-redirect.json":
			fmt.Fprintf(w, `{"client_id":%q,"redirect_uris":["http://evil.example/cb"]}`, self)
		case "/no-redirect.json":
			fmt.Fprintf(w, `{"client_id":%q}`, self)
		case "/redirect.json":
			http.Redirect(w, r, "/good.json", http.StatusFound)
		case "/big.json":
			fmt.Fprint(w, doc(`,"padding":"`+strings.Repeat("x", MaxCIMDBytes)+`"`))
		case "/big-streamed.json":
			w.(http.Flusher).Flush() // no Content-Length
			fmt.Fprint(w, doc(`,"padding":"`+strings.Repeat("x", MaxCIMDBytes)+`"`))
		case "/not-json.json":
			fmt.Fprint(w, "<html>hello</html>")
		case "/two-objects.json":
			fmt.Fprint(w, doc("")+doc(""))
		case "/slow.json":
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
			}
			fmt.Fprint(w, doc(""))
		default:
			http.NotFound(w, r)
		}
	})
}

func TestAS_ClientIDMetadataDocuments(t *testing.T) {
	t.Parallel()
	docs := httptest.NewTLSServer(cimdHandler("https"))
	t.Cleanup(docs.Close)
	roots := x509.NewCertPool()
	roots.AddCert(docs.Certificate())
	as := startAS(t, IssuerOptions{AutoApprove: true, Outbound: safehttp.Options{RootCAs: roots}})
	as.iss.fetchTimeout = 300 * time.Millisecond
	verifier, challenge := newPKCE(t)

	// Accepted: the flow works with the URL as client_id, and no
	// registration.
	clientID := docs.URL + "/good.json"
	params := authorizeParams(clientID, challenge)
	tok := as.mustToken(t, codeForm(clientID, as.codeFor(t, params), verifier))
	if claims := as.verifyAccessToken(t, tok.AccessToken, testAudience); claims["client_id"] != clientID {
		t.Errorf("client_id claim %v, want %s", claims["client_id"], clientID)
	}
	as.mustToken(t, refreshForm(clientID, tok.RefreshToken))
	// An unregistered redirect URI is refused for a document client too.
	params.Set("redirect_uri", "http://127.0.0.1:9/other")
	resp, body := as.authorize(t, params)
	wantErrorPage(t, resp, body, "not one the application registered")

	refused := []struct {
		path, wantText string
	}{
		{"/mismatch.json", "differs from its URL"},
		{"/no-client-id.json", "differs from its URL"},
		{"/basic.json", "must not carry client_secret"},
		{"/post.json", "must not carry client_secret"},
		{"/secret.json", "must not carry client_secret"},
		{"/private-key-jwt.json", "not supported"},
		{"/client-credentials.json", "confidential"},
		{"/bad-redirect.json", "not loopback"},
		{"/no-redirect.json", "at least one"},
		{"/redirect.json", "redirects are not followed"},
		{"/big.json", "larger than"},
		{"/big-streamed.json", "larger than"},
		{"/not-json.json", "not one JSON object"},
		{"/two-objects.json", "not one JSON object"},
		{"/missing.json", "HTTP 404"},
		{"/slow.json", "took longer than"},
		{"/", "must have a path"},
		{"/a/../good.json", "path segments"},
	}
	for _, tt := range refused {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			clientID := docs.URL + tt.path
			resp, body := as.authorize(t, authorizeParams(clientID, challenge))
			wantErrorPage(t, resp, body, tt.wantText)
		})
	}
}

func TestAS_ClientIDMetadataDocumentOnLoopbackHTTP(t *testing.T) {
	t.Parallel()
	docs := httptest.NewServer(cimdHandler("http"))
	t.Cleanup(docs.Close)
	as := startAS(t, IssuerOptions{})
	clientID := docs.URL + "/good.json"
	_, challenge := newPKCE(t)
	resp, page := as.authorize(t, authorizeParams(clientID, challenge))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /authorize with an http loopback document: %d %s", resp.StatusCode, page)
	}
	host := strings.TrimPrefix(docs.URL, "http://")
	if !strings.Contains(string(page), "Metadata App") || !strings.Contains(string(page), "(from "+host+")") {
		t.Errorf("approval page does not show the verified client:\n%s", page)
	}
}

// refusingNet is a resolver and dialer for the tests: names resolve from a
// table, and every dial is counted and refused, so nothing but loopback is
// ever reached.
type refusingNet struct {
	names map[string]netip.Addr
	dials atomic.Int64
}

// LookupNetIP implements safehttp.Resolver.
func (n *refusingNet) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := n.names[host]; ok {
		return []netip.Addr{a}, nil
	}
	return nil, &net.DNSError{Err: "no such host (test resolver)", Name: host, IsNotFound: true}
}

// DialContext is a safehttp.Options.DialContext.
func (n *refusingNet) DialContext(context.Context, string, string) (net.Conn, error) {
	n.dials.Add(1)
	return nil, fmt.Errorf("test: no connections")
}

func TestAS_ClientIDMetadataDocumentInternalAddressesRefused(t *testing.T) {
	t.Parallel()
	// A document server on loopback that must never be reached by an
	// issuer whose own URL is not loopback.
	var docsConns atomic.Int64
	countConns := func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			docsConns.Add(1)
		}
	}
	docs := httptest.NewUnstartedServer(cimdHandler("http"))
	docs.Config.ConnState = countConns
	docs.Start()
	t.Cleanup(docs.Close)
	tlsDocs := httptest.NewUnstartedServer(cimdHandler("https"))
	tlsDocs.Config.ConnState = countConns
	tlsDocs.StartTLS()
	t.Cleanup(tlsDocs.Close)
	roots := x509.NewCertPool()
	roots.AddCert(tlsDocs.Certificate())

	tests := []struct {
		name, issuer, clientID, want string
	}{
		{"cloud metadata", "", "https://169.254.169.254/latest/meta-data/client.json", "refusing to connect to 169.254.169.254: link-local (cloud metadata) address"},
		{"cloud metadata by name", "", "https://metadata.example.com/client.json", "metadata.example.com (169.254.169.254): link-local (cloud metadata) address"},
		{"cloud metadata IPv4-mapped", "", "https://[::ffff:169.254.169.254]/client.json", "IPv4-mapped IPv6 address (embeds 169.254.169.254"},
		{"cloud metadata IPv6", "", "https://[fd00:ec2::254]/client.json", "unique-local (cloud metadata) address"},
		{"cloud metadata decimal", "", "https://2852039166/client.json", "spelled as a number"},
		{"private", "", "https://10.0.0.7/client.json", "refusing to connect to 10.0.0.7: private (RFC 1918) address"},
		{"private by name", "", "https://intranet.example.com/client.json", "intranet.example.com (192.168.1.20): private (RFC 1918) address"},
		{"CGNAT", "", "https://100.64.0.9/client.json", "CGNAT"},
		{"unique-local", "", "https://[fd12::7]/client.json", "unique-local address"},
		{"link-local IPv6", "", "https://[fe80::1]/client.json", "link-local address"},
		{"loopback https from a public issuer", "https://as.example.com", tlsDocs.URL + "/good.json", "127.0.0.1: loopback address"},
		{"loopback http from a public issuer", "https://as.example.com", docs.URL + "/good.json", "127.0.0.1: plain http; use https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n := &refusingNet{names: map[string]netip.Addr{
				"metadata.example.com": netip.MustParseAddr("169.254.169.254"),
				"intranet.example.com": netip.MustParseAddr("192.168.1.20"),
			}}
			out := safehttp.Options{Resolver: n, DialContext: n.DialContext}
			if tt.issuer != "" {
				// Loopback documents: the real dialer, and servers that
				// count connections.
				out = safehttp.Options{RootCAs: roots}
			}
			as := startAS(t, IssuerOptions{Issuer: tt.issuer, AutoApprove: true, Outbound: out})
			_, challenge := newPKCE(t)
			resp, body := as.authorize(t, authorizeParams(tt.clientID, challenge))
			wantErrorPage(t, resp, body, "is not fetched: ")
			wantErrorPage(t, resp, body, tt.want)
			if d := n.dials.Load(); d != 0 {
				t.Errorf("%d connection attempts; a refused address must never be dialled", d)
			}
		})
	}
	t.Cleanup(func() {
		// After the parallel rows.
		if c := docsConns.Load(); c != 0 {
			t.Errorf("the loopback document servers saw %d connections", c)
		}
	})
}
