package demo

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatewaystack/gatewaystack/safehttp"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
)

const (
	// MetadataPath is the path of the RFC 8414 authorization server
	// metadata. For an issuer URL with a path, it is also served with the
	// issuer's path appended (RFC 8414 section 3.1).
	MetadataPath = "/.well-known/oauth-authorization-server"
	// RegisterPath is the dynamic client registration endpoint (RFC 7591).
	RegisterPath = "/register"
	// AuthorizePath is the authorization endpoint.
	AuthorizePath = "/authorize"
	// TokenPath is the token endpoint.
	TokenPath = "/token"
	// JWKSPath is the path at which Issuer.Handler serves the public key set.
	JWKSPath = "/.well-known/jwks.json"
	// MintPath is the path at which Issuer.Handler mints access tokens.
	MintPath = "/mint"
	// HealthPath is the path at which Issuer.Handler reports liveness.
	HealthPath = "/health"

	// DefaultExpiresIn is the lifetime of a minted token when the request
	// does not ask for one.
	DefaultExpiresIn = 10 * time.Minute
	// DefaultMaxExpiresIn is the cap on a token's lifetime used when
	// IssuerOptions.MaxExpiresIn is zero.
	DefaultMaxExpiresIn = 24 * time.Hour
	// DefaultClientID is the client_id claim of tokens minted without one.
	DefaultClientID = "demo-mint"

	// MaxMintBodyBytes is the largest /mint request body accepted.
	MaxMintBodyBytes = 64 << 10

	rsaKeyBits       = 2048
	maxIdentifierLen = 256 // characters, for sub, org_id, client_id and roles
	maxScopeTokens   = 64
	maxRoles         = 64
	jwksMaxAge       = 300 // seconds
	corsMaxAge       = 600 // seconds
)

// IssuerOptions configures NewIssuer.
type IssuerOptions struct {
	// Issuer is the public issuer URL, e.g. "http://127.0.0.1:5051". It is
	// used verbatim as the iss claim: no trailing slash is added or removed.
	// Required; it must be an absolute http or https URL.
	Issuer string
	// Audience is the aud claim of minted tokens, normally the gateway's
	// resource URL such as "http://127.0.0.1:8080/mcp". It is also the
	// first resource of the authorization server and the audience of tokens
	// whose authorization request names no resource. Required.
	Audience string
	// DefaultScope is the scope of tokens whose mint request has no scope,
	// e.g. "tool:read". When empty, such tokens carry no scope claim.
	DefaultScope string
	// MaxExpiresIn caps the lifetime a mint request may ask for. Zero means
	// DefaultMaxExpiresIn. Tokens minted without expires_in live for
	// DefaultExpiresIn, or MaxExpiresIn if that is shorter.
	MaxExpiresIn time.Duration
	// Now is the clock used for iat, nbf and exp. Nil means time.Now.
	Now func() time.Time

	// Resources lists further resource URLs (RFC 8707) the authorization
	// server issues tokens for, besides Audience. Each must be an absolute
	// http or https URL without a fragment. A resource named at /authorize
	// or /token must be one of Audience and Resources, and becomes the
	// token's aud; Audience is the default when a client names none.
	Resources []string
	// AutoApprove makes GET /authorize approve at once, for the user named
	// by login_hint or DefaultUser, instead of showing the approval page.
	// Meant for headless tests. It cannot be combined with Password, which
	// only the page asks for.
	AutoApprove bool
	// Password, when set, is asked for on the approval page: only whoever
	// knows it can approve a sign-in. It is required when the issuer URL is
	// not on loopback (a public issuer), unless AutoApprove is set, and has
	// MinPasswordLength to MaxPasswordLength characters. The issuer keeps only
	// its SHA-256, compares in constant time, and refuses a client address
	// after MaxSignInFailures wrong passwords within SignInFailureWindow.
	// Empty on a loopback issuer: no password, as for a local demo.
	Password string
	// AllowAdmin offers the admin user, the only one granted notes:admin,
	// on a public issuer's approval page (and to AutoApprove's login_hint).
	// A loopback issuer always offers it.
	AllowAdmin bool
	// AllowClientCredentials serves the client_credentials grant on a
	// public issuer. Off, a client cannot register for it, /token answers
	// unsupported_grant_type and the metadata does not list it: with open
	// registration it would hand tokens to anyone. A loopback issuer always
	// serves it.
	AllowClientCredentials bool
	// Outbound are the rules for fetching Client ID Metadata Documents
	// (safehttp): https only, never to private, link-local (cloud metadata),
	// unique-local or other internal addresses unless AllowCIDRs lists
	// them, no redirects, no proxy from the environment. When Issuer is a
	// loopback URL (a local demo), AllowHTTPLoopback is implied: documents
	// may be on loopback, over http or https. MaxResponseBytes is always
	// MaxCIMDBytes; Timeout and ConnectTimeout default to CIMDFetchTimeout,
	// which also bounds each fetch as a whole.
	Outbound safehttp.Options
}

