package config

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// auditProblems validates c and returns its problems by field (none: nil).
func auditProblems(t *testing.T, c *Config) map[string]string {
	t.Helper()
	err := c.Validate()
	if err == nil {
		return nil
	}
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Validate = %v (%T), want Problems", err, err)
	}
	got := map[string]string{}
	for _, p := range ps {
		got[p.Field] = p.Message
	}
	return got
}

// Invariant: every outbound request goes through safehttp, webhooks
// included; a webhook URL the outbound client would refuse is a problem at
// validate time, naming the field and the fix.
func TestValidateAuditWebhookURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url      string
		loopback bool // outbound.allow_http_loopback
		want     []string
	}{
		{"http://example.com/hook", true, []string{`"http://example.com/hook"`, "clear text", "use https"}},
		{"http://10.0.0.7/hook", true, []string{"clear text", "use https"}},
		{"http://127.0.0.1:9/hook", true, nil},
		{"http://localhost:9/hook", true, nil},
		{"http://127.0.0.1:9/hook", false, []string{"plain http", "outbound.allow_http_loopback: true"}},
		{"https://siem.example.com/hook", false, nil},
		{"https://siem.example.com/hook", true, nil},
		{"ftp://siem.example.com/hook", true, []string{"not an absolute http(s) URL"}},
	}
	for _, tc := range tests {
		c := valid()
		c.Outbound.AllowHTTPLoopback = tc.loopback
		c.Audit.Webhook.URL = tc.url
		got := auditProblems(t, c)
		msg, ok := got["audit.webhook.url"]
		if tc.want == nil {
			if ok {
				t.Errorf("%s (allow_http_loopback %v): refused: %s", tc.url, tc.loopback, msg)
			}
			continue
		}
		if !ok {
			t.Errorf("%s (allow_http_loopback %v): accepted; problems %v", tc.url, tc.loopback, got)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: message %q does not contain %q", tc.url, msg, w)
			}
		}
	}
}

// keyFiles writes a chain key file and an Ed25519 key pair as openssl
// writes them, and returns their paths and the raw keys.
type keyFiles struct {
	chain, priv, pub string
	chainKey         []byte
	pubKey           ed25519.PublicKey
	privPEM          []byte
}

func newKeyFiles(t *testing.T) keyFiles {
	t.Helper()
	dir := t.TempDir()
	k := keyFiles{chain: filepath.Join(dir, "chain.key"), priv: filepath.Join(dir, "checkpoint.pem"), pub: filepath.Join(dir, "checkpoint.pub.pem")}
	k.chainKey = bytes.Repeat([]byte{0x5a}, 32)
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k.pubKey = pub
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	k.privPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	pder, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	for path, data := range map[string][]byte{
		k.chain: []byte(base64.StdEncoding.EncodeToString(k.chainKey) + "\n"),
		k.priv:  k.privPEM,
		k.pub:   pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder}),
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

