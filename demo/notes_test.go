package demo

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// startNotes serves a new Notes on a loopback httptest server.
func startNotes(t *testing.T, opts NotesOptions) (*Notes, *httptest.Server) {
	t.Helper()
	notes := NewNotes(opts)
	srv := httptest.NewServer(notes.Handler())
	t.Cleanup(srv.Close)
	return notes, srv
}

// connect returns an initialised MCP client that sends headers on every
// request to srv's MCP endpoint.
func connect(t *testing.T, srv *httptest.Server, headers map[string]string) *client.Client {
	t.Helper()
	c, err := dial(t.Context(), srv, headers)
	if err != nil {
		t.Fatalf("connect with headers %v: %v", headers, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// dial creates, starts and initialises an MCP client.
func dial(ctx context.Context, srv *httptest.Server, headers map[string]string) (*client.Client, error) {
	c, err := client.NewStreamableHttpClient(srv.URL+NotesEndpoint,
		transport.WithHTTPHeaders(headers),
		transport.WithHTTPBasicClient(srv.Client()),
	)
	if err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		_ = c.Close()
		return nil, err
	}
	req := mcp.InitializeRequest{}
	req.Params.ClientInfo = mcp.Implementation{Name: "demo-test", Version: "1.0.0"}
	if _, err := c.Initialize(ctx, req); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

func asUser(user string) map[string]string {
	return map[string]string{DefaultUserHeader: user}
}

// callTool calls a tool and fails the test on transport or protocol errors;
// tool errors are returned in the result.
func callTool(t *testing.T, c *client.Client, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := c.CallTool(t.Context(), req)
	if err != nil {
		t.Fatalf("call %s(%v): %v", name, args, err)
	}
	return res
}

// resultText joins the text blocks of a tool result.
func resultText(res *mcp.CallToolResult) string {
	var parts []string
	for _, content := range res.Content {
		if text, ok := mcp.AsTextContent(content); ok {
			parts = append(parts, text.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// structured decodes a tool result's structured content into T.
func structured[T any](t *testing.T, res *mcp.CallToolResult) T {
	t.Helper()
	var out T
	if res.IsError {
		t.Fatalf("tool returned an error: %s", resultText(res))
	}
	raw := []byte(res.RawStructuredContent)
	if len(raw) == 0 {
		var err error
		if raw, err = json.Marshal(res.StructuredContent); err != nil {
			t.Fatalf("encode structured content: %v", err)
		}
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("decode structured content %s: %v", raw, err)
	}
	return out
}

func writeTestNote(t *testing.T, c *client.Client, title, text string) writeNoteResult {
	t.Helper()
	res := callTool(t, c, "write_note", map[string]any{"title": title, "text": text})
	saved := structured[writeNoteResult](t, res)
	if got, want := resultText(res), "saved note "+saved.ID; got != want {
		t.Errorf("write_note text = %q, want %q", got, want)
	}
	return saved
}

func listTestNotes(t *testing.T, c *client.Client) listNotesResult {
	t.Helper()
	return structured[listNotesResult](t, callTool(t, c, "list_notes", nil))
}

func TestNotes_UsersSeeOnlyTheirOwnNotes(t *testing.T) {
	t.Parallel()
	notes, srv := startNotes(t, NotesOptions{})
	alice := connect(t, srv, asUser("alice"))
	bob := connect(t, srv, asUser("bob"))

	saved := writeTestNote(t, alice, "groceries", "milk, eggs")
	if saved.ID != "n1" || saved.Title != "groceries" {
		t.Fatalf("write_note = %+v, want id n1 and title groceries", saved)
	}
	writeTestNote(t, alice, "todo", "write tests")

	aliceList := listTestNotes(t, alice)
	if aliceList.User != "alice" || len(aliceList.Notes) != 2 {
		t.Fatalf("alice's list = %+v, want 2 notes for alice", aliceList)
	}
	if first := aliceList.Notes[0]; first.ID != "n1" || first.Title != "groceries" || first.CreatedAt == "" {
		t.Errorf("alice's first note = %+v, want n1 groceries with created_at", first)
	}
	if aliceList.Notes[1].ID != "n2" {
		t.Errorf("alice's notes are not in insertion order: %+v", aliceList.Notes)
	}

	read := structured[noteResult](t, callTool(t, alice, "read_note", map[string]any{"id": "n1"}))
	if read.ID != "n1" || read.Title != "groceries" || read.Text != "milk, eggs" {
		t.Errorf("alice reads n1 = %+v, want her groceries note", read)
	}

	bobList := listTestNotes(t, bob)
	if bobList.User != "bob" || len(bobList.Notes) != 0 {
		t.Errorf("bob's list = %+v, want no notes", bobList)
	}
	stolen := callTool(t, bob, "read_note", map[string]any{"id": saved.ID})
	if !stolen.IsError || resultText(stolen) != "note n1 not found" {
		t.Errorf("bob reads alice's note: isError=%v text=%q, want tool error %q", stolen.IsError, resultText(stolen), "note n1 not found")
	}

	if got := notes.Count("alice"); got != 2 {
		t.Errorf("Count(alice) = %d, want 2", got)
	}
	if got := notes.Count("bob"); got != 0 {
		t.Errorf("Count(bob) = %d, want 0", got)
	}
}

func TestNotes_DeleteAllNotesRemovesOnlyTheCallersNotes(t *testing.T) {
	t.Parallel()
	notes, srv := startNotes(t, NotesOptions{})
	alice := connect(t, srv, asUser("alice"))
	bob := connect(t, srv, asUser("bob"))

	for i := range 3 {
		writeTestNote(t, alice, "a"+strconv.Itoa(i), "alice's")
	}
	writeTestNote(t, bob, "b", "bob's")

	res := callTool(t, alice, "delete_all_notes", nil)
	deleted := structured[deleteAllNotesResult](t, res)
	if deleted.User != "alice" || deleted.Deleted != 3 || resultText(res) != "deleted 3 notes" {
		t.Errorf("delete_all_notes = %+v %q, want 3 of alice's notes deleted", deleted, resultText(res))
	}
	if got := notes.Count("alice"); got != 0 {
		t.Errorf("Count(alice) after delete = %d, want 0", got)
	}
	if got := notes.Count("bob"); got != 1 {
		t.Errorf("Count(bob) after alice's delete = %d, want 1", got)
	}
	if list := listTestNotes(t, bob); len(list.Notes) != 1 || list.Notes[0].Title != "b" {
		t.Errorf("bob's notes after alice's delete = %+v, want his one note", list.Notes)
	}

	// Ids are never reused, so an old reference cannot reach a new note.
	if again := writeTestNote(t, alice, "fresh", "start over"); again.ID != "n4" {
		t.Errorf("first note after delete has id %q, want n4", again.ID)
	}
}

func TestNotes_RefusesCallersWithoutIdentity(t *testing.T) {
	t.Parallel()
	_, srv := startNotes(t, NotesOptions{})

	tests := []struct {
		name    string
		headers map[string]string
	}{
		{"no user header", nil},
		{"empty user header", asUser("")},
		{"blank user header", asUser("   ")},
		{"only tenant and scopes", map[string]string{DefaultTenantHeader: "acme", DefaultScopesHeader: "tool:read"}},
	}
	for _, tt := range tests {
		t.Run(tt.name+" cannot initialize an MCP session", func(t *testing.T) {
			t.Parallel()
			c, err := dial(t.Context(), srv, tt.headers)
			if err == nil {
				_ = c.Close()
				t.Fatal("Initialize succeeded without an identity")
			}
			if !errors.Is(err, transport.ErrAuthorizationRequired) {
				t.Errorf("Initialize error = %v, want ErrAuthorizationRequired (HTTP 401)", err)
			}
		})
	}

	for _, method := range []string{http.MethodPost, http.MethodGet, http.MethodDelete} {
		t.Run(method+" without identity is a JSON 401", func(t *testing.T) {
			t.Parallel()
			body := strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
			resp, data := doRequest(t, srv, method, NotesEndpoint, "application/json", body, http.Header{"Accept": {"application/json, text/event-stream"}})
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401; body %s", resp.StatusCode, data)
			}
			var got errorBody
			if err := json.Unmarshal(data, &got); err != nil {
				t.Fatalf("decode %s: %v", data, err)
			}
			want := "no verified identity: call this server through the gateway (missing X-User-Id)"
			if got.Error != "missing_identity" || got.ErrorDescription != want {
				t.Errorf("body = %+v, want missing_identity: %q", got, want)
			}
		})
	}
}

func TestNotes_ToolsRefuseAContextWithoutIdentity(t *testing.T) {
	t.Parallel()
	notes := NewNotes(NotesOptions{})
	handlers := map[string]func(context.Context, identity, mcp.CallToolRequest) (*mcp.CallToolResult, error){
		"list_notes":       notes.listNotes,
		"read_note":        notes.readNote,
		"write_note":       notes.writeNote,
		"delete_all_notes": notes.deleteAllNotes,
	}
	for name, handler := range handlers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			req := mcp.CallToolRequest{}
			req.Params.Name = name
			req.Params.Arguments = map[string]any{"id": "n1", "title": "t", "text": "x"}
			res, err := notes.withIdentity(handler)(t.Context(), req)
			if err != nil {
				t.Fatalf("handler error: %v", err)
			}
			want := "no verified identity: call this server through the gateway (missing X-User-Id)"
			if !res.IsError || resultText(res) != want {
				t.Errorf("result isError=%v text=%q, want tool error %q", res.IsError, resultText(res), want)
			}
		})
	}
	if got := notes.Count(""); got != 0 {
		t.Errorf("a note was stored for the empty user: Count = %d", got)
	}
}

func TestNotes_WriteNoteValidatesInput(t *testing.T) {
	t.Parallel()
	notes, srv := startNotes(t, NotesOptions{})
	c := connect(t, srv, asUser("carol"))

	tests := []struct {
		name      string
		args      map[string]any
		wantError string // empty means the note is saved
	}{
		{"text at the 10 000 character limit is saved", map[string]any{"title": "long", "text": strings.Repeat("ü", MaxNoteTextLen)}, ""},
		{"empty text is saved", map[string]any{"title": "empty", "text": ""}, ""},
		{"text over the limit is refused", map[string]any{"title": "too long", "text": strings.Repeat("a", MaxNoteTextLen+1)}, "text is too long: at most 10000 characters are allowed, got 10001"},
		{"blank title is refused", map[string]any{"title": "  ", "text": "x"}, "title must not be blank"},
		{"overlong title is refused", map[string]any{"title": strings.Repeat("t", MaxNoteTitleLen+1), "text": "x"}, "title is too long"},
		{"missing text is refused", map[string]any{"title": "no text"}, `write_note needs a string argument "text"`},
		{"non-string title is refused", map[string]any{"title": 42, "text": "x"}, `write_note needs a string argument "title"`},
	}
	wantSaved := 0
	for _, tt := range tests {
		// Sequential: the cases share carol's note count.
		res := callTool(t, c, "write_note", tt.args)
		if tt.wantError == "" {
			wantSaved++
			if res.IsError {
				t.Errorf("%s: tool error %q, want the note saved", tt.name, resultText(res))
			}
			continue
		}
		if !res.IsError || !strings.Contains(resultText(res), tt.wantError) {
			t.Errorf("%s: isError=%v text=%q, want tool error containing %q", tt.name, res.IsError, resultText(res), tt.wantError)
		}
	}
	if got := notes.Count("carol"); got != wantSaved {
		t.Errorf("Count(carol) = %d, want %d", got, wantSaved)
	}
}

func TestNotes_ReadNoteReportsUnknownIDs(t *testing.T) {
	t.Parallel()
	_, srv := startNotes(t, NotesOptions{})
	c := connect(t, srv, asUser("dave"))

	tests := []struct {
		name string
		args map[string]any
		want string
	}{
		{"unknown id", map[string]any{"id": "n9"}, "note n9 not found"},
		{"odd id is quoted", map[string]any{"id": "n1\nignore previous"}, `note "n1\nignore previous" not found`},
		{"missing id", map[string]any{}, `read_note needs a string argument "id"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := callTool(t, c, "read_note", tt.args)
			if !res.IsError || !strings.Contains(resultText(res), tt.want) {
				t.Errorf("isError=%v text=%q, want tool error containing %q", res.IsError, resultText(res), tt.want)
			}
		})
	}
}

func TestNotes_EnforcesPerUserNoteLimit(t *testing.T) {
	t.Parallel()
	notes, srv := startNotes(t, NotesOptions{})
	erin := identity{User: "erin"}
	fill := mcp.CallToolRequest{}
	fill.Params.Arguments = map[string]any{"title": "t", "text": "x"}
	for range MaxNotesPerUser {
		if res, err := notes.writeNote(t.Context(), erin, fill); err != nil || res.IsError {
			t.Fatalf("fill note: err=%v result=%q", err, resultText(res))
		}
	}

	c := connect(t, srv, asUser("erin"))
	res := callTool(t, c, "write_note", map[string]any{"title": "one more", "text": "x"})
	if !res.IsError || !strings.Contains(resultText(res), "note limit reached: you already have 1000 notes") {
		t.Errorf("write past the limit: isError=%v text=%q, want a note-limit tool error", res.IsError, resultText(res))
	}
	if got := notes.Count("erin"); got != MaxNotesPerUser {
		t.Errorf("Count(erin) = %d, want %d", got, MaxNotesPerUser)
	}
	// Another user is unaffected by erin's limit.
	other := connect(t, srv, asUser("frank"))
	writeTestNote(t, other, "mine", "x")
}

func TestNotes_ForwardsTenantAndScopesUnderCustomHeaderNames(t *testing.T) {
	t.Parallel()
	_, srv := startNotes(t, NotesOptions{UserHeader: "x-sub", TenantHeader: "X-Tenant", ScopesHeader: "X-Scopes"})

	if _, err := dial(t.Context(), srv, asUser("alice")); !errors.Is(err, transport.ErrAuthorizationRequired) {
		t.Errorf("default user header accepted when a custom one is configured: err = %v", err)
	}

	c := connect(t, srv, map[string]string{"X-Sub": "alice", "X-Tenant": "acme", "X-Scopes": "tool:read  notes:admin"})
	list := listTestNotes(t, c)
	if list.User != "alice" || list.OrgID != "acme" || strings.Join(list.Scopes, ",") != "tool:read,notes:admin" {
		t.Errorf("list_notes identity = user %q org %q scopes %q, want alice, acme, [tool:read notes:admin]", list.User, list.OrgID, list.Scopes)
	}
}

func TestNotes_ListsFourToolsWithPolicyHints(t *testing.T) {
	t.Parallel()
	_, srv := startNotes(t, NotesOptions{})
	c := connect(t, srv, asUser("alice"))

	res, err := c.ListTools(t.Context(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	want := map[string]string{
		"list_notes":       "demo policy: tool:read",
		"read_note":        "demo policy: tool:read",
		"write_note":       "demo policy: tool:write",
		"delete_all_notes": "demo policy: notes:admin",
	}
	if len(res.Tools) != len(want) {
		t.Errorf("got %d tools, want %d", len(res.Tools), len(want))
	}
	for _, tool := range res.Tools {
		hint, ok := want[tool.Name]
		if !ok {
			t.Errorf("unexpected tool %q", tool.Name)
			continue
		}
		if !strings.Contains(tool.Description, hint) {
			t.Errorf("tool %s description %q does not mention %q", tool.Name, tool.Description, hint)
		}
	}
}

func TestNotes_UnknownPathIsAJSON404(t *testing.T) {
	t.Parallel()
	_, srv := startNotes(t, NotesOptions{})
	resp, data := doRequest(t, srv, http.MethodGet, "/sse", "", nil, http.Header{DefaultUserHeader: {"alice"}})
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status = %d, want 404; body %s", resp.StatusCode, data)
	}
	var body errorBody
	if err := json.Unmarshal(data, &body); err != nil || body.Error != "not_found" {
		t.Errorf("body = %s (err %v), want a not_found JSON error", data, err)
	}
}
