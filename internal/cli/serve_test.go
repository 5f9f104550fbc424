package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spdymux/spdymux/internal/gateway"
)

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a running
// server.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestHelp(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		wantCode int
		wantOut  []string
	}{
		{[]string{"help"}, 0, []string{"serve", "spdymux <command>"}},
		{[]string{"-h"}, 0, []string{"serve"}},
		{[]string{"serve", "-h"}, 0, []string{
			"-listen address", "(default \"127.0.0.1:8443\")", "-listen-plain", "-cert", "-key", "-dir", "-backend",
			"-protocols", "(default \"h2,spdy/3.1,spdy/3,spdy/2\")", "h2c with prior knowledge",
			"-max-streams", "(default 100)", "-workers", "(default 1024)", "-window", "(default 65536)", "-notsent-lowat", "(default 16384)",
			"-plain-version", "(default \"3.1\")", "-access-log", "-log-level", "(default \"info\")",
			"-shutdown-timeout", "(default 10s)", "-backend-timeout", "(default 30s)",
			"-backend-max-conns", "(default 256)", "-backend-max-idle", "(default 64)",
			"GET /hello", "SIGINT",
		}},
		{[]string{"help", "serve"}, 0, []string{"-listen"}},
	} {
		var stdout, stderr syncBuffer
		code := run(context.Background(), &env{stdout: &stdout, stderr: &stderr}, tc.args)
		if code != tc.wantCode || stderr.String() != "" {
			t.Errorf("%q: exit %d, stderr %q; want %d and nothing", tc.args, code, stderr.String(), tc.wantCode)
		}
		for _, w := range tc.wantOut {
			if !strings.Contains(stdout.String(), w) {
				t.Errorf("%q: stdout lacks %q", tc.args, w)
			}
		}
	}
}

