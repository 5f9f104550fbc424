package h2interop

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/spdymux/spdymux/internal/interop"
)

// TestNodeHTTP2 runs node's built-in http2 client (nghttp2 inside node)
// over h2 and h2c: 100 streams at once on one session, then large bodies
// both ways, trailers both ways, 103, HEAD, 204, 304 and many fields on
// another.
func TestNodeHTTP2(t *testing.T) {
	interop.LookTool(t, "node", "install Node.js")
	s := startServer(t)
	for _, h2c := range []bool{false, true} {
		t.Run(protocol(h2c), func(t *testing.T) {
			base := s.url(h2c)
			proto := protocol(h2c)
			check := func(t *testing.T, rep interop.H2Report) {
				t.Helper()
				if rep.Protocol != proto {
					t.Errorf("session protocol %q; want %q", rep.Protocol, proto)
				}
				if len(rep.SessionErrors) > 0 {
					t.Errorf("session errors: %q", rep.SessionErrors)
				}
				if len(rep.OpenStreams) > 0 {
					// Only uploads with a content-length whose last DATA
					// frame came without END_STREAM, as node sends it at
					// times: TestEndStreamAfterCompleteResponse.
					t.Logf("streams left half-closed: %q", rep.OpenStreams)
				}
				for _, r := range rep.Results {
					if r.Error != "" {
						t.Errorf("%s: %s", r.Path, r.Error)
					}
				}
				s.checkOneSession(t, proto)
			}

			t.Run("100 concurrent streams", func(t *testing.T) {
				const n = 100
				sz := sizes(n, 100000)
				q := fmt.Sprintf("?gate=node-%s&n=%d", proto, n)
				var reqs []interop.H2Request
				for i := range n {
					switch i % 5 {
					case 0, 1:
						reqs = append(reqs, interop.H2Request{Path: fmt.Sprintf("/bytes/%d%s", sz[i], q)})
					case 2:
						reqs = append(reqs, interop.H2Request{Path: fmt.Sprintf("/stream/%d%s", sz[i], q)})
					case 3:
						reqs = append(reqs, interop.H2Request{Method: "POST", Path: "/echo" + q, BodyBytes: sz[i] / 4})
					case 4:
						reqs = append(reqs, interop.H2Request{Method: "POST", Path: "/echo" + q, BodyBytes: sz[i] / 4, NoContentLength: true})
					}
				}
				rep := interop.RunNodeH2Client(t, interop.H2Job{URL: base, Requests: reqs})
				check(t, rep)
				if got := rep.RemoteSettings["maxConcurrentStreams"]; got != float64(100) {
					t.Errorf("server SETTINGS maxConcurrentStreams %v; want 100", got)
				}
				for i, r := range rep.Results {
					want := sz[i]
					if i%5 >= 3 {
						want = sz[i] / 4
					}
					if r.Status != 200 || r.BodyBytes != want || r.SHA256 != patternSHA(want) {
						t.Errorf("%s: status %d, %d bytes; want 200 and %d pattern bytes", r.Path, r.Status, r.BodyBytes, want)
					}
					if r.Header("x-stream-protocol") != proto {
						t.Errorf("%s: the handler saw protocol %q", r.Path, r.Header("x-stream-protocol"))
					}
				}
			})

			t.Run("one session through every handler", func(t *testing.T) {
				reqs := []interop.H2Request{
					{Path: "/proto", CaptureBody: true},
					{Path: "/bytes/" + strconv.Itoa(bigBody)},
					{Path: "/stream/" + strconv.Itoa(bigBody)},
					{Method: "POST", Path: "/echo", BodyBytes: bigBody},
					{Method: "POST", Path: "/echo", BodyBytes: bigBody, NoContentLength: true},
					// Request trailers after a body of unknown length (with
					// a content-length they are lost:
					// TestRequestTrailersWithContentLength).
					{Method: "POST", Path: "/echo", BodyBytes: 100000, NoContentLength: true,
						Trailers: map[string]string{"x-client-trailer": "from node", "x-client-sum": patternSHA(100000)}},
					{Path: "/trailers", CaptureBody: true},
					{Path: "/early-hints", CaptureBody: true},
					{Method: "HEAD", Path: "/bytes/123456"},
					{Path: "/status/204"},
					{Path: "/status/304"},
					{Path: "/headers", CaptureBody: true, Headers: map[string]string{"cookie": "a=1; b=2; c=3", "x-req": "node"}},
				}
				rep := interop.RunNodeH2Client(t, interop.H2Job{URL: base, Requests: reqs, TimeoutMs: 30000})
				check(t, rep)
				res := rep.Results

				var p protoReport
				if err := json.Unmarshal([]byte(res[0].Body), &p); err != nil || p.Protocol != proto || p.Proto != handlerProto() || p.HTTPProto != "HTTP/2.0" {
					t.Errorf("/proto: %q (%v); want protocol %s", res[0].Body, err, proto)
				}
				for _, r := range res[1:5] {
					if r.Status != 200 || r.BodyBytes != bigBody || r.SHA256 != patternSHA(bigBody) {
						t.Errorf("%s: status %d, %d bytes; want 200 and the %d pattern bytes", r.Path, r.Status, r.BodyBytes, bigBody)
					}
				}
				if got := res[1].Header("content-length"); got != strconv.Itoa(bigBody) {
					t.Errorf("/bytes: content-length %q", got)
				}
				for i, cl := range map[int]string{3: strconv.Itoa(bigBody), 4: "-1"} {
					if got := res[i].Header("x-request-content-length"); got != cl {
						t.Errorf("upload %d: the handler saw content-length %s; want %s", i, got, cl)
					}
					if got := res[i].Trailer("x-echo-sha256"); got != patternSHA(bigBody) {
						t.Errorf("upload %d: the handler read sha %s; want %s", i, got, patternSHA(bigBody))
					}
				}
				if r := res[5]; r.SHA256 != patternSHA(100000) || r.Trailer("x-got-x-client-trailer") != "from node" ||
					r.Trailer("x-got-x-client-sum") != patternSHA(100000) || r.Trailer("x-echo-bytes") != "100000" {
					t.Errorf("trailers up: %d bytes back, trailers %v; want the handler to have seen x-client-trailer and x-client-sum", r.BodyBytes, r.Trailers)
				}
				if r := res[6]; r.Body != "trailers follow\n" || r.Trailer("x-trailer-one") != "one" || r.Trailer("x-trailer-two") != "two" {
					t.Errorf("/trailers: %q, trailers %v", r.Body, r.Trailers)
				}
				if r := res[7]; len(r.Informational) != 1 || headerOf(r.Informational[0], ":status") != "103" ||
					headerOf(r.Informational[0], "link") != earlyLink || r.Status != 200 || r.Body != "early hints sent\n" ||
					r.Header("link") != earlyLink+", "+finalLink {
					// node joins repeated fields but set-cookie with ", ".
					t.Errorf("/early-hints: interim %v, final %d %q link %q", r.Informational, r.Status, r.Body, r.Header("link"))
				}
				if r := res[8]; r.Status != 200 || r.BodyBytes != 0 || r.Header("content-length") != "123456" {
					t.Errorf("HEAD: %d, %d bytes, content-length %q", r.Status, r.BodyBytes, r.Header("content-length"))
				}
				for i, code := range map[int]int{9: 204, 10: 304} {
					if r := res[i]; r.Status != code || r.BodyBytes != 0 {
						t.Errorf("%s: %d, %d bytes", r.Path, r.Status, r.BodyBytes)
					}
				}
				r := res[11]
				if got := r.Values("set-cookie"); !slices.Equal(got, cookies) {
					t.Errorf("set-cookie %q; want %q", got, cookies)
				}
				for i := range manyFields {
					if got, want := r.Header(fmt.Sprintf("x-many-%03d", i)), fmt.Sprintf("value %d of %d", i, manyFields); got != want {
						t.Errorf("x-many-%03d: %q; want %q", i, got, want)
					}
				}
				var seen map[string][]string
				if err := json.Unmarshal([]byte(r.Body), &seen); err != nil || !slices.Equal(seen["Cookie"], []string{"a=1; b=2; c=3"}) || !slices.Equal(seen["X-Req"], []string{"node"}) {
					t.Errorf("the handler saw %q (%v); want Cookie \"a=1; b=2; c=3\" and X-Req", r.Body, err)
				}
			})
		})
	}
}

func headerOf(m map[string]any, name string) string {
	return interop.H2Result{Headers: m}.Header(name)
}
