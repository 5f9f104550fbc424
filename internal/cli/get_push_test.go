package cli

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/spdymux/spdymux"
)

// startPushServer serves, over cleartext SPDY and h2c, a page that asks
// for two pushes (X-Associated-Content, Link) and ends with trailers.
func startPushServer(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Associated-Content", `"/res/a"`)
		w.Header().Set("Link", "</res/b>; rel=preload")
		w.Header().Set("Trailer", "Grpc-Status, X-Sum")
		io.WriteString(w, "the page\n")
		w.Header().Set("Grpc-Status", "0")
		w.Header().Set("X-Sum", "42")
	})
	mux.HandleFunc("/res/{name}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "resource %s\n", r.PathValue("name"))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := spdymux.NewListener(ln, &spdymux.Config{Logger: slog.New(slog.DiscardHandler)})
	srv := &http.Server{Handler: mux}
	spdymux.ConfigureServer(srv)
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// get -v lists, after a response's summary, the responses pushed with it
// (SPDY) and its trailers (SPDY and HTTP/2); the frame trace shows the
// push's SYN_STREAM with its associated stream.
func TestGetVerbosePushesAndTrailers(t *testing.T) {
	base := startPushServer(t)
	code, stdout, stderr := runCmd(t, "get", "-v", base+"/page")
	if code != 0 || stdout != "the page\n" {
		t.Fatalf("exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"  pushed GET " + base + "/res/a: 200 OK, 11 bytes\n",
		"  pushed GET " + base + "/res/b: 200 OK, 11 bytes\n",
		"  trailer Grpc-Status: 0\n",
		"  trailer X-Sum: 42\n",
		"send SYN_STREAM stream=1",
		"recv SYN_STREAM stream=2 flags=0x02",
		"associated=1",
		"recv HEADERS stream=1 flags=0x00",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}

	// Without -v no push is taken: the server is told so.
	code, _, stderr = runCmd(t, "get", base+"/page")
	if code != 0 || strings.Contains(stderr, "pushed") || strings.Contains(stderr, "trailer") {
		t.Errorf("without -v: exit %d, stderr:\n%s", code, stderr)
	}

	// HTTP/2 (x/net/http2's client, which takes no push): the trailers.
	code, stdout, stderr = runCmd(t, "get", "-v", "-proto", "h2c", base+"/page")
	if code != 0 || stdout != "the page\n" || !strings.Contains(stderr, "  trailer Grpc-Status: 0\n") || strings.Contains(stderr, "pushed") {
		t.Errorf("h2c: exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
}
