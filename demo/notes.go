package demo

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/gatewaystack/gatewaystack/upstream"
)

const (
	// NotesEndpoint is the path of the notes server's MCP endpoint.
	NotesEndpoint = "/mcp"

	// DefaultUserHeader is the header carrying the verified user id.
	DefaultUserHeader = "X-User-Id"
	// DefaultTenantHeader is the header carrying the user's organisation.
	DefaultTenantHeader = "X-Org-Id"
	// DefaultScopesHeader is the header carrying the space-separated scopes.
	DefaultScopesHeader = "X-User-Scopes"
	// DefaultUpstreamSecretHeader is the header carrying the secret shared
	// with the gateway (NotesOptions.UpstreamSecret).
	DefaultUpstreamSecretHeader = "X-Gatewaystack-Upstream-Secret"

	// MaxNoteTextLen is the longest note text accepted, in characters.
	MaxNoteTextLen = 10000
	// MaxNoteTitleLen is the longest note title accepted, in characters.
	MaxNoteTitleLen = 200
	// MaxNotesPerUser is how many notes one user may keep.
	MaxNotesPerUser = 1000

	notesServerName    = "gatewaystack-demo-notes"
	notesServerVersion = "1.0.0"
)

// NotesOptions configures NewNotes. Empty fields take their defaults.
type NotesOptions struct {
	// UserHeader names the header with the verified user id set by the
	// gateway. Default DefaultUserHeader.
	UserHeader string
	// TenantHeader names the header with the user's organisation. Default
	// DefaultTenantHeader.
	TenantHeader string
	// ScopesHeader names the header with the user's scopes. Default
	// DefaultScopesHeader.
	ScopesHeader string
	// UpstreamSecret, when set, must arrive in UpstreamSecretHeader on
	// every request to the MCP endpoint: the gateway sends it as a static
	// header of this upstream, so another process on the machine cannot
	// call the server directly and claim any user id. A request without it
	// gets 401, one with another value 403, both before the identity is
	// read; the value is compared in constant time. Empty means no check,
	// for tests that call the server directly; gatewaystack demo always
	// sets a random secret per run.
	UpstreamSecret string
	// UpstreamSecretHeader names the header with the secret. Default
	// DefaultUpstreamSecretHeader.
	UpstreamSecretHeader string
}

// Notes is a demo upstream MCP server that keeps notes per user in memory.
// It trusts the identity headers set by the gateway, decoding each value
// with upstream.DecodeIdentityValue (the gateway percent-encodes commas,
// spaces and non-ASCII letters), and refuses requests without them, so
// each user only ever sees their own notes. With an upstream secret it
// believes those headers only on requests that carry the secret, that is,
// that came through the gateway.
//
// A Notes is safe for concurrent use.
type Notes struct {
	userHeader   string
	tenantHeader string
	scopesHeader string
	secretHeader string
	secret       *secretHash // nil: no check
	handler      http.Handler

	mu    sync.Mutex
	users map[string]*userNotes
}

// userNotes is one user's notes, in insertion order.
type userNotes struct {
	lastID int
	notes  []note
}

type note struct {
	ID        string
	Title     string
	Text      string
	CreatedAt time.Time
}

// identity is what the gateway told the notes server about the caller.
type identity struct {
	User   string
	Org    string
	Scopes []string
}

// identityKey is the context key under which an identity is stored.
type identityKey struct{}

// NewNotes returns a notes server with no notes.
func NewNotes(opts NotesOptions) *Notes {
	n := &Notes{
		userHeader:   headerOrDefault(opts.UserHeader, DefaultUserHeader),
		tenantHeader: headerOrDefault(opts.TenantHeader, DefaultTenantHeader),
		scopesHeader: headerOrDefault(opts.ScopesHeader, DefaultScopesHeader),
		secretHeader: headerOrDefault(opts.UpstreamSecretHeader, DefaultUpstreamSecretHeader),
		users:        make(map[string]*userNotes),
	}
	if opts.UpstreamSecret != "" {
		h := hashSecret(opts.UpstreamSecret)
		n.secret = &h
	}

	mcpServer := server.NewMCPServer(notesServerName, notesServerVersion,
		server.WithToolCapabilities(false),
		server.WithRecovery(),
		server.WithInstructions("Per-user notes. Every call acts on the notes of the user the gateway authenticated."),
	)
	n.addTools(mcpServer)
	streamable := server.NewStreamableHTTPServer(mcpServer,
		server.WithEndpointPath(NotesEndpoint),
		server.WithHTTPContextFunc(n.identityContext),
	)

	mux := http.NewServeMux()
	mux.Handle(NotesEndpoint, n.requireGateway(n.requireIdentity(streamable)))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no such endpoint %q; the MCP endpoint is %s", r.URL.Path, NotesEndpoint))
	})
	n.handler = mux
	return n
}

