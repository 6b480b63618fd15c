package mcp_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/gatewaystack/gatewaystack/config"
)

// TestDiscovery: the Protected Resource Metadata is where every challenge
// points, at the path-suffixed and the root location, and it advertises only
// what a client may ask for.
func TestDiscovery(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{})

	for _, path := range []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"} {
		t.Run("metadata is served at "+path, func(t *testing.T) {
			t.Parallel()
			r := do(t, g.client, http.MethodGet, g.URL+path, nil, nil)
			if r.StatusCode != http.StatusOK {
				t.Fatalf("status = %d: %s", r.StatusCode, r.body)
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("Content-Type = %q", ct)
			}
			var md struct {
				Resource               string   `json:"resource"`
				AuthorizationServers   []string `json:"authorization_servers"`
				ScopesSupported        []string `json:"scopes_supported"`
				BearerMethodsSupported []string `json:"bearer_methods_supported"`
			}
			if err := json.Unmarshal(r.body, &md); err != nil {
				t.Fatalf("metadata is not JSON: %v: %s", err, r.body)
			}
			if md.Resource != g.MCP {
				t.Errorf("resource = %q, want %q (the public URL of /mcp, the token audience)", md.Resource, g.MCP)
			}
			if !slices.Equal(md.AuthorizationServers, []string{testIssuer}) {
				t.Errorf("authorization_servers = %q, want [%s]", md.AuthorizationServers, testIssuer)
			}
			got := slices.Sorted(slices.Values(md.ScopesSupported))
			if want := []string{baselineScope, stepUpScope}; !slices.Equal(got, want) {
				t.Errorf("scopes_supported = %q, want baseline ∪ step-up %q", md.ScopesSupported, want)
			}
			for _, never := range []string{entitleScope, "offline_access"} {
				if slices.Contains(md.ScopesSupported, never) {
					t.Errorf("scopes_supported advertises %q", never)
				}
			}
			if !slices.Equal(md.BearerMethodsSupported, []string{"header"}) {
				t.Errorf("bearer_methods_supported = %q, want [header]", md.BearerMethodsSupported)
			}
		})
	}

	t.Run("the challenge's resource_metadata leads to the metadata", func(t *testing.T) {
		t.Parallel()
		r := g.post(t, "", "", rpcBody(t, "tools/list", nil))
		c := parseChallenge(t, r.Header.Get("WWW-Authenticate"))
		m := do(t, g.client, http.MethodGet, c.Params["resource_metadata"], nil, nil)
		if m.StatusCode != http.StatusOK || !strings.Contains(string(m.body), `"resource":"`+g.MCP+`"`) {
			t.Fatalf("GET %s: %d %s", c.Params["resource_metadata"], m.StatusCode, m.body)
		}
	})

	t.Run("with public path /gw the endpoint is /gw/mcp and the metadata /.well-known/oauth-protected-resource/gw/mcp", func(t *testing.T) {
		t.Parallel()
		gw := newGateway(t, gatewayOptions{pathPrefix: "/gw"})
		if !strings.HasSuffix(gw.PRM, "/.well-known/oauth-protected-resource/gw/mcp") {
			t.Fatalf("fixture PRM = %s", gw.PRM)
		}
		r := gw.post(t, "", "", rpcBody(t, "tools/list", nil))
		if r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("POST /gw/mcp without a token: %d", r.StatusCode)
		}
		wantChallenge(t, r, map[string]string{"realm": "mcp", "resource_metadata": gw.PRM, "scope": baselineScope})
		for _, u := range []string{gw.PRM, gw.URL + "/.well-known/oauth-protected-resource"} {
			m := do(t, gw.client, http.MethodGet, u, nil, nil)
			if m.StatusCode != http.StatusOK || !strings.Contains(string(m.body), `"resource":"`+gw.MCP+`"`) {
				t.Fatalf("GET %s: %d %s", u, m.StatusCode, m.body)
			}
		}
		gw.modernCall(t, gw.minter.token("alice", baselineScope), "rec__echo", nil).result(t)
	})

	t.Run("health reports ok, version and upstream names", func(t *testing.T) {
		t.Parallel()
		r := do(t, g.client, http.MethodGet, g.URL+"/health", nil, nil)
		var h struct {
			OK        bool     `json:"ok"`
			Version   string   `json:"version"`
			Upstreams []string `json:"upstreams"`
		}
		if err := json.Unmarshal(r.body, &h); err != nil || r.StatusCode != http.StatusOK {
			t.Fatalf("GET /health: %d %s", r.StatusCode, r.body)
		}
		if !h.OK || h.Version != "test" || !slices.Equal(h.Upstreams, []string{upstreamRec, upstreamNotes}) {
			t.Fatalf("health = %+v", h)
		}
	})
}

