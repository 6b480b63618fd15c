package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Decoding a configuration file has two passes. The first walks the YAML
// node tree against the Config types with reflection and reports, with
// line:column, every key no field has (with the nearest known key as a
// suggestion), every duplicate key, and every value that does not fit its
// field (with the form it should take) — all of them, never stopping at
// the first. The second decodes strictly with the YAML library, which
// fills the Config as far as it can; anything it refuses that the first
// pass missed is reported as the library words it, so nothing slips
// through.

// position is where a node starts in the file (1-based line and column).
type position struct{ line, col int }

// decoded is the outcome of decoding one configuration file.
type decoded struct {
	// problems are the decoding problems, in document order.
	problems Problems
	// fatal: the file is not YAML (or not one document of settings); the
	// Config holds nothing from it.
	fatal bool
	// at maps field paths (the Problem.Field spelling; map keys in both
	// ["key"] and .key forms) to where their key is in the file.
	at map[string]position
	// covered lists field paths whose value the decoder could not take:
	// a semantic problem at or under one only repeats the decoding problem.
	covered []string
	// coveredExact lists field paths whose own semantic problems (but not
	// their children's) only repeat a decoding problem: the section that
	// holds a misspelled key of a subsection.
	coveredExact []string
}

// covers reports whether a semantic problem at field only repeats one of
// the decoding problems.
func (d *decoded) covers(field string) bool {
	if slices.Contains(d.coveredExact, field) {
		return true
	}
	for _, c := range d.covered {
		if field == c || strings.HasPrefix(field, c+".") || strings.HasPrefix(field, c+"[") {
			return true
		}
	}
	return false
}

// maxWalk bounds the nodes the first pass visits (aliases can make a small
// file a large tree; the library's own alias limits stop the second pass).
const maxWalk = 200_000

// decodeDocument decodes data into c, reporting every decoding problem.
func decodeDocument(data []byte, c *Config) *decoded {
	d := &decoded{at: map[string]position{}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return d // empty: every field keeps its default
		}
		d.fatal = true
		d.problems = append(d.problems, syntaxProblem(err, data))
		return d
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		d.fatal = true
		if err != nil {
			d.problems = append(d.problems, syntaxProblem(err, data))
		} else {
			d.problems = append(d.problems, Problem{Field: "yaml", Line: extra.Line, Column: extra.Column,
				Message: "a second YAML document (after ---) is not allowed; keep the whole configuration in one document"})
		}
		return d
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	w := &walker{d: d}
	w.walk(root, reflect.TypeFor[Config](), "")
	if err := strictDecode(data, c); err != nil {
		var te *yaml.TypeError
		switch {
		case errors.As(err, &te) && len(d.problems) > 0:
			// The library's per-field errors repeat the first pass's.
		case errors.As(err, &te):
			for _, msg := range te.Errors {
				d.problems = append(d.problems, Problem{Field: "yaml", Message: msg + "; fix this value"})
			}
		default:
			d.fatal = true
			d.problems = append(d.problems, Problem{Field: "yaml", Message: err.Error()})
		}
	}
	return d
}

// strictDecode decodes data into c with the library, refusing unknown
// fields. On per-field errors it still fills every field it could.
func strictDecode(data []byte, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// syntaxProblem turns a YAML parse error into a problem with a hint.
func syntaxProblem(err error, data []byte) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	hint := "fix the YAML syntax there (indentation, a missing ':', or a value holding ': ' or '#' that needs quotes)"
	line := 0
	if _, err := fmt.Sscanf(msg, "line %d:", &line); err == nil {
		msg = strings.TrimSpace(strings.TrimPrefix(msg, fmt.Sprintf("line %d:", line)))
	}
	for i, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(strings.TrimLeft(l, " "), "\t") {
			line = i + 1
			hint = "indent with spaces: YAML does not allow tabs for indentation"
			break
		}
	}
	return Problem{Field: "yaml", Line: line, Message: msg + "; " + hint}
}

// walker is the first pass.
type walker struct {
	d       *decoded
	visited int
	// aliases are the anchors being walked (a self-reference is reported,
	// not followed).
	aliases []*yaml.Node
	// index, built on first use, maps every field name to where it is a
	// field (for "url belongs under mcp").
	index map[string][]string
}

var durationType = reflect.TypeFor[time.Duration]()

func (w *walker) problem(n *yaml.Node, field, format string, args ...any) {
	w.d.problems = append(w.d.problems, Problem{Field: field, Message: fmt.Sprintf(format, args...), Line: n.Line, Column: n.Column})
}

