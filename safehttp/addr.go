package safehttp

import (
	"fmt"
	"net/netip"
	"strings"
)

// Classify names the class of address a refuses by default, as a noun
// phrase such as "link-local (cloud metadata) address", or returns "" for
// an address that may be reached (a public unicast address). The zone of
// an IPv6 address is ignored.
//
// Refused classes:
//
//   - unspecified: 0.0.0.0/8 and ::
//   - loopback: 127.0.0.0/8 and ::1
//   - private (RFC 1918): 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16
//   - shared (CGNAT, RFC 6598): 100.64.0.0/10
//   - link-local: 169.254.0.0/16 (169.254.169.254 is the cloud metadata
//     address) and fe80::/10
//   - unique-local: fc00::/7 (fd00:ec2::254 is the AWS metadata address)
//   - site-local (deprecated): fec0::/10
//   - multicast: 224.0.0.0/4 and ff00::/8
//   - broadcast: 255.255.255.255, and the reserved 240.0.0.0/4
//   - reserved: 192.0.0.0/24 (IETF protocol assignments), 198.18.0.0/15
//     (benchmarking)
//   - IPv4-mapped IPv6 (::ffff:0:0/96), always, whatever it embeds, and
//     IPv4-compatible IPv6 (::/96, deprecated)
//   - NAT64 (64:ff9b::/96), 6to4 (2002::/16) and Teredo (2001::/32)
//     addresses that embed a refused IPv4 address, and the local-use NAT64
//     prefix 64:ff9b:1::/48
func Classify(a netip.Addr) string {
	a = a.WithZone("")
	switch {
	case !a.IsValid():
		return "invalid address"
	case a.Is4():
		return classify4(a)
	default:
		return classify6(a)
	}
}

// prefix4 is the IPv4 prefix a.b.c.d/bits.
func prefix4(a, b, c, d byte, bits int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{a, b, c, d}), bits)
}

// prefix6 parses a literal IPv6 prefix; callers pass constants only.
func prefix6(s string) netip.Prefix {
	return netip.MustParsePrefix(s)
}

// classify4 is Classify for an IPv4 address.
func classify4(a netip.Addr) string {
	b := a.As4()
	switch {
	case b == [4]byte{255, 255, 255, 255}:
		return "broadcast address"
	case b[0] == 0:
		return `unspecified ("this network", 0.0.0.0/8) address`
	case b[0] == 127:
		return "loopback address"
	case b[0] == 10, prefix4(172, 16, 0, 0, 12).Contains(a), prefix4(192, 168, 0, 0, 16).Contains(a):
		return "private (RFC 1918) address"
	case b == [4]byte{100, 100, 100, 200}:
		return "shared (CGNAT) address used for cloud metadata"
	case prefix4(100, 64, 0, 0, 10).Contains(a):
		return "shared (CGNAT, RFC 6598) address"
	case b == [4]byte{169, 254, 169, 254}:
		return "link-local (cloud metadata) address"
	case prefix4(169, 254, 0, 0, 16).Contains(a):
		return "link-local address"
	case prefix4(192, 0, 0, 0, 24).Contains(a):
		return "reserved (IETF protocol assignments) address"
	case prefix4(198, 18, 0, 0, 15).Contains(a):
		return "reserved (benchmarking) address"
	case a.IsMulticast():
		return "multicast address"
	case b[0] >= 240:
		return "reserved (240.0.0.0/4) address"
	}
	return ""
}

// classify6 is Classify for an IPv6 address (IPv4-mapped included).
func classify6(a netip.Addr) string {
	b := a.As16()
	switch {
	case a.Is4In6(): // first: netip's Is* methods look through the mapping
		return "IPv4-mapped IPv6 address (" + embedded(a.Unmap()) + ")"
	case a.IsUnspecified():
		return "unspecified (::) address"
	case a.IsLoopback():
		return "loopback address"
	case prefix6("::/96").Contains(a):
		return "IPv4-compatible IPv6 (deprecated) address (" + embedded(netip.AddrFrom4([4]byte(b[12:]))) + ")"
	case prefix6("64:ff9b::/96").Contains(a):
		return embedding("NAT64", netip.AddrFrom4([4]byte(b[12:])))
	case prefix6("64:ff9b:1::/48").Contains(a):
		return "local-use NAT64 (64:ff9b:1::/48) address"
	case prefix6("2002::/16").Contains(a):
		return embedding("6to4", netip.AddrFrom4([4]byte(b[2:6])))
	case prefix6("2001::/32").Contains(a):
		// Teredo: the server's address in clear, the client's inverted.
		if c := embedding("Teredo", netip.AddrFrom4([4]byte(b[4:8]))); c != "" {
			return c
		}
		client := [4]byte(b[12:])
		for i := range client {
			client[i] ^= 0xff
		}
		return embedding("Teredo", netip.AddrFrom4(client))
	case a == netip.MustParseAddr("fd00:ec2::254"):
		return "unique-local (cloud metadata) address"
	case prefix6("fc00::/7").Contains(a):
		return "unique-local address"
	case a.IsLinkLocalUnicast():
		return "link-local address"
	case prefix6("fec0::/10").Contains(a):
		return "site-local (deprecated) address"
	case a.IsMulticast():
		return "multicast address"
	}
	return ""
}

// embedded describes the IPv4 address v4 embedded in an IPv6 one.
func embedded(v4 netip.Addr) string {
	if c := classify4(v4); c != "" {
		return fmt.Sprintf("embeds %s, a %s", v4, c)
	}
	return "embeds " + v4.String()
}

// embedding classifies an IPv6 address of a translation scheme by the IPv4
// address it embeds: refused when that is, "" otherwise.
func embedding(scheme string, v4 netip.Addr) string {
	if classify4(v4) == "" {
		return ""
	}
	return fmt.Sprintf("%s address (%s)", scheme, embedded(v4))
}

// isLocalhost reports whether host is the name localhost (RFC 6761), which
// the client resolves to 127.0.0.1 and ::1 without asking a resolver.
func isLocalhost(host string) bool {
	return strings.EqualFold(strings.TrimSuffix(host, "."), "localhost")
}

// IsLoopbackHost reports whether host (without port or brackets) is
// localhost or a loopback IP literal; an IPv4-mapped IPv6 literal is not.
// Plain http is allowed only to such hosts (Options.AllowHTTPLoopback).
func IsLoopbackHost(host string) bool {
	if isLocalhost(host) {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && !a.Is4In6() && a.WithZone("").IsLoopback()
}

// isNumericHost reports whether host, which is not an IP literal, looks
// like an IPv4 address in another spelling (2130706433, 0x7f.1, 0177.0.0.1,
// 127.1): its last label is a decimal, octal or hexadecimal number. No DNS
// name ends so, but C resolvers read them as addresses; they are refused
// rather than resolved.
func isNumericHost(host string) bool {
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	last := strings.ToLower(labels[len(labels)-1])
	if hex, ok := strings.CutPrefix(last, "0x"); ok {
		return strings.Trim(hex, "0123456789abcdef") == ""
	}
	return last != "" && strings.Trim(last, "0123456789") == ""
}
