package demo

import (
	"slices"
	"sync"
	"time"
)

// sweepInterval is how often the store drops expired entries. Sweeping is
// done by the requests themselves, so an Issuer owns no goroutine.
const sweepInterval = time.Minute

// clientRecord is a registered client, or a client described by a Client ID
// Metadata Document (metadataDocument).
type clientRecord struct {
	id               string
	name             string
	secret           secretHash // zero for public clients
	authMethod       string
	redirectURIs     []string
	grantTypes       []string
	responseTypes    []string
	scope            string
	issuedAt         time.Time
	lastUsed         time.Time
	metadataDocument bool
}

func (c *clientRecord) confidential() bool { return c.authMethod != authMethodNone }

// allows reports whether the client may use grant type g. Refresh tokens
// come with authorization codes.
func (c *clientRecord) allows(g string) bool {
	if g == grantRefreshToken {
		return slices.Contains(c.grantTypes, grantAuthorizationCode) || slices.Contains(c.grantTypes, grantRefreshToken)
	}
	return slices.Contains(c.grantTypes, g)
}

// authorizationRequest is a validated GET /authorize request.
type authorizationRequest struct {
	clientID         string
	clientName       string
	redirectURI      string
	redirectProvided bool // the request named redirect_uri (so /token must too)
	state            string
	statePresent     bool
	challenge        string
	resource         string
	scopes           []string // requested and supported
	loginHint        string
}

// pendingAuthorization is an approval page waiting for its answer. A page
// shown again (a wrong password) keeps its request, page and expiry.
type pendingAuthorization struct {
	req     authorizationRequest
	page    approvePage // without nonce and message
	expires time.Time
}

// authorizationCode is an issued code. A used code is kept until it expires
// so that a replay is recognised and revokes what the code gave.
type authorizationCode struct {
	req     authorizationRequest
	user    DemoUser
	scope   string // granted
	expires time.Time
	used    bool
	grantID string // the grant created when the code was exchanged
}

// issuedToken is an access token issued under a grant.
type issuedToken struct {
	jti     string
	expires time.Time
}

// grant is what one authorization code gave: the family of refresh tokens
// rotated from it and the access tokens issued with them.
type grant struct {
	id       string
	clientID string
	user     DemoUser
	scope    string // as originally granted: refreshes may narrow it, never widen
	resource string
	revoked  bool
	expires  time.Time // when its newest refresh token expires
	tokens   []issuedToken
}

// refreshRecord is an issued refresh token. A used one is kept until it
// expires so that a replay is recognised and revokes its grant.
type refreshRecord struct {
	grantID string
	expires time.Time
	used    bool
}

// oauthStore holds all of the authorization server's state, in memory and
// bounded: every map has a cap at which its oldest entry is dropped.
type oauthStore struct {
	mu        sync.Mutex
	lastSweep time.Time
	clients   map[string]*clientRecord
	pending   map[string]*pendingAuthorization // by nonce
	codes     map[secretHash]*authorizationCode
	grants    map[string]*grant
	refresh   map[secretHash]*refreshRecord
	revoked   map[string]time.Time // access token jti → its expiry
}

func newOAuthStore() *oauthStore {
	return &oauthStore{
		clients: make(map[string]*clientRecord),
		pending: make(map[string]*pendingAuthorization),
		codes:   make(map[secretHash]*authorizationCode),
		grants:  make(map[string]*grant),
		refresh: make(map[secretHash]*refreshRecord),
		revoked: make(map[string]time.Time),
	}
}

// sweepLocked drops expired entries, at most once per sweepInterval. The
// caller holds s.mu.
func (s *oauthStore) sweepLocked(now time.Time) {
	if d := now.Sub(s.lastSweep); d >= 0 && d < sweepInterval {
		return
	}
	s.lastSweep = now
	for id, c := range s.clients {
		if now.Sub(c.lastUsed) > ClientIdleLifetime {
			delete(s.clients, id)
		}
	}
	for k, p := range s.pending {
		if !now.Before(p.expires) {
			delete(s.pending, k)
		}
	}
	for k, c := range s.codes {
		if !now.Before(c.expires) {
			delete(s.codes, k)
		}
	}
	for k, r := range s.refresh {
		if !now.Before(r.expires) {
			delete(s.refresh, k)
		}
	}
	for id, g := range s.grants {
		if !now.Before(g.expires) {
			delete(s.grants, id)
		}
	}
	for jti, exp := range s.revoked {
		if !now.Before(exp) {
			delete(s.revoked, jti)
		}
	}
}

