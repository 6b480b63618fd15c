package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"

	"github.com/gatewaystack/gatewaystack/auth"
)

// CostLimit bounds the runtime cost of evaluating one condition (CEL's cost
// units: roughly one per operation, more for string and list work). A
// condition that exceeds it fails closed with reason condition_error.
const CostLimit = 100_000

// ConditionError is a condition that does not compile or type-check: where
// (1-based line and column in the expression) and what.
type ConditionError struct {
	Line, Column int
	Message      string
}

func (e *ConditionError) Error() string {
	return fmt.Sprintf("%d:%d: %s", e.Line, e.Column, e.Message)
}

// The CEL types of the two variables a condition reads. They are object
// types with fixed fields, so that a misspelt field (identity.role for
// identity.roles) or a wrong type (identity.sub == 1) is a compile error at
// configuration load rather than a denial of every call at run time.
// claims and arguments are the only maps: their keys come from tokens and
// callers.
const (
	identityTypeName = "gatewaystack.Identity"
	requestTypeName  = "gatewaystack.Request"
)

// celObjects are the fields of the object types.
var celObjects = map[string]map[string]*types.Type{
	identityTypeName: {
		"sub":       types.StringType,
		"tenant":    types.StringType,
		"scopes":    types.NewListType(types.StringType),
		"roles":     types.NewListType(types.StringType),
		"client_id": types.StringType,
		"claims":    types.NewMapType(types.StringType, types.DynType),
	},
	requestTypeName: {
		"tool":      types.StringType,
		"upstream":  types.StringType,
		"arguments": types.NewMapType(types.StringType, types.DynType),
	},
}

// objectTypes declares celObjects to the type checker on top of CEL's own
// types. At run time the variables are plain maps (identityVars, the
// request map of eval): the field types carry no accessors, so CEL reads
// the fields as map keys, and partial evaluation marks them unknown by
// name (request.arguments, request.upstream).
type objectTypes struct {
	types.Provider
}

// FindStructType implements types.Provider.
func (p objectTypes) FindStructType(name string) (*types.Type, bool) {
	if _, ok := celObjects[name]; ok {
		return types.NewTypeTypeWithParam(types.NewObjectType(name)), true
	}
	return p.Provider.FindStructType(name)
}

// FindStructFieldNames implements types.Provider.
func (p objectTypes) FindStructFieldNames(name string) ([]string, bool) {
	fields, ok := celObjects[name]
	if !ok {
		return p.Provider.FindStructFieldNames(name)
	}
	names := make([]string, 0, len(fields))
	for f := range fields {
		names = append(names, f)
	}
	slices.Sort(names)
	return names, true
}

// FindStructFieldType implements types.Provider.
func (p objectTypes) FindStructFieldType(name, field string) (*types.FieldType, bool) {
	fields, ok := celObjects[name]
	if !ok {
		return p.Provider.FindStructFieldType(name, field)
	}
	t, ok := fields[field]
	if !ok {
		return nil, false
	}
	return &types.FieldType{Type: t}, true
}

// NewValue implements types.Provider: a condition cannot build an
// identity or a request of its own.
func (p objectTypes) NewValue(name string, fields map[string]ref.Val) ref.Val {
	if _, ok := celObjects[name]; ok {
		return types.NewErr("%s values cannot be created in a condition", name)
	}
	return p.Provider.NewValue(name, fields)
}

// celEnv declares what a condition can read:
//
//	identity: sub, tenant, client_id (strings), roles, scopes (lists of
//	          strings), claims (every claim of the token, a map)
//	request:  tool, upstream (strings), arguments (the call's arguments, a
//	          map; integers exact as int or uint, other numbers doubles)
var celEnv = func() *cel.Env {
	reg, err := types.NewRegistry()
	if err != nil {
		panic("policy: CEL types: " + err.Error())
	}
	env, err := cel.NewEnv(
		cel.CustomTypeProvider(objectTypes{Provider: reg}),
		cel.Variable("identity", types.NewObjectType(identityTypeName)),
		cel.Variable("request", types.NewObjectType(requestTypeName)),
		cel.CrossTypeNumericComparisons(true),
	)
	if err != nil {
		panic("policy: CEL environment: " + err.Error())
	}
	return env
}()

// CompileCondition parses and type-checks a condition, reporting the first
// problem as a *ConditionError with its position. The config package calls
// it so that a bad condition is a configuration error at load.
func CompileCondition(expr string) error {
	_, err := compile(expr)
	return err
}

