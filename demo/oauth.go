package demo

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Scopes of the demo authorization server.
const (
	// ScopeToolRead is the baseline scope: read tools.
	ScopeToolRead = "tool:read"
	// ScopeToolWrite is the step-up scope: tools that change data.
	ScopeToolWrite = "tool:write"
	// ScopeNotesAdmin is an entitlement only admin users are granted.
	ScopeNotesAdmin = "notes:admin"
)

// OAuth limits and lifetimes of the demo authorization server.
const (
	// DefaultUser is the user an auto-approved authorization is for when
	// the request has no login_hint.
	DefaultUser = "alice"

	// AuthorizationCodeLifetime is how long an authorization code may be
	// exchanged.
	AuthorizationCodeLifetime = 10 * time.Minute
	// ApprovalPageLifetime is how long an approval page may be answered.
	ApprovalPageLifetime = 10 * time.Minute
	// RefreshTokenLifetime is how long a refresh token may be used. Each
	// rotation issues a new one with a full lifetime.
	RefreshTokenLifetime = 24 * time.Hour
	// ClientIdleLifetime is how long a registered client is kept without
	// being used. A forgotten client gets invalid_client and registers again.
	ClientIdleLifetime = 7 * 24 * time.Hour
	// CIMDFetchTimeout bounds the fetch of a Client ID Metadata Document.
	CIMDFetchTimeout = 5 * time.Second

	// MaxRegisterBodyBytes is the largest POST /register body accepted.
	MaxRegisterBodyBytes = 64 << 10
	// MaxFormBodyBytes is the largest form body accepted by POST /token and
	// POST /authorize.
	MaxFormBodyBytes = 64 << 10
	// MaxCIMDBytes is the largest Client ID Metadata Document accepted.
	MaxCIMDBytes = 16 << 10
	// MaxRedirectURIs is the most redirect URIs one client may register.
	MaxRedirectURIs = 16
	// MaxURILength is the longest client_id URL or redirect URI accepted.
	MaxURILength = 2048
	// MaxParamLength is the longest value of any other OAuth parameter.
	MaxParamLength = 4096

	maxClientNameLen     = 200 // characters
	maxAuthorizeQuery    = 16 << 10
	maxResources         = 16
	maxConcurrentFetches = 8
	maxClients           = 1000
	maxPending           = 1000
	maxCodes             = 10000
	maxGrants            = 10000
	maxRefreshTokens     = 50000
	maxRevokedTokens     = 100000
	maxJTIsPerGrant      = 16
	metadataMaxAge       = 300 // seconds
	basicRealm           = "gatewaystack-demo"
)

// DemoUser is a user of the demo authorization server. Users have no
// passwords of their own: the approval page lets whoever sees it pick a
// user, after the issuer's one password when it has one.
type DemoUser struct {
	// Name is the user's id, the sub claim of its tokens.
	Name string
	// OrgID is the org_id claim.
	OrgID string
	// Roles is the roles claim; empty means none.
	Roles []string
	// Admin users may be granted ScopeNotesAdmin; for others it is dropped.
	Admin bool
}

// DemoUsers returns the demo users: alice and bob, and admin, the only one
// who may be granted notes:admin. All three are in org acme.
func DemoUsers() []DemoUser {
	return []DemoUser{
		{Name: "alice", OrgID: "acme"},
		{Name: "bob", OrgID: "acme"},
		{Name: "admin", OrgID: "acme", Roles: []string{"admin"}, Admin: true},
	}
}

// SupportedScopes returns the scopes the authorization server grants, as
// advertised in scopes_supported.
func SupportedScopes() []string {
	return []string{ScopeToolRead, ScopeToolWrite, ScopeNotesAdmin}
}

// adminOnly reports whether scope is granted to admin users only.
func adminOnly(scope string) bool { return scope == ScopeNotesAdmin }

func (i *Issuer) user(name string) (DemoUser, bool) {
	for _, u := range i.users {
		if u.Name == name {
			return u, true
		}
	}
	return DemoUser{}, false
}

