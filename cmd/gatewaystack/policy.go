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
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"

	"github.com/gatewaystack/gatewaystack/auth"
	"github.com/gatewaystack/gatewaystack/config"
	"github.com/gatewaystack/gatewaystack/mcp"
	"github.com/gatewaystack/gatewaystack/policy"
)

// errNotAllowed ends explain with exit code 1: the decision is not allow.
var errNotAllowed = errors.New("the decision is not allow")

// cmdPolicy runs "gatewaystack policy explain": the policy decision for an
// identity and a tool, from the configuration alone, without the gateway.
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
	argsJSON := fs.String("args", "", "the call's arguments as a JSON object; without it, the tools/list view (arguments unknown)")
	upstreamName := fs.String("upstream", "", "the upstream owning the tool, for conditions on request.upstream (default: the name's <upstream>__ prefix)")
	list := fs.Bool("list", false, "print the tools/list decision of every policy.tools pattern instead of one tool")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if err := requireConfig(fs, *path); err != nil {
		return err
	}
	switch {
	case (*token == "") == (*claimsFile == ""):
		return usageError{msg: "give exactly one of --token JWT and --claims FILE", fs: fs}
	case (*tool == "") == !*list:
		return usageError{msg: "give exactly one of --tool NAME and --list", fs: fs}
	case *list && *argsJSON != "":
		return usageError{msg: "--args goes with --tool, not --list", fs: fs}
	}
	var arguments json.RawMessage
	if *argsJSON != "" {
		var obj map[string]any
		if json.Unmarshal([]byte(*argsJSON), &obj) != nil || obj == nil {
			return usageError{msg: `--args must be a JSON object, e.g. '{"account_id":"acme-42"}'`, fs: fs}
		}
		arguments = json.RawMessage(*argsJSON)
	}

	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		if printProblems(stdout, err) {
			return errors.New("configuration is invalid")
		}
		return err
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
	id, err := auth.IdentityFromClaims(claims, cfg.Auth.TenantClaim, cfg.Auth.RolesClaim)
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	fmt.Fprintf(stdout, "identity: sub=%s tenant=%s roles=[%s] scopes=[%s]\n  from %s\n",
		id.Subject, id.Tenant, strings.Join(id.Roles, " "), id.ScopeString(), source)

	az := mcp.NewAuthorizer(cfg.Policy.Tools, cfg)
	if *list {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PATTERN\tTOOLS/LIST\tEFFECT\tREASON\tWHY")
		for _, p := range az.Patterns() {
			d := az.DecidePattern(id, p, policy.Action{Name: p, Upstream: upstreamOf(cfg, p, ""), ArgsKnown: false})
			listed := "hidden"
			if d.Listed() {
				listed = "listed"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p, listed, d.Effect, d.Reason, whyOf(d))
		}
		return tw.Flush()
	}

	act := policy.Action{Name: *tool, Upstream: upstreamOf(cfg, *tool, *upstreamName), Arguments: arguments, ArgsKnown: arguments != nil}
	d := az.Decide(id, act)
	view := "tools/call with arguments " + string(arguments)
	if !act.ArgsKnown {
		view = "tools/list (arguments unknown; pass --args to decide a call)"
	}
	fmt.Fprintf(stdout, "tool: %s\nview: %s\ndecision: %s\nrule: %s\nreason: %s\nwhy: %s\n",
		*tool, view, d.Effect, orDash(d.Rule), d.Reason, whyOf(d))
	if d.Effect != policy.Allow {
		return errNotAllowed
	}
	return nil
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
// the configuration file at path changes, until ctx ends. Each reload loads
// and validates the whole file and hands it to apply; a file that does not
// load or validate is rejected with its problems logged, and the policy in
// force stays. An unchanged file is not reloaded on a poll, but always on
// SIGHUP. The file's content is read now; the returned run watches until
// ctx ends.
func watchPolicy(ctx context.Context, path string, interval time.Duration, hup <-chan os.Signal, apply func(*config.Config) error, log zerolog.Logger) (run func()) {
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
	reload := func(cause string) {
		last = sum()
		cfg, err := loadConfig(path)
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
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reload("sighup")
			case <-tick.C:
				if sum() != last {
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
	run := watchPolicy(ctx, path, policyPollInterval, hup, srv.ReloadPolicy, log)
	go func() {
		defer signal.Stop(hup)
		run()
	}()
}
