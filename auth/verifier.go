package auth

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/rs/zerolog"
	"golang.org/x/sync/singleflight"
)

// Defaults of VerifierConfig.
const (
	DefaultSkew            = 60 * time.Second
	DefaultRefetchCooldown = 30 * time.Second
	DefaultJWKSRefresh     = 15 * time.Minute
	DefaultMaxTokenBytes   = 8 << 10
	DefaultCacheEntries    = 10000
	DefaultMaxLifetime     = 24 * time.Hour
	DefaultMaxStale        = time.Hour
)

// Bounds on what a token may carry, whatever the configuration.
const (
	// MaxKidBytes bounds the header kid. A kid is otherwise opaque: it is
	// only ever compared with the kids of the issuer's JWKS.
	MaxKidBytes = 256
	// MaxClaimValueBytes bounds sub, the tenant and the client id, which
	// end up in headers sent upstream.
	MaxClaimValueBytes = 256
	// maxJWKSBytes bounds a JWKS response body.
	maxJWKSBytes = 1 << 20
	// maxNumericDate is 9999-12-31T23:59:59Z, the largest exp, nbf or iat
	// accepted.
	maxNumericDate = 253402300799
)

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Issuer must equal the token's "iss" exactly.
	Issuer string
	// Audience must be the token's "aud" or one element of it.
	Audience string
	// JWKSURI is where the issuer's signing keys are fetched.
	JWKSURI string
	// Algorithms lists the accepted header "alg" values (default RS256).
	Algorithms []string
	// Skew is the clock skew tolerated on exp, nbf and iat (default 60 s).
	Skew time.Duration
	// TenantClaim names the claim holding the tenant (default "org_id").
	TenantClaim string
	// RolesClaim names the claim holding roles (default "roles").
	RolesClaim string
	// RefetchCooldown is the minimum time between JWKS refetches triggered
	// by unknown key ids (default 30 s).
	RefetchCooldown time.Duration
	// RefreshInterval is how often the JWKS is refreshed in the background
	// (default 15 min, and at most MaxStale/2).
	RefreshInterval time.Duration
	// MaxLifetime refuses tokens (token_lifetime_too_long) whose exp − iat
	// exceeds it, or, for a token without iat, whose exp − now exceeds it
	// plus Skew (default 24 h).
	MaxLifetime time.Duration
	// TokenTypes, when set, lists the accepted JOSE header "typ" values
	// (e.g. "at+jwt", RFC 9068); a token with another typ, or none, is
	// refused (token_type_not_allowed). Values are compared ignoring letter
	// case and an "application/" prefix (RFC 7515 §4.1.9), so "at+jwt"
	// also admits "application/at+jwt". Empty: any typ, or none.
	TokenTypes []string
	// MaxStale bounds how long the last successfully fetched key set keeps
	// verifying while the JWKS endpoint fails (an error status, a body that
	// is not a key set, no answer). Once the last successful fetch is older
	// than MaxStale, every token, also one verified before, is refused
	// with 503 jwks_unavailable until a fetch succeeds again; such a fetch
	// is tried on demand at most once per RefetchCooldown, besides the
	// background refresh (default 1 h).
	MaxStale time.Duration
	// MaxTokenBytes bounds the raw token (default 8 KiB).
	MaxTokenBytes int
	// CacheEntries bounds the verified-token cache (default 10000).
	CacheEntries int
	// HTTPClient fetches the JWKS; it should have a timeout.
	HTTPClient *http.Client
	// Logger receives JWKS fetch outcomes; never tokens.
	Logger zerolog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Verifier verifies RS256 (or other configured) JWT access tokens against an
// issuer's JWKS and returns the caller's Identity. It is safe for concurrent
// use; Close releases its goroutines.
type Verifier struct {
	cfg     VerifierConfig
	ctrl    httprc.Controller
	res     *httprc.ResourceBase[jwk.Set] // the cached JWKS; Resource() is an atomic load
	life    context.Context               // cancelled by Close; bounds every JWKS fetch
	cancel  context.CancelFunc
	done    chan struct{}
	fetches singleflight.Group

	typs       []string          // TokenTypes, normalised by typName
	claimNames map[string]string // registered claim names by foldName

	lastRefetch    atomic.Int64 // cfg.Now unix nanos of the last unknown-kid JWKS refetch
	lastStaleFetch atomic.Int64 // cfg.Now unix nanos of the last refetch of a stale key set
	ready          atomic.Bool
	fetchCount     atomic.Int64
	fetchFailed    atomic.Int64
	lastOK         atomic.Int64 // wall-clock unix nanos of the last good key set
	lastGood       atomic.Int64 // cfg.Now unix nanos of the last good key set
	// keys holds the RFC 7638 thumbprints of the keys of the last good key
	// set; a cached verification counts only while its key is among them.
	keys atomic.Pointer[map[[32]byte]struct{}]

	mu       sync.Mutex
	verified map[[32]byte]verifiedToken
}

// verifiedToken is an entry of the verified-token cache: the identity and
// the thumbprint of the key that verified the token.
type verifiedToken struct {
	id  Identity
	key [32]byte
}

