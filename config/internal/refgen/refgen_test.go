package refgen

import (
	"reflect"
	"strings"
	"testing"

	"github.com/gatewaystack/gatewaystack/config"
)

// A default SetDefaults takes from another field names that field rather
// than showing the value an empty configuration happens to get.
func TestDerivedDefaultsNameTheirSource(t *testing.T) {
	t.Parallel()
	d := defaultsByPath()
	for path, want := range map[string]string{
		"listen":                   "`127.0.0.1:8080`",
		"auth.jwks_uri":            "`<auth.issuer>/.well-known/jwks.json`",
		"limits.per_subject.burst": "`600` (same as `limits.per_subject.requests`)",
		"upstreams[].timeout":      "`30s` (same as `server.upstream_timeout`)",
		"proxy.max_body_bytes":     "`0` (`67108864` when `proxy.target` is set)",
		"auth.issuer":              "—",
	} {
		if got := d[path]; got != want {
			t.Errorf("default of %s = %q, want %q", path, got, want)
		}
	}
}

// Comments become Markdown that renders as written: Go field names turn
// into YAML names, and <placeholders>, snake_case and globs into code.
func TestMarkdownKeepsCommentsLiteral(t *testing.T) {
	t.Parallel()
	docs, _, err := parseDocs("../..")
	if err != nil {
		t.Fatal(err)
	}
	g := &generator{docs: docs, goNames: map[string]map[string]bool{}}
	g.collectNames(reflect.TypeFor[config.Config]())
	for in, want := range map[string]string{
		"PublicURL is the base (default http://<listen>).": "`public_url` is the base (default `http://<listen>`).",
		"fail_closed or fail_open":                         "`fail_closed` or `fail_open`",
		`e.g. {Authorization: "Bearer ${KEY}"}. Never`:     "e.g. `{Authorization: \"Bearer ${KEY}\"}`. Never",
		"a glob with * and a|b":                            "a glob with `*` and `a\\|b`",
	} {
		if got := g.markdown(in, "Config"); got != want {
			t.Errorf("markdown(%q) = %q, want %q", in, got, want)
		}
	}
	if got := g.markdown("MCP is an MCP server.", "Upstream"); !strings.HasPrefix(got, "`mcp` is an MCP server") {
		t.Errorf("an acronym field name is replaced only as the first word: %q", got)
	}
}