func headerOrDefault(name, fallback string) string {
	name = strings.TrimSpace(name)
	if name == "" {
		name = fallback
	}
	return http.CanonicalHeaderKey(name)
}

// Handler returns the server's HTTP handler. It serves the MCP streamable
// HTTP transport (POST, GET and DELETE) at NotesEndpoint and answers 401 to
// any request there that lacks the upstream secret (when one is set) or
// the user header, and 403 to one with a wrong secret.
func (n *Notes) Handler() http.Handler { return n.handler }

// Count returns how many notes user has.
func (n *Notes) Count(user string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if u, ok := n.users[user]; ok {
		return len(u.notes)
	}
	return 0
}

func (n *Notes) missingIdentityMessage() string {
	return "no verified identity: call this server through the gateway (missing " + n.userHeader + ")"
}

// requireGateway refuses requests that do not carry the upstream secret,
// when one is set: 401 without the header, 403 with another value.
func (n *Notes) requireGateway(next http.Handler) http.Handler {
	if n.secret == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		values := r.Header.Values(n.secretHeader)
		switch {
		case len(values) == 0:
			writeError(w, http.StatusUnauthorized, "not_from_gateway", "this server accepts only requests that come through the gateway: the "+n.secretHeader+" header is missing")
			return
		case len(values) > 1 || !n.secret.equal(values[0]):
			writeError(w, http.StatusForbidden, "not_from_gateway", "this server accepts only requests that come through the gateway: the "+n.secretHeader+" header does not match")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requireIdentity refuses requests without a non-blank user header (401),
// or with identity headers the gateway did not encode (400), before they
// reach the MCP transport.
func (n *Notes) requireIdentity(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.TrimSpace(r.Header.Get(n.userHeader)) == "" {
			writeError(w, http.StatusUnauthorized, "missing_identity", n.missingIdentityMessage())
			return
		}
		if _, err := n.identityFromHeaders(r.Header); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_identity", err.Error())
			return
		}
		next.ServeHTTP(w, r)
	})
}

// identityFromHeaders reads the identity headers the gateway set. Each
// value is decoded with upstream.DecodeIdentityValue; the scopes header is
// split at spaces first, each scope being encoded on its own. The error
// names the header that is not in the gateway's encoding.
func (n *Notes) identityFromHeaders(h http.Header) (identity, error) {
	var id identity
	var err error
	if id.User, err = upstream.DecodeIdentityValue(h.Get(n.userHeader)); err != nil {
		return identity{}, fmt.Errorf("the %s header is not an identity value encoded by the gateway: %w", n.userHeader, err)
	}
	if id.Org, err = upstream.DecodeIdentityValue(h.Get(n.tenantHeader)); err != nil {
		return identity{}, fmt.Errorf("the %s header is not an identity value encoded by the gateway: %w", n.tenantHeader, err)
	}
	for _, f := range strings.Fields(h.Get(n.scopesHeader)) {
		scope, err := upstream.DecodeIdentityValue(f)
		if err != nil {
			return identity{}, fmt.Errorf("the %s header is not a list of scopes encoded by the gateway: %w", n.scopesHeader, err)
		}
		id.Scopes = append(id.Scopes, scope)
	}
	return id, nil
}

// identityContext copies the decoded identity headers into ctx; it is the
// MCP transport's HTTPContextFunc. Headers that do not decode give no
// identity, so the tools refuse to run.
func (n *Notes) identityContext(ctx context.Context, r *http.Request) context.Context {
	id, err := n.identityFromHeaders(r.Header)
	if err != nil || id.User == "" {
		return ctx
	}
	return context.WithValue(ctx, identityKey{}, id)
}

func identityFrom(ctx context.Context) (identity, bool) {
	id, ok := ctx.Value(identityKey{}).(identity)
	return id, ok && id.User != ""
}

