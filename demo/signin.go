package demo

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Limits of the approval page's password.
const (
	// MinPasswordLength is the shortest password IssuerOptions.Password
	// may be, in characters.
	MinPasswordLength = 8
	// MaxPasswordLength is the longest password IssuerOptions.Password may
	// be, in characters.
	MaxPasswordLength = 256
	// MaxSignInFailures is how many wrong passwords one client address may
	// send within SignInFailureWindow; after that the approval page refuses
	// that address, right password or not, until the window ends.
	MaxSignInFailures = 5
	// SignInFailureWindow is the period, from an address's first wrong
	// password, over which MaxSignInFailures counts.
	SignInFailureWindow = 15 * time.Minute

	maxFailureAddresses = 10000
)

// failureLimiter counts wrong passwords per client address (an IPv4
// address, or the /64 of an IPv6 address). Behind a local tunnel every
// visitor arrives from loopback, so there the limit holds for everyone at
// once: a demo accepts that.
type failureLimiter struct {
	mu      sync.Mutex
	entries map[netip.Prefix]*failureEntry
}

type failureEntry struct {
	count int
	ends  time.Time // end of the window that began with the first failure
}

func newFailureLimiter() *failureLimiter {
	return &failureLimiter{entries: make(map[netip.Prefix]*failureEntry)}
}

// clientAddress is the address the failures of r are counted under: the
// peer of the connection (no forwarding header is believed).
func clientAddress(r *http.Request) netip.Prefix {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}
	}
	ip = ip.Unmap().WithZone("")
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// blocked reports whether addr has used up its failures, and until when.
func (l *failureLimiter) blocked(addr netip.Prefix, now time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.entries[addr]
	if !ok || !now.Before(e.ends) {
		return time.Time{}, false
	}
	return e.ends, e.count >= MaxSignInFailures
}

// fail records a wrong password from addr.
func (l *failureLimiter) fail(addr netip.Prefix, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.entries[addr]; ok && now.Before(e.ends) {
		e.count++
		return
	}
	for k, e := range l.entries {
		if !now.Before(e.ends) {
			delete(l.entries, k)
		}
	}
	makeRoom(l.entries, maxFailureAddresses, func(e *failureEntry) time.Time { return e.ends })
	l.entries[addr] = &failureEntry{count: 1, ends: now.Add(SignInFailureWindow)}
}
