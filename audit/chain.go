package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"strings"
)

// Keyed chains.
//
// With a chain key every line the FileSink writes ends with its own MAC:
//
//	{"type":"audit",…,"seq":7,"chain":"<16 hex>","prev_mac":"<64 hex>","mac":"<64 hex>"}
//
// mac is the hex HMAC-SHA256, under the chain key, of the line's exact
// bytes before `,"mac":"` (everything but the MAC itself), so no byte of a
// line can change, the last line's included, without the key. prev_mac is
// the previous line's mac: 64 zeros for the first line of a chain (the
// genesis), or, when the previous line was written without a key (a file
// that was unkeyed when the key was set), the HMAC of that line's bytes,
// which binds the whole unkeyed history before it. chain names the chain:
// 16 random hex digits chosen when it starts, the same on every line.

// ChainKeySize is the size of a chain key in bytes.
const ChainKeySize = 32

// macSuffix is how the MAC field of a keyed line begins; the line ends
// with the 64 hex digits of the MAC and `"}`.
const macSuffix = `,"mac":"`

// macTailLen is the length of a keyed line's MAC field with the closing
// brace: `,"mac":"` + 64 hex digits + `"}`.
const macTailLen = len(macSuffix) + 64 + 2

// ErrChainKeyRequired is returned by Verify for a keyed chain when no
// chain key is given: its MACs cannot be checked.
var ErrChainKeyRequired = errors.New("audit: the chain is keyed (its lines carry a mac); verifying it needs its chain key (audit.chain_key)")

// macer computes HMAC-SHA256 under one key, reusing its state.
type macer struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

func newMACer(key []byte) *macer {
	return &macer{h: hmac.New(sha256.New, key)}
}

// mac returns the HMAC-SHA256 of p.
func (m *macer) mac(p []byte) [sha256.Size]byte {
	m.h.Reset()
	m.h.Write(p)
	m.h.Sum(m.sum[:0])
	return m.sum
}

// splitKeyed splits a keyed line (without its newline) into the bytes its
// MAC covers and the MAC. ok is false when the line does not end with a
// MAC field of 64 lower-case hex digits.
func splitKeyed(line []byte) (covered []byte, mac [sha256.Size]byte, ok bool) {
	n := len(line)
	if n < macTailLen+1 {
		return nil, mac, false
	}
	tail := line[n-macTailLen:]
	if !bytes.HasPrefix(tail, []byte(macSuffix)) || !bytes.HasSuffix(tail, []byte(`"}`)) {
		return nil, mac, false
	}
	digits := tail[len(macSuffix) : len(macSuffix)+64]
	if !lowerHex(digits) {
		return nil, mac, false
	}
	if _, err := hex.Decode(mac[:], digits); err != nil {
		return nil, mac, false
	}
	return line[:n-macTailLen], mac, true
}

