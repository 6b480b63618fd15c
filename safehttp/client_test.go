package safehttp

import (
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// errNotConnecting is what fakeNet's dialer answers when it has no server
// to route a dial to: the test only needed to see the dial.
var errNotConnecting = errors.New("test: not connecting anywhere")

// fakeNet is a resolver and a dialer for the tests. Names resolve to
// answers from a table, one answer per lookup (the last one repeats), and
// every dial is recorded, then routed to a loopback server or refused. No
// test reaches anything but loopback.
type fakeNet struct {
	mu      sync.Mutex
	answers map[string][][]netip.Addr
	lookups []string
	dials   []string
	target  string        // loopback host:port every dial reaches; "" refuses dials
	block   chan struct{} // when set, lookups and dials wait for it or the context
}

// newFakeNet returns a fakeNet resolving names by answers (each a list of
// literal addresses) and routing dials to target.
func newFakeNet(target string, answers map[string][][]string) *fakeNet {
	f := &fakeNet{answers: make(map[string][][]netip.Addr), target: target}
	for name, seq := range answers {
		for _, ans := range seq {
			var addrs []netip.Addr
			for _, a := range ans {
				addrs = append(addrs, netip.MustParseAddr(a))
			}
			f.answers[name] = append(f.answers[name], addrs)
		}
	}
	return f
}

// LookupNetIP implements Resolver.
func (f *fakeNet) LookupNetIP(ctx context.Context, _, host string) ([]netip.Addr, error) {
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups = append(f.lookups, host)
	seq := f.answers[host]
	if len(seq) == 0 {
		return nil, &net.DNSError{Err: "no such host (test resolver)", Name: host, IsNotFound: true}
	}
	ans := seq[0]
	if len(seq) > 1 {
		f.answers[host] = seq[1:]
	}
	return ans, nil
}

// DialContext is an Options.DialContext.
func (f *fakeNet) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	f.mu.Lock()
	f.dials = append(f.dials, address)
	target, block := f.target, f.block
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if target == "" {
		return nil, errNotConnecting
	}
	var d net.Dialer
	return d.DialContext(ctx, network, target)
}

// counts returns the lookups and dials so far.
func (f *fakeNet) counts() (lookups, dials []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.lookups...), append([]string(nil), f.dials...)
}

// hookOpts returns opts using f as resolver and dialer.
func (f *fakeNet) hookOpts(opts Options) Options {
	opts.Resolver, opts.DialContext = f, f.DialContext
	return opts
}

// countingServer is a loopback test server counting requests and new
// connections.
type countingServer struct {
	*httptest.Server
	hits, conns atomic.Int64
}

// newCountingServer starts a loopback server running h, over TLS when tls
// is set.
func newCountingServer(t *testing.T, useTLS bool, h http.HandlerFunc) *countingServer {
	t.Helper()
	s := &countingServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(w, r)
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	if useTLS {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

// roots trusts the test server's certificate.
func (s *countingServer) roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.Certificate())
	return p
}

// addr is the server's host:port.
func (s *countingServer) addr() string { return s.Listener.Addr().String() }

// port is the server's port.
func (s *countingServer) port() string {
	_, p, _ := net.SplitHostPort(s.addr())
	return p
}

func okHandler(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, `{"ok":true}`)
}