// walk checks node n against type t at field path.
func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	w.visited++
	if w.visited > maxWalk {
		return
	}
	if n.Kind == yaml.AliasNode {
		if slices.Contains(w.aliases, n.Alias) {
			w.problem(n, orRoot(path), "the alias *%s refers to the value that contains it; write the value out", n.Value)
			w.d.covered = append(w.d.covered, path)
			return
		}
		w.aliases = append(w.aliases, n.Alias)
		w.walk(n.Alias, t, path)
		w.aliases = w.aliases[:len(w.aliases)-1]
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // null leaves the default
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType:
		w.leaf(n, t, path)
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			w.mismatch(n, t, path)
			return
		}
		w.mapping(n, path, func(k, v *yaml.Node) { w.field(k, v, t, path) })
	case t.Kind() == reflect.Map && t.Elem().Kind() == reflect.Interface:
		w.leaf(n, t, path) // free-form (a JSON Schema): the library decides
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.mismatch(n, t, path)
			return
		}
		w.mapping(n, path, func(k, v *yaml.Node) {
			if k.Kind != yaml.ScalarNode {
				w.problem(k, orRoot(path), "a key here must be a plain name, not a list or mapping")
				return
			}
			sub := fmt.Sprintf("%s[%q]", path, k.Value)
			w.d.at[sub] = position{k.Line, k.Column}
			w.d.at[join(path, k.Value)] = position{k.Line, k.Column}
			w.walk(v, t.Elem(), sub)
		})
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.mismatch(n, t, path)
			return
		}
		for i, item := range n.Content {
			sub := fmt.Sprintf("%s[%d]", path, i)
			w.d.at[sub] = position{item.Line, item.Column}
			w.walk(item, t.Elem(), sub)
		}
	default:
		w.leaf(n, t, path)
	}
}

// mapping calls fn for each key and value of mapping n, merge keys (<<)
// expanded as the library does: a key written in n wins over a merged one.
// Keys written twice are reported.
func (w *walker) mapping(n *yaml.Node, path string, fn func(k, v *yaml.Node)) {
	first := map[string]*yaml.Node{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!null" {
			continue // the library skips a null key
		}
		if k.Kind == yaml.ScalarNode {
			if prev, dup := first[k.Value]; dup {
				w.problem(k, join(path, k.Value), "written twice (first at line %d); keep one", prev.Line)
				w.d.covered = append(w.d.covered, join(path, k.Value))
				continue
			}
			first[k.Value] = k
		}
		fn(k, v)
	}
	for _, m := range merges {
		for _, src := range mergeSources(m) {
			for i := 0; i+1 < len(src.Content); i += 2 {
				k, v := src.Content[i], src.Content[i+1]
				if k.Kind == yaml.ScalarNode {
					if _, written := first[k.Value]; written {
						continue
					}
					first[k.Value] = k
				}
				fn(k, v)
			}
		}
	}
}

// mergeSources resolves the value of a merge key: a mapping, an alias of
// one, or a list of those.
func mergeSources(v *yaml.Node) []*yaml.Node {
	for v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	switch v.Kind {
	case yaml.MappingNode:
		return []*yaml.Node{v}
	case yaml.SequenceNode:
		var out []*yaml.Node
		for _, item := range v.Content {
			for item.Kind == yaml.AliasNode && item.Alias != nil {
				item = item.Alias
			}
			if item.Kind == yaml.MappingNode {
				out = append(out, item)
			}
		}
		return out
	}
	return nil
}

// field checks one key and value of a mapping decoded into struct type t.
func (w *walker) field(k, v *yaml.Node, t reflect.Type, path string) {
	if k.Kind != yaml.ScalarNode {
		w.problem(k, orRoot(path), "a key here must be a setting name, not a list or mapping; known settings: %s", strings.Join(fieldNames(t), ", "))
		return
	}
	sub := join(path, k.Value)
	w.d.at[sub] = position{k.Line, k.Column}
	if f, ok := fieldByKey(t, k.Value); ok {
		w.walk(v, f.Type, sub)
		return
	}
	w.unknown(k, t, path, sub)
}

