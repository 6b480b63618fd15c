package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gatewaystack/gatewaystack/safehttp"
)

// RegistrationResponse is the body of a successful POST /register (RFC 7591
// section 3.2.1): the client's id, its secret when it is confidential, and
// the metadata as registered.
type RegistrationResponse struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret,omitempty"`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at"`
	ClientSecretExpiresAt   *int64   `json:"client_secret_expires_at,omitempty"`
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ClientName              string   `json:"client_name,omitempty"`
	Scope                   string   `json:"scope,omitempty"`
}

// metadataError is a refused client metadata document, with the RFC 7591
// section 3.2.2 error code.
type metadataError struct {
	code        string // invalid_redirect_uri or invalid_client_metadata
	description string
}

func (e *metadataError) Error() string { return e.description }

func badMetadata(format string, args ...any) *metadataError {
	return &metadataError{code: "invalid_client_metadata", description: fmt.Sprintf(format, args...)}
}

func badRedirect(format string, args ...any) *metadataError {
	return &metadataError{code: "invalid_redirect_uri", description: fmt.Sprintf(format, args...)}
}

// field decodes the JSON member name of doc into a T. A missing member or
// null leaves the zero value and reports false.
func field[T any](doc map[string]json.RawMessage, name string) (T, bool, error) {
	var v T
	raw, ok := doc[name]
	if !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return v, false, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		var kind string
		switch any(v).(type) {
		case string:
			kind = "a string"
		case []string:
			kind = "an array of strings"
		default:
			kind = fmt.Sprintf("%T", v)
		}
		return v, true, fmt.Errorf("%s must be %s", name, kind)
	}
	return v, true, nil
}

// parseClientMetadata validates the client metadata of a registration
// request or of a Client ID Metadata Document (fromDocument) and returns the
// client it describes, without id or secret.
func (i *Issuer) parseClientMetadata(doc map[string]json.RawMessage, fromDocument bool) (*clientRecord, *metadataError) {
	c := &clientRecord{metadataDocument: fromDocument}

	redirects, _, err := field[[]string](doc, "redirect_uris")
	if err != nil {
		return nil, badRedirect("%v", err)
	}
	if len(redirects) > MaxRedirectURIs {
		return nil, badRedirect("at most %d redirect_uris are allowed, got %d", MaxRedirectURIs, len(redirects))
	}
	for n, uri := range redirects {
		if err := validateRedirectURI(uri); err != nil {
			return nil, badRedirect("redirect_uris[%d]: %v", n, err)
		}
		if !slices.Contains(c.redirectURIs, uri) {
			c.redirectURIs = append(c.redirectURIs, uri)
		}
	}

	method, hasMethod, err := field[string](doc, "token_endpoint_auth_method")
	if err != nil {
		return nil, badMetadata("%v", err)
	}
	switch {
	case fromDocument && (method == authMethodBasic || method == authMethodPost || doc["client_secret"] != nil || doc["client_secret_expires_at"] != nil):
		return nil, badMetadata("a client metadata document describes a public client: it must not carry client_secret or use %s/%s; use token_endpoint_auth_method none", authMethodBasic, authMethodPost)
	case !hasMethod && fromDocument:
		method = authMethodNone
	case !hasMethod:
		method = authMethodBasic // RFC 7591 section 2
	}
	switch method {
	case authMethodNone:
	case authMethodBasic, authMethodPost:
		if fromDocument {
			return nil, badMetadata("token_endpoint_auth_method %q needs a client secret, which a metadata document cannot have; use none", method)
		}
	default:
		return nil, badMetadata("token_endpoint_auth_method %q is not supported; use none, %s or %s", truncate(method), authMethodBasic, authMethodPost)
	}
	c.authMethod = method

	grants, hasGrants, err := field[[]string](doc, "grant_types")
	if err != nil {
		return nil, badMetadata("%v", err)
	}
	if !hasGrants {
		grants = []string{grantAuthorizationCode}
	}
	if len(grants) == 0 || len(grants) > 8 {
		return nil, badMetadata("grant_types must list 1 to 8 grant types")
	}
	for _, g := range grants {
		switch g {
		case grantAuthorizationCode, grantRefreshToken:
		case grantClientCredentials:
			if !i.clientCreds {
				return nil, badMetadata("%s", clientCredentialsOff)
			}
			if method == authMethodNone {
				return nil, badMetadata("grant type client_credentials needs a confidential client: register with token_endpoint_auth_method %s or %s", authMethodBasic, authMethodPost)
			}
		default:
			return nil, badMetadata("grant type %q is not supported; use %s", truncate(g), i.grantTypeList())
		}
		if !slices.Contains(c.grantTypes, g) {
			c.grantTypes = append(c.grantTypes, g)
		}
	}
	if c.allows(grantAuthorizationCode) && len(c.redirectURIs) == 0 {
		return nil, badRedirect("redirect_uris must list at least one redirect URI for the authorization_code grant")
	}

	responses, hasResponses, err := field[[]string](doc, "response_types")
	if err != nil {
		return nil, badMetadata("%v", err)
	}
	if len(responses) > 8 {
		return nil, badMetadata("response_types must list at most 8 values")
	}
	for _, r := range responses {
		if r != "code" {
			return nil, badMetadata("response type %q is not supported; use code", truncate(r))
		}
	}
	c.responseTypes = []string{}
	if !hasResponses && c.allows(grantAuthorizationCode) || len(responses) > 0 {
		c.responseTypes = []string{"code"}
	}

	name, _, err := field[string](doc, "client_name")
	if err != nil {
		return nil, badMetadata("%v", err)
	}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxClientNameLen || strings.ContainsFunc(name, unicode.IsControl) {
		return nil, badMetadata("client_name must be valid UTF-8 of at most %d characters without control characters", maxClientNameLen)
	}
	c.name = strings.TrimSpace(name)

	scope, _, err := field[string](doc, "scope")
	if err != nil {
		return nil, badMetadata("%v", err)
	}
	kept, _, err := i.parseScopeParam(scope)
	if err != nil {
		return nil, badMetadata("scope: %v", err)
	}
	c.scope = strings.Join(kept, " ")
	return c, nil
}

func (i *Issuer) serveRegister(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, r, http.MethodPost)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mediaType != "application/json" {
		writeError(w, http.StatusBadRequest, "invalid_client_metadata", "Content-Type must be application/json; send the client metadata as a JSON object (RFC 7591)")
		return
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxRegisterBodyBytes))
	var doc map[string]json.RawMessage
	if err := dec.Decode(&doc); err != nil || doc == nil {
		status := http.StatusBadRequest
		desc := `request body must be a JSON object of client metadata, e.g. {"redirect_uris":["http://127.0.0.1:3000/callback"],"token_endpoint_auth_method":"none"}`
		if tooLarge, ok := errors.AsType[*http.MaxBytesError](err); ok {
			status, desc = http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds %d bytes", tooLarge.Limit)
		}
		writeError(w, status, "invalid_client_metadata", desc)
		return
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "invalid_client_metadata", "request body must contain a single JSON object and nothing after it")
		return
	}

	client, merr := i.parseClientMetadata(doc, false)
	if merr != nil {
		writeError(w, http.StatusBadRequest, merr.code, merr.description)
		return
	}
	id, err := randomToken(16)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "server_error", "the issuer failed to generate a client id")
		return
	}
	client.id = "client-" + id
	var secret string
	if client.confidential() {
		if secret, err = randomToken(32); err != nil {
			writeError(w, http.StatusInternalServerError, "server_error", "the issuer failed to generate a client secret")
			return
		}
		client.secret = hashSecret(secret)
	}
	now := i.now()
	client.issuedAt, client.lastUsed = now, now
	i.store.addClient(client, now)

	resp := RegistrationResponse{
		ClientID:                client.id,
		ClientSecret:            secret,
		ClientIDIssuedAt:        now.Unix(),
		RedirectURIs:            slices.Clone(client.redirectURIs),
		TokenEndpointAuthMethod: client.authMethod,
		GrantTypes:              slices.Clone(client.grantTypes),
		ResponseTypes:           slices.Clone(client.responseTypes),
		ClientName:              client.name,
		Scope:                   client.scope,
	}
	if resp.RedirectURIs == nil {
		resp.RedirectURIs = []string{}
	}
	if secret != "" {
		never := int64(0)
		resp.ClientSecretExpiresAt = &never
	}
	writeJSON(w, http.StatusCreated, resp)
}

// isMetadataDocumentID reports whether a client_id is a URL, that is, names
// a Client ID Metadata Document rather than a registered client.
func isMetadataDocumentID(clientID string) bool {
	return strings.HasPrefix(clientID, "https://") || strings.HasPrefix(clientID, "http://")
}

// validateMetadataDocumentURL checks a URL client_id: https, or http on
// loopback; a path; no fragment, user info or dot segments.
func validateMetadataDocumentURL(raw string) error {
	if len(raw) > MaxURILength || strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return fmt.Errorf("client_id URL must be at most %d printable ASCII characters", MaxURILength)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return errors.New("client_id URL is not a valid absolute URL")
	}
	switch {
	case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
		return errors.New("client_id URL must use https (http only on loopback)")
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("client_id URL must use https")
	case u.User != nil || strings.Contains(raw, "#"):
		return errors.New("client_id URL must not carry user info or a fragment")
	case u.Path == "" || u.Path == "/":
		return errors.New("client_id URL must have a path, e.g. https://app.example/oauth/client.json")
	}
	for seg := range strings.SplitSeq(u.Path, "/") {
		if seg == "." || seg == ".." {
			return errors.New("client_id URL must not have . or .. path segments")
		}
	}
	return nil
}

// newFetcher returns the client that fetches Client ID Metadata Documents
// under the outbound rules out; loopbackIssuer (the issuer's own URL is on
// loopback: a local demo) allows loopback documents.
func newFetcher(out safehttp.Options, loopbackIssuer bool) *safehttp.Client {
	out.AllowHTTPLoopback = out.AllowHTTPLoopback || loopbackIssuer
	out.MaxResponseBytes = MaxCIMDBytes
	if out.Timeout <= 0 {
		out.Timeout = CIMDFetchTimeout
	}
	if out.ConnectTimeout <= 0 {
		out.ConnectTimeout = CIMDFetchTimeout
	}
	return safehttp.New(out)
}

// fetchMetadataDocument fetches and validates the Client ID Metadata
// Document at clientID: within CIMDFetchTimeout (waiting for a free fetch
// slot included), at most MaxCIMDBytes, under the outbound rules (no
// private, link-local or other internal address unless allowed), without
// following redirects. Its client_id must equal the URL.
func (i *Issuer) fetchMetadataDocument(ctx context.Context, clientID string) (*clientRecord, error) {
	if err := validateMetadataDocumentURL(clientID); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, i.fetchTimeout)
	defer cancel()
	select {
	case i.fetchSlots <- struct{}{}:
		defer func() { <-i.fetchSlots }()
	case <-ctx.Done():
		return nil, errors.New("too many client metadata documents are being fetched; try again")
	}
	body, resp, err := i.fetcher.Get(ctx, clientID)
	if refused, ok := errors.AsType[*safehttp.RefusedError](err); ok {
		return nil, fmt.Errorf("the client metadata document at %s is not fetched: %s", truncate(clientID), refused.Error())
	}
	if status, ok := errors.AsType[*safehttp.StatusError](err); ok {
		if status.StatusCode >= 300 && status.StatusCode < 400 {
			return nil, fmt.Errorf("the client metadata document at %s answered with a redirect (HTTP %d); redirects are not followed", truncate(clientID), status.StatusCode)
		}
		return nil, fmt.Errorf("the client metadata document at %s answered HTTP %d, want 200", truncate(clientID), status.StatusCode)
	}
	if _, ok := errors.AsType[*safehttp.TooLargeError](err); ok {
		return nil, fmt.Errorf("the client metadata document at %s is larger than %d bytes", truncate(clientID), MaxCIMDBytes)
	}
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, fmt.Errorf("fetching the client metadata document at %s took longer than %s", truncate(clientID), i.fetchTimeout)
	case err != nil:
		return nil, fmt.Errorf("could not fetch the client metadata document at %s", truncate(clientID))
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("the client metadata document at %s answered HTTP %d, want 200", truncate(clientID), resp.StatusCode)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var doc map[string]json.RawMessage
	if err := dec.Decode(&doc); err != nil || doc == nil || !errors.Is(dec.Decode(&struct{}{}), io.EOF) {
		return nil, fmt.Errorf("the client metadata document at %s is not one JSON object", truncate(clientID))
	}
	id, _, err := field[string](doc, "client_id")
	if err != nil || id != clientID {
		return nil, fmt.Errorf("the client metadata document's client_id %q differs from its URL %s; they must be equal", truncate(id), truncate(clientID))
	}
	client, merr := i.parseClientMetadata(doc, true)
	if merr != nil {
		return nil, fmt.Errorf("the client metadata document at %s is refused: %s", truncate(clientID), merr.description)
	}
	if !client.allows(grantAuthorizationCode) {
		return nil, fmt.Errorf("the client metadata document at %s does not allow the authorization_code grant", truncate(clientID))
	}
	client.id = clientID
	return client, nil
}
