package cli

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spdymux/spdymux"
)

// spdyServer is an in-process spdymux server for the client commands:
// cleartext and TLS listeners in front of one handler.
type spdyServer struct {
	plain, tls *spdymux.Listener
	plainURL   string // http://127.0.0.1:port
	tlsURL     string // https://127.0.0.1:port
	inFlight   inFlight
}

// inFlight counts the requests /wait is serving, in all and per session,
// and keeps the peaks.
type inFlight struct {
	mu                sync.Mutex
	all               int
	bySession         map[uint64]int
	peakAll, peakSess int
}

func (f *inFlight) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.all, f.bySession, f.peakAll, f.peakSess = 0, map[uint64]int{}, 0, 0
}

func (f *inFlight) add(session uint64, d int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.all += d
	f.bySession[session] += d
	f.peakAll = max(f.peakAll, f.all)
	f.peakSess = max(f.peakSess, f.bySession[session])
}

func (f *inFlight) peaks() (all, perSession int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.peakAll, f.peakSess
}

func startSPDYServer(t *testing.T) *spdyServer {
	t.Helper()
	cert, err := selfSigned(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "13")
		io.WriteString(w, "hello, world\n")
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s ", r.Method, r.Header.Get("X-Test"))
		io.Copy(w, r.Body)
	})
	mux.HandleFunc("/info", func(w http.ResponseWriter, r *http.Request) {
		info, _ := spdymux.StreamInfoFromContext(r.Context())
		fmt.Fprintf(w, "%s %d", info.Protocol, info.Priority)
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "failing on purpose", http.StatusServiceUnavailable)
	})
	s := &spdyServer{}
	s.inFlight.reset()
	mux.HandleFunc("/wait", func(w http.ResponseWriter, r *http.Request) {
		info, _ := spdymux.StreamInfoFromContext(r.Context())
		s.inFlight.add(info.SessionID, 1)
		time.Sleep(20 * time.Millisecond)
		s.inFlight.add(info.SessionID, -1)
	})
	quiet := slog.New(slog.DiscardHandler)
	for _, useTLS := range []bool{false, true} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cfg := &spdymux.Config{Logger: quiet}
		if useTLS {
			cfg.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		}
		l := spdymux.NewListener(ln, cfg)
		srv := &http.Server{Handler: mux}
		spdymux.ConfigureServer(srv)
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
		if useTLS {
			s.tls, s.tlsURL = l, "https://"+ln.Addr().String()
		} else {
			s.plain, s.plainURL = l, "http://"+ln.Addr().String()
		}
	}
	return s
}

// runCmd runs the spdymux command with args and returns its exit code,
// stdout and stderr.
func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr syncBuffer
	code := run(context.Background(), &env{stdout: &stdout, stderr: &stderr}, args)
	return code, stdout.String(), stderr.String()
}

// usageCase is a wrong command line (after the command's name) and what
// its error says.
type usageCase struct {
	args    []string
	wantErr string
}

// checkUsageErrors runs `spdymux cmd args...` for each case and checks
// that it exits 2 with nothing on stdout and one line on stderr,
// "spdymux cmd: ...wantErr...".
func checkUsageErrors(t *testing.T, cmd string, cases []usageCase) {
	t.Helper()
	for _, tc := range cases {
		args := append([]string{cmd}, tc.args...)
		code, stdout, stderr := runCmd(t, args...)
		if code != 2 || stdout != "" {
			t.Errorf("%q: exit %d, stdout %q; want 2 and nothing", args, code, stdout)
		}
		if n := strings.Count(stderr, "\n"); n != 1 || !strings.HasPrefix(stderr, "spdymux "+cmd+": ") || !strings.Contains(stderr, tc.wantErr) {
			t.Errorf("%q: stderr %q; want one line \"spdymux %s: ...%s...\"", args, stderr, cmd, tc.wantErr)
		}
	}
}

