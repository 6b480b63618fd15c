package demo

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// pages is the HTML of the approval page and the error page: inline CSS,
// no script, no external assets.
const pages = `{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.}} · Gatewaystack demo</title>
<style>
body{font:16px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem;color:#1d1d1f;background:#fafafa}
h1{font-size:1.35rem}fieldset{border:1px solid #d0d0d5;border-radius:8px;margin:1rem 0;padding:.6rem 1rem;background:#fff}
legend{font-weight:600;padding:0 .3rem}label{display:block;margin:.35rem 0}.muted{color:#6e6e73;font-size:.88em}
code{background:#eee;border-radius:4px;padding:0 .25rem;word-break:break-all}button{font:inherit;padding:.5rem 1.1rem;margin:.3rem .5rem 0 0;border-radius:6px;border:1px solid #888;background:#fff;cursor:pointer}
button.primary{background:#0a63d6;border-color:#0a63d6;color:#fff}.error{border-left:4px solid #c62828;padding:.2rem .8rem;background:#fff}
</style></head><body>{{end}}

{{define "approve"}}{{template "head" "Approve access"}}
<h1>Gatewaystack demo sign-in</h1>
{{if .Error}}<p class="error">{{.Error}}</p>
{{end}}<p><strong>{{.ClientName}}</strong>{{if .ClientVerified}} <span class="muted">(from {{.ClientHost}})</span>{{else}} <span class="muted">(name given by the client, not verified)</span>{{end}} asks for access to <code>{{.Resource}}</code>.</p>
<p class="muted">After you answer, your browser goes back to <code>{{.RedirectURI}}</code>.</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="nonce" value="{{.Nonce}}">
<fieldset><legend>Sign in as</legend>
{{range .Users}}<label><input type="radio" name="user" value="{{.Name}}"{{if .Selected}} checked{{end}}> {{.Name}} <span class="muted">org {{.OrgID}}{{if .Admin}} · may be granted notes:admin{{end}}</span></label>
{{end}}</fieldset>
{{if .AskPassword}}<fieldset><legend>Password</legend>
<label>Password of this demo <input type="password" name="password" autocomplete="current-password" required></label>
<span class="muted">Printed by gatewaystack when it started, or the one it was started with.</span>
</fieldset>
{{end}}<fieldset><legend>Approve scopes</legend>
{{range .Scopes}}<label><input type="checkbox" name="scope" value="{{.Name}}" checked> <code>{{.Name}}</code> <span class="muted">{{.Description}}</span></label>
{{end}}</fieldset>
<button class="primary" type="submit" name="action" value="approve">Approve</button>
<button type="submit" name="action" value="deny">Deny</button>
</form>
<p class="muted">{{if .AskPassword}}A demo: one password guards every demo user.{{else}}A demo: there are no passwords.{{end}} {{if .AdminOffered}}Only admin is granted notes:admin; it is dropped for the others.{{else}}No one is granted notes:admin here: admin is not offered.{{end}}</p>
</body></html>
{{end}}

{{define "error"}}{{template "head" "Sign-in error"}}
<h1>Sign-in cannot continue</h1>
<p class="error">{{.Message}}</p>
<p class="muted">Nothing was sent back to the application. Start the sign-in again from it.</p>
</body></html>
{{end}}`

func parsePages() (*template.Template, error) {
	t, err := template.New("pages").Parse(pages)
	if err != nil {
		return nil, fmt.Errorf("parse page templates: %w", err)
	}
	return t, nil
}

type pageUser struct {
	Name, OrgID     string
	Admin, Selected bool
}

type pageScope struct{ Name, Description string }

type approvePage struct {
	Action, Nonce          string
	ClientName, ClientHost string
	ClientVerified         bool
	Resource, RedirectURI  string
	Users                  []pageUser
	Scopes                 []pageScope
	AskPassword            bool
	AdminOffered           bool
	Error                  string // why the page is shown again
}

func scopeDescription(s string) string {
	switch s {
	case ScopeToolRead:
		return "use the read tools (list and read notes)"
	case ScopeToolWrite:
		return "use the tools that change data (write notes)"
	case ScopeNotesAdmin:
		return "administer notes (delete all notes); admin only"
	}
	return ""
}

// setPageHeaders sets the headers of an HTML page: never cached, never
// framed, no script, no external resources. form-action is left open on
// purpose: browsers apply it to the redirect that follows the form's POST,
// which goes to the client's redirect URI.
func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
}