// wantRefused checks that err is a *RefusedError whose message contains
// want.
func wantRefused(t *testing.T, err error, want string) {
	t.Helper()
	var refused *RefusedError
	if !errors.As(err, &refused) {
		t.Fatalf("error %v (%T), want a *RefusedError", err, err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want it to contain %q", err, want)
	}
}

func TestRefusedAddresses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		url  string
		opts Options
		want string
	}{
		{"metadata v4", "https://169.254.169.254/latest/meta-data/", Options{}, "refusing to connect to 169.254.169.254: link-local (cloud metadata) address"},
		{"metadata v4 even with loopback allowed", "http://169.254.169.254/", Options{AllowHTTPLoopback: true}, "plain http to a host that is not loopback"},
		{"metadata name", "https://metadata.google.internal/computeMetadata/v1/", Options{}, "metadata.google.internal (169.254.169.254): link-local (cloud metadata)"},
		{"metadata mapped", "https://[::ffff:169.254.169.254]/", Options{}, "IPv4-mapped IPv6 address (embeds 169.254.169.254"},
		{"metadata mapped hex", "https://[::ffff:a9fe:a9fe]/", Options{}, "IPv4-mapped"},
		{"metadata NAT64", "https://[64:ff9b::a9fe:a9fe]/", Options{}, "NAT64 address (embeds 169.254.169.254"},
		{"metadata 6to4", "https://[2002:a9fe:a9fe::1]/", Options{}, "6to4"},
		{"metadata v6 AWS", "https://[fd00:ec2::254]/", Options{}, "unique-local (cloud metadata)"},
		{"link-local v4", "https://169.254.1.1/", Options{}, "link-local address"},
		{"link-local v6", "https://[fe80::1]/", Options{}, "link-local"},
		{"link-local v6 zone", "https://[fe80::1%25eth0]/", Options{}, "link-local"},
		{"unspecified v4", "https://0.0.0.0/", Options{}, "unspecified"},
		{"unspecified v6", "https://[::]/", Options{}, "unspecified"},
		{"loopback v4", "https://127.0.0.1/", Options{}, "loopback"},
		{"loopback v4 other", "https://127.8.9.10:8443/", Options{}, "loopback"},
		{"loopback v6", "https://[::1]/", Options{}, "loopback"},
		{"loopback localhost", "https://localhost/", Options{}, "localhost (127.0.0.1): loopback"},
		{"loopback mapped", "https://[::ffff:127.0.0.1]/", Options{}, "IPv4-mapped"},
		{"loopback mapped with loopback allowed", "https://[::ffff:127.0.0.1]/", Options{AllowHTTPLoopback: true}, "IPv4-mapped"},
		{"loopback v4-compatible", "https://[::127.0.0.1]/", Options{AllowHTTPLoopback: true}, "IPv4-compatible"},
		{"loopback name", "https://rebind.example.com/", Options{}, "rebind.example.com (127.0.0.1): loopback"},
		{"private 10", "https://10.0.0.7/", Options{}, "private (RFC 1918)"},
		{"private 172", "https://172.16.5.4/", Options{}, "private"},
		{"private 192.168", "https://192.168.0.1/", Options{}, "private"},
		{"private name", "https://intranet.example.com/", Options{}, "intranet.example.com (10.1.2.3): private"},
		{"private mapped", "https://[::ffff:10.0.0.7]/", Options{}, "IPv4-mapped"},
		{"private NAT64", "https://[64:ff9b::10.0.0.7]/", Options{}, "NAT64"},
		{"private Teredo", "https://[2001:0:808:808::f5ff:fffe]/", Options{}, "Teredo"},
		{"private outside allowed range", "https://10.0.0.7/", Options{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("192.168.0.0/16")}}, "private"},
		{"mapped not allowed by its IPv4 range", "https://[::ffff:10.0.0.7]/", Options{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, "IPv4-mapped"},
		{"ULA", "https://[fd12:3456::1]/", Options{}, "unique-local"},
		{"ULA name", "https://ula.example.com/", Options{}, "unique-local"},
		{"CGNAT", "https://100.64.1.1/", Options{}, "CGNAT"},
		{"multicast v4", "https://224.0.0.251/", Options{}, "multicast"},
		{"multicast v6", "https://[ff02::fb]/", Options{}, "multicast"},
		{"broadcast", "https://255.255.255.255/", Options{}, "broadcast"},
		{"reserved", "https://240.1.2.3/", Options{}, "reserved"},
		// A name with one refused address among public ones is refused:
		// every address is checked.
		{"mixed answer", "https://mixed.example.com/", Options{}, "mixed.example.com (10.1.2.3): private"},
		// Hints name the operator's settings when given.
		{"hint", "https://169.254.169.254/", Options{AllowCIDRsSetting: "outbound.allow_cidrs"}, "refusing to connect to 169.254.169.254: link-local (cloud metadata) address; allow it with outbound.allow_cidrs"},
		{"hint loopback", "https://127.0.0.1/", Options{AllowCIDRsSetting: "outbound.allow_cidrs", AllowHTTPLoopbackSetting: "outbound.allow_http_loopback"}, "allow loopback with outbound.allow_http_loopback (local development) or its range with outbound.allow_cidrs"},
	}
	answers := map[string][][]string{
		"metadata.google.internal": {{"169.254.169.254"}},
		"rebind.example.com":       {{"127.0.0.1"}},
		"intranet.example.com":     {{"10.1.2.3"}},
		"ula.example.com":          {{"fd00::5"}},
		"mixed.example.com":        {{"93.184.216.34", "10.1.2.3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fn := newFakeNet("", answers)
			c := New(fn.hookOpts(tt.opts))
			body, resp, err := c.Get(context.Background(), tt.url)
			if body != nil || resp != nil {
				t.Errorf("Get returned a body or a response along with the refusal")
			}
			wantRefused(t, err, tt.want)
			if _, dials := fn.counts(); len(dials) != 0 {
				t.Errorf("dialled %v; a refused address must never be dialled", dials)
			}
			// The bare *http.Client refuses the same.
			req, _ := http.NewRequest(http.MethodGet, tt.url, nil)
			if resp, err := c.HTTPClient().Do(req); err == nil {
				resp.Body.Close()
				t.Fatal("HTTPClient().Do succeeded")
			} else {
				wantRefused(t, err, tt.want)
			}
			if _, dials := fn.counts(); len(dials) != 0 {
				t.Errorf("HTTPClient() dialled %v", dials)
			}
		})
	}
}