// TestUserErrors checks that every mistake a user can make gets one line
// on stderr and the right exit code.
func TestUserErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	inUse := busy.Addr().String()
	free := "127.0.0.1:0"

	for _, tc := range []struct {
		args     []string
		wantCode int
		wantErr  string
	}{
		{nil, 2, ""},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"help", "frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"serve", "-bogus"}, 2, "flag provided but not defined: -bogus"},
		{[]string{"serve", "-workers", "many"}, 2, `invalid value "many" for flag -workers`},
		{[]string{"serve", "stray"}, 2, `unexpected argument "stray"`},
		{[]string{"serve", "-backend", "ftp://127.0.0.1:21"}, 2, "bad -backend"},
		{[]string{"serve", "-backend", "127.0.0.1:8080"}, 2, `bad -backend "127.0.0.1:8080": want a URL, such as http://127.0.0.1:8080`},
		{[]string{"serve", "-backend", "localhost:8080"}, 2, "such as http://localhost:8080"},
		{[]string{"serve", "-demo-endpoints"}, 2, "-demo-endpoints goes with -dir"},
		{[]string{"serve", "-log-format", "xml"}, 2, "bad -log-format"},
		{[]string{"serve", "-metrics", "9090"}, 2, "bad -metrics"},
		{[]string{"serve", "-proxy-protocol-from", "10.0.0.0/8"}, 2, "-proxy-protocol-from goes with -proxy-protocol"},
		{[]string{"serve", "-proxy-protocol", "-proxy-protocol-from", "10.0.0.0/33"}, 2, "bad -proxy-protocol-from"},
		{[]string{"serve", "-proxy-protocol", "-proxy-protocol-from", "balancer"}, 2, "bad -proxy-protocol-from"},
		{[]string{"version", "x"}, 2, "unexpected argument"},
		{[]string{"serve", "-backend", "http://"}, 2, "bad -backend"},
		{[]string{"serve", "-backend", "http://127.0.0.1:1", "-backend-timeout", "0s"}, 2, "bad -backend-timeout"},
		{[]string{"serve", "-backend", "http://127.0.0.1:1", "-backend-pipeline", "4", "-backend-pipeline-wait", "-1ms"}, 2, "bad -backend-pipeline-wait"},
		{[]string{"serve", "-backend", "http://127.0.0.1:1", "-dir", dir}, 2, "-dir and -backend"},
		{[]string{"serve", "-cert", garbage}, 2, "-cert and -key must be given together"},
		{[]string{"serve", "-max-streams", "0"}, 2, "bad -max-streams"},
		{[]string{"serve", "-workers", "0"}, 2, "bad -workers"},
		{[]string{"serve", "-window", "0"}, 2, "bad -window"},
		{[]string{"serve", "-window", "2147483648"}, 2, "bad -window"},
		{[]string{"serve", "-notsent-lowat", "0"}, 2, "bad -notsent-lowat"},
		{[]string{"serve", "-notsent-lowat", "-2"}, 2, "bad -notsent-lowat"},
		{[]string{"serve", "-plain-version", "2"}, 2, "bad -plain-version"},
		{[]string{"serve", "-protocols", "h3"}, 2, `bad -protocols "h3": "h3" is not one of h2, spdy/3.1, spdy/3, spdy/2`},
		{[]string{"serve", "-protocols", "h2,http/1.1"}, 2, `"http/1.1" is not one of`},
		{[]string{"serve", "-protocols", "h2,spdy/2,h2"}, 2, "h2 twice"},
		{[]string{"serve", "-protocols", " , "}, 2, "want one or more of h2, spdy/3.1, spdy/3, spdy/2"},
		{[]string{"serve", "-log-level", "loud"}, 2, "bad -log-level"},
		{[]string{"serve", "-shutdown-timeout", "-1s"}, 2, "bad -shutdown-timeout"},
		{[]string{"serve", "-listen", "nonsense"}, 2, "bad -listen"},
		{[]string{"serve", "-listen", ""}, 2, "nothing to listen on"},
		{[]string{"serve", "-listen", free, "-dir", filepath.Join(dir, "missing")}, 1, "-dir: stat"},
		{[]string{"serve", "-listen", free, "-dir", garbage}, 1, "is not a directory"},
		{[]string{"serve", "-listen", free, "-cert", filepath.Join(dir, "none.pem"), "-key", filepath.Join(dir, "none.key")}, 1, "-cert/-key: open"},
		{[]string{"serve", "-listen", free, "-cert", garbage, "-key", garbage}, 1, "-cert/-key: tls: failed to find any PEM data"},
		{[]string{"serve", "-listen", free, "-access-log", filepath.Join(dir, "no", "such", "log")}, 1, "-access-log"},
		{[]string{"serve", "-listen", inUse}, 1, "address already in use"},
		{[]string{"serve", "-listen", free, "-listen-plain", inUse}, 1, "-listen-plain: listen tcp " + inUse},
		{[]string{"serve", "-listen", free, "-metrics", inUse}, 1, "-metrics: listen tcp " + inUse},
		{[]string{"serve", "-log-format", "json", "-listen", inUse}, 1, `"level":"ERROR","msg":"-listen: listen tcp ` + inUse},
	} {
		// A cancelled context: should a case get past its error, it shuts
		// down at once instead of serving.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var stdout, stderr syncBuffer
		code := run(ctx, &env{stdout: &stdout, stderr: &stderr}, tc.args)
		msg := stderr.String()
		if code != tc.wantCode {
			t.Errorf("%q: exit %d; want %d (stderr %q)", tc.args, code, tc.wantCode, msg)
		}
		if tc.wantErr == "" {
			continue
		}
		if n := strings.Count(msg, "\n"); n != 1 || !strings.HasSuffix(msg, "\n") {
			t.Errorf("%q: stderr has %d lines; want one: %q", tc.args, n, msg)
		}
		// A usage error is one line of its own; the server's failures to
		// start are in its log, as an error record.
		prefix := "spdymux"
		if tc.wantCode == 1 && tc.args[0] == "serve" {
			prefix = "time="
			if strings.Contains(strings.Join(tc.args, " "), "json") {
				prefix = `{"time":`
			} else if !strings.Contains(msg, " level=ERROR ") {
				t.Errorf("%q: stderr %q; want a log record of level ERROR", tc.args, msg)
			}
		}
		if !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, tc.wantErr) {
			t.Errorf("%q: stderr %q; want \"%s ...%s...\"", tc.args, msg, prefix, tc.wantErr)
		}
	}
}

// logRecord is one line of slog's text format, its keys to values.
type logRecord map[string]string

// logRecords parses the lines of slog's text format in s; other lines are
// skipped.
func logRecords(s string) []logRecord {
	var recs []logRecord
	for line := range strings.Lines(s) {
		line = strings.TrimSuffix(line, "\n")
		if !strings.HasPrefix(line, "time=") {
			continue
		}
		r := logRecord{}
		for line != "" {
			k, rest, ok := strings.Cut(line, "=")
			if !ok {
				break
			}
			var v string
			if strings.HasPrefix(rest, `"`) {
				q, err := strconv.QuotedPrefix(rest)
				if err != nil {
					break
				}
				v, _ = strconv.Unquote(q)
				rest = rest[len(q):]
			} else {
				v, rest, _ = strings.Cut(rest, " ")
				rest = " " + rest
			}
			r[k] = v
			line = strings.TrimPrefix(rest, " ")
		}
		recs = append(recs, r)
	}
	return recs
}

