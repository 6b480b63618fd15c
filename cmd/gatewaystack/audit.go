package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/gatewaystack/gatewaystack/audit"
	"github.com/gatewaystack/gatewaystack/config"
)

// errAuditTampered ends "audit verify" with exit code 1: the chain is broken.
var errAuditTampered = errors.New("the audit chain is broken")

// cmdAudit runs "gatewaystack audit verify" (check a hash-chained audit
// file and its rotated predecessors, with the chain key and checkpoints)
// and "gatewaystack audit report"
// (figures per tenant, subject or tool).
func cmdAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("audit", stderr)
	if len(args) == 0 {
		return usageError{msg: "want a subcommand: verify or report", fs: fs}
	}
	switch args[0] {
	case "verify":
		return cmdAuditVerify(ctx, fs, args[1:], stdout, stderr)
	case "report":
		return cmdAuditReport(ctx, fs, args[1:], stdout, stderr)
	case "-h", "-help", "--help":
		fmt.Fprintf(stderr, "usage: %s\n", synopsis["audit"])
		for _, sub := range []struct {
			name   string
			define func(*flag.FlagSet)
		}{
			{"verify", func(fs *flag.FlagSet) { auditVerifyFlags(fs) }},
			{"report", func(fs *flag.FlagSet) { auditReportFlags(fs) }},
		} {
			sfs := flag.NewFlagSet("audit "+sub.name, flag.ContinueOnError)
			sfs.SetOutput(stderr)
			sub.define(sfs)
			fmt.Fprintf(stderr, "\naudit %s flags:\n", sub.name)
			sfs.PrintDefaults()
		}
		return nil
	default:
		return usageError{msg: fmt.Sprintf("unknown subcommand %q; want verify or report", args[0]), fs: fs}
	}
}

// cmdAuditVerify checks the chain across FILE... (oldest first) with the
// chain key and checkpoint public keys of the configuration. Exit 0:
// intact; 1: broken, a checkpoint refused, or a key missing or bad.
func cmdAuditVerify(ctx context.Context, fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
	f := auditVerifyFlags(fs)
	files, err := parseAuditArgs(fs, args)
	if err != nil {
		return err
	}
	if err := checkAuditFiles(fs, files, "verify"); err != nil {
		return err
	}
	head := *f.head
	if head != "" && (len(head) != 64 || strings.Trim(strings.ToLower(head), "0123456789abcdef") != "") {
		return usageError{msg: "--head must be a hex SHA-256 (64 hex digits)", fs: fs}
	}
	for _, c := range f.checkpoints {
		if _, err := os.Stat(c); errors.Is(err, os.ErrNotExist) {
			return usageError{msg: fmt.Sprintf("--checkpoints %s: no such file", c), fs: fs}
		}
	}
	cfg, err := loadConfig(*f.config)
	if err != nil {
		return err
	}
	key, err := cfg.Audit.LoadChainKey()
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	o := audit.VerifyOptions{Head: strings.ToLower(head), Key: key, AllowPartial: *f.allowPartial}
	if key == nil {
		if len(f.checkpoints) > 0 {
			return usageError{msg: "--checkpoints needs the chain key: set audit.chain_key_file in the configuration given with --config, or " + config.EnvAuditChainKey, fs: fs}
		}
		fmt.Fprintln(stderr, "warning: no chain key (audit.chain_key; pass --config): an unkeyed chain proves nothing against anyone who can write the files, who can edit any line and recompute every hash")
	}
	if len(f.checkpoints) > 0 {
		pubs, err := cfg.Audit.LoadCheckpointPublicKeys()
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		if len(pubs) == 0 {
			return usageError{msg: "--checkpoints needs the checkpoint public keys: set audit.checkpoint_public_keys (or audit.checkpoint_public_key_files) in the configuration given with --config", fs: fs}
		}
		if o.Checkpoints, err = audit.ReadCheckpoints(ctx, f.checkpoints, pubs); err != nil {
			var ce *audit.CheckpointError
			if errors.As(err, &ce) {
				fmt.Fprintf(stdout, "REFUSED: checkpoint at %s: %s\n", ce.At, ce.Reason)
				return errCheckpointRefused
			}
			return fmt.Errorf("verify: %w", err)
		}
	} else if key != nil {
		fmt.Fprintln(stderr, "note: without --checkpoints, lines cut off the end of the chain and deleted files cannot be detected")
	}
	res, err := audit.Verify(ctx, files, o)
	if errors.Is(err, audit.ErrChainKeyRequired) {
		return fmt.Errorf("verify: %w; pass --config with the configuration that holds it, or set %s", err, config.EnvAuditChainKey)
	}
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if *f.asJSON {
		if err := writeAuditJSON(stdout, res); err != nil {
			return err
		}
	} else {
		printAuditVerify(stdout, res)
	}
	if !res.OK() {
		return errAuditTampered
	}
	return nil
}

