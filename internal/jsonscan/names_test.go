package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// referenceAmbiguous is what CheckNames must decide, built on
// encoding/json: the object keys json.Decoder's tokens give, compared pair
// by pair with bytes.EqualFold. in must be valid JSON.
func referenceAmbiguous(in []byte) (bool, error) {
	type frame struct {
		object  bool
		wantKey bool
		keys    [][]byte
	}
	d := json.NewDecoder(bytes.NewReader(in))
	var stack []*frame
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if tok == json.Delim('}') || tok == json.Delim(']') {
			stack = stack[:len(stack)-1]
			continue
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.wantKey {
			key := []byte(tok.(string))
			for _, k := range top.keys {
				if bytes.EqualFold(k, key) {
					return true, nil
				}
			}
			top.keys = append(top.keys, key)
			top.wantKey = false
			continue
		}
		if top != nil && top.object {
			top.wantKey = true
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, wantKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		}
	}
}

// namesCorpus seeds FuzzCheckNames and the agreement test: the attack
// cases, and values every decoder reads alike.
var namesCorpus = []string{
	`{"account_id":"a","ACCOUNT_ID":"b"}`,
	`{"account_id":"a","Account_Id":"b"}`,
	`{"k":1,"` + "\u212a" + `":2}`,     // Kelvin sign
	`{"K":1,"\u212a":2}`,               // Kelvin sign, escaped
	`{"s":1,"` + "\u017f" + `":2}`,     // long s
	`{"\u017F":1,"S":2}`,               // long s, escaped
	`{"\u0041":1,"a":2}`,               // escaped A
	`{"\u0061":1,"a":2}`,               // escaped a: the same name
	`{"a":1,"a":2}`,                    // the same name twice
	`{"id":1,"ID":2,"Id":3}`,           // three spellings
	`[{"ok":1},{"x":[{"y":1,"Y":2}]}]`, // nested in arrays
	`{"outer":{"inner":{"Deep":1,"dEEP":2}}}`,
	`{"é":1,"É":2}`,
	`{"ǅ":1,"ǆ":2,"Ǆ":3}`,      // a three-rune orbit
	`{"σ":1,"ς":2}`,            // final sigma folds with sigma
	`{"ß":1,"ẞ":2}`,            // sharp s and its capital: one orbit
	`{"ß":1,"SS":2}`,           // not a simple fold: two names
	`{"\ud83d\ude00":1,"😀":2}`, // a surrogate pair and its raw form
	`{"\ud800":1,"\ufffd":2}`,  // a lone surrogate decodes to U+FFFD
	`{"\udc00\ud800":1,"x":2}`,
	`{"` + "\xff" + `":1,"` + "\xfe" + `":2}`, // bytes that are not UTF-8: both U+FFFD
	`{"a\/b":1,"a/b":2}`,
	`{"tab\t":1,"TAB\u0009":2}`,
	`{"a":1,"b":2,"c":{"a":1,"b":2},"d":[{"a":1},{"a":2}]}`,
	`{}`, `[]`, `null`, `0`, `-1.5e+10`, `"x"`, `true`, `false`,
	` { "a" : [ 1 , { "b" : null } ] } `,
	`{"name":"search","arguments":{"query":"q","limit":10,"filter":{"account_id":"acme"}}}`,
}

func TestCheckNamesAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, in := range namesCorpus {
		if !json.Valid([]byte(in)) {
			t.Fatalf("corpus entry %q is not JSON", in)
		}
		want, err := referenceAmbiguous([]byte(in))
		if err != nil {
			t.Fatalf("reference(%q): %v", in, err)
		}
		got := CheckNames([]byte(in), "arguments")
		if (got != nil) != want {
			t.Errorf("CheckNames(%s) = %v, reference finds ambiguous = %v", in, got, want)
		}
		if got != nil && !errors.Is(got, ErrAmbiguousKey) {
			t.Errorf("CheckNames(%s) = %v, want ErrAmbiguousKey", in, got)
		}
	}
}

