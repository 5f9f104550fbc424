package interop

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"testing"
)

// These tests run client.js against server.js (spdy-transport on both
// ends) to validate the interop client before it is pointed at spdymux.

var protocols = []string{"spdy/3.1", "spdy/3", "spdy/2"}

const (
	mib        = 1 << 20
	resetAfter = 100 * 1024
)

type nodeSession struct {
	port     int
	tls      bool
	protocol string
}

// run runs one job and checks the session-level expectations: the
// negotiated protocol and no session errors.
func (s nodeSession) run(t *testing.T, job Job) Report {
	t.Helper()
	job.Host = "127.0.0.1"
	job.Port = s.port
	job.TLS = s.tls
	job.Protocol = s.protocol
	job.ServerName = "localhost"
	if job.TimeoutMs == 0 {
		job.TimeoutMs = 20000
	}
	if job.WindowSize == 0 {
		// spdy-transport's server forgets a stream once both sides have
		// ended, even with DATA still queued, and answers a late
		// WINDOW_UPDATE for it with RST_STREAM INVALID_STREAM, cutting the
		// response short. A window that never needs credit keeps the
		// client's WINDOW_UPDATEs out of that race.
		job.WindowSize = 1 << 30
	}
	rep := RunNodeClient(t, job)
	if rep.Protocol != s.protocol {
		t.Errorf("protocol = %q, want %q", rep.Protocol, s.protocol)
	}
	if len(rep.SessionErrors) > 0 {
		t.Errorf("session errors: %q", rep.SessionErrors)
	}
	return rep
}

func checkResult(t *testing.T, r Result, status, bodyBytes int) {
	t.Helper()
	if r.Error != "" {
		t.Errorf("%s: error %q", r.Path, r.Error)
	}
	if r.Status != status {
		t.Errorf("%s: status %d, want %d", r.Path, r.Status, status)
	}
	if r.BodyBytes != bodyBytes {
		t.Errorf("%s: %d body bytes, want %d", r.Path, r.BodyBytes, bodyBytes)
	}
	if r.SHA256 != PatternSHA256(bodyBytes) && r.Path != "/hello" {
		t.Errorf("%s: body sha256 %s, want %s", r.Path, r.SHA256, PatternSHA256(bodyBytes))
	}
}

func TestNodeClientAgainstNodeServer(t *testing.T) {
	EnsureNode(t)
	cert, key := WriteSelfSignedCert(t, t.TempDir())
	tlsPort := StartNodeServer(t, true, "", cert, key)

	for _, proto := range protocols {
		for _, useTLS := range []bool{true, false} {
			mode := "plain"
			if useTLS {
				mode = "tls"
			}
			t.Run(proto+"/"+mode, func(t *testing.T) {
				s := nodeSession{port: tlsPort, tls: useTLS, protocol: proto}
				if !useTLS {
					s.port = StartNodeServer(t, false, proto, "", "")
				}
				testNodeSession(t, s)
			})
		}
	}
}

