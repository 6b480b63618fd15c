// Package refgen writes the configuration reference, docs/configuration.md:
// every YAML field of config.Config with its type, its default and its doc
// comment, inside the hand-written prose of reference.md.tmpl.
//
// Field names, types and defaults come from the compiled config package
// (reflection over a Config that SetDefaults filled in); doc comments come
// from the package's source (go/parser). A default that SetDefaults derives
// from another field (auth.jwks_uri from auth.issuer, a burst from its
// requests) is found by setting each field to a marker value in turn and
// seeing which other fields change.
package refgen

import (
	"bytes"
	_ "embed"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode"

	"github.com/gatewaystack/gatewaystack/config"
)

//go:embed reference.md.tmpl
var pageTemplate string

// mapKey names the one entry the probe puts in a map of objects, and the
// key in field paths such as policy.tools["pattern"].scopes.
const mapKey = "pattern"

// Generate renders the configuration reference from the config package's
// source in configDir (its doc comments) and the compiled config package
// (its fields and defaults).
func Generate(configDir string) ([]byte, error) {
	docs, envNames, err := parseDocs(configDir)
	if err != nil {
		return nil, err
	}
	g := &generator{docs: docs, goNames: map[string]map[string]bool{}}
	g.collectNames(reflect.TypeFor[config.Config]())
	rows := g.rows(reflect.TypeFor[config.Config](), "", "")
	defaults := defaultsByPath()
	known := map[string]bool{}
	for i := range rows {
		r := &rows[i]
		known[r.Path] = true
		if d, ok := defaults[r.Path]; ok {
			r.Default = d
		}
		if n := notes[r.Path]; n != "" {
			r.Doc = strings.TrimSpace(r.Doc + " " + n)
		}
		if r.Doc == "" {
			r.Doc = "—"
		}
	}
	var unknown []string
	for p := range notes {
		if !known[p] {
			unknown = append(unknown, p)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("refgen: notes name fields config.Config does not have: %s; update notes.go", strings.Join(unknown, ", "))
	}
	sections := g.sections(rows)
	tmpl, err := template.New("reference").Parse(pageTemplate)
	if err != nil {
		return nil, fmt.Errorf("refgen: template: %w", err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, map[string]any{"Sections": sections}); err != nil {
		return nil, fmt.Errorf("refgen: template: %w", err)
	}
	if missing := undocumentedEnv(b.String(), envNames); len(missing) > 0 {
		return nil, fmt.Errorf("refgen: the config package reads environment variables the reference does not name: %s; add them to the table in reference.md.tmpl", strings.Join(missing, ", "))
	}
	return b.Bytes(), nil
}

// envName matches the string literals of the config package that name
// environment variables (OAUTH_ISSUER, GATEWAYSTACK_LIMITS_STORE).
var envName = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$`)

// undocumentedEnv returns those of names that the environment variables
// section of page does not mention.
func undocumentedEnv(page string, names []string) []string {
	_, section, _ := strings.Cut(page, "\n## Environment variables\n")
	var missing []string
	for _, n := range names {
		if !regexp.MustCompile(`(^|[^A-Z0-9_])` + n + `([^A-Z0-9_]|$)`).MatchString(section) {
			missing = append(missing, n)
		}
	}
	return missing
}

// Row is one YAML field of the reference table.
type Row struct {
	Path    string // e.g. upstreams[].mcp.url
	Type    string // e.g. duration, list of string, object
	Default string // Markdown; "—" when there is none
	Doc     string // Markdown: the doc comment and any note
	top     string // the top-level YAML key the row belongs to
}

// Section is one top-level key of the configuration with its rows.
type Section struct {
	Title string // Markdown heading text
	Intro string // Markdown
	Rows  []Row
}

// typeDoc holds the doc comments of one struct type of the config package.
type typeDoc struct {
	doc    string
	fields map[string]string
}

// parseDocs reads the doc comments of every struct type declared in the
// non-test Go files of dir, and the environment variable names they hold
// as string literals, sorted.
func parseDocs(dir string) (map[string]typeDoc, []string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("refgen: read config source: %w", err)
	}
	fset := token.NewFileSet()
	docs := map[string]typeDoc{}
	env := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return nil, nil, fmt.Errorf("refgen: parse config source: %w", err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if v, err := strconv.Unquote(lit.Value); err == nil && envName.MatchString(v) {
					env[v] = true
				}
			}
			return true
		})
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				cg := ts.Doc
				if cg == nil && len(gd.Specs) == 1 {
					cg = gd.Doc
				}
				td := typeDoc{doc: commentText(cg), fields: map[string]string{}}
				for _, fld := range st.Fields.List {
					text := commentText(fld.Doc)
					if text == "" {
						text = commentText(fld.Comment)
					}
					for _, n := range fld.Names {
						td.fields[n.Name] = text
					}
				}
				docs[ts.Name.Name] = td
			}
		}
	}
	names := make([]string, 0, len(env))
	for n := range env {
		names = append(names, n)
	}
	sort.Strings(names)
	return docs, names, nil
}

// commentText is a comment group as one line of text.
func commentText(cg *ast.CommentGroup) string {
	if cg == nil {
		return ""
	}
	return strings.Join(strings.Fields(cg.Text()), " ")
}

type generator struct {
	docs map[string]typeDoc
	// goNames maps a Go field name to the YAML names it has, for turning
	// Go names in comments into YAML names.
	goNames map[string]map[string]bool
}

// yamlField describes how a struct field appears in YAML.
type yamlField struct {
	name   string
	inline bool
	skip   bool
}

func yamlOf(sf reflect.StructField) yamlField {
	if !sf.IsExported() {
		return yamlField{skip: true}
	}
	tag := sf.Tag.Get("yaml")
	if tag == "-" {
		return yamlField{skip: true}
	}
	name, flags, _ := strings.Cut(tag, ",")
	y := yamlField{name: name, inline: slices.Contains(strings.Split(flags, ","), "inline")}
	if y.name == "" {
		y.name = strings.ToLower(sf.Name)
	}
	return y
}

var durationType = reflect.TypeFor[time.Duration]()

// isObject reports whether t (pointers removed) is a struct the YAML
// decoder descends into.
func isObject(t reflect.Type) bool {
	t = deref(t)
	return t.Kind() == reflect.Struct
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func (g *generator) collectNames(t reflect.Type) {
	t = deref(t)
	switch t.Kind() {
	case reflect.Slice, reflect.Map:
		g.collectNames(t.Elem())
		return
	case reflect.Struct:
	default:
		return
	}
	for i := range t.NumField() {
		sf := t.Field(i)
		y := yamlOf(sf)
		if y.skip {
			continue
		}
		if !y.inline {
			if g.goNames[sf.Name] == nil {
				g.goNames[sf.Name] = map[string]bool{}
			}
			g.goNames[sf.Name][y.name] = true
		}
		g.collectNames(sf.Type)
	}
}

// typeName is the reference's name for a field type.
func typeName(t reflect.Type) string {
	t = deref(t)
	if t == durationType {
		return "duration"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "int"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Struct:
		return "object"
	case reflect.Slice:
		return "list of " + typeName(t.Elem())
	case reflect.Map:
		return "map of " + typeName(t.Elem())
	case reflect.Interface:
		return "any"
	}
	return t.String()
}

// rows lists every field of struct type t below prefix, depth first in
// declaration order.
func (g *generator) rows(t reflect.Type, prefix, top string) []Row {
	t = deref(t)
	var out []Row
	for i := range t.NumField() {
		sf := t.Field(i)
		y := yamlOf(sf)
		if y.skip {
			continue
		}
		if y.inline {
			out = append(out, g.rows(sf.Type, prefix, top)...)
			continue
		}
		path := y.name
		if prefix != "" {
			path = prefix + "." + y.name
		}
		rowTop := top
		if rowTop == "" {
			rowTop = y.name
		}
		ft := deref(sf.Type)
		doc := g.docs[t.Name()].fields[sf.Name]
		r := Row{Path: path, Type: typeName(ft), top: rowTop}
		var child reflect.Type
		var childPrefix string
		switch {
		case ft.Kind() == reflect.Struct && ft != durationType:
			child, childPrefix = ft, path
		case ft.Kind() == reflect.Slice && isObject(ft.Elem()):
			child, childPrefix = deref(ft.Elem()), path+"[]"
		case ft.Kind() == reflect.Map && isObject(ft.Elem()):
			child, childPrefix = deref(ft.Elem()), path+`["`+mapKey+`"]`
		}
		r.Doc = g.markdown(doc, t.Name())
		if child != nil {
			subject := "This object"
			if ft.Kind() != reflect.Struct {
				subject = "Each entry"
			}
			if td := g.typeDoc(child, subject); td != "" {
				r.Doc = strings.TrimSpace(r.Doc + " " + td)
			}
		}
		out = append(out, r)
		if child != nil {
			out = append(out, g.rows(child, childPrefix, rowTop)...)
		}
	}
	return out
}

// sections groups rows by top-level key: the scalar top-level fields
// first, then one section per object, list or map.
func (g *generator) sections(rows []Row) []Section {
	cfg := reflect.TypeFor[config.Config]()
	topDoc := map[string]string{}
	topType := map[string]reflect.Type{}
	for i := range cfg.NumField() {
		sf := cfg.Field(i)
		y := yamlOf(sf)
		if y.skip || y.inline {
			continue
		}
		topDoc[y.name] = g.docs[cfg.Name()].fields[sf.Name]
		topType[y.name] = sf.Type
	}
	first := Section{Title: "Top level"}
	var out []Section
	byTop := map[string]int{}
	for _, r := range rows {
		t := topType[r.top]
		if r.Path == r.top && !hasChildren(rows, r.top) {
			first.Rows = append(first.Rows, r)
			continue
		}
		if r.Path == r.top {
			intro := g.markdown(topDoc[r.top], cfg.Name())
			child, subject := deref(t), "This section"
			if child.Kind() == reflect.Slice || child.Kind() == reflect.Map {
				child, subject = deref(child.Elem()), "Each entry"
			}
			if td := g.typeDoc(child, subject); td != "" {
				intro = strings.TrimSpace(intro + " " + td)
			}
			if n := notes[r.Path]; n != "" {
				intro = strings.TrimSpace(intro + " " + n)
			}
			byTop[r.top] = len(out)
			out = append(out, Section{Title: "`" + r.top + "`", Intro: intro})
			continue
		}
		i := byTop[r.top]
		out[i].Rows = append(out[i].Rows, r)
	}
	return append([]Section{first}, out...)
}

func hasChildren(rows []Row, top string) bool {
	for _, r := range rows {
		if r.top == top && r.Path != top {
			return true
		}
	}
	return false
}

// typeDoc is the doc comment of struct type t as Markdown, its leading
// type name ("Budget is …") replaced by subject ("This object is …").
func (g *generator) typeDoc(t reflect.Type, subject string) string {
	text := g.docs[t.Name()].doc
	if rest, ok := strings.CutPrefix(text, t.Name()+" "); ok {
		text = subject + " " + rest
	}
	return g.markdown(text, t.Name())
}

// markdown turns a doc comment into table-safe Markdown: the Go names of
// fields become their YAML names, and words Markdown would misread (<, _,
// *, [, |, URLs, paths) become code spans.
func (g *generator) markdown(text, owner string) string {
	if text == "" {
		return ""
	}
	own := map[string]string{}
	if t, ok := g.docs[owner]; ok {
		for goName := range t.fields {
			if ys := g.goNames[goName]; len(ys) == 1 {
				for y := range ys {
					own[goName] = y
				}
			}
		}
	}
	words := joinBracketed(strings.Fields(text))
	for i, w := range words {
		lead, core, trail := splitPunct(w)
		if core == "" {
			continue
		}
		if y, ok := g.yamlName(core, own, i == 0); ok {
			words[i] = lead + "`" + y + "`" + trail
			continue
		}
		if needsCode(core) {
			core = strings.ReplaceAll(core, "`", "")
			core = strings.ReplaceAll(core, "|", `\|`)
			words[i] = lead + "`" + core + "`" + trail
		}
	}
	return strings.Join(words, " ")
}