func TestAllowedAddresses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		url      string
		opts     Options
		wantDial []string
	}{
		{"public v4", "https://93.184.216.34/", Options{}, []string{"93.184.216.34:443"}},
		{"public v6", "https://[2606:4700::1111]:8443/", Options{}, []string{"[2606:4700::1111]:8443"}},
		{"public name", "https://docs.example.com/", Options{}, []string{"93.184.216.34:443"}},
		{"public NAT64", "https://[64:ff9b::808:808]/", Options{}, []string{"[64:ff9b::808:808]:443"}},
		{"public name, two addresses in turn", "https://two.example.com/", Options{}, []string{"93.184.216.34:443", "[2606:2800:220:1::1]:443"}},
		{"allowed range", "https://10.1.2.3/", Options{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, []string{"10.1.2.3:443"}},
		{"allowed range, name", "https://intranet.example.com/", Options{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, []string{"10.1.2.3:443"}},
		{"allowed metadata /32", "https://169.254.169.254/", Options{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("169.254.169.254/32")}}, []string{"169.254.169.254:443"}},
		{"allowed v6 range", "https://[fd00::5]/", Options{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("fd00::/8")}}, []string{"[fd00::5]:443"}},
		{"loopback by range", "https://127.0.0.1/", Options{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, []string{"127.0.0.1:443"}},
		{"loopback allowed", "https://[::1]/", Options{AllowHTTPLoopback: true}, []string{"[::1]:443"}},
		{"localhost allowed, never resolved", "https://localhost/", Options{AllowHTTPLoopback: true}, []string{"127.0.0.1:443", "[::1]:443"}},
		{"http localhost", "http://localhost:8080/", Options{AllowHTTPLoopback: true}, []string{"127.0.0.1:8080", "[::1]:8080"}},
		{"http loopback", "http://127.0.0.1:8080/", Options{AllowHTTPLoopback: true}, []string{"127.0.0.1:8080"}},
	}
	answers := map[string][][]string{
		"docs.example.com":     {{"93.184.216.34"}},
		"two.example.com":      {{"93.184.216.34", "2606:2800:220:1::1"}},
		"intranet.example.com": {{"10.1.2.3"}},
		// Never asked: localhost is 127.0.0.1 and ::1.
		"localhost": {{"10.9.9.9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fn := newFakeNet("", answers)
			_, _, err := New(fn.hookOpts(tt.opts)).Get(context.Background(), tt.url)
			if !errors.Is(err, errNotConnecting) {
				t.Fatalf("error %v, want the test dialer's", err)
			}
			lookups, dials := fn.counts()
			if fmt.Sprint(dials) != fmt.Sprint(tt.wantDial) {
				t.Errorf("dialled %v, want %v", dials, tt.wantDial)
			}
			for _, l := range lookups {
				if l == "localhost" {
					t.Error("localhost was resolved; it must be 127.0.0.1 and ::1 without asking")
				}
			}
		})
	}
}

