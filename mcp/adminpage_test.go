package mcp_test

// The admin page (mcp/adminpage/index.html) in a real headless Chromium,
// driven over the DevTools protocol by chromedp, against a real gateway.
// Chromium comes from Debian's package (make chromium-tools); without it
// the test skips, unless GATEWAYSTACK_REQUIRE_CHROMIUM=1.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/gatewaystack/gatewaystack/config"
	gsmcp "github.com/gatewaystack/gatewaystack/mcp"
)

// chromiumPath finds the browser: $GATEWAYSTACK_CHROMIUM, /usr/bin/chromium
// or chromium on PATH.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("GATEWAYSTACK_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("GATEWAYSTACK_CHROMIUM=%s: %v", p, err)
		}
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("GATEWAYSTACK_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("GATEWAYSTACK_REQUIRE_CHROMIUM=1 but no Chromium found (set GATEWAYSTACK_CHROMIUM or run make chromium-tools)")
	}
	t.Skip("no Chromium (set GATEWAYSTACK_CHROMIUM or run make chromium-tools)")
	return ""
}

// browserTab is one tab of a fresh headless Chromium, with what the page
// did that a test must never see: JavaScript dialogs and uncaught errors.
type browserTab struct {
	ctx context.Context

	mu         sync.Mutex
	dialogs    []string
	exceptions []string
}

// newBrowserTab starts Chromium with a fresh profile. The whole browser
// lives at most two minutes; each step is bounded on its own too.
func newBrowserTab(t *testing.T) *browserTab {
	t.Helper()
	exe := chromiumPath(t)
	// The profile, the browser's temporary files (its singleton socket goes
	// to TMPDIR) and its XDG config and cache (crash-report settings, dconf)
	// all live in the test's temporary directory: nothing in $HOME or /tmp.
	tmp := t.TempDir()
	life, cancelLife := context.WithTimeout(context.Background(), 2*time.Minute)
	actx, cancelAlloc := chromedp.NewExecAllocator(life,
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(filepath.Join(tmp, "profile")),
		chromedp.Env("TMPDIR="+tmp, "XDG_CONFIG_HOME="+filepath.Join(tmp, "config"), "XDG_CACHE_HOME="+filepath.Join(tmp, "cache")),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("password-store", "basic"),
	)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		cancelLife()
	})
	b := &browserTab{ctx: ctx}
	// The first Run starts the browser; it is bounded by life.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium %s: %v", exe, err)
	}
	err := chromedp.Listen(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch ev := ev.(type) {
		case *page.EventJavascriptDialogOpening:
			b.dialogs = append(b.dialogs, string(ev.Type)+": "+ev.Message)
		case *runtime.EventExceptionThrown:
			msg := ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				msg += " " + ev.ExceptionDetails.Exception.Description
			}
			b.exceptions = append(b.exceptions, msg)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if len(b.dialogs) > 0 {
			t.Errorf("the page opened JavaScript dialogs: %q", b.dialogs)
		}
		if len(b.exceptions) > 0 {
			t.Errorf("the page threw: %q", b.exceptions)
		}
	})
	return b
}

// do runs steps, bounded.
func (b *browserTab) do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v\npage text:\n%s", what, err, b.text())
	}
}

// eval evaluates a JavaScript expression and decodes its value into T.
func evalJS[T any](t *testing.T, b *browserTab, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript expression until it is truthy (at most 15 s).
func (b *browserTab) waitFor(t *testing.T, what, expr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[json.RawMessage](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second)))
	if err != nil {
		t.Fatalf("waiting for %s: %v\npage text:\n%s", what, err, b.text())
	}
}

// text is the page's visible text, for failure messages.
func (b *browserTab) text() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return s
}

// auditRows reads the audit table as the page shows it.
const auditRowsJS = `Array.from(document.querySelectorAll('#audit-body tr[data-testid="audit-row"]')).map(function (tr) {
	var o = {};
	tr.querySelectorAll('td[data-col]').forEach(function (td) { o[td.getAttribute('data-col')] = td.textContent; });
	return o;
})`

type pageAuditRow struct {
	Subject, Tenant, Method, Target, Decision, Reason, Status string
}