// yamlName returns the YAML name of a Go field name used in a comment: a
// field of the comment's own struct (a one-word acronym such as MCP or TLS
// only as the comment's first word, since it is also an ordinary word), or
// an unambiguous multi-word name of any config struct.
func (g *generator) yamlName(word string, own map[string]string, first bool) (string, bool) {
	if y, ok := own[word]; ok && (first || !isAcronym(word)) {
		return y, true
	}
	if ys := g.goNames[word]; len(ys) == 1 && isMultiWord(word) {
		for y := range ys {
			return y, true
		}
	}
	return "", false
}

// needsCode reports whether a word holds characters Markdown would read, or
// is a URL or a path.
func needsCode(w string) bool {
	if strings.ContainsAny(w, "<>_*[]{}|\\`$&") || strings.Contains(w, "://") {
		return true
	}
	w = strings.Trim(w, `"'`)
	return len(w) > 1 && strings.HasPrefix(w, "/")
}

// joinBracketed joins words that belong to one {…} or […] written with
// spaces, such as {Authorization: "Bearer ${KEY}"}, so that they become one
// code span.
func joinBracketed(words []string) []string {
	var out []string
	for i := 0; i < len(words); i++ {
		w := words[i]
		if strings.HasPrefix(strings.TrimLeft(w, "("), "{") {
			for depth(w) > 0 && i+1 < len(words) {
				i++
				w += " " + words[i]
			}
		}
		out = append(out, w)
	}
	return out
}

