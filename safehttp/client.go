// Package safehttp is the HTTP client for everything the gateway and the
// demo issuer fetch from a URL that came from configuration or from a
// request: JSON Web Key Sets, authorization server metadata, Client ID
// Metadata Documents. It guards against server-side request forgery:
//
//   - https only; plain http only to a loopback literal or localhost, and
//     only with Options.AllowHTTPLoopback. The scheme is checked before
//     anything is resolved or dialled.
//   - The dialer resolves the host itself, checks every address the name
//     resolves to (see Classify) and dials the checked address, so a DNS
//     answer that changes between check and connect (DNS rebinding) cannot
//     reach a refused address. Loopback, private, link-local (the cloud
//     metadata address 169.254.169.254 included), unique-local, CGNAT,
//     multicast, broadcast, reserved and IPv4-mapped addresses are refused
//     unless listed in Options.AllowCIDRs (loopback also with
//     AllowHTTPLoopback). Host names spelled as numbers (2130706433,
//     0x7f.1) are refused without resolving them.
//   - Redirects are never followed: the 3xx answer is returned as is (the
//     client's CheckRedirect returns http.ErrUseLastResponse), and Get and
//     Do turn it into a *StatusError. Following one would let a permitted
//     server point the fetch anywhere; callers get the status instead.
//   - No proxy from the environment (HTTPS_PROXY and friends are ignored),
//     TLS 1.2 or later, bounded connect time, total time and body size.
package safehttp

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Defaults of Options.
const (
	// DefaultConnectTimeout bounds resolving, connecting and the TLS
	// handshake.
	DefaultConnectTimeout = 5 * time.Second
	// DefaultTimeout bounds a whole request, reading the body included.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxResponseBytes is the largest response body read.
	DefaultMaxResponseBytes = 1 << 20

	maxIdleConns        = 16
	maxIdleConnsPerHost = 4
	idleConnTimeout     = 90 * time.Second
	maxHeaderBytes      = 64 << 10
	maxLocationInError  = 200
)

// Resolver looks up the addresses of a host name; *net.Resolver is one.
// network is "ip", "ip4" or "ip6".
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Options configures New. The zero value is the strict default: https to
// public addresses only.
type Options struct {
	// AllowHTTPLoopback allows loopback addresses (127.0.0.0/8, ::1), and
	// plain http to hosts that are a loopback literal or localhost. For
	// local development and the demo; never in production.
	AllowHTTPLoopback bool
	// AllowCIDRs lists ranges that may be reached although Classify refuses
	// them, e.g. an in-cluster identity provider at 10.0.0.0/8. It never
	// allows plain http. An IPv4-mapped IPv6 literal is matched in its IPv6
	// form only.
	AllowCIDRs []netip.Prefix
	// ConnectTimeout bounds resolving the host, connecting and the TLS
	// handshake. Zero or negative means DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// Timeout bounds a whole request, reading the body included. Zero or
	// negative means DefaultTimeout.
	Timeout time.Duration
	// MaxResponseBytes caps the response body: reading past it fails with
	// a *TooLargeError. Zero or negative means DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// RootCAs are the authorities trusted for https; nil means the
	// system's.
	RootCAs *x509.CertPool

	// AllowCIDRsSetting and AllowHTTPLoopbackSetting name, in refusal
	// messages, the settings an operator changes to allow what was refused,
	// e.g. "outbound.allow_cidrs" and "outbound.allow_http_loopback". Empty:
	// the messages give no such hint.
	AllowCIDRsSetting, AllowHTTPLoopbackSetting string

	// Resolver resolves host names; nil means net.DefaultResolver. The
	// name localhost is never asked: it is 127.0.0.1 and ::1. For tests.
	Resolver Resolver
	// DialContext connects to an address already checked, always an IP
	// literal and port such as "203.0.113.7:443"; nil means a net.Dialer
	// (whose Control hook checks the address once more). For tests.
	DialContext func(ctx context.Context, network, address string) (net.Conn, error)
}

// Client fetches from URLs under the outbound rules of its Options. It is
// safe for concurrent use.
type Client struct {
	opts Options
	hc   *http.Client
	tr   *http.Transport
}

