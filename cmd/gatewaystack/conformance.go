package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/gatewaystack/gatewaystack/conformance"
)

// errChecksFailed makes `conformance` exit 1 after it printed its table.
var errChecksFailed = errors.New("some checks failed")

func cmdConformance(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("conformance", stderr)
	gw := fs.String("url", "", "the gateway's MCP endpoint, exactly as its metadata's resource (required), e.g. http://127.0.0.1:8080/mcp")
	issuer := fs.String("issuer", "", "URL of an issuer with the demo issuer's POST /mint whose tokens the gateway trusts (required), e.g. http://127.0.0.1:5051")
	out := fs.String("out", ".", "directory to write report.json and report.md into")
	sub := fs.String("sub", conformance.DefaultSubject, "subject of the minted tokens")
	stepUpTool := fs.String("step-up-tool", "", "tool the step-up check calls (default: the first listed tool not annotated read-only or destructive that answers 403)")
	expiryWait := fs.Duration("expiry-wait", 0, "also check a correctly signed token that expires, waiting up to this long for its refusal (must exceed the gateway's clock skew, e.g. 90s); 0 skips it")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *gw == "" || *issuer == "" {
		return usageError{msg: "--url and --issuer are required, e.g. --url http://127.0.0.1:8080/mcp --issuer http://127.0.0.1:5051", fs: fs}
	}
	if *expiryWait < 0 {
		return usageError{msg: "--expiry-wait must not be negative", fs: fs}
	}
	report, err := conformance.Run(ctx, conformance.Options{
		URL: *gw, Issuer: *issuer, Subject: *sub, StepUpTool: *stepUpTool, ExpiryWait: *expiryWait,
	})
	if err != nil {
		if errors.Is(err, conformance.ErrOptions) {
			return usageError{msg: err.Error(), fs: fs}
		}
		return err
	}
	report.Version = version
	if err := report.WriteTable(stdout); err != nil {
		return err
	}
	jsonPath, mdPath, err := report.WriteFiles(*out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "report: %s, %s\n", jsonPath, mdPath)
	if !report.OK() {
		return fmt.Errorf("%w: %d of %d", errChecksFailed, report.Failed, len(report.Checks))
	}
	return nil
}
