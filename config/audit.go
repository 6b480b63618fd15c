package config

import (
	"net/url"
	"time"

	"github.com/gatewaystack/gatewaystack/policy"
	"github.com/gatewaystack/gatewaystack/safehttp"
)

// Audit configures where audit events go besides stdout (log.audit): an
// append-only, hash-chained file and an HTTP webhook (a SIEM). Sinks never
// block the request path: each has a bounded queue, and an event that
// cannot be delivered is counted as dropped (metrics and /health).
type Audit struct {
	// File writes JSON lines to an append-only, hash-chained file.
	File AuditFile `yaml:"file"`
	// Webhook POSTs batches of events as a JSON array.
	Webhook AuditWebhook `yaml:"webhook"`
	// RawArguments lists tool-name patterns whose raw arguments are written
	// into their events; every other event carries only a SHA-256 digest of
	// the arguments. Default: none.
	RawArguments []string `yaml:"raw_arguments"`
	// QueueSize bounds the events waiting for each sink (default 10000).
	QueueSize int `yaml:"queue_size"`
}

// AuditFile configures the file sink.
type AuditFile struct {
	// Path of the file; empty turns the sink off. Rotated files are renamed
	// Path.1, Path.2, … (1 the newest); each new file continues the chain.
	Path string `yaml:"path"`
	// MaxBytes rotates the file once it reaches this size (default 100 MiB;
	// 0 after defaults is impossible, use a large value to never rotate).
	MaxBytes int64 `yaml:"max_bytes"`
	// MaxFiles is how many rotated files are kept (default 10).
	MaxFiles int `yaml:"max_files"`
}

// AuditWebhook configures the webhook sink.
type AuditWebhook struct {
	// URL receives POSTs of JSON arrays of events; empty turns it off.
	URL string `yaml:"url"`
	// Headers are added to each POST (e.g. Authorization); values may use
	// ${ENV} references.
	Headers map[string]string `yaml:"headers"`
	// BatchSize is the most events per POST (default 100).
	BatchSize int `yaml:"batch_size"`
	// FlushInterval is the longest an event waits for its batch (default 1s).
	FlushInterval time.Duration `yaml:"flush_interval"`
	// Timeout bounds each POST (default 5s).
	Timeout time.Duration `yaml:"timeout"`
	// MaxBackoff caps the wait between retries of a failed batch
	// (default 30s); a batch is retried until delivered or shutdown.
	MaxBackoff time.Duration `yaml:"max_backoff"`
}

// Audit defaults.
const (
	DefaultAuditQueue        = 10_000
	DefaultAuditFileMaxBytes = 100 << 20
	DefaultAuditFileMaxFiles = 10
	DefaultWebhookBatch      = 100
)

func (a *Audit) setDefaults() {
	if a.QueueSize == 0 {
		a.QueueSize = DefaultAuditQueue
	}
	if a.File.MaxBytes == 0 {
		a.File.MaxBytes = DefaultAuditFileMaxBytes
	}
	if a.File.MaxFiles == 0 {
		a.File.MaxFiles = DefaultAuditFileMaxFiles
	}
	w := &a.Webhook
	if w.BatchSize == 0 {
		w.BatchSize = DefaultWebhookBatch
	}
	if w.FlushInterval == 0 {
		w.FlushInterval = time.Second
	}
	if w.Timeout == 0 {
		w.Timeout = 5 * time.Second
	}
	if w.MaxBackoff == 0 {
		w.MaxBackoff = 30 * time.Second
	}
}

func validateAudit(a *Audit, add func(field, format string, args ...any)) {
	if a.QueueSize < 1 || a.QueueSize > 10_000_000 {
		add("audit.queue_size", "%d is out of range; use 1 to 10000000 events (default 10000)", a.QueueSize)
	}
	if a.File.Path != "" {
		if a.File.MaxBytes < 1024 {
			add("audit.file.max_bytes", "%d is too small; use at least 1024 bytes (default 104857600)", a.File.MaxBytes)
		}
		if a.File.MaxFiles < 1 || a.File.MaxFiles > 10_000 {
			add("audit.file.max_files", "%d is out of range; use 1 to 10000 (default 10)", a.File.MaxFiles)
		}
	}
	w := a.Webhook
	if w.URL != "" {
		u, err := url.Parse(w.URL)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			add("audit.webhook.url", "%q is not an absolute http(s) URL", w.URL)
		case u.Scheme == "http" && !safehttp.IsLoopbackHost(u.Hostname()):
			add("audit.webhook.url", "%q sends audit events in clear text; use https (plain http is allowed for loopback only)", w.URL)
		}
		if w.BatchSize < 1 || w.BatchSize > 10_000 {
			add("audit.webhook.batch_size", "%d is out of range; use 1 to 10000", w.BatchSize)
		}
		if w.FlushInterval < time.Millisecond || w.FlushInterval > time.Minute {
			add("audit.webhook.flush_interval", "%s is out of range; use 1ms to 1m", w.FlushInterval)
		}
		if w.Timeout < time.Millisecond || w.Timeout > time.Minute {
			add("audit.webhook.timeout", "%s is out of range; use 1ms to 1m", w.Timeout)
		}
		if w.MaxBackoff < time.Millisecond || w.MaxBackoff > time.Hour {
			add("audit.webhook.max_backoff", "%s is out of range; use 1ms to 1h", w.MaxBackoff)
		}
	}
	for i, p := range a.RawArguments {
		if p == "" {
			add("audit.raw_arguments", "entry %d is empty; use a tool name or glob like notes__*", i)
		} else if err := policy.ValidatePattern(p); err != nil {
			add("audit.raw_arguments", "entry %d %q: %v", i, p, err)
		}
	}
}
