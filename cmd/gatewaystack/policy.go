package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"

	"github.com/gatewaystack/gatewaystack/auth"
	"github.com/gatewaystack/gatewaystack/config"
	"github.com/gatewaystack/gatewaystack/mcp"
	"github.com/gatewaystack/gatewaystack/policy"
	"github.com/gatewaystack/gatewaystack/upstream"
)

// errNotAllowed ends explain with exit code 1: the decision is not allow.
var errNotAllowed = errors.New("the decision is not allow")

// cmdPolicy runs "gatewaystack policy explain": the policy decision for an
// identity and a tool, prompt or resource, from the configuration alone,
// without the gateway.
func cmdPolicy(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("policy", stderr)
	if len(args) == 0 || args[0] != "explain" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			fs.Usage()
			return nil
		}
		return usageError{msg: "want a subcommand: explain", fs: fs}
	}
	path := fs.String("config", "", "path of the YAML configuration (or GATEWAYSTACK_CONFIG)")
	token := fs.String("token", "", "a JWT whose claims are the identity; decoded WITHOUT verifying its signature")
	claimsFile := fs.String("claims", "", "a JSON file holding one object of claims, the identity")
	tool := fs.String("tool", "", "the tool name as clients see it, e.g. notes__read_note")
	prompt := fs.String("prompt", "", "the prompt name as clients see it, e.g. notes__summarize (policy.prompts)")
	resource := fs.String("resource", "", "the resource URI as clients see it, e.g. notes://alice/1 (policy.resources, matched as <upstream>__<uri>)")
	argsJSON := fs.String("args", "", "the tools/call or prompts/get arguments as a JSON object; without it, the tools/list or prompts/list view (arguments unknown)")
	upstreamName := fs.String("upstream", "", "the upstream owning the tool, prompt or resource, for conditions on request.upstream (default: the name's <upstream>__ prefix; for --resource: the only upstream)")
	list := fs.Bool("list", false, "print the list decision of every policy.tools, policy.prompts and policy.resources pattern instead of one entry")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if err := requireConfig(fs, *path); err != nil {
		return err
	}
	given := 0
	for _, set := range []bool{*tool != "", *prompt != "", *resource != "", *list} {
		if set {
			given++
		}
	}
	switch {
	case (*token == "") == (*claimsFile == ""):
		return usageError{msg: "give exactly one of --token JWT and --claims FILE", fs: fs}
	case given != 1:
		return usageError{msg: "give exactly one of --tool NAME, --prompt NAME, --resource URI and --list", fs: fs}
	case *argsJSON != "" && *list:
		return usageError{msg: "--args goes with --tool or --prompt, not --list", fs: fs}
	case *argsJSON != "" && *resource != "":
		return usageError{msg: "--args goes with --tool or --prompt, not --resource (a resources/read has no arguments)", fs: fs}
	}
	var arguments json.RawMessage
	if *argsJSON != "" {
		var obj map[string]any
		if json.Unmarshal([]byte(*argsJSON), &obj) != nil || obj == nil {
			return usageError{msg: `--args must be a JSON object, e.g. '{"account_id":"acme-42"}'`, fs: fs}
		}
		arguments = json.RawMessage(*argsJSON)
	}

	// Explain needs the policy, not the secrets serve needs: the
	// environment's ${VAR} references are not checked here.
	cfg, err := loadConfig(*path)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		if printProblems(stdout, err) {
			return errors.New("configuration is invalid")
		}
		return err
	}
	resourceUpstream := ""
	if *resource != "" {
		if resourceUpstream, err = resourceUpstreamOf(cfg, *upstreamName); err != nil {
			return usageError{msg: err.Error(), fs: fs}
		}
	}
	var claims map[string]any
	source := ""
	if *token != "" {
		if claims, err = unverifiedClaims(*token); err != nil {
			return usageError{msg: "--token: " + err.Error(), fs: fs}
		}
		source = "token claims, decoded WITHOUT signature verification (explain only; the gateway verifies every token)"
	} else {
		data, err := os.ReadFile(*claimsFile)
		if err != nil {
			return fmt.Errorf("read claims: %w", err)
		}
		if json.Unmarshal(data, &claims) != nil || claims == nil {
			return usageError{msg: "--claims: " + *claimsFile + " must hold one JSON object of claims", fs: fs}
		}
		source = "claims file " + *claimsFile + " (not a verified token)"
	}
	id, err := explainIdentity(cfg, claims)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "identity: sub=%s tenant=%s roles=[%s] scopes=[%s]\n  from %s\n",
		id.Subject, id.Tenant, strings.Join(id.Roles, " "), id.ScopeString(), source)

	// The same tables, built by the same function, as the gateway's
	// tools/*, prompts/* and resources/* decisions (mcp.Build).
	tools := mcp.NewAuthorizer(cfg.Policy.Tools, cfg)
	prompts := mcp.NewAuthorizer(cfg.Policy.Prompts, cfg)
	resources := mcp.NewAuthorizer(cfg.Policy.Resources, cfg)
	if *list {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KIND\tPATTERN\tLIST\tEFFECT\tREASON\tWHY")
		for _, t := range []struct {
			kind string
			az   *policy.Authorizer
			up   func(pattern string) string
		}{
			{"tool", tools, func(p string) string { return upstreamOf(cfg, p, "") }},
			{"prompt", prompts, func(p string) string { return upstreamOf(cfg, p, "") }},
			{"resource", resources, func(p string) string { return resourcePatternUpstream(cfg, p) }},
		} {
			for _, p := range t.az.Patterns() {
				d := t.az.DecidePattern(id, p, policy.Action{Name: p, Upstream: t.up(p), ArgsKnown: false})
				listed := "hidden"
				if d.Listed() {
					listed = "listed"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.kind, p, listed, d.Effect, d.Reason, whyOf(d))
			}
		}
		return tw.Flush()
	}

	var d policy.Decision
	switch {
	case *tool != "":
		d = explainTool(cfg, tools, id, *tool, *upstreamName, arguments)
		view := "tools/call with arguments " + string(arguments)
		if arguments == nil {
			view = "tools/list (arguments unknown; pass --args to decide a call)"
		}
		fmt.Fprintf(stdout, "tool: %s\nview: %s\n", *tool, view)
	case *prompt != "":
		// As prompts/get and prompts/list decide: the exposed name, its
		// arguments when known.
		act := policy.Action{Name: *prompt, Upstream: upstreamOf(cfg, *prompt, *upstreamName), Arguments: arguments, ArgsKnown: arguments != nil}
		d = prompts.Decide(id, act)
		view := "prompts/get with arguments " + string(arguments)
		if !act.ArgsKnown {
			view = "prompts/list (arguments unknown; pass --args to decide a prompts/get)"
		}
		fmt.Fprintf(stdout, "prompt: %s\nview: %s\n", *prompt, view)
	default:
		// As resources/read decides: "<upstream>__<uri>", no arguments.
		name := resourceUpstream + upstream.Separator + *resource
		d = resources.Decide(id, policy.Action{Name: name, Upstream: resourceUpstream, ArgsKnown: true})
		fmt.Fprintf(stdout, "resource: %s\nupstream: %s\nmatched as: %s\nview: resources/read (and resources/subscribe, unsubscribe, completion/complete)\n",
			*resource, resourceUpstream, name)
	}
	fmt.Fprintf(stdout, "decision: %s\nrule: %s\nreason: %s\nwhy: %s\n",
		d.Effect, orDash(d.Rule), d.Reason, whyOf(d))
	if d.Effect != policy.Allow {
		return errNotAllowed
	}
	return nil
}

