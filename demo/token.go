package demo

import (
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// TokenResponse is the body of a successful POST /token (RFC 6749 section
// 5.1).
type TokenResponse struct {
	// AccessToken is an RS256 JWT with header typ "at+jwt" (RFC 9068).
	AccessToken string `json:"access_token"`
	// TokenType is always "Bearer".
	TokenType string `json:"token_type"`
	// ExpiresIn is the access token's lifetime in seconds.
	ExpiresIn int `json:"expires_in"`
	// RefreshToken is issued with the authorization_code and refresh_token
	// grants; each use returns a new one (rotation).
	RefreshToken string `json:"refresh_token,omitempty"`
	// Scope is the granted scope.
	Scope string `json:"scope,omitempty"`
}

// tokenError is an RFC 6749 section 5.2 error of the token endpoint.
type tokenError struct {
	status            int
	code, description string
}

func tokenErr(code, format string, args ...any) *tokenError {
	status := http.StatusBadRequest
	if code == "invalid_client" {
		status = http.StatusUnauthorized
	}
	return &tokenError{status: status, code: code, description: fmt.Sprintf(format, args...)}
}

// writeTokenError answers a token endpoint error. invalid_client is 401
// with a WWW-Authenticate challenge, which tells clients to authenticate
// differently or register again.
func writeTokenError(w http.ResponseWriter, e *tokenError) {
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+basicRealm+`"`)
	}
	writeError(w, e.status, e.code, e.description)
}

// AccessTokenRevoked reports whether the access token with this jti was
// revoked because the code or refresh token it came from was replayed.
// Access tokens are JWTs verified without asking the issuer, so a resource
// server that does not ask keeps accepting a revoked token until it expires
// (DefaultExpiresIn); the refresh tokens of its grant stop working at once.
func (i *Issuer) AccessTokenRevoked(jti string) bool {
	return i.store.isRevoked(jti, i.now())
}

