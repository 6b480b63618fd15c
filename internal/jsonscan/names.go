package jsonscan

import (
	"errors"
	"hash/maphash"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Errors of CheckNames, tested with errors.Is. The errors CheckNames
// returns say where and what in their text; these are what they wrap.
var (
	// ErrAmbiguousKey: an object names one member twice, in one spelling or
	// in two that case-insensitive decoders take for one.
	ErrAmbiguousKey = errors.New("jsonscan: ambiguous key")
	// ErrInvalidJSON: the input is not one JSON value (json.Valid is false).
	ErrInvalidJSON = errors.New("jsonscan: not valid JSON")
	// ErrTooDeep: objects and arrays nest more than MaxDepth levels.
	ErrTooDeep = errors.New("jsonscan: nested too deep")
)

// MaxDepth is the deepest nesting of objects and arrays CheckNames reads:
// encoding/json's own limit, so that CheckNames reads every value
// json.Valid accepts.
const MaxDepth = 10000

// CheckNames returns nil when every object in the JSON value v, at any
// depth (objects inside arrays too), names each of its members once — two
// names are one when encoding/json would match both to the same struct
// field: equal under Unicode simple case folding after the JSON escapes are
// decoded (bytes.EqualFold on the decoded names: "account_id",
// "ACCOUNT_ID", "\u0061ccount_id" and "accoun\u0074_id" are one name; so are
// "k" and the Kelvin sign U+212A, "s" and the long s U+017F). A decoder that
// keeps the last of such members and one that keeps the first, or matches
// names exactly, read different messages; CheckNames refuses them.
//
// The steps, in one pass over v:
//
//  1. v is read as JSON, as json.Valid reads it; anything else is an error
//     wrapping ErrInvalidJSON, naming the byte offset where reading stopped.
//     Nesting deeper than MaxDepth stops the reading with an error wrapping
//     ErrTooDeep.
//  2. Each member name is decoded and folded as encoding/json folds it
//     (ASCII letters to upper case, every other rune to the smallest rune of
//     its unicode.SimpleFold orbit) and compared with the folded names the
//     object already holds: one by one for up to 16 members, through a hash
//     table of the folded names from the 17th on.
//  3. The first name, in the order of v, equal to an earlier name of its
//     object is reported in an error wrapping ErrAmbiguousKey, unless v turns
//     out not to be JSON (then ErrInvalidJSON wins).
//
// The text of an ErrAmbiguousKey error names the path from root to the
// later name and both spellings, the later first. With root "arguments":
//
//	arguments.filter[2].ACCOUNT_ID: "ACCOUNT_ID" and "account_id" are the same key to case-insensitive decoders; send each key once, in one spelling
//	arguments.id: "id" is sent twice; send each key once
//
// The other errors read "arguments: not valid JSON (reading stopped at byte
// offset N)" and "arguments: objects and arrays nest more than 10000 levels
// at byte offset N; send a shallower value".
//
// Names are quoted as JSON strings with every character outside printable
// ASCII escaped (so "\u212a" and "K" are told apart) and cut at 64 characters, followed by
// …(N characters) when longer; a path longer than 16 steps shows its first 4
// and last 12 steps around "…". Names in a path are written .name when they
// hold only ASCII letters, digits, '_' and '-', and ["name"] otherwise;
// array elements as [index]. An empty root starts the path at the first
// step.
//
// An object of up to 16 members that holds only unescaped names is checked
// without allocating.
func CheckNames(v []byte, root string) error {
	c := nameChecker{b: v}
	c.ws()
	ok := c.value(nil) && c.ws() && c.i == len(c.b)
	switch {
	case c.tooDeep:
		return &namesError{
			msg: prefix(root) + "objects and arrays nest more than " + strconv.Itoa(MaxDepth) +
				" levels at byte offset " + strconv.Itoa(c.i) + "; send a shallower value",
			err: ErrTooDeep,
		}
	case !ok:
		return &namesError{
			msg: prefix(root) + "not valid JSON (reading stopped at byte offset " + strconv.Itoa(c.i) + ")",
			err: ErrInvalidJSON,
		}
	case c.found != nil:
		c.found.msg = formatPath(root, c.found.path, v) + ": " + c.found.msg
		c.found.path = nil
		return c.found
	}
	return nil
}

// namesError is the error CheckNames returns: its text for the client, and
// the sentinel it wraps.
type namesError struct {
	msg string
	err error
	// path is the route to the later name, kept until the text is written.
	path []pathStep
}

func (e *namesError) Error() string { return e.msg }
func (e *namesError) Unwrap() error { return e.err }

func prefix(root string) string {
	if root == "" {
		return ""
	}
	return root + ": "
}

// smallObject is the number of members an object compares one by one
// before CheckNames builds a hash table of its folded names.
const smallObject = 16

// name is one member name of an object being read.
type name struct {
	rawStart, rawEnd int // the quoted name in the input
	// start and end bound its folded form in nameChecker.folded; both are
	// 0 for a plain name (ASCII without escapes), whose folded
	// form is its bytes in upper case.
	start, end int
	// hash is the hash of the folded form, set from the 17th name of an
	// object on.
	hash uint64
}

// step is one step of the path from the root to the value being read, in
// the stack frame of the object or array it belongs to: a member name (the
// quoted name in the input) or an array index.
type step struct {
	parent           *step
	rawStart, rawEnd int
	index            int
	isIndex          bool
}

// pathStep is a step as an error keeps it.
type pathStep struct {
	rawStart, rawEnd int
	index            int
	isIndex          bool
}

type nameChecker struct {
	b []byte
	i int

	depth   int
	tooDeep bool

	// plain is set by str when the string it read holds only
	// ASCII and no escape.
	plain bool

	// The folded forms of the names that are not plain of the objects being
	// read, innermost object last; an object drops its own when it ends.
	folded []byte
	// A plain name in upper case, to hash it.
	scratch []byte
	seed    maphash.Seed
	seeded  bool

	found *namesError
}

func (c *nameChecker) ws() bool {
	for c.i < len(c.b) {
		switch c.b[c.i] {
		case ' ', '\t', '\r', '\n':
			c.i++
		default:
			return true
		}
	}
	return true
}

// value reads one value starting at c.i (no space before it); at is the
// step that leads to it (nil at the root).
func (c *nameChecker) value(at *step) bool {
	if c.i >= len(c.b) {
		return false
	}
	switch ch := c.b[c.i]; {
	case ch == '{':
		return c.object(at)
	case ch == '[':
		return c.array(at)
	case ch == '"':
		return c.str()
	case ch == '-' || ('0' <= ch && ch <= '9'):
		return c.number()
	case ch == 't':
		return c.literal("true")
	case ch == 'f':
		return c.literal("false")
	case ch == 'n':
		return c.literal("null")
	}
	return false
}

func (c *nameChecker) literal(lit string) bool {
	if len(c.b)-c.i < len(lit) || string(c.b[c.i:c.i+len(lit)]) != lit {
		// Stop at the first byte that differs.
		for j := 0; j < len(lit) && c.i < len(c.b) && c.b[c.i] == lit[j]; j++ {
			c.i++
		}
		return false
	}
	c.i += len(lit)
	return true
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (c *nameChecker) number() bool {
	if c.b[c.i] == '-' {
		c.i++
	}
	if c.i >= len(c.b) {
		return false
	}
	switch {
	case c.b[c.i] == '0':
		c.i++
	case '1' <= c.b[c.i] && c.b[c.i] <= '9':
		c.digits()
	default:
		return false
	}
	if c.i < len(c.b) && c.b[c.i] == '.' {
		c.i++
		if c.digits() == 0 {
			return false
		}
	}
	if c.i < len(c.b) && (c.b[c.i] == 'e' || c.b[c.i] == 'E') {
		c.i++
		if c.i < len(c.b) && (c.b[c.i] == '+' || c.b[c.i] == '-') {
			c.i++
		}
		if c.digits() == 0 {
			return false
		}
	}
	return true
}

func (c *nameChecker) digits() int {
	start := c.i
	for c.i < len(c.b) && '0' <= c.b[c.i] && c.b[c.i] <= '9' {
		c.i++
	}
	return c.i - start
}

// str reads a string starting at its opening quote. Bytes from 0x80 up are
// taken as they are, valid UTF-8 or not, as json.Valid takes them.
func (c *nameChecker) str() bool {
	c.i++
	c.plain = true
	for c.i < len(c.b) {
		ch := c.b[c.i]
		switch {
		case ch == '"':
			c.i++
			return true
		case ch < 0x20:
			return false
		case ch == '\\':
			c.plain = false
			c.i++
			if c.i >= len(c.b) {
				return false
			}
			switch c.b[c.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				c.i++
			case 'u':
				c.i++
				for range 4 {
					if c.i >= len(c.b) || !isHex(c.b[c.i]) {
						return false
					}
					c.i++
				}
			default:
				return false
			}
		case ch >= utf8.RuneSelf:
			c.plain = false
			c.i++
		default:
			c.i++
		}
	}
	return false
}

func isHex(ch byte) bool {
	return '0' <= ch && ch <= '9' || 'a' <= ch && ch <= 'f' || 'A' <= ch && ch <= 'F'
}

func (c *nameChecker) enter() bool {
	c.depth++
	if c.depth > MaxDepth {
		c.tooDeep = true
		return false
	}
	return true
}

func (c *nameChecker) array(at *step) bool {
	if !c.enter() {
		return false
	}
	c.i++
	c.ws()
	if c.i < len(c.b) && c.b[c.i] == ']' {
		c.i++
		c.depth--
		return true
	}
	st := step{parent: at, isIndex: true}
	for {
		if !c.value(&st) {
			return false
		}
		c.ws()
		if c.i >= len(c.b) {
			return false
		}
		switch c.b[c.i] {
		case ',':
			c.i++
			c.ws()
			st.index++
		case ']':
			c.i++
			c.depth--
			return true
		default:
			return false
		}
	}
}

func (c *nameChecker) object(at *step) bool {
	if !c.enter() {
		return false
	}
	c.i++
	c.ws()
	if c.i < len(c.b) && c.b[c.i] == '}' {
		c.i++
		c.depth--
		return true
	}
	var small [smallObject]name
	names := small[:0]
	var table []int32
	foldedStart := len(c.folded)
	st := step{parent: at}
	for {
		if c.i >= len(c.b) || c.b[c.i] != '"' {
			return false
		}
		start := c.i
		if !c.str() {
			return false
		}
		st.rawStart, st.rawEnd = start, c.i
		if c.found == nil {
			n := name{rawStart: start, rawEnd: c.i}
			if !c.plain {
				n.start = len(c.folded)
				c.folded = appendFolded(c.folded, c.b[start+1:c.i-1])
				n.end = len(c.folded)
			}
			var earlier int
			if names, table, earlier = c.add(names, table, n); earlier >= 0 {
				c.report(&st, names[earlier], n)
			}
		}
		c.ws()
		if c.i >= len(c.b) || c.b[c.i] != ':' {
			return false
		}
		c.i++
		c.ws()
		if !c.value(&st) {
			return false
		}
		c.ws()
		if c.i >= len(c.b) {
			return false
		}
		switch c.b[c.i] {
		case ',':
			c.i++
			c.ws()
		case '}':
			c.i++
			c.folded = c.folded[:foldedStart]
			c.depth--
			return true
		default:
			return false
		}
	}
}

// add compares n with names, the names its object held before it, and
// appends it unless it repeats one: earlier is then the index of the name
// it repeats, else -1. From the 17th name on, table is a hash table of the
// folded names: index+1 into names, 0 for an empty slot.
func (c *nameChecker) add(names []name, table []int32, n name) (_ []name, _ []int32, earlier int) {
	if len(names) < smallObject {
		for j := range names {
			if c.same(names[j], n) {
				return names, table, j
			}
		}
		return append(names, n), table, -1
	}
	if !c.seeded {
		c.seed, c.seeded = maphash.MakeSeed(), true
	}
	if table == nil {
		// The 17th name: hash the 16 before it.
		for j := range names {
			names[j].hash = c.hash(names[j])
		}
	}
	if 2*(len(names)+1) > len(table) {
		table = rehash(names, table, max(4*smallObject, 2*len(table)))
	}
	n.hash = c.hash(n)
	mask := uint64(len(table) - 1)
	for h := n.hash & mask; ; h = (h + 1) & mask {
		e := table[h]
		if e == 0 {
			table[h] = int32(len(names) + 1)
			if len(names) == cap(names) {
				names = append(make([]name, 0, 4*len(names)), names...)
			}
			return append(names, n), table, -1
		}
		if m := names[e-1]; m.hash == n.hash && c.same(m, n) {
			return names, table, int(e - 1)
		}
	}
}

// rehash returns a table of size slots (a power of two) holding names.
func rehash(names []name, old []int32, size int) []int32 {
	table := old[:0]
	if cap(table) < size {
		table = make([]int32, size)
	} else {
		table = table[:size]
		clear(table)
	}
	mask := uint64(size - 1)
	for j, m := range names {
		h := m.hash & mask
		for table[h] != 0 {
			h = (h + 1) & mask
		}
		table[h] = int32(j + 1)
	}
	return table
}

// form returns n's folded form, or for a plain name its bytes, which
// fold to themselves in upper case.
func (c *nameChecker) form(n name) []byte {
	if n.end > n.start {
		return c.folded[n.start:n.end]
	}
	return c.b[n.rawStart+1 : n.rawEnd-1]
}

// same reports whether a and b fold alike. A folded form holds no ASCII
// lower-case letter, so comparing both forms with ASCII letters in upper
// case compares the folded names.
func (c *nameChecker) same(a, b name) bool {
	x, y := c.form(a), c.form(b)
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if upper(x[i]) != upper(y[i]) {
			return false
		}
	}
	return true
}

func (c *nameChecker) hash(n name) uint64 {
	f := c.form(n)
	if n.end > n.start {
		return maphash.Bytes(c.seed, f)
	}
	c.scratch = c.scratch[:0]
	for _, ch := range f {
		c.scratch = append(c.scratch, upper(ch))
	}
	return maphash.Bytes(c.seed, c.scratch)
}

func upper(ch byte) byte {
	if 'a' <= ch && ch <= 'z' {
		return ch - ('a' - 'A')
	}
	return ch
}

// report records that later, the name at the step at, repeats earlier, a
// name of the same object. The path is written when the whole value has
// been read and is known to be JSON.
func (c *nameChecker) report(at *step, earlier, later name) {
	second := decodeName(c.b[later.rawStart:later.rawEnd])
	first := decodeName(c.b[earlier.rawStart:earlier.rawEnd])
	var msg string
	if second == first {
		msg = quoteName(second) + " is sent twice; send each key once"
	} else {
		msg = quoteName(second) + " and " + quoteName(first) +
			" are the same key to case-insensitive decoders; send each key once, in one spelling"
	}
	var path []pathStep
	for s := at; s != nil; s = s.parent {
		path = append(path, pathStep{s.rawStart, s.rawEnd, s.index, s.isIndex})
	}
	slices.Reverse(path)
	c.found = &namesError{msg: msg, err: ErrAmbiguousKey, path: path}
}

// appendFolded appends to dst the folded form of the JSON string body s
// (between the quotes, already read by str): its escapes decoded as
// encoding/json decodes them, ASCII letters in upper case, every other
// rune the smallest of its unicode.SimpleFold orbit, and each byte that is
// not UTF-8 as U+FFFD. Two names are equal under bytes.EqualFold exactly
// when their folded forms are equal.
func appendFolded(dst, s []byte) []byte { return appendName(dst, s, true) }

// decodeName decodes the JSON string raw (quotes included, already read by
// str) as encoding/json decodes it.
func decodeName(raw []byte) string {
	return string(appendName(nil, raw[1:len(raw)-1], false))
}

// appendName appends the JSON string body s decoded, and folded when fold
// is set.
func appendName(dst, s []byte, fold bool) []byte {
	for i := 0; i < len(s); {
		ch := s[i]
		switch {
		case ch == '\\':
			switch s[i+1] {
			case 'u':
				r := hex4(s[i+2 : i+6])
				i += 6
				if utf16.IsSurrogate(r) {
					// A pair, or U+FFFD for the first half alone.
					dec := unicode.ReplacementChar
					if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
						dec = utf16.DecodeRune(r, hex4(s[i+2:i+6]))
					}
					if dec != unicode.ReplacementChar {
						i += 6
					}
					r = dec
				}
				dst = appendRune(dst, r, fold)
				continue
			case 'b':
				ch = '\b'
			case 'f':
				ch = '\f'
			case 'n':
				ch = '\n'
			case 'r':
				ch = '\r'
			case 't':
				ch = '\t'
			default: // '"', '\\', '/'
				ch = s[i+1]
			}
			dst = append(dst, ch)
			i += 2
		case ch < utf8.RuneSelf:
			if fold && 'a' <= ch && ch <= 'z' {
				ch -= 'a' - 'A'
			}
			dst = append(dst, ch)
			i++
		default:
			r, n := utf8.DecodeRune(s[i:])
			dst = appendRune(dst, r, fold)
			i += n
		}
	}
	return dst
}