// MintRequest is the body of POST /mint and the argument of Issuer.Mint.
type MintRequest struct {
	// Sub is the subject (user id) of the token. Required.
	Sub string `json:"sub"`
	// Scope is a space-separated list of scopes. Empty means the issuer's
	// default scope.
	Scope string `json:"scope,omitempty"`
	// OrgID becomes the org_id claim when non-empty.
	OrgID string `json:"org_id,omitempty"`
	// ExpiresIn is the token lifetime in seconds. Zero means the default.
	ExpiresIn int `json:"expires_in,omitempty"`
	// Roles becomes the roles claim when non-empty.
	Roles []string `json:"roles,omitempty"`
	// ClientID becomes the client_id claim; empty means DefaultClientID.
	ClientID string `json:"client_id,omitempty"`
}

// MintResponse is the body answered by POST /mint, shaped like an OAuth 2.0
// token response (RFC 6749 section 5.1).
type MintResponse struct {
	// AccessToken is the signed JWT.
	AccessToken string `json:"access_token"`
	// TokenType is always "Bearer".
	TokenType string `json:"token_type"`
	// ExpiresIn is the token lifetime in seconds.
	ExpiresIn int `json:"expires_in"`
	// Scope is the normalised scope granted to the token, if any.
	Scope string `json:"scope,omitempty"`
}

// InvalidMintRequestError reports a MintRequest that Issuer.Mint refused
// because of its content. Description is a message meant for the caller.
type InvalidMintRequestError struct {
	// Description says what is wrong and how to fix it.
	Description string
}

// Error implements error.
func (e *InvalidMintRequestError) Error() string {
	return "invalid mint request: " + e.Description
}

func invalidMint(format string, args ...any) error {
	return &InvalidMintRequestError{Description: fmt.Sprintf(format, args...)}
}

// Issuer is the demo OAuth 2.1 authorization server. It signs RS256 access
// tokens with RSA keys generated at construction and publishes their public
// halves as a JWKS. Tokens come from the OAuth flow (dynamic client
// registration or Client ID Metadata Documents, /authorize with PKCE, /token)
// for the demo users alice, bob and admin, or, when the issuer URL is on
// loopback, straight from /mint for any subject and from the
// client_credentials grant.
//
// When the issuer URL is not on loopback (a public issuer, e.g. behind a
// tunnel), tokens come only from the approval page, which asks for the
// operator's password; client_credentials and the admin user are off
// unless enabled (IssuerOptions). It is a demo, not an identity provider:
// one password guards every demo user.
//
// All state (clients, codes, refresh tokens) lives in memory, bounded and
// swept as it expires. An Issuer is safe for concurrent use.
type Issuer struct {
	issuer           string
	audience         string
	resources        []string
	defaultScope     string
	maxExpiresIn     time.Duration
	defaultExpiresIn time.Duration
	now              func() time.Time
	mintEnabled      bool
	autoApprove      bool
	clientCreds      bool
	password         *secretHash // nil: the approval page asks for none
	failures         *failureLimiter
	users            []DemoUser
	scopes           []string
	fetcher          *safehttp.Client
	fetchSlots       chan struct{}
	fetchTimeout     time.Duration
	pages            *template.Template

	keys  *keyRing
	store *oauthStore
}

