package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatewaystack/gatewaystack/demo"
)

// eventReceiver is a SIEM stand-in: it records the audit events POSTed to
// it (JSON arrays), answering slowly so that events queue up.
type eventReceiver struct {
	mu     sync.Mutex
	events []map[string]any
	posts  atomic.Int64
}

func (e *eventReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var batch []map[string]any
	if err := json.NewDecoder(r.Body).Decode(&batch); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	time.Sleep(20 * time.Millisecond)
	e.posts.Add(1)
	e.mu.Lock()
	e.events = append(e.events, batch...)
	e.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (e *eventReceiver) requestIDs() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]int{}
	for _, ev := range e.events {
		out[str(ev, "request_id")]++
	}
	return out
}

// SIGTERM during load loses no audit event: every answered request's event
// reaches the webhook, the hash-chained file and stdout exactly once, the
// in-flight calls finish, and the file's chain verifies.
func TestSIGTERMDuringLoadLosesNoAuditEvent(t *testing.T) {
	t.Parallel()
	recv := &eventReceiver{}
	siem := httptest.NewServer(recv)
	t.Cleanup(siem.Close)
	notes := httptest.NewServer(demo.NewNotes(demo.NotesOptions{}).Handler())
	t.Cleanup(notes.Close)
	dir := t.TempDir()
	auditFile := filepath.Join(dir, "audit.jsonl")

	var gw *proc
	var ports []int
	for attempt := 0; gw == nil; attempt++ {
		if attempt > 1 {
			t.Fatal("ports taken twice in a row")
		}
		ports = freePorts(t, 2)
		issuer, ok := tryStart(t, childEnv(), baseURL(ports[1])+"/health", "issuer", "--addr", addr(ports[1]), "--audience", baseURL(ports[0])+"/mcp")
		if !ok {
			continue
		}
		cfg := gatewayConfig(ports[0], ports[1], notes.URL+"/mcp") + fmt.Sprintf(`limits:
  per_subject: { requests: 0 }
  per_tenant: { requests: 0 }
  loop_guard: { max_repeats: 0 }
audit:
  file: { path: %q }
  webhook: { url: %q, batch_size: 20, flush_interval: 50ms }
log:
  level: warn
  access: false
`, auditFile, siem.URL)
		if gw, ok = tryStart(t, childEnv(), baseURL(ports[0])+"/health", "serve", "--config", writeFile(t, "gw.yaml", cfg)); !ok {
			_ = issuer.cmd.Process.Kill()
		}
	}
	tok := mint(t, baseURL(ports[1]), "alice", "tool:read", "acme")
	url := baseURL(ports[0]) + "/mcp"
	client := &http.Client{Timeout: 20 * time.Second}

	// 8 workers call as fast as they can, at most 250 calls each; SIGTERM
	// arrives once 200 calls were answered.
	var answered sync.Map // request id → status
	var count atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 250 {
				select {
				case <-stop:
					return
				default:
				}
				id, code, _, err := statelessCall(client, url, tok, "notes__list_notes")
				if err != nil {
					return // the listener closed: shutdown
				}
				answered.Store(id, code)
				count.Add(1)
			}
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for count.Load() < 200 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	code, took := gw.stop(t, syscall.SIGTERM)
	close(stop)
	wg.Wait()
	if code != 0 {
		t.Errorf("exit code after SIGTERM = %d", code)
	}

	var ids []string
	answered.Range(func(k, v any) bool {
		ids = append(ids, k.(string))
		if v.(int) != http.StatusOK {
			t.Errorf("request %s answered %d during shutdown", k, v)
		}
		return true
	})
	got := recv.requestIDs()
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("request %s: %d events at the webhook, want 1", id, got[id])
		}
	}
	stdoutIDs := map[string]int{}
	for _, l := range auditLines(t, gw.stdout.String()) {
		stdoutIDs[str(l, "request_id")]++
	}
	raw, err := os.ReadFile(auditFile)
	if err != nil {
		t.Fatal(err)
	}
	fileLines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	total := 0
	for _, n := range got {
		total += n
	}
	t.Logf("SIGTERM after %d answered calls; shutdown took %s; %d events at the webhook in %d POSTs, %d on stdout, %d in the file",
		len(ids), took.Round(time.Millisecond), total, recv.posts.Load(), len(auditLines(t, gw.stdout.String())), len(fileLines))
	if total != len(fileLines) || total != len(auditLines(t, gw.stdout.String())) {
		t.Errorf("events: webhook %d, file %d, stdout %d: every sink must hold every event", total, len(fileLines), len(auditLines(t, gw.stdout.String())))
	}
	for id, n := range got {
		if n != 1 || stdoutIDs[id] != 1 {
			t.Errorf("request %s: %d at the webhook, %d on stdout", id, n, stdoutIDs[id])
		}
	}
	if r := runCmd(t, childEnv(), "audit", "verify", auditFile); r.code != 0 {
		t.Errorf("audit verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
