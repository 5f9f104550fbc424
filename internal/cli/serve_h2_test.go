package cli

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The HTTP/2 side of `spdymux serve`, driven by `spdymux get -proto h2`
// and `spdymux bench -proto h2` (golang.org/x/net/http2's client), by the
// commands its banner suggests, and by net/http's own HTTP/2 client.

// tryCommands returns the commands of serve's "try" log records, without
// a browser's note.
func tryCommands(log string) []string {
	var cmds []string
	for _, r := range logRecords(log) {
		if r["msg"] == "try" {
			cmd, _, _ := strings.Cut(r["with"], " (")
			cmds = append(cmds, cmd)
		}
	}
	return cmds
}

// banner is one "listening" record of serve's log.
type banner struct{ msg, url, what string }

// checkBanner checks that serve's log has the listening records want and
// suggests the commands wantTry, which it then runs: each fetches /hello
// over HTTP/2 unless it is spdymux get or h2 is not served.
func checkBanner(t *testing.T, log string, want []banner, wantTry []string, h2 bool) {
	t.Helper()
	recs := logRecords(log)
	for _, w := range want {
		r, ok := findRecord(recs, w.msg)
		if !ok || r["url"] != w.url || r["alpn"]+r["protocols"] != w.what {
			t.Errorf("log record %q: %v; want url %s and %s:\n%s", w.msg, r, w.url, w.what, log)
		}
	}
	if got := tryCommands(log); strings.Join(got, "\n") != strings.Join(wantTry, "\n") {
		t.Errorf("suggested commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantTry, "\n"))
	}
	for _, cmd := range wantTry {
		runTry(t, cmd, "hello, world\n", h2 && !strings.HasPrefix(cmd, "spdymux get"))
	}
}

// runTry runs one suggested command, and checks that it fetches want over
// HTTP/2 (wantH2) or another protocol.
func runTry(t *testing.T, cmd, want string, wantH2 bool) {
	t.Helper()
	args := strings.Fields(cmd)
	switch {
	case strings.HasPrefix(cmd, "a browser on "):
		// A browser offers h2 and http/1.1 by ALPN, as net/http does.
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true,
		}}
		resp, err := c.Get(args[len(args)-1])
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
			t.Errorf("%s: %s %s; want HTTP/2.0 200", cmd, resp.Proto, resp.Status)
		}
	case args[0] == "curl":
		if _, err := exec.LookPath("curl"); err != nil {
			t.Logf("no curl to run %q", cmd)
			return
		}
		if v, _ := exec.Command("curl", "-V").Output(); !strings.Contains(string(v), "HTTP2") {
			t.Logf("this curl has no HTTP/2 for %q", cmd)
			return
		}
		args = append(args[1:], "-s", "--max-time", "10", "-w", "|%{http_version}")
		out, err := exec.Command("curl", args...).Output()
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		i := strings.LastIndexByte(string(out), '|')
		body, version := string(out[:max(i, 0)]), string(out[i+1:])
		if body != want || (version == "2") != wantH2 {
			t.Errorf("%s: body %q, HTTP version %s; want %q over HTTP/2 %v", cmd, body, version, want, wantH2)
		}
	case args[0] == "spdymux":
		code, stdout, stderr := runCmd(t, args[1:]...)
		if code != 0 || stdout != want || strings.Contains(stderr, "HTTP/2.0") == !wantH2 {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want %q", cmd, code, stdout, stderr, want)
		}
	default:
		t.Errorf("serve suggests %q, which the test cannot run", cmd)
	}
}