// TestAuthorization covers the one decision function behind tools/list and
// tools/call: deny by default, step-up tools listed and challenged, and
// entitlement tools hidden so that they answer exactly like unknown tools.
func TestAuthorization(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{})
	reader := g.minter.token("alice", baselineScope+" profile")
	admin := g.minter.token("root", baselineScope+" "+stepUpScope+" "+entitleScope)
	readerSID := g.initialize(t, reader)
	adminSID := g.initialize(t, admin)

	t.Run("tools/list shows allowed and step-up tools and hides the rest", func(t *testing.T) {
		t.Parallel()
		got := toolNames(t, g.list(t, reader, readerSID).result(t))
		sort.Strings(got)
		want := []string{"notes__list_notes", "notes__read_note", "notes__write_note",
			"rec__adder", "rec__echo", "rec__fancy", "rec__write_thing"}
		if !slices.Equal(got, want) {
			t.Fatalf("tools for a tool:read caller:\n got  %q\n want %q", got, want)
		}
	})

	t.Run("a tool without any policy entry is never listed, even for a caller holding every scope", func(t *testing.T) {
		t.Parallel()
		got := toolNames(t, g.list(t, admin, adminSID).result(t))
		if slices.Contains(got, "rec__unlisted") {
			t.Fatal("rec__unlisted has no policy entry but was listed")
		}
		for _, want := range []string{"rec__purge", "rec__admin_panel", "notes__delete_all_notes", "rec__write_thing"} {
			if !slices.Contains(got, want) {
				t.Errorf("admin does not see %s: %q", want, got)
			}
		}
		// ...and never callable.
		r := g.call(t, admin, adminSID, "rec__unlisted", map[string]any{"marker": "unlisted"})
		if code, _, _ := r.rpcError(t); code != -32602 || g.upstream.sawMarker("unlisted") {
			t.Fatalf("calling a tool without policy: code %d, reached upstream %v", code, g.upstream.sawMarker("unlisted"))
		}
	})

	for _, era := range []string{"session", "stateless"} {
		t.Run("calling a step-up tool answers 403 insufficient_scope with the union of scopes ("+era+")", func(t *testing.T) {
			t.Parallel()
			marker := "stepup-" + randomHex(4)
			var r response
			if era == "session" {
				r = g.call(t, reader, readerSID, "rec__write_thing", map[string]any{"marker": marker})
			} else {
				r = g.modernCall(t, reader, "rec__write_thing", map[string]any{"marker": marker})
			}
			if r.StatusCode != http.StatusForbidden {
				t.Fatalf("status = %d, want 403: %s", r.StatusCode, r.body)
			}
			c := parseChallenge(t, r.Header.Get("WWW-Authenticate"))
			if c.Scheme != "Bearer" || c.Params["error"] != "insufficient_scope" || c.Params["resource_metadata"] != g.PRM {
				t.Fatalf("challenge = %q", r.Header.Get("WWW-Authenticate"))
			}
			// The tool's scopes ∪ the token's current gateway scopes; the
			// token's "profile" is no scope of this gateway.
			scopes := strings.Fields(c.Params["scope"])
			if got := slices.Sorted(slices.Values(scopes)); !slices.Equal(got, []string{baselineScope, stepUpScope}) {
				t.Fatalf("challenge scope = %q, want %q and %q", c.Params["scope"], stepUpScope, baselineScope)
			}
			if code, _, _ := r.rpcError(t); code == 0 {
				t.Fatal("403 without a JSON-RPC error code")
			}
			if g.upstream.sawMarker(marker) {
				t.Fatal("a step-up denial reached the upstream")
			}
		})

		// Regression: a made-up name under an allowed glob (rec__ad_*) used to be
		// forwarded, and the upstream's own "tool 'ad_…' not found" told it apart
		// from a hidden tool. Every non-callable name answers alike.
		t.Run("a hidden tool answers exactly like a tool that does not exist ("+era+")", func(t *testing.T) {
			t.Parallel()
			call := func(tool string) (int, string) {
				var r response
				if era == "session" {
					r = g.call(t, reader, readerSID, tool, map[string]any{"marker": "hidden"})
				} else {
					r = g.modernCall(t, reader, tool, map[string]any{"marker": "hidden"})
				}
				m := r.rpc(t)
				if m.Error == nil {
					t.Fatalf("%s: want an error, got %s", tool, r.body)
				}
				// Compare modulo the id and the tool's own name.
				var body map[string]any
				if err := json.Unmarshal(r.body, &body); err != nil {
					t.Fatal(err)
				}
				delete(body, "id")
				b := string(mustJSON(t, body))
				return r.StatusCode, strings.ReplaceAll(b, tool, "<TOOL>")
			}
			wantStatus, want := call("rec__does_not_exist")
			for _, tool := range []string{
				"rec__purge",              // exact rule, entitlement missing
				"rec__admin_panel",        // glob rule, entitlement missing
				"rec__unlisted",           // exists upstream, no rule
				"notes__delete_all_notes", // exact rule over the allowed notes__* glob
				"rec__ad_does_not_exist",  // allowed by rec__ad*, absent upstream
				"nosuchupstream__tool",
				"plainname",
			} {
				status, got := call(tool)
				if status != wantStatus || got != want {
					t.Errorf("%s answers\n %d %s\nbut an unknown tool answers\n %d %s", tool, status, got, wantStatus, want)
				}
			}
			if g.upstream.sawMarker("hidden") {
				t.Error("a hidden or unknown tool reached the upstream")
			}
		})
	}

	t.Run("the most specific policy pattern decides", func(t *testing.T) {
		t.Parallel()
		// rec__ad* (tool:read) vs rec__admin_* (notes:admin): the longer
		// literal prefix decides for rec__admin_panel only.
		if r := g.call(t, reader, readerSID, "rec__adder", nil); r.rpc(t).Error != nil {
			t.Fatalf("rec__adder (rec__ad*, tool:read) should be callable: %s", r.body)
		}
		if r := g.call(t, reader, readerSID, "rec__admin_panel", nil); r.rpc(t).Error == nil {
			t.Fatalf("rec__admin_panel (rec__admin_*, notes:admin) should be hidden: %s", r.body)
		}
		if r := g.call(t, admin, adminSID, "rec__admin_panel", nil); r.rpc(t).Error != nil {
			t.Fatalf("rec__admin_panel should be callable with notes:admin: %s", r.body)
		}
		// notes__write_note (exact, tool:write) beats notes__* (tool:read).
		if r := g.call(t, reader, readerSID, "notes__write_note", map[string]any{"title": "t", "text": "x"}); r.StatusCode != http.StatusForbidden {
			t.Fatalf("notes__write_note: status %d, want the 403 of its exact rule: %s", r.StatusCode, r.body)
		}
		if r := g.call(t, reader, readerSID, "notes__list_notes", nil); r.rpc(t).Error != nil {
			t.Fatalf("notes__list_notes (notes__*) should be callable: %s", r.body)
		}
	})
}

