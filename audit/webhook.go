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
)

// WebhookOptions configures a WebhookSink.
type WebhookOptions struct {
	// Name names the sink in stats (default "webhook").
	Name string
	// URL receives the POSTs (http or https).
	URL string
	// Headers are added to every POST (e.g. Authorization). They never
	// appear in errors or stats.
	Headers map[string]string
	// Client sends the POSTs (default: a client of the sink's own, whose
	// idle connections Close closes). Its own Timeout, if any, also
	// applies.
	Client *http.Client
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
// object MarshalLine writes) with Content-Type application/json. Any 2xx
// answer delivers the batch; anything else, or no answer, is retried.
type WebhookSink struct {
	o       WebhookOptions
	target  string
	display string
	own     bool
}

var _ Destination = (*WebhookSink)(nil)

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
		t, ok := http.DefaultTransport.(*http.Transport)
		if !ok {
			return nil, errors.New("audit: webhook: http.DefaultTransport is not an *http.Transport; pass a Client")
		}
		s.o.Client = &http.Client{Transport: t.Clone()}
		s.own = true
	}
	return s, nil
}

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
	resp, err := s.o.Client.Do(req)
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