// TestServeH2 serves the demo site and fetches it over h2 and h2c, with
// the suggested commands, get and bench.
func TestServeH2(t *testing.T) {
	s := startServe(t, "-listen", "127.0.0.1:0", "-listen-plain", "127.0.0.1:0", "-access-log", "-")
	tlsURL := "https://" + s.addrs.tls.String()
	plainURL := "http://" + s.addrs.plain.String()

	checkBanner(t, s.stderr.String(), []banner{
		{"listening for TLS", tlsURL + "/", "h2,spdy/3.1,spdy/3,spdy/2,http/1.1"},
		{"listening for cleartext", plainURL + "/", "HTTP/2 with prior knowledge (h2c), SPDY (spdy/2, version 3 as spdy/3.1), HTTP/1.1"},
	}, []string{
		"a browser on " + tlsURL + "/",
		"curl -k --http2 " + tlsURL + "/hello",
		"spdymux get -k -v " + tlsURL + "/hello",
		"curl --http2-prior-knowledge " + plainURL + "/hello",
		"spdymux get -v " + plainURL + "/hello",
	}, true)

	for _, tc := range []struct {
		args       []string
		wantOut    string
		wantStderr string
	}{
		{[]string{"-proto", "h2", "-k", tlsURL + "/hello"}, "hello, world\n", "200 OK, HTTP/2.0 (h2), 13 bytes; connect "},
		{[]string{"-proto", "h2", plainURL + "/hello"}, "hello, world\n", "200 OK, HTTP/2.0 (h2c), 13 bytes; connect "},
		{[]string{"-proto", "h2", "-d", "up", plainURL + "/echo"}, "up", "POST " + plainURL + "/echo: 200 OK, HTTP/2.0 (h2c)"},
	} {
		code, stdout, stderr := runCmd(t, append([]string{"get"}, tc.args...)...)
		if code != 0 || stdout != tc.wantOut || !strings.Contains(stderr, tc.wantStderr) {
			t.Errorf("get %q: exit %d, stdout %q, stderr %q; want 0, %q and %q", tc.args, code, stdout, stderr, tc.wantOut, tc.wantStderr)
		}
	}
	// /info tells the protocol the server saw.
	code, stdout, _ := runCmd(t, "get", "-proto", "h2", "-k", "-p", "0", tlsURL+"/info")
	if code != 0 || !strings.Contains(stdout, `"alpn": "h2"`) || !strings.Contains(stdout, `"priority": 0`) {
		t.Errorf("h2 /info: exit %d, %s", code, stdout)
	}

	for _, u := range []string{tlsURL, plainURL} {
		code, r, stderr := benchJSON(t, "-proto", "h2", "-k", "-c", "2", "-m", "10", "-n", "200", u+"/hello")
		if code != 0 || r.Succeeded != 200 || r.Connections != 2 || r.StreamsPerConnection != 10 || r.BodyBytes != 200*13 {
			t.Errorf("bench -proto h2 %s: exit %d, %+v (stderr %q)", u, code, r, stderr)
		}
	}

	s.shutdown(t, 5*time.Second)
	if log := s.stdout.String(); !strings.Contains(log, `"GET /hello HTTP/2.0" 200 13 "-" "Go-http-client/2.0" proto=h2 session=`) ||
		!strings.Contains(log, `"POST /echo HTTP/2.0" 200 2 "-" "Go-http-client/2.0" proto=h2c session=`) {
		t.Errorf("access log lacks the HTTP/2 requests:\n%s", log)
	}
}