// New returns a Client for opts, with defaults filled in.
func New(opts Options) *Client {
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if opts.Resolver == nil {
		opts.Resolver = net.DefaultResolver
	}
	opts.AllowCIDRs = append([]netip.Prefix(nil), opts.AllowCIDRs...)
	c := &Client{opts: opts}
	if c.opts.DialContext == nil {
		d := &net.Dialer{Timeout: opts.ConnectTimeout, KeepAlive: 30 * time.Second, Control: c.control}
		c.opts.DialContext = d.DialContext
	}
	c.tr = &http.Transport{
		Proxy:                  nil, // never from the environment
		DialContext:            c.dialContext,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: opts.RootCAs},
		TLSHandshakeTimeout:    opts.ConnectTimeout,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           maxIdleConns,
		MaxIdleConnsPerHost:    maxIdleConnsPerHost,
		IdleConnTimeout:        idleConnTimeout,
		ResponseHeaderTimeout:  opts.Timeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: maxHeaderBytes,
	}
	c.hc = &http.Client{
		Transport:     &guard{c: c},
		Timeout:       opts.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c
}

// HTTPClient returns the underlying client, for libraries that take an
// *http.Client (the JWKS cache, the /health/idp checks). Its transport
// enforces every rule: the scheme and the addresses, no proxy, TLS 1.2+,
// the time bounds and the body cap (a body read past MaxResponseBytes
// fails). It does not follow redirects: a 3xx is answered as is. Unlike
// Get, it accepts any status.
func (c *Client) HTTPClient() *http.Client { return c.hc }

// CloseIdleConnections closes the kept-alive connections not in use.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// Get fetches rawURL with "Accept: application/json" (every document this
// client is for is JSON) and returns its body, read in full, and the
// response, whose Body is closed. See Do.
func (c *Client) Get(ctx context.Context, rawURL string) ([]byte, *http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("safehttp: GET %s: %w", rawURL, err)
	}
	req.Header.Set("Accept", "application/json")
	return c.Do(req)
}

// Do sends req and returns the body of the answer, read in full, and the
// response, whose Body is closed. The URL's scheme and host are checked
// before anything is resolved or dialled (a *RefusedError). A status other
// than 2xx is an error, a *StatusError, returned with the response and no
// body; a 3xx is one, as redirects are never followed. A body longer than
// MaxResponseBytes is a *TooLargeError.
func (c *Client) Do(req *http.Request) ([]byte, *http.Response, error) {
	method := cmp.Or(req.Method, http.MethodGet)
	if err := c.checkURL(req.URL); err != nil {
		// Shaped as the client's own errors: Get "https://...": ...
		op := method[:1] + strings.ToLower(method[1:])
		return nil, nil, fmt.Errorf("safehttp: %w", &url.Error{Op: op, URL: req.URL.Redacted(), Err: err})
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("safehttp: %w", err) // a *url.Error: names method and URL
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		loc := resp.Header.Get("Location")
		if len(loc) > maxLocationInError {
			loc = loc[:maxLocationInError] + "..."
		}
		return nil, resp, &StatusError{Method: method, URL: req.URL.Redacted(), StatusCode: resp.StatusCode, Location: loc}
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, resp, fmt.Errorf("safehttp: %s %s: read the body: %w", method, req.URL.Redacted(), err)
	}
	return body, resp, nil
}

// checkURL applies the scheme and host rules to u, before any resolution.
func (c *Client) checkURL(u *url.URL) error {
	host := u.Hostname()
	if host == "" {
		return &RefusedError{Reason: fmt.Sprintf("the URL %s has no host", u.Redacted()), Hint: "use an absolute https URL"}
	}
	if _, err := netip.ParseAddr(host); err != nil && isNumericHost(host) {
		return &RefusedError{Host: host, Reason: "host name spelled as a number (an IPv4 address in a non-standard form)", Hint: "write the address in dotted decimal, or use a DNS name"}
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		switch {
		case !IsLoopbackHost(host):
			return &RefusedError{Host: host, Reason: "plain http to a host that is not loopback", Hint: "use https"}
		case !c.opts.AllowHTTPLoopback:
			hint := "use https"
			if s := c.opts.AllowHTTPLoopbackSetting; s != "" {
				hint += ", or for local development set " + s
			}
			return &RefusedError{Host: host, Reason: "plain http", Hint: hint}
		}
		return nil
	default:
		return &RefusedError{Host: host, Reason: fmt.Sprintf("scheme %q", u.Scheme), Hint: "use https"}
	}
}