func (i *Issuer) userNames() string {
	names := make([]string, len(i.users))
	for n, u := range i.users {
		names[n] = u.Name
	}
	return strings.Join(names, ", ")
}

// grantable returns the scopes of requested that user may be granted.
func grantable(user DemoUser, requested []string) []string {
	var out []string
	for _, s := range requested {
		if !adminOnly(s) || user.Admin {
			out = append(out, s)
		}
	}
	return out
}

// AuthorizationServerMetadata is the RFC 8414 document served at
// MetadataPath.
type AuthorizationServerMetadata struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	RegistrationEndpoint                       string   `json:"registration_endpoint"`
	JWKSURI                                    string   `json:"jwks_uri"`
	ScopesSupported                            []string `json:"scopes_supported"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	ResponseModesSupported                     []string `json:"response_modes_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported"`
	AuthorizationResponseISSParameterSupported bool     `json:"authorization_response_iss_parameter_supported"`
	ClientIDMetadataDocumentSupported          bool     `json:"client_id_metadata_document_supported"`
}

// Metadata returns the issuer's RFC 8414 authorization server metadata.
func (i *Issuer) Metadata() AuthorizationServerMetadata {
	return AuthorizationServerMetadata{
		Issuer:                                     i.issuer,
		AuthorizationEndpoint:                      i.endpoint(AuthorizePath),
		TokenEndpoint:                              i.endpoint(TokenPath),
		RegistrationEndpoint:                       i.endpoint(RegisterPath),
		JWKSURI:                                    i.endpoint(JWKSPath),
		ScopesSupported:                            slices.Clone(i.scopes),
		ResponseTypesSupported:                     []string{"code"},
		ResponseModesSupported:                     []string{"query"},
		GrantTypesSupported:                        i.grantTypes(),
		TokenEndpointAuthMethodsSupported:          []string{authMethodNone, authMethodBasic, authMethodPost},
		CodeChallengeMethodsSupported:              []string{"S256"},
		AuthorizationResponseISSParameterSupported: true,
		ClientIDMetadataDocumentSupported:          true,
	}
}

// endpoint returns the URL of path below the issuer URL.
func (i *Issuer) endpoint(path string) string {
	return strings.TrimSuffix(i.issuer, "/") + path
}

// pathInsertedMetadataPath is MetadataPath with the issuer URL's path
// appended (RFC 8414 section 3.1), or MetadataPath when it has none.
func (i *Issuer) pathInsertedMetadataPath() string {
	u, err := url.Parse(i.issuer)
	if err != nil {
		return MetadataPath
	}
	return MetadataPath + strings.TrimSuffix(u.EscapedPath(), "/")
}

func (i *Issuer) serveMetadata(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, r, "GET, HEAD")
		return
	}
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(metadataMaxAge))
	writeJSON(w, http.StatusOK, i.Metadata())
}

// Grant types and client authentication methods.
const (
	grantAuthorizationCode = "authorization_code"
	grantRefreshToken      = "refresh_token"
	grantClientCredentials = "client_credentials"

	authMethodNone  = "none"
	authMethodBasic = "client_secret_basic"
	authMethodPost  = "client_secret_post"
)

// clientCredentialsOff explains why a public issuer refuses the
// client_credentials grant.
const clientCredentialsOff = "the client_credentials grant is off: the issuer URL is not on loopback, and with open registration it would hand tokens to anyone who registers; sign users in with authorization_code, or start the issuer with --allow-client-credentials"

// grantTypes returns the grant types the issuer serves, as advertised in
// grant_types_supported.
func (i *Issuer) grantTypes() []string {
	if i.clientCreds {
		return []string{grantAuthorizationCode, grantRefreshToken, grantClientCredentials}
	}
	return []string{grantAuthorizationCode, grantRefreshToken}
}

// grantTypeList is grantTypes for a message: "a, b or c".
func (i *Issuer) grantTypeList() string {
	g := i.grantTypes()
	return strings.Join(g[:len(g)-1], ", ") + " or " + g[len(g)-1]
}

// isLoopbackHost reports whether host (without port or brackets) is
// localhost or a loopback IP address.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validateResourceURL checks a resource indicator (RFC 8707 section 2): an
// absolute http or https URL without a fragment.
func validateResourceURL(raw string) error {
	if len(raw) > MaxURILength || strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return fmt.Errorf("resource %q must be an absolute URL of at most %d printable ASCII characters", raw, MaxURILength)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return fmt.Errorf("resource %q must be an absolute http or https URL, e.g. http://127.0.0.1:8080/mcp", raw)
	}
	if strings.Contains(raw, "#") {
		return fmt.Errorf("resource %q must not have a fragment", raw)
	}
	return nil
}

// resource returns the known resource that raw names: equal to it, or equal
// after normalising the scheme and host case, a default port and an empty
// path (clients that pass the URL through a URL parser write
// "http://h:80" as "http://h/").
func (i *Issuer) resource(raw string) (string, bool) {
	if slices.Contains(i.resources, raw) {
		return raw, true
	}
	want, ok := normalizeURL(raw)
	if !ok {
		return "", false
	}
	for _, r := range i.resources {
		if n, ok := normalizeURL(r); ok && n == want {
			return r, true
		}
	}
	return "", false
}

func normalizeURL(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Fragment != "" || u.User != nil {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	out := scheme + "://" + host + path
	if u.RawQuery != "" || u.ForceQuery {
		out += "?" + u.RawQuery
	}
	return out, true
}

// deniedRedirectScheme reports whether an authorization response may never
// go to scheme: it runs code, reads local data or leaves the browser for
// another protocol.
func deniedRedirectScheme(scheme string) bool {
	switch scheme {
	case "javascript", "data", "vbscript", "file", "blob", "about", "filesystem",
		"view-source", "jar", "ws", "wss", "ftp", "mailto", "tel", "sms":
		return true
	}
	return false
}

// validateRedirectURI checks a redirect URI a client registers (RFC 8252,
// OAuth 2.1 section 2.3.1): http only on loopback, https, or a private-use
// scheme such as cursor://anysphere.cursor-mcp/oauth/callback; no fragment,
// no user info, printable ASCII only.
func validateRedirectURI(raw string) error {
	switch {
	case raw == "":
		return errors.New("redirect URI is empty")
	case len(raw) > MaxURILength:
		return fmt.Errorf("redirect URI is longer than %d characters", MaxURILength)
	case strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r >= 0x7f }):
		return fmt.Errorf("redirect URI %q contains spaces, control or non-ASCII characters (percent-encode them)", truncate(raw))
	case strings.Contains(raw, "#"):
		return fmt.Errorf("redirect URI %q has a fragment; fragments are not allowed", truncate(raw))
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return fmt.Errorf("redirect URI %q is not an absolute URI", truncate(raw))
	}
	if u.User != nil {
		return fmt.Errorf("redirect URI %q carries user info", truncate(raw))
	}
	switch scheme := u.Scheme; {
	case scheme == "http":
		if u.Host == "" || !isLoopbackHost(u.Hostname()) {
			return fmt.Errorf("redirect URI %q uses http on a host that is not loopback; use https, or http://127.0.0.1:PORT/... for a native app", truncate(raw))
		}
	case scheme == "https":
		if u.Host == "" || u.Hostname() == "" {
			return fmt.Errorf("redirect URI %q has no host", truncate(raw))
		}
	case deniedRedirectScheme(scheme):
		return fmt.Errorf("redirect URI scheme %q is not allowed; use https, loopback http or a private-use scheme such as com.example.app:/callback", scheme)
	default:
		if u.Host == "" && u.Path == "" && u.Opaque == "" {
			return fmt.Errorf("redirect URI %q names a scheme but no callback", truncate(raw))
		}
	}
	return nil
}

// redirectMatches reports whether the redirect URI of an authorization
// request matches a registered one: exactly, or, for a loopback http URI,
// with any port (RFC 8252 section 7.3: native apps get an ephemeral port).
func redirectMatches(registered, requested string) bool {
	if registered == requested {
		return true
	}
	r, err1 := url.Parse(registered)
	q, err2 := url.Parse(requested)
	if err1 != nil || err2 != nil || r.Scheme != "http" || q.Scheme != "http" || !isLoopbackHost(r.Hostname()) {
		return false
	}
	return r.Hostname() == q.Hostname() && r.EscapedPath() == q.EscapedPath() &&
		r.RawQuery == q.RawQuery && r.ForceQuery == q.ForceQuery && q.User == nil && q.Fragment == ""
}

// truncate shortens s for an error message.
func truncate(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// secretHash is the SHA-256 of a code, token or client secret: stores keep
// hashes, never the secrets themselves.
type secretHash [sha256.Size]byte

func hashSecret(s string) secretHash { return sha256.Sum256([]byte(s)) }

func (h secretHash) equal(s string) bool {
	other := hashSecret(s)
	return subtle.ConstantTimeCompare(h[:], other[:]) == 1
}

// validPKCEValue reports whether s is a code_verifier or code_challenge in
// the RFC 7636 alphabet and length.
func validPKCEValue(s string) bool {
	if len(s) < 43 || len(s) > 128 {
		return false
	}
	for n := 0; n < len(s); n++ {
		c := s[n]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// s256 is the S256 code challenge of verifier.
func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// parseScopeParam parses a scope parameter and keeps the supported scopes,
// in the order of SupportedScopes. It fails on a malformed value.
func (i *Issuer) parseScopeParam(raw string) (kept []string, dropped []string, err error) {
	normalized, err := normalizeScope(raw)
	if err != nil {
		return nil, nil, err
	}
	tokens := strings.Fields(normalized)
	for _, s := range i.scopes {
		if slices.Contains(tokens, s) {
			kept = append(kept, s)
		}
	}
	for _, s := range tokens {
		if !slices.Contains(i.scopes, s) {
			dropped = append(dropped, s)
		}
	}
	return kept, dropped, nil
}

// checkParams validates the shape of v: bounded values, no repeated
// single-valued parameter.
func checkParams(v url.Values, multi ...string) error {
	if len(v) > 64 {
		return errors.New("too many parameters")
	}
	for name, values := range v {
		if len(values) > 1 && !slices.Contains(multi, name) {
			return fmt.Errorf("parameter %s is repeated; send it once", truncate(name))
		}
		if len(values) > maxResources {
			return fmt.Errorf("parameter %s is repeated more than %d times", truncate(name), maxResources)
		}
		for _, value := range values {
			limit := MaxParamLength
			if name == "redirect_uri" || name == "client_id" || name == "resource" {
				limit = MaxURILength
			}
			if len(value) > limit {
				return fmt.Errorf("parameter %s is longer than %d bytes", truncate(name), limit)
			}
			if !utf8.ValidString(value) {
				return fmt.Errorf("parameter %s is not valid UTF-8", truncate(name))
			}
		}
	}
	return nil
}

// readForm reads an application/x-www-form-urlencoded body of at most
// MaxFormBodyBytes. It returns the HTTP status to answer on failure.
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, int, error) {
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "application/x-www-form-urlencoded" {
		return nil, http.StatusBadRequest, errors.New("Content-Type must be application/x-www-form-urlencoded")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxFormBodyBytes))
	if err != nil {
		if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request body exceeds %d bytes", MaxFormBodyBytes)
		}
		return nil, http.StatusBadRequest, errors.New("could not read the request body")
	}
	values, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, http.StatusBadRequest, errors.New("request body is not a valid form (application/x-www-form-urlencoded)")
	}
	return values, http.StatusOK, nil
}