// NewVerifier validates cfg, registers the JWKS with a background-refreshing
// cache and starts fetching it (with retries) without blocking: a request
// that arrives before any key is loaded fetches on demand.
func NewVerifier(ctx context.Context, cfg VerifierConfig) (*Verifier, error) {
	if cfg.Issuer == "" || cfg.Audience == "" || cfg.JWKSURI == "" {
		return nil, errors.New("auth: verifier needs issuer, audience and jwks_uri")
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = []string{"RS256"}
	}
	for _, a := range cfg.Algorithms {
		if _, ok := jwa.LookupSignatureAlgorithm(a); !ok || a == "none" || strings.HasPrefix(a, "HS") {
			return nil, fmt.Errorf("auth: algorithm %q is not allowed for access tokens", a)
		}
	}
	if cfg.Skew < 0 || cfg.RefetchCooldown < 0 || cfg.RefreshInterval < 0 || cfg.MaxTokenBytes < 0 || cfg.CacheEntries < 0 ||
		cfg.MaxLifetime < 0 || cfg.MaxStale < 0 {
		return nil, errors.New("auth: verifier durations and limits must not be negative")
	}
	if cfg.Skew == 0 {
		cfg.Skew = DefaultSkew
	}
	if cfg.TenantClaim == "" {
		cfg.TenantClaim = "org_id"
	}
	if cfg.RolesClaim == "" {
		cfg.RolesClaim = "roles"
	}
	if cfg.RefetchCooldown == 0 {
		cfg.RefetchCooldown = DefaultRefetchCooldown
	}
	if cfg.MaxLifetime == 0 {
		cfg.MaxLifetime = DefaultMaxLifetime
	}
	if cfg.MaxStale == 0 {
		cfg.MaxStale = DefaultMaxStale
	}
	if cfg.RefreshInterval == 0 {
		cfg.RefreshInterval = DefaultJWKSRefresh
	}
	// A key set that is never refreshed in time goes stale with the
	// endpoint healthy: refresh at least twice per MaxStale.
	cfg.RefreshInterval = max(min(cfg.RefreshInterval, cfg.MaxStale/2), time.Second)
	if cfg.MaxTokenBytes == 0 {
		cfg.MaxTokenBytes = DefaultMaxTokenBytes
	}
	if cfg.CacheEntries == 0 {
		cfg.CacheEntries = DefaultCacheEntries
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	v := &Verifier{cfg: cfg, verified: make(map[[32]byte]verifiedToken), done: make(chan struct{})}
	for _, t := range cfg.TokenTypes {
		n := typName(t)
		if n == "" {
			return nil, errors.New("auth: token types must not be empty")
		}
		v.typs = append(v.typs, n)
	}
	v.claimNames = foldedNames(append(slices.Clone(registeredClaims), cfg.TenantClaim, cfg.RolesClaim)...)
	counting := &countingClient{c: cfg.HTTPClient, n: &v.fetchCount, failed: &v.fetchFailed}

	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	v.life, v.cancel = bg, cancel
	ctrl, err := httprc.NewClient().Start(bg)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("auth: start jwks cache: %w", err)
	}
	v.ctrl = ctrl
	// The resource is kept: reading its current set is an atomic load,
	// where a lookup is a round trip through the cache's goroutine that
	// every verification would queue on.
	v.res, err = httprc.NewResource[jwk.Set](cfg.JWKSURI, httprc.TransformFunc[jwk.Set](v.transform),
		httprc.WithHTTPClient(counting), httprc.WithConstantInterval(cfg.RefreshInterval))
	if err == nil {
		err = ctrl.Add(bg, v.res, httprc.WithWaitReady(false))
	}
	if err != nil {
		cancel()
		_ = ctrl.ShutdownContext(context.Background())
		return nil, fmt.Errorf("auth: register jwks %s: %w", cfg.JWKSURI, err)
	}
	go v.warmUp(bg)
	return v, nil
}

// transform turns a JWKS answer (status 200) into a key set. Keys that
// cannot be parsed, RSA keys under 2048 bits among them, are dropped
// rather than failing the whole set; a body that is not a key set, or
// whose keys all fail to parse, fails the fetch and the last good set
// stays in use. Only here is a fetch known to be good, so only here is the
// staleness clock reset, and the thumbprints of the set's keys recorded:
// cached verifications by a key that is no longer among them stop counting.
func (v *Verifier) transform(_ context.Context, res *http.Response) (jwk.Set, error) {
	buf, err := io.ReadAll(io.LimitReader(res.Body, maxJWKSBytes+1))
	if err == nil && len(buf) > maxJWKSBytes {
		err = fmt.Errorf("the body exceeds %d bytes", maxJWKSBytes)
	}
	var set jwk.Set
	if err == nil {
		set, err = jwk.Parse(buf, jwk.WithIgnoreParseError(true))
	}
	if err == nil && set.Len() == 0 {
		// An empty set is an answer; a set none of whose keys parse is not.
		var doc struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if json.Unmarshal(buf, &doc) != nil || len(doc.Keys) > 0 {
			err = errors.New("none of the keys of the set can be used")
		}
	}
	if err != nil {
		v.fetchFailed.Add(1)
		return nil, fmt.Errorf("read jwks: %w", err)
	}
	keys := make(map[[32]byte]struct{}, set.Len())
	for i := range set.Len() {
		if k, ok := set.Key(i); ok {
			if tp, ok := thumbprint(k); ok {
				keys[tp] = struct{}{}
			}
		}
	}
	v.keys.Store(&keys)
	v.lastGood.Store(v.cfg.Now().UnixNano())
	v.lastOK.Store(time.Now().UnixNano())
	return set, nil
}