// TestPassThrough: tool definitions and results reach the client JSON-equal
// to what the upstream sent, apart from the name prefix.
func TestPassThrough(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{})
	admin := g.minter.token("root", baselineScope+" "+stepUpScope+" "+entitleScope)
	sid := g.initialize(t, admin)

	// Talk to the upstream directly, with the same raw client code.
	direct := &gateway{MCP: g.upstream.URL, client: g.client}
	dsid := direct.initialize(t, "")

	t.Run("tool definitions are JSON-equal to the upstream's apart from the prefix", func(t *testing.T) {
		var up, gw struct {
			Tools []json.RawMessage `json:"tools"`
		}
		if err := json.Unmarshal(direct.list(t, "", dsid).result(t), &up); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(g.list(t, admin, sid).result(t), &gw); err != nil {
			t.Fatal(err)
		}
		upByName := map[string]json.RawMessage{}
		for _, raw := range up.Tools {
			var n struct{ Name string }
			_ = json.Unmarshal(raw, &n)
			upByName[n.Name] = raw
		}
		seen := 0
		for _, raw := range gw.Tools {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(raw, &obj); err != nil {
				t.Fatal(err)
			}
			var name string
			_ = json.Unmarshal(obj["name"], &name)
			orig, ok := strings.CutPrefix(name, "rec__")
			if !ok {
				continue
			}
			want, ok := upByName[orig]
			if !ok {
				t.Fatalf("gateway lists %s, which the upstream does not have", name)
			}
			obj["name"] = mustJSON(t, orig)
			if !jsonEqual(t, mustJSON(t, obj), want) {
				t.Errorf("%s differs from the upstream's definition:\n gateway  %s\n upstream %s", name, raw, want)
			}
			seen++
		}
		if seen != len(up.Tools)-1 { // all but rec__unlisted
			t.Fatalf("compared %d rec tools, want %d", seen, len(up.Tools)-1)
		}
		// The comparison covered the unusual fields.
		for _, field := range []string{`"_meta"`, `"outputSchema"`, `"$defs"`, `"x-extension"`, `"title"`} {
			if !strings.Contains(string(upByName["fancy"]), field) {
				t.Fatalf("the fancy tool lacks %s; the test would prove nothing", field)
			}
		}
	})

	for _, tc := range []struct{ tool, field string }{
		{"echo", `"structuredContent"`},
		{"fancy", `"structuredContent"`},
	} {
		t.Run("the "+tc.tool+" result is JSON-equal to the upstream's", func(t *testing.T) {
			args := map[string]any{"text": "héllo <&> \u2028", "city": "Oslo", "n": 1.50, "big": 123456789012345678}
			want := direct.call(t, "", dsid, tc.tool, args).result(t)
			got := g.call(t, admin, sid, "rec__"+tc.tool, args).result(t)
			if !jsonEqual(t, got, want) {
				t.Fatalf("result differs:\n gateway  %s\n upstream %s", got, want)
			}
			if !strings.Contains(string(want), tc.field) {
				t.Fatalf("the upstream result lacks %s; the test would prove nothing", tc.field)
			}
		})
	}
	if !strings.Contains(string(g.call(t, admin, sid, "rec__echo", nil).result(t)), `"_meta"`) {
		t.Fatal("the echo result lost its _meta")
	}
}

