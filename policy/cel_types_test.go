package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/gatewaystack/gatewaystack/auth"
)

// Regression invariant: a condition compares a call's numbers with the
// value the upstream reads. Integers are exact (int, or uint beyond int),
// an integer beyond both fails closed, and only numbers written with a
// fraction or an exponent are doubles.
func TestConditionsReadArgumentNumbersExactly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		when   string
		args   string
		effect Effect
		reason string
	}{
		{"2^53+1 is not 2^53", `request.arguments.n == 9007199254740992`, `{"n":9007199254740993}`, Hidden, ReasonConditionFalse},
		{"2^53 is 2^53", `request.arguments.n == 9007199254740992`, `{"n":9007199254740992}`, Allow, ReasonAllowed},
		{"2^53+1 is above 2^53", `request.arguments.n > 9007199254740992`, `{"n":9007199254740993}`, Allow, ReasonAllowed},
		{"int64 max is exact", `request.arguments.n == 9223372036854775807`, `{"n":9223372036854775807}`, Allow, ReasonAllowed},
		{"int64 min is exact", `request.arguments.n == -9223372036854775808`, `{"n":-9223372036854775808}`, Allow, ReasonAllowed},
		{"uint64 max compares exactly", `request.arguments.n == 18446744073709551615u`, `{"n":18446744073709551615}`, Allow, ReasonAllowed},
		{"uint64 max minus one is not uint64 max", `request.arguments.n == 18446744073709551615u`, `{"n":18446744073709551614}`, Hidden, ReasonConditionFalse},
		{"a uint beyond int64 compares with an int", `request.arguments.n > 9223372036854775807`, `{"n":9223372036854775808}`, Allow, ReasonAllowed},
		{"an integer beyond uint64 fails closed", `request.arguments.n > 0`, `{"n":18446744073709551616}`, Hidden, ReasonConditionError},
		{"an integer below int64 fails closed", `request.arguments.n < 0`, `{"n":-9223372036854775809}`, Hidden, ReasonConditionError},
		{"an integer beyond range fails closed even where the condition does not read it", `request.arguments.a == 1`, `{"a":1,"b":[1e2,{"c":99999999999999999999999}]}`, Hidden, ReasonConditionError},
		{"a number beyond a double fails closed", `request.arguments.n > 0.0`, `{"n":1e400}`, Hidden, ReasonConditionError},
		{"1.5 stays a double", `type(request.arguments.n) == double && request.arguments.n == 1.5`, `{"n":1.5}`, Allow, ReasonAllowed},
		{"an exponent makes a double", `type(request.arguments.n) == double && request.arguments.n == 100.0`, `{"n":1e2}`, Allow, ReasonAllowed},
		{"an integer is an int", `type(request.arguments.n) == int`, `{"n":42}`, Allow, ReasonAllowed},
		{"a big integer is a uint", `type(request.arguments.n) == uint`, `{"n":9223372036854775808}`, Allow, ReasonAllowed},
		{"-0 is the int 0", `request.arguments.n == 0 && type(request.arguments.n) == int`, `{"n":-0}`, Allow, ReasonAllowed},
		{"nested objects are exact too", `request.arguments.o.n == 9007199254740992`, `{"o":{"n":9007199254740993}}`, Hidden, ReasonConditionFalse},
		{"nested objects match exactly", `request.arguments.o.n == 9007199254740993`, `{"o":{"n":9007199254740993}}`, Allow, ReasonAllowed},
		{"lists are exact too", `request.arguments.l[1] == 9007199254740993`, `{"l":[1,9007199254740993]}`, Allow, ReasonAllowed},
		{"lists of objects are exact too", `request.arguments.l.exists(x, x.n == 9007199254740992)`, `{"l":[{"n":9007199254740993}]}`, Hidden, ReasonConditionFalse},
		{"an int compares with a double across types", `request.arguments.n < 1000.5`, `{"n":1000}`, Allow, ReasonAllowed},
		{"strings, booleans and null decode as before", `request.arguments.s == "caf\u00e9 \u2028" && request.arguments.t && request.arguments.z == null`, `{"s":"caf\u00e9 \u2028","t":true,"z":null}`, Allow, ReasonAllowed},
		{"a repeated name keeps its last value, as encoding/json reads it", `request.arguments.n == 2`, `{"n":1,"n":2}`, Allow, ReasonAllowed},
		{"trailing data is not an object", `size(request.arguments) >= 0`, `{"n":1} {}`, Hidden, ReasonConditionError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := CompileCondition(tt.when); err != nil {
				t.Fatalf("condition does not compile: %v", err)
			}
			a := New(map[string]Rule{"finance__*": {When: tt.when}}, nil, nil)
			d := a.Decide(analyst(), call("finance__pay", tt.args))
			if d.Effect != tt.effect || d.Reason != tt.reason {
				t.Fatalf("%s with %s: got %s/%s (%s), want %s/%s", tt.when, tt.args, d.Effect, d.Reason, d.Detail, tt.effect, tt.reason)
			}
		})
	}
}