// errCheckpointRefused ends "audit verify" with exit code 1: a checkpoint
// does not verify.
var errCheckpointRefused = errors.New("a checkpoint was refused: it does not verify with the checkpoint public keys")

// verifyFlags are the flags of "audit verify".
type verifyFlags struct {
	config, head         *string
	asJSON, allowPartial *bool
	checkpoints          fileList
}

// fileList is a repeatable file flag.
type fileList []string

func (l *fileList) String() string     { return strings.Join(*l, ",") }
func (l *fileList) Set(v string) error { *l = append(*l, v); return nil }

// auditVerifyFlags defines the flags of "audit verify".
func auditVerifyFlags(fs *flag.FlagSet) *verifyFlags {
	f := &verifyFlags{}
	f.config = fs.String("config", "", "the configuration holding audit.chain_key (or its file) and audit.checkpoint_public_keys (or GATEWAYSTACK_CONFIG; GATEWAYSTACK_AUDIT_CHAIN_KEY also works)")
	fs.Var(&f.checkpoints, "checkpoints", "a file of checkpoint lines as stdout or the webhook received them (repeatable); the chain must agree with them and reach the newest")
	f.allowPartial = fs.Bool("allow-partial", false, "accept a keyed chain that starts after the genesis because rotation removed the oldest files")
	f.head = fs.String("head", "", "a line hash recorded earlier (a previous verify's last hash); the chain must contain it, which shows lines cut off the end")
	f.asJSON = fs.Bool("json", false, "print the result as JSON")
	return f
}

// printAuditVerify writes the human form of a verify result.
func printAuditVerify(w io.Writer, res audit.VerifyResult) {
	if p := res.Problem; p != nil {
		fmt.Fprintf(w, "TAMPERED: %s at %s\n  %s\n", p.Kind, p.At, p.Detail)
		if p.Break != (audit.Position{}) && p.Break != p.At {
			fmt.Fprintf(w, "  the chain breaks at %s\n", p.Break)
		}
		fmt.Fprintf(w, "checked %d line(s) before stopping at the first problem\n", res.Lines)
		return
	}
	start := "from the genesis"
	if !res.Genesis {
		start = "from an anchor (the first line's prev_hash " + res.Anchor + "; earlier lines are not in these files)"
	}
	what := "the chain is intact"
	if res.Keyed {
		what = "the keyed chain " + res.Chain + " is intact (every MAC checked)"
		if !res.Genesis {
			start = fmt.Sprintf("from seq %d (--allow-partial: the lines before it are not in these files)", res.FirstSeq)
		}
	}
	fmt.Fprintf(w, "ok: %s: %d file(s), %d line(s), seq %d to %d, %s\nlast hash: %s\n",
		what, res.Files, res.Lines, res.FirstSeq, res.LastSeq, start, res.LastHash)
	if res.Unkeyed > 0 {
		fmt.Fprintf(w, "the first %d line(s) were written before the chain key was set; the first keyed line binds them\n", res.Unkeyed)
	}
	if res.NewestCheckpoint > 0 {
		fmt.Fprintf(w, "checkpoints: %d checked against their lines; the chain reaches the newest, at seq %d\n", res.Checkpoints, res.NewestCheckpoint)
	}
	if res.OtherCheckpoints > 0 {
		fmt.Fprintf(w, "checkpoints of other chains ignored: %d\n", res.OtherCheckpoints)
	}
}