// TestIdentity: upstreams see the verified identity and nothing the caller
// claims about itself.
func TestIdentity(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{})

	t.Run("notes are isolated per user through the demo upstream", func(t *testing.T) {
		t.Parallel()
		alice := g.minter.token("alice", baselineScope+" "+stepUpScope)
		bob := g.minter.token("bob", baselineScope+" "+stepUpScope)
		asid, bsid := g.initialize(t, alice), g.initialize(t, bob)

		w := g.call(t, alice, asid, "notes__write_note", map[string]any{"title": "secret plan", "text": "alice's secret"}).result(t)
		var written struct {
			StructuredContent struct{ ID string } `json:"structuredContent"`
		}
		if err := json.Unmarshal(w, &written); err != nil || written.StructuredContent.ID == "" {
			t.Fatalf("write_note: %s", w)
		}
		id := written.StructuredContent.ID

		var bobList struct {
			StructuredContent struct {
				User  string
				Notes []any
			} `json:"structuredContent"`
		}
		if err := json.Unmarshal(g.call(t, bob, bsid, "notes__list_notes", nil).result(t), &bobList); err != nil {
			t.Fatal(err)
		}
		if bobList.StructuredContent.User != "bob" || len(bobList.StructuredContent.Notes) != 0 {
			t.Fatalf("bob's list = %+v, want bob with no notes", bobList.StructuredContent)
		}
		read := g.call(t, bob, bsid, "notes__read_note", map[string]any{"id": id}).result(t)
		if strings.Contains(string(read), "secret") || !strings.Contains(string(read), `"isError":true`) {
			t.Fatalf("bob reading alice's note %s got %s", id, read)
		}
		// The same call works for alice: bob's refusal is isolation.
		if own := g.call(t, alice, asid, "notes__read_note", map[string]any{"id": id}).result(t); !strings.Contains(string(own), "alice's secret") {
			t.Fatalf("alice reading her note got %s", own)
		}
	})

	t.Run("the upstream sees the verified identity, never spoofed identity headers or the caller's Authorization", func(t *testing.T) {
		t.Parallel()
		tok := g.minter.token("alice", baselineScope+" "+stepUpScope)
		marker := "ident-" + randomHex(4)
		body := rpcBody(t, "tools/call", modernParams(map[string]any{"name": "rec__echo", "arguments": map[string]any{"marker": marker}}))
		h := hdr("Mcp-Protocol-Version", modernVersion, "Mcp-Method", "tools/call", "Mcp-Name", "rec__echo",
			"Authorization", bearer(tok), "X-User-Id", "mallory", "X-Org-Id", "evil-corp", "X-User-Scopes", entitleScope,
			"Cookie", "session=stolen", "X-Forwarded-For", "6.6.6.6")
		h["x-user-id"] = []string{"mallory-lower"} // a second spelling, sent as is
		do(t, g.client, http.MethodPost, g.MCP, h, body).result(t)

		runs := g.upstream.runs(marker)
		if len(runs) != 1 {
			t.Fatalf("upstream ran the call %d times, want 1", len(runs))
		}
		got := runs[0].Header
		for name, want := range map[string]string{"X-User-Id": "alice", "X-Org-Id": "acme", "X-User-Scopes": baselineScope + " " + stepUpScope} {
			if vs := got.Values(name); !slices.Equal(vs, []string{want}) {
				t.Errorf("upstream saw %s = %q, want exactly [%q]", name, vs, want)
			}
		}
		for _, name := range []string{"Authorization", "Cookie", "X-Forwarded-For"} {
			if v := got.Values(name); len(v) > 0 {
				t.Errorf("upstream saw the caller's %s: %q", name, v)
			}
		}
		for _, req := range g.upstream.httpRequests() {
			for name, vs := range req.Header {
				for _, v := range vs {
					if strings.Contains(v, "mallory") || strings.Contains(v, tok) || strings.Contains(v, "evil-corp") {
						t.Errorf("upstream request (%s) carried %s: %q", req.Method, name, v)
					}
				}
				if strings.EqualFold(name, "Authorization") {
					t.Errorf("upstream request (%s) carried an Authorization header", req.Method)
				}
			}
		}
	})

	t.Run("a token without org_id sends no tenant header rather than the caller's", func(t *testing.T) {
		t.Parallel()
		c := g.minter.claims("carol", baselineScope)
		delete(c, "org_id")
		marker := "notenant-" + randomHex(4)
		g.modernCall(t, g.minter.sign(c), "rec__echo", map[string]any{"marker": marker}, "X-Org-Id", "evil-corp").result(t)
		runs := g.upstream.runs(marker)
		if len(runs) != 1 {
			t.Fatalf("runs = %d", len(runs))
		}
		if v := runs[0].Header.Values("X-Org-Id"); len(v) != 0 {
			t.Fatalf("upstream saw X-Org-Id %q for a token without org_id", v)
		}
		if v := runs[0].Header.Get("X-User-Id"); v != "carol" {
			t.Fatalf("X-User-Id = %q", v)
		}
	})
}