func (i *Issuer) renderPage(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := i.pages.ExecuteTemplate(&buf, name, data); err != nil {
		writeError(w, http.StatusInternalServerError, "server_error", "the issuer failed to render a page")
		return
	}
	setPageHeaders(w)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorPage answers an authorization request that cannot be sent back to
// the client: its client or redirect URI is not verified (RFC 6749 section
// 4.1.2.1), or the approval page is stale.
func (i *Issuer) errorPage(w http.ResponseWriter, status int, format string, args ...any) {
	i.renderPage(w, status, "error", struct{ Message string }{fmt.Sprintf(format, args...)})
}

// authzResponse sends an authorization response to the client's verified
// redirect URI: its parameters, state when the request had one, and iss
// (RFC 9207).
func (i *Issuer) authzResponse(w http.ResponseWriter, status int, req authorizationRequest, params url.Values) {
	u, err := url.Parse(req.redirectURI)
	if err != nil { // validated when registered
		i.errorPage(w, http.StatusBadRequest, "The redirect URI cannot be used.")
		return
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	if req.statePresent {
		q.Set("state", req.state)
	}
	q.Set("iss", i.issuer)
	u.RawQuery = q.Encode()
	u.ForceQuery = false
	w.Header().Set("Location", u.String())
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
}

// authzError sends an RFC 6749 section 4.1.2.1 error to the client.
func (i *Issuer) authzError(w http.ResponseWriter, status int, req authorizationRequest, code, description string) {
	i.authzResponse(w, status, req, url.Values{"error": {code}, "error_description": {description}})
}

func (i *Issuer) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		i.authorize(w, r)
	case http.MethodPost:
		i.decide(w, r)
	default:
		methodNotAllowed(w, r, "GET, POST")
	}
}

// lookupClient finds a registered client, or fetches the Client ID
// Metadata Document a URL client_id names.
func (i *Issuer) lookupClient(r *http.Request, clientID string) (clientRecord, error) {
	if isMetadataDocumentID(clientID) {
		c, err := i.fetchMetadataDocument(r.Context(), clientID)
		if err != nil {
			return clientRecord{}, err
		}
		return *c, nil
	}
	c, ok := i.store.client(clientID, i.now())
	if !ok {
		return clientRecord{}, fmt.Errorf("the application's client_id %q is not registered here (the demo issuer keeps registrations in memory and forgets them when it restarts); remove and add the server again in the application so that it registers again", truncate(clientID))
	}
	return c, nil
}

