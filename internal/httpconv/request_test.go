package httpconv

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// fieldList builds a header block from name, value pairs.
func fieldList(kv ...string) []HeaderField {
	fs := make([]HeaderField, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		fs = append(fs, HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return fs
}

// v3Get is a SPDY/3 GET with the required headers and the given extra ones.
func v3Get(kv ...string) []HeaderField {
	return fieldList(append([]string{":method", "GET", ":path", "/", ":version", "HTTP/1.1", ":host", "example.com", ":scheme", "https"}, kv...)...)
}

var requestTests = []struct {
	name      string
	version   Dialect
	fields    []HeaderField
	endStream bool
	want      string
	wantReq   Request
}{
	{
		name:    "v3 GET",
		version: 3,
		fields: fieldList(":method", "GET", ":path", "/index.html?q=1", ":version", "HTTP/1.1", ":host", "example.com",
			":scheme", "https", "user-agent", "spdy-test", "accept-encoding", "gzip"),
		endStream: true,
		want:      "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nuser-agent: spdy-test\r\naccept-encoding: gzip\r\nConnection: close\r\n\r\n",
		wantReq:   Request{Method: "GET", Scheme: "https", Host: "example.com", Path: "/index.html?q=1", Proto: "HTTP/1.1", ContentLength: -1},
	},
	{
		name:      "v3 accept-encoding added",
		version:   3,
		fields:    v3Get(),
		endStream: true,
		want:      "GET / HTTP/1.1\r\nHost: example.com\r\nAccept-Encoding: gzip, deflate\r\nConnection: close\r\n\r\n",
		wantReq:   Request{Method: "GET", Scheme: "https", Host: "example.com", Path: "/", Proto: "HTTP/1.1", ContentLength: -1},
	},
	{
		name:    "v3 POST with content-length",
		version: 3,
		fields: fieldList(":method", "POST", ":path", "/form", ":version", "HTTP/1.1", ":host", "example.com:8443",
			":scheme", "https", "content-type", "text/plain", "content-length", "5"),
		want:    "POST /form HTTP/1.1\r\nHost: example.com:8443\r\ncontent-type: text/plain\r\ncontent-length: 5\r\nAccept-Encoding: gzip, deflate\r\nConnection: close\r\n\r\n",
		wantReq: Request{Method: "POST", Scheme: "https", Host: "example.com:8443", Path: "/form", Proto: "HTTP/1.1", ContentLength: 5},
	},
	{
		name:    "v3 POST without content-length is chunked",
		version: 3,
		fields:  fieldList(":method", "POST", ":path", "/up", ":version", "HTTP/1.1", ":host", "h", ":scheme", "http"),
		want:    "POST /up HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip, deflate\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
		wantReq: Request{Method: "POST", Scheme: "http", Host: "h", Path: "/up", Proto: "HTTP/1.1", ContentLength: -1, Chunked: true},
	},
	{
		name:      "v3 POST with FIN gets content-length 0",
		version:   3,
		fields:    fieldList(":method", "POST", ":path", "/up", ":version", "HTTP/1.1", ":host", "h", ":scheme", "http"),
		endStream: true,
		want:      "POST /up HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip, deflate\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		wantReq:   Request{Method: "POST", Scheme: "http", Host: "h", Path: "/up", Proto: "HTTP/1.1", ContentLength: -1},
	},
	{
		name:      "v3 content-length 0 with FIN",
		version:   3,
		fields:    fieldList(":method", "PUT", ":path", "/x", ":version", "HTTP/1.1", ":host", "h", ":scheme", "http", "content-length", "0"),
		endStream: true,
		want:      "PUT /x HTTP/1.1\r\nHost: h\r\ncontent-length: 0\r\nAccept-Encoding: gzip, deflate\r\nConnection: close\r\n\r\n",
		wantReq:   Request{Method: "PUT", Scheme: "http", Host: "h", Path: "/x", Proto: "HTTP/1.1", ContentLength: 0},
	},
	{
		name:    "v3 HTTP/1.0 body is sent as HTTP/1.1 chunked",
		version: 3,
		fields:  fieldList(":method", "POST", ":path", "/", ":version", "HTTP/1.0", ":host", "h", ":scheme", "http"),
		want:    "POST / HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip, deflate\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
		wantReq: Request{Method: "POST", Scheme: "http", Host: "h", Path: "/", Proto: "HTTP/1.1", ContentLength: -1, Chunked: true},
	},
	{
		name:      "v3 HTTP/1.0 without body",
		version:   3,
		fields:    fieldList(":method", "GET", ":path", "/", ":version", "HTTP/1.0", ":host", "h", ":scheme", "http"),
		endStream: true,
		want:      "GET / HTTP/1.0\r\nHost: h\r\nAccept-Encoding: gzip, deflate\r\nConnection: close\r\n\r\n",
		wantReq:   Request{Method: "GET", Scheme: "http", Host: "h", Path: "/", Proto: "HTTP/1.0", ContentLength: -1},
	},
	{
		name:    "v3 dropped headers",
		version: 3,
		fields: v3Get("connection", "keep-alive", "keep-alive", "300", "proxy-connection", "close",
			"transfer-encoding", "chunked", "host", "evil.example", ":unknown", "x", "Connection", "close", "x-kept", "1"),
		endStream: true,
		want:      "GET / HTTP/1.1\r\nHost: example.com\r\nx-kept: 1\r\nAccept-Encoding: gzip, deflate\r\nConnection: close\r\n\r\n",
		wantReq:   Request{Method: "GET", Scheme: "https", Host: "example.com", Path: "/", Proto: "HTTP/1.1", ContentLength: -1},
	},
	{
		name:      "v3 NUL-joined values split into lines",
		version:   3,
		fields:    v3Get("cookie", "a=1\x00b=2\x00c=3", "accept", "text/html\x00*/*"),
		endStream: true,
		want:      "GET / HTTP/1.1\r\nHost: example.com\r\ncookie: a=1\r\ncookie: b=2\r\ncookie: c=3\r\naccept: text/html\r\naccept: */*\r\nAccept-Encoding: gzip, deflate\r\nConnection: close\r\n\r\n",
		wantReq:   Request{Method: "GET", Scheme: "https", Host: "example.com", Path: "/", Proto: "HTTP/1.1", ContentLength: -1},
	},
	{
		name:      "v3 v2 names are ordinary headers",
		version:   3,
		fields:    v3Get("method", "m", "url", "u"),
		endStream: true,
		want:      "GET / HTTP/1.1\r\nHost: example.com\r\nmethod: m\r\nurl: u\r\nAccept-Encoding: gzip, deflate\r\nConnection: close\r\n\r\n",
		wantReq:   Request{Method: "GET", Scheme: "https", Host: "example.com", Path: "/", Proto: "HTTP/1.1", ContentLength: -1},
	},
	{
		name:      "v3 OPTIONS *",
		version:   3,
		fields:    fieldList(":method", "OPTIONS", ":path", "*", ":version", "HTTP/1.1", ":host", "h", ":scheme", "http"),
		endStream: true,
		want:      "OPTIONS * HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip, deflate\r\nConnection: close\r\n\r\n",
		wantReq:   Request{Method: "OPTIONS", Scheme: "http", Host: "h", Path: "*", Proto: "HTTP/1.1", ContentLength: -1},
	},
	{
		name:      "v3 IPv6 host",
		version:   3,
		fields:    fieldList(":method", "GET", ":path", "/%41", ":version", "HTTP/1.1", ":host", "[::1]:443", ":scheme", "https"),
		endStream: true,
		want:      "GET /%41 HTTP/1.1\r\nHost: [::1]:443\r\nAccept-Encoding: gzip, deflate\r\nConnection: close\r\n\r\n",
		wantReq:   Request{Method: "GET", Scheme: "https", Host: "[::1]:443", Path: "/%41", Proto: "HTTP/1.1", ContentLength: -1},
	},
	{
		name:      "v2 absolute url gives the host",
		version:   2,
		fields:    fieldList("method", "GET", "url", "http://example.com:8080/a/b?c=d#frag", "version", "HTTP/1.1", "scheme", "http", "user-agent", "chrome"),
		endStream: true,
		want:      "GET /a/b?c=d HTTP/1.1\r\nHost: example.com:8080\r\nuser-agent: chrome\r\nAccept-Encoding: gzip, deflate\r\nConnection: close\r\n\r\n",
		wantReq:   Request{Method: "GET", Scheme: "http", Host: "example.com:8080", Path: "/a/b?c=d", Proto: "HTTP/1.1", ContentLength: -1},
	},
	{
		name:      "v2 host header wins over the url",
		version:   2,
		fields:    fieldList("host", "example.org", "method", "GET", "url", "https://user:pw@example.com", "version", "HTTP/1.1", "scheme", "https"),
		endStream: true,
		want:      "GET / HTTP/1.1\r\nHost: example.org\r\nAccept-Encoding: gzip, deflate\r\nConnection: close\r\n\r\n",
		wantReq:   Request{Method: "GET", Scheme: "https", Host: "example.org", Path: "/", Proto: "HTTP/1.1", ContentLength: -1},
	},
	{
		name:      "v2 url with userinfo and query only",
		version:   2,
		fields:    fieldList("method", "GET", "url", "http://user@example.com?q", "version", "HTTP/1.1", "scheme", "http"),
		endStream: true,
		want:      "GET /?q HTTP/1.1\r\nHost: example.com\r\nAccept-Encoding: gzip, deflate\r\nConnection: close\r\n\r\n",
		wantReq:   Request{Method: "GET", Scheme: "http", Host: "example.com", Path: "/?q", Proto: "HTTP/1.1", ContentLength: -1},
	},
	{
		name:    "v2 origin-form url, v3 names dropped",
		version: 2,
		fields: fieldList("method", "POST", "url", "/p", "version", "HTTP/1.1", "scheme", "http", "host", "h",
			":method", "GET", ":host", "x", "content-length", "3", "connection", "close"),
		want:    "POST /p HTTP/1.1\r\nHost: h\r\ncontent-length: 3\r\nAccept-Encoding: gzip, deflate\r\nConnection: close\r\n\r\n",
		wantReq: Request{Method: "POST", Scheme: "http", Host: "h", Path: "/p", Proto: "HTTP/1.1", ContentLength: 3},
	},
}

func TestAppendRequestHead(t *testing.T) {
	for _, tt := range requestTests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("prefix")
			got, req, err := AppendRequestHead(prefix, tt.version, tt.fields, tt.endStream)
			if err != nil {
				t.Fatalf("got error %v; want none", err)
			}
			if !bytes.HasPrefix(got, prefix) {
				t.Fatalf("got %q; want it to start with the given dst", got)
			}
			if string(got[len(prefix):]) != tt.want {
				t.Errorf("got head\n%q\nwant\n%q", got[len(prefix):], tt.want)
			}
			if req != tt.wantReq {
				t.Errorf("got %+v; want %+v", req, tt.wantReq)
			}
			checkRequestParses(t, got[len(prefix):], req)
		})
	}
}