// TestServeH2Gateway sends HTTP/2 through serve -backend to an HTTP/1.1
// server, and fetches files of -dir over HTTP/2.
func TestServeH2Gateway(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s %s", r.Proto, r.Header.Get("X-Forwarded-Proto"), r.URL.Path)
	}))
	defer backend.Close()
	s := startServe(t, "-listen", "127.0.0.1:0", "-listen-plain", "127.0.0.1:0", "-backend", backend.URL)
	tlsURL := "https://" + s.addrs.tls.String()
	plainURL := "http://" + s.addrs.plain.String()
	if got := tryCommands(s.stderr.String()); len(got) < 2 || !strings.HasSuffix(got[1], tlsURL+"/") {
		t.Errorf("gateway: suggested commands %q; want the site's root, which a backend has", got)
	}
	for _, tc := range []struct{ url, want string }{
		{tlsURL + "/a", "HTTP/1.1 https /a"},
		{plainURL + "/b", "HTTP/1.1 http /b"},
	} {
		code, stdout, stderr := runCmd(t, "get", "-proto", "h2", "-k", tc.url)
		if code != 0 || stdout != tc.want || !strings.Contains(stderr, "HTTP/2.0") {
			t.Errorf("gateway %s: exit %d, %q, stderr %q; want %q over HTTP/2", tc.url, code, stdout, stderr, tc.want)
		}
	}
	code, r, stderr := benchJSON(t, "-proto", "h2", "-k", "-c", "2", "-m", "10", "-n", "200", tlsURL+"/bench")
	if code != 0 || r.Succeeded != 200 || r.Proto != "h2" {
		t.Errorf("gateway bench: exit %d, %+v (stderr %q)", code, r, stderr)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "page.html"), []byte("<p>from dir"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startServe(t, "-listen", "127.0.0.1:0", "-listen-plain", "127.0.0.1:0", "-dir", dir)
	for _, u := range []string{"https://" + d.addrs.tls.String(), "http://" + d.addrs.plain.String()} {
		code, stdout, stderr := runCmd(t, "get", "-proto", "h2", "-k", u+"/page.html")
		if code != 0 || stdout != "<p>from dir" || !strings.Contains(stderr, "HTTP/2.0") {
			t.Errorf("-dir %s: exit %d, %q, stderr %q", u, code, stdout, stderr)
		}
	}
}

// TestServeProtocols checks -protocols: what is left out is neither
// offered nor suggested.
func TestServeProtocols(t *testing.T) {
	s := startServe(t, "-listen", "127.0.0.1:0", "-listen-plain", "127.0.0.1:0", "-protocols", "spdy/3.1,spdy/2")
	tlsURL := "https://" + s.addrs.tls.String()
	plainURL := "http://" + s.addrs.plain.String()
	checkBanner(t, s.stderr.String(), []banner{
		{"listening for TLS", tlsURL + "/", "spdy/3.1,spdy/2,http/1.1"},
		{"listening for cleartext", plainURL + "/", "SPDY (spdy/2, version 3 as spdy/3.1), HTTP/1.1"},
	}, []string{
		"spdymux get -k -v " + tlsURL + "/hello",
		"curl -k " + tlsURL + "/hello",
		"spdymux get -v " + plainURL + "/hello",
		"curl " + plainURL + "/hello",
	}, false)
	code, _, stderr := runCmd(t, "get", "-proto", "h2", "-k", tlsURL+"/hello")
	if code != 1 || !strings.Contains(stderr, "no application protocol") {
		t.Errorf("h2 to a server without it: exit %d, stderr %q; want 1 and the TLS alert", code, stderr)
	}
	if code, _, stderr := runCmd(t, "get", "-proto", "h2", plainURL+"/hello"); code != 1 {
		t.Errorf("h2c to a server without it: exit %d, stderr %q; want 1", code, stderr)
	}

	// HTTP/2 alone: SPDY is refused, HTTP/1.1 still served.
	h := startServe(t, "-listen", "127.0.0.1:0", "-protocols", "h2")
	tlsURL = "https://" + h.addrs.tls.String()
	if r, _ := findRecord(logRecords(h.stderr.String()), "listening for TLS"); r["alpn"] != "h2,http/1.1" || strings.Contains(h.stderr.String(), "spdymux get") {
		t.Errorf("-protocols h2: banner\n%s", h.stderr)
	}
	if code, _, stderr := runCmd(t, "get", "-k", tlsURL+"/hello"); code != 1 {
		t.Errorf("SPDY to an h2-only server: exit %d, stderr %q; want 1", code, stderr)
	}
	if code, body := get(t, tlsClient(), tlsURL+"/hello"); code != 200 || body != "hello, world\n" {
		t.Errorf("HTTP/1.1 to an h2-only server: %d %q", code, body)
	}
}
