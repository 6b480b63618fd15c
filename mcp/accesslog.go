package mcp

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/rs/zerolog"
)

// accessLog writes one line per HTTP request at info level: method, path
// (never the query, which could carry a token), status, bytes written,
// duration, the request id the pipeline assigned (X-Request-Id) and the
// peer address.
func accessLog(next http.Handler, log zerolog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		log.Info().Str("type", "access").
			Str("request_id", w.Header().Get("X-Request-Id")).
			Str("method", r.Method).Str("path", r.URL.Path).
			Int("status", status).Int64("bytes", rec.bytes).
			Float64("duration_ms", float64(time.Since(start).Microseconds())/1000).
			Str("remote", r.RemoteAddr).Msg("http")
	})
}

// statusRecorder remembers the status and counts the bytes of a response,
// passing flushes and hijacks through (event streams need Flush).
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Flush implements http.Flusher.
func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack implements http.Hijacker.
func (s *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h, ok := s.ResponseWriter.(http.Hijacker); ok {
		return h.Hijack()
	}
	return nil, nil, errors.New("mcp: the response writer cannot be hijacked")
}

// Unwrap lets http.ResponseController reach the underlying writer
// (read deadlines, full duplex).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
