package proxy

import (
	"testing"

	"github.com/gatewaystack/gatewaystack/policy"
)

// Regression invariant: a route prefix is literal in the pattern table.
// Path characters that are glob syntax ('*', '?', '[', '\') match only
// themselves, so a prefix can never widen into a wildcard.
func TestRoutePatternsEscapeGlobCharacters(t *testing.T) {
	t.Parallel()
	routes := map[string]string{}
	for _, prefix := range []string{"/", "/a*b", "/q?", "/c[x]", `/d\e`, "/plain"} {
		for _, p := range routePatterns(prefix) {
			routes[p] = prefix
		}
	}
	tab, err := policy.NewTable(routes)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/a*b":      "/a*b",
		"/a*b/x/y":  "/a*b",
		"/aXb/x":    "/",
		"/q?":       "/q?",
		"/qX":       "/",
		"/c[x]/1":   "/c[x]",
		"/cx/1":     "/",
		`/d\e/1`:    `/d\e`,
		"/plain":    "/plain",
		"/plain/":   "/plain",
		"/plainer":  "/",
		"/":         "/",
		"/anything": "/",
	} {
		if got, _, _ := tab.Match(path); got != want {
			t.Errorf("%s goes to route %q, want %q", path, got, want)
		}
	}
}
