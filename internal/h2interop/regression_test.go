package h2interop

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spdymux/spdymux/internal/interop"
)

// TestRequestTrailersWithContentLength sends request trailers after a body
// with a content-length, as Go's HTTP/2 client does for any request with
// http.Request.Trailer set and a body of known size, and nghttp does for
// -d FILE --trailer; both declare them in a trailer field first. The
// handler must see them in r.Trailer, as it does when the body has no
// content-length (TestGoClients, TestNodeHTTP2). HTTP/1.1 carries
// trailers only after a chunked body, so such a request reaches a
// secondary connection chunked, without its content-length (the session
// still checks the body against it); in handler mode it keeps it.
func TestRequestTrailersWithContentLength(t *testing.T) {
	s := startServer(t)
	for _, h2c := range []bool{false, true} {
		t.Run("go/"+protocol(h2c), func(t *testing.T) {
			c := newNetHTTPClient(s, h2c)
			defer c.CloseIdleConnections()
			upload := patternBytes(1000)
			req := mustRequest(t, "POST", s.url(h2c)+"/echo", bytes.NewReader(upload))
			req.Trailer = http.Header{"X-Client-Trailer": {"from the client"}}
			resp, got := do(t, c, req)
			// Handler mode keeps the length; HTTP/1.1 to a secondary
			// connection must go chunked to carry the trailers.
			want := "-1"
			if *handlerMode {
				want = "1000"
			}
			if !bytes.Equal(got, upload) || resp.Header.Get("X-Request-Content-Length") != want {
				t.Fatalf("echo: %d bytes back, content-length %q; want the 1000 sent, with content-length %s", len(got), resp.Header.Get("X-Request-Content-Length"), want)
			}
			checkTrailers(t, resp.Trailer, http.Header{"X-Got-X-Client-Trailer": {"from the client"}})
		})
		t.Run("nghttp/"+protocol(h2c), func(t *testing.T) {
			bin := interop.LookTool(t, "nghttp", nghttp2Install)
			upload := filepath.Join(t.TempDir(), "upload")
			if err := os.WriteFile(upload, patternBytes(1000), 0o644); err != nil {
				t.Fatal(err)
			}
			out := run(t, nil, bin, "-nv", "-d", upload, "--trailer", "x-client-trailer: from nghttp", s.url(h2c)+"/echo")
			st := parseNghttp(out).byPath(t, "/echo")
			if got := st.field(1, "x-got-x-client-trailer"); !slices.Equal(got, []string{"from nghttp"}) {
				t.Errorf("the handler saw trailer x-client-trailer %q; want \"from nghttp\" (response blocks %v)", got, st.blocks)
			}
		})
	}
}

// endLateJS posts 64 KiB, exactly the stream window spdymux advertises,
// with that content-length; once the response has ended it ends the
// request with an empty DATA frame. nghttp2 (inside node) sends no DATA
// frame, not even an empty one with END_STREAM, into a stream window of
// zero: the stream can close only once the server credits the window or
// resets the stream, as Go's own HTTP/2 server does (RST_STREAM NO_ERROR
// once the handler has returned).
const endLateJS = `
const http2 = require('http2')
const s = http2.connect(process.argv[1], { rejectUnauthorized: false })
const req = s.request({ ':method': 'POST', ':path': '/echo', 'content-length': '65536' }, { endStream: false })
req.write(Buffer.alloc(65536))
let got = 0
req.on('data', (c) => { got += c.length })
req.on('end', () => { console.log('response ended after ' + got + ' bytes; ending the request'); req.end() })
req.on('close', () => { console.log('stream closed, rstCode ' + req.rstCode); process.exit(0) })
setTimeout(() => { console.log('stream still open after 3 s: ' + JSON.stringify(req.state)); process.exit(1) }, 3000)
`

// TestEndStreamAfterCompleteResponse: a client that sent the whole body
// of known length but not yet END_STREAM, and got the whole response,
// must be able to close the stream. Today the stream stays half-closed
// (remote) on node's side and open on spdymux's until the connection
// ends: spdymux gives no stream credit past a body of known length
// (stream.windowCoversRest), so the window stays at zero.
func TestEndStreamAfterCompleteResponse(t *testing.T) {
	node := interop.LookTool(t, "node", "install Node.js")
	s := startServer(t)
	for _, h2c := range []bool{false, true} {
		t.Run(protocol(h2c), func(t *testing.T) {
			out, err := exec.Command(node, "-e", endLateJS, s.url(h2c)).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "stream closed") {
				t.Errorf("node: %v\n%s", err, out)
			}
		})
	}
}