// cmdAuditReport prints figures per tenant, subject or tool from FILE...
func cmdAuditReport(ctx context.Context, fs *flag.FlagSet, args []string, stdout, stderr io.Writer) error {
	by, since, until, format := auditReportFlags(fs)
	files, err := parseAuditArgs(fs, args)
	if err != nil {
		return err
	}
	if err := checkAuditFiles(fs, files, "report"); err != nil {
		return err
	}
	switch *by {
	case audit.ByTenant, audit.BySubject, audit.ByTool:
	default:
		return usageError{msg: fmt.Sprintf("--by %q: use tenant, subject or tool", *by), fs: fs}
	}
	if *format != "table" && *format != "json" && *format != "csv" {
		return usageError{msg: fmt.Sprintf("--format %q: use table, json or csv", *format), fs: fs}
	}
	o := audit.ReportOptions{By: *by}
	if o.Since, err = parseAuditTime(*since, false); err != nil {
		return usageError{msg: "--since: " + err.Error(), fs: fs}
	}
	if o.Until, err = parseAuditTime(*until, true); err != nil {
		return usageError{msg: "--until: " + err.Error(), fs: fs}
	}
	if !o.Since.IsZero() && !o.Until.IsZero() && !o.Since.Before(o.Until) {
		return usageError{msg: "--since must be before --until", fs: fs}
	}
	res, err := audit.Report(ctx, files, o)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if res.Skipped > 0 {
		fmt.Fprintf(stderr, "gatewaystack audit report: skipped %d line(s) that are not audit events\n", res.Skipped)
	}
	switch *format {
	case "json":
		return res.WriteJSON(stdout)
	case "csv":
		return res.WriteCSV(stdout)
	default:
		return res.WriteTable(stdout)
	}
}

// auditReportFlags defines the flags of "audit report".
func auditReportFlags(fs *flag.FlagSet) (by, since, until, format *string) {
	by = fs.String("by", audit.ByTenant, "group by tenant, subject or tool")
	since = fs.String("since", "", "only events at or after this time: RFC 3339 (2026-03-01T12:00:00Z) or a date (2026-03-01, midnight UTC)")
	until = fs.String("until", "", "only events before this time: RFC 3339, or a date meaning through the end of that day (UTC)")
	format = fs.String("format", "table", "output format: table, json or csv")
	return by, since, until, format
}

// parseAuditTime reads an RFC 3339 time or a YYYY-MM-DD date (UTC
// midnight; with end, the midnight after it, so the day is included).
// Empty is the zero time (no bound).
func parseAuditTime(s string, end bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 (2026-03-01T12:00:00Z) nor a date (2026-03-01)", s)
	}
	if end {
		d = d.AddDate(0, 0, 1)
	}
	return d, nil
}

// checkAuditFiles makes sure at least one file is named and each exists.
func checkAuditFiles(fs *flag.FlagSet, files []string, sub string) error {
	if len(files) == 0 {
		return usageError{msg: "audit " + sub + ": name at least one file (oldest first, e.g. audit.jsonl.2 audit.jsonl.1 audit.jsonl)", fs: fs}
	}
	for _, f := range files {
		if _, err := os.Stat(f); errors.Is(err, os.ErrNotExist) {
			return usageError{msg: fmt.Sprintf("%s: no such file", f), fs: fs}
		}
	}
	return nil
}

// parseAuditArgs parses flags that may come before, between or after
// the file arguments, which it returns ("--" ends the flags).
func parseAuditArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var files []string
	for len(args) > 0 { // each round consumes at least one argument
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{msg: err.Error(), fs: fs, printed: true}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			files = append(files, rest...)
			break
		}
		files = append(files, rest[0])
		args = rest[1:]
	}
	return files, nil
}

// writeAuditJSON writes v as indented JSON.
func writeAuditJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}
