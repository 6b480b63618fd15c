package config

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateChecksPolicyConditionsAndAnyScopes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		rule  ToolRule
		field string   // "" for a valid rule
		want  []string // substrings of the message
	}{
		{"a role condition from the issue is valid", ToolRule{When: `"finance-analyst" in identity.roles`}, "", nil},
		{"a claim condition from the issue is valid", ToolRule{When: `identity.claims["plan"] in ["pro", "enterprise"]`}, "", nil},
		{"an argument condition from the issue is valid", ToolRule{When: `request.arguments.account_id.startsWith(identity.tenant + "-")`}, "", nil},
		{"any_scopes with one scope is valid", ToolRule{AnyScopes: []string{"crm:read"}}, "", nil},
		{"a syntax error names the rule and the position",
			ToolRule{When: `"a" in identity.roles &&`},
			`policy.tools["crm__export"].when`, []string{"invalid CEL condition at 1:25", "Syntax error"}},
		{"an undeclared variable names its position on the right line",
			ToolRule{When: "identity.sub == \"a\" ||\n  user.admin"},
			`policy.tools["crm__export"].when`, []string{"at 2:3", "undeclared reference to 'user'", "request.arguments"}},
		{"a condition that is not a bool is refused",
			ToolRule{When: `identity.tenant + "-"`},
			`policy.tools["crm__export"].when`, []string{"at 1:1", "must be a bool"}},
		{"an empty any_scopes list is refused",
			ToolRule{AnyScopes: []string{}},
			`policy.tools["crm__export"].any_scopes`, []string{"at least one scope"}},
		{"an invalid any_scopes token is refused",
			ToolRule{AnyScopes: []string{"a b"}},
			`policy.tools["crm__export"].any_scopes[0]`, []string{"not a valid scope token"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := valid()
			c.Policy.Tools["crm__export"] = tt.rule
			err := c.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			var ps Problems
			if !errors.As(err, &ps) || len(ps) != 1 {
				t.Fatalf("want exactly one problem, got %v", err)
			}
			if ps[0].Field != tt.field {
				t.Fatalf("field %q, want %q", ps[0].Field, tt.field)
			}
			for _, w := range tt.want {
				if !strings.Contains(ps[0].Message, w) {
					t.Errorf("message %q does not contain %q", ps[0].Message, w)
				}
			}
		})
	}
}

func TestPromptAndResourceConditionsAreCheckedToo(t *testing.T) {
	t.Parallel()
	c := valid()
	c.Policy.Prompts = map[string]ToolRule{"notes__*": {When: `identity.nope(`}}
	c.Policy.Resources = map[string]ToolRule{"notes__notes://*": {When: `1`}}
	var ps Problems
	if err := c.Validate(); !errors.As(err, &ps) || len(ps) != 2 {
		t.Fatalf("want two problems, got %v", err)
	}
	got := ps[0].Field + " " + ps[1].Field
	if !strings.Contains(got, `policy.prompts["notes__*"].when`) || !strings.Contains(got, `policy.resources["notes__notes://*"].when`) {
		t.Fatalf("fields: %s", got)
	}
}