// checkRequestParses checks that net/http reads head as the request req
// describes, with nothing left over.
func checkRequestParses(t *testing.T, head []byte, req Request) {
	t.Helper()
	for line := range strings.SplitSeq(strings.TrimSuffix(string(head), "\r\n\r\n"), "\r\n") {
		if strings.ContainsAny(line, "\r\n") {
			t.Fatalf("got line %q with CR or LF in head %q", line, head)
		}
	}
	if !bytes.HasSuffix(head, []byte("\r\n\r\n")) || bytes.Count(head, []byte("\r\n\r\n")) != 1 {
		t.Fatalf("got head %q; want exactly one blank line, at the end", head)
	}
	br := bufio.NewReader(bytes.NewReader(head))
	hr, err := http.ReadRequest(br)
	if err != nil {
		t.Fatalf("http.ReadRequest(%q): %v", head, err)
	}
	if br.Buffered() != 0 {
		t.Errorf("got %d bytes after the head; want 0", br.Buffered())
	}
	if hr.Method != req.Method || hr.RequestURI != req.Path || hr.Host != req.Host || hr.Proto != req.Proto {
		t.Errorf("net/http read %s %s %s host %q; want %s %s %s host %q",
			hr.Method, hr.RequestURI, hr.Proto, hr.Host, req.Method, req.Path, req.Proto, req.Host)
	}
	if !hr.Close {
		t.Errorf("net/http read Close false; want true")
	}
	switch {
	case req.Chunked:
		if !slices.Equal(hr.TransferEncoding, []string{"chunked"}) {
			t.Errorf("got transfer-encoding %q; want chunked", hr.TransferEncoding)
		}
	case req.ContentLength >= 0:
		if hr.ContentLength != req.ContentLength {
			t.Errorf("net/http read content-length %d; want %d", hr.ContentLength, req.ContentLength)
		}
	default:
		if hr.ContentLength != 0 || hr.TransferEncoding != nil {
			t.Errorf("net/http read content-length %d, transfer-encoding %q; want no body", hr.ContentLength, hr.TransferEncoding)
		}
	}
}

