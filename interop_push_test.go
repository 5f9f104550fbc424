package spdymux_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/spdymux/spdymux"
	"github.com/spdymux/spdymux/internal/interop"
)

// interopPushSite serves /page, which asks for three pushes (two by
// X-Associated-Content, one of them 300000 pattern bytes, one by Link)
// and ends with trailers, and the pushed resources.
func interopPushSite() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Associated-Content", `"/res/a.css":1, "/bytes/300000"`)
		w.Header().Set("Link", "</res/b.js>; rel=preload; as=script")
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "<html>the page</html>")
		w.Header().Set("X-Checksum", "abc")
	})
	mux.HandleFunc("/res/{name}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "resource %s\n", r.PathValue("name"))
	})
	mux.Handle("/bytes/", testHandler())
	return mux
}

// node's spdy-transport, which nobody here wrote, takes spdymux's pushes
// on SPDY/3.1, SPDY/3 and SPDY/2 over TLS and cleartext: each is a
// 'pushPromise' event on the page's stream before the page ends, with the
// promised path, then the pushed response and its body, whole; the page's
// trailers are a 'headers' event (SPDY/2 has no trailers). A client that
// aborts every push still gets its page, and the session goes on.
//
// On SPDY/2 spdy-transport's client reads a push as on SPDY/3, renaming
// url :path and host :authority: the path it reports is the url spdymux
// sends, the full URL (draft 2; Chromium required it), and its host the
// page's.
func TestInteropNodePush(t *testing.T) {
	interop.EnsureNode(t)
	certFile, keyFile := interop.WriteSelfSignedCert(t, t.TempDir())
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	serve := func(cfg *spdymux.Config) (int, *spdymux.Listener) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Logger = quietLogger()
		l := spdymux.NewListener(ln, cfg)
		srv := &http.Server{Handler: interopPushSite()}
		spdymux.ConfigureServer(srv)
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
		return ln.Addr().(*net.TCPAddr).Port, l
	}
	tlsPort, _ := serve(&spdymux.Config{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}})
	plainPort, _ := serve(&spdymux.Config{})
	plain3Port, _ := serve(&spdymux.Config{CleartextV3: spdymux.ProtoSPDY3})

	for _, m := range []struct {
		proto string
		tls   bool
		port  int
	}{
		{spdymux.ProtoSPDY31, true, tlsPort}, {spdymux.ProtoSPDY31, false, plainPort},
		{spdymux.ProtoSPDY3, true, tlsPort}, {spdymux.ProtoSPDY3, false, plain3Port},
		{spdymux.ProtoSPDY2, true, tlsPort}, {spdymux.ProtoSPDY2, false, plainPort},
	} {
		name := m.proto + "/plain"
		if m.tls {
			name = m.proto + "/tls"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			job := interop.Job{Host: "127.0.0.1", Port: m.port, TLS: m.tls, Protocol: m.proto, ServerName: "localhost",
				Concurrency: 1, Requests: []interop.Request{
					{Path: "/page", CaptureBody: true},
					{Path: "/page", CaptureBody: true}, // pushed once per session: no push
				}}
			rep := interop.RunNodeClient(t, job)
			if len(rep.SessionErrors) > 0 {
				t.Errorf("session errors: %q", rep.SessionErrors)
			}
			page := rep.Results[0]
			if page.Error != "" || page.Status != 200 || page.Body != "<html>the page</html>" {
				t.Fatalf("page: %d %q, error %q", page.Status, page.Body, page.Error)
			}
			if page.Header("x-associated-content") != "" {
				t.Error("x-associated-content reached the client")
			}
			if got := fmt.Sprint(page.Trailers["x-checksum"]); got != "abc" && m.proto != spdymux.ProtoSPDY2 {
				t.Errorf("trailers %v; want x-checksum abc", page.Trailers)
			}
			want := map[string]string{"/res/a.css": "resource a.css\n", "/res/b.js": "resource b.js\n", "/bytes/300000": ""}
			if len(page.Pushes) != len(want) {
				t.Errorf("%d pushes: %+v; want %d", len(page.Pushes), page.Pushes, len(want))
			}
			host, scheme := fmt.Sprintf("localhost:%d", m.port), "http"
			if m.tls {
				scheme = "https"
			}
			for _, p := range page.Pushes {
				if m.proto == spdymux.ProtoSPDY2 {
					// The full URL, on the page's origin.
					path, full := strings.CutPrefix(p.Path, scheme+"://"+host)
					if !full || !strings.HasPrefix(path, "/") || p.Host != host {
						t.Errorf("SPDY/2 push %q, host %q; want a full URL on %s://%s", p.Path, p.Host, scheme, host)
					}
					p.Path = path
				}
				body, ok := want[p.Path]
				switch {
				case !ok:
					t.Errorf("unexpected push %+v", p)
					continue
				case p.Error != "" || p.Status != 200 || p.Method != "GET" || p.ID%2 != 0 || !p.BeforeEnd:
					t.Errorf("push %s: %+v; want GET, 200, an even id, promised before the page's end", p.Path, p)
				case p.Path == "/bytes/300000":
					if p.BodyBytes != 300000 || p.SHA256 != interop.PatternSHA256(300000) {
						t.Errorf("push %s: %d bytes, sha %s; want the 300000-byte pattern", p.Path, p.BodyBytes, p.SHA256)
					}
				case p.Body != body:
					t.Errorf("push %s: body %q; want %q", p.Path, p.Body, body)
				}
			}
			if again := rep.Results[1]; again.Status != 200 || len(again.Pushes) != 0 {
				t.Errorf("second page: %d, %d pushes; want 200, none (once per session)", again.Status, len(again.Pushes))
			}

			// A client that aborts its pushes.
			job.Requests = []interop.Request{{Path: "/page", RefusePushes: true, CaptureBody: true}, {Path: "/res/c", CaptureBody: true}}
			rep = interop.RunNodeClient(t, job)
			if r := rep.Results[0]; r.Status != 200 || r.Body != "<html>the page</html>" || len(r.Pushes) != 3 {
				t.Errorf("page, pushes refused: %d %q, %d pushes, error %q", r.Status, r.Body, len(r.Pushes), r.Error)
			}
			if r := rep.Results[1]; r.Status != 200 || r.Body != "resource c\n" {
				t.Errorf("after refused pushes: %d %q, error %q", r.Status, r.Body, r.Error)
			}
			if len(rep.SessionErrors) > 0 {
				t.Errorf("session errors: %q", rep.SessionErrors)
			}
		})
	}
}