// The audit keys decode, go together, and their problems name the setting
// and the fix, never the key.
func TestValidateAuditKeys(t *testing.T) {
	t.Parallel()
	k := newKeyFiles(t)
	secret := "c2VjcmV0LWJ1dC1ub3QtMzItYnl0ZXM=" // 24 bytes in base64
	tests := []struct {
		name   string
		mutate func(a *Audit)
		want   []problem
	}{
		{"a chain key in hex with a checkpoint key file", func(a *Audit) {
			a.ChainKey = hex.EncodeToString(k.chainKey)
			a.CheckpointKeyFile = k.priv
		}, nil},
		{"key files, public keys inline and in files", func(a *Audit) {
			a.ChainKeyFile, a.CheckpointKeyFile = k.chain, k.priv
			a.CheckpointPublicKeys = []string{base64.StdEncoding.EncodeToString(k.pubKey)}
			a.CheckpointPublicKeyFiles = []string{k.pub}
		}, nil},
		{"a chain key of the wrong size", func(a *Audit) { a.ChainKey = secret },
			[]problem{{"audit.chain_key", []string{"not 32 bytes", "openssl rand -base64 32"}}}},
		{"both a chain key and a key file", func(a *Audit) { a.ChainKey, a.ChainKeyFile = hex.EncodeToString(k.chainKey), k.chain },
			[]problem{{"audit.chain_key", []string{"not both"}}}},
		{"a missing chain key file", func(a *Audit) { a.ChainKeyFile = filepath.Join(t.TempDir(), "nope.key") },
			[]problem{{"audit.chain_key_file", []string{"nope.key"}}}},
		{"a checkpoint key without a chain key", func(a *Audit) { a.CheckpointKeyFile = k.priv },
			[]problem{{"audit.checkpoint_key", []string{"keyed chain", "GATEWAYSTACK_AUDIT_CHAIN_KEY"}}}},
		{"a checkpoint key that is not one", func(a *Audit) { a.ChainKeyFile, a.CheckpointKey = k.chain, secret },
			[]problem{{"audit.checkpoint_key", []string{"not an Ed25519 private key", "openssl genpkey -algorithm ed25519"}}}},
		{"a public key that is not one", func(a *Audit) { a.CheckpointPublicKeys = []string{secret} },
			[]problem{{"audit.checkpoint_public_keys", []string{"entry 0", "not an Ed25519 public key"}}}},
		{"a private key file given as a public key", func(a *Audit) { a.CheckpointPublicKeyFiles = []string{k.priv} },
			[]problem{{"audit.checkpoint_public_key_files", []string{"entry 0", "PUBLIC KEY"}}}},
		{"checkpoint_every out of range", func(a *Audit) { a.CheckpointEvery = -1 },
			[]problem{{"audit.checkpoint_every", []string{"1 to 10000000"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := valid()
			c.Audit.File.Path = filepath.Join(t.TempDir(), "audit.jsonl")
			tc.mutate(&c.Audit)
			got := auditProblems(t, c)
			if len(got) != len(tc.want) {
				t.Errorf("problems %v, want %d", got, len(tc.want))
			}
			for _, w := range tc.want {
				msg, ok := got[w.field]
				if !ok {
					t.Errorf("no problem for %s: %v", w.field, got)
					continue
				}
				for _, s := range w.msg {
					if !strings.Contains(msg, s) {
						t.Errorf("%s: %q does not contain %q", w.field, msg, s)
					}
				}
			}
			for f, msg := range got {
				for _, key := range []string{secret, string(k.privPEM), hex.EncodeToString(k.chainKey), base64.StdEncoding.EncodeToString(k.chainKey)} {
					if strings.Contains(msg, key) {
						t.Errorf("%s: the message holds a key: %q", f, msg)
					}
				}
			}
		})
	}
}

// The keys can come from the environment, which replaces the file's
// settings, key files included.
func TestAuditKeysFromTheEnvironment(t *testing.T) {
	t.Parallel()
	k := newKeyFiles(t)
	path := writeConfig(t, "audit:\n  chain_key_file: /nonexistent/chain.key\n  checkpoint_key_file: /nonexistent/checkpoint.pem\n")
	c, err := Load(path, env(map[string]string{
		EnvAuditChainKey:      hex.EncodeToString(k.chainKey),
		EnvAuditCheckpointKey: string(k.privPEM),
	}))
	if err != nil {
		t.Fatal(err)
	}
	key, err := c.Audit.LoadChainKey()
	if err != nil || !bytes.Equal(key, k.chainKey) {
		t.Errorf("chain key from the environment: %v", err)
	}
	priv, err := c.Audit.LoadCheckpointKey()
	if err != nil || !priv.Public().(ed25519.PublicKey).Equal(k.pubKey) {
		t.Errorf("checkpoint key from the environment: %v", err)
	}
	pubs, err := c.Audit.LoadCheckpointPublicKeys()
	if err != nil || len(pubs) != 1 || !pubs[0].Equal(k.pubKey) {
		t.Errorf("public keys: %v %v", pubs, err)
	}
	if c.Audit.CheckpointEvery != DefaultCheckpointEvery {
		t.Errorf("checkpoint_every defaults to %d", c.Audit.CheckpointEvery)
	}
}

// validate warns about a file sink whose chain has no key, and about a
// keyed chain without checkpoints or with nowhere to send them.
func TestAuditWarnings(t *testing.T) {
	t.Parallel()
	k := newKeyFiles(t)
	off := false
	for _, tc := range []struct {
		name   string
		mutate func(c *Config)
		want   string
	}{
		{"no file sink", func(c *Config) {}, ""},
		{"a file sink without a chain key", func(c *Config) { c.Audit.File.Path = "audit.jsonl" }, "has no key"},
		{"a keyed chain without checkpoints", func(c *Config) {
			c.Audit.File.Path, c.Audit.ChainKeyFile = "audit.jsonl", k.chain
		}, "cannot be detected"},
		{"checkpoints with stdout and the webhook off", func(c *Config) {
			c.Audit.File.Path, c.Audit.ChainKeyFile, c.Audit.CheckpointKeyFile = "audit.jsonl", k.chain, k.priv
			c.Log.Audit = &off
		}, "nothing keeps a copy"},
		{"checkpoints to stdout", func(c *Config) {
			c.Audit.File.Path, c.Audit.ChainKeyFile, c.Audit.CheckpointKeyFile = "audit.jsonl", k.chain, k.priv
		}, ""},
	} {
		c := valid()
		tc.mutate(c)
		w := strings.Join(c.AuditWarnings(), "\n")
		if (tc.want == "") != (w == "") || !strings.Contains(w, tc.want) {
			t.Errorf("%s: warnings %q, want %q", tc.name, w, tc.want)
		}
	}
}