// TestAudit: one JSON line per decision naming who, what and why, and never
// the token.
func TestAudit(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{})
	tok := g.minter.token("alice", baselineScope)
	sid := g.initialize(t, tok)

	cases := []struct {
		name string
		send func(t *testing.T) response
		want map[string]any
	}{
		{"an allowed call names subject, tenant, tool and upstream",
			func(t *testing.T) response { return g.call(t, tok, sid, "rec__echo", map[string]any{"text": "x"}) },
			map[string]any{"subject": "alice", "tenant": "acme", "method": "tools/call", "tool": "rec__echo", "upstream": "rec", "decision": "allow", "reason": "allowed", "session_id": sid}},
		{"a step-up denial is a deny with scope_missing",
			func(t *testing.T) response { return g.call(t, tok, sid, "rec__write_thing", nil) },
			map[string]any{"subject": "alice", "tenant": "acme", "method": "tools/call", "tool": "rec__write_thing", "decision": "deny", "reason": "scope_missing"}},
		{"a hidden tool is a deny with entitlement_missing",
			func(t *testing.T) response { return g.call(t, tok, sid, "rec__purge", nil) },
			map[string]any{"subject": "alice", "method": "tools/call", "tool": "rec__purge", "decision": "deny", "reason": "entitlement_missing"}},
		{"a tool without policy is a deny with tool_unknown",
			func(t *testing.T) response { return g.call(t, tok, sid, "rec__unlisted", nil) },
			map[string]any{"subject": "alice", "method": "tools/call", "tool": "rec__unlisted", "decision": "deny", "reason": "tool_unknown"}},
		{"a hidden tool in the stateless era is audited with the 400 it answered",
			func(t *testing.T) response { return g.modernCall(t, tok, "rec__purge", nil) },
			map[string]any{"subject": "alice", "method": "tools/call", "tool": "rec__purge", "decision": "deny", "reason": "entitlement_missing", "status": float64(400)}},
		{"tools/list is audited",
			func(t *testing.T) response { return g.list(t, tok, sid) },
			map[string]any{"subject": "alice", "method": "tools/list", "decision": "allow"}},
		{"a missing token is a deny without subject",
			func(t *testing.T) response { return g.post(t, "", "", rpcBody(t, "tools/list", nil)) },
			map[string]any{"decision": "deny", "reason": "credentials_missing"}},
		{"an expired token is a deny",
			func(t *testing.T) response {
				c := g.minter.claims("alice", baselineScope)
				c["exp"] = 1000
				return g.post(t, g.minter.sign(c), "", rpcBody(t, "tools/list", nil))
			},
			map[string]any{"decision": "deny", "reason": "token_expired"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.send(t)
			lines := g.audit.forRequest(t, r.Header.Get("X-Request-Id"))
			if len(lines) != 1 {
				t.Fatalf("want one audit line, got %d: %v", len(lines), lines)
			}
			for k, v := range tc.want {
				if lines[0][k] != v {
					t.Errorf("audit %s = %v, want %v (line %v)", k, lines[0][k], v, lines[0])
				}
			}
			if _, ok := tc.want["subject"]; !ok {
				if _, has := lines[0]["subject"]; has {
					t.Errorf("unauthenticated request audited with a subject: %v", lines[0])
				}
			}
			for _, k := range []string{"time", "latency_ms", "request_id"} {
				if _, ok := lines[0][k]; !ok {
					t.Errorf("audit line lacks %s: %v", k, lines[0])
				}
			}
		})
	}

	t.Run("no audit line ever contains a token or its signature", func(t *testing.T) {
		all := g.audit.String()
		sig := tok[strings.LastIndexByte(tok, '.')+1:]
		if strings.Contains(all, tok) || strings.Contains(all, sig) {
			t.Fatal("the audit stream contains the token")
		}
		if regexp.MustCompile(`eyJ[A-Za-z0-9_-]{10,}\.`).MatchString(all) {
			t.Fatalf("the audit stream contains something that looks like a JWT:\n%s", all)
		}
	})
}

