package redistest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// LoseMode is how a Proxy loses a script's reply.
type LoseMode int

const (
	// CloseConnection closes the client's connection instead of delivering
	// the reply: the client reads EOF.
	CloseConnection LoseMode = iota + 1
	// WithholdReply never delivers the reply and keeps the connection open:
	// the client's read times out.
	WithholdReply
)

// String names the mode for test names.
func (m LoseMode) String() string {
	switch m {
	case CloseConnection:
		return "connection closed"
	case WithholdReply:
		return "reply withheld past the read timeout"
	}
	return "LoseMode(" + strconv.Itoa(int(m)) + ")"
}

// Proxy is a TCP proxy on a loopback port in front of a redis-server. Armed
// with LoseNextScriptReply, it lets the next script call (EVAL, EVALSHA or
// their _RO forms) reach Redis, waits until Redis has run it and answered,
// and then loses that answer the way a dropped connection or a read timeout
// does. A client that retries the call sends the script a second time.
// Error replies (NOSCRIPT, say) are delivered and leave the proxy armed, so
// the reply lost is always that of a script Redis ran.
type Proxy struct {
	t      testing.TB
	target string
	l      net.Listener

	mu       sync.Mutex
	armed    LoseMode
	commands int
	scripts  int
	lost     int
	conns    map[net.Conn]struct{}
	closed   bool
	wg       sync.WaitGroup
}

// StartProxy listens on a free loopback port and forwards every connection
// to target (host:port); it is closed when the test ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest proxy: listen: %v", err)
	}
	p := &Proxy{t: t, target: target, l: l, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.l.Addr().String() }

// URL is the redis:// URL of the proxy.
func (p *Proxy) URL() string { return "redis://" + p.Addr() + "/0" }

// LoseNextScriptReply arms the proxy: the reply to the next script call
// that Redis runs is lost as m says. It disarms once a reply was lost.
func (p *Proxy) LoseNextScriptReply(m LoseMode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed = m
}

// Commands counts the commands forwarded to Redis: a client's round
// trips, connection setup (HELLO, say) included.
func (p *Proxy) Commands() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.commands
}

// Scripts counts the script calls forwarded to Redis (a retried call
// counts twice).
func (p *Proxy) Scripts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.scripts
}

// Lost counts the replies lost.
func (p *Proxy) Lost() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lost
}

// Close stops accepting, closes every connection and waits for the
// forwarding goroutines to end. Closing twice does nothing.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	_ = p.l.Close()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			p.t.Logf("redistest proxy: dial %s: %v", p.target, err)
			_ = c.Close()
			continue
		}
		if !p.track(c, s) {
			return
		}
		pr := &pair{p: p, client: c, server: s}
		p.wg.Add(2)
		go pr.fromClient()
		go pr.fromServer()
	}
}

// track registers a connection pair, or closes it when the proxy is closed.
func (p *Proxy) track(c, s net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = c.Close()
		_ = s.Close()
		return false
	}
	p.conns[c], p.conns[s] = struct{}{}, struct{}{}
	return true
}

// pair is one client connection and its connection to Redis.
type pair struct {
	p              *Proxy
	client, server net.Conn

	mu      sync.Mutex
	waiting LoseMode // the reply Redis sends next is to be lost this way
	losing  bool     // a reply was lost: drop whatever Redis sends
}

// fromClient forwards commands to Redis one at a time, arming the pair
// when the command is a script call and the proxy is armed.
func (pr *pair) fromClient() {
	defer pr.p.wg.Done()
	defer pr.server.Close()
	rd := bufio.NewReader(pr.client)
	for {
		raw, name, err := readCommand(rd)
		if err != nil {
			return
		}
		pr.p.mu.Lock()
		pr.p.commands++
		if isScript(name) {
			pr.p.scripts++
			if m := pr.p.armed; m != 0 {
				pr.p.armed = 0
				pr.mu.Lock()
				pr.waiting = m
				pr.mu.Unlock()
			}
		}
		pr.p.mu.Unlock()
		if _, err := pr.server.Write(raw); err != nil {
			return
		}
	}
}

// fromServer forwards replies to the client, except the one to lose.
func (pr *pair) fromServer() {
	defer pr.p.wg.Done()
	defer pr.client.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := pr.server.Read(buf)
		if n > 0 && !pr.forward(buf[:n]) {
			return
		}
		if err != nil {
			return
		}
	}
}

// forward handles bytes from Redis; false means the client connection was
// closed on purpose.
func (pr *pair) forward(b []byte) bool {
	pr.mu.Lock()
	m, losing := pr.waiting, pr.losing
	if m != 0 {
		pr.waiting = 0
		if b[0] == '-' || b[0] == '!' {
			// An error: Redis ran nothing. Deliver it and stay armed.
			pr.mu.Unlock()
			pr.p.mu.Lock()
			if pr.p.armed == 0 {
				pr.p.armed = m
			}
			pr.p.mu.Unlock()
			_, err := pr.client.Write(b)
			return err == nil
		}
		pr.losing, losing = true, true
	}
	pr.mu.Unlock()
	if m != 0 {
		pr.p.mu.Lock()
		pr.p.lost++
		pr.p.mu.Unlock()
		if m == CloseConnection {
			_ = pr.client.Close()
			_ = pr.server.Close()
			return false
		}
	}
	if losing {
		return true // withheld: the client times out and hangs up
	}
	_, err := pr.client.Write(b)
	return err == nil
}

// isScript reports whether a command runs a Lua script.
func isScript(name string) bool {
	switch strings.ToUpper(name) {
	case "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO":
		return true
	}
	return false
}

// readCommand reads one command a client sends: a RESP array of bulk
// strings, or an inline command line. It returns the command's bytes as
// read and its name.
func readCommand(rd *bufio.Reader) (raw []byte, name string, err error) {
	var buf bytes.Buffer
	line, err := readLine(rd, &buf)
	if err != nil {
		return nil, "", err
	}
	if len(line) == 0 || line[0] != '*' {
		name, _, _ = strings.Cut(strings.TrimSpace(line), " ")
		return buf.Bytes(), name, nil
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil {
		return nil, "", fmt.Errorf("redistest proxy: bad array header %q", line)
	}
	for i := range n {
		hdr, err := readLine(rd, &buf)
		if err != nil {
			return nil, "", err
		}
		if len(hdr) == 0 || hdr[0] != '$' {
			return nil, "", fmt.Errorf("redistest proxy: bad bulk header %q", hdr)
		}
		size, err := strconv.Atoi(hdr[1:])
		if err != nil || size < 0 {
			return nil, "", fmt.Errorf("redistest proxy: bad bulk length %q", hdr)
		}
		start := buf.Len()
		if _, err := io.CopyN(&buf, rd, int64(size)+2); err != nil {
			return nil, "", err
		}
		if i == 0 {
			name = string(buf.Bytes()[start : start+size])
		}
	}
	return buf.Bytes(), name, nil
}

// readLine reads through the next CRLF, appending the bytes to buf, and
// returns the line without it.
func readLine(rd *bufio.Reader, buf *bytes.Buffer) (string, error) {
	line, err := rd.ReadString('\n')
	buf.WriteString(line)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}
