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
	"syscall"

	"github.com/rs/zerolog"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

const usage = `gatewaystack — an MCP gateway that verifies who is calling, shows and runs only
the tools their token allows, and audits every decision.

Usage:
  gatewaystack demo     [--gateway-addr A] [--issuer-addr A] [--upstream-addr A]
  gatewaystack serve    --config gatewaystack.yaml
  gatewaystack validate --config gatewaystack.yaml
  gatewaystack issuer   [--addr A] [--audience URL]
  gatewaystack mint     --issuer URL --sub alice [--scope "tool:read"] [--org acme] [--expires-in 600]
  gatewaystack version

Run "gatewaystack <command> -h" for a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
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
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "gatewaystack", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "gatewaystack: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "gatewaystack %s: %v\n", args[0], err)
			return 2
		}
		fmt.Fprintf(stderr, "gatewaystack %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// usageError marks errors in how a command was invoked (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// newLogger returns the operational logger (JSON lines on w).
func newLogger(w io.Writer, level string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}
