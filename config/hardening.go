package config

import (
	"net/url"
	"os"
	"slices"
	"time"

	"github.com/gatewaystack/gatewaystack/safehttp"
)

// Hardening defaults.
const (
	DefaultMaxTokenLifetime        = 24 * time.Hour
	DefaultJWKSMaxStale            = time.Hour
	DefaultReadHeaderTimeout       = 10 * time.Second
	DefaultReadTimeout             = 30 * time.Second
	DefaultIdleTimeout             = 120 * time.Second
	DefaultMaxHeaderBytes          = 32 << 10
	DefaultMaxConcurrent           = 1024
	DefaultMaxConcurrentPerSubject = 64
	DefaultGCPercent               = 400
	DefaultMaxSessionsPerSubject   = 256
	DefaultMaxStreamsPerSession    = 4
	DefaultMaxStreamsPerSubject    = 32
)

func (c *Config) setHardeningDefaults() {
	a := &c.Auth
	if a.MaxTokenLifetime == 0 {
		a.MaxTokenLifetime = DefaultMaxTokenLifetime
	}
	if a.JWKSMaxStale == 0 {
		a.JWKSMaxStale = DefaultJWKSMaxStale
	}
	s := &c.Server
	if s.ReadHeaderTimeout == 0 {
		s.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if s.ReadTimeout == 0 {
		s.ReadTimeout = DefaultReadTimeout
	}
	if s.IdleTimeout == 0 {
		s.IdleTimeout = DefaultIdleTimeout
	}
	if s.MaxHeaderBytes == 0 {
		s.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if s.MaxConcurrent == 0 {
		s.MaxConcurrent = DefaultMaxConcurrent
	}
	if s.MaxConcurrentPerSubject == 0 {
		s.MaxConcurrentPerSubject = DefaultMaxConcurrentPerSubject
	}
	if s.GCPercent == 0 {
		s.GCPercent = DefaultGCPercent
	}
	if s.MaxSessionsPerSubject == 0 {
		s.MaxSessionsPerSubject = DefaultMaxSessionsPerSubject
	}
	if s.MaxStreamsPerSession == 0 {
		s.MaxStreamsPerSession = DefaultMaxStreamsPerSession
	}
	if s.MaxStreamsPerSubject == 0 {
		s.MaxStreamsPerSubject = DefaultMaxStreamsPerSubject
	}
}

// allowedTokenTypes are the typ values auth.token_types may list.
var allowedTokenTypes = []string{"at+jwt", "application/at+jwt", "JWT"}

func (c *Config) validateHardening(add func(field, format string, args ...any)) {
	a := c.Auth
	if a.MaxTokenLifetime < time.Minute || a.MaxTokenLifetime > 366*24*time.Hour {
		add("auth.max_token_lifetime", "%s is out of range; use 1m to 8784h, e.g. 24h (the default)", a.MaxTokenLifetime)
	}
	if a.JWKSMaxStale < time.Minute || a.JWKSMaxStale > 30*24*time.Hour {
		add("auth.jwks_max_stale", "%s is out of range; use 1m to 720h, e.g. 1h (the default)", a.JWKSMaxStale)
	}
	for i, t := range a.TokenTypes {
		if !slices.Contains(allowedTokenTypes, t) {
			add("auth.token_types", "entry %d %q is not an access-token type; use at+jwt (RFC 9068), application/at+jwt or JWT", i, t)
		}
	}
	s := c.Server
	for _, d := range []struct {
		field string
		v     time.Duration
	}{{"server.read_header_timeout", s.ReadHeaderTimeout}, {"server.read_timeout", s.ReadTimeout}, {"server.idle_timeout", s.IdleTimeout}} {
		if d.v < time.Millisecond || d.v > time.Hour {
			add(d.field, "%s is out of range; use 1ms to 1h", d.v)
		}
	}
	if s.MaxHeaderBytes < 4096 || s.MaxHeaderBytes > 1<<20 {
		add("server.max_header_bytes", "%d is out of range; use 4096 to 1048576 (default 32768)", s.MaxHeaderBytes)
	}
	if s.MaxConcurrent < 1 || s.MaxConcurrent > 1_000_000 {
		add("server.max_concurrent", "%d is out of range; use 1 to 1000000 (default 1024)", s.MaxConcurrent)
	}
	if s.MaxConcurrentPerSubject < 1 || s.MaxConcurrentPerSubject > s.MaxConcurrent {
		add("server.max_concurrent_per_subject", "%d is out of range; use 1 to server.max_concurrent (%d); default 64", s.MaxConcurrentPerSubject, s.MaxConcurrent)
	}
	if s.GCPercent < 25 || s.GCPercent > 10000 {
		add("server.gc_percent", "%d is out of range; use 25 to 10000 (default 400; the GOGC environment variable, when set, wins)", s.GCPercent)
	}
	if s.MaxSessionsPerSubject < 1 || s.MaxSessionsPerSubject > 100_000 {
		add("server.max_sessions_per_subject", "%d is out of range; use 1 to 100000 (default 256; there is no setting without a cap)", s.MaxSessionsPerSubject)
	}
	if s.MaxStreamsPerSession < 1 || s.MaxStreamsPerSession > 1000 {
		add("server.max_streams_per_session", "%d is out of range; use 1 to 1000 (default 4)", s.MaxStreamsPerSession)
	}
	if s.MaxStreamsPerSubject < s.MaxStreamsPerSession || s.MaxStreamsPerSubject > 100_000 {
		add("server.max_streams_per_subject", "%d is out of range; use server.max_streams_per_session (%d) to 100000 (default 32)", s.MaxStreamsPerSubject, s.MaxStreamsPerSession)
	}
	t := c.TLS
	switch {
	case (t.CertFile == "") != (t.KeyFile == ""):
		add("tls", "set both tls.cert_file and tls.key_file, or neither")
	case t.CertFile != "":
		for _, f := range []struct{ field, path string }{{"tls.cert_file", t.CertFile}, {"tls.key_file", t.KeyFile}} {
			if _, err := os.Stat(f.path); err != nil {
				add(f.field, "%s cannot be read: %v", f.path, err)
			}
		}
	}
	for i, cidr := range c.Outbound.AllowCIDRs {
		// The parser the gateway uses at start-up, so a configuration that
		// validates also starts.
		if _, err := safehttp.ParsePrefixes([]string{cidr}); err != nil {
			add("outbound.allow_cidrs", "entry %d %q is not a CIDR; write e.g. 10.0.0.0/8", i, cidr)
		}
	}
	// The key set is fetched by the gateway itself: it must pass the
	// outbound rules.
	for _, f := range []struct{ field, raw string }{{"auth.jwks_uri", a.JWKSURI}} {
		u, err := url.Parse(f.raw)
		if err != nil || u.Scheme != "http" {
			continue
		}
		switch {
		case !safehttp.IsLoopbackHost(u.Hostname()):
			add(f.field, "%q is plain http to a host that is not loopback; the gateway fetches keys and metadata over https only", f.raw)
		case !c.Outbound.AllowHTTPLoopback:
			add(f.field, "%q is plain http; for local development set outbound.allow_http_loopback: true (never in production)", f.raw)
		}
	}
}
