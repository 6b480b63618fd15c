package config

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/gatewaystack/gatewaystack/audit"
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
	// ChainKey keys the file's chain: 32 random bytes in base64 or hex
	// (openssl rand -base64 32). Each line then carries an HMAC-SHA256 of
	// its bytes and the previous line's, so nobody without the key can
	// edit, insert, remove or append a line undetected. The environment
	// variable GATEWAYSTACK_AUDIT_CHAIN_KEY sets it. Never logged. Default:
	// none (a plain SHA-256 chain, which proves nothing against anyone who
	// can write the file).
	ChainKey string `yaml:"chain_key"`
	// ChainKeyFile is a file holding the chain key (the same text, or 32
	// raw bytes), instead of ChainKey.
	ChainKeyFile string `yaml:"chain_key_file"`
	// CheckpointEvery is how many lines the file sink writes between
	// checkpoints (default 1000); one is also written at shutdown.
	CheckpointEvery int `yaml:"checkpoint_every"`
	// CheckpointKey is the Ed25519 private key that signs checkpoints of
	// the keyed chain's head, sent to stdout and the webhook: a PEM
	// PRIVATE KEY (openssl genpkey -algorithm ed25519) or the 32-byte seed
	// in base64 or hex. GATEWAYSTACK_AUDIT_CHECKPOINT_KEY sets it. Needs
	// ChainKey. Default: none (no checkpoints: lines cut off the end of the
	// file, and deleted files, cannot be detected).
	CheckpointKey string `yaml:"checkpoint_key"`
	// CheckpointKeyFile is a file holding the checkpoint key, instead of
	// CheckpointKey.
	CheckpointKeyFile string `yaml:"checkpoint_key_file"`
	// CheckpointPublicKeys are the Ed25519 public keys that "audit verify
	// --checkpoints" accepts checkpoints from (PEM PUBLIC KEY, or 32 bytes
	// in base64 or hex): the current key's and, after a rotation, the old
	// ones. The public key of CheckpointKey, when set, is accepted too.
	CheckpointPublicKeys []string `yaml:"checkpoint_public_keys"`
	// CheckpointPublicKeyFiles are files holding such public keys.
	CheckpointPublicKeyFiles []string `yaml:"checkpoint_public_key_files"`
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
	DefaultCheckpointEvery   = audit.DefaultCheckpointEvery
)

// Environment variables of the audit keys.
const (
	EnvAuditChainKey      = "GATEWAYSTACK_AUDIT_CHAIN_KEY"
	EnvAuditCheckpointKey = "GATEWAYSTACK_AUDIT_CHECKPOINT_KEY"
)

// applyAuditEnv sets the audit keys from the environment; a key set there
// replaces the one of the file, and its *_file setting.
func (c *Config) applyAuditEnv(getenv func(string) string) {
	a := &c.Audit
	if v := strings.TrimSpace(getenv(EnvAuditChainKey)); v != "" {
		a.ChainKey, a.ChainKeyFile = v, ""
	}
	if v := strings.TrimSpace(getenv(EnvAuditCheckpointKey)); v != "" {
		a.CheckpointKey, a.CheckpointKeyFile = v, ""
	}
}

// LoadChainKey returns the chain key from ChainKey or ChainKeyFile (nil
// when neither is set). Errors name the setting, never the key.
func (a *Audit) LoadChainKey() ([]byte, error) {
	switch {
	case a.ChainKey != "" && a.ChainKeyFile != "":
		return nil, keyErr("audit.chain_key", "set audit.chain_key (or "+EnvAuditChainKey+") or audit.chain_key_file, not both")
	case a.ChainKey != "":
		k, err := audit.ParseChainKey(a.ChainKey)
		if err != nil {
			return nil, keyErr("audit.chain_key", err.Error())
		}
		return k, nil
	case a.ChainKeyFile != "":
		data, err := os.ReadFile(a.ChainKeyFile)
		if err != nil {
			return nil, keyErr("audit.chain_key_file", err.Error())
		}
		k, err := audit.ParseChainKeyFile(data)
		if err != nil {
			return nil, keyErr("audit.chain_key_file", a.ChainKeyFile+": "+err.Error())
		}
		return k, nil
	}
	return nil, nil
}

// LoadCheckpointKey returns the checkpoint signing key from CheckpointKey
// or CheckpointKeyFile (nil when neither is set). Errors name the
// setting, never the key.
func (a *Audit) LoadCheckpointKey() (ed25519.PrivateKey, error) {
	switch {
	case a.CheckpointKey != "" && a.CheckpointKeyFile != "":
		return nil, keyErr("audit.checkpoint_key", "set audit.checkpoint_key (or "+EnvAuditCheckpointKey+") or audit.checkpoint_key_file, not both")
	case a.CheckpointKey != "":
		k, err := audit.ParseCheckpointPrivateKey([]byte(a.CheckpointKey))
		if err != nil {
			return nil, keyErr("audit.checkpoint_key", err.Error())
		}
		return k, nil
	case a.CheckpointKeyFile != "":
		data, err := os.ReadFile(a.CheckpointKeyFile)
		if err != nil {
			return nil, keyErr("audit.checkpoint_key_file", err.Error())
		}
		k, err := audit.ParseCheckpointPrivateKey(data)
		if err != nil {
			return nil, keyErr("audit.checkpoint_key_file", a.CheckpointKeyFile+": "+err.Error())
		}
		return k, nil
	}
	return nil, nil
}

