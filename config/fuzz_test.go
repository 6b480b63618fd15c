package config

import (
	"os"
	"testing"
)

// FuzzLoad feeds arbitrary YAML through Decode, SetDefaults and Validate:
// none may panic, and a config that decodes always validates to either nil
// or Problems.
func FuzzLoad(f *testing.F) {
	if ex, err := os.ReadFile("../gatewaystack.example.yaml"); err == nil {
		f.Add(string(ex))
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
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data string) {
		var c Config
		if err := Decode([]byte(data), &c); err != nil {
			return
		}
		c.SetDefaults()
		if err := c.Validate(); err != nil {
			if _, ok := err.(Problems); !ok {
				t.Fatalf("Validate returned %T, want Problems", err)
			}
		}
	})
}