// thumbprint returns the RFC 7638 SHA-256 thumbprint of k, which names the
// key material whatever its kid.
func thumbprint(k jwk.Key) ([32]byte, bool) {
	var tp [32]byte
	b, err := k.Thumbprint(crypto.SHA256)
	if err != nil || len(b) != len(tp) {
		return tp, false
	}
	copy(tp[:], b)
	return tp, true
}

// keyPresent reports whether the last good key set holds the key of
// thumbprint tp.
func (v *Verifier) keyPresent(tp [32]byte) bool {
	keys := v.keys.Load()
	if keys == nil {
		return false
	}
	_, ok := (*keys)[tp]
	return ok
}

// countingClient counts JWKS fetches and the failed ones (exposed for
// health, metrics and tests).
type countingClient struct {
	c      *http.Client
	n      *atomic.Int64
	failed *atomic.Int64
}

func (c *countingClient) Do(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	resp, err := c.c.Do(r)
	if err != nil || resp.StatusCode != http.StatusOK {
		c.failed.Add(1)
	}
	return resp, err
}

// JWKSStats describes the verifier's key set and its fetches.
type JWKSStats struct {
	// Fetches and Failures count JWKS HTTP fetches since start (a failure:
	// no answer, a status other than 200, or a body that is not a key set).
	Fetches, Failures int64
	// LastOK is when a fetch last loaded a key set (zero: never).
	LastOK time.Time
	// Keys is how many keys the loaded set holds (0 before the first load).
	Keys int
	// Ready: a key set has been loaded at least once.
	Ready bool
	// Stale: the last good key set is older than MaxStale, so every token
	// is refused with 503 jwks_unavailable until a fetch succeeds.
	Stale bool
}

// JWKSStats returns the key set's state.
func (v *Verifier) JWKSStats() JWKSStats {
	st := JWKSStats{Fetches: v.fetchCount.Load(), Failures: v.fetchFailed.Load(), Ready: v.ready.Load(), Stale: v.stale(v.cfg.Now())}
	if ns := v.lastOK.Load(); ns != 0 {
		st.LastOK = time.Unix(0, ns)
	}
	if st.Ready {
		if set := v.res.Resource(); set != nil {
			st.Keys = set.Len()
		}
	}
	return st
}

