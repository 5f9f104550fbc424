package spdymux_test

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/spdymux/spdymux"
	"github.com/spdymux/spdymux/internal/interop"
)

// testHandler serves the endpoints the interop tests use.
func testHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello, world\n")
	})
	mux.HandleFunc("/bytes/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.PathValue("n"))
		if err != nil || n < 0 {
			http.Error(w, "bad size", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(n))
		if r.Method == http.MethodHead {
			return
		}
		w.Write(interop.PatternBytes(n))
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength >= 0 {
			w.Header().Set("Content-Length", strconv.FormatInt(r.ContentLength, 10))
		}
		io.Copy(w, r.Body)
	})
	mux.HandleFunc("/status/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		if n == http.StatusNotModified {
			w.Header().Set("ETag", `"x"`)
		}
		w.WriteHeader(n)
	})
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		h := map[string][]string{}
		for k, v := range r.Header {
			h[strings.ToLower(k)] = v
		}
		h["host"] = []string{r.Host}
		h["proto"] = []string{r.Proto}
		if info, ok := spdymux.StreamInfoFromContext(r.Context()); ok {
			h["x-spdy-protocol"] = []string{info.Protocol}
		}
		json.NewEncoder(w).Encode(h)
	})
	return mux
}

// startServer serves testHandler over spdymux on loopback, with TLS when
// cert is set.
func startServer(t *testing.T, cfg *spdymux.Config) (port int, l *spdymux.Listener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l = spdymux.NewListener(ln, cfg)
	srv := &http.Server{Handler: testHandler()}
	spdymux.ConfigureServer(srv)
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port, l
}

func TestInteropNodeClient(t *testing.T) {
	interop.EnsureNode(t)
	certFile, keyFile := interop.WriteSelfSignedCert(t, t.TempDir())
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	tlsPort, _ := startServer(t, &spdymux.Config{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}})
	plainPort, _ := startServer(t, nil)
	// Cleartext SPDY/3 and 3.1 look alike; a listener for SPDY/3
	// clients is configured so (Config.CleartextV3).
	plain3Port, _ := startServer(t, &spdymux.Config{CleartextV3: spdymux.ProtoSPDY3})

	type mode struct {
		proto string
		tls   bool
		port  int
	}
	var modes []mode
	for _, p := range []string{spdymux.ProtoSPDY31, spdymux.ProtoSPDY3, spdymux.ProtoSPDY2} {
		modes = append(modes, mode{p, true, tlsPort})
		port := plainPort
		if p == spdymux.ProtoSPDY3 {
			port = plain3Port
		}
		modes = append(modes, mode{p, false, port})
	}
	for _, m := range modes {
		name := m.proto + "/plain"
		if m.tls {
			name = m.proto + "/tls"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			run := func(job interop.Job) interop.Report {
				job.Host, job.Port, job.TLS, job.Protocol, job.ServerName = "127.0.0.1", m.port, m.tls, m.proto, "localhost"
				job.TimeoutMs = 60000
				rep := interop.RunNodeClient(t, job)
				if rep.Protocol != m.proto {
					t.Errorf("protocol %q, want %q", rep.Protocol, m.proto)
				}
				if len(rep.SessionErrors) > 0 {
					t.Errorf("session errors: %q", rep.SessionErrors)
				}
				return rep
			}

			// Many concurrent streams on one session, big bodies both ways,
			// bodiless responses, large and repeated headers, PING.
			const big = 4 << 20
			var reqs []interop.Request
			for i := range 50 {
				reqs = append(reqs, interop.Request{Path: fmt.Sprintf("/bytes/%d", i*6007), Priority: i % 8})
			}
			reqs = append(reqs,
				interop.Request{Method: "POST", Path: "/echo", BodyBytes: big},
				interop.Request{Method: "PUT", Path: "/echo", BodyBytes: 300000, Headers: map[string]string{"content-length": "300000"}},
				interop.Request{Path: fmt.Sprintf("/bytes/%d", big)},
				interop.Request{Path: "/status/204"},
				interop.Request{Path: "/status/304"},
				interop.Request{Method: "HEAD", Path: "/bytes/1000"},
				interop.Request{Path: "/headers", CaptureBody: true, Headers: map[string]string{
					"x-large": strings.Repeat("v", 16000),
					"x-other": "one",
				}},
				interop.Request{Path: "/hello", CaptureBody: true},
			)
			rep := run(interop.Job{Requests: reqs, Ping: true})
			for i, r := range rep.Results[:50] {
				checkPattern(t, r, 200, i*6007)
			}
			rs := rep.Results[50:]
			checkPattern(t, rs[0], 200, big)
			checkPattern(t, rs[1], 200, 300000)
			checkPattern(t, rs[2], 200, big)
			checkPattern(t, rs[3], 204, 0)
			checkPattern(t, rs[4], 304, 0)
			checkPattern(t, rs[5], 200, 0)
			if got := rs[5].Header("content-length"); got != "1000" {
				t.Errorf("HEAD content-length %q, want 1000", got)
			}
			var seen map[string][]string
			if err := json.Unmarshal([]byte(rs[6].Body), &seen); err != nil {
				t.Fatalf("/headers body %q: %v", rs[6].Body, err)
			}
			if got := seen["x-large"]; len(got) != 1 || got[0] != strings.Repeat("v", 16000) {
				t.Errorf("x-large header lost (%d values)", len(got))
			}
			if got := seen["x-spdy-protocol"]; len(got) != 1 || got[0] != m.proto {
				t.Errorf("handler saw protocol %q, want %q", got, m.proto)
			}
			if got := rs[6].Headers["set-cookie"]; fmt.Sprint(got) != "[a=1 b=2]" {
				t.Errorf("set-cookie %v, want [a=1 b=2]", got)
			}
			if rs[7].Body != "hello, world\n" || rs[7].Status != 200 {
				t.Errorf("/hello: %d %q", rs[7].Status, rs[7].Body)
			}
			if rep.PingMs == nil {
				t.Errorf("no PING reply")
			}

			// A reset mid-download, then the session goes on.
			rep = run(interop.Job{Concurrency: 1, Requests: []interop.Request{
				{Path: fmt.Sprintf("/bytes/%d", big), ResetAfterBytes: 100 << 10},
				{Path: "/bytes/300000"},
				{Method: "POST", Path: "/echo", BodyBytes: 200000},
			}})
			if r := rep.Results[0]; !r.Reset || r.BodyBytes >= big {
				t.Errorf("reset download: reset=%v bytes=%d error=%q", r.Reset, r.BodyBytes, r.Error)
			}
			checkPattern(t, rep.Results[1], 200, 300000)
			checkPattern(t, rep.Results[2], 200, 200000)
		})
	}
}

func checkPattern(t *testing.T, r interop.Result, status, n int) {
	t.Helper()
	if r.Error != "" {
		t.Errorf("%s: %s", r.Path, r.Error)
		return
	}
	if r.Status != status {
		t.Errorf("%s: status %d, want %d", r.Path, r.Status, status)
	}
	if r.BodyBytes != n || r.SHA256 != interop.PatternSHA256(n) {
		t.Errorf("%s: %d body bytes (sha256 %s), want %d exact", r.Path, r.BodyBytes, r.SHA256, n)
	}
}
