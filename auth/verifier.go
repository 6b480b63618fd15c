package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
	// (default 15 min).
	RefreshInterval time.Duration
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
	cache   *jwk.Cache
	res     *httprc.ResourceBase[jwk.Set] // the cached JWKS; Resource() is an atomic load
	life    context.Context               // cancelled by Close; bounds every JWKS fetch
	cancel  context.CancelFunc
	done    chan struct{}
	fetches singleflight.Group

	lastRefetch atomic.Int64 // unix nanos of the last unknown-kid JWKS refetch
	ready       atomic.Bool
	fetchCount  atomic.Int64
	fetchFailed atomic.Int64
	lastOK      atomic.Int64 // unix nanos of the last successful fetch

	mu       sync.Mutex
	verified map[[32]byte]Identity
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
	if cfg.Skew < 0 || cfg.RefetchCooldown < 0 || cfg.RefreshInterval < 0 || cfg.MaxTokenBytes < 0 || cfg.CacheEntries < 0 {
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
	if cfg.RefreshInterval == 0 {
		cfg.RefreshInterval = DefaultJWKSRefresh
	}
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
	v := &Verifier{cfg: cfg, verified: make(map[[32]byte]Identity), done: make(chan struct{})}
	counting := &countingClient{c: cfg.HTTPClient, n: &v.fetchCount, failed: &v.fetchFailed, lastOK: &v.lastOK}

	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	v.life, v.cancel = bg, cancel
	cache, err := jwk.NewCache(bg, httprc.NewClient())
	if err != nil {
		cancel()
		return nil, fmt.Errorf("auth: start jwks cache: %w", err)
	}
	v.cache = cache
	if err := cache.Register(bg, cfg.JWKSURI,
		jwk.WithHTTPClient(counting),
		jwk.WithWaitReady(false),
		jwk.WithConstantInterval(cfg.RefreshInterval),
		jwk.WithMaxFetchBodySize(1<<20),
	); err != nil {
		cancel()
		_ = cache.Shutdown(context.Background())
		return nil, fmt.Errorf("auth: register jwks %s: %w", cfg.JWKSURI, err)
	}
	// Keep the resource itself: reading its current set is an atomic load,
	// where cache.Lookup is a round trip through the cache's goroutine that
	// every verification would queue on.
	if v.res, err = cache.LookupResource(bg, cfg.JWKSURI); err != nil {
		cancel()
		_ = cache.Shutdown(context.Background())
		return nil, fmt.Errorf("auth: look up jwks %s: %w", cfg.JWKSURI, err)
	}
	go v.warmUp(bg)
	return v, nil
}

// countingClient counts JWKS fetches and their failures (exposed for
// health, metrics and tests).
type countingClient struct {
	c      *http.Client
	n      *atomic.Int64
	failed *atomic.Int64
	lastOK *atomic.Int64
}

func (c *countingClient) Do(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	resp, err := c.c.Do(r)
	if err != nil || resp.StatusCode < 200 || resp.StatusCode > 299 {
		c.failed.Add(1)
	} else {
		c.lastOK.Store(time.Now().UnixNano())
	}
	return resp, err
}

// JWKSStats describes the verifier's key set and its fetches.
type JWKSStats struct {
	// Fetches and Failures count JWKS HTTP fetches since start (a failure:
	// no answer or a non-2xx status).
	Fetches, Failures int64
	// LastOK is when a fetch last succeeded (zero: never).
	LastOK time.Time
	// Keys is how many keys the loaded set holds (0 before the first load).
	Keys int
	// Ready: a key set has been loaded at least once.
	Ready bool
}