// warmUp loads the key set at start-up, retrying with capped exponential
// backoff until it succeeds or the verifier is closed.
func (v *Verifier) warmUp(ctx context.Context) {
	defer close(v.done)
	backoff := 500 * time.Millisecond
	for {
		if _, err := v.keySet(ctx, v.cfg.Now()); err == nil {
			return
		} else {
			v.cfg.Logger.Warn().Err(err).Str("jwks_uri", v.cfg.JWKSURI).Dur("retry_in", backoff).Msg("jwks not loaded yet")
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// Close stops the background JWKS refresh and ends any fetch in flight. It
// may be called more than once. Afterwards Verify still answers at once: it
// verifies with the keys already loaded and never fetches again, so a
// verifier that never loaded keys answers 503 jwks_unavailable.
func (v *Verifier) Close() error {
	v.cancel()
	<-v.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := v.ctrl.ShutdownContext(ctx); err != nil {
		return fmt.Errorf("auth: stop jwks cache: %w", err)
	}
	return nil
}

// Ready reports whether a key set has been loaded at least once.
func (v *Verifier) Ready() bool { return v.ready.Load() }

// JWKSFetches returns how many HTTP fetches of the JWKS were made.
func (v *Verifier) JWKSFetches() int64 { return v.fetchCount.Load() }

// keySet returns the key set to verify with at now. When none has been
// loaded yet it fetches one (single-flight); these initial fetches do not
// count against any cooldown: they are not caused by anything a caller
// controls. When the loaded set is older than MaxStale it is not used: a
// fresh fetch is tried, at most once per RefetchCooldown, and until one
// succeeds the answer is an error (503 jwks_unavailable).
func (v *Verifier) keySet(ctx context.Context, now time.Time) (jwk.Set, error) {
	if !v.ready.Load() {
		return v.fetch(ctx, "initial", func() error { return nil })
	}
	set := v.res.Resource()
	if set == nil {
		return v.fetch(ctx, "initial", func() error { return nil })
	}
	if !v.stale(now) {
		return set, nil
	}
	fresh, err := v.fetch(ctx, "stale", func() error {
		n := v.cfg.Now().UnixNano()
		if last := v.lastStaleFetch.Load(); last != 0 && n-last < int64(v.cfg.RefetchCooldown) {
			return errRefetchCooldown
		}
		v.lastStaleFetch.Store(n)
		return nil
	})
	if err == nil {
		return fresh, nil
	}
	// Refused by the cooldown: another caller's fetch may just have
	// succeeded.
	if errors.Is(err, errRefetchCooldown) && !v.stale(v.cfg.Now()) {
		if set := v.res.Resource(); set != nil {
			return set, nil
		}
	}
	last := time.Unix(0, v.lastGood.Load())
	return nil, fmt.Errorf("the key set was last loaded %s ago, more than the %s it may be used without a refresh: %w",
		now.Sub(last).Round(time.Second), v.cfg.MaxStale, err)
}

// stale reports whether the last good key set is older than MaxStale at
// now. A verifier that never loaded a key set is not stale: it has none.
func (v *Verifier) stale(now time.Time) bool {
	last := v.lastGood.Load()
	return last != 0 && now.UnixNano()-last > int64(v.cfg.MaxStale)
}

// refetchForKid fetches the JWKS because a token named a kid the cached set
// lacks. All concurrent callers share one fetch, and at most one such fetch
// starts per cooldown, so a flood of random kids costs at most one fetch per
// cooldown. A caller that is refused by the cooldown gets the current cached
// set: another caller's refetch may just have loaded the key it needs.
func (v *Verifier) refetchForKid(ctx context.Context) (jwk.Set, error) {
	set, err := v.fetch(ctx, "kid", func() error {
		now := v.cfg.Now().UnixNano()
		if last := v.lastRefetch.Load(); last != 0 && now-last < int64(v.cfg.RefetchCooldown) {
			return errRefetchCooldown
		}
		v.lastRefetch.Store(now)
		return nil
	})
	if errors.Is(err, errRefetchCooldown) {
		if cached := v.res.Resource(); cached != nil {
			return cached, nil
		}
	}
	return set, err
}

// fetch refreshes the JWKS once for all concurrent callers of the same kind.
// admit runs inside the flight and may refuse the fetch. The fetch is bound
// to the verifier's lifetime, not to the caller's request, so a caller that
// gives up does not cancel it for the others, and Close does.
func (v *Verifier) fetch(ctx context.Context, kind string, admit func() error) (jwk.Set, error) {
	ch := v.fetches.DoChan(kind, func() (any, error) {
		if err := admit(); err != nil {
			return nil, err
		}
		fctx, cancel := context.WithTimeout(v.life, 10*time.Second)
		defer cancel()
		if err := v.ctrl.Refresh(fctx, v.cfg.JWKSURI); err != nil {
			if kind == "stale" {
				v.cfg.Logger.Warn().Err(err).Str("jwks_uri", v.cfg.JWKSURI).Dur("max_stale", v.cfg.MaxStale).
					Msg("jwks still unavailable; tokens are refused until it loads")
			}
			return nil, fmt.Errorf("fetch jwks %s: %w", v.cfg.JWKSURI, err)
		}
		set := v.res.Resource()
		if set == nil {
			return nil, fmt.Errorf("fetch jwks %s: no key set after a successful refresh", v.cfg.JWKSURI)
		}
		v.ready.Store(true)
		v.cfg.Logger.Info().Str("jwks_uri", v.cfg.JWKSURI).Int("keys", set.Len()).Str("cause", kind).Msg("jwks loaded")
		return set, nil
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(jwk.Set), nil
	}
}

var errRefetchCooldown = errors.New("jwks refetch is cooling down")

// Names the verifier guards against letter-case variants ("Alg", "KID",
// "Sub", "ſub"): another parser, or a struct decoder matching names
// case-insensitively, could read such a name as the registered one.
var (
	registeredHeaders = foldedNames("alg", "kid", "typ", "cty", "crit", "jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256", "b64", "zip", "enc")
	registeredClaims  = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "scope", "scp", "permissions",
		"client_id", "azp", "nonce", "at_hash", "c_hash", "auth_time", "cnf", "act", "may_act"}
)

// refusedHeaders are header parameters a token may not carry at all: crit
// (extensions the verifier does not implement), b64 (RFC 7797 unencoded
// payloads), and parameters that carry or point at a key (jku, x5u, jwk,
// x5c). Keys come only from the configured JWKS; nothing a token names is
// ever fetched or trusted.
var refusedHeaders = []string{"crit", "b64", "jku", "x5u", "jwk", "x5c"}

// idTokenClaims mark an OpenID Connect ID token (OIDC Core §2, §3.1.3.6,
// §3.3.2.11); an access token has no use for them.
var idTokenClaims = []string{"nonce", "at_hash", "c_hash"}

// b64url decodes the parts of a compact JWS: unpadded base64url whose
// unused trailing bits are zero, so one token has one spelling.
var b64url = base64.RawURLEncoding.Strict()

// Verify checks raw and returns the caller's Identity. Every failure is an
// *Error wrapping ErrUnauthorized; see the package doc for the steps.
func (v *Verifier) Verify(ctx context.Context, raw string) (Identity, error) {
	if len(raw) > v.cfg.MaxTokenBytes {
		return Identity{}, invalidToken(ReasonTokenTooLarge, "the token is too large", nil)
	}
	key := sha256.Sum256([]byte(raw))
	now := v.cfg.Now()
	v.mu.Lock()
	e, ok := v.verified[key]
	v.mu.Unlock()
	if ok {
		switch {
		case !now.Before(e.id.ExpiresAt.Add(v.cfg.Skew)):
			v.forget(key)
			return Identity{}, invalidToken(ReasonTokenExpired, "the token has expired", nil)
		case !v.keyPresent(e.key):
			// The issuer no longer publishes the key that verified it:
			// verify it again against the current set, which refuses it.
			v.forget(key)
		case !v.stale(now):
			return e.id, nil
		}
		// Otherwise the keys that verified it are too old to be trusted
		// any more: verify it again with a fresh key set, or refuse it.
	}
	id, tp, err := v.verify(ctx, raw, now)
	if err != nil {
		return Identity{}, err
	}
	v.remember(key, verifiedToken{id: id, key: tp}, now)
	return id, nil
}

// forget drops a token from the verified-token cache.
func (v *Verifier) forget(key [32]byte) {
	v.mu.Lock()
	delete(v.verified, key)
	v.mu.Unlock()
}

// remember caches a verification. A token whose key has no thumbprint is
// not cached: the cache could not tell when that key leaves the set.
func (v *Verifier) remember(key [32]byte, e verifiedToken, now time.Time) {
	if e.key == ([32]byte{}) {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.verified) >= v.cfg.CacheEntries {
		for k, e := range v.verified {
			if !now.Before(e.id.ExpiresAt.Add(v.cfg.Skew)) {
				delete(v.verified, k)
			}
		}
		if len(v.verified) >= v.cfg.CacheEntries {
			clear(v.verified)
		}
	}
	v.verified[key] = e
}

// verify runs every check on a token that is not in the cache and returns
// the identity and the thumbprint of the key that verified it (zero if it
// has none). Everything that can be decided from the token's text alone is
// decided before any key is looked up, so malformed tokens never cause a
// JWKS fetch.
func (v *Verifier) verify(ctx context.Context, raw string, now time.Time) (Identity, [32]byte, error) {
	var noKey [32]byte
	// Compact serialization only: base64url characters and two dots. A
	// JWS JSON serialization ('{'), padding, '+', '/' and whitespace all
	// stop here.
	dots := 0
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '.':
			dots++
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return Identity{}, noKey, invalidToken(ReasonTokenMalformed, "the token is not a compact JWS of base64url parts", nil)
		}
	}
	switch dots {
	case 2:
	case 4:
		return Identity{}, noKey, invalidToken(ReasonTokenEncrypted, "encrypted tokens (JWE) are not accepted", nil)
	default:
		return Identity{}, noKey, invalidToken(ReasonTokenMalformed, "the token is not a compact JWS", nil)
	}
	h64, rest, _ := strings.Cut(raw, ".")
	p64, s64, _ := strings.Cut(rest, ".")

	hdrBytes, err := b64url.DecodeString(h64)
	if err != nil {
		return Identity{}, noKey, invalidToken(ReasonTokenMalformed, "the token header is not base64url", err)
	}
	hdr, err := decodeObject(hdrBytes)
	if err != nil {
		return Identity{}, noKey, invalidToken(ReasonTokenMalformed, "the token header is not a JSON object with distinct names", err)
	}
	sigAlg, kid, aerr := v.checkHeader(hdr)
	if aerr != nil {
		return Identity{}, noKey, aerr
	}

	payload, err := b64url.DecodeString(p64)
	if err != nil {
		return Identity{}, noKey, invalidToken(ReasonTokenMalformed, "the token payload is not base64url", err)
	}
	claims, err := decodeObject(payload)
	if errors.Is(err, errDuplicateName) {
		return Identity{}, noKey, invalidToken(ReasonClaimDuplicate, "the token repeats a claim", err)
	}
	if err != nil {
		return Identity{}, noKey, invalidToken(ReasonTokenMalformed, "the token payload is not a JSON object", err)
	}
	if aerr := v.checkClaimShapes(claims); aerr != nil {
		return Identity{}, noKey, aerr
	}
	if s64 == "" {
		return Identity{}, noKey, invalidToken(ReasonTokenMalformed, "the token has no signature", nil)
	}
	if _, err := b64url.DecodeString(s64); err != nil {
		return Identity{}, noKey, invalidToken(ReasonTokenMalformed, "the token signature is not base64url", err)
	}

	set, err := v.keySet(ctx, now)
	if err != nil {
		return Identity{}, noKey, &Error{Status: http.StatusServiceUnavailable, Reason: ReasonJWKSUnavailable,
			Description: "the issuer's signing keys cannot be loaded; try again shortly", Err: err}
	}
	key, match := lookupKey(set, kid, sigAlg)
	if match == keyNotFound {
		if fresh, ferr := v.refetchForKid(ctx); ferr == nil {
			key, match = lookupKey(fresh, kid, sigAlg)
		}
	}
	switch match {
	case keyAmbiguous:
		return Identity{}, noKey, invalidToken(ReasonKidMissing, "the token names no kid and the issuer has several keys", nil)
	case keyNotFound:
		return Identity{}, noKey, invalidToken(ReasonKeyUnknown, "the token is signed by an unknown key", nil)
	}

	tok, err := jwt.Parse([]byte(raw),
		jwt.WithKey(sigAlg, key),
		jwt.WithValidate(true),
		jwt.WithIssuer(v.cfg.Issuer),
		jwt.WithAudience(v.cfg.Audience),
		jwt.WithAcceptableSkew(v.cfg.Skew),
		jwt.WithRequiredClaim("exp"),
		jwt.WithRequiredClaim("sub"),
		jwt.WithClock(jwt.ClockFunc(v.cfg.Now)),
	)
	if err != nil {
		return Identity{}, noKey, classify(err)
	}
	if aerr := v.checkLifetime(claims, now); aerr != nil {
		return Identity{}, noKey, aerr
	}
	for _, name := range idTokenClaims {
		if _, ok := claims[name]; ok {
			return Identity{}, noKey, invalidToken(ReasonIDTokenPresented, "an ID token is not an access token; send the access token", nil)
		}
	}
	exp, _ := tok.Expiration()
	id, err := v.identity(claims, exp)
	if err != nil {
		return Identity{}, noKey, err
	}
	tp, _ := thumbprint(key)
	return id, tp, nil
}

// checkHeader checks the decoded JOSE header and returns the algorithm
// and kid to verify with.
func (v *Verifier) checkHeader(hdr map[string]any) (jwa.SignatureAlgorithm, string, *Error) {
	var none jwa.SignatureAlgorithm
	for name := range hdr {
		if canonical, ok := caseVariant(name, registeredHeaders); ok {
			return none, "", invalidToken(ReasonTokenMalformed, "the token header spells "+canonical+" in another letter case", nil)
		}
	}
	alg, isString := hdr["alg"].(string)
	if !isString || !slices.Contains(v.cfg.Algorithms, alg) {
		return none, "", invalidToken(ReasonAlgNotAllowed, "the token algorithm is not allowed", nil)
	}
	for _, name := range refusedHeaders {
		if _, ok := hdr[name]; ok {
			return none, "", invalidToken(ReasonHeaderNotAllowed, "the token header carries a field that is not accepted", nil)
		}
	}
	var kid string
	if raw, ok := hdr["kid"]; ok {
		s, isString := raw.(string)
		switch {
		case !isString:
			return none, "", invalidToken(ReasonTokenMalformed, "the token kid is not a string", nil)
		case s == "":
			return none, "", invalidToken(ReasonTokenMalformed, "the token kid is empty", nil)
		case len(s) > MaxKidBytes:
			return none, "", invalidToken(ReasonTokenMalformed, "the token kid is too long", nil)
		}
		kid = s
	}
	typ, hasTyp := hdr["typ"]
	ts, isString := typ.(string)
	if hasTyp && !isString {
		return none, "", invalidToken(ReasonTokenMalformed, "the token typ is not a string", nil)
	}
	if len(v.typs) > 0 && (!hasTyp || !slices.Contains(v.typs, typName(ts))) {
		return none, "", invalidToken(ReasonTokenTypeNotAllowed, "the token type (typ) is not accepted here", nil)
	}
	sigAlg, _ := jwa.LookupSignatureAlgorithm(alg)
	return sigAlg, kid, nil
}

// typName normalises a media type for comparison (RFC 7515 §4.1.9): letter
// case is ignored, and "application/" may be left out.
func typName(t string) string {
	t = strings.ToLower(strings.TrimSpace(t))
	return strings.TrimPrefix(t, "application/")
}

// checkClaimShapes checks what can be checked of the claims before the
// signature: no registered claim name in another letter case, and the JSON
// types and ranges of the registered claims. Time claims must be JSON
// numbers (not strings), nbf and iat from 0 and exp above 0, all up to the
// year 9999; iss, sub and jti must be strings and aud a string or an array
// of strings. Whether they are present is checked later.
func (v *Verifier) checkClaimShapes(claims map[string]any) *Error {
	for name := range claims {
		if canonical, ok := caseVariant(name, v.claimNames); ok {
			return invalidToken(ReasonClaimDuplicate, "the token spells the claim "+canonical+" in another letter case", nil)
		}
	}
	for _, name := range []string{"exp", "nbf", "iat"} {
		raw, ok := claims[name]
		if !ok {
			continue
		}
		f, isNumber := raw.(float64)
		lo := 0.0
		if name == "exp" {
			lo = math.SmallestNonzeroFloat64
		}
		if !isNumber || math.IsNaN(f) || f < lo || f > maxNumericDate {
			return invalidToken(ReasonClaimInvalid, "the token claim "+name+" is not a time in range", nil)
		}
	}
	for _, name := range []string{"iss", "sub", "jti"} {
		if raw, ok := claims[name]; ok {
			if _, isString := raw.(string); !isString {
				return invalidToken(ReasonClaimInvalid, "the token claim "+name+" is not a string", nil)
			}
		}
	}
	badAud := invalidToken(ReasonClaimInvalid, "the token claim aud is not a string or an array of strings", nil)
	if raw, ok := claims["aud"]; ok {
		switch aud := raw.(type) {
		case string:
		case []any:
			for _, e := range aud {
				if _, isString := e.(string); !isString {
					return badAud
				}
			}
		default:
			return badAud
		}
	}
	return nil
}

// checkLifetime refuses tokens issued for longer than MaxLifetime: exp −
// iat when iat is present, otherwise exp − now, which may exceed
// MaxLifetime by the clock skew.
func (v *Verifier) checkLifetime(claims map[string]any, now time.Time) *Error {
	exp, _ := claims["exp"].(float64) // present and a number: checked before
	limit := v.cfg.MaxLifetime.Seconds()
	if iat, ok := claims["iat"].(float64); ok {
		if exp-iat > limit {
			return invalidToken(ReasonTokenLifetimeTooLong, "the token lifetime (exp - iat) exceeds the maximum", nil)
		}
		return nil
	}
	nowSec := float64(now.UnixNano()) / 1e9
	if exp-nowSec > limit+v.cfg.Skew.Seconds() {
		return invalidToken(ReasonTokenLifetimeTooLong, "the token expires further ahead than the maximum lifetime", nil)
	}
	return nil
}

// classify maps jwx validation errors onto reason codes.
func classify(err error) *Error {
	switch {
	case errors.Is(err, jwt.TokenExpiredError()):
		return invalidToken(ReasonTokenExpired, "the token has expired", err)
	case errors.Is(err, jwt.TokenNotYetValidError()):
		return invalidToken(ReasonTokenNotYetValid, "the token is not valid yet", err)
	case errors.Is(err, jwt.InvalidIssuedAtError()):
		return invalidToken(ReasonTokenNotYetValid, "the token was issued in the future", err)
	case errors.Is(err, jwt.InvalidIssuerError()):
		return invalidToken(ReasonIssuerMismatch, "the token issuer is not trusted", err)
	case errors.Is(err, jwt.InvalidAudienceError()):
		return invalidToken(ReasonAudienceMismatch, "the token audience is not this resource", err)
	case errors.Is(err, jwt.MissingRequiredClaimError()):
		return invalidToken(ReasonClaimMissing, "the token lacks a required claim (exp or sub)", err)
	case errors.Is(err, jwt.ValidateError()):
		return invalidToken(ReasonClaimInvalid, "the token claims are invalid", err)
	default:
		return invalidToken(ReasonSignatureInvalid, "the token signature is invalid", err)
	}
}

// identity builds the canonical Identity from verified claims.
func (v *Verifier) identity(claims map[string]any, exp time.Time) (Identity, error) {
	id, err := IdentityFromClaims(claims, v.cfg.TenantClaim, v.cfg.RolesClaim)
	if err != nil {
		return Identity{}, err
	}
	id.ExpiresAt = exp
	return id, nil
}

// IdentityFromClaims builds the canonical Identity from a token's claims,
// reading the tenant and roles from the named claims ("org_id" and "roles"
// when empty). It checks nothing about the token itself: the Verifier calls
// it only after verifying the signature and the registered claims, and
// tools such as policy explain call it on claims they were given. ExpiresAt
// is left zero. The error is an *Error (no subject, unacceptable subject,
// tenant, client id or scope claim).
//
// The values that name the caller (sub, the tenant, the client id) are
// checked by checkIdentityValue: at most MaxClaimValueBytes of valid UTF-8,
// not empty or only whitespace, no leading or trailing whitespace, no
// control (Cc) or format (Cf) character, no U+2028 or U+2029 and no
// U+FFFD (what a JSON decoder makes of a lone surrogate escape). A value
// that fails is refused (claim_invalid), never cleaned up: a trimmed or
// cleaned value would be a second spelling of someone's identity. A sub
// that is absent is claim_missing. The tenant claim, when present and not
// null, must be a string; null counts as absent. Values that pass may still
// hold characters a header cannot carry raw (a comma, non-ASCII letters);
// upstream.EncodeIdentityValue encodes them where they are written into a
// header or query.
//
// Scopes are normalised by one rule:
//
//   - "scope" (RFC 8693 §4.2, RFC 9068 §2.2.3) and "scp" (used by Azure AD
//     as a space-separated string and by Okta as an array) are read alike:
//     each may be a string of scope tokens separated by spaces (U+0020) or
//     an array of strings; null counts as absent. Any other type (a number,
//     an object, an array holding a non-string) refuses the token
//     (claim_invalid), since the issuer's intent is unknown;
//   - when both are present the scopes are their union: they are two
//     spellings of one grant, signed by the same issuer;
//   - the "permissions" array (Auth0 RBAC) is added to the union; it is
//     read leniently: a non-array value and non-string entries are
//     ignored;
//   - the result keeps token order (scope, then scp, then permissions)
//     without duplicates, and drops every entry that is not an RFC 6749
//     scope-token (see Identity.Scopes).
func IdentityFromClaims(claims map[string]any, tenantClaim, rolesClaim string) (Identity, error) {
	if tenantClaim == "" {
		tenantClaim = "org_id"
	}
	if rolesClaim == "" {
		rolesClaim = "roles"
	}
	rawSub, ok := claims["sub"]
	if !ok || rawSub == nil {
		return Identity{}, invalidToken(ReasonClaimMissing, "the token has no subject", nil)
	}
	sub, ok := rawSub.(string)
	if !ok {
		return Identity{}, invalidToken(ReasonClaimInvalid, "the token claim sub is not a string", nil)
	}
	if aerr := checkIdentityValue("subject (sub)", sub); aerr != nil {
		return Identity{}, aerr
	}
	id := Identity{Subject: sub, Claims: claims}
	switch t := claims[tenantClaim].(type) {
	case nil:
	case string:
		if aerr := checkIdentityValue("tenant ("+tenantClaim+")", t); aerr != nil {
			return Identity{}, aerr
		}
		id.Tenant = t
	default:
		return Identity{}, invalidToken(ReasonClaimInvalid, "the token tenant ("+tenantClaim+") is not a JSON string; correct the claim at the identity provider", nil)
	}
	var scopes []string
	add := func(s string) {
		if isScopeToken(s) && !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	for _, name := range []string{"scope", "scp"} {
		switch s := claims[name].(type) {
		case nil:
		case string:
			for f := range strings.SplitSeq(s, " ") {
				add(f)
			}
		case []any:
			for _, e := range s {
				str, ok := e.(string)
				if !ok {
					return Identity{}, invalidToken(ReasonClaimInvalid, "the token claim "+name+" holds a non-string entry", nil)
				}
				add(str)
			}
		default:
			return Identity{}, invalidToken(ReasonClaimInvalid, "the token claim "+name+" is not a string or an array of strings", nil)
		}
	}
	if perms, ok := claims["permissions"].([]any); ok {
		for _, p := range perms {
			if s, ok := p.(string); ok {
				add(s)
			}
		}
	}
	id.Scopes = scopes
	switch r := claims[rolesClaim].(type) {
	case []any:
		for _, e := range r {
			if s, ok := e.(string); ok && s != "" {
				id.Roles = append(id.Roles, s)
			}
		}
	case string:
		id.Roles = strings.Fields(r)
	}
	for _, name := range []string{"client_id", "azp"} {
		if c, ok := claims[name].(string); ok {
			if aerr := checkIdentityValue("client id ("+name+")", c); aerr != nil {
				return Identity{}, aerr
			}
			id.ClientID = c
			break
		}
	}
	id.TokenID, _ = claims["jti"].(string)
	return id, nil
}

// checkIdentityValue checks a claim value that names the caller (what is
// named by what, e.g. "subject (sub)"). It refuses, with claim_invalid and
// a description that says what is wrong without quoting the value:
//
//   - more than MaxClaimValueBytes bytes, or bytes that are not UTF-8;
//   - an empty value, or one of whitespace only;
//   - leading or trailing whitespace (unicode.IsSpace): HTTP trims header
//     values, so " alice " would reach upstreams as "alice" while the
//     audit log, the limits and the sessions keep " alice ";
//   - a control character (Cc: C0, DEL, C1), a format character (Cf: bidi
//     controls, zero-width characters, U+FEFF and the like), U+2028,
//     U+2029, or U+FFFD: characters that are invisible or reorder text make
//     one name look like another, and U+FFFD is what decoding made of text
//     that was not valid Unicode.
func checkIdentityValue(what, s string) *Error {
	const fix = "; correct the claim at the identity provider"
	bad := func(problem string) *Error {
		return invalidToken(ReasonClaimInvalid, "the token "+what+" "+problem+fix, nil)
	}
	if len(s) > MaxClaimValueBytes {
		return bad(fmt.Sprintf("is longer than %d bytes", MaxClaimValueBytes))
	}
	if !utf8.ValidString(s) {
		return bad("is not valid UTF-8")
	}
	if strings.TrimFunc(s, unicode.IsSpace) == "" {
		return bad("is empty or only whitespace")
	}
	first, _ := utf8.DecodeRuneInString(s)
	last, _ := utf8.DecodeLastRuneInString(s)
	if unicode.IsSpace(first) || unicode.IsSpace(last) {
		return bad("has leading or trailing whitespace")
	}
	if strings.ContainsFunc(s, invisibleRune) {
		return bad("contains a control, invisible formatting or replacement character")
	}
	return nil
}

// invisibleRune reports whether r is a control character, a format
// character, a line or paragraph separator or the replacement character.
func invisibleRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' || r == utf8.RuneError
}

// isScopeToken reports whether s is an RFC 6749 §3.3 scope-token (printable
// ASCII without space, '"' or '\'). Array claims such as "permissions" can
// carry any string; an entry with a space would turn into several scopes once
// the scopes are joined into the space-separated identity header upstream,
// so such entries are dropped rather than trusted.
func isScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