var badRequestTests = []struct {
	name      string
	version   Dialect
	fields    []HeaderField
	endStream bool
}{
	{"missing :method", 3, fieldList(":path", "/", ":version", "HTTP/1.1", ":host", "h", ":scheme", "http"), true},
	{"missing :path", 3, fieldList(":method", "GET", ":version", "HTTP/1.1", ":host", "h", ":scheme", "http"), true},
	{"missing :version", 3, fieldList(":method", "GET", ":path", "/", ":host", "h", ":scheme", "http"), true},
	{"missing :host", 3, fieldList(":method", "GET", ":path", "/", ":version", "HTTP/1.1", ":scheme", "http", "host", "h"), true},
	{"missing :scheme", 3, fieldList(":method", "GET", ":path", "/", ":version", "HTTP/1.1", ":host", "h"), true},
	{"v3 with v2 names", 3, fieldList("method", "GET", "url", "/", "version", "HTTP/1.1", "host", "h", "scheme", "http"), true},
	{"repeated :method", 3, v3Get(":method", "POST"), true},
	{"empty method", 3, fieldList(":method", "", ":path", "/", ":version", "HTTP/1.1", ":host", "h", ":scheme", "http"), true},
	{"method with space", 3, fieldList(":method", "GE T", ":path", "/", ":version", "HTTP/1.1", ":host", "h", ":scheme", "http"), true},
	{"two methods NUL-joined", 3, fieldList(":method", "GET\x00POST", ":path", "/", ":version", "HTTP/1.1", ":host", "h", ":scheme", "http"), true},
	{"relative path", 3, fieldList(":method", "GET", ":path", "index.html", ":version", "HTTP/1.1", ":host", "h", ":scheme", "http"), true},
	{"empty path", 3, fieldList(":method", "GET", ":path", "", ":version", "HTTP/1.1", ":host", "h", ":scheme", "http"), true},
	{"path with space", 3, fieldList(":method", "GET", ":path", "/a b", ":version", "HTTP/1.1", ":host", "h", ":scheme", "http"), true},
	{"path with CRLF", 3, fieldList(":method", "GET", ":path", "/a\r\nX: y", ":version", "HTTP/1.1", ":host", "h", ":scheme", "http"), true},
	{"path with bad escape", 3, fieldList(":method", "GET", ":path", "/%zz", ":version", "HTTP/1.1", ":host", "h", ":scheme", "http"), true},
	{"path * for GET", 3, fieldList(":method", "GET", ":path", "*", ":version", "HTTP/1.1", ":host", "h", ":scheme", "http"), true},
	{"absolute :path", 3, fieldList(":method", "GET", ":path", "http://h/", ":version", "HTTP/1.1", ":host", "h", ":scheme", "http"), true},
	{"bad host foo\\bar (nghttpx BadHost)", 3, fieldList(":method", "GET", ":path", "/", ":version", "HTTP/1.1", ":host", `foo\bar`, ":scheme", "http"), true},
	{"empty host", 3, fieldList(":method", "GET", ":path", "/", ":version", "HTTP/1.1", ":host", "", ":scheme", "http"), true},
	{"host with space", 3, fieldList(":method", "GET", ":path", "/", ":version", "HTTP/1.1", ":host", "a b", ":scheme", "http"), true},
	{"bad scheme http* (nghttpx BadScheme)", 3, fieldList(":method", "GET", ":path", "/", ":version", "HTTP/1.1", ":host", "h", ":scheme", "http*"), true},
	{"empty scheme", 3, fieldList(":method", "GET", ":path", "/", ":version", "HTTP/1.1", ":host", "h", ":scheme", ""), true},
	{"version HTTP/2", 3, fieldList(":method", "GET", ":path", "/", ":version", "HTTP/2", ":host", "h", ":scheme", "http"), true},
	{"version lowercase", 3, fieldList(":method", "GET", ":path", "/", ":version", "http/1.1", ":host", "h", ":scheme", "http"), true},
	{"two content-length (nghttpx MultipleRequestCL)", 3, v3Get("content-length", "3", "content-length", "3"), false},
	{"content-length NUL-joined", 3, v3Get("content-length", "3\x003"), false},
	{"conflicting content-length", 3, v3Get("content-length", "3", "Content-Length", "4"), false},
	{"empty content-length (nghttpx InvalidRequestCL)", 3, v3Get("content-length", ""), false},
	{"non-numeric content-length", 3, v3Get("content-length", "12a"), false},
	{"negative content-length", 3, v3Get("content-length", "-1"), false},
	{"content-length with space", 3, v3Get("content-length", " 1"), false},
	{"content-length overflow", 3, v3Get("content-length", "9223372036854775808"), false},
	{"content-length with FIN", 3, v3Get("content-length", "5"), true},
	{"value with CR", 3, v3Get("x-a", "1\rX-B: 2"), true},
	{"value with LF", 3, v3Get("x-a", "1\nX-B: 2"), true},
	{"value with CRLF after NUL", 3, v3Get("x-a", "1\x00\r\nX-B: 2"), true},
	{"value with control byte", 3, v3Get("x-a", "1\x01"), true},
	{"value with DEL", 3, v3Get("x-a", "1\x7f"), true},
	{"empty name", 3, v3Get("", "v"), true},
	{"name with space", 3, v3Get("x a", "v"), true},
	{"name with colon", 3, v3Get("x:a", "v"), true},
	{"name with CRLF", 3, v3Get("x\r\ny", "v"), true},
	{"v2 missing method", 2, fieldList("url", "/", "version", "HTTP/1.1", "scheme", "http", "host", "h"), true},
	{"v2 missing url", 2, fieldList("method", "GET", "version", "HTTP/1.1", "scheme", "http", "host", "h"), true},
	{"v2 missing version", 2, fieldList("method", "GET", "url", "/", "scheme", "http", "host", "h"), true},
	{"v2 missing scheme", 2, fieldList("method", "GET", "url", "/", "version", "HTTP/1.1", "host", "h"), true},
	{"v2 origin-form url without host", 2, fieldList("method", "GET", "url", "/", "version", "HTTP/1.1", "scheme", "http"), true},
	{"v2 url without scheme", 2, fieldList("method", "GET", "url", "example.com/", "version", "HTTP/1.1", "scheme", "http"), true},
	{"v2 url with empty host", 2, fieldList("method", "GET", "url", "http:///x", "version", "HTTP/1.1", "scheme", "http"), true},
	{"v2 url with bad host", 2, fieldList("method", "GET", "url", `http://foo\bar/`, "version", "HTTP/1.1", "scheme", "http"), true},
	{"v2 url with bad scheme", 2, fieldList("method", "GET", "url", "ht*p://h/", "version", "HTTP/1.1", "scheme", "http"), true},
}

