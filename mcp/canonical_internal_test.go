package mcp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gatewaystack/gatewaystack/auth"
	"github.com/gatewaystack/gatewaystack/internal/jsonscan"
	"github.com/gatewaystack/gatewaystack/upstream"
)

// randomJSON writes a random JSON value with random insignificant space,
// escapes, non-ASCII text, HTML-special characters and integers beyond
// float64's exact range.
func randomJSON(r *rand.Rand, b *strings.Builder, depth int) {
	sp := func() {
		for range r.IntN(3) {
			b.WriteByte(" \t\n"[r.IntN(3)])
		}
	}
	sp()
	kind := r.IntN(8)
	if depth > 3 && kind >= 6 {
		kind = r.IntN(6)
	}
	switch kind {
	case 0:
		b.WriteString([]string{"true", "false", "null"}[r.IntN(3)])
	case 1:
		b.WriteString([]string{"9007199254740993", "-0", "1e400", "0.1", "18446744073709551616", "42"}[r.IntN(6)])
	case 2, 3, 4, 5:
		b.WriteString(randomString(r))
	case 6:
		b.WriteByte('[')
		for i := range r.IntN(4) {
			if i > 0 {
				b.WriteByte(',')
			}
			randomJSON(r, b, depth+1)
		}
		b.WriteByte(']')
	default:
		b.WriteByte('{')
		for i := range r.IntN(5) {
			if i > 0 {
				b.WriteByte(',')
			}
			sp()
			fmt.Fprintf(b, `"k%d_%s"`, i, []string{"a", "é", `\u00e9`, "<x>", `\"q`}[r.IntN(5)])
			sp()
			b.WriteByte(':')
			randomJSON(r, b, depth+1)
		}
		b.WriteByte('}')
	}
	sp()
}

func randomString(r *rand.Rand) string {
	parts := []string{"plain", "<b>&amp;</b>", `\u003c`, `\n`, `\"`, "é", `\ud83d\ude00`, "😀", `\/`, " "}
	var b strings.Builder
	b.WriteByte('"')
	for range r.IntN(4) {
		b.WriteString(parts[r.IntN(len(parts))])
	}
	b.WriteByte('"')
	return b.String()
}

// Property (the invariant of canonical.go, with no transform configured):
// for random tool calls and resource reads, the arguments and the name or
// URI the decision reads are exactly the bytes an upstream decodes from
// the forwarded params, whichever decoder it uses (encoding/json into a
// struct, which matches keys case-insensitively, or a member scanner); the
// reserved _meta namespace never survives except as the gateway sets it.
func TestForwardedParamsAreDerivedFromWhatWasDecided(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	id := auth.Identity{Subject: "alice", Tenant: "acme", Scopes: []string{"tool:read"}}
	metas := []string{
		``,
		`,"_meta":null`,
		`,"_meta":{}`,
		`,"_meta":{"progressToken":7,"io.gatewaystack/identity":{"sub":"admin"}}`,
		`,"_meta": {"IO.GATEWAYSTACK/IDENTITY":{"sub":"admin"}, "vendor/x":[1, 2]}`,
		`,"_meta":{"io.gatewaystack/workflow":"wf-1","io.modelcontextprotocol/protocolVersion":"2026-07-28"}`,
	}
	for i := range 3000 {
		var args strings.Builder
		if r.IntN(2) == 0 {
			args.WriteString("{")
			for j := range r.IntN(4) {
				if j > 0 {
					args.WriteString(" ,")
				}
				fmt.Fprintf(&args, `"a%d":`, j)
				randomJSON(r, &args, 0)
			}
			args.WriteString("}")
		} else {
			randomJSON(r, &args, 0)
		}
		key, name := "name", "rec__echo"
		if i%3 == 0 {
			key, name = "uri", "lib://docs/a%C3%A9/b?q=%20x#frag"
		}
		raw := `{ "` + key + `" : "` + name + `", "arguments" :` + args.String() + metas[r.IntN(len(metas))] + `}`
		if !json.Valid([]byte(raw)) {
			t.Fatalf("generator made invalid JSON: %s", raw)
		}
		c, err := parseCanonical(json.RawMessage(raw), key)
		if err != nil {
			// Refusals are fine (ambiguous or non-normal input); nothing
			// is forwarded then.
			continue
		}
		decidedArgs := c.Field("arguments") // what policy.Action.Arguments gets
		decidedName := c.Name
		out, err := c.encode(forwarded{original: decidedName, identity: &id, progressToken: "gs-1"})
		if err != nil {
			t.Fatalf("encode %s: %v", raw, err)
		}
		if !json.Valid(out) {
			t.Fatalf("forwarded params are not JSON: %s", out)
		}
		if err := jsonscan.CheckNames(out, "params"); err != nil {
			t.Fatalf("forwarded params are ambiguous: %v: %s", err, out)
		}
		// A Go upstream binding params to a struct.
		var bound struct {
			Name      string                     `json:"name"`
			URI       string                     `json:"uri"`
			Arguments json.RawMessage            `json:"arguments"`
			Meta      map[string]json.RawMessage `json:"_meta"`
		}
		if err := json.Unmarshal(out, &bound); err != nil {
			t.Fatalf("upstream decode: %v: %s", err, out)
		}
		got := bound.Name
		if key == "uri" {
			got = bound.URI
		}
		if got != decidedName {
			t.Fatalf("decided on %q, the upstream got %q: %s", decidedName, got, out)
		}
		if !bytes.Equal(bound.Arguments, decidedArgs) {
			t.Fatalf("decided on arguments %s, the upstream got %s (sent %s)", decidedArgs, bound.Arguments, raw)
		}
		// A member scanner reads the same bytes.
		members, ok := jsonscan.Object(out, nil)
		if ok && !bytes.Equal(jsonscan.Get(members, "arguments"), decidedArgs) {
			t.Fatalf("scanner read %s, decided %s", jsonscan.Get(members, "arguments"), decidedArgs)
		}
		for k, v := range bound.Meta {
			switch {
			case k == upstream.IdentityMetaKey:
				if !bytes.Contains(v, []byte(`"sub":"alice"`)) {
					t.Fatalf("identity in _meta is %s", v)
				}
			case k == WorkflowMetaKey:
			case reservedMetaKey(k):
				t.Fatalf("the caller's %q was forwarded: %s", k, out)
			case upstream.EraMetaKey(k):
				t.Fatalf("per-request era key %q was forwarded: %s", k, out)
			}
		}
		if p := bound.Meta["progressToken"]; p != nil && string(p) != `"gs-1"` {
			t.Fatalf("progress token %s, want the gateway's", p)
		}
	}
}
