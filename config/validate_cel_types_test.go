package config

import (
	"errors"
	"strings"
	"testing"
)

// Regression invariant: a condition that reads a field identity or
// request does not have, or compares a field with the wrong type, is a
// configuration error naming the rule and the line:column, not a rule that
// denies every call at run time.
func TestValidateRefusesConditionTyposWithTheirPosition(t *testing.T) {
	t.Parallel()
	tests := []struct {
		when string
		want []string
	}{
		{`"admin" in identity.role`, []string{"at 1:20", "undefined field 'role'"}},
		{`identity.tenantt == "acme"`, []string{"at 1:9", "undefined field 'tenantt'"}},
		{`request.argumentz.x == 1`, []string{"at 1:8", "undefined field 'argumentz'"}},
		{"identity.sub == \"a\" ||\n  identity.sub == 1", []string{"at 2:16", "no matching overload"}},
	}
	for _, tt := range tests {
		c := valid()
		c.Policy.Tools["crm__export"] = ToolRule{When: tt.when}
		var ps Problems
		if err := c.Validate(); !errors.As(err, &ps) || len(ps) != 1 {
			t.Errorf("%s: want exactly one problem, got %v", tt.when, err)
			continue
		}
		if ps[0].Field != `policy.tools["crm__export"].when` {
			t.Errorf("%s: field %q", tt.when, ps[0].Field)
		}
		for _, w := range append(tt.want, "identity.client_id") {
			if !strings.Contains(ps[0].Message, w) {
				t.Errorf("%s: message %q does not contain %q", tt.when, ps[0].Message, w)
			}
		}
	}
	c := valid()
	c.Policy.Tools["crm__export"] = ToolRule{When: `identity.client_id == "app" && request.arguments.n > 9007199254740992`}
	if err := c.Validate(); err != nil {
		t.Errorf("a condition on declared fields: %v", err)
	}
}

func TestValidateRefusesMalformedPatternsEverywhere(t *testing.T) {
	t.Parallel()
	c := valid()
	c.Policy.Tools[`notes__\`] = ToolRule{}
	c.Limits.PerTool = map[string]Rate{"notes__[": {Requests: intp(1), Window: 60e9, Burst: 1}}
	var ps Problems
	if err := c.Validate(); !errors.As(err, &ps) || len(ps) != 2 {
		t.Fatalf("want two problems, got %v", err)
	}
	for _, p := range ps {
		if !strings.Contains(p.Message, "invalid glob") || !strings.Contains(p.Message, "syntax error in pattern") {
			t.Errorf("%s: %s", p.Field, p.Message)
		}
	}
}