func TestMappedResolverAnswers(t *testing.T) {
	t.Parallel()
	// net.Resolver answers /etc/hosts IPv4 entries in the IPv4-mapped form:
	// the embedded address is what is checked and dialled.
	tests := []struct {
		answer, wantDial, wantRefused string
	}{
		{"::ffff:93.184.216.34", "93.184.216.34:443", ""},
		{"::ffff:169.254.169.254", "", "(169.254.169.254): link-local (cloud metadata)"},
		{"::ffff:127.0.0.1", "", "(127.0.0.1): loopback"},
	}
	for _, tt := range tests {
		t.Run(tt.answer, func(t *testing.T) {
			t.Parallel()
			fn := newFakeNet("", map[string][][]string{"hosts.example.com": {{tt.answer}}})
			_, _, err := New(fn.hookOpts(Options{})).Get(context.Background(), "https://hosts.example.com/")
			_, dials := fn.counts()
			if tt.wantRefused != "" {
				wantRefused(t, err, tt.wantRefused)
				if len(dials) != 0 {
					t.Errorf("dialled %v", dials)
				}
				return
			}
			if !errors.Is(err, errNotConnecting) || fmt.Sprint(dials) != "["+tt.wantDial+"]" {
				t.Errorf("error %v, dials %v; want the test dialer's error after dialling %s", err, dials, tt.wantDial)
			}
		})
	}
}