// An encoding/json struct field takes the last member whose name folds to
// its tag: the member a policy reading "account_id" exactly saw is not the
// one the upstream's Go server uses. CheckNames refuses such a message.
func TestCheckNamesRefusesWhatEncodingJSONReadsDifferently(t *testing.T) {
	t.Parallel()
	in := []byte(`{"account_id":"acme-1","ACCOUNT_ID":"evil-2"}`)
	var v struct {
		AccountID string `json:"account_id"`
	}
	if err := json.Unmarshal(in, &v); err != nil {
		t.Fatal(err)
	}
	if v.AccountID != "evil-2" {
		t.Fatalf("encoding/json decoded account_id = %q; the case this guards against is gone", v.AccountID)
	}
	var m map[string]any
	if err := json.Unmarshal(in, &m); err != nil {
		t.Fatal(err)
	}
	if m["account_id"] != "acme-1" {
		t.Fatalf("an exact reader sees account_id = %v, want acme-1", m["account_id"])
	}
	err := CheckNames(in, "arguments")
	if !errors.Is(err, ErrAmbiguousKey) {
		t.Fatalf("CheckNames = %v, want ErrAmbiguousKey", err)
	}
	const want = `arguments.ACCOUNT_ID: "ACCOUNT_ID" and "account_id" are the same key to case-insensitive decoders; send each key once, in one spelling`
	if err.Error() != want {
		t.Errorf("message\n got %s\nwant %s", err, want)
	}
}

