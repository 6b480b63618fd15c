package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/gatewaystack/gatewaystack/safehttp"
)

// WebhookOptions configures a WebhookSink.
type WebhookOptions struct {
	// Name names the sink in stats (default "webhook").
	Name string
	// URL receives the POSTs: https, or http to a loopback host when
	// Client allows it.
	URL string
	// Headers are added to every POST (e.g. Authorization). They never
	// appear in errors or stats.
	Headers map[string]string
	// Client sends the POSTs: the gateway's SSRF-safe outbound client, so
	// its rules apply (https only, plain http to loopback only when
	// allowed, no private, loopback or link-local address such as
	// 169.254.169.254 unless allowed, no proxy from the environment) and
	// redirects are never followed: a 3xx fails the POST, so the batch and
	// its headers never reach another URL. Default: a strict client of the
	// sink's own (https to public addresses), whose idle connections Close
	// closes. Timeout replaces the client's overall time bound; its
	// transport's bounds (connect time, time to the answer's headers)
	// still apply.
	Client *safehttp.Client
	// BatchSize is the most events per POST (default 100).
	BatchSize int
	// FlushInterval is the longest an event waits for its batch to fill
	// (default 1s).
	FlushInterval time.Duration
	// Timeout bounds each POST (default 5s).
	Timeout time.Duration
	// MinBackoff is the wait before the first retry of a failed batch
	// (default 100ms); it doubles with each failure up to MaxBackoff
	// (default 30s). A failed batch is retried until delivered, or until
	// the Auditor's Close gives up.
	MinBackoff time.Duration
	MaxBackoff time.Duration
}

// WebhookSink POSTs batches of events as a JSON array (each element the
// object MarshalLine writes; checkpoints too) with Content-Type
// application/json. Any 2xx answer delivers the batch; anything else, a
// redirect included, or no answer, is retried.
type WebhookSink struct {
	o       WebhookOptions
	target  string
	display string
	// hc is the client's http.Client without its overall time bound (each
	// POST has its own); it never follows a redirect.
	hc  http.Client
	own bool
}

var (
	_ Destination       = (*WebhookSink)(nil)
	_ CheckpointCarrier = (*WebhookSink)(nil)
)

// NewWebhookSink returns a sink posting to o.URL.
func NewWebhookSink(o WebhookOptions) (*WebhookSink, error) {
	u, err := url.Parse(o.URL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, errors.New("audit: webhook: the URL is not an absolute http(s) URL")
	}
	if o.Name == "" {
		o.Name = "webhook"
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 100
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	s := &WebhookSink{o: o, target: o.URL}
	// Errors name the endpoint without credentials or query.
	s.display = u.Scheme + "://" + u.Host + u.EscapedPath()
	if o.Client == nil {
		s.o.Client = safehttp.New(safehttp.Options{Timeout: o.Timeout})
		s.own = true
	}
	s.hc = *s.o.Client.HTTPClient()
	s.hc.Timeout = 0 // each POST is bounded by its context (Timeout)
	s.hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return s, nil
}

// CarriesCheckpoints reports true: the webhook also gets the checkpoints
// of the Auditor's keyed file sinks, as elements of its batches.
func (s *WebhookSink) CarriesCheckpoints() bool { return true }

// Name returns the sink's name.
func (s *WebhookSink) Name() string { return s.o.Name }

// Delivery batches up to BatchSize events or FlushInterval, and retries
// with backoff from MinBackoff to MaxBackoff.
func (s *WebhookSink) Delivery() Delivery {
	return Delivery{BatchSize: s.o.BatchSize, FlushInterval: s.o.FlushInterval, MinBackoff: s.o.MinBackoff, MaxBackoff: s.o.MaxBackoff}
}

// Deliver POSTs batch as one JSON array: all of it is delivered, or none.
func (s *WebhookSink) Deliver(ctx context.Context, batch []Event) (int, error) {
	var body bytes.Buffer
	body.WriteByte('[')
	for i, e := range batch {
		line := e.MarshalLine(nil)
		if line == nil {
			return 0, errZerologDisabled
		}
		if i > 0 {
			body.WriteByte(',')
		}
		body.Write(line[:len(line)-1])
	}
	body.WriteByte(']')
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.target, bytes.NewReader(body.Bytes()))
	if err != nil {
		return 0, fmt.Errorf("audit: webhook %s: %w", s.display, err)
	}
	for k, v := range s.o.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.hc.Do(req)
	if err != nil {
		// url.Error repeats the URL, query included: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, fmt.Errorf("audit: webhook POST %s: %w", s.display, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return len(batch), nil
	}
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	msg := fmt.Sprintf("audit: webhook POST %s: status %d", s.display, resp.StatusCode)
	if resp.StatusCode/100 == 3 {
		msg += ": redirect not followed (redirects are refused; configure the final URL)"
		if loc, err := resp.Location(); err == nil {
			msg += "; it points to " + loc.Scheme + "://" + loc.Host + loc.EscapedPath()
		}
		return 0, errors.New(msg)
	}
	if b := printable(excerpt); b != "" {
		msg += ": " + b
	}
	return 0, errors.New(msg)
}

// printable keeps an answer's excerpt on one line of printable text.
func printable(b []byte) string {
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, string(b)))
}

// Close closes the idle connections of the sink's own client.
func (s *WebhookSink) Close(context.Context) error {
	if s.own {
		s.o.Client.CloseIdleConnections()
	}
	return nil
}
