package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/rs/zerolog"
)

// Checkpoint reasons.
const (
	// CheckpointInterval: written after Options.CheckpointEvery lines.
	CheckpointInterval = "interval"
	// CheckpointShutdown: written when the Auditor closes.
	CheckpointShutdown = "shutdown"
)

// CheckpointType is the "type" of a checkpoint line.
const CheckpointType = "audit_checkpoint"

// DefaultCheckpointEvery is how many lines a keyed FileSink writes between
// checkpoints unless told otherwise.
const DefaultCheckpointEvery = 1000

// Checkpoint records, signed with an Ed25519 key, the head of a keyed
// chain at one moment: the sequence number and MAC of its last line. A
// FileSink behind an Auditor hands its checkpoints to the other
// destinations (stdout, the webhook), so copies live outside the file:
// lines removed from the end of the chain, or whole files deleted, show
// against any copy (Verify's VerifyOptions.Checkpoints). Lines written
// after the newest checkpoint can still be cut without a trace.
//
// As a line:
//
//	{"type":"audit_checkpoint","time":"…","schema":1,"file":"/var/log/gatewaystack/audit.jsonl",
//	 "chain":"<16 hex>","seq":1000,"mac":"<64 hex>","reason":"interval","key_id":"<16 hex>","sig":"<base64>"}
type Checkpoint struct {
	// Time is when the checkpoint was taken.
	Time time.Time
	// File is the path of the file sink that wrote the chain.
	File string
	// Chain is the chain's id; Seq and MAC are those of its last line.
	Chain string
	Seq   uint64
	MAC   string
	// Reason is CheckpointInterval or CheckpointShutdown.
	Reason string
	// KeyID names the public key that verifies Sig (see KeyID).
	KeyID string
	// Sig is the Ed25519 signature of the checkpoint's signed text.
	Sig []byte
}

// signedText is what a checkpoint's signature covers: every field but the
// signature, in a fixed order, one per line.
func (c *Checkpoint) signedText() []byte {
	b := make([]byte, 0, 256)
	b = append(b, "gatewaystack audit checkpoint v1\n"...)
	b = append(b, "chain="...)
	b = append(b, c.Chain...)
	b = append(b, "\nseq="...)
	b = strconv.AppendUint(b, c.Seq, 10)
	b = append(b, "\nmac="...)
	b = append(b, c.MAC...)
	b = append(b, "\ntime="...)
	b = append(b, c.Time.UTC().Format(time.RFC3339Nano)...)
	b = append(b, "\nreason="...)
	b = append(b, c.Reason...)
	b = append(b, "\nfile="...)
	b = strconv.AppendQuote(b, c.File)
	b = append(b, "\nkey_id="...)
	b = append(b, c.KeyID...)
	b = append(b, '\n')
	return b
}

// sign sets KeyID and Sig with priv.
func (c *Checkpoint) sign(priv ed25519.PrivateKey) {
	pub, _ := priv.Public().(ed25519.PublicKey)
	c.KeyID = KeyID(pub)
	c.Sig = ed25519.Sign(priv, c.signedText())
}

// Verify checks the signature with the public key among keys whose KeyID
// the checkpoint names. The error says why it is refused.
func (c *Checkpoint) Verify(keys []ed25519.PublicKey) error {
	known := false
	for _, k := range keys {
		if KeyID(k) != c.KeyID {
			continue
		}
		known = true
		if ed25519.Verify(k, c.signedText(), c.Sig) {
			return nil
		}
	}
	if !known {
		return fmt.Errorf("signed by key %s, which is not among the checkpoint public keys (audit.checkpoint_public_keys; keep old public keys there after a rotation)", c.KeyID)
	}
	return fmt.Errorf("the signature does not verify with key %s: the checkpoint was forged or altered", c.KeyID)
}