// NewIssuer validates opts and returns an Issuer with two freshly generated
// 2048-bit RSA keys (the signing key and the next one) with random key ids.
func NewIssuer(opts IssuerOptions) (*Issuer, error) {
	if err := validateIssuerURL(opts.Issuer); err != nil {
		return nil, fmt.Errorf("demo issuer: %w", err)
	}
	if strings.TrimSpace(opts.Audience) == "" {
		return nil, errors.New("demo issuer: audience is required (the gateway's resource URL)")
	}
	if strings.ContainsFunc(opts.Audience, unicode.IsControl) {
		return nil, errors.New("demo issuer: audience must not contain control characters")
	}
	defaultScope, err := normalizeScope(opts.DefaultScope)
	if err != nil {
		return nil, fmt.Errorf("demo issuer: default scope: %w", err)
	}
	maxExpiresIn := opts.MaxExpiresIn
	switch {
	case maxExpiresIn == 0:
		maxExpiresIn = DefaultMaxExpiresIn
	case maxExpiresIn < time.Second:
		return nil, fmt.Errorf("demo issuer: max expires_in must be at least 1s, got %s", maxExpiresIn)
	}
	maxExpiresIn = maxExpiresIn.Truncate(time.Second)
	now := opts.Now
	if now == nil {
		now = time.Now
	}

	resources := []string{opts.Audience}
	for n, r := range opts.Resources {
		if err := validateResourceURL(r); err != nil {
			return nil, fmt.Errorf("demo issuer: resources[%d]: %w", n, err)
		}
		if !slices.Contains(resources, r) {
			resources = append(resources, r)
		}
	}
	if len(resources) > maxResources {
		return nil, fmt.Errorf("demo issuer: at most %d resources are allowed, got %d", maxResources, len(resources))
	}
	issuerURL, _ := url.Parse(opts.Issuer) // validated above
	pages, err := parsePages()
	if err != nil {
		return nil, fmt.Errorf("demo issuer: %w", err)
	}

	public := !isLoopbackHost(issuerURL.Hostname())
	var password *secretHash
	switch {
	case opts.Password != "" && opts.AutoApprove:
		return nil, errors.New("demo issuer: auto-approve shows no approval page, so the password would never be asked for; set one or the other")
	case opts.Password != "":
		if n := utf8.RuneCountInString(opts.Password); n < MinPasswordLength || n > MaxPasswordLength {
			return nil, fmt.Errorf("demo issuer: the password must have %d to %d characters, got %d", MinPasswordLength, MaxPasswordLength, n)
		}
		h := hashSecret(opts.Password)
		password = &h
	case public && !opts.AutoApprove:
		return nil, fmt.Errorf("demo issuer: the issuer URL %s is not on loopback, so its approval page must ask for a password: set one (at least %d characters)", opts.Issuer, MinPasswordLength)
	}
	users := DemoUsers()
	if public && !opts.AllowAdmin {
		users = slices.DeleteFunc(users, func(u DemoUser) bool { return u.Admin })
	}

	keys, err := newKeyRing()
	if err != nil {
		return nil, fmt.Errorf("demo issuer: %w", err)
	}

	return &Issuer{
		issuer:           opts.Issuer,
		audience:         opts.Audience,
		resources:        resources,
		defaultScope:     defaultScope,
		maxExpiresIn:     maxExpiresIn,
		defaultExpiresIn: min(DefaultExpiresIn, maxExpiresIn),
		now:              now,
		mintEnabled:      !public,
		autoApprove:      opts.AutoApprove,
		clientCreds:      !public || opts.AllowClientCredentials,
		password:         password,
		failures:         newFailureLimiter(),
		users:            users,
		scopes:           SupportedScopes(),
		fetcher:          newFetcher(opts.Outbound, isLoopbackHost(issuerURL.Hostname())),
		fetchSlots:       make(chan struct{}, maxConcurrentFetches),
		fetchTimeout:     CIMDFetchTimeout,
		pages:            pages,
		keys:             keys,
		store:            newOAuthStore(),
	}, nil
}

