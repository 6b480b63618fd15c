package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"time"

	"github.com/rs/zerolog"

	"github.com/gatewaystack/gatewaystack/config"
	"github.com/gatewaystack/gatewaystack/mcp"
)

// loadConfig resolves the config path (flag, then GATEWAYSTACK_CONFIG) and
// loads it with environment overrides.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		path = os.Getenv("GATEWAYSTACK_CONFIG")
	}
	return config.Load(path, os.Getenv)
}

// checkConfig resolves the config path like loadConfig and checks it as
// validate does (config.Check with the process environment).
func checkConfig(path string, o config.CheckOptions) (config.Report, error) {
	if path == "" {
		path = os.Getenv("GATEWAYSTACK_CONFIG")
	}
	return config.Check(path, os.Getenv, o)
}

// logScopes logs which scopes are baseline, step-up and entitlements, and
// what that means to clients (the lines validate prints).
func logScopes(log zerolog.Logger, cfg *config.Config) {
	s := cfg.Scopes()
	log.Info().Strs("baseline_scopes", s.Baseline).Strs("step_up_scopes", s.StepUp).
		Strs("entitlement_scopes", s.Entitlements).Strs("advertised_tool_scopes", s.Advertised).
		Strs("explain", s.Lines()).Msg("scopes")
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	path := fs.String("config", "", "path of the YAML configuration (or GATEWAYSTACK_CONFIG)")
	pprofAddr := fs.String("pprof", "", "serve Go's profiling endpoints (/debug/pprof/) on this loopback address, e.g. 127.0.0.1:6060 (default: off)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := requireConfig(fs, *path); err != nil {
		return err
	}
	if *pprofAddr != "" {
		if !isLoopback(*pprofAddr) {
			return usageError{msg: fmt.Sprintf("--pprof %q must be a loopback host:port, e.g. 127.0.0.1:6060: profiles expose the process's memory", *pprofAddr), fs: fs}
		}
	}
	// The checks of validate, all at once: a configuration that validates
	// starts, and one that does not is refused with the same list.
	rep, err := checkConfig(*path, config.CheckOptions{})
	if err != nil {
		return err
	}
	if len(rep.Problems) > 0 {
		printProblems(stderr, rep.Problems)
		return errors.New("refusing to start on an invalid configuration; fix the problems above (gatewaystack validate --config F checks a file)")
	}
	cfg := rep.Config
	log := newLogger(stderr, cfg.Log.Level)
	logScopes(log, cfg)
	for _, w := range cfg.Warnings() { // AuditWarnings are logged by mcp.Build
		log.Warn().Str("field", w.Field).Msg(w.String())
	}
	setGCPercent(cfg.Server.GCPercent, log)
	srv, err := mcp.Build(ctx, cfg, mcp.BuildOptions{Version: version, Logger: log, AuditWriter: stdout})
	if err != nil {
		return err
	}
	defer closeServer(srv, log)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w (change listen in the configuration or GATEWAYSTACK_LISTEN)", cfg.Listen, err)
	}
	servePolicyReload(ctx, *path, srv, log)
	if *pprofAddr != "" {
		pln, err := net.Listen("tcp", *pprofAddr)
		if err != nil {
			return fmt.Errorf("listen --pprof %s: %w", *pprofAddr, err)
		}
		go func() { _ = mcp.ServeHTTP(ctx, pln, pprofHandler(), time.Second, nil) }()
		log.Warn().Str("pprof", pln.Addr().String()).Msg("profiling endpoints on; turn them off in production")
	}
	log.Info().Str("listen", ln.Addr().String()).Str("resource", cfg.Resource()).Strs("upstreams", srv.Router.Names()).Msg("gateway serving")
	return srv.Serve(ctx, ln)
}

// setGCPercent sets the garbage collector's target to server.gc_percent,
// unless the GOGC environment variable sets it: the operator's runtime
// setting wins.
func setGCPercent(percent int, log zerolog.Logger) {
	if env := os.Getenv("GOGC"); env != "" {
		log.Debug().Str("GOGC", env).Msg("garbage collector target from the environment; server.gc_percent not applied")
		return
	}
	debug.SetGCPercent(percent)
}

// requireConfig reports a usage error when neither --config nor
// GATEWAYSTACK_CONFIG names a configuration file.
func requireConfig(fs *flag.FlagSet, path string) error {
	if path == "" && os.Getenv("GATEWAYSTACK_CONFIG") == "" {
		return usageError{msg: "--config is required (or set GATEWAYSTACK_CONFIG), e.g. --config gatewaystack.yaml", fs: fs}
	}
	return nil
}

// printProblems lists the problems of an invalid configuration on w, one per
// line, and reports whether err was such a list.
func printProblems(w io.Writer, err error) bool {
	var ps config.Problems
	if !errors.As(err, &ps) {
		return false
	}
	fmt.Fprintf(w, "%d problem(s) in the configuration:\n", len(ps))
	for _, p := range ps {
		fmt.Fprintf(w, "  - %s\n", p)
	}
	return true
}

// cmdValidate runs "gatewaystack validate": every problem of a
// configuration (exit 1) on stdout, warnings on stderr (exit 0 when they
// are all), and for a valid one which scopes are which.
func cmdValidate(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("validate", stderr)
	path := fs.String("config", "", "path of the YAML configuration (or GATEWAYSTACK_CONFIG)")
	skipEnv := fs.Bool("skip-env", false, "do not report environment variables that serve would need and are unset (${VAR} in headers and stdio env, inherit_env, env_files): for checking a file where its secrets are not set, e.g. in CI")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := requireConfig(fs, *path); err != nil {
		return err
	}
	rep, err := checkConfig(*path, config.CheckOptions{SkipEnvironment: *skipEnv})
	if err != nil {
		return err
	}
	if len(rep.Problems) > 0 {
		printProblems(stdout, rep.Problems)
	}
	for _, w := range rep.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	if len(rep.Problems) > 0 {
		return errors.New("configuration is invalid")
	}
	cfg := rep.Config
	fmt.Fprintf(stdout, "configuration is valid: resource %s, %d upstream(s), %d policy rule(s)\n",
		cfg.Resource(), len(cfg.Upstreams), len(cfg.Policy.Tools))
	for _, l := range cfg.Scopes().Lines() {
		fmt.Fprintf(stdout, "  %s\n", l)
	}
	return nil
}

// auditFlushTimeout bounds how long shutdown waits for the audit sinks to
// deliver what they hold (a webhook that is down, say).
const auditFlushTimeout = 30 * time.Second

// closeServer releases the gateway after its HTTP server has stopped and
// flushes the audit sinks, logging what could not be delivered.
func closeServer(srv *mcp.Server, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), auditFlushTimeout)
	defer cancel()
	if err := srv.Close(ctx); err != nil {
		log.Error().Err(err).Msg("shutdown")
	}
	for _, s := range srv.AuditStats() {
		log.Info().Str("sink", s.Name).Uint64("delivered", s.Delivered).Uint64("dropped", s.Dropped).Msg("audit sink closed")
	}
}

// pprofHandler serves Go's profiling endpoints (net/http/pprof) on a mux of
// its own, never on the gateway's.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