// withIdentity wraps a tool handler so that it only runs for a caller with
// a verified identity. The HTTP middleware already enforces this; the check
// here keeps the tools safe should they be served some other way.
func (n *Notes) withIdentity(h func(context.Context, identity, mcp.CallToolRequest) (*mcp.CallToolResult, error)) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		id, ok := identityFrom(ctx)
		if !ok {
			return mcp.NewToolResultError(n.missingIdentityMessage()), nil
		}
		return h(ctx, id, req)
	}
}

func (n *Notes) addTools(s *server.MCPServer) {
	s.AddTool(mcp.NewTool("list_notes",
		mcp.WithDescription("List your notes, oldest first (demo policy: tool:read)."),
		mcp.WithToolAnnotation(readOnlyAnnotation("List notes")),
	), n.withIdentity(n.listNotes))

	s.AddTool(mcp.NewTool("read_note",
		mcp.WithDescription("Read one of your notes by id (demo policy: tool:read)."),
		mcp.WithToolAnnotation(readOnlyAnnotation("Read note")),
		mcp.WithString("id", mcp.Required(), mcp.Description(`The note id as returned by list_notes or write_note, e.g. "n1".`)),
	), n.withIdentity(n.readNote))

	s.AddTool(mcp.NewTool("write_note",
		mcp.WithDescription("Save a new note (demo policy: tool:write)."),
		mcp.WithToolAnnotation(mcp.ToolAnnotation{
			Title:           "Write note",
			ReadOnlyHint:    mcp.ToBoolPtr(false),
			DestructiveHint: mcp.ToBoolPtr(false),
			IdempotentHint:  mcp.ToBoolPtr(false),
			OpenWorldHint:   mcp.ToBoolPtr(false),
		}),
		mcp.WithString("title", mcp.Required(), mcp.MinLength(1), mcp.MaxLength(MaxNoteTitleLen), mcp.Description("A short title for the note.")),
		mcp.WithString("text", mcp.Required(), mcp.MaxLength(MaxNoteTextLen), mcp.Description("The note's text.")),
	), n.withIdentity(n.writeNote))

	s.AddTool(mcp.NewTool("delete_all_notes",
		mcp.WithDescription("Delete all of your notes and return how many were deleted (demo policy: notes:admin)."),
		mcp.WithToolAnnotation(mcp.ToolAnnotation{
			Title:           "Delete all notes",
			ReadOnlyHint:    mcp.ToBoolPtr(false),
			DestructiveHint: mcp.ToBoolPtr(true),
			IdempotentHint:  mcp.ToBoolPtr(true),
			OpenWorldHint:   mcp.ToBoolPtr(false),
		}),
	), n.withIdentity(n.deleteAllNotes))
}

func readOnlyAnnotation(title string) mcp.ToolAnnotation {
	return mcp.ToolAnnotation{
		Title:           title,
		ReadOnlyHint:    mcp.ToBoolPtr(true),
		DestructiveHint: mcp.ToBoolPtr(false),
		IdempotentHint:  mcp.ToBoolPtr(true),
		OpenWorldHint:   mcp.ToBoolPtr(false),
	}
}

// noteSummary is a note as listed by list_notes.
type noteSummary struct {
	ID        string `json:"id"`
	Title     string `json:"title"`
	CreatedAt string `json:"created_at"`
}

// listNotesResult is the structured result of list_notes.
type listNotesResult struct {
	User   string        `json:"user"`
	OrgID  string        `json:"org_id,omitempty"`
	Scopes []string      `json:"scopes,omitempty"`
	Notes  []noteSummary `json:"notes"`
}

// noteResult is the structured result of read_note.
type noteResult struct {
	ID        string `json:"id"`
	Title     string `json:"title"`
	Text      string `json:"text"`
	CreatedAt string `json:"created_at"`
}

// writeNoteResult is the structured result of write_note.
type writeNoteResult struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

// deleteAllNotesResult is the structured result of delete_all_notes.
type deleteAllNotesResult struct {
	User    string `json:"user"`
	Deleted int    `json:"deleted"`
}