// unknown reports a key struct type t has no field for, with the best
// suggestion: a known key within edit distance 2, an environment
// variable's setting, or where the key is a field elsewhere.
func (w *walker) unknown(k *yaml.Node, t reflect.Type, path, sub string) {
	key := k.Value
	names := fieldNames(t)
	if s, ok := nearest(key, names); ok {
		w.problem(k, sub, "unknown setting; did you mean %s?", s)
		// The misspelled key's value is missing from the right one: a
		// "required" or "set exactly one kind" problem there repeats this.
		w.d.covered = append(w.d.covered, join(path, s))
		if f, _ := fieldByKey(t, s); isSection(f.Type) {
			w.d.coveredExact = append(w.d.coveredExact, path)
		}
		return
	}
	for _, ev := range envVars {
		if strings.EqualFold(ev.Name, key) && ev.Field != "" {
			w.problem(k, sub, "unknown setting; %s is an environment variable: in this file write %s, or export %s", ev.Name, ev.Field, ev.Name)
			return
		}
	}
	if where := w.elsewhere(key); len(where) > 0 && len(where) <= 3 {
		// Sections under this one first: "url" under an upstream belongs
		// under its mcp section.
		here := genericPath(path) + "."
		slices.SortStableFunc(where, func(a, b string) int {
			return boolRank(strings.HasPrefix(b, here)) - boolRank(strings.HasPrefix(a, here))
		})
		w.problem(k, sub, "unknown setting here; %s is a setting of %s: move it there", key, strings.Join(where, " or "))
		return
	}
	w.problem(k, sub, "unknown setting; remove it, or use one of: %s", strings.Join(names, ", "))
}

// elsewhere lists the sections (as field paths with [] for list items)
// that have a field named key.
func (w *walker) elsewhere(key string) []string {
	if w.index == nil {
		w.index = map[string][]string{}
		var visit func(t reflect.Type, path string, depth int)
		visit = func(t reflect.Type, path string, depth int) {
			for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
				if t.Kind() == reflect.Slice {
					path += "[]"
				} else if t.Kind() == reflect.Map {
					path += "[…]"
				}
				t = t.Elem()
			}
			if t.Kind() != reflect.Struct || t == durationType || depth > 6 {
				return
			}
			for i := range t.NumField() {
				f := t.Field(i)
				name, ok := yamlKey(f)
				if !ok {
					continue
				}
				w.index[name] = append(w.index[name], orRoot(path))
				visit(f.Type, join(path, name), depth+1)
			}
		}
		visit(reflect.TypeFor[Config](), "", 0)
	}
	return w.index[key]
}

// leaf decodes a value with the library, as the second pass will, and
// reports a value it refuses with the form it should take.
func (w *walker) leaf(n *yaml.Node, t reflect.Type, path string) {
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		w.mismatch(n, t, path)
	}
}

// mismatch reports a value that does not fit type t.
func (w *walker) mismatch(n *yaml.Node, t reflect.Type, path string) {
	w.d.covered = append(w.d.covered, path)
	w.problem(n, orRoot(path), "%s", valueHint(n, t))
}

// isSection reports whether a field of type t is a section of settings
// (a struct, not a duration).
func isSection(t reflect.Type) bool {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t != nil && t.Kind() == reflect.Struct && t != durationType
}

// yamlKey is the key a struct field decodes from, as the library sees it:
// its yaml tag, or its name in lower case; unexported and "-" fields have
// none.
func yamlKey(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", false
	}
	tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
	switch tag {
	case "-":
		return "", false
	case "":
		return strings.ToLower(f.Name), true
	}
	return tag, true
}

// fieldByKey finds the field of struct type t that key decodes into.
func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if name, ok := yamlKey(f); ok && name == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// fieldNames lists the keys of struct type t in declaration order.
func fieldNames(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		if name, ok := yamlKey(t.Field(i)); ok {
			out = append(out, name)
		}
	}
	return out
}

// genericPath writes list indexes as [] and map keys as […], the
// spelling of elsewhere's sections.
func genericPath(path string) string {
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		if path[i] != '[' {
			b.WriteByte(path[i])
			continue
		}
		j := strings.IndexByte(path[i:], ']')
		if i+1 < len(path) && path[i+1] == '"' {
			// a quoted key may hold ']': find the closing quote first
			if q := strings.Index(path[i+2:], "\"]"); q >= 0 {
				j = q + 3
			}
			b.WriteString("[…]")
		} else {
			b.WriteString("[]")
		}
		if j < 0 {
			break
		}
		i += j
	}
	return b.String()
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// join appends a field name to a path.
func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// orRoot names the top level of the file when path is empty.
func orRoot(path string) string {
	if path == "" {
		return "configuration"
	}
	return path
}
