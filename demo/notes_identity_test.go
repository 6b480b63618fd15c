package demo

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gatewaystack/gatewaystack/upstream"
)

// Regression invariant: the notes server reads the identity headers in the
// gateway's encoding, so a user whose subject holds a comma or letters
// outside ASCII keeps their own notes under their own verified name, apart
// from every other user, and the tenant and scopes decode alike.
func TestNotes_DecodesIdentityHeadersEncodedByTheGateway(t *testing.T) {
	t.Parallel()
	notes, srv := startNotes(t, NotesOptions{})
	enc := upstream.EncodeIdentityValue

	dn := connect(t, srv, map[string]string{
		DefaultUserHeader:   enc("cn=alice,ou=people"),
		DefaultTenantHeader: enc("acme, evilcorp"),
		DefaultScopesHeader: enc("tool:read") + " " + enc("odd,scope"),
	})
	writeTestNote(t, dn, "ldap", "x")
	list := listTestNotes(t, dn)
	if list.User != "cn=alice,ou=people" || list.OrgID != "acme, evilcorp" || !slices.Equal(list.Scopes, []string{"tool:read", "odd,scope"}) {
		t.Errorf("identity = user %q org %q scopes %q, want the decoded values", list.User, list.OrgID, list.Scopes)
	}

	jose := connect(t, srv, map[string]string{DefaultUserHeader: enc("José")})
	writeTestNote(t, jose, "mine", "y")
	if got := listTestNotes(t, jose); got.User != "José" || len(got.Notes) != 1 || got.Notes[0].Title != "mine" {
		t.Errorf("José sees %+v, want one note of his own", got)
	}

	// "cn=alice" is another user than "cn=alice,ou=people".
	if got := listTestNotes(t, connect(t, srv, asUser("cn=alice"))); len(got.Notes) != 0 {
		t.Errorf("cn=alice sees %+v, want no notes", got.Notes)
	}
	if notes.Count("cn=alice,ou=people") != 1 || notes.Count("José") != 1 || notes.Count(enc("José")) != 0 {
		t.Errorf("notes are not keyed by the decoded subjects")
	}
}

// A header that is not in the gateway's encoding (a raw comma, raw
// non-ASCII bytes, a broken escape) is refused with 400 before the MCP
// transport sees it.
func TestNotes_RefusesIdentityHeadersNotEncodedByTheGateway(t *testing.T) {
	t.Parallel()
	_, srv := startNotes(t, NotesOptions{})
	for _, h := range []http.Header{
		{DefaultUserHeader: {"alice,admin"}},
		{DefaultUserHeader: {"Jos\xc3\xa9"}},
		{DefaultUserHeader: {"alice%2"}},
		{DefaultUserHeader: {"alice"}, DefaultTenantHeader: {"acme, evilcorp"}},
		{DefaultUserHeader: {"alice"}, DefaultScopesHeader: {"tool:read a,b"}},
	} {
		h.Set("Accept", "application/json, text/event-stream")
		body := strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
		resp, data := doRequest(t, srv, http.MethodPost, NotesEndpoint, "application/json", body, h)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("headers %v: status %d, want 400; body %s", h, resp.StatusCode, data)
			continue
		}
		var got errorBody
		if err := json.Unmarshal(data, &got); err != nil || got.Error != "invalid_identity" {
			t.Errorf("headers %v: body %s, want invalid_identity", h, data)
		}
	}
}