func testNodeSession(t *testing.T, s nodeSession) {
	t.Run("ConcurrentGETs", func(t *testing.T) {
		const n = 50
		var reqs []Request
		sizes := make([]int, n)
		for i := range sizes {
			sizes[i] = (i*6133 + i*i*97) % 300001
		}
		sizes[n-1] = 300000
		for i, size := range sizes {
			reqs = append(reqs, Request{Path: "/bytes/" + strconv.Itoa(size), Priority: i % 8})
		}
		rep := s.run(t, Job{Requests: reqs})
		for i, r := range rep.Results {
			checkResult(t, r, 200, sizes[i])
			if got := r.Header("content-length"); got != strconv.Itoa(sizes[i]) {
				t.Errorf("%s: content-length %q", r.Path, got)
			}
		}
	})

	t.Run("Upload4MiB", func(t *testing.T) {
		rep := s.run(t, Job{Requests: []Request{{
			Method:    "POST",
			Path:      "/echo",
			Headers:   map[string]string{"content-length": strconv.Itoa(4 * mib)},
			BodyBytes: 4 * mib,
		}}})
		checkResult(t, rep.Results[0], 200, 4*mib)
	})

	t.Run("Download4MiB", func(t *testing.T) {
		rep := s.run(t, Job{Requests: []Request{{Path: "/bytes/" + strconv.Itoa(4*mib)}}})
		checkResult(t, rep.Results[0], 200, 4*mib)
	})

	t.Run("Status204", func(t *testing.T) {
		rep := s.run(t, Job{Requests: []Request{{Path: "/status/204"}}})
		checkResult(t, rep.Results[0], 204, 0)
	})

	t.Run("HEAD", func(t *testing.T) {
		rep := s.run(t, Job{Requests: []Request{{Method: "HEAD", Path: "/bytes/1000"}}})
		r := rep.Results[0]
		checkResult(t, r, 200, 0)
		if got := r.Header("content-length"); got != "1000" {
			t.Errorf("HEAD content-length = %q, want 1000", got)
		}
	})

	t.Run("RequestHeaders", func(t *testing.T) {
		rep := s.run(t, Job{Requests: []Request{
			{Path: "/headers", Headers: map[string]string{"X-Interop": "yes"}, CaptureBody: true},
			{Path: "/hello", CaptureBody: true},
		}})
		r := rep.Results[0]
		if r.Error != "" || r.Status != 200 {
			t.Fatalf("/headers: status %d error %q", r.Status, r.Error)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(r.Body), &got); err != nil {
			t.Fatalf("/headers body %q: %v", r.Body, err)
		}
		wantScheme := "http"
		if s.tls {
			wantScheme = "https"
		}
		want := map[string]string{
			"x-interop":  "yes",
			":method":    "GET",
			":path":      "/headers",
			":scheme":    wantScheme,
			":authority": fmt.Sprintf("localhost:%d", s.port),
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("server saw %s = %v, want %q (all: %v)", k, got[k], v, got)
			}
		}
		if h := rep.Results[1]; h.Status != 200 || h.Body != "hello, world\n" {
			t.Errorf("/hello: status %d body %q", h.Status, h.Body)
		}
	})

	t.Run("ResetThenReuse", func(t *testing.T) {
		// Concurrency 1: the second request starts after the reset.
		rep := s.run(t, Job{Concurrency: 1, Requests: []Request{
			{Path: "/bytes/" + strconv.Itoa(4*mib), ResetAfterBytes: resetAfter},
			{Path: "/bytes/300000"},
		}})
		r := rep.Results[0]
		if !r.Reset || r.Error != "" || r.Status != 200 {
			t.Errorf("reset request: reset=%v status=%d error=%q", r.Reset, r.Status, r.Error)
		}
		if r.BodyBytes != resetAfter || r.SHA256 != PatternSHA256(resetAfter) {
			t.Errorf("reset request: %d bytes (sha %s), want the first %d", r.BodyBytes, r.SHA256, resetAfter)
		}
		checkResult(t, rep.Results[1], 200, 300000)
	})

	t.Run("Ping", func(t *testing.T) {
		rep := s.run(t, Job{Ping: true, Requests: []Request{{Path: "/hello"}}})
		if rep.PingMs == nil || *rep.PingMs < 0 {
			t.Errorf("no ping round trip reported")
		}
		checkResult(t, rep.Results[0], 200, 13)
	})
}

// TestNodeServerPlainAutoDetect covers server.js's plain mode without a
// fixed protocol: the version comes from the client's first frame.
func TestNodeServerPlainAutoDetect(t *testing.T) {
	port := StartNodeServer(t, false, "", "", "")
	for _, proto := range protocols {
		t.Run(proto, func(t *testing.T) {
			s := nodeSession{port: port, protocol: proto}
			rep := s.run(t, Job{Requests: []Request{
				{Path: "/bytes/300000"},
				{Method: "PUT", Path: "/echo", BodyBytes: 300000},
			}})
			checkResult(t, rep.Results[0], 200, 300000)
			checkResult(t, rep.Results[1], 200, 300000)
		})
	}
}

// TestNodeClientALPNMismatch checks that a protocol the server does not
// offer is reported, not a job failure.
func TestNodeClientALPNMismatch(t *testing.T) {
	cert, key := WriteSelfSignedCert(t, t.TempDir())
	port := StartNodeServer(t, true, "spdy/3.1", cert, key)
	rep := RunNodeClient(t, Job{Host: "127.0.0.1", Port: port, TLS: true, Protocol: "spdy/2",
		ServerName: "localhost", TimeoutMs: 10000, Requests: []Request{{Path: "/hello"}}})
	if len(rep.SessionErrors) == 0 {
		t.Errorf("no session error reported")
	}
	if rep.Results[0].Error == "" || rep.Results[0].Status != 0 {
		t.Errorf("request result %+v, want an error", rep.Results[0])
	}
}

// TestNodeServerOwnCertificate covers server.js making its own certificate.
func TestNodeServerOwnCertificate(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not found: server.js needs it to make its own certificate")
	}
	port := StartNodeServer(t, true, "", "", "")
	s := nodeSession{port: port, tls: true, protocol: "spdy/3.1"}
	rep := s.run(t, Job{Requests: []Request{{Path: "/hello"}}})
	checkResult(t, rep.Results[0], 200, 13)
}