func depth(s string) int {
	return strings.Count(s, "{") - strings.Count(s, "}")
}

// isAcronym reports whether a one-word Go name is written in capitals or
// holds a digit (MCP, TLS, Auth0), as opposed to Window or Requests.
func isAcronym(s string) bool {
	upper := 0
	for _, r := range s {
		if unicode.IsUpper(r) {
			upper++
		}
		if unicode.IsDigit(r) {
			return true
		}
	}
	return upper > 1
}

// splitPunct separates a word's leading "(" and trailing ".,;:)" from its
// core.
func splitPunct(w string) (lead, core, trail string) {
	core = w
	for strings.HasPrefix(core, "(") {
		lead += "("
		core = core[1:]
	}
	end := len(core)
	for end > 0 && strings.ContainsRune(".,;:)", rune(core[end-1])) {
		end--
	}
	// A closing ")" that belongs to an opening one inside the word stays.
	for end < len(core) && core[end] == ')' && strings.Count(core[:end], "(") > strings.Count(core[:end], ")") {
		end++
	}
	return lead, core[:end], core[end:]
}

// isMultiWord reports whether a Go name has more than one word (MaxRepeats,
// BaseURL), so it cannot be an ordinary English word.
func isMultiWord(s string) bool {
	for i := 1; i < len(s); i++ {
		if unicode.IsUpper(rune(s[i])) && unicode.IsLower(rune(s[i-1])) {
			return true
		}
	}
	return false
}
