package mcp

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestClientIPEdgeCases(t *testing.T) {
	t.Parallel()
	l := Limits{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}}
	tests := []struct {
		name, remote string
		header       http.Header
		want         string
	}{
		{"an untrusted peer is the client", "192.0.2.1:5000", http.Header{"X-Forwarded-For": {"203.0.113.1"}}, "192.0.2.1"},
		{"a trusted peer without headers is the client", "10.1.1.1:5000", nil, "10.1.1.1"},
		{"the rightmost untrusted hop wins", "10.1.1.1:5000", http.Header{"X-Forwarded-For": {"1.1.1.1, 203.0.113.1, 10.2.2.2"}}, "203.0.113.1"},
		{"several header lines are one list", "10.1.1.1:5000", http.Header{"X-Forwarded-For": {"1.1.1.1", "203.0.113.1"}}, "203.0.113.1"},
		{"garbage stops at the last trusted hop", "10.1.1.1:5000", http.Header{"X-Forwarded-For": {"203.0.113.1, nonsense"}}, "10.1.1.1"},
		{"all hops trusted: the leftmost", "10.1.1.1:5000", http.Header{"X-Forwarded-For": {"10.3.3.3, 10.2.2.2"}}, "10.3.3.3"},
		{"X-Forwarded-For is preferred over Forwarded", "10.1.1.1:5000", http.Header{"X-Forwarded-For": {"203.0.113.1"}, "Forwarded": {"for=198.51.100.1"}}, "203.0.113.1"},
		{"Forwarded with port and IPv6", "[::1]:5000", http.Header{"Forwarded": {`for=198.51.100.1:80, for="[2001:db8::1]:4711";proto=https`}}, "2001:db8::1"},
		{"Forwarded unknown stops", "[::1]:5000", http.Header{"Forwarded": {"for=unknown"}}, "::1"},
		{"IPv4-mapped peers are IPv4", "[::ffff:10.1.1.1]:5000", http.Header{"X-Forwarded-For": {"203.0.113.9"}}, "203.0.113.9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &http.Request{RemoteAddr: tc.remote, Header: tc.header}
			if got := l.clientIP(r); got.String() != tc.want {
				t.Fatalf("clientIP = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestIPv6ClientsShareTheir64(t *testing.T) {
	t.Parallel()
	a, b := netip.MustParseAddr("2001:db8:1:2::1"), netip.MustParseAddr("2001:db8:1:2:ffff::9")
	c := netip.MustParseAddr("2001:db8:1:3::1")
	if ipKey(a) != ipKey(b) || ipKey(a) == ipKey(c) {
		t.Fatal("IPv6 keys must be per /64")
	}
}
