package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gatewaystack/gatewaystack/auth"
	"github.com/gatewaystack/gatewaystack/policy"
)

// yamlBomb is a "billion laughs" document: levels of anchors, each a list
// of width aliases of the one before, under a field that decodes into
// map[string]any (a REST tool's input_schema), so nothing but the decoder's
// alias limit stops the expansion.
func yamlBomb(levels, width int) string {
	var b strings.Builder
	b.WriteString("upstreams:\n  - name: r\n    rest:\n      base_url: http://127.0.0.1:1\n      tools:\n        - name: t\n          method: GET\n          path: /x\n          input_schema:\n")
	b.WriteString("            a0: &a0 [\"lol\"]\n")
	for i := 1; i < levels; i++ {
		refs := make([]string, width)
		for j := range refs {
			refs[j] = fmt.Sprintf("*a%d", i-1)
		}
		fmt.Fprintf(&b, "            a%d: &a%d [%s]\n", i, i, strings.Join(refs, ", "))
	}
	return b.String()
}

// mergeBomb is the same expansion through merge keys (<<) of mappings.
func mergeBomb(levels, width int) string {
	var b strings.Builder
	b.WriteString("upstreams:\n  - name: r\n    rest:\n      base_url: http://127.0.0.1:1\n      tools:\n        - name: t\n          method: GET\n          path: /x\n          input_schema:\n")
	b.WriteString("            m0: &m0 {k0: lol}\n")
	for i := 1; i < levels; i++ {
		fmt.Fprintf(&b, "            m%d: &m%d {", i, i)
		for j := 0; j < width; j++ {
			fmt.Fprintf(&b, "k%d: *m%d, ", j, i-1)
		}
		fmt.Fprintf(&b, "<<: *m%d}\n", i-1)
	}
	return b.String()
}

// loadBound is the time Load and Validate may take for one input (a
// sanity bound far above the milliseconds they need; it catches expansion
// bombs and runaway loops, not slowness).
const loadBound = 5 * time.Second

// loadSeeds are hand-written configurations and TOOL_SCOPES_JSON values:
// the example file, the minimal one, alias and merge-key bombs, deep
// nesting, huge and negative numbers, odd tags and encodings, duplicate and
// case-variant keys.
func loadSeeds() [][2]string {
	var out [][2]string
	if ex, err := os.ReadFile("../gatewaystack.example.yaml"); err == nil {
		out = append(out, [2]string{string(ex), ""})
	}
	for _, seed := range []string{
		minimalYAML,
		"listen: [1, 2]\n",
		"auth: {algorithms: [none, HS256]}\n",
		"upstreams: [{name: a}, {name: a, mcp: {url: '::'}}]\n",
		"policy: {tools: {'[': {}, '': {}, 'x__*': {scopes: [offline_access]}}}\n",
		"&a [*a, *a]\n",
		"server: {session_key: '!!', allowed_origins: ['*']}\n",
		"---\n---\n",
		yamlBomb(9, 9),
		yamlBomb(3, 60),
		yamlBomb(30, 2),
		mergeBomb(9, 9),
		"a: &a [*a]\n",
		"listen: &l \"127.0.0.1:8080\"\npublic_url: *l\n",
		"auth: &x {issuer: *x}\n",
		"upstreams:\n" + strings.Repeat("- ", 2000) + "x\n",
		strings.Repeat("[", 20000) + strings.Repeat("]", 20000),
		strings.Repeat("{a: ", 5000) + "1" + strings.Repeat("}", 5000),
		"limits: {per_subject: {requests: 99999999999999999999999}}\n",
		"limits: {per_subject: {requests: -1, window: -1s, burst: -5}}\n",
		"server: {max_body_bytes: 1e400, upstream_timeout: 9999999999999h}\n",
		"auth: {clock_skew: 1e309s}\n",
		"listen: !!binary AAAA\n",
		"listen: !!python/object:os.system ls\n",
		"listen: !custom x\n",
		"policy: {tools: {'notes__*': {when: 'identity.roles.contains('}}}\n",
		"policy: {tools: {'notes__*': {when: '" + strings.Repeat("(", 500) + "true" + strings.Repeat(")", 500) + "'}}}\n",
		"listen: \"\xff\xfe\"\n",
		"\xef\xbb\xbflisten: \"127.0.0.1:8080\"\n",
		"listen: \"127.0.0.1:8080\"\nlisten: \"0.0.0.0:80\"\n",
		"LISTEN: \"127.0.0.1:8080\"\n",
		"public_url: \"http://h\\\"x\"\n",
		"public_url: \"http://127.0.0.1:8080/a b\"\n",
		"tls: {cert_file: /etc/passwd, key_file: ../../../../etc/shadow}\n",
		"upstreams: [{name: s, stdio: {command: /bin/sh, args: [-c, 'rm -rf /'], env: {LD_PRELOAD: /tmp/x.so}}}]\n",
		"\t\tlisten: x\n",
		"? [a, b]\n: c\n",
		"%YAML 1.1\n---\nlisten: x\n",
	} {
		out = append(out, [2]string{seed, ""})
	}
	return append(out,
		[2]string{minimalYAML, `{"notes__read_note":["tool:read"]}`},
		[2]string{minimalYAML, `{"notes__read_note":"tool:read","":[],"notes__*":[null,1]}`},
		[2]string{"", `[`},
		[2]string{"", `{"a":{"a":{"a":1}}}`},
	)
}

