package cli

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// runCmdTTY runs the command with stdout seen as a terminal.
func runCmdTTY(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr syncBuffer
	e := &env{stdout: &stdout, stderr: &stderr, isTerminal: func(w io.Writer) bool { return w == &stdout }}
	code := run(context.Background(), e, args)
	return code, stdout.String(), stderr.String()
}

// get -f fails on a status of 400 or more, as curl --fail: exit 22, no
// body. Without it any status is a success, as in curl.
func TestGetFail(t *testing.T) {
	s := startSPDYServer(t)
	for _, tc := range []struct {
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{[]string{s.plainURL + "/fail"}, 0, "failing on purpose\n", "503 Service Unavailable"},
		{[]string{"-f", s.plainURL + "/fail"}, 22, "", "spdymux get: 1 of 1 responses had a status of 400 or more (-f)"},
		{[]string{"--fail", s.plainURL + "/fail", s.plainURL + "/hello"}, 22, "hello, world\n", "1 of 2 responses"},
		{[]string{"-fail", "-proto", "h2", s.plainURL + "/fail"}, 22, "", "(-f)"},
		{[]string{"-f", s.plainURL + "/hello"}, 0, "hello, world\n", "200 OK"},
		// A failed connection is 1, as before.
		{[]string{"-f", "http://127.0.0.1:1/"}, 1, "", "1 of 1 requests failed"},
	} {
		code, stdout, stderr := runCmd(t, append([]string{"get"}, tc.args...)...)
		if code != tc.wantCode || stdout != tc.wantOut || !strings.Contains(stderr, tc.wantErr) {
			t.Errorf("get %q: exit %d, stdout %q, stderr %q; want %d, %q and %q", tc.args, code, stdout, stderr, tc.wantCode, tc.wantOut, tc.wantErr)
		}
	}
}

// A binary body is not written to a terminal unless -o says so.
func TestGetBinaryToTerminal(t *testing.T) {
	s := startServe(t, "-listen", "", "-listen-plain", "127.0.0.1:0", "-log-level", "error")
	base := "http://" + s.addrs.plain.String()
	code, stdout, stderr := runCmdTTY(t, "get", base+"/bytes/1000")
	if code != 1 || stdout != "" || !strings.Contains(stderr, "binary body not written to the terminal: use -o FILE, or -o - to write it anyway") {
		t.Errorf("binary to a terminal: exit %d, %d bytes out, stderr %q", code, len(stdout), stderr)
	}
	if code, stdout, _ := runCmdTTY(t, "get", "-o", "-", base+"/bytes/1000"); code != 0 || len(stdout) != 1000 {
		t.Errorf("-o - to a terminal: exit %d, %d bytes; want 0 and 1000", code, len(stdout))
	}
	if code, stdout, _ := runCmdTTY(t, "get", base+"/hello"); code != 0 || stdout != "hello, world\n" {
		t.Errorf("text to a terminal: exit %d, %q", code, stdout)
	}
	// Several URLs: the binary one is held back, the text one written.
	code, stdout, stderr = runCmdTTY(t, "get", "-i", base+"/hello", base+"/bytes/10")
	if code != 1 || !strings.Contains(stdout, "\r\n\r\nhello, world\n") || strings.Contains(stdout, "\x00") || !strings.Contains(stderr, "binary body") {
		t.Errorf("two URLs to a terminal: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// Not a terminal: written as it is.
	if code, stdout, _ := runCmd(t, "get", base+"/bytes/1000"); code != 0 || len(stdout) != 1000 {
		t.Errorf("binary to a pipe: exit %d, %d bytes; want 0 and 1000", code, len(stdout))
	}
	out := filepath.Join(t.TempDir(), "out")
	if code, _, _ := runCmdTTY(t, "get", "-o", out, base+"/bytes/1000"); code != 0 {
		t.Errorf("-o FILE: exit %d", code)
	} else if b, _ := os.ReadFile(out); len(b) != 1000 {
		t.Errorf("-o FILE: %d bytes; want 1000", len(b))
	}
}

// get has default timeouts: -connect-timeout for a server that takes the
// connection and says nothing, -timeout for a response header that does
// not come.
func TestGetTimeouts(t *testing.T) {
	// A server that accepts and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			go io.Copy(io.Discard, c)
		}
	}()
	start := time.Now()
	code, _, stderr := runCmd(t, "get", "-connect-timeout", "300ms", "http://"+ln.Addr().String()+"/")
	if code != 1 || !strings.Contains(stderr, "the server sent nothing within 300ms (-connect-timeout)") || time.Since(start) > 5*time.Second {
		t.Errorf("silent server: exit %d after %v, stderr %q", code, time.Since(start), stderr)
	}
	if !strings.Contains(mustHelp(t, "get"), "-timeout duration") || !strings.Contains(mustHelp(t, "get"), "(default 30s)") ||
		!strings.Contains(mustHelp(t, "get"), "-connect-timeout duration") || !strings.Contains(mustHelp(t, "get"), "(default 10s)") {
		t.Errorf("get -h lacks the default timeouts:\n%s", mustHelp(t, "get"))
	}

	// A server slower than -timeout to answer.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	s := startServe(t, "-listen", "", "-listen-plain", "127.0.0.1:0", "-backend", slow.URL, "-log-level", "error")
	start = time.Now()
	code, _, stderr = runCmd(t, "get", "-timeout", "300ms", "http://"+s.addrs.plain.String()+"/")
	if code != 1 || !strings.Contains(stderr, "no response header within 300ms (-timeout)") || time.Since(start) > 3*time.Second {
		t.Errorf("slow server: exit %d after %v, stderr %q", code, time.Since(start), stderr)
	}
}

func mustHelp(t *testing.T, cmd string) string {
	t.Helper()
	code, stdout, _ := runCmd(t, cmd, "-h")
	if code != 0 {
		t.Fatalf("%s -h: exit %d", cmd, code)
	}
	return stdout
}

// A dial error names its address once.
func TestGetDialError(t *testing.T) {
	for _, proto := range []string{"spdy/3.1", "h2"} {
		code, _, stderr := runCmd(t, "get", "-proto", proto, "http://127.0.0.1:1/")
		first, _, _ := strings.Cut(stderr, "\n")
		if code != 1 || strings.Count(first, "127.0.0.1:1") != 2 || strings.Count(first, "dial") != 1 || !strings.Contains(first, "connection refused") {
			t.Errorf("%s: exit %d, %q; want the URL, then the address once with one dial", proto, code, first)
		}
	}
}

// get and bench share their flags' names and meanings.
func TestClientFlagsShared(t *testing.T) {
	get, bench := mustHelp(t, "get"), mustHelp(t, "bench")
	for _, f := range []string{"-proto protocol", "-k\t", "-H value", "-X METHOD", "-d DATA", "-connect-timeout duration"} {
		if !strings.Contains(get, f) || !strings.Contains(bench, f) {
			t.Errorf("flag %q: in get %v, in bench %v; want both", f, strings.Contains(get, f), strings.Contains(bench, f))
		}
	}
	if !strings.Contains(bench, "-D duration") {
		t.Error("bench -h lacks -D duration")
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"-version"}, {"--version"}} {
		code, stdout, stderr := runCmd(t, args...)
		if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "spdymux ") || !strings.Contains(stdout, runtime.Version()) ||
			strings.Count(stdout, "\n") != 1 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
	version = "v1.2.3"
	defer func() { version = "" }()
	if _, stdout, _ := runCmd(t, "version"); !strings.HasPrefix(stdout, "spdymux v1.2.3 (") {
		t.Errorf("with the version set at link time: %q", stdout)
	}
}