// explainIdentity is the identity explain decides for: claims read as the
// gateway reads a verified token's.
func explainIdentity(cfg *config.Config, claims map[string]any) (auth.Identity, error) {
	id, err := auth.IdentityFromClaims(claims, cfg.Auth.TenantClaim, cfg.Auth.RolesClaim)
	if err != nil {
		return auth.Identity{}, fmt.Errorf("identity: %w", err)
	}
	return id, nil
}

// explainTool decides tool for id with the policy.tools table tools (built
// by mcp.NewAuthorizer, as the gateway builds it): the tools/list view
// when arguments is nil, else a tools/call with them. upstreamName names
// the owning upstream; "" means the name's <upstream>__ prefix.
func explainTool(cfg *config.Config, tools *policy.Authorizer, id auth.Identity, tool, upstreamName string, arguments json.RawMessage) policy.Decision {
	return tools.Decide(id, policy.Action{Name: tool, Upstream: upstreamOf(cfg, tool, upstreamName),
		Arguments: arguments, ArgsKnown: arguments != nil})
}

// resourceUpstreamOf is the upstream a resource URI is explained under:
// explicit (a configured upstream), else the only upstream, as the gateway
// resolves a resources/read when it has one upstream. With several, the
// gateway finds the owner from the upstreams' listings, which explain does
// not contact: the caller must name it.
func resourceUpstreamOf(cfg *config.Config, explicit string) (string, error) {
	names := make([]string, len(cfg.Upstreams))
	for i, u := range cfg.Upstreams {
		names[i] = u.Name
	}
	switch {
	case explicit != "" && !slices.Contains(names, explicit):
		return "", fmt.Errorf("--upstream %q is not an upstream of the configuration (%s)", explicit, strings.Join(names, ", "))
	case explicit != "":
		return explicit, nil
	case len(names) == 1:
		return names[0], nil
	}
	return "", fmt.Errorf("--resource needs --upstream NAME: the gateway finds a resource's upstream from the upstreams' listings, and this configuration has %d (%s)", len(names), strings.Join(names, ", "))
}

