package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"

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

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "path of the YAML configuration (or GATEWAYSTACK_CONFIG)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("refusing to start: %w", err)
	}
	log := newLogger(stderr, cfg.Log.Level)
	srv, err := mcp.Build(ctx, cfg, mcp.BuildOptions{Version: version, Logger: log, AuditWriter: stdout})
	if err != nil {
		return err
	}
	defer func() { _ = srv.Close(context.Background()) }()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	log.Info().Str("listen", ln.Addr().String()).Str("resource", cfg.Resource()).Strs("upstreams", srv.Router.Names()).Msg("gateway serving")
	return srv.Serve(ctx, ln)
}

func cmdValidate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "path of the YAML configuration (or GATEWAYSTACK_CONFIG)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" && os.Getenv("GATEWAYSTACK_CONFIG") == "" {
		return usageError{"--config is required"}
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		var ps config.Problems
		if errors.As(err, &ps) {
			fmt.Fprintf(stdout, "%d problem(s) in the configuration:\n", len(ps))
			for _, p := range ps {
				fmt.Fprintf(stdout, "  - %s\n", p)
			}
			return fmt.Errorf("configuration is invalid")
		}
		return err
	}
	fmt.Fprintf(stdout, "configuration is valid: resource %s, %d upstream(s), %d policy rule(s)\n",
		cfg.Resource(), len(cfg.Upstreams), len(cfg.Policy.Tools))
	return nil
}
