package gateway

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"reflect"
	"testing"

	"github.com/spdymux/spdymux/internal/httpconv"
)

// readBoth reads data as one response to method with readResponse and
// with http.ReadResponse, and fails t where the two differ: in the error,
// the head, the body and its error, or what is left to read after it.
// It reports whether readResponse took its fast path.
func readBoth(t *testing.T, data []byte, method string) (fast bool) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://backend/", nil)
	br1 := bufio.NewReaderSize(bytes.NewReader(data), 16<<10)
	br2 := bufio.NewReaderSize(bytes.NewReader(data), 16<<10)
	var resp http.Response
	var body lengthBody
	fields := []httpconv.HeaderField{{Name: "X-Left", Value: "over"}}
	got, err1 := readResponse(br1, req, &resp, &body, &fields)
	want, err2 := http.ReadResponse(br2, req)
	if (err1 == nil) != (err2 == nil) || err1 != nil && err1.Error() != err2.Error() {
		t.Fatalf("%q: readResponse error %v; http.ReadResponse %v", data, err1, err2)
	}
	if err1 != nil {
		return false
	}
	fast = got == &resp
	if fast {
		// The fields make what copyResponseHeader makes of the header,
		// after what a header had already.
		dst, wantDst := http.Header{"X-Before": {"1"}}, http.Header{"X-Before": {"1"}}
		fieldsInto(dst, fields)
		copyResponseHeader(wantDst, want.Header)
		if !reflect.DeepEqual(dst, wantDst) {
			t.Fatalf("%q: fields %q make %q; want %q", data, fields, dst, wantDst)
		}
		// And the block of a SPDY or HTTP/2 response the same as the
		// header net/http read would.
		kept := http.Header{}
		copyResponseHeader(kept, want.Header)
		for _, d := range []httpconv.Dialect{httpconv.SPDY2, httpconv.SPDY3, httpconv.H2} {
			a := httpconv.AppendResponseFieldList(nil, d, got.StatusCode, fields, got.ContentLength)
			b := httpconv.AppendResponseFields(nil, d, got.StatusCode, kept, got.ContentLength)
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("%q: %v block from the fields %q; from the header %q", data, d, a, b)
			}
		}
		got.Header = want.Header // compared above
	} else if len(fields) != 0 {
		t.Fatalf("%q: fields %q after a response read by http.ReadResponse", data, fields)
	}
	if got.Status != want.Status || got.StatusCode != want.StatusCode || got.Proto != want.Proto ||
		got.ProtoMajor != want.ProtoMajor || got.ProtoMinor != want.ProtoMinor ||
		got.ContentLength != want.ContentLength || got.Close != want.Close ||
		!reflect.DeepEqual(got.TransferEncoding, want.TransferEncoding) {
		t.Fatalf("%q (fast %v): got %q %d %s %d.%d length %d close %v %q; want %q %d %s %d.%d length %d close %v %q", data, fast,
			got.Status, got.StatusCode, got.Proto, got.ProtoMajor, got.ProtoMinor, got.ContentLength, got.Close, got.TransferEncoding,
			want.Status, want.StatusCode, want.Proto, want.ProtoMajor, want.ProtoMinor, want.ContentLength, want.Close, want.TransferEncoding)
	}
	if !reflect.DeepEqual(got.Header, want.Header) {
		t.Fatalf("%q (fast %v): header %q; want %q", data, fast, got.Header, want.Header)
	}
	if (got.Body == http.NoBody) != (want.Body == http.NoBody) {
		t.Fatalf("%q (fast %v): no body %v; want %v", data, fast, got.Body == http.NoBody, want.Body == http.NoBody)
	}
	b1, e1 := io.ReadAll(got.Body)
	b2, e2 := io.ReadAll(want.Body)
	if !bytes.Equal(b1, b2) || (e1 == nil) != (e2 == nil) || e1 != nil && e1.Error() != e2.Error() {
		t.Fatalf("%q (fast %v): body %q, %v; want %q, %v", data, fast, b1, e1, b2, e2)
	}
	if !reflect.DeepEqual(got.Trailer, want.Trailer) {
		t.Fatalf("%q (fast %v): trailer %q; want %q", data, fast, got.Trailer, want.Trailer)
	}
	r1, _ := io.ReadAll(br1)
	r2, _ := io.ReadAll(br2)
	if !bytes.Equal(r1, r2) {
		t.Fatalf("%q (fast %v): %q left after the response; want %q", data, fast, r1, r2)
	}
	return fast
}