// TestToolNameSmuggling: the name the gateway authorizes is the name every
// upstream executes. encoding/json matches keys case-insensitively (last
// match wins) while most MCP servers (TypeScript, Python) read "name"
// exactly, so params with both "name" and "NAME" must never be forwarded as
// sent.
func TestToolNameSmuggling(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t)
	off := false
	g := newGateway(t, gatewayOptions{
		upstreams: []config.Upstream{{Name: "rec", Prefix: &off, MCP: &config.MCPUpstream{URL: rec.URL}}},
		policy: map[string]config.ToolRule{
			"echo":  {Scopes: []string{baselineScope}},
			"purge": {Scopes: []string{entitleScope}},
		},
	})
	g.upstream = rec
	tok := g.minter.token("mallory", baselineScope)
	sid := g.initialize(t, tok)
	g.list(t, tok, sid).result(t)

	for i, params := range []string{
		`{"name":"purge","NAME":"echo","arguments":{"marker":"MARKER"}}`,
		`{"NAME":"purge","name":"echo","arguments":{"marker":"MARKER"}}`,
		`{"name":"purge","Name":"echo","arguments":{"marker":"MARKER"}}`,
		`{"name":"echo","name":"purge","arguments":{"marker":"MARKER"}}`,
		`{"name":"purge","name":"echo","arguments":{"marker":"MARKER"}}`,
	} {
		marker := fmt.Sprintf("smuggle-%d", i)
		params = strings.ReplaceAll(params, "MARKER", marker)
		t.Run("params "+params, func(t *testing.T) {
			body := []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":` + params + `}`)
			r := g.post(t, tok, sid, body)
			if r.rpc(t).Error == nil {
				// Served: then the upstream, whatever its JSON parser (case-
				// sensitive or not, first or last duplicate wins), must have
				// been asked for the allowed tool only.
				for _, req := range rec.httpRequests() {
					if strings.Contains(string(req.Body), marker) && strings.Contains(string(req.Body), "purge") {
						t.Fatalf("the gateway allowed the call but forwarded the name it refused: %s", req.Body)
					}
				}
			}
			if runs := rec.toolRunsNamed("purge"); runs != 0 {
				t.Fatalf("purge ran %d times for a caller without %s", runs, entitleScope)
			}
		})
	}
}

