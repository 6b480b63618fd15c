package safehttp

import (
	"net/netip"
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr string
		want string // substring of the class; "" means allowed
	}{
		// Unspecified.
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", "unspecified"},
		{"::", "unspecified"},
		// Loopback.
		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"::1", "loopback"},
		// Private (RFC 1918), with the edges of 172.16.0.0/12.
		{"10.0.0.1", "private (RFC 1918)"},
		{"10.255.255.255", "private (RFC 1918)"},
		{"172.16.0.1", "private (RFC 1918)"},
		{"172.31.255.255", "private (RFC 1918)"},
		{"172.15.255.255", ""},
		{"172.32.0.0", ""},
		{"192.168.1.1", "private (RFC 1918)"},
		// Shared address space (CGNAT), with its edges.
		{"100.64.0.1", "CGNAT"},
		{"100.127.255.255", "CGNAT"},
		{"100.63.255.255", ""},
		{"100.128.0.0", ""},
		{"100.100.100.200", "cloud metadata"},
		// Link-local and the cloud metadata address.
		{"169.254.169.254", "link-local (cloud metadata)"},
		{"169.254.0.1", "link-local address"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"febf::1", "link-local"},
		// Unique-local, the AWS IPv6 metadata address, site-local.
		{"fc00::1", "unique-local"},
		{"fd12:3456::1", "unique-local"},
		{"fd00:ec2::254", "unique-local (cloud metadata)"},
		{"fec0::1", "site-local"},
		// Multicast, broadcast, reserved.
		{"224.0.0.1", "multicast"},
		{"239.255.255.255", "multicast"},
		{"ff02::1", "multicast"},
		{"255.255.255.255", "broadcast"},
		{"240.0.0.1", "reserved"},
		{"192.0.0.8", "reserved"},
		{"198.18.0.1", "reserved (benchmarking)"},
		// IPv4-mapped IPv6: refused whatever it embeds, naming the embedded
		// class.
		{"::ffff:127.0.0.1", "IPv4-mapped IPv6 address (embeds 127.0.0.1, a loopback address)"},
		{"::ffff:169.254.169.254", "embeds 169.254.169.254, a link-local (cloud metadata) address"},
		{"::ffff:10.0.0.1", "IPv4-mapped"},
		{"::ffff:8.8.8.8", "IPv4-mapped IPv6 address (embeds 8.8.8.8)"},
		// IPv4-compatible (deprecated).
		{"::7f00:1", "IPv4-compatible"},
		{"::808:808", "IPv4-compatible"},
		// NAT64: refused when it embeds a refused address.
		{"64:ff9b::a9fe:a9fe", "NAT64 address (embeds 169.254.169.254"},
		{"64:ff9b::10.0.0.1", "NAT64 address (embeds 10.0.0.1, a private"},
		{"64:ff9b::127.0.0.1", "NAT64"},
		{"64:ff9b::8.8.8.8", ""},
		{"64:ff9b:1::1", "local-use NAT64"},
		// 6to4: likewise.
		{"2002:a9fe:a9fe::1", "6to4 address (embeds 169.254.169.254"},
		{"2002:c0a8:0101::1", "6to4 address (embeds 192.168.1.1"},
		{"2002:0808:0808::1", ""},
		// Teredo: the server in clear, the client inverted (~10.0.0.1 =
		// f5ff:fffe).
		{"2001:0:a9fe:a9fe::1", "Teredo address (embeds 169.254.169.254"},
		{"2001:0:808:808::f5ff:fffe", "Teredo address (embeds 10.0.0.1"},
		{"2001:0:808:808::f7f7:f7f7", ""},
		// Public unicast.
		{"8.8.8.8", ""},
		{"93.184.216.34", ""},
		{"203.0.113.7", ""},
		{"2606:4700::1111", ""},
		{"2001:4860:4860::8888", ""},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			t.Parallel()
			got := Classify(netip.MustParseAddr(tt.addr))
			switch {
			case tt.want == "" && got != "":
				t.Errorf("Classify(%s) = %q, want allowed", tt.addr, got)
			case tt.want != "" && !strings.Contains(got, tt.want):
				t.Errorf("Classify(%s) = %q, want it to contain %q", tt.addr, got, tt.want)
			}
		})
	}
	if got := Classify(netip.Addr{}); got == "" {
		t.Error("Classify(zero Addr) allowed it")
	}
}

func TestIsLoopbackHost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		host string
		want bool
	}{
		{"localhost", true},
		{"LocalHost", true},
		{"localhost.", true},
		{"127.0.0.1", true},
		{"127.8.9.10", true},
		{"::1", true},
		{"::ffff:127.0.0.1", false},
		{"0x7f.1", false},
		{"2130706433", false},
		{"127.1", false},
		{"localhost.example.com", false},
		{"10.0.0.1", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsLoopbackHost(tt.host); got != tt.want {
			t.Errorf("IsLoopbackHost(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

func TestIsNumericHost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		host string
		want bool
	}{
		{"2130706433", true},
		{"0x7f.1", true},
		{"0x7F000001", true},
		{"0177.0.0.1", true},
		{"127.1", true},
		{"017700000001", true},
		{"1.2.3.4.", true},
		{"example.com", false},
		{"1.example", false},
		{"0xfoo", false},
		{"api.v2", false},
	}
	for _, tt := range tests {
		if got := isNumericHost(tt.host); got != tt.want {
			t.Errorf("isNumericHost(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}