func (i *Issuer) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, r, http.MethodPost)
		return
	}
	// Token responses must never be cached (RFC 6749 section 5.1).
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")

	form, status, err := readForm(w, r)
	if err != nil {
		writeTokenError(w, &tokenError{status: status, code: "invalid_request", description: err.Error()})
		return
	}
	if err := checkParams(form, "resource"); err != nil {
		writeTokenError(w, tokenErr("invalid_request", "%v", err))
		return
	}
	grantType := form.Get("grant_type")
	if grantType == "" {
		writeTokenError(w, tokenErr("invalid_request", "grant_type is required: %s", i.grantTypeList()))
		return
	}
	// A grant the issuer does not serve is refused before any client is
	// looked at (RFC 6749 section 5.2: unsupported_grant_type).
	switch {
	case grantType == grantClientCredentials && !i.clientCreds:
		writeTokenError(w, tokenErr("unsupported_grant_type", "%s", clientCredentialsOff))
		return
	case !slices.Contains(i.grantTypes(), grantType):
		writeTokenError(w, tokenErr("unsupported_grant_type", "grant_type %q is not supported; use %s", truncate(grantType), i.grantTypeList()))
		return
	}
	client, terr := i.authenticateClient(r, form)
	if terr != nil {
		writeTokenError(w, terr)
		return
	}
	if !client.allows(grantType) {
		writeTokenError(w, tokenErr("unauthorized_client", "the client did not register the %s grant", grantType))
		return
	}

	var resp TokenResponse
	switch grantType {
	case grantAuthorizationCode:
		resp, terr = i.exchangeCode(client, form)
	case grantRefreshToken:
		resp, terr = i.refreshGrant(client, form)
	case grantClientCredentials:
		resp, terr = i.clientCredentials(client, form)
	}
	if terr != nil {
		writeTokenError(w, terr)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// authenticateClient identifies the client of a token request: HTTP Basic
// (client_secret_basic), client_id and client_secret in the form
// (client_secret_post), or client_id alone for public clients (none). A
// URL client_id that is not registered is a public client described by a
// metadata document; the code or refresh token it presents is bound to it.
func (i *Issuer) authenticateClient(r *http.Request, form url.Values) (clientRecord, *tokenError) {
	var id, secret string
	if authz := r.Header.Values("Authorization"); len(authz) > 0 {
		if len(authz) > 1 {
			return clientRecord{}, tokenErr("invalid_request", "send one Authorization header")
		}
		scheme, cred, _ := strings.Cut(authz[0], " ")
		if !strings.EqualFold(scheme, "Basic") {
			return clientRecord{}, tokenErr("invalid_client", "the Authorization header must use the Basic scheme (client_secret_basic)")
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
		user, pass, ok := strings.Cut(string(raw), ":")
		if err != nil || !ok {
			return clientRecord{}, tokenErr("invalid_client", "the Basic credentials must be base64 of client_id:client_secret")
		}
		if id, err = url.QueryUnescape(user); err == nil {
			secret, err = url.QueryUnescape(pass)
		}
		if err != nil {
			return clientRecord{}, tokenErr("invalid_client", "the Basic credentials must be form-encoded client_id:client_secret (RFC 6749 section 2.3.1)")
		}
		if form.Has("client_secret") {
			return clientRecord{}, tokenErr("invalid_request", "use one client authentication method: Basic or client_secret in the form, not both")
		}
		if formID := form.Get("client_id"); formID != "" && formID != id {
			return clientRecord{}, tokenErr("invalid_request", "client_id in the form differs from the one in the Authorization header")
		}
		if secret == "" {
			return clientRecord{}, tokenErr("invalid_client", "the Basic credentials have an empty client_secret")
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	if id == "" {
		return clientRecord{}, tokenErr("invalid_client", "client_id is required: send it in the form (public clients) or authenticate with HTTP Basic")
	}

	c, ok := i.store.client(id, i.now())
	if !ok {
		if isMetadataDocumentID(id) && validateMetadataDocumentURL(id) == nil {
			if secret != "" {
				return clientRecord{}, tokenErr("invalid_client", "a client identified by a metadata document is public: send no client_secret")
			}
			return clientRecord{id: id, authMethod: authMethodNone, grantTypes: []string{grantAuthorizationCode, grantRefreshToken}, metadataDocument: true}, nil
		}
		return clientRecord{}, tokenErr("invalid_client", "client_id %q is not registered here (the demo issuer keeps registrations in memory and forgets them when it restarts); register again", truncate(id))
	}
	if !c.confidential() {
		if secret != "" {
			return clientRecord{}, tokenErr("invalid_client", "the client registered as public (token_endpoint_auth_method none): send no client_secret")
		}
		return c, nil
	}
	if secret == "" {
		return clientRecord{}, tokenErr("invalid_client", "the client registered as confidential: authenticate with %s or %s", authMethodBasic, authMethodPost)
	}
	if !c.secret.equal(secret) {
		return clientRecord{}, tokenErr("invalid_client", "client authentication failed")
	}
	return c, nil
}

// exchangeCode is the authorization_code grant. A code works once: a
// second use revokes what the first gave (RFC 6749 section 4.1.2).
func (i *Issuer) exchangeCode(client clientRecord, form url.Values) (TokenResponse, *tokenError) {
	code, verifier := form.Get("code"), form.Get("code_verifier")
	if code == "" {
		return TokenResponse{}, tokenErr("invalid_request", "code is required")
	}
	if verifier == "" {
		return TokenResponse{}, tokenErr("invalid_request", "code_verifier is required (PKCE)")
	}
	now := i.now()
	st := i.store
	st.mu.Lock()
	defer st.mu.Unlock()
	st.sweepLocked(now)

	ac, ok := st.codes[hashSecret(code)]
	if !ok || !now.Before(ac.expires) {
		return TokenResponse{}, tokenErr("invalid_grant", "the authorization code is unknown or expired (codes live %s)", AuthorizationCodeLifetime)
	}
	if ac.used {
		if g, ok := st.grants[ac.grantID]; ok {
			st.revokeGrantLocked(g, now)
		}
		return TokenResponse{}, tokenErr("invalid_grant", "the authorization code was already used; the tokens issued from it are now revoked")
	}
	ac.used = true // whatever happens next: a code is tried once
	if ac.req.clientID != client.id {
		return TokenResponse{}, tokenErr("invalid_grant", "the authorization code was issued to another client")
	}
	if redirect := form.Get("redirect_uri"); redirect != ac.req.redirectURI && (ac.req.redirectProvided || redirect != "") {
		return TokenResponse{}, tokenErr("invalid_grant", "redirect_uri differs from the one of the authorization request")
	}
	if !validPKCEValue(verifier) || subtle.ConstantTimeCompare([]byte(s256(verifier)), []byte(ac.req.challenge)) != 1 {
		return TokenResponse{}, tokenErr("invalid_grant", "code_verifier does not match the code_challenge of the authorization request")
	}
	if terr := i.sameResource(form["resource"], ac.req.resource); terr != nil {
		return TokenResponse{}, terr
	}
	id, err := randomToken(16)
	if err != nil {
		return TokenResponse{}, &tokenError{status: http.StatusInternalServerError, code: "server_error", description: "the issuer failed to generate a grant id"}
	}
	g := &grant{id: id, clientID: client.id, user: ac.user, scope: ac.scope, resource: ac.req.resource, expires: now}
	ac.grantID = g.id
	st.addGrantLocked(g)
	return i.issueLocked(g, ac.scope, now)
}

// sameResource checks the resource parameters of a token request against
// the resource of the grant: they may only repeat it.
func (i *Issuer) sameResource(values []string, want string) *tokenError {
	if len(values) == 0 {
		return nil
	}
	got, desc := i.requestedResource(values)
	if desc != "" {
		return tokenErr("invalid_target", "%s", desc)
	}
	if got != want {
		return tokenErr("invalid_target", "resource %q differs from the resource %q the user approved", truncate(got), truncate(want))
	}
	return nil
}

// refreshGrant is the refresh_token grant. Refresh tokens rotate: each
// works once, and a second use revokes its whole grant (OAuth 2.1 section
// 4.3.1). The client and resource stay; the scope may narrow, never widen.
func (i *Issuer) refreshGrant(client clientRecord, form url.Values) (TokenResponse, *tokenError) {
	token := form.Get("refresh_token")
	if token == "" {
		return TokenResponse{}, tokenErr("invalid_request", "refresh_token is required")
	}
	now := i.now()
	st := i.store
	st.mu.Lock()
	defer st.mu.Unlock()
	st.sweepLocked(now)

	rec, ok := st.refresh[hashSecret(token)]
	if !ok || !now.Before(rec.expires) {
		return TokenResponse{}, tokenErr("invalid_grant", "the refresh token is unknown or expired; sign in again")
	}
	g, ok := st.grants[rec.grantID]
	if !ok || g.revoked {
		return TokenResponse{}, tokenErr("invalid_grant", "the refresh token was revoked; sign in again")
	}
	if rec.used {
		st.revokeGrantLocked(g, now)
		return TokenResponse{}, tokenErr("invalid_grant", "the refresh token was already used; every token of its grant is now revoked; sign in again")
	}
	if g.clientID != client.id {
		return TokenResponse{}, tokenErr("invalid_grant", "the refresh token was issued to another client")
	}
	scope := g.scope
	if raw := form.Get("scope"); strings.TrimSpace(raw) != "" {
		normalized, err := normalizeScope(raw)
		if err != nil {
			return TokenResponse{}, tokenErr("invalid_scope", "%v", err)
		}
		requested := strings.Fields(normalized)
		original := strings.Fields(g.scope)
		for _, s := range requested {
			if !slices.Contains(original, s) {
				return TokenResponse{}, tokenErr("invalid_scope", "scope %q was not granted by the user (granted: %s); a refresh may narrow the scope, never widen it", truncate(s), g.scope)
			}
		}
		scope = strings.Join(slices.DeleteFunc(original, func(s string) bool { return !slices.Contains(requested, s) }), " ")
	}
	if terr := i.sameResource(form["resource"], g.resource); terr != nil {
		return TokenResponse{}, terr
	}
	rec.used = true
	return i.issueLocked(g, scope, now)
}

// issueLocked signs an access token for grant g with scope and a new
// refresh token. The caller holds the store's lock.
func (i *Issuer) issueLocked(g *grant, scope string, now time.Time) (TokenResponse, *tokenError) {
	access, jti, err := i.sign(accessClaims{
		sub:      g.user.Name,
		audience: g.resource,
		scope:    scope,
		orgID:    g.user.OrgID,
		roles:    g.user.Roles,
		clientID: g.clientID,
		lifetime: i.defaultExpiresIn,
	}, "at+jwt")
	if err != nil {
		return TokenResponse{}, &tokenError{status: http.StatusInternalServerError, code: "server_error", description: "the issuer failed to sign a token"}
	}
	refresh, err := randomToken(32)
	if err != nil {
		return TokenResponse{}, &tokenError{status: http.StatusInternalServerError, code: "server_error", description: "the issuer failed to generate a refresh token"}
	}
	g.recordToken(issuedToken{jti: jti, expires: now.Add(i.defaultExpiresIn)}, now)
	i.store.addRefreshLocked(refresh, g, now.Add(RefreshTokenLifetime))
	return TokenResponse{
		AccessToken:  access,
		TokenType:    "Bearer",
		ExpiresIn:    int(i.defaultExpiresIn / time.Second),
		RefreshToken: refresh,
		Scope:        scope,
	}, nil
}

// clientCredentials is the client_credentials grant: a confidential client
// gets a token for itself (sub = client_id), without a refresh token. It
// may have every supported scope but the admin-only ones, within the scope
// it registered, if any.
func (i *Issuer) clientCredentials(client clientRecord, form url.Values) (TokenResponse, *tokenError) {
	if !client.confidential() {
		return TokenResponse{}, tokenErr("unauthorized_client", "client_credentials needs a confidential client")
	}
	resource, desc := i.requestedResource(form["resource"])
	if desc != "" {
		return TokenResponse{}, tokenErr("invalid_target", "%s", desc)
	}
	allowed := slices.DeleteFunc(slices.Clone(i.scopes), adminOnly)
	if client.scope != "" {
		registered := strings.Fields(client.scope)
		allowed = slices.DeleteFunc(allowed, func(s string) bool { return !slices.Contains(registered, s) })
	}
	raw := form.Get("scope")
	if strings.TrimSpace(raw) == "" && client.scope != "" {
		raw = strings.Join(allowed, " ")
	}
	requested, desc := i.requestedScopes(raw)
	if desc != "" {
		return TokenResponse{}, tokenErr("invalid_scope", "%s", desc)
	}
	for _, s := range requested {
		if !slices.Contains(allowed, s) {
			return TokenResponse{}, tokenErr("invalid_scope", "scope %q may not be granted to a client acting for itself (allowed: %s)", s, strings.Join(allowed, " "))
		}
	}
	scope := strings.Join(requested, " ")
	access, _, err := i.sign(accessClaims{sub: client.id, audience: resource, scope: scope, clientID: client.id, lifetime: i.defaultExpiresIn}, "at+jwt")
	if err != nil {
		return TokenResponse{}, &tokenError{status: http.StatusInternalServerError, code: "server_error", description: "the issuer failed to sign a token"}
	}
	return TokenResponse{AccessToken: access, TokenType: "Bearer", ExpiresIn: int(i.defaultExpiresIn / time.Second), Scope: scope}, nil
}
