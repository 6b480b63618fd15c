package safehttp

import (
	"fmt"
	"net/netip"
)

// RefusedError reports a fetch refused by the outbound rules before any
// connection was made: its URL (scheme or host name), or an address its
// host is or resolves to.
type RefusedError struct {
	// Host is the host as the URL names it (without port or brackets).
	Host string
	// Addr is the refused address; the zero Addr when the URL itself was
	// refused before an address was known.
	Addr netip.Addr
	// Reason says what was refused, e.g. "link-local (cloud metadata)
	// address" or "plain http to a host that is not loopback".
	Reason string
	// Hint says how to allow it or what to do instead; it may be empty.
	Hint string
}

// Error implements error, e.g. "refusing to connect to 169.254.169.254:
// link-local (cloud metadata) address; allow it with outbound.allow_cidrs".
func (e *RefusedError) Error() string {
	target := e.Host
	switch {
	case !e.Addr.IsValid(), parsesTo(target, e.Addr):
		// The URL was refused, or its host is the address itself.
	case target == "":
		target = e.Addr.String()
	default:
		target = fmt.Sprintf("%s (%s)", target, e.Addr)
	}
	msg := "refusing to connect"
	if target != "" {
		msg += " to " + target
	}
	msg += ": " + e.Reason
	if e.Hint != "" {
		msg += "; " + e.Hint
	}
	return msg
}

// TooLargeError reports a response body longer than
// Options.MaxResponseBytes. Reading the body returns it once the limit is
// passed, or at once when the Content-Length announces more.
type TooLargeError struct {
	// Limit is the largest body accepted, in bytes.
	Limit int64
}

// Error implements error.
func (e *TooLargeError) Error() string {
	return fmt.Sprintf("response body exceeds %d bytes", e.Limit)
}

// StatusError reports an answer of Client.Get or Client.Do whose status is
// not 2xx. A 3xx is one: redirects are never followed.
type StatusError struct {
	// Method and URL are those of the request (the URL without password).
	Method, URL string
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// Location is the Location header of a redirect, if any.
	Location string
}

// Error implements error.
func (e *StatusError) Error() string {
	if e.StatusCode >= 300 && e.StatusCode < 400 {
		msg := fmt.Sprintf("%s %s: HTTP %d redirect not followed (redirects are refused)", e.Method, e.URL, e.StatusCode)
		if e.Location != "" {
			msg += "; it points to " + e.Location
		}
		return msg
	}
	return fmt.Sprintf("%s %s: HTTP %d, want 2xx", e.Method, e.URL, e.StatusCode)
}

// parsesTo reports whether host is a literal of a.
func parsesTo(host string, a netip.Addr) bool {
	h, err := netip.ParseAddr(host)
	return err == nil && h == a
}