// check applies the address rules to a, an address of host.
func (c *Client) check(host string, a netip.Addr) error {
	bare := a.WithZone("")
	for _, p := range c.opts.AllowCIDRs {
		if p.Contains(bare) {
			return nil
		}
	}
	class := Classify(bare)
	if class == "" || (c.opts.AllowHTTPLoopback && !bare.Is4In6() && bare.IsLoopback()) {
		return nil
	}
	e := &RefusedError{Host: host, Addr: a, Reason: class}
	switch {
	case bare.Is4In6():
		e.Hint = "write the IPv4 address itself"
	case bare.IsLoopback() && c.opts.AllowHTTPLoopbackSetting != "" && c.opts.AllowCIDRsSetting != "":
		e.Hint = fmt.Sprintf("allow loopback with %s (local development) or its range with %s", c.opts.AllowHTTPLoopbackSetting, c.opts.AllowCIDRsSetting)
	case c.opts.AllowCIDRsSetting != "":
		e.Hint = "allow it with " + c.opts.AllowCIDRsSetting
	}
	return e
}

// resolve returns the addresses of host: an IP literal as written (so an
// IPv4-mapped literal stays mapped, and is refused), localhost as 127.0.0.1
// and ::1, anything else from the resolver, IPv4-mapped answers unmapped
// (net.Resolver returns /etc/hosts entries in that form; the embedded
// address is what a connection reaches).
func (c *Client) resolve(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	if isLocalhost(host) {
		return []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()}, nil
	}
	if isNumericHost(host) {
		return nil, &RefusedError{Host: host, Reason: "host name spelled as a number (an IPv4 address in a non-standard form)"}
	}
	ipNet := "ip"
	switch network {
	case "tcp4":
		ipNet = "ip4"
	case "tcp6":
		ipNet = "ip6"
	}
	addrs, err := c.opts.Resolver.LookupNetIP(ctx, ipNet, host)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("resolve %s: no addresses", host)
	}
	out := make([]netip.Addr, len(addrs))
	for i, a := range addrs {
		out[i] = a.Unmap()
	}
	return out, nil
}

// dialContext is the transport's dialer: it resolves the host, refuses
// the connection if any of its addresses is refused, and dials the checked
// addresses in turn, within ConnectTimeout.
func (c *Client) dialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", address, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("dial %s: bad port: %w", address, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.ConnectTimeout)
	defer cancel()
	addrs, err := c.resolve(ctx, network, host)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", address, err)
	}
	for _, a := range addrs {
		if err := c.check(host, a); err != nil {
			return nil, err
		}
	}
	var errs []error
	for _, a := range addrs {
		conn, err := c.opts.DialContext(ctx, network, netip.AddrPortFrom(a, uint16(port)).String())
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("dial %s: %w", address, errors.Join(errs...))
}

// control is the net.Dialer's last check, on the address about to be
// connected to.
func (c *Client) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("safehttp: refusing to connect to %q: not an IP address and port", address)
	}
	return c.check(ap.Addr().String(), ap.Addr())
}

// guard is the client's RoundTripper: it checks the URL before the
// transport resolves or dials anything, and caps the response body.
type guard struct{ c *Client }

// RoundTrip implements http.RoundTripper.
func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := g.c.checkURL(req.URL); err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, err
	}
	resp, err := g.c.tr.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	limit := g.c.opts.MaxResponseBytes
	resp.Body = &cappedBody{rc: resp.Body, left: limit, limit: limit, over: resp.ContentLength > limit}
	return resp, nil
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// transport.
func (g *guard) CloseIdleConnections() { g.c.tr.CloseIdleConnections() }

// cappedBody fails a read past limit bytes with a *TooLargeError.
type cappedBody struct {
	rc          io.ReadCloser
	left, limit int64
	over        bool
}

// Read implements io.Reader.
func (b *cappedBody) Read(p []byte) (int, error) {
	if b.over {
		return 0, &TooLargeError{Limit: b.limit}
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	if int64(n) > b.left {
		n, b.left, b.over = int(b.left), 0, true
		return n, &TooLargeError{Limit: b.limit}
	}
	b.left -= int64(n)
	return n, err
}

// Close implements io.Closer.
func (b *cappedBody) Close() error { return b.rc.Close() }

// ParsePrefixes parses CIDR ranges such as "10.0.0.0/8" for
// Options.AllowCIDRs, e.g. from the configuration's outbound.allow_cidrs.
// Surrounding spaces are ignored and host bits are masked off.
func ParsePrefixes(cidrs []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(cidrs))
	for i, s := range cidrs {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("safehttp: allowed range entry %d %q is not a CIDR such as 10.0.0.0/8: %w", i, s, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