// authorize handles GET /authorize: it checks the request, then shows the
// approval page or, with auto-approve, answers at once.
func (i *Issuer) authorize(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.RawQuery) > maxAuthorizeQuery {
		i.errorPage(w, http.StatusBadRequest, "The authorization request is longer than %d bytes.", maxAuthorizeQuery)
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		i.errorPage(w, http.StatusBadRequest, "The authorization request's query string is malformed.")
		return
	}

	// Until the client and its redirect URI are verified, errors are shown
	// here and never sent anywhere.
	clientIDs := q["client_id"]
	if len(clientIDs) != 1 || clientIDs[0] == "" || len(clientIDs[0]) > MaxURILength {
		i.errorPage(w, http.StatusBadRequest, "The authorization request needs exactly one client_id.")
		return
	}
	client, err := i.lookupClient(r, clientIDs[0])
	if err != nil {
		i.errorPage(w, http.StatusBadRequest, "%s", err.Error())
		return
	}
	req := authorizationRequest{clientID: client.id, clientName: client.name}
	switch redirects := q["redirect_uri"]; {
	case len(redirects) > 1:
		i.errorPage(w, http.StatusBadRequest, "The authorization request has more than one redirect_uri.")
		return
	case len(redirects) == 1:
		if err := validateRedirectURI(redirects[0]); err != nil {
			i.errorPage(w, http.StatusBadRequest, "The redirect_uri is not acceptable: %s.", err.Error())
			return
		}
		if !slices.ContainsFunc(client.redirectURIs, func(reg string) bool { return redirectMatches(reg, redirects[0]) }) {
			i.errorPage(w, http.StatusBadRequest, "The redirect_uri %s is not one the application registered.", truncate(redirects[0]))
			return
		}
		req.redirectURI, req.redirectProvided = redirects[0], true
	case len(client.redirectURIs) == 1:
		req.redirectURI = client.redirectURIs[0]
	default:
		i.errorPage(w, http.StatusBadRequest, "The authorization request has no redirect_uri, and the application registered %d.", len(client.redirectURIs))
		return
	}
	if states := q["state"]; len(states) == 1 && len(states[0]) <= MaxParamLength {
		req.state, req.statePresent = states[0], true
	}

	// From here on, errors go back to the client.
	if err := checkParams(q, "resource"); err != nil {
		i.authzError(w, http.StatusFound, req, "invalid_request", err.Error())
		return
	}
	switch rt := q.Get("response_type"); {
	case rt == "":
		i.authzError(w, http.StatusFound, req, "invalid_request", "response_type is required; use code")
		return
	case rt != "code":
		i.authzError(w, http.StatusFound, req, "unsupported_response_type", fmt.Sprintf("response_type %q is not supported; use code", truncate(rt)))
		return
	}
	if !client.allows(grantAuthorizationCode) {
		i.authzError(w, http.StatusFound, req, "unauthorized_client", "the client did not register the authorization_code grant")
		return
	}
	switch method := q.Get("code_challenge_method"); {
	case method == "" && q.Get("code_challenge") == "":
		i.authzError(w, http.StatusFound, req, "invalid_request", "PKCE is required: send code_challenge and code_challenge_method=S256")
		return
	case method == "plain" || method == "":
		i.authzError(w, http.StatusFound, req, "invalid_request", "code_challenge_method plain is not allowed (an absent method means plain); use S256")
		return
	case method != "S256":
		i.authzError(w, http.StatusFound, req, "invalid_request", fmt.Sprintf("code_challenge_method %q is not supported; use S256", truncate(method)))
		return
	}
	req.challenge = q.Get("code_challenge")
	if len(req.challenge) != 43 || !validPKCEValue(req.challenge) {
		i.authzError(w, http.StatusFound, req, "invalid_request", "code_challenge must be the 43-character base64url SHA-256 of the code_verifier")
		return
	}
	resource, errDesc := i.requestedResource(q["resource"])
	if errDesc != "" {
		i.authzError(w, http.StatusFound, req, "invalid_target", errDesc)
		return
	}
	req.resource = resource
	scopes, errDesc := i.requestedScopes(q.Get("scope"))
	if errDesc != "" {
		i.authzError(w, http.StatusFound, req, "invalid_scope", errDesc)
		return
	}
	req.scopes = scopes
	req.loginHint = q.Get("login_hint")
	prompt := strings.Fields(q.Get("prompt"))
	if slices.Contains(prompt, "none") {
		if len(prompt) > 1 {
			i.authzError(w, http.StatusFound, req, "invalid_request", "prompt=none cannot be combined with other prompt values")
			return
		}
		if !i.autoApprove {
			i.authzError(w, http.StatusFound, req, "login_required", "the demo issuer keeps no login session; retry without prompt=none")
			return
		}
	}

	if i.autoApprove {
		name := req.loginHint
		if name == "" {
			name = DefaultUser
		}
		user, ok := i.user(name)
		if !ok {
			i.authzError(w, http.StatusFound, req, "access_denied", fmt.Sprintf("login_hint %q names no demo user; use one of %s", truncate(name), i.userNames()))
			return
		}
		i.approve(w, http.StatusFound, req, user, req.scopes)
		return
	}

	page := approvePage{
		Action:       i.endpoint(AuthorizePath),
		ClientName:   cmpOr(req.clientName, req.clientID),
		Resource:     req.resource,
		RedirectURI:  req.redirectURI,
		AskPassword:  i.password != nil,
		AdminOffered: i.AdminOffered(),
	}
	if client.metadataDocument {
		page.ClientVerified = true
		if u, err := url.Parse(client.id); err == nil {
			page.ClientHost = u.Host
		}
	}
	selected := req.loginHint
	if _, ok := i.user(selected); !ok {
		selected = DefaultUser
	}
	for _, u := range i.users {
		page.Users = append(page.Users, pageUser{Name: u.Name, OrgID: u.OrgID, Admin: u.Admin, Selected: u.Name == selected})
	}
	for _, s := range req.scopes {
		page.Scopes = append(page.Scopes, pageScope{Name: s, Description: scopeDescription(s)})
	}
	i.showApprovalPage(w, http.StatusOK, &pendingAuthorization{req: req, page: page, expires: i.now().Add(ApprovalPageLifetime)}, "")
}