var responseSeeds = []struct {
	data string
	fast bool // readResponse parses it itself (for GET)
}{
	{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", true},
	{"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nDate: Thu, 03 Dec 2026 12:00:00 GMT\r\nContent-Length: 13\r\n\r\nHello, world!NEXT", true},
	{"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nx-odd-CASE:  a b \t\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Empty:\r\n\r\n", true},
	{"HTTP/1.1 503\r\nContent-Length: 2\r\nX-Obs: caf\xc3\xa9\r\n\r\nok", true},
	{"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\nUpgrade: h2c\r\nx-before: 2\r\nproxy-connection: x\r\n\r\nok", true},
	{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", true},
	{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true},
	{"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", false},
	{"HTTP/1.1 304 Not Modified\r\n\r\n", false},
	{"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx", false},
	{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n", false},
	{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false},
	{"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", false},
	{"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", false},
	{"HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc", false},
	{"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", false},
	{"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc", false},
	{"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nPragma: no-cache\r\n\r\nabc", false},
	{"HTTP/1.1 200 OK\r\n\r\nuntil close", false},
	{"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc", false},
	{"HTTP/1.1 200 OK\nContent-Length: 3\n\nabc", false},
	{"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Folded: a\r\n b\r\n\r\nabc", false},
	{"HTTP/1.1 200 OK\r\nContent-Length : 3\r\n\r\nabc", false},
	{"HTTP/1.1 200 OK\r\nBad\x01Name: 1\r\nContent-Length: 3\r\n\r\nabc", false},
	{"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Bad: a\x00b\r\n\r\nabc", false},
	{"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-Cr: a\r\r\n\r\nabc", false},
	{"HTTP/1.1 2x0 OK\r\nContent-Length: 3\r\n\r\nabc", false},
	{"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n", false},
	{"", false},
	{"garbage\r\n\r\n", false},
}

func TestReadResponseAsNetHTTP(t *testing.T) {
	for _, s := range responseSeeds {
		for _, method := range []string{"GET", "HEAD"} {
			fast := readBoth(t, []byte(s.data), method)
			if want := s.fast && method == "GET"; fast != want {
				t.Errorf("%q to %s: fast path %v; want %v", s.data, method, fast, want)
			}
		}
	}
}

// FuzzReadResponse checks that readResponse reads every input as
// http.ReadResponse does, on its fast path or off it.
func FuzzReadResponse(f *testing.F) {
	for _, s := range responseSeeds {
		f.Add([]byte(s.data), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, head bool) {
		method := "GET"
		if head {
			method = "HEAD"
		}
		readBoth(t, data, method)
	})
}

// BenchmarkReadResponse reads a response head into the header of the
// client's response, as the gateway does, and its body: with readResponse,
// and with http.ReadResponse and copyResponseHeader.
func BenchmarkReadResponse(b *testing.B) {
	data := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nDate: Thu, 03 Dec 2026 12:00:00 GMT\r\nContent-Length: 13\r\n\r\nHello, world!")
	req, _ := http.NewRequest("GET", "http://backend/", nil)
	src := bytes.NewReader(data)
	br := bufio.NewReaderSize(src, 16<<10)
	var fields []httpconv.HeaderField
	for _, bc := range []struct {
		name string
		read func() (*http.Response, error)
	}{
		{"gateway", func() (*http.Response, error) {
			var resp http.Response
			var body lengthBody
			resp0, err := readResponse(br, req, &resp, &body, &fields)
			if err == nil {
				fieldsInto(make(http.Header), fields)
			}
			return resp0, err
		}},
		{"net-http", func() (*http.Response, error) {
			resp, err := http.ReadResponse(br, req)
			if err == nil {
				copyResponseHeader(make(http.Header), resp.Header)
			}
			return resp, err
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				src.Reset(data)
				br.Reset(src)
				resp, err := bc.read()
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, resp.Body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
