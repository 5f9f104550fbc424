package h2interop

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// A goClient is one of Go's HTTP/2 clients, with a count of the
// connections it dialled.
type goClient struct {
	*http.Client
	dials *atomic.Int32
}

// newNetHTTPClient is net/http's own HTTP/2 client: http.Transport with
// Protocols set to HTTP/2 only (h2 over TLS, or h2c with prior knowledge).
func newNetHTTPClient(s *server, h2c bool) goClient {
	dials := new(atomic.Int32)
	var d net.Dialer
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{RootCAs: s.roots},
	}
	tr.Protocols = new(http.Protocols)
	if h2c {
		tr.Protocols.SetUnencryptedHTTP2(true)
	} else {
		tr.Protocols.SetHTTP2(true)
	}
	return goClient{&http.Client{Transport: tr, Timeout: 60 * time.Second}, dials}
}

// newXNetClient is golang.org/x/net/http2's Transport: TLS with ALPN h2,
// or AllowHTTP with a cleartext dial for h2c.
func newXNetClient(s *server, h2c bool) goClient {
	dials := new(atomic.Int32)
	tr := &http2.Transport{
		TLSClientConfig: &tls.Config{RootCAs: s.roots},
		AllowHTTP:       h2c,
		DialTLSContext: func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
			dials.Add(1)
			if h2c {
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			}
			d := tls.Dialer{Config: cfg}
			return d.DialContext(ctx, network, addr)
		},
	}
	return goClient{&http.Client{Transport: tr, Timeout: 60 * time.Second}, dials}
}

// TestGoClients runs Go's two HTTP/2 clients, each over h2 and h2c,
// through every handler; each client must do all of it over one
// connection.
func TestGoClients(t *testing.T) {
	s := startServer(t)
	for _, c := range []struct {
		name string
		new  func(*server, bool) goClient
	}{
		{"net-http", newNetHTTPClient},
		{"x-net-http2", newXNetClient},
	} {
		for _, h2c := range []bool{false, true} {
			t.Run(c.name+"/"+protocol(h2c), func(t *testing.T) {
				client := c.new(s, h2c)
				defer client.CloseIdleConnections()
				testGoClient(t, s, client, h2c)
				if n := client.dials.Load(); n != 1 {
					t.Errorf("the client dialled %d connections; want 1", n)
				}
				s.checkOneSession(t, protocol(h2c))
			})
		}
	}
}