func TestAppendRequestHeadBadRequest(t *testing.T) {
	for _, tt := range badRequestTests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("prefix")
			got, req, err := AppendRequestHead(dst, tt.version, tt.fields, tt.endStream)
			var bre *BadRequestError
			if !errors.As(err, &bre) {
				t.Fatalf("got error %v (head %q); want a *BadRequestError", err, got)
			}
			if want := "httpconv: bad request (400): "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("got message %q; want it to start with %q", err, want)
			}
			if bre.Status != 400 {
				t.Errorf("got status %d; want 400", bre.Status)
			}
			if string(got) != "prefix" {
				t.Errorf("got dst %q; want it unchanged", got)
			}
			if req != (Request{}) {
				t.Errorf("got %+v; want the zero Request", req)
			}
		})
	}
}

func TestAppendRequestHeadBadVersionPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Errorf("got no panic for dialect 5; want one")
		}
	}()
	AppendRequestHead(nil, 5, v3Get(), true)
}

func TestChunkFraming(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"one byte", AppendChunkHeader(nil, 1), "1\r\n"},
		{"255 bytes", AppendChunkHeader([]byte("x"), 255), "xff\r\n"},
		{"16 KiB", AppendChunkHeader(nil, 16384), "4000\r\n"},
		{"chunk end", AppendChunkEnd([]byte("data")), "data\r\n"},
		{"last chunk", AppendLastChunk(nil, nil), "0\r\n\r\n"},
		{"last chunk with trailers", AppendLastChunk(nil, fieldList("x-sum", "abc", "x-multi", "1\x002")), "0\r\nx-sum: abc\r\nx-multi: 1\r\nx-multi: 2\r\n\r\n"},
		{"trailers dropped", AppendLastChunk(nil, fieldList(
			":status", "200", "content-length", "3", "connection", "close", "transfer-encoding", "chunked",
			"host", "h", "x-bad", "a\r\nb", "bad name", "v", "x-ok", "1")), "0\r\nx-ok: 1\r\n\r\n"},
	}
	for _, tt := range tests {
		if string(tt.got) != tt.want {
			t.Errorf("%s: got %q; want %q", tt.name, tt.got, tt.want)
		}
	}

	// A whole chunked body, read back by net/http.
	var req []byte
	req, r, err := AppendRequestHead(req, 3, fieldList(":method", "POST", ":path", "/", ":version", "HTTP/1.1", ":host", "h", ":scheme", "http"), false)
	if err != nil || !r.Chunked {
		t.Fatalf("got chunked %v, error %v; want chunked and no error", r.Chunked, err)
	}
	for _, data := range []string{"hello", ", ", "world"} {
		req = AppendChunkHeader(req, len(data))
		req = append(req, data...)
		req = AppendChunkEnd(req)
	}
	req = AppendLastChunk(req, fieldList("x-trailer", "t"))
	hr, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(req)))
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	if _, err := body.ReadFrom(hr.Body); err != nil {
		t.Fatalf("reading the chunked body: %v", err)
	}
	if body.String() != "hello, world" || hr.Trailer.Get("X-Trailer") != "t" {
		t.Errorf("got body %q, trailer %q; want %q, %q", body.String(), hr.Trailer.Get("X-Trailer"), "hello, world", "t")
	}

	defer func() {
		if recover() == nil {
			t.Errorf("got no panic for AppendChunkHeader(nil, 0); want one")
		}
	}()
	AppendChunkHeader(nil, 0)
}

func TestAppendRequestHeadAllocs(t *testing.T) {
	fields := benchRequestFields()
	dst := make([]byte, 0, 1024)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		dst, _, err = AppendRequestHead(dst[:0], 3, fields, true)
		if err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("got %v allocs per AppendRequestHead; want 0", allocs)
	}
}