// condition is a compiled when-expression.
type condition struct {
	expr string
	prg  cel.Program
	err  error // compile error: every evaluation fails closed
}

func compile(expr string) (cel.Program, error) {
	if strings.TrimSpace(expr) == "" {
		return nil, &ConditionError{Line: 1, Column: 1, Message: "empty condition"}
	}
	ast, iss := celEnv.Compile(expr)
	if iss != nil && iss.Err() != nil {
		errs := iss.Errors()
		if len(errs) > 0 {
			return nil, positioned(errs[0])
		}
		return nil, &ConditionError{Line: 1, Column: 1, Message: iss.Err().Error()}
	}
	if t := ast.OutputType(); !t.IsExactType(types.BoolType) && !t.IsExactType(types.DynType) {
		return nil, &ConditionError{Line: 1, Column: 1, Message: fmt.Sprintf("the condition must be a bool, not %s", t)}
	}
	prg, err := celEnv.Program(ast, cel.EvalOptions(cel.OptPartialEval), cel.CostLimit(CostLimit))
	if err != nil {
		return nil, &ConditionError{Line: 1, Column: 1, Message: err.Error()}
	}
	return prg, nil
}

func positioned(e *common.Error) *ConditionError {
	line, col := 1, 1
	if e.Location != nil {
		line, col = e.Location.Line(), e.Location.Column()+1
		if line < 1 {
			line = 1
		}
		if col < 1 {
			col = 1 // cel-go reports column -1 for errors without a position
		}
	}
	return &ConditionError{Line: line, Column: col, Message: e.Message}
}

func newCondition(expr string) *condition {
	prg, err := compile(expr)
	return &condition{expr: expr, prg: prg, err: err}
}

// outcome of a condition.
type outcome int

const (
	condTrue outcome = iota
	condFalse
	condUnknown // depends on what is not known yet (arguments, upstream)
	condError
)

var (
	unknownArguments = cel.AttributePattern("request").QualString("arguments")
	unknownUpstream  = cel.AttributePattern("request").QualString("upstream")
)

// eval runs the condition for id and act. It never panics: a panic in
// evaluation is an error, and errors fail closed.
func (c *condition) eval(id auth.Identity, act Action) (out outcome, detail string) {
	if c.err != nil {
		return condError, "condition does not compile: " + c.err.Error()
	}
	defer func() {
		if r := recover(); r != nil {
			out, detail = condError, fmt.Sprintf("condition error: %v", r)
		}
	}()
	req := map[string]any{"tool": act.Name, "upstream": act.Upstream}
	var unknowns []*cel.AttributePatternType
	if act.ArgsKnown {
		args, err := decodeArguments(act.Arguments)
		if err != nil {
			return condError, "condition error: " + err.Error()
		}
		req["arguments"] = args
	} else {
		unknowns = append(unknowns, unknownArguments)
	}
	if act.Upstream == "" {
		unknowns = append(unknowns, unknownUpstream)
	}
	vars := map[string]any{"identity": identityVars(id), "request": req}
	var in any = vars
	if len(unknowns) > 0 {
		pv, err := cel.PartialVars(vars, unknowns...)
		if err != nil {
			return condError, "condition error: " + err.Error()
		}
		in = pv
	}
	v, _, err := c.prg.Eval(in)
	if err != nil {
		return condError, "condition error: " + err.Error()
	}
	switch {
	case types.IsUnknown(v):
		return condUnknown, "condition depends on " + unknownWhat(act) + ": decided at call time"
	case v == types.True:
		return condTrue, ""
	case v == types.False:
		return condFalse, "condition is false: " + c.expr
	}
	return condError, fmt.Sprintf("condition error: result is %s, not a bool", v.Type().TypeName())
}

func unknownWhat(act Action) string {
	switch {
	case !act.ArgsKnown && act.Upstream == "":
		return "request.arguments or request.upstream"
	case !act.ArgsKnown:
		return "request.arguments"
	}
	return "request.upstream"
}

// identityVars is the identity as conditions see it.
func identityVars(id auth.Identity) map[string]any {
	claims := id.Claims
	if claims == nil {
		claims = map[string]any{}
	}
	roles, scopes := id.Roles, id.Scopes
	if roles == nil {
		roles = []string{}
	}
	if scopes == nil {
		scopes = []string{}
	}
	return map[string]any{
		"sub":       id.Subject,
		"tenant":    id.Tenant,
		"roles":     roles,
		"scopes":    scopes,
		"client_id": id.ClientID,
		"claims":    claims,
	}
}