func testGoClient(t *testing.T, s *server, c goClient, h2c bool) {
	base := s.url(h2c)
	proto := protocol(h2c)

	// The first request alone: it makes the connection the others share.
	t.Run("protocol", func(t *testing.T) {
		resp, body := do(t, c, mustRequest(t, "GET", base+"/proto", nil))
		if resp.ProtoMajor != 2 {
			t.Errorf("response protocol %s; want HTTP/2.0", resp.Proto)
		}
		var p protoReport
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatalf("/proto: %v: %q", err, body)
		}
		want := protoReport{Protocol: proto, HTTPProto: "HTTP/2.0", Proto: handlerProto(), Session: p.Session, Stream: 1}
		if !h2c {
			want.ALPN = "h2"
		}
		if p != want {
			t.Errorf("the handler saw %+v; want %+v", p, want)
		}
	})

	t.Run("100 concurrent streams", func(t *testing.T) {
		// The gate opens only once all 100 requests are in their
		// handlers: they were open at once, and the dial count shows
		// over one connection.
		const n = 100
		gate := fmt.Sprintf("go-%p", c.Client)
		conns := map[net.Conn]bool{}
		var mu sync.Mutex
		trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
			mu.Lock()
			conns[info.Conn] = true
			mu.Unlock()
		}}
		sz := sizes(n, 100000)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				q := fmt.Sprintf("?gate=%s&n=%d", gate, n)
				var req *http.Request
				var want []byte
				switch i % 4 {
				case 0, 1:
					req = mustRequest(t, "GET", fmt.Sprintf("%s/bytes/%d%s", base, sz[i], q), nil)
					want = patternBytes(sz[i])
				case 2:
					req = mustRequest(t, "GET", fmt.Sprintf("%s/stream/%d%s", base, sz[i], q), nil)
					want = patternBytes(sz[i])
				case 3:
					want = patternBytes(sz[i] / 4)
					req = mustRequest(t, "POST", base+"/echo"+q, bytes.NewReader(want))
				}
				req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
				resp, body, err := tryDo(c, req)
				if err != nil {
					t.Error(err)
					return
				}
				if resp.StatusCode != 200 || !bytes.Equal(body, want) {
					t.Errorf("%s %s: status %d, %d bytes (sha %s); want 200 and %d pattern bytes",
						req.Method, req.URL.Path, resp.StatusCode, len(body), sha(body), len(want))
				}
				if got := resp.Header.Get("X-Stream-Protocol"); got != proto {
					t.Errorf("%s: the handler saw protocol %q; want %q", req.URL.Path, got, proto)
				}
			})
		}
		wg.Wait()
		if len(conns) != 1 {
			t.Errorf("the requests went over %d connections; want 1", len(conns))
		}
	})

	t.Run("download 4 MiB", func(t *testing.T) {
		for _, path := range []string{"/bytes/", "/stream/"} {
			resp, body := do(t, c, mustRequest(t, "GET", base+path+strconv.Itoa(bigBody), nil))
			if resp.StatusCode != 200 || len(body) != bigBody || sha(body) != patternSHA(bigBody) {
				t.Errorf("%s: status %d, %d bytes; want 200 and the %d pattern bytes", path, resp.StatusCode, len(body), bigBody)
			}
			wantCL := int64(bigBody)
			if path == "/stream/" {
				wantCL = -1
			}
			if resp.ContentLength != wantCL {
				t.Errorf("%s: content-length %d; want %d", path, resp.ContentLength, wantCL)
			}
		}
	})

	t.Run("upload 4 MiB", func(t *testing.T) {
		for _, known := range []bool{true, false} {
			var body io.Reader = &patternReader{n: bigBody}
			if known {
				body = bytes.NewReader(patternBytes(bigBody))
			}
			req := mustRequest(t, "POST", base+"/echo", body)
			wantCL := "-1"
			if known {
				wantCL = strconv.Itoa(bigBody)
			} else {
				req.ContentLength = -1
			}
			resp, got := do(t, c, req)
			if resp.StatusCode != 200 || len(got) != bigBody || sha(got) != patternSHA(bigBody) {
				t.Errorf("content-length %s: status %d, %d bytes back; want 200 and the %d bytes sent", wantCL, resp.StatusCode, len(got), bigBody)
			}
			if cl := resp.Header.Get("X-Request-Content-Length"); cl != wantCL {
				t.Errorf("the handler saw content-length %s; want %s", cl, wantCL)
			}
			if n, h := resp.Trailer.Get("X-Echo-Bytes"), resp.Trailer.Get("X-Echo-Sha256"); n != strconv.Itoa(bigBody) || h != patternSHA(bigBody) {
				t.Errorf("content-length %s: the handler read %s bytes, sha %s; want %d, %s", wantCL, n, h, bigBody, patternSHA(bigBody))
			}
		}
	})

	t.Run("HEAD", func(t *testing.T) {
		resp, body := do(t, c, mustRequest(t, "HEAD", base+"/bytes/123456", nil))
		if resp.StatusCode != 200 || resp.ContentLength != 123456 || len(body) != 0 {
			t.Errorf("status %d, content-length %d, %d body bytes; want 200, 123456, 0", resp.StatusCode, resp.ContentLength, len(body))
		}
	})

	t.Run("204 and 304", func(t *testing.T) {
		for _, code := range []int{204, 304} {
			resp, body := do(t, c, mustRequest(t, "GET", fmt.Sprintf("%s/status/%d", base, code), nil))
			if resp.StatusCode != code || len(body) != 0 {
				t.Errorf("/status/%d: status %d, %d body bytes", code, resp.StatusCode, len(body))
			}
			if code == 304 && resp.Header.Get("ETag") != `"v1"` {
				t.Errorf("304: ETag %q; want \"v1\"", resp.Header.Get("ETag"))
			}
		}
	})

	t.Run("many fields and set-cookie", func(t *testing.T) {
		req := mustRequest(t, "GET", base+"/headers", nil)
		for i := range 50 {
			req.Header.Set(fmt.Sprintf("X-Req-%02d", i), strconv.Itoa(i))
		}
		// Go's HTTP/2 client sends the cookie as crumbs, one field each
		// (RFC 9113 §8.2.3); HTTP/1.1 needs them joined again.
		req.Header.Set("Cookie", "a=1; b=2; c=3")
		resp, body := do(t, c, req)
		for i := range manyFields {
			k := fmt.Sprintf("X-Many-%03d", i)
			if got, want := resp.Header.Get(k), fmt.Sprintf("value %d of %d", i, manyFields); got != want {
				t.Errorf("%s: %q; want %q", k, got, want)
			}
		}
		if got := resp.Header.Values("Set-Cookie"); !slices.Equal(got, cookies) {
			t.Errorf("set-cookie %q; want %q", got, cookies)
		}
		var seen http.Header
		if err := json.Unmarshal(body, &seen); err != nil {
			t.Fatalf("%v: %q", err, body)
		}
		for i := range 50 {
			k := fmt.Sprintf("X-Req-%02d", i)
			if got := seen[k]; len(got) != 1 || got[0] != strconv.Itoa(i) {
				t.Errorf("the handler saw %s %q; want %q", k, got, strconv.Itoa(i))
			}
		}
		if got := seen["Cookie"]; len(got) != 1 || got[0] != "a=1; b=2; c=3" {
			t.Errorf("the handler saw Cookie %q; want one field \"a=1; b=2; c=3\"", got)
		}
	})

	t.Run("trailers", func(t *testing.T) {
		// A body of unknown length: the request reaches net/http chunked,
		// its trailers in the last chunk. (With a content-length they
		// are lost: TestRequestTrailersWithContentLength.)
		upload := patternBytes(100000)
		req := mustRequest(t, "POST", base+"/echo", io.MultiReader(bytes.NewReader(upload)))
		req.ContentLength = -1
		req.Trailer = http.Header{"X-Client-Trailer": {"from the client"}, "X-Client-Sum": {sha(upload)}}
		resp, got := do(t, c, req)
		if !bytes.Equal(got, upload) {
			t.Errorf("echo: %d bytes back; want the %d sent", len(got), len(upload))
		}
		checkTrailers(t, resp.Trailer, http.Header{
			"X-Echo-Bytes":           {"100000"},
			"X-Echo-Sha256":          {sha(upload)},
			"X-Got-X-Client-Trailer": {"from the client"},
			"X-Got-X-Client-Sum":     {sha(upload)},
		})
		resp, body := do(t, c, mustRequest(t, "GET", base+"/trailers", nil))
		if string(body) != "trailers follow\n" {
			t.Errorf("/trailers: body %q", body)
		}
		checkTrailers(t, resp.Trailer, http.Header{"X-Trailer-One": {"one"}, "X-Trailer-Two": {"two"}})
	})

	t.Run("103 Early Hints", func(t *testing.T) {
		var interim []int
		var links [][]string
		trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			interim = append(interim, code)
			links = append(links, h.Values("Link"))
			return nil
		}}
		req := mustRequest(t, "GET", base+"/early-hints", nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
		resp, body := do(t, c, req)
		if !slices.Equal(interim, []int{103}) || len(links) != 1 || !slices.Equal(links[0], []string{earlyLink}) {
			t.Errorf("interim responses %v with links %q; want one 103 with %q", interim, links, earlyLink)
		}
		if resp.StatusCode != 200 || string(body) != "early hints sent\n" || !slices.Equal(resp.Header.Values("Link"), []string{earlyLink, finalLink}) {
			t.Errorf("final: %d %q, links %q", resp.StatusCode, body, resp.Header.Values("Link"))
		}
	})
}

// checkTrailers checks that got has every trailer of want.
func checkTrailers(t *testing.T, got, want http.Header) {
	t.Helper()
	for k, v := range want {
		if !slices.Equal(got[k], v) {
			t.Errorf("trailer %s %q; want %q (all: %v)", k, got[k], v, got)
		}
	}
}

func mustRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// do sends req and reads the whole response body; a transport error
// fails the test.
func do(t *testing.T, c goClient, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, body, err := tryDo(c, req)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// tryDo sends req and reads the whole response body.
func tryDo(c goClient, req *http.Request) (*http.Response, []byte, error) {
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: reading the body: %w", req.Method, req.URL, err)
	}
	return resp, body, nil
}