// FuzzLoad writes arbitrary YAML to a file and loads it with Load (decode,
// the TOOL_SCOPES_JSON environment override, defaults), then validates it.
// Properties: no panic; Load returns a config or an error, never both or
// neither; loading is deterministic; Load and Validate finish in bounded
// time (alias and merge-key bombs are refused by the decoder's alias limit,
// or stay small); Validate returns nil or non-empty Problems, each with a
// field and a message, and leaves the config unchanged; a config that
// validates can be served: its PRM URL builds and every policy pattern and
// condition compiles.
func FuzzLoad(f *testing.F) {
	for _, s := range loadSeeds() {
		f.Add(s[0], s[1])
	}

	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data, toolScopesJSON string) {
		p := filepath.Join(dir, "gatewaystack.yaml")
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		getenv := func(k string) string {
			if k == "TOOL_SCOPES_JSON" {
				return toolScopesJSON
			}
			return ""
		}
		// An input that never finishes loading crashes the worker with the
		// input, so the fuzzer records it.
		watchdog := time.AfterFunc(6*loadBound, func() {
			panic(fmt.Sprintf("Load and Validate did not finish within %v for %d bytes: %.200q", 6*loadBound, len(data), data))
		})
		defer watchdog.Stop()
		start := time.Now()
		c, err := Load(p, getenv)
		if el := time.Since(start); el > loadBound {
			t.Fatalf("Load took %v (bound %v) for %d bytes", el, loadBound, len(data))
		}
		if (c == nil) == (err == nil) {
			t.Fatalf("Load returned config %v and error %v", c != nil, err)
		}
		c2, err2 := Load(p, getenv)
		if (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("Load is not deterministic: %v, then %v", err, err2)
		}
		if err != nil {
			return
		}
		before, merr := yaml.Marshal(c)
		if merr == nil {
			if again, _ := yaml.Marshal(c2); !bytes.Equal(before, again) {
				t.Fatalf("Load is not deterministic:\n%s\nthen\n%s", before, again)
			}
		}

		start = time.Now()
		verr := c.Validate()
		if el := time.Since(start); el > loadBound {
			t.Fatalf("Validate took %v (bound %v)", el, loadBound)
		}
		if merr == nil {
			if after, _ := yaml.Marshal(c); !bytes.Equal(before, after) {
				t.Fatalf("Validate changed the config:\n%s\nto\n%s", before, after)
			}
		}
		if verr != nil {
			var ps Problems
			if !errors.As(verr, &ps) {
				t.Fatalf("Validate returned %T, want Problems", verr)
			}
			if len(ps) == 0 {
				t.Fatal("Validate returned empty Problems instead of nil")
			}
			for _, pr := range ps {
				if pr.Field == "" || pr.Message == "" {
					t.Fatalf("problem without a field or message: %+v", pr)
				}
			}
			return
		}

		// A valid configuration can be served.
		if _, err := auth.PRMURL(c.Resource()); err != nil {
			t.Fatalf("valid config, but its resource %q has no PRM URL: %v", c.Resource(), err)
		}
		for _, table := range []map[string]ToolRule{c.Policy.Tools, c.Policy.Prompts, c.Policy.Resources} {
			for pat, r := range table {
				if _, err := path.Match(pat, ""); err != nil {
					t.Fatalf("valid config, but pattern %q is not a glob: %v", pat, err)
				}
				if r.When != "" {
					if err := policy.CompileCondition(r.When); err != nil {
						t.Fatalf("valid config, but the condition of %q does not compile: %v", pat, err)
					}
				}
			}
		}
	})
}
