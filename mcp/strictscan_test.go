package mcp

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// slowUnambiguous is the decoder walk alone (checkUnambiguous without its
// fast path).
func slowUnambiguous(body []byte) error {
	if err := scanUnambiguous([]byte("x")); !errors.Is(err, errScan) {
		panic("the scanner accepted garbage")
	}
	return checkUnambiguousSlow(body)
}

var scanSeeds = []string{
	`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call"}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call"}`,
	`{"jsonrpc":"2.0","id":1,"METHOD":"tools/call"}`,
	`{"jsonrpc":"2.0","id":1,"\u006dethod":"tools/call","method":"tools/list"}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","N\u0061me":"b"}}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":1,"x":2}}}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":1,"X":2}}}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"s":"}\"{","n":[1,{"x":"]"}],"o":{"x":{"x":1}}}}}`,
	` { "jsonrpc" : "2.0" , "id" : "a\"b" , "method" : "x" , "params" : [ 1 , 2 ] } `,
	`{"jsonrpc":"2.0","id":null,"method":"x","params":null}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":[]}}`,
	`{}`,
	`{"a":{"b":{"c":[[[]]]}},"a":1}`,
	`{"params":{"arguments":{"k\\":1,"k\\":2}}}`,
	`{"jſonrpc":"2.0","jsonrpc":"2.0"}`,
}

// The fast scanner gives the decoder walk's verdict on every input, or
// steps aside.
func TestScanAgreesWithTheDecoderWalk(t *testing.T) {
	for _, in := range scanSeeds {
		fast := scanUnambiguous([]byte(in))
		if errors.Is(fast, errScan) {
			continue
		}
		slow := slowUnambiguous([]byte(in))
		if (fast == nil) != (slow == nil) {
			t.Errorf("%s: scanner %v, decoder walk %v", in, fast, slow)
		}
	}
}

func FuzzScanAgreesWithTheDecoderWalk(f *testing.F) {
	for _, in := range scanSeeds {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var env envelope
		if json.Unmarshal(body, &env) != nil {
			if decodeEnvelope(body, &envelope{}) {
				t.Fatalf("%q: decodeEnvelope accepted what encoding/json refuses", body)
			}
			return // checkUnambiguous only ever sees bodies that parsed
		}
		// The envelope's fast path, wherever it answers, reads what
		// encoding/json reads.
		var quick envelope
		if decodeEnvelope(body, &quick) && !reflect.DeepEqual(quick, env) {
			t.Fatalf("%q: decodeEnvelope %+v, encoding/json %+v", body, quick, env)
		}
		fast := scanUnambiguous(body)
		if errors.Is(fast, errScan) {
			return
		}
		slow := slowUnambiguous(body)
		if (fast == nil) != (slow == nil) {
			t.Fatalf("%q: scanner %v, decoder walk %v", body, fast, slow)
		}
	})
}