// JWKSStats returns the key set's state.
func (v *Verifier) JWKSStats() JWKSStats {
	st := JWKSStats{Fetches: v.fetchCount.Load(), Failures: v.fetchFailed.Load(), Ready: v.ready.Load()}
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
		if _, err := v.keySet(ctx); err == nil {
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
	if err := v.cache.Shutdown(ctx); err != nil {
		return fmt.Errorf("auth: stop jwks cache: %w", err)
	}
	return nil
}

// Ready reports whether a key set has been loaded at least once.
func (v *Verifier) Ready() bool { return v.ready.Load() }

// JWKSFetches returns how many HTTP fetches of the JWKS were made.
func (v *Verifier) JWKSFetches() int64 { return v.fetchCount.Load() }

// keySet returns the cached key set, fetching it (single-flight) when none
// has been loaded yet. These initial fetches do not count against the
// unknown-kid cooldown: they are not caused by anything a caller controls.
func (v *Verifier) keySet(ctx context.Context) (jwk.Set, error) {
	if v.ready.Load() {
		if set := v.res.Resource(); set != nil {
			return set, nil
		}
	}
	return v.fetch(ctx, "initial", func() error { return nil })
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
		set, err := v.cache.Refresh(fctx, v.cfg.JWKSURI)
		if err != nil {
			return nil, fmt.Errorf("fetch jwks %s: %w", v.cfg.JWKSURI, err)
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

// tokenHeader is the part of the JOSE header the verifier inspects itself.
type tokenHeader struct {
	Alg  any             `json:"alg"`
	Kid  any             `json:"kid"`
	Crit json.RawMessage `json:"crit"`
	Jku  json.RawMessage `json:"jku"`
	X5u  json.RawMessage `json:"x5u"`
	Jwk  json.RawMessage `json:"jwk"`
	X5c  json.RawMessage `json:"x5c"`
}

// Verify checks raw and returns the caller's Identity. Every failure is an
// *Error wrapping ErrUnauthorized; see the package doc for the steps.
func (v *Verifier) Verify(ctx context.Context, raw string) (Identity, error) {
	if len(raw) > v.cfg.MaxTokenBytes {
		return Identity{}, invalidToken(ReasonTokenTooLarge, "the token is too large", nil)
	}
	key := sha256.Sum256([]byte(raw))
	now := v.cfg.Now()
	v.mu.Lock()
	id, ok := v.verified[key]
	v.mu.Unlock()
	if ok {
		if now.Before(id.ExpiresAt.Add(v.cfg.Skew)) {
			return id, nil
		}
		v.mu.Lock()
		delete(v.verified, key)
		v.mu.Unlock()
		return Identity{}, invalidToken(ReasonTokenExpired, "the token has expired", nil)
	}
	id, err := v.verify(ctx, raw, now)
	if err != nil {
		return Identity{}, err
	}
	v.remember(key, id, now)
	return id, nil
}

func (v *Verifier) remember(key [32]byte, id Identity, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.verified) >= v.cfg.CacheEntries {
		for k, e := range v.verified {
			if !now.Before(e.ExpiresAt.Add(v.cfg.Skew)) {
				delete(v.verified, k)
			}
		}
		if len(v.verified) >= v.cfg.CacheEntries {
			clear(v.verified)
		}
	}
	v.verified[key] = id
}

func (v *Verifier) verify(ctx context.Context, raw string, now time.Time) (Identity, error) {
	parts := strings.Split(raw, ".")
	switch len(parts) {
	case 3:
	case 5:
		return Identity{}, invalidToken(ReasonTokenEncrypted, "encrypted tokens (JWE) are not accepted", nil)
	default:
		return Identity{}, invalidToken(ReasonTokenMalformed, "the token is not a compact JWS", nil)
	}
	hdrBytes, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return Identity{}, invalidToken(ReasonTokenMalformed, "the token header is not base64url", err)
	}
	var hdr tokenHeader
	dec := json.NewDecoder(bytes.NewReader(hdrBytes))
	if err := dec.Decode(&hdr); err != nil || dec.More() {
		return Identity{}, invalidToken(ReasonTokenMalformed, "the token header is not a JSON object", err)
	}
	alg, isString := hdr.Alg.(string)
	if !isString || !slices.Contains(v.cfg.Algorithms, alg) {
		return Identity{}, invalidToken(ReasonAlgNotAllowed, "the token algorithm is not allowed", nil)
	}
	if len(hdr.Crit) > 0 || len(hdr.Jku) > 0 || len(hdr.X5u) > 0 || len(hdr.Jwk) > 0 || len(hdr.X5c) > 0 {
		return Identity{}, invalidToken(ReasonHeaderNotAllowed, "the token header carries a field that is not accepted", nil)
	}
	kid, kidOK := hdr.Kid.(string)
	if hdr.Kid != nil && !kidOK {
		return Identity{}, invalidToken(ReasonTokenMalformed, "the token kid is not a string", nil)
	}
	sigAlg, _ := jwa.LookupSignatureAlgorithm(alg)

	set, err := v.keySet(ctx)
	if err != nil {
		return Identity{}, &Error{Status: http.StatusServiceUnavailable, Reason: ReasonJWKSUnavailable,
			Description: "the issuer's signing keys cannot be loaded; try again shortly", Err: err}
	}
	key, found := lookupKey(set, kid)
	if !found {
		if fresh, ferr := v.refetchForKid(ctx); ferr == nil {
			key, found = lookupKey(fresh, kid)
		}
	}
	if !found {
		return Identity{}, invalidToken(ReasonKeyUnknown, "the token is signed by an unknown key", nil)
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
		return Identity{}, classify(err)
	}
	exp, _ := tok.Expiration()
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return Identity{}, invalidToken(ReasonTokenMalformed, "the token payload is not base64url", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return Identity{}, invalidToken(ReasonTokenMalformed, "the token payload is not a JSON object", err)
	}
	return v.identity(claims, exp)
}

// lookupKey finds the verification key by kid. A token without kid is
// accepted only when the set holds exactly one key.
func lookupKey(set jwk.Set, kid string) (jwk.Key, bool) {
	if kid == "" {
		if set.Len() != 1 {
			return nil, false
		}
		return set.Key(0)
	}
	return set.LookupKeyID(kid)
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
// is left zero. The error is an *Error (no subject, unacceptable subject or
// tenant).
func IdentityFromClaims(claims map[string]any, tenantClaim, rolesClaim string) (Identity, error) {
	if tenantClaim == "" {
		tenantClaim = "org_id"
	}
	if rolesClaim == "" {
		rolesClaim = "roles"
	}
	sub, _ := claims["sub"].(string)
	if sub == "" {
		return Identity{}, invalidToken(ReasonClaimMissing, "the token has no subject", nil)
	}
	if len(sub) > 256 || strings.ContainsFunc(sub, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return Identity{}, invalidToken(ReasonClaimInvalid, "the token subject is not acceptable", nil)
	}
	id := Identity{Subject: sub, Claims: claims}
	id.Tenant, _ = claims[tenantClaim].(string)
	if strings.ContainsFunc(id.Tenant, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return Identity{}, invalidToken(ReasonClaimInvalid, "the token tenant is not acceptable", nil)
	}
	var scopes []string
	add := func(s string) {
		if isScopeToken(s) && !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	for _, name := range []string{"scope", "scp"} {
		switch s := claims[name].(type) {
		case string:
			for _, f := range strings.Fields(s) {
				add(f)
			}
		case []any:
			for _, e := range s {
				if str, ok := e.(string); ok {
					add(str)
				}
			}
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
	if c, ok := claims["client_id"].(string); ok {
		id.ClientID = c
	} else if c, ok := claims["azp"].(string); ok {
		id.ClientID = c
	}
	id.TokenID, _ = claims["jti"].(string)
	return id, nil
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