// showApprovalPage renders the approval page of p under a new single-use
// nonce, with message on top when it is shown again.
func (i *Issuer) showApprovalPage(w http.ResponseWriter, status int, p *pendingAuthorization, message string) {
	nonce, err := randomToken(32)
	if err != nil {
		i.errorPage(w, http.StatusInternalServerError, "The issuer failed to generate a page nonce.")
		return
	}
	i.store.addPending(nonce, p, i.now())
	page := p.page
	page.Nonce, page.Error = nonce, message
	i.renderPage(w, status, "approve", page)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// requestedResource resolves the resource parameters of a request: none
// means the default resource; one must be known; several distinct ones are
// refused because a token has one audience. It returns an error description
// for invalid_target.
func (i *Issuer) requestedResource(values []string) (string, string) {
	values = slices.Compact(slices.Sorted(slices.Values(values)))
	switch len(values) {
	case 0:
		return i.audience, ""
	case 1:
		if r, ok := i.resource(values[0]); ok {
			return r, ""
		}
		return "", fmt.Sprintf("resource %q is not served by this issuer; it issues tokens for %s", truncate(values[0]), strings.Join(i.resources, ", "))
	default:
		return "", "name one resource per request: a token has one audience"
	}
}

// requestedScopes resolves a scope parameter: empty means the default
// scope; unsupported scopes are dropped (RFC 6749 section 3.3); nothing left
// is an error. It returns an error description for invalid_scope.
func (i *Issuer) requestedScopes(raw string) ([]string, string) {
	if strings.TrimSpace(raw) == "" {
		raw = i.defaultScope
		if raw == "" {
			raw = ScopeToolRead
		}
	}
	kept, dropped, err := i.parseScopeParam(raw)
	if err != nil {
		return nil, err.Error()
	}
	if len(kept) == 0 {
		return nil, fmt.Sprintf("none of the requested scopes (%s) is supported; use %s", truncate(strings.Join(dropped, " ")), strings.Join(i.scopes, ", "))
	}
	return kept, ""
}

// approve issues a code for user with the scopes of chosen the user may be
// granted, and sends it to the client.
func (i *Issuer) approve(w http.ResponseWriter, status int, req authorizationRequest, user DemoUser, chosen []string) {
	granted := grantable(user, chosen)
	if len(granted) == 0 {
		i.authzError(w, status, req, "access_denied", fmt.Sprintf("no requested scope may be granted to %s (only admin is granted %s)", user.Name, ScopeNotesAdmin))
		return
	}
	code, err := randomToken(32)
	if err != nil {
		i.authzError(w, status, req, "server_error", "the issuer failed to generate a code")
		return
	}
	now := i.now()
	i.store.addCode(code, &authorizationCode{
		req:     req,
		user:    user,
		scope:   strings.Join(granted, " "),
		expires: now.Add(AuthorizationCodeLifetime),
	}, now)
	i.authzResponse(w, status, req, url.Values{"code": {code}})
}

// decide handles POST /authorize, the approval page's answer. The page's
// nonce is single-use and is the only link to the pending request, so a
// form posted from another site cannot approve anything. When the issuer
// has a password, an approval must carry it; a denial need not.
func (i *Issuer) decide(w http.ResponseWriter, r *http.Request) {
	form, status, err := readForm(w, r)
	if err != nil {
		i.errorPage(w, status, "%s.", err.Error())
		return
	}
	if err := checkParams(form, "scope"); err != nil {
		i.errorPage(w, http.StatusBadRequest, "%s.", err.Error())
		return
	}
	p, ok := i.store.takePending(form.Get("nonce"), i.now())
	if !ok {
		i.errorPage(w, http.StatusBadRequest, "This approval page has expired or was already answered.")
		return
	}
	req := p.req
	switch form.Get("action") {
	case "approve":
	case "deny":
		i.authzError(w, http.StatusSeeOther, req, "access_denied", "the user denied the request")
		return
	default:
		i.authzError(w, http.StatusSeeOther, req, "invalid_request", "the approval page was answered with neither approve nor deny")
		return
	}
	if i.password != nil && !i.checkPassword(w, r, p, form.Get("password")) {
		return
	}
	user, ok := i.user(form.Get("user"))
	if !ok {
		desc := "no demo user was chosen"
		if name := form.Get("user"); name != "" {
			desc = fmt.Sprintf("%q is not a user who may sign in here", truncate(name))
		}
		i.authzError(w, http.StatusSeeOther, req, "access_denied", fmt.Sprintf("%s; use one of %s", desc, i.userNames()))
		return
	}
	var chosen []string
	for _, s := range req.scopes {
		if slices.Contains(form["scope"], s) {
			chosen = append(chosen, s)
		}
	}
	if len(chosen) == 0 {
		i.authzError(w, http.StatusSeeOther, req, "access_denied", "no scope was approved")
		return
	}
	i.approve(w, http.StatusSeeOther, req, user, chosen)
}

// checkPassword checks the password of an approval. When the client
// address has used up its failures, or the password is missing or wrong,
// it shows the page of p again under a new nonce and reports false.
func (i *Issuer) checkPassword(w http.ResponseWriter, r *http.Request, p *pendingAuthorization, given string) bool {
	now := i.now()
	addr := clientAddress(r)
	if until, blocked := i.failures.blocked(addr, now); blocked {
		w.Header().Set("Retry-After", strconv.Itoa(int(until.Sub(now).Round(time.Second)/time.Second)))
		i.showApprovalPage(w, http.StatusTooManyRequests, p, fmt.Sprintf("Too many wrong passwords came from your address: sign-ins from it are refused until %s.", until.UTC().Format("15:04:05 UTC")))
		return false
	}
	switch {
	case given == "":
		i.showApprovalPage(w, http.StatusForbidden, p, "Enter the password of this demo to approve.")
		return false
	case !i.password.equal(given):
		i.failures.fail(addr, now)
		i.showApprovalPage(w, http.StatusForbidden, p, "Wrong password.")
		return false
	}
	return true
}