// makeRoom drops the entries of m with the earliest time until m has room
// for one more below limit.
func makeRoom[K comparable, V any](m map[K]V, limit int, at func(V) time.Time) {
	for len(m) >= limit {
		var (
			oldestKey K
			oldest    time.Time
			found     bool
		)
		for k, v := range m {
			if t := at(v); !found || t.Before(oldest) {
				oldestKey, oldest, found = k, t, true
			}
		}
		delete(m, oldestKey)
	}
}

func (s *oauthStore) addClient(c *clientRecord, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	makeRoom(s.clients, maxClients, func(c *clientRecord) time.Time { return c.lastUsed })
	s.clients[c.id] = c
}

// client returns a copy of the registered client id and marks it used.
func (s *oauthStore) client(id string, now time.Time) (clientRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	c, ok := s.clients[id]
	if !ok {
		return clientRecord{}, false
	}
	c.lastUsed = now
	return *c, true
}

func (s *oauthStore) addPending(nonce string, p *pendingAuthorization, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	makeRoom(s.pending, maxPending, func(p *pendingAuthorization) time.Time { return p.expires })
	s.pending[nonce] = p
}

// takePending removes and returns the page with nonce, if it has not
// expired: a page can be answered once.
func (s *oauthStore) takePending(nonce string, now time.Time) (*pendingAuthorization, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	p, ok := s.pending[nonce]
	if !ok {
		return nil, false
	}
	delete(s.pending, nonce)
	if !now.Before(p.expires) {
		return nil, false
	}
	return p, true
}

func (s *oauthStore) addCode(code string, c *authorizationCode, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	makeRoom(s.codes, maxCodes, func(c *authorizationCode) time.Time { return c.expires })
	s.codes[hashSecret(code)] = c
}

// addGrantLocked stores g. The caller holds s.mu.
func (s *oauthStore) addGrantLocked(g *grant) {
	makeRoom(s.grants, maxGrants, func(g *grant) time.Time { return g.expires })
	s.grants[g.id] = g
}

// addRefreshLocked stores a refresh token of grant g and extends g's life
// to it. The caller holds s.mu.
func (s *oauthStore) addRefreshLocked(token string, g *grant, expires time.Time) {
	makeRoom(s.refresh, maxRefreshTokens, func(r *refreshRecord) time.Time { return r.expires })
	s.refresh[hashSecret(token)] = &refreshRecord{grantID: g.id, expires: expires}
	if expires.After(g.expires) {
		g.expires = expires
	}
}

// recordToken remembers an access token issued under g, so that
// revoking g can name it. Tokens that have expired are forgotten. The
// caller holds the store's lock.
func (g *grant) recordToken(t issuedToken, now time.Time) {
	g.tokens = slices.DeleteFunc(g.tokens, func(t issuedToken) bool { return !now.Before(t.expires) })
	if len(g.tokens) >= maxJTIsPerGrant {
		g.tokens = slices.Delete(g.tokens, 0, len(g.tokens)-maxJTIsPerGrant+1)
	}
	g.tokens = append(g.tokens, t)
}

// revokeGrantLocked revokes g: its refresh tokens stop working and its
// access tokens that have not expired are listed as revoked. The caller
// holds s.mu.
func (s *oauthStore) revokeGrantLocked(g *grant, now time.Time) {
	g.revoked = true
	for _, t := range g.tokens {
		if now.Before(t.expires) {
			makeRoom(s.revoked, maxRevokedTokens, func(exp time.Time) time.Time { return exp })
			s.revoked[t.jti] = t.expires
		}
	}
	g.tokens = nil
}

// isRevoked reports whether the access token jti was revoked.
func (s *oauthStore) isRevoked(jti string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.revoked[jti]
	return ok && now.Before(exp)
}