// TestCatalog: a call resolves only to a tool its upstream has listed, and
// calls to made-up names cannot make the gateway flood the upstream with
// tools/list: at most one listing per upstream per refresh interval.
func TestCatalog(t *testing.T) {
	t.Parallel()
	g := newGateway(t, gatewayOptions{})
	tok := g.minter.token("alice", baselineScope)
	lists := func() int {
		n := 0
		for _, req := range g.upstream.httpRequests() {
			if strings.Contains(string(req.Body), `"method":"tools/list"`) {
				n++
			}
		}
		return n
	}

	// A stateless client calls without ever listing: the first call
	// lists the upstream once, concurrently or not.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, body := g.modernRequest(tok, fmt.Sprintf("rec__ad_made_up_%d", i), nil)
			r, err := send(g.client, http.MethodPost, g.MCP, h, body)
			if err != nil {
				t.Error(err)
				return
			}
			if r.StatusCode != http.StatusBadRequest || !strings.Contains(string(r.body), "Unknown tool") {
				t.Errorf("made-up tool: %d %s", r.StatusCode, r.body)
			}
		}()
	}
	wg.Wait()
	if n := lists(); n != 1 {
		t.Fatalf("20 calls to made-up tools caused %d upstream tools/list, want 1", n)
	}
	// A real tool is found in that listing without another one.
	g.modernCall(t, tok, "rec__adder", nil).result(t)
	for i := range 20 {
		g.modernCall(t, tok, fmt.Sprintf("rec__ad_other_%d", i), nil)
	}
	if n := lists(); n != 1 {
		t.Fatalf("more made-up calls within the interval caused %d tools/list in all, want still 1", n)
	}
}