func TestURLRules(t *testing.T) {
	t.Parallel()
	loopback := Options{AllowHTTPLoopback: true}
	hinted := Options{AllowHTTPLoopbackSetting: "outbound.allow_http_loopback"}
	tests := []struct {
		name string
		url  string
		opts Options
		want string
	}{
		// IPv4 in other spellings: Go's URL parser takes them as host names;
		// C resolvers would read them as 127.0.0.1. Refused either way,
		// before any lookup.
		{"hex dotted http", "http://0x7f.1/", loopback, "spelled as a number"},
		{"decimal http", "http://2130706433/", loopback, "spelled as a number"},
		{"octal http", "http://0177.0.0.1/", loopback, "spelled as a number"},
		{"short http", "http://127.1/", loopback, "spelled as a number"},
		{"hex dotted https", "https://0x7f.1/", loopback, "spelled as a number"},
		{"decimal https", "https://2130706433/", Options{}, "spelled as a number"},
		{"hex https", "https://0x7f000001/", Options{}, "spelled as a number"},
		{"octal https", "https://017700000001/", Options{}, "spelled as a number"},
		{"metadata decimal", "https://2852039166/", Options{}, "spelled as a number"},
		{"metadata hex", "https://0xa9.0xfe.0xa9.0xfe/", Options{}, "spelled as a number"},
		{"zero-padded", "https://127.000.000.001/", loopback, "spelled as a number"},
		// Schemes.
		{"http to a public host", "http://docs.example.com/", loopback, "plain http to a host that is not loopback; use https"},
		{"http to a public address", "http://93.184.216.34/", loopback, "not loopback"},
		{"http to a private address", "http://10.0.0.1/", Options{AllowHTTPLoopback: true, AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, "not loopback"},
		{"http to loopback, not allowed", "http://127.0.0.1:8080/", Options{}, "plain http; use https"},
		{"http to localhost, not allowed, hint", "http://localhost:8080/", hinted, "plain http; use https, or for local development set outbound.allow_http_loopback"},
		{"http to a mapped loopback", "http://[::ffff:127.0.0.1]/", loopback, "not loopback"},
		{"ftp", "ftp://docs.example.com/", Options{}, `scheme "ftp"`},
		{"file", "file:///etc/passwd", Options{}, "has no host"},
		{"gopher", "gopher://127.0.0.1:70/", loopback, `scheme "gopher"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fn := newFakeNet("", map[string][][]string{"docs.example.com": {{"93.184.216.34"}}})
			c := New(fn.hookOpts(tt.opts))
			_, _, err := c.Get(context.Background(), tt.url)
			wantRefused(t, err, tt.want)
			req, err := http.NewRequest(http.MethodGet, tt.url, nil)
			if err == nil {
				if resp, err := c.HTTPClient().Do(req); err == nil {
					resp.Body.Close()
					t.Error("HTTPClient().Do succeeded")
				} else if !strings.Contains(err.Error(), tt.want) {
					t.Errorf("HTTPClient().Do error %q, want it to contain %q", err, tt.want)
				}
			}
			if lookups, dials := fn.counts(); len(lookups)+len(dials) != 0 {
				t.Errorf("resolved %v and dialled %v; the URL must be refused first", lookups, dials)
			}
		})
	}
}

func TestLoopbackServers(t *testing.T) {
	t.Parallel()
	plain := newCountingServer(t, false, okHandler)
	secure := newCountingServer(t, true, okHandler)
	tests := []struct {
		name    string
		srv     *countingServer
		url     string
		opts    Options
		refused string // "" means the fetch works
	}{
		{"http allowed", plain, plain.URL + "/doc.json", Options{AllowHTTPLoopback: true}, ""},
		{"http localhost allowed", plain, "http://localhost:" + plain.port() + "/doc.json", Options{AllowHTTPLoopback: true}, ""},
		{"http refused", plain, plain.URL + "/doc.json", Options{}, "plain http"},
		{"http refused despite range", plain, plain.URL + "/doc.json", Options{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, "plain http"},
		{"https loopback allowed", secure, secure.URL + "/doc.json", Options{AllowHTTPLoopback: true, RootCAs: secure.roots()}, ""},
		{"https loopback by range", secure, secure.URL + "/doc.json", Options{AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, RootCAs: secure.roots()}, ""},
		{"https loopback refused", secure, secure.URL + "/doc.json", Options{RootCAs: secure.roots()}, "127.0.0.1: loopback address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Not parallel: the rows share the servers' counters.
			c := New(tt.opts)
			defer c.CloseIdleConnections()
			conns := tt.srv.conns.Load()
			body, resp, err := c.Get(context.Background(), tt.url)
			if tt.refused != "" {
				wantRefused(t, err, tt.refused)
				if n := tt.srv.conns.Load() - conns; n != 0 {
					t.Errorf("%d connections reached the server", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if string(body) != `{"ok":true}` || resp.StatusCode != http.StatusOK {
				t.Errorf("Get = %d %q", resp.StatusCode, body)
			}
		})
	}
}

func TestRedirectsNotFollowed(t *testing.T) {
	t.Parallel()
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			t.Parallel()
			target := newCountingServer(t, false, okHandler)
			redirector := newCountingServer(t, false, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target.URL+"/doc.json", code)
			})
			c := New(Options{AllowHTTPLoopback: true})
			body, resp, err := c.Get(context.Background(), redirector.URL+"/doc.json")
			var se *StatusError
			if !errors.As(err, &se) || se.StatusCode != code || !strings.Contains(err.Error(), "redirect not followed") || !strings.Contains(err.Error(), target.URL) {
				t.Errorf("Get error %v, want a *StatusError for HTTP %d naming the target", err, code)
			}
			if body != nil || resp == nil || resp.StatusCode != code {
				t.Errorf("Get = %v %q, want the %d response and no body", resp, body, code)
			}
			// The bare client answers the redirect as is.
			resp, err = c.HTTPClient().Get(redirector.URL + "/doc.json")
			if err != nil {
				t.Fatalf("HTTPClient().Get: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != code {
				t.Errorf("HTTPClient().Get status %d, want %d", resp.StatusCode, code)
			}
			if n := target.hits.Load(); n != 0 {
				t.Errorf("the redirect target was hit %d times", n)
			}
			if n := redirector.hits.Load(); n != 2 {
				t.Errorf("the redirecting server was hit %d times, want 2", n)
			}
		})
	}
}

func TestProxyEnvironmentIgnored(t *testing.T) {
	// Not parallel: t.Setenv.
	proxy := newCountingServer(t, false, func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "proxy", http.StatusBadGateway)
	})
	for _, k := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"} {
		t.Setenv(k, proxy.URL)
	}
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	target := newCountingServer(t, true, okHandler)
	fn := newFakeNet(target.addr(), map[string][][]string{"docs.example.com": {{"93.184.216.34"}}})
	c := New(fn.hookOpts(Options{RootCAs: target.roots()}))
	body, _, err := c.Get(context.Background(), "https://docs.example.com/doc.json")
	if err != nil || string(body) != `{"ok":true}` {
		t.Fatalf("Get = %q, %v", body, err)
	}
	if n := proxy.hits.Load() + proxy.conns.Load(); n != 0 {
		t.Errorf("the proxy from the environment saw %d requests or connections", n)
	}
	if _, dials := fn.counts(); fmt.Sprint(dials) != "[93.184.216.34:443]" {
		t.Errorf("dialled %v, want the target's checked address only", dials)
	}
	if c.tr.Proxy != nil {
		t.Error("Transport.Proxy is set")
	}
}

func TestMaxResponseBytes(t *testing.T) {
	t.Parallel()
	const limit = 1024
	srv := newCountingServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		n := limit
		if r.URL.Query().Has("over") {
			n++
		}
		data := strings.Repeat("x", n)
		switch r.URL.Path {
		case "/length":
			w.Header().Set("Content-Length", fmt.Sprint(n))
			io.WriteString(w, data)
		case "/chunked":
			w.(http.Flusher).Flush()
			io.WriteString(w, data)
		case "/gzip": // small on the wire, large once decompressed
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			io.WriteString(zw, data)
			zw.Close()
		}
	})
	for _, path := range []string{"/length", "/chunked", "/gzip"} {
		for _, over := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s over=%v", path, over), func(t *testing.T) {
				t.Parallel()
				c := New(Options{AllowHTTPLoopback: true, MaxResponseBytes: limit})
				u := srv.URL + path
				if over {
					u += "?over"
				}
				body, _, err := c.Get(context.Background(), u)
				if !over {
					if err != nil || len(body) != limit {
						t.Fatalf("Get = %d bytes, %v; want exactly %d", len(body), err, limit)
					}
					return
				}
				var tl *TooLargeError
				if !errors.As(err, &tl) || tl.Limit != limit || body != nil {
					t.Fatalf("Get = %d bytes, %v; want a *TooLargeError", len(body), err)
				}
				// Reading the bare client's body fails the same.
				resp, err := c.HTTPClient().Get(u)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				if !errors.As(err, &tl) || len(b) > limit {
					t.Errorf("ReadAll = %d bytes, %v; want at most %d and a *TooLargeError", len(b), err, limit)
				}
			})
		}
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	srv := newCountingServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		var code int
		fmt.Sscan(strings.TrimPrefix(r.URL.Path, "/"), &code)
		w.WriteHeader(code)
	})
	c := New(Options{AllowHTTPLoopback: true})
	tests := []struct {
		code   int
		wantOK bool
	}{
		{200, true}, {204, true}, {299, true}, {304, false}, {400, false}, {404, false}, {500, false},
	}
	for _, tt := range tests {
		_, resp, err := c.Get(context.Background(), fmt.Sprintf("%s/%d", srv.URL, tt.code))
		if resp == nil || resp.StatusCode != tt.code {
			t.Errorf("HTTP %d: response %v", tt.code, resp)
		}
		var se *StatusError
		switch {
		case tt.wantOK && err != nil:
			t.Errorf("HTTP %d: %v", tt.code, err)
		case !tt.wantOK && (!errors.As(err, &se) || se.StatusCode != tt.code):
			t.Errorf("HTTP %d: error %v, want a *StatusError", tt.code, err)
		}
	}
}

func TestTimeouts(t *testing.T) {
	t.Parallel()
	// A server that accepts connections and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held sync.WaitGroup
	t.Cleanup(held.Wait) // runs after ln.Close, which ends Accept
	t.Cleanup(func() { ln.Close() })
	held.Go(func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	})
	// A server that sends its headers, then stalls.
	stall := newCountingServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})

	const short = 300 * time.Millisecond
	tests := []struct {
		name string
		url  string
		opts func(*fakeNet) Options
	}{
		{"no answer", "http://" + ln.Addr().String() + "/", func(*fakeNet) Options {
			return Options{AllowHTTPLoopback: true, Timeout: short}
		}},
		{"stalled body", stall.URL + "/", func(*fakeNet) Options {
			return Options{AllowHTTPLoopback: true, Timeout: short}
		}},
		{"TLS handshake never answered", "https://" + ln.Addr().String() + "/", func(*fakeNet) Options {
			return Options{AllowHTTPLoopback: true, ConnectTimeout: short, Timeout: time.Minute}
		}},
		{"connect never completes", "https://docs.example.com/", func(fn *fakeNet) Options {
			fn.block = make(chan struct{})
			fn.answers = nil // the lookup blocks too; either bound by ConnectTimeout
			return fn.hookOpts(Options{ConnectTimeout: short, Timeout: time.Minute})
		}},
		{"connect never completes, literal", "https://93.184.216.34/", func(fn *fakeNet) Options {
			fn.block = make(chan struct{})
			return fn.hookOpts(Options{ConnectTimeout: short, Timeout: time.Minute})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fn := newFakeNet("", nil)
			c := New(tt.opts(fn))
			start := time.Now()
			_, _, err := c.Get(context.Background(), tt.url)
			took := time.Since(start)
			if err == nil {
				t.Fatal("Get succeeded")
			}
			if took < short-50*time.Millisecond || took > short+2*time.Second {
				t.Errorf("Get failed after %v (%v), want about %v", took, err, short)
			}
		})
	}
}

func TestDNSRebinding(t *testing.T) {
	t.Parallel()
	target := newCountingServer(t, true, okHandler)
	// The name resolves to a public address first, then to loopback: a
	// client checking one lookup and connecting after another would reach
	// 127.0.0.1.
	fn := newFakeNet(target.addr(), map[string][][]string{
		"rebind.example.com": {{"93.184.216.34"}, {"127.0.0.1"}},
	})
	c := New(fn.hookOpts(Options{RootCAs: target.roots()}))
	body, _, err := c.Get(context.Background(), "https://rebind.example.com/doc.json")
	if err != nil || string(body) != `{"ok":true}` {
		t.Fatalf("first Get = %q, %v", body, err)
	}
	c.CloseIdleConnections() // the next request dials again
	_, _, err = c.Get(context.Background(), "https://rebind.example.com/doc.json")
	wantRefused(t, err, "rebind.example.com (127.0.0.1): loopback address")
	lookups, dials := fn.counts()
	if fmt.Sprint(dials) != "[93.184.216.34:443]" {
		t.Errorf("dialled %v, want only the checked public address", dials)
	}
	if len(lookups) != 2 {
		t.Errorf("looked up %v, want one lookup per connection", lookups)
	}
	if n := target.hits.Load(); n != 1 {
		t.Errorf("server hit %d times, want 1", n)
	}
}

func TestDialerControl(t *testing.T) {
	t.Parallel()
	// The net.Dialer's Control hook refuses what the checks refuse, as a
	// last line behind the dialer's own check.
	c := New(Options{})
	tests := []struct {
		address string
		want    string
	}{
		{"169.254.169.254:80", "link-local (cloud metadata)"},
		{"[::1]:443", "loopback"},
		{"10.0.0.1:443", "private"},
		{"example.com:443", "not an IP address"},
	}
	for _, tt := range tests {
		err := c.control("tcp", tt.address, nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("control(%s) = %v, want it to contain %q", tt.address, err, tt.want)
		}
	}
	if err := c.control("tcp", "93.184.216.34:443", nil); err != nil {
		t.Errorf("control(public) = %v", err)
	}
}

func TestTLSMinVersion(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(okHandler))
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	_, _, err := New(Options{AllowHTTPLoopback: true, RootCAs: roots}).Get(context.Background(), srv.URL)
	if err == nil || !strings.Contains(err.Error(), "version") {
		t.Errorf("Get over TLS 1.1: %v, want a protocol version error", err)
	}
}

func TestDoEmptyMethod(t *testing.T) {
	t.Parallel()
	// An empty method means GET, in errors too.
	req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:1/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Method = ""
	_, _, err = New(Options{}).Do(req)
	wantRefused(t, err, `Get "http://127.0.0.1:1/": refusing to connect to 127.0.0.1: plain http`)
}

func TestKeepAlive(t *testing.T) {
	t.Parallel()
	srv := newCountingServer(t, false, okHandler)
	c := New(Options{AllowHTTPLoopback: true})
	for range 3 {
		if _, _, err := c.Get(context.Background(), srv.URL); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.conns.Load(); n != 1 {
		t.Errorf("3 requests used %d connections, want 1 kept alive", n)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := New(Options{ConnectTimeout: -1, MaxResponseBytes: -1})
	if c.opts.ConnectTimeout != DefaultConnectTimeout || c.opts.Timeout != DefaultTimeout || c.opts.MaxResponseBytes != DefaultMaxResponseBytes {
		t.Errorf("defaults: %v %v %v", c.opts.ConnectTimeout, c.opts.Timeout, c.opts.MaxResponseBytes)
	}
	if c.hc.Timeout != DefaultTimeout || c.tr.TLSHandshakeTimeout != DefaultConnectTimeout {
		t.Errorf("client timeout %v, handshake timeout %v", c.hc.Timeout, c.tr.TLSHandshakeTimeout)
	}
	if c.tr.TLSClientConfig.MinVersion != tls.VersionTLS12 {
		t.Errorf("TLS minimum version %x", c.tr.TLSClientConfig.MinVersion)
	}
	if c.hc.CheckRedirect == nil || c.hc.CheckRedirect(nil, nil) != http.ErrUseLastResponse {
		t.Error("CheckRedirect does not stop redirects")
	}
	// AllowCIDRs is copied: changing the caller's slice changes nothing.
	cidrs := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	c = New(Options{AllowCIDRs: cidrs})
	cidrs[0] = netip.MustParsePrefix("0.0.0.0/0")
	if c.check("x", netip.MustParseAddr("192.168.1.1")) == nil {
		t.Error("AllowCIDRs was not copied")
	}
}

func TestParsePrefixes(t *testing.T) {
	t.Parallel()
	got, err := ParsePrefixes([]string{"10.0.0.0/8", " fd00::/8 ", "192.168.1.7/24"})
	if err != nil || fmt.Sprint(got) != "[10.0.0.0/8 fd00::/8 192.168.1.0/24]" {
		t.Errorf("ParsePrefixes = %v, %v", got, err)
	}
	for _, bad := range []string{"10.0.0.0", "10.0.0.0/33", "example.com/8", ""} {
		if _, err := ParsePrefixes([]string{"10.0.0.0/8", bad}); err == nil || !strings.Contains(err.Error(), "entry 1") {
			t.Errorf("ParsePrefixes(%q) error %v, want one naming entry 1", bad, err)
		}
	}
}