func validateIssuerURL(raw string) error {
	if raw == "" {
		return errors.New("issuer URL is required, e.g. http://127.0.0.1:5051")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("issuer URL %q must be an absolute http or https URL: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("issuer URL %q must be an absolute http or https URL", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return fmt.Errorf("issuer URL %q must not carry user info, a query or a fragment", raw)
	}
	return nil
}

// Issuer returns the iss claim of minted tokens.
func (i *Issuer) Issuer() string { return i.issuer }

// KeyID returns the kid of the key that signs new tokens.
func (i *Issuer) KeyID() string { return i.keys.signer().kid }

// NextKeyID returns the kid of the key that signs after the next RotateKey.
// It is already in the JWKS.
func (i *Issuer) NextKeyID() string {
	i.keys.mu.RLock()
	defer i.keys.mu.RUnlock()
	return i.keys.next.kid
}

// RotateKey makes the next key the signing key and generates a new next
// key. The JWKS keeps the old signing key until every token it can have
// signed has expired (the longest token lifetime), so rotation never breaks
// verification of tokens already issued.
func (i *Issuer) RotateKey() error {
	if err := i.keys.rotate(i.now().Add(i.maxExpiresIn + time.Minute)); err != nil {
		return fmt.Errorf("demo issuer: rotate key: %w", err)
	}
	return nil
}

// PublicJWKS returns the JSON encoding of the issuer's public key set, as
// served at JWKSPath: the signing key first, then the next key, then keys
// rotated out whose tokens may still be valid. The caller may modify the
// returned slice.
func (i *Issuer) PublicJWKS() ([]byte, error) {
	jwks, err := i.keys.publicJWKS(i.now())
	if err != nil {
		return nil, fmt.Errorf("demo issuer: %w", err)
	}
	return slices.Clone(jwks), nil
}

// Resources returns the resources (RFC 8707) the issuer issues tokens for;
// the first is the default and the audience of /mint tokens.
func (i *Issuer) Resources() []string { return slices.Clone(i.resources) }

// MintEnabled reports whether POST /mint is served: only when the issuer
// URL's host is a loopback address or localhost.
func (i *Issuer) MintEnabled() bool { return i.mintEnabled }

// PasswordRequired reports whether the approval page asks for a password.
func (i *Issuer) PasswordRequired() bool { return i.password != nil }

// AdminOffered reports whether the admin user, the only one granted
// notes:admin, may sign in: always on a loopback issuer, on a public one
// only with IssuerOptions.AllowAdmin.
func (i *Issuer) AdminOffered() bool {
	return slices.ContainsFunc(i.users, func(u DemoUser) bool { return u.Admin })
}

// ClientCredentialsEnabled reports whether the client_credentials grant is
// served: always on a loopback issuer, on a public one only with
// IssuerOptions.AllowClientCredentials.
func (i *Issuer) ClientCredentialsEnabled() bool { return i.clientCreds }

// Mint validates req and returns a signed RS256 access token for it. It
// returns an *InvalidMintRequestError when req itself is unacceptable.
func (i *Issuer) Mint(req MintRequest) (MintResponse, error) {
	if err := validateIdentifier("sub", req.Sub, true); err != nil {
		return MintResponse{}, err
	}
	if err := validateIdentifier("org_id", req.OrgID, false); err != nil {
		return MintResponse{}, err
	}
	clientID := req.ClientID
	if clientID == "" {
		clientID = DefaultClientID
	}
	if err := validateIdentifier("client_id", clientID, true); err != nil {
		return MintResponse{}, err
	}
	if len(req.Roles) > maxRoles {
		return MintResponse{}, invalidMint("at most %d roles are allowed, got %d", maxRoles, len(req.Roles))
	}
	for n, role := range req.Roles {
		if err := validateIdentifier("roles["+strconv.Itoa(n)+"]", role, true); err != nil {
			return MintResponse{}, err
		}
	}

	lifetime := i.defaultExpiresIn
	switch {
	case req.ExpiresIn < 0:
		return MintResponse{}, invalidMint("expires_in must be a positive number of seconds, got %d", req.ExpiresIn)
	case req.ExpiresIn > 0:
		if maxSeconds := int64(i.maxExpiresIn / time.Second); int64(req.ExpiresIn) > maxSeconds {
			return MintResponse{}, invalidMint("expires_in must be at most %d seconds, got %d", maxSeconds, req.ExpiresIn)
		}
		lifetime = time.Duration(req.ExpiresIn) * time.Second
	}

	scope := i.defaultScope
	if req.Scope != "" {
		normalized, err := normalizeScope(req.Scope)
		if err != nil {
			return MintResponse{}, &InvalidMintRequestError{Description: err.Error()}
		}
		if normalized == "" {
			return MintResponse{}, invalidMint("scope must contain at least one scope token, e.g. \"tool:read\"; omit it to get the default scope")
		}
		scope = normalized
	}

	signed, _, err := i.sign(accessClaims{
		sub:      req.Sub,
		audience: i.audience,
		scope:    scope,
		orgID:    req.OrgID,
		roles:    req.Roles,
		clientID: clientID,
		lifetime: lifetime,
	}, "JWT")
	if err != nil {
		return MintResponse{}, fmt.Errorf("mint token: %w", err)
	}
	return MintResponse{
		AccessToken: signed,
		TokenType:   "Bearer",
		ExpiresIn:   int(lifetime / time.Second),
		Scope:       scope,
	}, nil
}

// accessClaims are the variable claims of an access token.
type accessClaims struct {
	sub, audience, scope, orgID, clientID string
	roles                                 []string
	lifetime                              time.Duration
}

// sign builds and signs an RS256 access token with the current key and
// header typ, and returns it with its jti.
func (i *Issuer) sign(c accessClaims, typ string) (string, string, error) {
	jti, err := randomToken(16)
	if err != nil {
		return "", "", fmt.Errorf("generate jti: %w", err)
	}
	now := i.now().Truncate(time.Second)
	builder := jwt.NewBuilder().
		Issuer(i.issuer).
		Audience([]string{c.audience}).
		Subject(c.sub).
		IssuedAt(now).
		NotBefore(now).
		Expiration(now.Add(c.lifetime)).
		JwtID(jti).
		Claim("client_id", c.clientID)
	if c.scope != "" {
		builder = builder.Claim("scope", c.scope)
	}
	if c.orgID != "" {
		builder = builder.Claim("org_id", c.orgID)
	}
	if len(c.roles) > 0 {
		builder = builder.Claim("roles", slices.Clone(c.roles))
	}
	token, err := builder.Build()
	if err != nil {
		return "", "", fmt.Errorf("build claims: %w", err)
	}
	// Serialise aud as a single string rather than a one-element array. This
	// is a per-token option, so jwx's global settings are left alone.
	token.Options().Enable(jwt.FlattenAudience)

	key := i.keys.signer()
	headers := jws.NewHeaders()
	if err := headers.Set(jws.KeyIDKey, key.kid); err != nil {
		return "", "", fmt.Errorf("set kid header: %w", err)
	}
	if err := headers.Set(jws.TypeKey, typ); err != nil {
		return "", "", fmt.Errorf("set typ header: %w", err)
	}
	signed, err := jwt.Sign(token, jwt.WithKey(jwa.RS256(), key.key, jws.WithProtectedHeaders(headers)))
	if err != nil {
		return "", "", fmt.Errorf("sign: %w", err)
	}
	return string(signed), jti, nil
}

// validateIdentifier checks a user-supplied identifier such as sub.
func validateIdentifier(field, value string, required bool) error {
	if strings.TrimSpace(value) == "" {
		if required || value != "" {
			return invalidMint("%s must be a non-blank string, e.g. \"alice\"", field)
		}
		return nil
	}
	if !utf8.ValidString(value) {
		return invalidMint("%s must be valid UTF-8", field)
	}
	if n := utf8.RuneCountInString(value); n > maxIdentifierLen {
		return invalidMint("%s must be at most %d characters, got %d", field, maxIdentifierLen, n)
	}
	if strings.ContainsFunc(value, unicode.IsControl) {
		return invalidMint("%s must not contain control characters", field)
	}
	if strings.TrimSpace(value) != value {
		return invalidMint("%s must not have leading or trailing whitespace", field)
	}
	return nil
}

// normalizeScope validates a space-separated scope string (RFC 6749 section
// 3.3: each token is printable ASCII 0x21-0x7E other than '"' and '\') and
// returns it with empty and duplicate tokens removed.
func normalizeScope(raw string) (string, error) {
	for n := 0; n < len(raw); n++ {
		c := raw[n]
		if c == ' ' {
			continue
		}
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return "", fmt.Errorf("scope contains invalid character %q at byte %d: scopes are space-separated tokens of printable ASCII (0x21-0x7E, except '\"' and '\\')", rune(c), n)
		}
	}
	var tokens []string
	for token := range strings.SplitSeq(raw, " ") {
		if token != "" && !slices.Contains(tokens, token) {
			tokens = append(tokens, token)
		}
	}
	if len(tokens) > maxScopeTokens {
		return "", fmt.Errorf("scope must have at most %d tokens, got %d", maxScopeTokens, len(tokens))
	}
	return strings.Join(tokens, " "), nil
}