// Regression invariant: identity and request are objects with fixed,
// typed fields, so a misspelt field or a type mismatch is a configuration
// error with its position, not a condition that denies every call.
func TestConditionTyposAndTypeErrorsDoNotCompile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expr      string
		line, col int
		msg       string
	}{
		{`"admin" in identity.role`, 1, 20, "undefined field 'role'"},
		{`identity.tenantt == "acme"`, 1, 9, "undefined field 'tenantt'"},
		{`request.argumentz.x == 1`, 1, 8, "undefined field 'argumentz'"},
		{`request.unknown == 1`, 1, 8, "undefined field 'unknown'"},
		{`identity.sub == 1`, 1, 14, "no matching overload"},
		{`request.tool == 1`, 1, 14, "no matching overload"},
		{`identity.client_id > 3`, 1, 20, "no matching overload"},
		{`identity.scopes == "tool:read"`, 1, 17, "no matching overload"},
		{`identity.roles.startsWith("a")`, 1, 26, "no matching overload"},
		{"identity.sub == \"a\" &&\n  identity.claim[\"x\"] == 1", 2, 11, "undefined field 'claim'"},
	}
	for _, tt := range tests {
		var ce *ConditionError
		if err := CompileCondition(tt.expr); !errors.As(err, &ce) {
			t.Errorf("%s: got %v, want a *ConditionError", tt.expr, err)
			continue
		}
		if ce.Line != tt.line || ce.Column != tt.col || !strings.Contains(ce.Message, tt.msg) {
			t.Errorf("%s: got %d:%d %q, want %d:%d containing %q", tt.expr, ce.Line, ce.Column, ce.Message, tt.line, tt.col, tt.msg)
		}
	}
	for _, ok := range []string{
		`identity.sub == "alice" && identity.tenant == "acme" && identity.client_id == "app"`,
		`"tool:read" in identity.scopes && identity.roles.exists(r, r == "sales")`,
		`identity.claims.anything == 1 && identity.claims["x-y"].z == "w"`,
		`request.tool.startsWith("finance__") && request.upstream == "finance"`,
		`request.arguments.any.depth[0] == 1 && has(request.arguments.x) && size(request.arguments) > 0`,
		`has(identity.sub)`,
	} {
		if err := CompileCondition(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
}

func TestClientIDIsReadable(t *testing.T) {
	t.Parallel()
	a := New(map[string]Rule{"x__*": {When: `identity.client_id == "claude"`}}, nil, nil)
	who := analyst()
	if d := a.Decide(who, call("x__a", `{}`)); d.Reason != ReasonConditionFalse {
		t.Fatalf("another client: %s (%s)", d.Reason, d.Detail)
	}
	who.ClientID = "claude"
	if d := a.Decide(who, call("x__a", `{}`)); d.Effect != Allow {
		t.Fatalf("the client: %s/%s (%s)", d.Effect, d.Reason, d.Detail)
	}
}

// Regression invariant: with typed variables, a listing still evaluates
// request.arguments and request.upstream as unknown.
func TestTypedVariablesKeepPartialEvaluation(t *testing.T) {
	t.Parallel()
	a := New(map[string]Rule{"*": {When: `identity.client_id == "" && request.arguments.n < 9007199254740993 && request.upstream == "finance"`}}, nil, nil)
	if d := a.Decide(analyst(), Action{Name: "get"}); !d.Listed() || !d.Partial {
		t.Fatalf("listing: got %s partial=%v (%s), want listed and partial", d.Effect, d.Partial, d.Detail)
	}
	if d := a.Decide(analyst(), Action{Name: "get", Upstream: "crm"}); d.Listed() || d.Reason != ReasonConditionFalse {
		t.Fatalf("listing for another upstream: got %s/%s, want hidden/condition_false", d.Effect, d.Reason)
	}
	if d := a.Decide(analyst(), call("get", `{"n":9007199254740993}`)); d.Reason != ReasonConditionFalse {
		t.Fatalf("call: got %s/%s (%s), want condition_false", d.Effect, d.Reason, d.Detail)
	}
	if d := a.Decide(withClient(analyst(), "app"), Action{Name: "get"}); d.Listed() {
		t.Fatalf("listing for another client: got %s, want hidden", d.Effect)
	}
}

func withClient(i auth.Identity, c string) auth.Identity { i.ClientID = c; return i }

// referenceArguments decodes arguments with encoding/json (UseNumber) and
// converts the numbers as decodeArguments documents.
func referenceArguments(raw []byte) (map[string]any, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return map[string]any{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data")
	}
	if v == nil {
		return map[string]any{}, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("not an object")
	}
	var conv func(any) (any, error)
	conv = func(v any) (any, error) {
		switch x := v.(type) {
		case json.Number:
			s := string(x)
			if !strings.ContainsAny(s, ".eE") {
				if i, err := strconv.ParseInt(s, 10, 64); err == nil {
					return i, nil
				}
				if u, err := strconv.ParseUint(s, 10, 64); err == nil {
					return u, nil
				}
				return nil, errors.New("integer out of range")
			}
			return strconv.ParseFloat(s, 64)
		case map[string]any:
			for k, e := range x {
				c, err := conv(e)
				if err != nil {
					return nil, err
				}
				x[k] = c
			}
		case []any:
			for i, e := range x {
				c, err := conv(e)
				if err != nil {
					return nil, err
				}
				x[i] = c
			}
		}
		return v, nil
	}
	if _, err := conv(m); err != nil {
		return nil, err
	}
	return m, nil
}

// FuzzDecodeArguments checks the arguments reader against encoding/json:
// the same input is refused, or read into the same values.
func FuzzDecodeArguments(f *testing.F) {
	for _, s := range []string{
		fuzzArguments, ``, `null`, ` null `, `{}`, `[]`, `1`, `"s"`, `{"a":1} x`, `{"n":18446744073709551616}`, `{"n":-9223372036854775809}`,
		`{"n":1e400}`, `{"n":-0.0}`, `{"s":"\ud800"}`, "{\"s\":\"\xff\"}", `{"a":{"a":{"a":[[[]]]}}}`, `{"a":1,"a":2}`, `{"a" : [ 1 , 2 ] , "b" : { } }`,
		`{"e":"\"\\\/\b\f\n\r\t\u0041"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, gerr := decodeArguments(raw)
		want, werr := referenceArguments(raw)
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("%q: decodeArguments error %v, encoding/json error %v", raw, gerr, werr)
		}
		if gerr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: decodeArguments = %#v, encoding/json reads %#v", raw, got, want)
		}
	})
}