// LoadCheckpointPublicKeys returns the keys checkpoints are verified
// with: CheckpointPublicKeys, CheckpointPublicKeyFiles and the public half
// of the checkpoint key, if set. The error joins one error per bad entry.
func (a *Audit) LoadCheckpointPublicKeys() ([]ed25519.PublicKey, error) {
	out, errs := a.publicKeys()
	priv, err := a.LoadCheckpointKey()
	if err != nil {
		errs = append(errs, err)
	} else if priv != nil {
		if pub, ok := priv.Public().(ed25519.PublicKey); ok {
			out = append(out, pub)
		}
	}
	return out, errors.Join(errs...)
}

// publicKeys reads CheckpointPublicKeys and CheckpointPublicKeyFiles.
func (a *Audit) publicKeys() ([]ed25519.PublicKey, []error) {
	var out []ed25519.PublicKey
	var errs []error
	for i, s := range a.CheckpointPublicKeys {
		k, err := audit.ParseCheckpointPublicKey([]byte(s))
		if err != nil {
			errs = append(errs, keyErr("audit.checkpoint_public_keys", fmt.Sprintf("entry %d: %v", i, err)))
			continue
		}
		out = append(out, k)
	}
	for i, f := range a.CheckpointPublicKeyFiles {
		data, err := os.ReadFile(f)
		if err == nil {
			var k ed25519.PublicKey
			if k, err = audit.ParseCheckpointPublicKey(data); err == nil {
				out = append(out, k)
				continue
			}
			err = fmt.Errorf("%s: %w", f, err)
		}
		errs = append(errs, keyErr("audit.checkpoint_public_key_files", fmt.Sprintf("entry %d: %v", i, err)))
	}
	return out, errs
}

// keyError is a problem with an audit key setting, as an error. Its
// message never holds a key.
type keyError struct{ p Problem }

func keyErr(field, msg string) error { return &keyError{Problem{Field: field, Message: msg}} }

// Error returns "field: message".
func (e *keyError) Error() string { return e.p.String() }

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
	if a.CheckpointEvery == 0 {
		a.CheckpointEvery = DefaultCheckpointEvery
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

func validateAudit(a *Audit, out Outbound, add func(field, format string, args ...any)) {
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
		case u.Scheme == "http" && !out.AllowHTTPLoopback:
			// The webhook goes through the outbound client, which refuses
			// plain http unless this is set.
			add("audit.webhook.url", "%q is plain http; use https, or for local development set outbound.allow_http_loopback: true (never in production)", w.URL)
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
	validateAuditKeys(a, add)
	for i, p := range a.RawArguments {
		if p == "" {
			add("audit.raw_arguments", "entry %d is empty; use a tool name or glob like notes__*", i)
		} else if err := policy.ValidatePattern(p); err != nil {
			add("audit.raw_arguments", "entry %d %q: %v", i, p, err)
		}
	}
}

// validateAuditKeys checks the chain and checkpoint keys: they decode,
// and checkpoints have a keyed chain to sign. It reads the key files but
// reports only the setting and what is wrong, never a key.
func validateAuditKeys(a *Audit, add func(field, format string, args ...any)) {
	if a.CheckpointEvery < 1 || a.CheckpointEvery > 10_000_000 {
		add("audit.checkpoint_every", "%d is out of range; use 1 to 10000000 lines (default 1000)", a.CheckpointEvery)
	}
	report := func(err error) {
		var ke *keyError
		if errors.As(err, &ke) {
			add(ke.p.Field, "%s", ke.p.Message)
		} else if err != nil {
			add("audit", "%v", err)
		}
	}
	_, err := a.LoadChainKey()
	report(err)
	priv, err := a.LoadCheckpointKey()
	report(err)
	if priv != nil && a.ChainKey == "" && a.ChainKeyFile == "" {
		add("audit.checkpoint_key", "checkpoints sign the head of a keyed chain; set audit.chain_key_file (or %s) too", EnvAuditChainKey)
	}
	if priv != nil && a.File.Path == "" {
		add("audit.checkpoint_key", "checkpoints are of the file sink's chain; set audit.file.path, or remove the checkpoint key")
	}
	_, errs := a.publicKeys()
	for _, err := range errs {
		report(err)
	}
}

// AuditWarnings lists audit settings that work but leave the trail weaker
// than it could be; validate and serve print them.
func (c *Config) AuditWarnings() []string {
	a := c.Audit
	var out []string
	if a.File.Path == "" {
		return nil
	}
	if a.ChainKey == "" && a.ChainKeyFile == "" {
		out = append(out, "audit.file: the hash chain has no key: anyone who can write the file can rewrite it and recompute the hashes undetected; set audit.chain_key_file or "+EnvAuditChainKey+" (32 random bytes: openssl rand -base64 32)")
		return out
	}
	if a.CheckpointKey == "" && a.CheckpointKeyFile == "" {
		out = append(out, "audit.checkpoint_key: not set: lines cut off the end of the file, and deleted files, cannot be detected; set audit.checkpoint_key_file or "+EnvAuditCheckpointKey+" (openssl genpkey -algorithm ed25519)")
		return out
	}
	if !c.Log.AuditEnabled() && a.Webhook.URL == "" {
		out = append(out, "audit.checkpoint_key: checkpoints go to stdout (log.audit) and the webhook, and both are off: nothing keeps a copy of them")
	}
	return out
}