// randomToken returns n random bytes, base64url-encoded without padding.
func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Handler returns the issuer's HTTP API:
//
//   - GET  /.well-known/oauth-authorization-server: RFC 8414 metadata
//   - POST /register: dynamic client registration (RFC 7591)
//   - GET  /authorize: the authorization endpoint (PKCE S256), which shows
//     the approval page or, with AutoApprove, redirects at once
//   - POST /authorize: the approval page's answer
//   - POST /token: authorization_code, refresh_token and, unless it is
//     off on a public issuer, client_credentials
//   - GET  /.well-known/jwks.json: the public key set
//   - POST /mint: mint a token from a JSON MintRequest (loopback issuer URL
//     only, else 403)
//   - GET  /health: liveness, {"ok":true,"issuer":"..."}
//
// Cross-origin requests are allowed from loopback origins only, on every
// endpoint but /authorize (a page, not an API).
func (i *Issuer) Handler() http.Handler {
	return http.HandlerFunc(i.serveHTTP)
}

func (i *Issuer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	var (
		allow   string
		handler http.HandlerFunc
		cors    = true
	)
	switch r.URL.Path {
	case MetadataPath, i.pathInsertedMetadataPath():
		allow, handler = "GET, HEAD, OPTIONS", i.serveMetadata
	case RegisterPath:
		allow, handler = "POST, OPTIONS", i.serveRegister
	case AuthorizePath:
		allow, handler, cors = "GET, POST, OPTIONS", i.serveAuthorize, false
	case TokenPath:
		allow, handler = "POST, OPTIONS", i.serveToken
	case JWKSPath:
		allow, handler = "GET, HEAD, OPTIONS", i.serveJWKS
	case HealthPath:
		allow, handler = "GET, HEAD, OPTIONS", i.serveHealth
	case MintPath:
		allow, handler = "POST, OPTIONS", i.serveMint
	default:
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no such endpoint %q; try %s, %s, %s, %s, %s or %s",
			r.URL.Path, MetadataPath, RegisterPath, AuthorizePath, TokenPath, JWKSPath, HealthPath))
		return
	}

	h := w.Header()
	loopback := false
	if cors {
		h.Add("Vary", "Origin")
		loopback = isLoopbackOrigin(r.Header.Get("Origin"))
	}
	if loopback {
		h.Set("Access-Control-Allow-Origin", r.Header.Get("Origin"))
		h.Set("Access-Control-Expose-Headers", "WWW-Authenticate")
	}
	if r.Method == http.MethodOptions {
		if loopback {
			h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization, MCP-Protocol-Version")
			h.Set("Access-Control-Max-Age", strconv.Itoa(corsMaxAge))
		}
		h.Set("Allow", allow)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	handler(w, r)
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, "invalid_request", fmt.Sprintf("method %s is not allowed on %s; use %s", r.Method, r.URL.Path, allow))
}

