package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatewaystack/gatewaystack/audit"
	"github.com/gatewaystack/gatewaystack/demo"
)

// auditKeys are the files of a keyed audit set-up, as an operator makes
// them: the chain key (openssl rand -base64 32), the checkpoint key pair
// (openssl genpkey -algorithm ed25519; openssl pkey -pubout), and two
// configurations: the gateway's and a verifier's, which holds the chain key
// and only the public checkpoint key.
type auditKeys struct {
	dir                       string
	chainKey                  []byte
	chainFile, privFile       string
	pubFile, verifierConfig   string
	priv                      ed25519.PrivateKey
	chainKeyText, privPEMText string
}

func newAuditKeys(t *testing.T) auditKeys {
	t.Helper()
	k := auditKeys{dir: t.TempDir(), chainKey: make([]byte, 32)}
	if _, err := rand.Read(k.chainKey); err != nil {
		t.Fatal(err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k.priv = priv
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pder, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	k.chainKeyText = base64.StdEncoding.EncodeToString(k.chainKey)
	k.privPEMText = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	k.chainFile = filepath.Join(k.dir, "chain.key")
	k.privFile = filepath.Join(k.dir, "checkpoint.pem")
	k.pubFile = filepath.Join(k.dir, "checkpoint.pub.pem")
	k.verifierConfig = filepath.Join(k.dir, "verify.yaml")
	for path, data := range map[string]string{
		k.chainFile:      k.chainKeyText + "\n",
		k.privFile:       k.privPEMText,
		k.pubFile:        string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder})),
		k.verifierConfig: fmt.Sprintf("audit:\n  chain_key_file: %q\n  checkpoint_public_key_files: [%q]\n", k.chainFile, k.pubFile),
	} {
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

// writeKeyedAudit writes n events through an Auditor with a keyed file
// sink (a checkpoint every 4 lines) and stdout captured in a file; it
// returns the chain's files, oldest first, and the stdout file.
func writeKeyedAudit(t *testing.T, k auditKeys, n int) (files []string, stdout string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	fs, err := audit.NewFileSink(audit.FileOptions{Path: path, MaxBytes: 1500, MaxFiles: 50, ChainKey: k.chainKey,
		CheckpointKey: k.priv, CheckpointEvery: 4, BatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	stdout = filepath.Join(dir, "stdout.jsonl")
	out, err := os.Create(stdout)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	ws, err := audit.NewWriterSink(audit.WriterOptions{Writer: out})
	if err != nil {
		t.Fatal(err)
	}
	a := audit.NewAuditor(audit.Options{}, fs, ws)
	for i := range n {
		a.Write(audit.Event{Time: time.Date(2026, 3, 1, 10, 0, i, 0, time.UTC), EventID: fmt.Sprintf("%016x", i),
			Subject: "alice", Tenant: "acme", Method: "tools/call", Tool: "notes__read_note", Decision: audit.Allow, Reason: "allowed", Status: 200})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return rotatedFiles(path), stdout
}

// rotatedFiles lists path's rotated files oldest first, then path.
func rotatedFiles(path string) []string {
	var files []string
	for i := 100; i >= 1; i-- {
		if p := fmt.Sprintf("%s.%d", path, i); fileExists(p) {
			files = append(files, p)
		}
	}
	return append(files, path)
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// copyInto copies files into a new directory, letting edit change the
// lines of the i-th.
func copyInto(t *testing.T, files []string, edit func(i int, lines []string) []string) []string {
	t.Helper()
	dir := t.TempDir()
	var out []string
	for i, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitAfter(string(data), "\n")
		lines = lines[:len(lines)-1] // after the final newline
		if edit != nil {
			lines = edit(i, lines)
		}
		p := filepath.Join(dir, filepath.Base(f))
		if err := os.WriteFile(p, []byte(strings.Join(lines, "")), 0o600); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// Invariant: audit links are keyed and checkpointed elsewhere; "audit
// verify --config F" proves edits, insertions, forged tails and, with
// --checkpoints, truncation, and refuses forged checkpoints.
func TestAuditVerifyKeyedCommand(t *testing.T) {
	t.Parallel()
	k := newAuditKeys(t)
	files, stdout := writeKeyedAudit(t, k, 20)
	if len(files) < 4 {
		t.Fatalf("want several rotated files, got %v", files)
	}
	last := len(files) - 1
	cut := copyInto(t, files, func(i int, l []string) []string {
		if i == last {
			return l[:len(l)-1]
		}
		return l
	})
	edited := copyInto(t, files, func(i int, l []string) []string {
		if i == last {
			l[len(l)-1] = strings.Replace(l[len(l)-1], `"subject":"alice"`, `"subject":"bob"`, 1)
		}
		return l
	})
	forgedTail := copyInto(t, files, func(i int, l []string) []string {
		if i != last {
			return l
		}
		prev := []byte(strings.TrimSuffix(l[len(l)-1], "\n"))
		rec, err := audit.ParseLine(prev)
		if err != nil {
			t.Fatal(err)
		}
		forged := audit.Event{Time: time.Now(), Subject: "mallory", Decision: audit.Allow}.
			MarshalLine(&audit.Link{Seq: rec.Seq + 1, PrevHash: sha256Hex(prev)})
		return append(l, string(forged))
	})
	// A checkpoint file with one checkpoint signed by another key.
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	forgedCps := filepath.Join(t.TempDir(), "forged.jsonl")
	{
		other := k
		other.priv = otherPriv
		_, otherOut := writeKeyedAudit(t, other, 4)
		data, _ := os.ReadFile(stdout)
		extra, _ := os.ReadFile(otherOut)
		if err := os.WriteFile(forgedCps, append(data, extra...), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	noPubs := writeFile(t, "nopubs.yaml", fmt.Sprintf("audit:\n  chain_key_file: %q\n", k.chainFile))
	withCfg := func(args ...string) []string {
		return append([]string{"--config", k.verifierConfig}, args...)
	}
	tests := []struct {
		name           string
		args           []string
		code           int
		stdout, stderr string
	}{
		{"intact, with checkpoints", withCfg(append([]string{"--checkpoints", stdout}, files...)...), 0,
			"ok: the keyed chain", ""},
		{"intact, without checkpoints", withCfg(files...), 0, "ok: the keyed chain", "lines cut off the end of the chain and deleted files cannot be detected"},
		{"a keyed chain without the key", files, 1, "", "pass --config"},
		{"the last line edited", withCfg(edited...), 1, "TAMPERED: altered at " + edited[last], ""},
		{"a forged line appended with a plain SHA-256", withCfg(forgedTail...), 1, "TAMPERED: unkeyed at " + forgedTail[last], ""},
		{"the last line cut, without checkpoints", withCfg(cut...), 0, "ok: the keyed chain", ""},
		{"the last line cut, with checkpoints", withCfg(append([]string{"--checkpoints", stdout}, cut...)...), 1, "TAMPERED: truncated at " + cut[last], ""},
		{"the newest file deleted", withCfg(append([]string{"--checkpoints", stdout}, files[:last]...)...), 1, "TAMPERED: truncated", ""},
		{"the oldest file deleted", withCfg(files[1:]...), 1, "TAMPERED: start_missing at " + files[1] + ":1", ""},
		{"the oldest file rotated away, --allow-partial", withCfg(append([]string{"--allow-partial", "--checkpoints", stdout}, files[1:]...)...), 0,
			"ok: the keyed chain", ""},
		{"a checkpoint signed with another key", withCfg(append([]string{"--checkpoints", forgedCps}, files...)...), 1, "REFUSED: checkpoint at " + forgedCps, "checkpoint was refused"},
		{"checkpoints without public keys", append([]string{"--config", noPubs, "--checkpoints", stdout}, files...), 2, "", "checkpoint public keys"},
		{"an unkeyed chain without a key: a warning", auditChain, 0, "ok: the chain is intact", "an unkeyed chain proves nothing"},
		{"an unkeyed chain with a key", withCfg(auditChain...), 1, "TAMPERED: unkeyed", ""},
	}
	for _, tc := range tests {
		code, out, errOut := runAudit(t, append([]string{"verify"}, tc.args...)...)
		if code != tc.code || !strings.Contains(out, tc.stdout) || !strings.Contains(errOut, tc.stderr) {
			t.Errorf("%s: exit %d (want %d)\nstdout: %s\nstderr: %s\nwant stdout to contain %q, stderr %q", tc.name, code, tc.code, out, errOut, tc.stdout, tc.stderr)
		}
		for _, secret := range []string{k.chainKeyText, string(k.chainKey), k.privPEMText} {
			if strings.Contains(out+errOut, secret) {
				t.Errorf("%s: the output holds a key", tc.name)
			}
		}
	}
}

// sha256Hex is the hex SHA-256 of b, as an unkeyed chain links lines.
func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// webhookRecorder records what reaches it: the bodies and headers.
type webhookRecorder struct {
	mu      sync.Mutex
	bodies  [][]byte
	headers []http.Header
}

func (w *webhookRecorder) record(r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.bodies = append(w.bodies, body)
	w.headers = append(w.headers, r.Header.Clone())
}

func (w *webhookRecorder) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.bodies)
}

// The real gateway, end to end: a keyed audit file with checkpoints on
// stdout and at the webhook, verified with "gatewaystack audit verify"
// from a verifier's configuration, and a webhook that answers 307 to
// another server, which never receives the batch or its X-Api-Key.
func TestKeyedAuditEndToEnd(t *testing.T) {
	t.Parallel()
	k := newAuditKeys(t)
	notes := httptest.NewServer(demo.NewNotes(demo.NotesOptions{}).Handler())
	t.Cleanup(notes.Close)
	thief := &webhookRecorder{}
	thiefSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { thief.record(r) }))
	t.Cleanup(thiefSrv.Close)
	siem := &webhookRecorder{}
	var redirected int
	siemSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		siem.mu.Lock()
		first := redirected < 2
		if first {
			redirected++
		}
		siem.mu.Unlock()
		if first {
			http.Redirect(w, r, thiefSrv.URL+"/collect", http.StatusTemporaryRedirect)
			return
		}
		siem.record(r)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(siemSrv.Close)
	dir := t.TempDir()
	auditFile := filepath.Join(dir, "audit.jsonl")
	const apiKey = "siem-api-key-0123456789"

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
  loop_guard: { max_repeats: 0 }
audit:
  file: { path: %q, max_bytes: 4096 }
  chain_key_file: %q
  checkpoint_every: 5
  webhook: { url: %q, headers: { X-Api-Key: "${SIEM_KEY}" }, flush_interval: 20ms, max_backoff: 50ms }
log:
  level: warn
  access: false
`, auditFile, k.chainFile, siemSrv.URL+"/hook")
		env := childEnv("SIEM_KEY="+apiKey, "GATEWAYSTACK_AUDIT_CHECKPOINT_KEY="+k.privPEMText)
		if gw, ok = tryStart(t, env, baseURL(ports[0])+"/health", "serve", "--config", writeFile(t, "gw.yaml", cfg)); !ok {
			_ = issuer.cmd.Process.Kill()
		}
	}
	tok := mint(t, baseURL(ports[1]), "alice", "tool:read", "acme")
	client := &http.Client{Timeout: 20 * time.Second}
	const calls = 12
	for range calls {
		if _, code, body, err := statelessCall(client, baseURL(ports[0])+"/mcp", tok, "notes__list_notes"); err != nil || code != http.StatusOK {
			t.Fatalf("call: %d %s %v", code, body, err)
		}
	}
	waitFor(t, gw, 20*time.Second, "audit events at the webhook", func() bool { return siem.count() > 0 || thief.count() > 0 })
	// The webhook: redirected twice, never followed.
	if n := thief.count(); n != 0 {
		thief.mu.Lock()
		h := thief.headers
		thief.mu.Unlock()
		t.Fatalf("the redirect target received %d request(s); headers %v", n, h)
	}
	if code, _ := gw.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d", code)
	}
	assertClean(t, gw)
	hook := filepath.Join(dir, "webhook.jsonl")
	var hookLines []byte
	events := 0
	siem.mu.Lock()
	for i, b := range siem.bodies {
		if siem.headers[i].Get("X-Api-Key") != apiKey {
			t.Errorf("POST %d without the API key", i)
		}
		var batch []map[string]any
		if err := json.Unmarshal(b, &batch); err != nil {
			t.Errorf("POST %d: %v", i, err)
		}
		for _, e := range batch {
			if e["type"] == "audit" {
				events++
			}
		}
		hookLines = append(append(hookLines, b...), '\n')
	}
	siem.mu.Unlock()
	if events != calls {
		t.Errorf("the webhook got %d events, want %d", events, calls)
	}
	if err := os.WriteFile(hook, hookLines, 0o600); err != nil {
		t.Fatal(err)
	}
	stdout := filepath.Join(dir, "stdout.jsonl")
	if err := os.WriteFile(stdout, []byte(gw.stdout.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(gw.stdout.String(), `"type":"audit_checkpoint"`); n < 2 {
		t.Errorf("stdout has %d checkpoints, want one every 5 lines and one at shutdown", n)
	}

	files := rotatedFiles(auditFile)
	for _, cps := range []string{stdout, hook} {
		r := runCmd(t, childEnv(), append([]string{"audit", "verify", "--config", k.verifierConfig, "--checkpoints", cps}, files...)...)
		if r.code != 0 || !strings.Contains(r.stdout, "ok: the keyed chain") || !strings.Contains(r.stdout, fmt.Sprintf("the newest, at seq %d", calls)) {
			t.Errorf("verify against %s: exit %d\n%s%s", filepath.Base(cps), r.code, r.stdout, r.stderr)
		}
	}
	// The last two lines cut off: only the checkpoints show it.
	data, err := os.ReadFile(auditFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	if err := os.WriteFile(auditFile, []byte(strings.Join(lines[:len(lines)-3], "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runCmd(t, childEnv(), append([]string{"audit", "verify", "--config", k.verifierConfig}, files...)...); r.code != 0 {
		t.Errorf("a cut chain without checkpoints: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r := runCmd(t, childEnv(), append([]string{"audit", "verify", "--config", k.verifierConfig, "--checkpoints", hook}, files...)...)
	if r.code != 1 || !strings.Contains(r.stdout, "TAMPERED: truncated") {
		t.Errorf("a cut chain with checkpoints: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for name, out := range map[string]string{"stdout": gw.stdout.String(), "stderr": gw.stderr.String(), "verify": r.stdout + r.stderr} {
		for _, secret := range []string{k.chainKeyText, k.privPEMText, apiKey} {
			if strings.Contains(out, secret) {
				t.Errorf("the gateway's %s holds a secret", name)
			}
		}
	}
	// validate warns when the file sink has no chain key.
	v := runCmd(t, childEnv(), "validate", "--config", writeFile(t, "unkeyed.yaml", gatewayConfig(ports[0], ports[1], notes.URL+"/mcp")+
		fmt.Sprintf("audit:\n  file: { path: %q }\n", filepath.Join(dir, "other.jsonl"))))
	if v.code != 0 || !strings.Contains(v.stderr, "warning: audit.file: the hash chain has no key") {
		t.Errorf("validate of an unkeyed file sink: exit %d\n%s%s", v.code, v.stdout, v.stderr)
	}
}

// The real gateway sends its webhook through the outbound client: the
// cloud metadata address is refused in the dialer.
func TestAuditWebhookRefusesTheMetadataAddressEndToEnd(t *testing.T) {
	t.Parallel()
	notes := httptest.NewServer(demo.NewNotes(demo.NotesOptions{}).Handler())
	t.Cleanup(notes.Close)
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
		cfg := gatewayConfig(ports[0], ports[1], notes.URL+"/mcp") + `audit:
  webhook: { url: "https://169.254.169.254/latest/hook", flush_interval: 20ms, timeout: 2s }
log:
  level: warn
  access: false
`
		if gw, ok = tryStart(t, childEnv(), baseURL(ports[0])+"/health", "serve", "--config", writeFile(t, "gw.yaml", cfg)); !ok {
			_ = issuer.cmd.Process.Kill()
		}
	}
	tok := mint(t, baseURL(ports[1]), "alice", "tool:read", "acme")
	client := &http.Client{Timeout: 20 * time.Second}
	if _, code, body, err := statelessCall(client, baseURL(ports[0])+"/mcp", tok, "notes__list_notes"); err != nil || code != http.StatusOK {
		t.Fatalf("call: %d %s %v", code, body, err)
	}
	waitFor(t, gw, 20*time.Second, "the webhook's failure in the log", func() bool {
		return strings.Contains(gw.stderr.String(), "audit sink failing")
	})
	if !strings.Contains(gw.stderr.String(), "refusing to connect to 169.254.169.254: link-local (cloud metadata) address") {
		t.Errorf("the webhook's error does not say the address was refused:\n%s", gw.stderr.String())
	}
	_ = gw.cmd.Process.Kill()
}
