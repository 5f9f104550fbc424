package cli

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/spdymux/spdymux/internal/apachetest"
	"github.com/spdymux/spdymux/internal/interop"
)

// The end-to-end tests send SPDY from a client nobody here wrote (node's
// spdy-transport, through package interop) to `spdymux serve`, in front of
// a real Apache httpd or serving its demo site.

func port(a net.Addr) int { return a.(*net.TCPAddr).Port }

// resultHeader returns the value of a response header in a node result,
// whose names are lower case and whose values are a string or a list.
func resultHeader(r interop.Result, name string) string {
	switch v := r.Headers[strings.ToLower(name)].(type) {
	case string:
		return v
	case []any:
		s := make([]string, len(v))
		for i, x := range v {
			s[i] = fmt.Sprint(x)
		}
		return strings.Join(s, ", ")
	}
	return ""
}

func checkSession(t *testing.T, rep interop.Report, proto string) {
	t.Helper()
	if rep.Protocol != proto {
		t.Errorf("session protocol %q; want %q", rep.Protocol, proto)
	}
	if len(rep.SessionErrors) > 0 {
		t.Errorf("session errors: %q", rep.SessionErrors)
	}
}

// TestEndToEndApache runs node SPDY clients through `spdymux serve
// -backend` to Apache httpd.
func TestEndToEndApache(t *testing.T) {
	interop.EnsureNode(t)
	a := apachetest.Start(t)
	s := startServe(t, "-listen", "127.0.0.1:0", "-listen-plain", "127.0.0.1:0",
		"-backend", a.URL(), "-backend-timeout", "10s", "-access-log", "-", "-log-level", "error")
	const upload = 4 << 20

	for _, proto := range []string{"spdy/3.1", "spdy/3", "spdy/2"} {
		t.Run("tls "+proto, func(t *testing.T) {
			reqs := []interop.Request{
				{Path: apachetest.BigPath},
				{Method: "POST", Path: apachetest.EchoPath, BodyBytes: upload,
					Headers: map[string]string{"content-type": "application/octet-stream"}},
			}
			for i := range 40 {
				reqs = append(reqs, interop.Request{Path: apachetest.SmallPath(i), Priority: i % 8, CaptureBody: true})
			}
			rep := interop.RunNodeClient(t, interop.Job{
				Port: port(s.addrs.tls), TLS: true, Protocol: proto, ServerName: "localhost",
				Requests: reqs, Ping: true, TimeoutMs: 60000,
			})
			checkSession(t, rep, proto)
			if rep.PingMs == nil {
				t.Error("no PING reply")
			}
			big := rep.Results[0]
			if big.Status != 200 || big.BodyBytes != apachetest.BigSize || big.SHA256 != interop.PatternSHA256(apachetest.BigSize) {
				t.Errorf("%s: status %d, %d bytes, error %q; want 200 and the %d pattern bytes",
					big.Path, big.Status, big.BodyBytes, big.Error, apachetest.BigSize)
			}
			echo := rep.Results[1]
			if echo.Status != 200 || echo.BodyBytes != upload || echo.SHA256 != interop.PatternSHA256(upload) {
				t.Errorf("echo: status %d, %d bytes back, error %q; want 200 and the %d bytes sent",
					echo.Status, echo.BodyBytes, echo.Error, upload)
			}
			if got := resultHeader(echo, "X-Seen-Forwarded-For"); got != "127.0.0.1" {
				t.Errorf("the CGI saw X-Forwarded-For %q; want 127.0.0.1", got)
			}
			if got := resultHeader(echo, "X-Seen-Forwarded"); !strings.HasPrefix(got, "for=127.0.0.1;") || !strings.HasSuffix(got, ";proto=https") {
				t.Errorf("the CGI saw Forwarded %q; want for=127.0.0.1;...;proto=https", got)
			}
			if got := resultHeader(echo, "X-Seen-Forwarded-Proto"); got != "https" {
				t.Errorf("the CGI saw X-Forwarded-Proto %q; want https", got)
			}
			for i, r := range rep.Results[2:] {
				if r.Status != 200 || r.Body != apachetest.SmallBody(i) {
					t.Errorf("%s: status %d, body %q, error %q; want 200 %q", r.Path, r.Status, r.Body, r.Error, apachetest.SmallBody(i))
				}
			}
		})
	}

	t.Run("cleartext spdy/3.1", func(t *testing.T) {
		rep := interop.RunNodeClient(t, interop.Job{
			Port: port(s.addrs.plain), Protocol: "spdy/3.1",
			Requests: []interop.Request{
				{Path: apachetest.SmallPath(5), CaptureBody: true},
				{Method: "PUT", Path: apachetest.EchoPath, BodyBytes: 100000},
			},
		})
		checkSession(t, rep, "spdy/3.1")
		if r := rep.Results[0]; r.Status != 200 || r.Body != apachetest.SmallBody(5) {
			t.Errorf("%s: %d %q %q", r.Path, r.Status, r.Body, r.Error)
		}
		if r := rep.Results[1]; r.Status != 200 || r.SHA256 != interop.PatternSHA256(100000) {
			t.Errorf("echo: %d, %d bytes, %q", r.Status, r.BodyBytes, r.Error)
		} else if got := resultHeader(r, "X-Seen-Forwarded-Proto"); got != "http" {
			t.Errorf("X-Forwarded-Proto over cleartext: %q; want http", got)
		}
	})

	t.Run("client reset aborts the backend exchange", func(t *testing.T) {
		rep := interop.RunNodeClient(t, interop.Job{
			Port: port(s.addrs.tls), TLS: true, Protocol: "spdy/3.1",
			Requests: []interop.Request{
				{Path: apachetest.BigPath + "?reset", ResetAfterBytes: 256 << 10},
				{Path: apachetest.SmallPath(3), CaptureBody: true},
			},
		})
		checkSession(t, rep, "spdy/3.1")
		if r := rep.Results[0]; !r.Reset {
			t.Errorf("the client did not reset %s: %+v", r.Path, r)
		}
		if r := rep.Results[1]; r.Status != 200 || r.Body != apachetest.SmallBody(3) {
			t.Errorf("the other stream: %d %q %q; want 200", r.Status, r.Body, r.Error)
		}
		// Apache logs the request once the exchange has ended; had the
		// gateway read on or kept the connection, Apache would not log
		// it before its 30 s timeout, or would log it completed.
		deadline := time.Now().Add(10 * time.Second)
		for {
			line := ""
			for l := range strings.Lines(a.AccessLog()) {
				if strings.Contains(l, "GET "+apachetest.BigPath+"?reset ") {
					line = l
				}
			}
			if line != "" {
				if f := strings.Fields(line); len(f) < 2 || f[len(f)-2] != "X" {
					t.Errorf("Apache completed the response to a reset stream: %s", line)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("Apache did not end the exchange of the reset stream within 10s")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("backend stopped mid-session", func(t *testing.T) {
		// One stream waits in a slow CGI while twenty others finish; then
		// Apache stops. The waiting stream gets 502, the others are whole.
		const small = 20
		reqs := []interop.Request{{Method: "POST", Path: apachetest.EchoPath + "?sleep=3000", BodyBytes: 10}}
		for i := range small {
			reqs = append(reqs, interop.Request{Path: apachetest.SmallPath(i), CaptureBody: true})
		}
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			deadline := time.Now().Add(20 * time.Second)
			for countLines(s.stdout.String(), "/small/", " 200 ") < 40*3+1+small && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			a.Stop()
		}()
		rep := interop.RunNodeClient(t, interop.Job{
			Port: port(s.addrs.tls), TLS: true, Protocol: "spdy/3.1", Requests: reqs, TimeoutMs: 30000,
		})
		<-stopped
		checkSession(t, rep, "spdy/3.1")
		if r := rep.Results[0]; r.Status != 502 {
			t.Errorf("the stream in Apache when it stopped: status %d, error %q; want 502", r.Status, r.Error)
		}
		for i, r := range rep.Results[1:] {
			if r.Status != 200 || r.Body != apachetest.SmallBody(i) {
				t.Errorf("%s: %d %q %q; want 200", r.Path, r.Status, r.Body, r.Error)
			}
		}

		// With Apache down, every stream gets 502 and the session stays up.
		rep = interop.RunNodeClient(t, interop.Job{
			Port: port(s.addrs.tls), TLS: true, Protocol: "spdy/3.1", Ping: true,
			Requests: []interop.Request{
				{Path: apachetest.SmallPath(0), CaptureBody: true},
				{Path: apachetest.BigPath},
				{Method: "POST", Path: apachetest.EchoPath, BodyBytes: 1000},
			},
		})
		checkSession(t, rep, "spdy/3.1")
		for _, r := range rep.Results {
			if r.Status != 502 {
				t.Errorf("%s with Apache stopped: status %d, error %q; want 502", r.Path, r.Status, r.Error)
			}
		}
		if b := rep.Results[0].Body; !strings.Contains(b, "backend is unavailable") {
			t.Errorf("502 body %q; want a short explanation", b)
		}

		a.Restart()
		rep = interop.RunNodeClient(t, interop.Job{
			Port: port(s.addrs.tls), TLS: true, Protocol: "spdy/3",
			Requests: []interop.Request{{Path: apachetest.SmallPath(2), CaptureBody: true}},
		})
		checkSession(t, rep, "spdy/3")
		if r := rep.Results[0]; r.Status != 200 || r.Body != apachetest.SmallBody(2) {
			t.Errorf("after Restart: %d %q %q; want 200", r.Status, r.Body, r.Error)
		}
	})

	if log := s.stdout.String(); !strings.Contains(log, `"GET /big.bin SPDY/3.1" 200 16777216`) ||
		!strings.Contains(log, `"POST /cgi-bin/echo SPDY/2" 200 4194304`) {
		var seen []string
		for line := range strings.Lines(log) {
			if strings.Contains(line, "/big.bin") || strings.Contains(line, "/cgi-bin/echo") {
				seen = append(seen, line)
			}
		}
		t.Errorf("access log lacks the SPDY requests; its lines for /big.bin and /cgi-bin/echo:\n%s", strings.Join(seen, ""))
	}
}

// countLines counts the lines of s that contain every one of subs.
func countLines(s string, subs ...string) int {
	n := 0
	for line := range strings.Lines(s) {
		all := true
		for _, sub := range subs {
			all = all && strings.Contains(line, sub)
		}
		if all {
			n++
		}
	}
	return n
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestEndToEndDemo fetches the demo page and its tiles over one SPDY
// session with node's client and checks that every tile names the
// protocol, and that all came over one session.
func TestEndToEndDemo(t *testing.T) {
	interop.EnsureNode(t)
	s := startServe(t, "-listen", "127.0.0.1:0", "-log-level", "error")
	reqs := []interop.Request{{Path: "/", CaptureBody: true}, {Path: "/hello", CaptureBody: true}, {Path: "/bytes/100000"},
		{Path: "/headers", CaptureBody: true, Headers: map[string]string{"x-try": "1"}}}
	for i := range 100 {
		reqs = append(reqs, interop.Request{Path: fmt.Sprintf("/tile/%d.svg", i), CaptureBody: true})
	}
	for _, proto := range []string{"spdy/3.1", "spdy/3", "spdy/2"} {
		t.Run(proto, func(t *testing.T) {
			// At most -max-streams (100) streams at once, as a browser
			// keeps to the SETTINGS it was sent.
			rep := interop.RunNodeClient(t, interop.Job{Port: port(s.addrs.tls), TLS: true, Protocol: proto, Requests: reqs, Concurrency: 100})
			checkSession(t, rep, proto)
			want := strings.ToUpper(proto)
			if r := rep.Results[0]; r.Status != 200 || !strings.Contains(r.Body, "This page came over <b>"+want+" session ") {
				t.Errorf("index: %d %q; want it to name %s", r.Status, tail(r.Body, 3), want)
			}
			if r := rep.Results[1]; r.Body != "hello, world\n" {
				t.Errorf("/hello: %d %q %q", r.Status, r.Body, r.Error)
			}
			if r := rep.Results[2]; r.SHA256 != interop.PatternSHA256(100000) {
				t.Errorf("/bytes/100000: %d, %d bytes, %q", r.Status, r.BodyBytes, r.Error)
			}
			if r := rep.Results[3]; !strings.Contains(r.Body, `"X-Try": "1"`) || strings.Contains(r.Body, `"Connection"`) {
				t.Errorf("/headers: %d %q; want X-Try and no Connection", r.Status, r.Body)
			}
			sessions := map[string]bool{}
			for _, r := range rep.Results[4:] {
				if r.Status != 200 || !strings.Contains(r.Body, ">"+want+"<") {
					t.Errorf("%s: %d %q %q; want it to name %s", r.Path, r.Status, r.Body, r.Error, want)
					continue
				}
				if i := strings.Index(r.Body, ">s"); i >= 0 {
					sessions[strings.Fields(r.Body[i+1:])[0]] = true
				}
			}
			if len(sessions) != 1 {
				t.Errorf("tiles came over sessions %v; want one", sessions)
			}
		})
	}
}