func (i *Issuer) serveJWKS(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, r, "GET, HEAD")
		return
	}
	jwks, err := i.keys.publicJWKS(i.now())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "server_error", "the issuer failed to encode its key set")
		return
	}
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(jwksMaxAge))
	writeJSON(w, http.StatusOK, json.RawMessage(jwks))
}

func (i *Issuer) serveHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, r, "GET, HEAD")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, struct {
		OK     bool   `json:"ok"`
		Issuer string `json:"issuer"`
	}{OK: true, Issuer: i.issuer})
}

func (i *Issuer) serveMint(w http.ResponseWriter, r *http.Request) {
	if !i.mintEnabled {
		writeError(w, http.StatusForbidden, "access_denied", fmt.Sprintf(
			"/mint is off because the issuer URL %s is not on loopback: it would hand a token for any user to anyone who can reach it; get tokens through the OAuth flow (%s, %s, %s) instead",
			i.issuer, RegisterPath, AuthorizePath, TokenPath))
		return
	}
	if r.Method != http.MethodPost {
		methodNotAllowed(w, r, http.MethodPost)
		return
	}
	// Token responses must never be cached (RFC 6749 section 5.1).
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")

	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "invalid_request", "Content-Type must be application/json")
		return
	}

	req, status, err := decodeMintRequest(w, r)
	if err != nil {
		writeError(w, status, "invalid_request", err.Error())
		return
	}
	resp, err := i.Mint(req)
	if err != nil {
		if invalid, ok := errors.AsType[*InvalidMintRequestError](err); ok {
			writeError(w, http.StatusBadRequest, "invalid_request", invalid.Description)
			return
		}
		writeError(w, http.StatusInternalServerError, "server_error", "the issuer failed to mint a token")
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// decodeMintRequest reads exactly one JSON MintRequest from the request body.
// On failure it returns the HTTP status to answer and an actionable error.
func decodeMintRequest(w http.ResponseWriter, r *http.Request) (MintRequest, int, error) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxMintBodyBytes))
	dec.DisallowUnknownFields()

	var req MintRequest
	if err := dec.Decode(&req); err != nil {
		return MintRequest{}, decodeStatus(err), describeDecodeError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
			return MintRequest{}, http.StatusRequestEntityTooLarge, describeDecodeError(err)
		}
		return MintRequest{}, http.StatusBadRequest, errors.New("request body must contain a single JSON object and nothing after it")
	}
	return req, http.StatusOK, nil
}

func decodeStatus(err error) int {
	if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

const mintExample = `{"sub":"alice","scope":"tool:read"}`

func describeDecodeError(err error) error {
	if errors.Is(err, io.EOF) {
		return errors.New("request body is empty; send a JSON object such as " + mintExample)
	}
	if tooLarge, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return fmt.Errorf("request body exceeds %d bytes", tooLarge.Limit)
	}
	if syntaxErr, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Errorf("request body is not valid JSON (at byte %d): %s; send a JSON object such as %s", syntaxErr.Offset, syntaxErr.Error(), mintExample)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("request body is truncated JSON; send a JSON object such as " + mintExample)
	}
	if typeErr, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		if typeErr.Field == "" {
			return fmt.Errorf("request body must be a JSON object, not %s; send e.g. %s", typeErr.Value, mintExample)
		}
		return fmt.Errorf("field %q must be of type %s, not %s", typeErr.Field, typeErr.Type, typeErr.Value)
	}
	if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Errorf("unknown field %s; allowed fields are sub, scope, org_id, expires_in, roles and client_id", field)
	}
	return fmt.Errorf("request body is not a valid mint request: %w", err)
}