func TestCheckNamesMessages(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 100)
	deep := strings.Repeat(`{"n":`, 20) + `{"x":1,"X":2}` + strings.Repeat("}", 20)
	for _, tc := range []struct {
		name, root, in, want string
	}{
		{"a case variant names the path to the later key and both spellings", "arguments",
			`{"filter":[{},{},{"account_id":1,"ACCOUNT_ID":2}]}`,
			`arguments.filter[2].ACCOUNT_ID: "ACCOUNT_ID" and "account_id" are the same key to case-insensitive decoders; send each key once, in one spelling`},
		{"an exact repeat is sent twice", "arguments", `{"id":1,"id":2}`,
			`arguments.id: "id" is sent twice; send each key once`},
		{"an escaped spelling of the same name is sent twice", "arguments", `{"id":1,"\u0069d":2}`,
			`arguments.id: "id" is sent twice; send each key once`},
		{"the Kelvin sign is escaped so it is told apart from K", "context.arguments", `{"k":1,"` + "\u212a" + `":2}`,
			`context.arguments["\u212a"]: "\u212a" and "k" are the same key to case-insensitive decoders; send each key once, in one spelling`},
		{"the first earlier spelling is named", "arguments", `{"a":1,"b":2,"A":3,"a":4}`,
			`arguments.A: "A" and "a" are the same key to case-insensitive decoders; send each key once, in one spelling`},
		{"an empty root starts at the first step", "", `[{"x":{"y":1,"Y":2}}]`,
			`[0].x.Y: "Y" and "y" are the same key to case-insensitive decoders; send each key once, in one spelling`},
		{"an empty root and a top-level key", "", `{"y":1,"Y":2}`,
			`Y: "Y" and "y" are the same key to case-insensitive decoders; send each key once, in one spelling`},
		{"names that are not plain are bracketed", "arguments", `{"a.b":{"c d":1,"C D":2}}`,
			`arguments["a.b"]["C D"]: "C D" and "c d" are the same key to case-insensitive decoders; send each key once, in one spelling`},
		{"long names are cut at 64 characters", "arguments", `{"` + long + `":1,"` + strings.ToUpper(long) + `":2}`,
			`arguments["` + strings.Repeat("A", 64) + `"…(100 characters)]: "` + strings.Repeat("A", 64) + `"…(100 characters) and "` + strings.Repeat("a", 64) + `"…(100 characters) are the same key to case-insensitive decoders; send each key once, in one spelling`},
		{"long paths show their first 4 and last 12 steps", "arguments", deep,
			`arguments.n.n.n.n….n.n.n.n.n.n.n.n.n.n.n.X: "X" and "x" are the same key to case-insensitive decoders; send each key once, in one spelling`},
		{"the 17th and later members are checked through the table", "arguments", manyKeys(40, "K7"),
			`arguments.K7: "K7" and "k7" are the same key to case-insensitive decoders; send each key once, in one spelling`},
		{"control characters and quotes in names are escaped", "arguments", `{"\"\n":1,"\"\n":2}`,
			`arguments["\"\u000a"]: "\"\u000a" is sent twice; send each key once`},
		{"not JSON", "arguments", `{"a":1,}`, `arguments: not valid JSON (reading stopped at byte offset 7)`},
		{"not JSON after an ambiguous pair", "arguments", `{"a":1,"A":2`, `arguments: not valid JSON (reading stopped at byte offset 12)`},
		{"not JSON, no root", "", `tru`, `not valid JSON (reading stopped at byte offset 3)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := CheckNames([]byte(tc.in), tc.root)
			if err == nil || err.Error() != tc.want {
				t.Errorf("CheckNames(%s)\n got %v\nwant %s", tc.in, err, tc.want)
			}
		})
	}
}

// manyKeys is an object with members k0..k(n-1) and then extra.
func manyKeys(n int, extra string) string {
	var sb strings.Builder
	sb.WriteByte('{')
	for i := range n {
		fmt.Fprintf(&sb, `"k%d":%d,`, i, i)
	}
	if extra == "" {
		return strings.TrimSuffix(sb.String(), ",") + "}"
	}
	fmt.Fprintf(&sb, `"%s":0}`, extra)
	return sb.String()
}

func TestCheckNamesLargeObjects(t *testing.T) {
	t.Parallel()
	for _, n := range []int{15, 16, 17, 31, 32, 33, 64, 65, 200, 1000} {
		if err := CheckNames([]byte(manyKeys(n, "")), "a"); err != nil {
			t.Errorf("%d distinct keys: %v", n, err)
		}
		for _, dup := range []int{0, n / 2, n - 1} {
			in := manyKeys(n, fmt.Sprintf("K%d", dup))
			if err := CheckNames([]byte(in), "a"); !errors.Is(err, ErrAmbiguousKey) {
				t.Errorf("%d keys then K%d: %v, want ErrAmbiguousKey", n, dup, err)
			}
		}
	}
	// A large object inside a large object: each keeps its own names.
	inner := manyKeys(40, "")
	outer := `{"x":` + inner + `,` + strings.TrimPrefix(manyKeys(40, ""), "{")
	if err := CheckNames([]byte(outer), "a"); err != nil {
		t.Errorf("nested large objects with the same names: %v", err)
	}
	outer = `{"x":` + inner + `,` + strings.TrimPrefix(manyKeys(40, "X"), "{")
	if err := CheckNames([]byte(outer), "a"); !errors.Is(err, ErrAmbiguousKey) || !strings.HasPrefix(err.Error(), "a.X:") {
		t.Errorf("X after x in a large object: %v", err)
	}
}

// CheckNames reads every value json.Valid accepts, up to encoding/json's
// nesting limit, and refuses deeper ones with ErrTooDeep.
func TestCheckNamesDepth(t *testing.T) {
	t.Parallel()
	nest := func(n int, open, inner, closing string) []byte {
		return []byte(strings.Repeat(open, n) + inner + strings.Repeat(closing, n))
	}
	for _, tc := range []struct {
		in   []byte
		want error
	}{
		{nest(MaxDepth, "[", "", "]"), nil},
		{nest(MaxDepth-1, `{"a":`, `{"b":1,"B":2}`, "}"), ErrAmbiguousKey},
		{nest(MaxDepth+1, "[", "", "]"), ErrTooDeep},
		{nest(MaxDepth, `{"a":`, `{}`, "}"), ErrTooDeep},
	} {
		err := CheckNames(tc.in, "arguments")
		if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
			t.Errorf("depth test (%d bytes) = %v, want %v", len(tc.in), err, tc.want)
		}
		if valid := json.Valid(tc.in); valid == errors.Is(err, ErrTooDeep) {
			t.Errorf("json.Valid = %v but CheckNames = %v", valid, err)
		}
	}
}

func TestCheckNamesRefusesWhatIsNotJSON(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		``, ` `, `{`, `}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{,}`, `[1,]`, `[,1]`, `{"a":1 "b":2}`,
		`{a:1}`, `{'a':1}`, `01`, `1.`, `.1`, `-`, `1e`, `1e+`, `+1`, `NaN`, `tru`, `nul`, `falsey`,
		`"\x"`, `"\u12"`, `"\u12g4"`, "\"\x01\"", `"unterminated`, `"a" "b"`, `{} {}`, `[]]`,
		`{"a":1}x`, `{"a\`, `"\'"`, "\"\t\"",
	} {
		if json.Valid([]byte(in)) {
			t.Fatalf("%q is valid JSON", in)
		}
		if err := CheckNames([]byte(in), "arguments"); !errors.Is(err, ErrInvalidJSON) {
			t.Errorf("CheckNames(%q) = %v, want ErrInvalidJSON", in, err)
		}
	}
}

// An object of up to 16 unescaped names costs no allocation.
func TestCheckNamesDoesNotAllocateForSmallObjects(t *testing.T) {
	in := []byte(typicalArguments)
	if n := testing.AllocsPerRun(100, func() {
		if CheckNames(in, "arguments") != nil {
			t.Fatal("refused")
		}
	}); n != 0 {
		t.Errorf("CheckNames allocates %v times per call, want 0", n)
	}
}

const typicalArguments = `{"query":"quarterly revenue","account_id":"acme-1","limit":25,"include_archived":false,"filter":{"region":"emea","tags":["a","b"]}}`

func BenchmarkCheckNames(b *testing.B) {
	for _, bc := range []struct {
		name string
		in   []byte
	}{
		{"5 keys", []byte(typicalArguments)},
		{"200 keys", []byte(manyKeys(200, ""))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.in)))
			for b.Loop() {
				if err := CheckNames(bc.in, "arguments"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzCheckNames checks CheckNames against encoding/json: for valid JSON
// it refuses exactly what the decoder-token reference finds ambiguous, and
// for anything else it says the input is not JSON.
func FuzzCheckNames(f *testing.F) {
	for _, in := range namesCorpus {
		f.Add([]byte(in))
	}
	f.Add([]byte(manyKeys(20, "K3")))
	f.Add([]byte(manyKeys(20, `\u212a3`)))
	f.Add([]byte(`{"a":1,"A":2`))
	f.Fuzz(func(t *testing.T, in []byte) {
		err := CheckNames(in, "arguments")
		if err != nil && utf8.RuneCountInString(err.Error()) > 4096 {
			t.Fatalf("error message of %d characters", utf8.RuneCountInString(err.Error()))
		}
		if !json.Valid(in) {
			if !errors.Is(err, ErrInvalidJSON) && !errors.Is(err, ErrTooDeep) {
				t.Fatalf("CheckNames(%q) = %v for input json.Valid refuses", in, err)
			}
			return
		}
		if trimmed := bytes.TrimSpace(in); len(trimmed) > 0 && trimmed[0] == '"' {
			// Names in errors are decoded as encoding/json decodes them.
			if want, _ := String(trimmed); decodeName(trimmed) != want {
				t.Fatalf("decodeName(%q) = %q, want %q", trimmed, decodeName(trimmed), want)
			}
		}
		want, rerr := referenceAmbiguous(in)
		if rerr != nil {
			t.Skipf("reference: %v", rerr)
		}
		if (err != nil) != want || (err != nil && !errors.Is(err, ErrAmbiguousKey)) {
			t.Fatalf("CheckNames(%q) = %v, reference finds ambiguous = %v", in, err, want)
		}
	})
}