func TestAdminPageInBrowser(t *testing.T) {
	t.Parallel()
	b := newBrowserTab(t)
	g := newGateway(t, gatewayOptions{configure: func(c *config.Config) { c.Admin.Scope = adminScope }})

	// Traffic in tenant acme: alice allowed, bob denied on a tool with no
	// policy entry (hidden), and a subject that is an HTML payload.
	const xss = `<img src=x onerror=alert(1)>`
	g.modernCall(t, g.minter.token("alice", baselineScope), "rec__echo", map[string]any{"text": "hi"}).result(t)
	if r := g.modernCall(t, g.minter.token("bob", baselineScope), "rec__unlisted", nil); r.StatusCode == http.StatusOK && r.rpc(t).Error == nil {
		t.Fatalf("bob's call of a hidden tool succeeded: %s", r.body)
	}
	g.modernCall(t, g.minter.token(xss, baselineScope), "rec__echo", map[string]any{"text": "x"}).result(t)

	// The operator's tokens are of another tenant, so that the page's own
	// (audited) admin requests do not change acme's counts.
	opsToken := func(sub, scope string) string {
		c := g.minter.claims(sub, scope)
		c["org_id"] = "ops"
		return g.minter.sign(c)
	}
	noScope := opsToken("carol", baselineScope)
	admin := opsToken("ops-admin", baselineScope+" "+adminScope)

	b.do(t, "open the admin page", chromedp.Navigate(g.URL+gsmcp.AdminPagePath), chromedp.WaitVisible(chromedp.ID("token-input")))
	if v := evalJS[bool](t, b, `document.getElementById("dashboard").hidden`); !v {
		t.Fatal("the dashboard shows before any token was given")
	}

	// A token that is not a token: the gateway's 401, in words.
	b.do(t, "submit a malformed token", chromedp.SendKeys(chromedp.ID("token-input"), "not-a-token"), chromedp.Click(chromedp.ID("connect-btn")))
	b.waitFor(t, "the invalid-token message", `(function () { var m = document.getElementById("auth-message");
		return !m.hidden && m.textContent.indexOf("did not accept this token") >= 0; })()`)

	// A valid token without the admin scope: the scope comes from the 403's
	// WWW-Authenticate.
	b.do(t, "submit a token without the admin scope", chromedp.SendKeys(chromedp.ID("token-input"), noScope), chromedp.Click(chromedp.ID("connect-btn")))
	b.waitFor(t, "the missing-scope message", `(function () { var m = document.getElementById("auth-message");
		return !m.hidden && m.textContent.indexOf("This token lacks the `+adminScope+` scope") >= 0; })()`)
	if v := evalJS[bool](t, b, `document.getElementById("dashboard").hidden && sessionStorage.length === 0`); !v {
		t.Fatal("a refused token left the dashboard shown or was kept in sessionStorage")
	}

	// The admin token.
	b.do(t, "connect with the admin token", chromedp.SetValue(chromedp.ID("token-input"), admin), chromedp.Click(chromedp.ID("connect-btn")))
	b.waitFor(t, "the dashboard", `!document.getElementById("dashboard").hidden && document.getElementById("health-version").textContent === "test"`)
	if msg := evalJS[string](t, b, `document.getElementById("auth-message").hidden ? "" : document.getElementById("auth-message").textContent`); msg != "" {
		t.Errorf("auth message still shown after connecting: %q", msg)
	}

	// Health mirrors the overview the API gives for the same gateway.
	b.waitFor(t, "the ready state", `document.getElementById("health-ready").textContent === "Ready"`)
	if s := evalJS[string](t, b, `document.getElementById("health-jwks").textContent + "|" + document.getElementById("health-store").textContent`); !strings.HasPrefix(s, "ready|memory") {
		t.Errorf("health shows %q, want JWKS ready and the memory store", s)
	}

	// Upstreams: rec with its tools.
	b.waitFor(t, "upstream rec with rec__echo", `Array.from(document.querySelectorAll('#upstreams-body tr[data-testid="upstream-row"]')).some(function (tr) {
		return tr.querySelector('[data-col="name"]').textContent === "rec" &&
			tr.querySelector('[data-col="status"]').textContent === "up" &&
			Array.from(tr.querySelectorAll('[data-testid="tool"]')).some(function (s) { return s.textContent === "rec__echo"; });
	})`)

	// The audit table: alice's allowed call and bob's denial.
	b.waitFor(t, "alice's call in the audit table", `(`+auditRowsJS+`).some(function (r) {
		return r.subject === "alice" && r.target === "rec__echo" && r.decision === "allow" && r.status === "200" && r.tenant === "acme";
	})`)
	rows := evalJS[[]pageAuditRow](t, b, auditRowsJS)
	var decisions []string
	for _, r := range rows {
		decisions = append(decisions, r.Decision)
		if strings.HasPrefix(r.Method, "admin/") {
			t.Errorf("admin API request shown by default: %+v", r)
		}
	}
	if !strings.Contains(strings.Join(decisions, ","), "deny") {
		t.Fatalf("no deny row before filtering: %+v", rows)
	}

	// The HTML payload is text: the cell holds it literally and no element
	// was made from it (and the listener saw no alert).
	b.waitFor(t, "the HTML subject as text", `(`+auditRowsJS+`).some(function (r) { return r.subject === `+jsString(xss)+`; })`)
	if n := evalJS[int](t, b, `document.querySelectorAll("img").length + document.querySelectorAll("#audit-body *:not(tr):not(td):not(span)").length`); n != 0 {
		t.Errorf("%d unexpected elements in the page: the subject was parsed as HTML", n)
	}

	// Filtering by decision goes to the API (decision=deny): only deny rows.
	b.do(t, "filter by deny", chromedp.SetValue(chromedp.ID("filter-decision"), "deny"), chromedp.Click(chromedp.ID("filter-apply")))
	b.waitFor(t, "only deny rows", `(function () { var rows = (`+auditRowsJS+`);
		return rows.length > 0 && rows.every(function (r) { return r.decision === "deny"; }) &&
			rows.some(function (r) { return r.subject === "bob" && r.target === "rec__unlisted"; }); })()`)
	b.do(t, "clear the filter", chromedp.Click(chromedp.ID("filter-clear")))
	b.waitFor(t, "allow rows again", `(`+auditRowsJS+`).some(function (r) { return r.decision === "allow"; })`)

	// Usage today: acme made three calls, two allowed, one denied.
	b.waitFor(t, "acme's usage today", `Array.from(document.querySelectorAll('#usage-body tr[data-testid="usage-row"]')).some(function (tr) {
		var c = function (n) { return tr.querySelector('[data-col="' + n + '"]').textContent; };
		return c("tenant") === "acme" && c("calls") === "3" && c("allowed") === "2" && c("denied") === "1" && c("limited") === "0" && c("errors") === "0";
	})`)

	// The page refreshes by itself (every 5 s): a new call shows up in the
	// audit table and in acme's counts without a click.
	g.modernCall(t, g.minter.token("dave", baselineScope), "rec__echo", map[string]any{"text": "later"}).result(t)
	b.waitFor(t, "dave's call after an automatic refresh", `(`+auditRowsJS+`).some(function (r) { return r.subject === "dave"; }) &&
		Array.from(document.querySelectorAll('#usage-body tr[data-testid="usage-row"]')).some(function (tr) {
			return tr.querySelector('[data-col="tenant"]').textContent === "acme" && tr.querySelector('[data-col="calls"]').textContent === "4";
		})`)

	// The token is in no URL, cookie or localStorage; it is in this tab's
	// sessionStorage, so a reload reconnects without asking.
	where := evalJS[string](t, b, `location.href + "|" + document.cookie + "|" + JSON.stringify(localStorage) + "|" + performance.getEntriesByType("resource").map(function (e) { return e.name; }).join(" ")`)
	if strings.Contains(where, admin) || strings.Contains(where, noScope) {
		t.Errorf("a token is in the URL, a cookie, localStorage or a fetched URL: %s", where)
	}
	b.do(t, "reload", chromedp.Reload())
	b.waitFor(t, "the dashboard after a reload", `!document.getElementById("dashboard").hidden && document.getElementById("health-version").textContent === "test"`)
	if loc := evalJS[string](t, b, `location.href`); loc != g.URL+gsmcp.AdminPagePath {
		t.Errorf("page URL %q, want %q", loc, g.URL+gsmcp.AdminPagePath)
	}

	// Without DemoAdminToken the demo button stays hidden.
	if v := evalJS[bool](t, b, `document.getElementById("demo-btn").hidden`); !v {
		t.Error("the demo token button shows on a gateway that hands out no demo token")
	}

	// Disconnect forgets the token.
	b.do(t, "disconnect", chromedp.Click(chromedp.ID("disconnect-btn")))
	b.waitFor(t, "the token form again", `document.getElementById("dashboard").hidden && !document.getElementById("connect").hidden && sessionStorage.length === 0`)
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprint(err))
	}
	return string(b)
}