func (n *Notes) listNotes(_ context.Context, id identity, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	result := listNotesResult{User: id.User, OrgID: id.Org, Scopes: id.Scopes, Notes: []noteSummary{}}
	n.mu.Lock()
	if u, ok := n.users[id.User]; ok {
		for _, nt := range u.notes {
			result.Notes = append(result.Notes, noteSummary{ID: nt.ID, Title: nt.Title, CreatedAt: nt.CreatedAt.Format(time.RFC3339)})
		}
	}
	n.mu.Unlock()

	var text strings.Builder
	switch len(result.Notes) {
	case 0:
		fmt.Fprintf(&text, "%s has no notes.", id.User)
	case 1:
		fmt.Fprintf(&text, "%s has 1 note:", id.User)
	default:
		fmt.Fprintf(&text, "%s has %d notes:", id.User, len(result.Notes))
	}
	for _, s := range result.Notes {
		fmt.Fprintf(&text, "\n- %s: %s", s.ID, s.Title)
	}
	return mcp.NewToolResultStructured(result, text.String()), nil
}

func (n *Notes) readNote(_ context.Context, id identity, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	noteID, err := req.RequireString("id")
	if err != nil {
		return mcp.NewToolResultError(`read_note needs a string argument "id", e.g. "n1"`), nil
	}
	n.mu.Lock()
	var (
		found note
		ok    bool
	)
	if u, exists := n.users[id.User]; exists {
		for _, candidate := range u.notes {
			if candidate.ID == noteID {
				found, ok = candidate, true
				break
			}
		}
	}
	n.mu.Unlock()
	if !ok {
		return mcp.NewToolResultError(fmt.Sprintf("note %s not found", displayID(noteID))), nil
	}
	result := noteResult{ID: found.ID, Title: found.Title, Text: found.Text, CreatedAt: found.CreatedAt.Format(time.RFC3339)}
	return mcp.NewToolResultStructured(result, fmt.Sprintf("%s (%s)\n\n%s", found.Title, found.ID, found.Text)), nil
}

// displayID returns a note id as given by a caller, quoted unless it is a
// short run of letters, digits, '-' and '_' that is safe to show as is.
func displayID(id string) string {
	if id == "" || len(id) > 64 {
		return strconv.Quote(id)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return strconv.Quote(id)
		}
	}
	return id
}

func (n *Notes) writeNote(_ context.Context, id identity, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	title, err := req.RequireString("title")
	if err != nil {
		return mcp.NewToolResultError(`write_note needs a string argument "title"`), nil
	}
	text, err := req.RequireString("text")
	if err != nil {
		return mcp.NewToolResultError(`write_note needs a string argument "text"`), nil
	}
	title = strings.TrimSpace(title)
	switch {
	case title == "":
		return mcp.NewToolResultError("title must not be blank"), nil
	case utf8.RuneCountInString(title) > MaxNoteTitleLen:
		return mcp.NewToolResultError(fmt.Sprintf("title is too long: at most %d characters are allowed", MaxNoteTitleLen)), nil
	case utf8.RuneCountInString(text) > MaxNoteTextLen:
		return mcp.NewToolResultError(fmt.Sprintf("text is too long: at most %d characters are allowed, got %d", MaxNoteTextLen, utf8.RuneCountInString(text))), nil
	}

	n.mu.Lock()
	u, ok := n.users[id.User]
	if !ok {
		u = &userNotes{}
		n.users[id.User] = u
	}
	if len(u.notes) >= MaxNotesPerUser {
		n.mu.Unlock()
		return mcp.NewToolResultError(fmt.Sprintf("note limit reached: you already have %d notes; delete some with delete_all_notes first", MaxNotesPerUser)), nil
	}
	u.lastID++
	saved := note{ID: "n" + strconv.Itoa(u.lastID), Title: title, Text: text, CreatedAt: time.Now().UTC().Truncate(time.Second)}
	u.notes = append(u.notes, saved)
	n.mu.Unlock()

	return mcp.NewToolResultStructured(writeNoteResult{ID: saved.ID, Title: saved.Title}, "saved note "+saved.ID), nil
}

func (n *Notes) deleteAllNotes(_ context.Context, id identity, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	n.mu.Lock()
	deleted := 0
	if u, ok := n.users[id.User]; ok {
		deleted = len(u.notes)
		// Keep lastID so that ids are never reused for this user.
		u.notes = nil
	}
	n.mu.Unlock()

	text := fmt.Sprintf("deleted %d notes", deleted)
	if deleted == 1 {
		text = "deleted 1 note"
	}
	return mcp.NewToolResultStructured(deleteAllNotesResult{User: id.User, Deleted: deleted}, text), nil
}