// find returns the first record with msg, and whether there is one.
func findRecord(recs []logRecord, msg string) (logRecord, bool) {
	for _, r := range recs {
		if r["msg"] == msg {
			return r, true
		}
	}
	return nil, false
}

func TestLogRecords(t *testing.T) {
	recs := logRecords("time=2026-11-28T08:00:00Z level=INFO msg=\"serving the demo site\" version=devel\n" +
		"not a record\ntime=x level=WARN msg=try with=\"curl -k \\\"x\\\"\" speaks=HTTP/2\n")
	if len(recs) != 2 || recs[0]["msg"] != "serving the demo site" || recs[0]["version"] != "devel" ||
		recs[1]["with"] != `curl -k "x"` || recs[1]["speaks"] != "HTTP/2" || recs[1]["level"] != "WARN" {
		t.Errorf("logRecords: %q", recs)
	}
}

// serving is one `spdymux serve` running in the test's process.
type serving struct {
	addrs          listening
	stdout, stderr *syncBuffer
	stop           context.CancelFunc
	exit           chan int
}

// startServe runs `spdymux serve args...` until the test stops it.
func startServe(t *testing.T, args ...string) *serving {
	t.Helper()
	return startServeEnv(t, nil, args...)
}

// startServeEnv is startServe with the env's hup set.
func startServeEnv(t *testing.T, hup <-chan struct{}, args ...string) *serving {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &serving{stdout: &syncBuffer{}, stderr: &syncBuffer{}, stop: cancel, exit: make(chan int, 1)}
	ready := make(chan listening, 1)
	e := &env{stdout: s.stdout, stderr: s.stderr, ready: func(a listening) { ready <- a }, hup: hup}
	go func() { s.exit <- run(ctx, e, append([]string{"serve"}, args...)) }()
	select {
	case s.addrs = <-ready:
	case code := <-s.exit:
		t.Fatalf("serve exited with %d at start; stderr:\n%s", code, s.stderr)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not start within 10s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.exit:
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop")
		}
	})
	return s
}

// shutdown stops s as SIGINT would and returns its exit code.
func (s *serving) shutdown(t *testing.T, within time.Duration) int {
	t.Helper()
	s.stop()
	select {
	case code := <-s.exit:
		s.exit <- code // for the cleanup
		return code
	case <-time.After(within):
		t.Fatalf("serve did not exit within %v of the signal", within)
		return -1
	}
}