// resourcePatternUpstream is the upstream a policy.resources pattern names
// in its <upstream>__ prefix, when that is a configured upstream; "" (so
// request.upstream is unknown) otherwise.
func resourcePatternUpstream(cfg *config.Config, pattern string) string {
	up, _, ok := strings.Cut(pattern, upstream.Separator)
	if !ok {
		return ""
	}
	for _, u := range cfg.Upstreams {
		if u.Name == up {
			return up
		}
	}
	return ""
}

// upstreamOf is the upstream a tool name belongs to: explicit, or the
// name's <upstream>__ prefix when that upstream prefixes its tools; "" (so
// request.upstream is unknown) otherwise.
func upstreamOf(cfg *config.Config, name, explicit string) string {
	if explicit != "" {
		return explicit
	}
	up, _, ok := strings.Cut(name, "__")
	if !ok {
		return ""
	}
	for _, u := range cfg.Upstreams {
		if u.Name == up && u.Prefixed() {
			return up
		}
	}
	return ""
}

func whyOf(d policy.Decision) string {
	switch {
	case d.Detail != "":
		return d.Detail
	case d.Effect == policy.Allow:
		return "every requirement of the rule is met"
	}
	return "-"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// unverifiedClaims decodes a compact JWS's payload without checking
// anything about it: for explain only.
func unverifiedClaims(tok string) (map[string]any, error) {
	parts := strings.Split(strings.TrimSpace(tok), ".")
	if len(parts) != 3 {
		return nil, errors.New("not a compact JWT (header.payload.signature)")
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, errors.New("the payload is not base64url")
	}
	var claims map[string]any
	if json.Unmarshal(payload, &claims) != nil || claims == nil {
		return nil, errors.New("the payload is not a JSON object")
	}
	return claims, nil
}

// policyPollInterval is how often serve checks its configuration file for
// changes.
const policyPollInterval = 2 * time.Second

// watchPolicy reloads the policy on SIGHUP (hup) and whenever the content of
// the configuration file at path changes, until ctx ends; ticks are its
// polls. Each reload loads and validates the whole file and hands it to
// apply; a file that does not load or validate is rejected with its
// problems logged, and the policy in force stays. A changed file is
// reloaded only once its content has stayed the same from one poll to the
// next, and only when it did not change while it was loaded: a file caught
// half-written (os.WriteFile truncates first) can parse and validate with
// rules missing — a restrictive rule cut off lets a broader glob decide —
// so it must never be applied. An unchanged file is not reloaded on a
// poll, but always on SIGHUP. The file's content is read now; the returned
// run watches until ctx ends.
func watchPolicy(ctx context.Context, path string, ticks <-chan time.Time, hup <-chan os.Signal, apply func(*config.Config) error, log zerolog.Logger) (run func()) {
	if path == "" {
		path = os.Getenv("GATEWAYSTACK_CONFIG")
	}
	sum := func() [32]byte {
		data, err := os.ReadFile(path)
		if err != nil {
			return [32]byte{}
		}
		return sha256.Sum256(data)
	}
	last := sum()
	var pending [32]byte // a changed content seen once, waiting to settle
	reload := func(cause string) {
		before := sum()
		last = before
		cfg, err := loadConfig(path)
		if sum() != before {
			return // changed while it was read: the next poll sees it again
		}
		if err == nil {
			err = apply(cfg)
		}
		if err != nil {
			ev := log.Error().Str("cause", cause).Str("config", path)
			var ps config.Problems
			if errors.As(err, &ps) {
				problems := make([]string, len(ps))
				for i, p := range ps {
					problems[i] = p.String()
				}
				ev = ev.Strs("problems", problems)
			} else {
				ev = ev.Err(err)
			}
			ev.Msg("policy reload rejected; the policy in force stays")
			return
		}
		log.Info().Str("cause", cause).Str("config", path).Int("tool_rules", len(cfg.Policy.Tools)).
			Msg("policy reloaded (only the policy section; other changes need a restart)")
	}
	return func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reload("sighup")
			case <-ticks:
				switch s := sum(); {
				case s == last:
					pending = [32]byte{}
				case s != pending:
					pending = s // changed: reload once it has settled
				default:
					pending = [32]byte{}
					reload("file_changed")
				}
			}
		}
	}
}

// servePolicyReload starts watchPolicy for a serving gateway: SIGHUP and
// file changes reload srv's policy.
func servePolicyReload(ctx context.Context, path string, srv *mcp.Server, log zerolog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	tick := time.NewTicker(policyPollInterval)
	run := watchPolicy(ctx, path, tick.C, hup, srv.ReloadPolicy, log)
	go func() {
		defer signal.Stop(hup)
		defer tick.Stop()
		run()
	}()
}
