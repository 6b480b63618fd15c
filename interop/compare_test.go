package interop

// The comparison of the fidelity tests, checked against canned answers: it
// must accept exactly the allowed differences and report everything else.
// These run without the third-party tools.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// cannedClient answers from a table keyed by method and compact params.
type cannedClient map[string]string

func (c cannedClient) request(_ context.Context, method string, params map[string]any) (json.RawMessage, error) {
	key := method
	if params != nil {
		key += " " + compact(params)
	}
	res, ok := c[key]
	if !ok {
		return nil, fmt.Errorf("canned client: no answer for %s", key)
	}
	return json.RawMessage(res), nil
}

func TestDiffOpAcceptsOnlyTheAllowedDifferences(t *testing.T) {
	t.Parallel()
	toolsList := listOps[0]
	call := callOp("x", "do", map[string]any{"a": 1})
	cases := []struct {
		name      string
		o         op
		direct    cannedClient
		gateway   cannedClient
		wantDiffs []string // substrings, one per expected difference; none = equal
	}{
		{
			name:    "prefix, serverInfo and tightened cache hints are allowed; key order is ignored",
			o:       toolsList,
			direct:  cannedClient{"tools/list": `{"tools":[{"name":"a","inputSchema":{"type":"object","x-k":[1,2.50,null]}}],"cacheScope":"public","ttlMs":60000}`},
			gateway: cannedClient{"tools/list": `{"serverInfo":{"name":"gw"},"ttlMs":0,"cacheScope":"private","tools":[{"inputSchema":{"x-k":[1,2.50,null],"type":"object"},"name":"ev__a"}]}`},
		},
		{
			name:      "an entry without the prefix",
			o:         toolsList,
			direct:    cannedClient{"tools/list": `{"tools":[{"name":"a"}]}`},
			gateway:   cannedClient{"tools/list": `{"tools":[{"name":"a"}]}`},
			wantDiffs: []string{`no "ev__" prefix`},
		},
		{
			name:      "a field dropped and one added deep inside",
			o:         toolsList,
			direct:    cannedClient{"tools/list": `{"tools":[{"name":"a","_meta":{"openai/outputTemplate":"ui://w"},"annotations":{"title":"T"}}]}`},
			gateway:   cannedClient{"tools/list": `{"tools":[{"name":"ev__a","annotations":{"title":"T","readOnlyHint":false}}]}`},
			wantDiffs: []string{"result.tools[0]._meta: missing through the gateway", "result.tools[0].annotations.readOnlyHint: added by the gateway"},
		},
		{
			name:      "a missing entry names both lists",
			o:         toolsList,
			direct:    cannedClient{"tools/list": `{"tools":[{"name":"a"},{"name":"b"}]}`},
			gateway:   cannedClient{"tools/list": `{"tools":[{"name":"ev__b"}]}`},
			wantDiffs: []string{"result.tools: missing through the gateway: [a]"},
		},
		{
			name:      "named entries are compared by name",
			o:         toolsList,
			direct:    cannedClient{"tools/list": `{"tools":[{"name":"a","title":"A"},{"name":"b","title":"B"}]}`},
			gateway:   cannedClient{"tools/list": `{"tools":[{"name":"ev__b","title":"B"},{"name":"ev__c"},{"name":"ev__a","title":"a"}]}`},
			wantDiffs: []string{"result.tools: added by the gateway: [c]", "result.tools: order directly [a b], through the gateway [b a]", `result.tools["a"].title: directly "A", through the gateway "a"`},
		},
		{
			name:      "numbers are compared by their text: a float64 round trip shows",
			o:         call,
			direct:    cannedClient{`tools/call {"arguments":{"a":1},"name":"do"}`: `{"content":[],"structuredContent":{"big":12345678901234567}}`},
			gateway:   cannedClient{`tools/call {"arguments":{"a":1},"name":"ev__do"}`: `{"content":[],"structuredContent":{"big":12345678901234568}}`},
			wantDiffs: []string{"result.structuredContent.big: directly 12345678901234567, through the gateway 12345678901234568"},
		},
		{
			name:      "loosened cache hints are reported",
			o:         call,
			direct:    cannedClient{`tools/call {"arguments":{"a":1},"name":"do"}`: `{"content":[]}`},
			gateway:   cannedClient{`tools/call {"arguments":{"a":1},"name":"ev__do"}`: `{"content":[],"cacheScope":"public","ttlMs":5000}`},
			wantDiffs: []string{"result.cacheScope = \"public\"", "result.ttlMs = 5000"},
		},
		{
			name: "pages are joined on both sides",
			o:    toolsList,
			direct: cannedClient{
				"tools/list":                 `{"tools":[{"name":"a"}],"nextCursor":"p2"}`,
				`tools/list {"cursor":"p2"}`: `{"tools":[{"name":"b"}]}`,
			},
			gateway: cannedClient{"tools/list": `{"tools":[{"name":"ev__a"},{"name":"ev__b"}]}`},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := diffOp(tc.direct, tc.gateway, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			if len(d.lines) != len(tc.wantDiffs) {
				t.Fatalf("got %d difference(s), want %d:\n  %s", len(d.lines), len(tc.wantDiffs), strings.Join(d.lines, "\n  "))
			}
			for i, want := range tc.wantDiffs {
				if !strings.Contains(d.lines[i], want) {
					t.Errorf("difference %d = %q, want it to contain %q", i, d.lines[i], want)
				}
			}
		})
	}
}

func TestSSEDataFindsTheResponseAfterNotifications(t *testing.T) {
	t.Parallel()
	body := "id: 1\ndata: \n\n" + // a priming event without data
		"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\n" +
		"event: message\r\ndata: {\"jsonrpc\":\"2.0\",\r\ndata: \"id\":7,\"result\":{\"ok\":true}}\r\n\r\n"
	m, err := findResponse("text/event-stream; charset=utf-8", []byte(body), 7)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Result) != `{"ok":true}` {
		t.Fatalf("result = %s", m.Result)
	}
	if _, err := findResponse("text/event-stream", []byte(body), 8); err == nil {
		t.Fatal("found a response to an id that was never answered")
	}
}