func tlsClient() *http.Client {
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestServeDemoAndShutdown(t *testing.T) {
	s := startServe(t, "-listen", "127.0.0.1:0", "-listen-plain", "127.0.0.1:0", "-access-log", "-")
	tlsURL := "https://" + s.addrs.tls.String()
	plainURL := "http://" + s.addrs.plain.String()

	if code, body := get(t, tlsClient(), tlsURL+"/hello"); code != 200 || body != "hello, world\n" {
		t.Errorf("TLS /hello: %d %q", code, body)
	}
	if code, body := get(t, http.DefaultClient, plainURL+"/hello"); code != 200 || body != "hello, world\n" {
		t.Errorf("cleartext /hello: %d %q", code, body)
	}

	// A request in flight when the signal comes is finished, not cut.
	slow := make(chan string, 1)
	go func() {
		resp, err := http.Get(plainURL + "/slow?ms=500")
		if err != nil {
			slow <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- string(b)
	}()
	time.Sleep(100 * time.Millisecond)
	if code := s.shutdown(t, 5*time.Second); code != 0 {
		t.Errorf("exit %d after the signal; want 0; stderr:\n%s", code, s.stderr)
	}
	if got := <-slow; got != "slept 500 ms\n" {
		t.Errorf("request in flight at shutdown got %q; want it finished", got)
	}

	out := s.stdout.String()
	for _, want := range []string{
		`"GET /hello HTTP/1.1" 200 13 "-" "Go-http-client/1.1" proto=http/1.1 session=- stream=- duration_ms=`,
		`"GET /slow?ms=500 HTTP/1.1" 200 13 `,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("access log on stdout lacks %q:\n%s", want, out)
		}
	}
	// Everything else is the log on stderr, one record a line.
	log := s.stderr.String()
	for line := range strings.Lines(log) {
		if !strings.HasPrefix(line, "time=") {
			t.Errorf("stderr line not in the log's format: %q", line)
		}
	}
	recs := logRecords(log)
	for _, want := range []struct{ msg, key, value string }{
		{"no -cert/-key: made a self-signed certificate for localhost, 127.0.0.1, ::1", "subject", "localhost"},
		{"serving the demo site", "version", ""},
		{"listening for TLS", "url", tlsURL + "/"},
		{"listening for cleartext", "url", plainURL + "/"},
		{"shutting down: GOAWAY to every session, draining", "timeout", "10s"},
		{"stopped", "level", "INFO"},
	} {
		r, ok := findRecord(recs, want.msg)
		if !ok {
			t.Errorf("log lacks %q:\n%s", want.msg, log)
			continue
		}
		if got, ok := r[want.key]; !ok || want.value != "" && got != want.value {
			t.Errorf("log record %q: %s=%q; want %q", want.msg, want.key, got, want.value)
		}
	}
	if r, _ := findRecord(recs, "no -cert/-key: made a self-signed certificate for localhost, 127.0.0.1, ::1"); len(r["sha256"]) != 64+31 {
		t.Errorf("self-signed certificate: sha256=%q; want a colon-separated fingerprint", r["sha256"])
	}
	if _, err := net.DialTimeout("tcp", s.addrs.plain.String(), time.Second); err == nil {
		t.Error("the cleartext port still takes connections after shutdown")
	}
}

func TestServeShutdownTimeout(t *testing.T) {
	s := startServe(t, "-listen", "", "-listen-plain", "127.0.0.1:0", "-shutdown-timeout", "200ms", "-log-level", "error")
	started := make(chan struct{})
	go func() {
		close(started)
		resp, err := http.Get("http://" + s.addrs.plain.String() + "/slow?ms=30000")
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-started
	time.Sleep(100 * time.Millisecond)
	begin := time.Now()
	if code := s.shutdown(t, 5*time.Second); code != 0 {
		t.Errorf("exit %d; want 0", code)
	}
	if d := time.Since(begin); d > 3*time.Second {
		t.Errorf("shutdown took %v with -shutdown-timeout 200ms", d)
	}
}

func TestServeFilesAndCert(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "page.html"), []byte("<p>from dir"), 0o644); err != nil {
		t.Fatal(err)
	}
	cert, err := selfSigned(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := writeKeyPair(t, cert)
	s := startServe(t, "-listen", "127.0.0.1:0", "-dir", dir, "-cert", certFile, "-key", keyFile)

	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}
	base := "https://" + s.addrs.tls.String()
	if code, body := get(t, c, base+"/page.html"); code != 200 || body != "<p>from dir" {
		t.Errorf("/page.html: %d %q", code, body)
	}
	// -dir serves the directory and nothing else.
	for _, p := range []string{"/hello", "/bytes/1000", "/slow?ms=1", "/echo"} {
		if code, _ := get(t, c, base+p); code != 404 {
			t.Errorf("-dir: %s: %d; want 404", p, code)
		}
	}
	if strings.Contains(s.stderr.String(), "self-signed") {
		t.Errorf("with -cert/-key, the log mentions a self-signed certificate:\n%s", s.stderr)
	}
	if r, ok := findRecord(logRecords(s.stderr.String()), "certificate loaded"); !ok || r["cert"] != certFile || r["not_after"] == "" {
		t.Errorf("log record of the certificate: %v\n%s", r, s.stderr)
	}

	// -demo-endpoints adds the diagnostics where no file answers.
	d := startServe(t, "-listen", "127.0.0.1:0", "-dir", dir, "-demo-endpoints", "-cert", certFile, "-key", keyFile)
	base = "https://" + d.addrs.tls.String()
	if code, body := get(t, c, base+"/hello"); code != 200 || body != "hello, world\n" {
		t.Errorf("-demo-endpoints: /hello beside the files: %d %q", code, body)
	}
	if code, body := get(t, c, base+"/page.html"); code != 200 || body != "<p>from dir" {
		t.Errorf("-demo-endpoints: /page.html: %d %q", code, body)
	}
}

// The gateway pipelines by default, behind answers expected soon;
// -backend-pipeline 0 sends one request at a time on each connection,
// and -backend-pipeline-wait 0 pipelines only requests that would wait.
func TestServeBackendPipelineDefault(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		depth int
		wait  time.Duration
	}{
		{nil, gateway.DefaultPipelineDepth, gateway.DefaultPipelineWait},
		{[]string{"-backend-pipeline", "0"}, 0, gateway.DefaultPipelineWait},
		{[]string{"-backend-pipeline", "4", "-backend-pipeline-wait", "0"}, 4, -1},
	} {
		var o serveOptions
		fs := o.flags()
		if err := fs.Parse(append([]string{"-backend", "http://127.0.0.1:1"}, tc.args...)); err != nil {
			t.Fatal(err)
		}
		c, err := o.check()
		if err != nil {
			t.Fatal(err)
		}
		if c.backend.PipelineDepth != tc.depth || c.backend.PipelineWait != tc.wait {
			t.Errorf("%q: depth %d, wait %v; want %d, %v", tc.args, c.backend.PipelineDepth, c.backend.PipelineWait, tc.depth, tc.wait)
		}
	}
}