// lowerHex reports whether b holds only lower-case hex digits (so that a
// MAC has one spelling).
func lowerHex(b []byte) bool {
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// validChainID reports whether s is a chain id: 16 lower-case hex digits.
func validChainID(s string) bool {
	return len(s) == 16 && lowerHex([]byte(s))
}

// newChainID returns a random chain id.
func newChainID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("audit: choose a chain id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// appendMAC ends a line zerolog wrote ("{…}\n") with its MAC: it removes
// the closing brace and newline, computes the MAC of what is left, and
// appends the MAC field, the brace and the newline.
func appendMAC(line []byte, m *macer) ([]byte, [sha256.Size]byte, error) {
	if !bytes.HasSuffix(line, []byte("}\n")) {
		return nil, [sha256.Size]byte{}, errors.New("audit: an audit line does not end with }")
	}
	line = line[:len(line)-2]
	mac := m.mac(line)
	line = append(line, macSuffix...)
	line = hex.AppendEncode(line, mac[:])
	line = append(line, '"', '}', '\n')
	return line, mac, nil
}

// errKeyFormat describes the accepted spellings of a chain key; it never
// repeats the value.
var errKeyFormat = errors.New("not 32 bytes in base64 or hex; generate a key with: openssl rand -base64 32")

// ParseChainKey reads a chain key: 32 bytes written as 64 hex digits or
// in base64 (standard or URL alphabet, padded or not), surrounding space
// ignored. Errors never repeat the value.
func ParseChainKey(text string) ([]byte, error) {
	key, ok := decodeKey(strings.TrimSpace(text), ChainKeySize)
	if !ok {
		return nil, errKeyFormat
	}
	return key, nil
}

// ParseChainKeyFile reads a chain key from the contents of a key file:
// the text ParseChainKey reads, or exactly 32 raw bytes.
func ParseChainKeyFile(data []byte) ([]byte, error) {
	if key, err := ParseChainKey(string(data)); err == nil {
		return key, nil
	}
	if len(data) == ChainKeySize {
		return bytes.Clone(data), nil
	}
	return nil, errKeyFormat
}

// decodeKey decodes s as hex or base64 into exactly size bytes.
func decodeKey(s string, size int) ([]byte, bool) {
	if len(s) == 2*size && lowerHex([]byte(strings.ToLower(s))) {
		b := make([]byte, size)
		if _, err := hex.Decode(b, []byte(strings.ToLower(s))); err == nil {
			return b, true
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == size {
			return b, true
		}
	}
	return nil, false
}

// ParseCheckpointPrivateKey reads the Ed25519 key that signs checkpoints:
// a PEM "PRIVATE KEY" block (PKCS #8, as written by openssl genpkey
// -algorithm ed25519), or the 32-byte seed or the 64-byte private key in
// base64 or hex. Errors never repeat the key.
func ParseCheckpointPrivateKey(data []byte) (ed25519.PrivateKey, error) {
	text := strings.TrimSpace(string(data))
	if strings.HasPrefix(text, "-----BEGIN") {
		block, _ := pem.Decode([]byte(text))
		if block == nil || block.Type != "PRIVATE KEY" {
			return nil, errors.New(`not a PEM "PRIVATE KEY" block; generate a key with: openssl genpkey -algorithm ed25519`)
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("the PEM block is not a PKCS #8 private key")
		}
		priv, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("a %T, not an Ed25519 key; generate one with: openssl genpkey -algorithm ed25519", k)
		}
		return priv, nil
	}
	if seed, ok := decodeKey(text, ed25519.SeedSize); ok {
		return ed25519.NewKeyFromSeed(seed), nil
	}
	if b, ok := decodeKey(text, ed25519.PrivateKeySize); ok {
		priv := ed25519.NewKeyFromSeed(b[:ed25519.SeedSize])
		if !bytes.Equal(priv, b) {
			return nil, errors.New("the 64-byte private key's public half does not match its seed")
		}
		return priv, nil
	}
	return nil, errors.New("not an Ed25519 private key: use a PEM PRIVATE KEY block (openssl genpkey -algorithm ed25519) or the 32-byte seed in base64 or hex")
}

// ParseCheckpointPublicKey reads an Ed25519 public key that verifies
// checkpoints: a PEM "PUBLIC KEY" block (PKIX, as written by openssl pkey
// -pubout), or its 32 bytes in base64 or hex.
func ParseCheckpointPublicKey(data []byte) (ed25519.PublicKey, error) {
	text := strings.TrimSpace(string(data))
	if strings.HasPrefix(text, "-----BEGIN") {
		block, _ := pem.Decode([]byte(text))
		if block == nil || block.Type != "PUBLIC KEY" {
			return nil, errors.New(`not a PEM "PUBLIC KEY" block; write one with: openssl pkey -in key.pem -pubout`)
		}
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, errors.New("the PEM block is not a PKIX public key")
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("a %T, not an Ed25519 key", k)
		}
		return pub, nil
	}
	if b, ok := decodeKey(text, ed25519.PublicKeySize); ok {
		return ed25519.PublicKey(b), nil
	}
	return nil, errors.New("not an Ed25519 public key: use a PEM PUBLIC KEY block (openssl pkey -in key.pem -pubout) or its 32 bytes in base64 or hex")
}

// KeyID names a checkpoint public key: the first 16 hex digits of the
// SHA-256 of its 32 bytes. Checkpoints carry the id of the key that signed
// them.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}