func appendRune(dst []byte, r rune, fold bool) []byte {
	if !fold {
		return utf8.AppendRune(dst, r)
	}
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' {
			r -= 'a' - 'A'
		}
		return append(dst, byte(r))
	}
	return utf8.AppendRune(dst, foldRune(r))
}

// foldRune returns the smallest rune of r's unicode.SimpleFold orbit.
func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}

// hex4 decodes four hex digits (already checked by str).
func hex4(h []byte) rune {
	var r rune
	for _, ch := range h {
		switch {
		case ch <= '9':
			ch -= '0'
		case ch >= 'a':
			ch -= 'a' - 10
		default:
			ch -= 'A' - 10
		}
		r = r<<4 | rune(ch)
	}
	return r
}

// maxNameChars is how many characters of a name an error quotes.
const maxNameChars = 64

// quoteName writes name as a JSON string with every character outside
// printable ASCII escaped, cut at maxNameChars characters.
func quoteName(name string) string {
	var sb strings.Builder
	sb.WriteByte('"')
	n := 0
	for _, r := range name {
		if n == maxNameChars {
			break
		}
		n++
		switch {
		case r == '"' || r == '\\':
			sb.WriteByte('\\')
			sb.WriteRune(r)
		case 0x20 <= r && r < 0x7f:
			sb.WriteRune(r)
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			writeU4(&sb, r1)
			writeU4(&sb, r2)
		default:
			writeU4(&sb, r)
		}
	}
	sb.WriteByte('"')
	if total := utf8.RuneCountInString(name); total > maxNameChars {
		sb.WriteString("…(" + strconv.Itoa(total) + " characters)")
	}
	return sb.String()
}

