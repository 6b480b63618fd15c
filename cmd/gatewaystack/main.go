// Command gatewaystack is the Gatewaystack binary: the MCP gateway (serve),
// the one-command local demo (demo), the demo token issuer (issuer, mint),
// a configuration checker (validate) and version.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

const usage = `gatewaystack — an MCP gateway that verifies who is calling, shows and runs only
the tools their token allows, and audits every decision.

Usage:
  gatewaystack demo     [--gateway-addr A] [--issuer-addr A] [--upstream-addr A] [--auto-approve]
                        [--public-url URL] [--issuer-url URL]
                        issuer, notes MCP server and gateway on this machine
  gatewaystack serve    --config gatewaystack.yaml
                        the gateway in front of your MCP servers; SIGHUP or a change to
                        the file reloads the policy section (a bad one is rejected)
  gatewaystack validate --config gatewaystack.yaml [--skip-env]
                        list every problem in a configuration (and the environment
                        variables serve would need), warnings, and which scopes are which
  gatewaystack policy explain --config F (--token JWT | --claims FILE)
                        (--tool NAME [--args JSON] | --prompt NAME [--args JSON] | --resource URI | --list)
                        why a tool, prompt or resource is allowed or not for an identity,
                        without running the gateway
  gatewaystack audit verify --config F [--checkpoints FILE]... [--allow-partial] [--head HASH] [--json] FILE...
                        check the keyed chain of an audit file and its rotated predecessors,
                        oldest first (audit.jsonl.2 audit.jsonl.1 audit.jsonl), against the
                        signed checkpoints; exit 1 if broken
  gatewaystack audit report FILE... [--by tenant|subject|tool] [--since T] [--until T]
                        [--format table|json|csv]
                        calls, decisions, latency p50/p90/p99 and budget cost per group
  gatewaystack issuer   [--addr A] [--url URL] [--resource URL]... [--auto-approve]
                        the demo token issuer alone
  gatewaystack mint     --issuer URL --sub alice [--scope "tool:read"] [--org acme] [--expires-in 600]
                        print a token from the demo issuer
  gatewaystack conformance --url URL --issuer URL [--out DIR]
                        check a live gateway's OAuth resource-server behaviour; writes report.json and report.md
  gatewaystack bench    --url URL [--token T | --mint ISSUER --sub S [--scope S] [--org O]] --tool NAME
                        [--args JSON] [-c 16] [-d 10s] [--warmup 1s] [--max-calls N]
                        [--era session|stateless] [--pid PID]... [--json]
                        load an MCP endpoint with concurrent tools/call sessions: calls/s, errors,
                        latency p50/p90/p99/max, session set-up time, server CPU per call
  gatewaystack version

Run "gatewaystack <command> -h" for a command's flags.
`

func main() {
	// go-redis prints its own dial failures on stderr in a format of its
	// own; the gateway reports limit-store failures itself (warnings in its
	// log, and /health), so the library's lines are dropped.
	redis.SetLogger(silentRedisLog{})
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// silentRedisLog discards go-redis's internal log lines.
type silentRedisLog struct{}

func (silentRedisLog) Printf(context.Context, string, ...any) {}

// run executes one command and returns the process exit code: 0 on success,
// 1 when the command failed, 2 when it was invoked wrongly.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first Ctrl-C the commands shut down gracefully; restoring the
	// default handling lets a second Ctrl-C end the process at once.
	go func() {
		<-ctx.Done()
		stop()
	}()
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(ctx, args[1:], stdout, stderr)
	case "demo":
		err = cmdDemo(ctx, args[1:], stdout, stderr)
	case "validate":
		err = cmdValidate(args[1:], stdout, stderr)
	case "issuer":
		err = cmdIssuer(ctx, args[1:], stdout, stderr)
	case "mint":
		err = cmdMint(ctx, args[1:], stdout, stderr)
	case "conformance":
		err = cmdConformance(ctx, args[1:], stdout, stderr)
	case "policy":
		err = cmdPolicy(args[1:], stdout, stderr)
	case "audit":
		err = cmdAudit(ctx, args[1:], stdout, stderr)
	case "bench":
		err = cmdBench(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version", "-v":
		fmt.Fprintln(stdout, "gatewaystack", version)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "gatewaystack: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		if !ue.printed {
			fmt.Fprintf(stderr, "gatewaystack %s: %v\n", args[0], err)
			if ue.fs != nil {
				fmt.Fprintf(stderr, "usage: %s\nRun \"gatewaystack %s -h\" for all flags.\n", synopsis[args[0]], args[0])
			}
		}
		return 2
	}
	fmt.Fprintf(stderr, "gatewaystack %s: %v\n", args[0], err)
	return 1
}

// synopsis is each command's one-line usage, as in the main usage text.
var synopsis = map[string]string{
	"demo":        "gatewaystack demo [--gateway-addr A] [--issuer-addr A] [--upstream-addr A] [--auto-approve] [--public-url URL] [--issuer-url URL] [--log-level L]",
	"serve":       "gatewaystack serve --config gatewaystack.yaml",
	"validate":    "gatewaystack validate --config gatewaystack.yaml [--skip-env]",
	"issuer":      "gatewaystack issuer [--addr A] [--url URL] [--resource URL]... [--audience URL] [--default-scope S] [--auto-approve]",
	"mint":        `gatewaystack mint --issuer URL --sub alice [--scope "tool:read"] [--org acme] [--expires-in 600] [--json]`,
	"policy":      "gatewaystack policy explain --config F (--token JWT | --claims FILE) (--tool NAME [--args JSON] | --prompt NAME [--args JSON] | --resource URI [--upstream U] | --list)",
	"audit":       "gatewaystack audit verify --config F [--checkpoints FILE]... [--allow-partial] [--head HASH] [--json] FILE... | gatewaystack audit report FILE... [--by tenant|subject|tool] [--since T] [--until T] [--format table|json|csv]",
	"conformance": "gatewaystack conformance --url URL --issuer URL [--out DIR] [--sub S] [--step-up-tool T] [--expiry-wait D]",
	"bench":       "gatewaystack bench --url URL [--token T | --mint ISSUER_URL --sub S [--scope S] [--org O]] --tool NAME [--args JSON] [-c 16] [-d 10s] [--warmup 1s] [--max-calls N] [--era session|stateless] [--pid PID]... [--timeout 30s] [--json]",
}

// usageError marks errors in how a command was invoked (exit code 2).
type usageError struct {
	msg string
	// fs, when set, adds the command's synopsis to the message.
	fs *flag.FlagSet
	// printed: the flag package has already reported the error.
	printed bool
}

func (e usageError) Error() string { return e.msg }

// newFlagSet returns a flag set for command name whose -h output starts with
// the command's synopsis.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s\n\nflags:\n", synopsis[name])
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args into fs. Bad flags and stray arguments are usage
// errors; -h is flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		// The flag package has printed the error and the usage.
		return usageError{msg: err.Error(), fs: fs, printed: true}
	}
	if fs.NArg() > 0 {
		msg := fmt.Sprintf("unexpected argument %q", fs.Arg(0))
		if fs.Lookup("config") != nil && fs.Lookup("config").Value.String() == "" {
			msg += fmt.Sprintf("; to use it as the configuration, pass --config %s", fs.Arg(0))
		} else if slices.ContainsFunc(fs.Args(), func(a string) bool { return strings.HasPrefix(a, "-") }) {
			msg += "; flags must come before other arguments"
		}
		return usageError{msg: msg, fs: fs}
	}
	return nil
}

// newLogger returns the operational logger (JSON lines on w).
func newLogger(w io.Writer, level string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}
