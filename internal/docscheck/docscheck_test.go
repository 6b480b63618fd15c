package docscheck

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/gatewaystack/gatewaystack/config"
)

// root is the repository root, relative to this package.
const root = "../.."

// maxReadme is the README's size budget: what it is, the two commands, the
// demo, connecting a client, a minimal configuration and the map of docs.
const maxReadme = 15 * 1024

// docFiles returns README.md and every docs/*.md, relative to root.
func docFiles(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) == 0 {
		t.Fatal("no docs/*.md found")
	}
	files := []string{"README.md"}
	for _, d := range docs {
		rel, err := filepath.Rel(root, d)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, filepath.ToSlash(rel))
	}
	return files
}

func read(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The README is the one page a newcomer reads first; everything else lives
// in docs/.
func TestReadmeFitsIn15KiB(t *testing.T) {
	t.Parallel()
	if n := len(read(t, "README.md")); n > maxReadme {
		t.Fatalf("README.md is %d bytes, over %d: move the detail into docs/", n, maxReadme)
	}
}

// CI runs the README's test command; it must stay `make test`.
func TestReadmeNamesTheTwoCommands(t *testing.T) {
	t.Parallel()
	readme := read(t, "README.md")
	for _, cmd := range []string{"make demo", "make test"} {
		if !strings.Contains(readme, "\n"+cmd+" ") {
			t.Errorf("README.md does not start a line with %q", cmd)
		}
	}
}

var (
	fence     = regexp.MustCompile("(?s)\n(```|~~~).*?\n(```|~~~)[^\n]*")
	codeSpan  = regexp.MustCompile("`[^`\n]*`")
	mdLink    = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	heading   = regexp.MustCompile(`(?m)^#{1,6} +(.+?) *#* *$`)
	linkText  = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
	hasScheme = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
)

// prose is a Markdown file without its fenced code blocks.
func prose(md string) string {
	return fence.ReplaceAllString("\n"+md, "\n")
}

// links returns the targets of a file's inline links, outside code.
func links(md string) []string {
	text := codeSpan.ReplaceAllString(prose(md), "code")
	var out []string
	for _, m := range mdLink.FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	return out
}

// anchors returns the GitHub anchors of a file's headings.
func anchors(md string) map[string]bool {
	seen := map[string]int{}
	out := map[string]bool{}
	for _, m := range heading.FindAllStringSubmatch(prose(md), -1) {
		s := slug(m[1])
		if n := seen[s]; n > 0 {
			out[fmt.Sprintf("%s-%d", s, n)] = true
		} else {
			out[s] = true
		}
		seen[s]++
	}
	return out
}

// slug is GitHub's anchor for a heading: the rendered text in lower case,
// without punctuation, each space a hyphen.
func slug(h string) string {
	h = linkText.ReplaceAllString(h, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.M, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestSlug(t *testing.T) {
	t.Parallel()
	for h, want := range map[string]string{
		"Usage: `GET /admin/usage`":                          "usage-get-adminusage",
		"Plain HTTP pass-through (/proxy)":                   "plain-http-pass-through-proxy",
		"`gatewaystack conformance`: check any live gateway": "gatewaystack-conformance-check-any-live-gateway",
		"Conditions, any-of scopes and explain":              "conditions-any-of-scopes-and-explain",
		"`limits`":                                           "limits",
		"A [linked](x.md) heading":                           "a-linked-heading",
	} {
		if got := slug(h); got != want {
			t.Errorf("slug(%q) = %q, want %q", h, got, want)
		}
	}
}

// Every relative link in the README and docs/ names a file that exists,
// and every #anchor a heading of that file.
func TestLinksResolve(t *testing.T) {
	t.Parallel()
	for _, file := range docFiles(t) {
		md := read(t, file)
		for _, target := range links(md) {
			if hasScheme.MatchString(target) {
				continue
			}
			path, anchor, _ := strings.Cut(target, "#")
			dest := file
			if path != "" {
				dest = filepath.ToSlash(filepath.Join(filepath.Dir(file), path))
				if _, err := os.Stat(filepath.Join(root, dest)); err != nil {
					t.Errorf("%s: link %q: %s does not exist", file, target, dest)
					continue
				}
			}
			if anchor == "" {
				continue
			}
			if !strings.HasSuffix(dest, ".md") {
				t.Errorf("%s: link %q: an anchor into a file that is not Markdown", file, target)
				continue
			}
			if !anchors(read(t, dest))[anchor] {
				t.Errorf("%s: link %q: %s has no heading with the anchor #%s", file, target, dest, anchor)
			}
		}
	}
}

// The README's map reaches every doc.
func TestReadmeLinksEveryDoc(t *testing.T) {
	t.Parallel()
	linked := links(read(t, "README.md"))
	for _, file := range docFiles(t)[1:] {
		if !slices.ContainsFunc(linked, func(l string) bool { return strings.SplitN(l, "#", 2)[0] == file }) {
			t.Errorf("README.md does not link %s", file)
		}
	}
}

// Each doc shows an example before it explains: a code block comes before
// its first section.
func TestDocsOpenWithAnExample(t *testing.T) {
	t.Parallel()
	for _, file := range docFiles(t)[1:] {
		md := read(t, file)
		block := strings.Index(md, "\n```")
		section := strings.Index(md, "\n## ")
		if block < 0 || (section >= 0 && section < block) {
			t.Errorf("%s: no example (a fenced code block) before its first section", file)
		}
	}
}

// The minimal configuration the README and the configuration reference
// show is one serve accepts.
func TestMinimalConfigurationIsValid(t *testing.T) {
	t.Parallel()
	yamlBlock := regexp.MustCompile("(?s)```yaml\n(.*?)```")
	for _, file := range []string{"README.md", "docs/configuration.md"} {
		m := yamlBlock.FindStringSubmatch(read(t, file))
		if m == nil {
			t.Errorf("%s: no yaml block", file)
			continue
		}
		var c config.Config
		if err := config.Decode([]byte(m[1]), &c); err != nil {
			t.Errorf("%s: first yaml block: %v", file, err)
			continue
		}
		c.SetDefaults()
		if err := c.Validate(); err != nil {
			t.Errorf("%s: first yaml block: %v", file, err)
		}
	}
}