func TestGet(t *testing.T) {
	s := startSPDYServer(t)
	dir := t.TempDir()
	upload := filepath.Join(dir, "upload")
	if err := os.WriteFile(upload, []byte("from a file"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")

	for _, tc := range []struct {
		name       string
		args       []string
		wantOut    string   // stdout, exactly
		wantStderr []string // substrings of stderr
	}{
		{"plain", []string{s.plainURL + "/hello"}, "hello, world\n",
			[]string{"GET " + s.plainURL + "/hello: 200 OK, SPDY/3.1, 13 bytes; connect ", "first byte ", "total "}},
		{"tls", []string{"-k", s.tlsURL + "/hello"}, "hello, world\n",
			[]string{"200 OK, SPDY/3.1", ", tls "}},
		{"proto and priority", []string{"-k", "-proto", "spdy/2", "-p", "6", s.tlsURL + "/info"}, "spdy/2 3",
			[]string{"SPDY/2"}},
		{"spdy/3 priority", []string{"-k", "-proto", "spdy/3", "-p", "0", s.tlsURL + "/info"}, "spdy/3 0",
			[]string{"SPDY/3"}},
		{"data", []string{"-d", "some data", "-H", "X-Test: yes", s.plainURL + "/echo"}, "POST yes some data",
			[]string{"POST " + s.plainURL + "/echo: 200 OK"}},
		{"data from file", []string{"-X", "PUT", "-d", "@" + upload, s.plainURL + "/echo"}, "PUT  from a file", nil},
		{"include", []string{"-i", s.plainURL + "/hello"}, "SPDY/3.1 200 OK\r\n", []string{"200 OK"}},
		{"verbose", []string{"-v", s.plainURL + "/hello"}, "hello, world\n",
			[]string{"send SYN_STREAM stream=1 flags=0x01", "recv SYN_REPLY stream=1", "recv DATA stream=1 flags=0x01 length=13"}},
		{"output", []string{"-o", out, s.plainURL + "/hello"}, "", []string{"13 bytes"}},
		{"status", []string{s.plainURL + "/fail"}, "failing on purpose\n", []string{"503 Service Unavailable"}},
		{"h2 tls", []string{"-proto", "h2", "-k", s.tlsURL + "/hello"}, "hello, world\n",
			[]string{"GET " + s.tlsURL + "/hello: 200 OK, HTTP/2.0 (h2), 13 bytes; connect ", ", tls ", "first byte "}},
		{"h2c", []string{"-proto", "h2", s.plainURL + "/info"}, "h2c 3", []string{"200 OK, HTTP/2.0 (h2c)"}},
		{"h2c by name", []string{"-proto", "h2c", s.plainURL + "/info"}, "h2c 3", []string{"200 OK, HTTP/2.0 (h2c)"}},
		{"h2 priority", []string{"-proto", "h2", "-k", "-p", "6", s.tlsURL + "/info"}, "h2 6", nil},
		{"h2 priority header", []string{"-proto", "h2", "-k", "-H", "Priority: u=1, i", s.tlsURL + "/info"}, "h2 1", nil},
		{"h2 include", []string{"-proto", "h2", "-i", s.plainURL + "/hello"}, "HTTP/2.0 200 OK\r\n", nil},
		{"h2 data", []string{"-proto", "h2", "-d", "some data", "-H", "X-Test: yes", s.plainURL + "/echo"}, "POST yes some data", nil},
		{"h2 verbose", []string{"-proto", "h2", "-k", "-v", s.tlsURL + "/hello"}, "hello, world\n", []string{
			"[session 1] h2 connection to " + strings.TrimPrefix(s.tlsURL, "https://") + " (TLS 1.3, ALPN h2)\n",
			"[session 1] send client preface\n",
			"[session 1] send SETTINGS stream=0 flags=0x00 length=",
			"[session 1] send HEADERS stream=1 flags=0x05 length=",
			" END_STREAM|END_HEADERS\n    :authority: " + strings.TrimPrefix(s.tlsURL, "https://") + "\n    :method: GET\n    :path: /hello\n",
			"[session 1] recv SETTINGS stream=0 flags=0x00 length=",
			"MAX_CONCURRENT_STREAMS=100",
			"[session 1] recv SETTINGS stream=0 flags=0x01 length=0 ACK\n",
			"[session 1] recv HEADERS stream=1 flags=0x04 length=",
			"\n    :status: 200\n    content-length: 13\n",
			"[session 1] recv DATA stream=1 flags=0x01 length=13 END_STREAM\n",
		}},
		{"h2c verbose", []string{"-proto", "h2", "-v", s.plainURL + "/hello"}, "hello, world\n", []string{
			"[session 1] h2c connection to " + strings.TrimPrefix(s.plainURL, "http://") + " (cleartext, prior knowledge)\n",
			"[session 1] send HEADERS stream=1 flags=0x05",
			"    :scheme: http\n",
			"[session 1] recv DATA stream=1 flags=0x01 length=13 END_STREAM\n",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, append([]string{"get"}, tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d; want 0 (stderr %q)", code, stderr)
			}
			if strings.HasSuffix(tc.name, "include") {
				if !strings.HasPrefix(stdout, tc.wantOut) || !strings.Contains(stdout, "Content-Length: 13\r\n") || !strings.HasSuffix(stdout, "\r\n\r\nhello, world\n") {
					t.Errorf("stdout %q; want the status line, headers, blank line and body", stdout)
				}
			} else if stdout != tc.wantOut {
				t.Errorf("stdout %q; want %q", stdout, tc.wantOut)
			}
			for _, w := range tc.wantStderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q lacks %q", stderr, w)
				}
			}
		})
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "hello, world\n" {
		t.Errorf("-o file: got %q, %v", b, err)
	}

	// Several URLs: one session, bodies in order.
	before := s.tls.Stats().Sessions
	code, stdout, stderr := runCmd(t, "get", "-k", s.tlsURL+"/echo", s.tlsURL+"/hello", s.tlsURL+"/info")
	if code != 0 || stdout != "GET  hello, world\nspdy/3.1 3" {
		t.Errorf("three URLs: exit %d, stdout %q (stderr %q)", code, stdout, stderr)
	}
	if n := strings.Count(stderr, "\n"); n != 3 {
		t.Errorf("three URLs: %d lines on stderr; want 3: %q", n, stderr)
	}
	if got := s.tls.Stats().Sessions - before; got != 1 {
		t.Errorf("three URLs: %d sessions; want 1", got)
	}

	// A failed request: exit 1, its error and a summary.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String() + "/"
	ln.Close()
	code, _, stderr = runCmd(t, "get", s.plainURL+"/hello", dead)
	if code != 1 || !strings.Contains(stderr, "GET "+dead+": ") || !strings.Contains(stderr, "connection refused") ||
		!strings.HasSuffix(stderr, "spdymux get: 1 of 2 requests failed\n") {
		t.Errorf("refused: exit %d, stderr %q; want 1 and the error", code, stderr)
	}
}

// TestH2WithoutALPN checks what get and bench say of a TLS server that
// does no ALPN, so speaks HTTP/1.1 only.
func TestH2WithoutALPN(t *testing.T) {
	cert, err := selfSigned(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler(), ErrorLog: log.New(io.Discard, "", 0)}
	go srv.Serve(ln)
	defer srv.Close()
	u := "https://" + ln.Addr().String() + "/"

	code, _, stderr := runCmd(t, "get", "-proto", "h2", "-k", u)
	if code != 1 || !strings.Contains(stderr, "the server did not choose h2 by ALPN (it chose none)") {
		t.Errorf("get: exit %d, stderr %q; want 1 and the ALPN error", code, stderr)
	}
	code, _, stderr = runCmd(t, "bench", "-proto", "h2", "-k", "-n", "1", u)
	if code != 1 || !strings.Contains(stderr, "the server did not choose h2 by ALPN") {
		t.Errorf("bench: exit %d, stderr %q; want 1 and the ALPN error", code, stderr)
	}
	if k := classify(&alpnError{got: "none"}); k != errConnect {
		t.Errorf("an ALPN error is of kind %s; want connect", errorKinds[k])
	}
}

func TestGetUsageErrors(t *testing.T) {
	checkUsageErrors(t, "get", []usageCase{
		{[]string{}, "no URL given"},
		{[]string{"-bogus", "http://x/"}, "flag provided but not defined: -bogus"},
		{[]string{"-proto", "h3", "http://x/"}, `bad -proto "h3": want h2, h2c, spdy/3.1, spdy/3 or spdy/2`},
		{[]string{"-proto", "http/1.1", "http://x/"}, `bad -proto "http/1.1"`},
		{[]string{"-proto", "h2c", "http://x/", "https://x/"}, `-proto h2c is HTTP/2 over cleartext: want an http URL, not "https://x/"`},
		{[]string{"-p", "8", "http://x/"}, "bad -p 8"},
		{[]string{"-o", "f", "http://x/", "http://y/"}, "-o takes one URL only"},
		{[]string{"ftp://x/"}, `bad URL "ftp://x/"`},
		{[]string{"x.example"}, `bad URL "x.example"`},
		{[]string{"http://x/%zz"}, `bad URL "http://x/%zz"`},
		{[]string{"-H", "novalue", "http://x/"}, "want 'Name: value'"},
		{[]string{"-X", "BAD METHOD", "http://x/"}, `bad -X "BAD METHOD"`},
		{[]string{"-d", "@/no/such/file", "http://x/"}, "-d: stat /no/such/file"},
	})
	code, stdout, _ := runCmd(t, "get", "-h")
	if code != 0 || !strings.Contains(stdout, "Usage: spdymux get") || !strings.Contains(stdout, "-proto protocol") || !strings.Contains(stdout, "h2c with prior knowledge") {
		t.Errorf("get -h: exit %d, stdout %q", code, stdout)
	}
}