func writeU4(sb *strings.Builder, r rune) {
	const hexDigits = "0123456789abcdef"
	sb.WriteString(`\u`)
	for shift := 12; shift >= 0; shift -= 4 {
		sb.WriteByte(hexDigits[r>>shift&0xf])
	}
}

// Path steps shown: all of them up to maxPathSteps, else the first
// pathHead and the last maxPathSteps-pathHead around "…".
const (
	maxPathSteps = 16
	pathHead     = 4
)

// formatPath writes root and the steps as root.name[2]["other name"].
func formatPath(root string, path []pathStep, b []byte) string {
	var sb strings.Builder
	sb.WriteString(root)
	for k, s := range path {
		if len(path) > maxPathSteps && k >= pathHead && k < len(path)-(maxPathSteps-pathHead) {
			if k == pathHead {
				sb.WriteString("…")
			}
			continue
		}
		if s.isIndex {
			sb.WriteString("[" + strconv.Itoa(s.index) + "]")
			continue
		}
		name := decodeName(b[s.rawStart:s.rawEnd])
		if plainName(name) {
			if sb.Len() > 0 {
				sb.WriteByte('.')
			}
			sb.WriteString(name)
		} else {
			sb.WriteString("[" + quoteName(name) + "]")
		}
	}
	return sb.String()
}

// plainName reports whether name can follow a '.' in a path: 1 to
// maxNameChars ASCII letters, digits, '_' and '-'.
func plainName(name string) bool {
	if name == "" || len(name) > maxNameChars {
		return false
	}
	for i := 0; i < len(name); i++ {
		ch := name[i]
		if !('a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || ch == '_' || ch == '-') {
			return false
		}
	}
	return true
}
