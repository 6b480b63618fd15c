package mcp

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// certCheckEvery is how often the certificate files are checked for a
// change (at a handshake, never more often).
const certCheckEvery = 2 * time.Second

// certReloader serves a certificate read from PEM files and reads them
// again when they change, so a renewed certificate needs no restart. A
// renewal that does not load (a half-written file, a mismatched key) is
// logged and the certificate in use stays.
type certReloader struct {
	certFile, keyFile string
	log               zerolog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	checked time.Time
	modCert time.Time
	modKey  time.Time
}

// NewTLSConfig returns a server TLS configuration for the PEM files:
// TLS 1.2 and later, the modern AEAD cipher suites for TLS 1.2 (TLS 1.3
// suites are always modern), and the certificate reloaded when its files
// change.
func NewTLSConfig(certFile, keyFile string, log zerolog.Logger) (*tls.Config, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := r.load(); err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: r.get,
	}, nil
}

func (r *certReloader) load() error {
	ci, err := os.Stat(r.certFile)
	if err != nil {
		return fmt.Errorf("tls.cert_file: %w", err)
	}
	ki, err := os.Stat(r.keyFile)
	if err != nil {
		return fmt.Errorf("tls.key_file: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("load tls.cert_file %s and tls.key_file %s: %w", r.certFile, r.keyFile, err)
	}
	r.mu.Lock()
	r.cert, r.modCert, r.modKey, r.checked = &cert, ci.ModTime(), ki.ModTime(), time.Now()
	r.mu.Unlock()
	return nil
}

func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	due := time.Since(r.checked) >= certCheckEvery
	if due {
		r.checked = time.Now()
	}
	cert, modCert, modKey := r.cert, r.modCert, r.modKey
	r.mu.Unlock()
	if due {
		ci, cerr := os.Stat(r.certFile)
		ki, kerr := os.Stat(r.keyFile)
		if cerr == nil && kerr == nil && (!ci.ModTime().Equal(modCert) || !ki.ModTime().Equal(modKey)) {
			if err := r.load(); err != nil {
				r.log.Error().Err(err).Msg("the changed TLS certificate does not load; serving the previous one")
			} else {
				r.log.Info().Str("cert_file", r.certFile).Msg("TLS certificate reloaded")
				r.mu.Lock()
				cert = r.cert
				r.mu.Unlock()
			}
		}
	}
	return cert, nil
}
