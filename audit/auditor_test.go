package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// receiver is a real webhook endpoint on 127.0.0.1 that records the
// event ids of the batches it accepts. fail decides, per POST (numbered
// from 1), the status to answer with (0: accept).
type receiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	ids []string
	// posts counts every POST, accepted or not.
	posts   int
	headers []http.Header
}

func newReceiver(t *testing.T, fail func(n int, r *http.Request) int) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.mu.Lock()
		rc.posts++
		n := rc.posts
		rc.headers = append(rc.headers, r.Header.Clone())
		rc.mu.Unlock()
		if st := fail(n, r); st != 0 {
			w.WriteHeader(st)
			_, _ = io.WriteString(w, "upstream refused: "+strings.Repeat("x", 300)+" SECRET-BODY-TAIL")
			return
		}
		var batch []map[string]any
		if err := json.NewDecoder(r.Body).Decode(&batch); err != nil {
			http.Error(w, "bad batch: "+err.Error(), http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		for _, e := range batch {
			id, _ := e["event_id"].(string)
			rc.ids = append(rc.ids, id)
		}
		rc.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) received() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.ids...)
}

func eventN(i int) Event {
	return Event{Time: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond),
		EventID: fmt.Sprintf("%016x", i), Subject: "alice", Tenant: "acme", Tool: "notes__read_note",
		Method: "tools/call", Decision: Allow, Reason: "allowed", Status: 200, Latency: time.Millisecond}
}

func statsOf(t *testing.T, a *Auditor, name string) SinkStats {
	t.Helper()
	for _, s := range a.Stats() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no stats for %q", name)
	return SinkStats{}
}

func TestAuditorCloseDeliversEverything(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out, err := os.Create(filepath.Join(dir, "stdout.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	ws, err := NewWriterSink(WriterOptions{Writer: out})
	if err != nil {
		t.Fatal(err)
	}
	fsink, err := NewFileSink(FileOptions{Path: filepath.Join(dir, "audit.jsonl"), MaxBytes: 64 << 10, MaxFiles: 100})
	if err != nil {
		t.Fatal(err)
	}
	rc := newReceiver(t, func(int, *http.Request) int { return 0 })
	hook, err := NewWebhookSink(WebhookOptions{URL: rc.srv.URL, Client: loopback(), BatchSize: 50, FlushInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ring := NewRing(RingOptions{Size: 100})
	a := NewAuditor(Options{QueueSize: 5000}, ws, fsink, hook, ring)

	const writers, each = 8, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				a.Write(eventN(w*each + i))
			}
		})
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, s := range a.Stats() {
		if s.Delivered != writers*each || s.Dropped != 0 || s.Queued != 0 {
			t.Errorf("%s: delivered %d dropped %d queued %d, want %d 0 0", s.Name, s.Delivered, s.Dropped, s.Queued, writers*each)
		}
	}
	if n := countLines(t, out.Name()); n != writers*each {
		t.Errorf("stdout file has %d lines, want %d", n, writers*each)
	}
	if got := len(rc.received()); got != writers*each {
		t.Errorf("webhook received %d events, want %d", got, writers*each)
	}
	if ring.Len() != 100 {
		t.Errorf("ring holds %d, want 100", ring.Len())
	}
	files, _ := filepath.Glob(filepath.Join(dir, "audit.jsonl*"))
	// Oldest first: audit.jsonl.N … audit.jsonl.1, audit.jsonl.
	var chain []string
	for i := len(files) - 1; i >= 1; i-- {
		chain = append(chain, filepath.Join(dir, fmt.Sprintf("audit.jsonl.%d", i)))
	}
	chain = append(chain, filepath.Join(dir, "audit.jsonl"))
	res, err := Verify(context.Background(), chain, VerifyOptions{})
	if err != nil || !res.OK() || res.Lines != writers*each || !res.Genesis || len(files) < 2 {
		t.Errorf("verify over %d files: %+v %v (problem %+v)", len(files), res, err, res.Problem)
	}
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAuditorQueueOverflowCountsDrops(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	rc := newReceiver(t, func(n int, r *http.Request) int {
		if n == 1 {
			arrived <- struct{}{}
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
		}
		return 0
	})
	hook, err := NewWebhookSink(WebhookOptions{URL: rc.srv.URL, Client: loopback(), BatchSize: 1, FlushInterval: time.Millisecond, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	a := NewAuditor(Options{QueueSize: 10}, hook)
	a.Write(eventN(0))
	select {
	case <-arrived: // the first POST is in flight, holding its batch of one
	case <-time.After(10 * time.Second):
		t.Fatal("the first POST never arrived")
	}
	for i := 1; i <= 30; i++ {
		a.Write(eventN(i))
	}
	s := statsOf(t, a, "webhook")
	if s.Dropped != 20 || s.Queued != 11 {
		t.Errorf("while blocked: dropped %d queued %d, want 20 and 11 (10 queued + 1 in flight)", s.Dropped, s.Queued)
	}
	close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	a.Write(eventN(99)) // after Close: dropped, counted
	s = statsOf(t, a, "webhook")
	if s.Delivered != 11 || s.Dropped != 21 {
		t.Errorf("after Close: delivered %d dropped %d, want 11 and 21", s.Delivered, s.Dropped)
	}
	got := rc.received()
	want := []string{eventN(0).EventID}
	for i := 1; i <= 10; i++ {
		want = append(want, eventN(i).EventID)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("received %v, want %v", got, want)
	}
}

func TestAuditorCloseDeadlineCountsUndelivered(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(int, *http.Request) int { return http.StatusServiceUnavailable })
	hook, err := NewWebhookSink(WebhookOptions{URL: rc.srv.URL, Client: loopback(), BatchSize: 2, FlushInterval: time.Millisecond,
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	a := NewAuditor(Options{}, hook)
	for i := range 5 {
		a.Write(eventN(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = a.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "5 event(s) not delivered") || !strings.Contains(err.Error(), "status 503") {
		t.Errorf("Close error %v, want 5 undelivered events and the last error", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Close took %v after its deadline", el)
	}
	s := statsOf(t, a, "webhook")
	if s.Delivered != 0 || s.Dropped != 5 || s.Failed < 2 || s.Queued != 0 || s.LastErrorTime.IsZero() {
		t.Errorf("stats %+v, want 0 delivered, 5 dropped, several failures", s)
	}
	if len(rc.received()) != 0 {
		t.Errorf("a failing receiver recorded events")
	}
}

// BenchmarkAuditorWrite measures the caller's cost of one event with four
// destinations: one copy of the event shared by the queues, no encoding.
func BenchmarkAuditorWrite(b *testing.B) {
	rings := []Destination{NewRing(RingOptions{Name: "a"}), NewRing(RingOptions{Name: "b"}),
		NewRing(RingOptions{Name: "c"}), NewRing(RingOptions{Name: "d"})}
	a := NewAuditor(Options{QueueSize: 1 << 16}, rings...)
	e := eventN(1)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		a.Write(e)
	}
	b.StopTimer()
	if err := a.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
}
