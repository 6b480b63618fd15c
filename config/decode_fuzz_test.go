package config

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// walkOnly runs the first decoding pass alone on the first document of
// data: its problems, and whether the document parsed.
func walkOnly(data []byte) (Problems, bool) {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		return nil, errors.Is(err, io.EOF)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	d := &decoded{at: map[string]position{}}
	(&walker{d: d}).walk(root, reflect.TypeFor[Config](), "")
	return d.problems, true
}

// FuzzDecodePassesAgree checks the first decoding pass (which reports
// every problem with a suggestion) against the YAML library's strict
// decode of the first document: the pass finds a problem exactly when the
// library refuses the document, so the suggestions never hide an error
// and never invent one. Inputs the library refuses for reasons outside a
// field (alias limits) are left out.
func FuzzDecodePassesAgree(f *testing.F) {
	for _, s := range loadSeeds() {
		f.Add(s[0])
	}
	for _, s := range []string{
		"upstreams:\n  - name: a\n    mcp: {ulr: x}\n",
		"auth: {clock_skew: 1 minute, algorithms: RS256}\n",
		"server: {max_body_bytes: 4MiB, metrics: maybe}\n",
		"listen: a\nlisten: b\n",
		"x: &a {issuer: i}\nauth:\n  <<: *a\n  audience: y\n",
		"auth:\n  <<: {issuer: i, bogus: 1}\n",
		"policy: {tools: {a: {scopes: x}, a: {}}}\n",
		"upstreams: {name: a}\n",
		"upstreams: [{rest: {tools: [{input_schema: [1]}]}}]\n",
		"limits: {per_tool: {a: 1}}\n",
		"auth: ~\nproxy: {default_route: {cost: x}}\n",
		"public_url: [a]\n",
		"log: {audit: yes, access: off}\n",
		"server: {gc_percent: 1.5}\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		if len(data) > 1<<16 {
			return
		}
		watchdog := time.AfterFunc(6*loadBound, func() { panic("the decoding passes did not finish") })
		defer watchdog.Stop()
		problems, parsed := walkOnly([]byte(data))
		if !parsed {
			return
		}
		var c Config
		err := strictDecode([]byte(data), &c)
		var te *yaml.TypeError
		if err != nil && !errors.As(err, &te) {
			return // alias limits and the like: reported as the library words them
		}
		if (len(problems) == 0) != (err == nil) {
			t.Fatalf("the passes disagree on %q:\nfirst pass: %v\nlibrary: %v", data, problems, err)
		}
		for _, p := range problems {
			if p.Field == "" || p.Message == "" || p.Line == 0 {
				t.Fatalf("problem without field, message or line: %+v", p)
			}
		}
	})
}