// marshal returns the checkpoint as one JSON line.
func (c *Checkpoint) marshal() []byte {
	w := &lineWriter{}
	l := zerolog.New(w)
	ev := l.Log()
	ev.Str("type", CheckpointType)
	ev.Str("time", c.Time.UTC().Format(time.RFC3339Nano))
	ev.Int("schema", SchemaVersion)
	ev.Str("file", c.File)
	ev.Str("chain", c.Chain)
	ev.Uint64("seq", c.Seq)
	ev.Str("mac", c.MAC)
	ev.Str("reason", c.Reason)
	ev.Str("key_id", c.KeyID)
	ev.Str("sig", base64.StdEncoding.EncodeToString(c.Sig))
	ev.Send()
	return w.line
}

// wireCheckpoint is a checkpoint line as JSON.
type wireCheckpoint struct {
	Type   string `json:"type"`
	Time   string `json:"time"`
	File   string `json:"file"`
	Chain  string `json:"chain"`
	Seq    uint64 `json:"seq"`
	MAC    string `json:"mac"`
	Reason string `json:"reason"`
	KeyID  string `json:"key_id"`
	Sig    string `json:"sig"`
}

// parseCheckpoint reads one checkpoint object.
func parseCheckpoint(raw []byte) (Checkpoint, error) {
	var w wireCheckpoint
	if err := json.Unmarshal(raw, &w); err != nil {
		return Checkpoint{}, fmt.Errorf("not a checkpoint: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, w.Time)
	if err != nil {
		return Checkpoint{}, errors.New(`"time" is not RFC 3339`)
	}
	sig, err := base64.StdEncoding.DecodeString(w.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return Checkpoint{}, errors.New(`"sig" is not a base64 Ed25519 signature`)
	}
	if !validChainID(w.Chain) || !validHash(w.MAC) || w.Seq == 0 {
		return Checkpoint{}, errors.New(`"chain", "seq" or "mac" is missing or malformed`)
	}
	return Checkpoint{Time: t, File: w.File, Chain: w.Chain, Seq: w.Seq, MAC: w.MAC, Reason: w.Reason, KeyID: w.KeyID, Sig: sig}, nil
}

// CheckpointError reports a checkpoint that ReadCheckpoints refused.
type CheckpointError struct {
	// At is the line that holds it.
	At Position
	// Reason says why.
	Reason string
}

// Error implements error.
func (e *CheckpointError) Error() string {
	return fmt.Sprintf("audit: checkpoint at %s refused: %s", e.At, e.Reason)
}

// ReadCheckpoints reads the checkpoints in files of lines as the stdout
// and webhook destinations emit them: each line a JSON object, or a JSON
// array of objects (a webhook body). Lines and elements that are not
// checkpoints (audit events, logs) are skipped. Every checkpoint must
// verify with one of keys; the first that does not is a *CheckpointError.
func ReadCheckpoints(ctx context.Context, paths []string, keys []ed25519.PublicKey) ([]Checkpoint, error) {
	if len(keys) == 0 {
		return nil, errors.New("audit: checkpoints: no public key to verify them with (audit.checkpoint_public_keys)")
	}
	sc := newLineScanner(ctx, paths)
	defer sc.Close()
	var out []Checkpoint
	take := func(obj []byte) error {
		if !bytes.Contains(obj, []byte(CheckpointType)) {
			return nil
		}
		var head struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(obj, &head) != nil || head.Type != CheckpointType {
			return nil
		}
		cp, err := parseCheckpoint(obj)
		if err != nil {
			return &CheckpointError{At: sc.pos, Reason: err.Error()}
		}
		if err := cp.Verify(keys); err != nil {
			return &CheckpointError{At: sc.pos, Reason: err.Error()}
		}
		out = append(out, cp)
		return nil
	}
	for {
		raw, err := sc.scan()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		raw = bytes.TrimSpace(raw)
		switch {
		case len(raw) == 0:
		case raw[0] == '[':
			var elems []json.RawMessage
			if json.Unmarshal(raw, &elems) != nil {
				continue
			}
			for _, el := range elems {
				if err := take(el); err != nil {
					return nil, err
				}
			}
		case raw[0] == '{':
			if err := take(raw); err != nil {
				return nil, err
			}
		}
	}
}
