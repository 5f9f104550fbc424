package httpconv

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// h2Get is an HTTP/2 GET with the required pseudo-headers and the given
// regular fields.
func h2Get(kv ...string) []HeaderField {
	return fieldList(append([]string{":method", "GET", ":scheme", "https", ":authority", "example.com", ":path", "/"}, kv...)...)
}

// h2Req is an HTTP/2 request with the given method and path.
func h2Req(method, path string, kv ...string) []HeaderField {
	return fieldList(append([]string{":method", method, ":scheme", "https", ":authority", "example.com", ":path", path}, kv...)...)
}

var requestTestsH2 = []struct {
	name      string
	fields    []HeaderField
	endStream bool
	want      string
	wantReq   Request
}{
	{
		name: "GET, no accept-encoding added",
		fields: fieldList(":method", "GET", ":scheme", "https", ":authority", "example.com", ":path", "/index.html?q=1",
			"user-agent", "h2-test", "accept", "*/*"),
		endStream: true,
		want:      "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nuser-agent: h2-test\r\naccept: */*\r\nConnection: close\r\n\r\n",
		wantReq:   Request{Method: "GET", Scheme: "https", Host: "example.com", Path: "/index.html?q=1", Proto: "HTTP/1.1", ContentLength: -1},
	},
	{
		name:      "pseudo-headers in any order",
		fields:    fieldList(":path", "/a", ":authority", "h:8443", ":scheme", "http", ":method", "DELETE"),
		endStream: true,
		want:      "DELETE /a HTTP/1.1\r\nHost: h:8443\r\nConnection: close\r\n\r\n",
		wantReq:   Request{Method: "DELETE", Scheme: "http", Host: "h:8443", Path: "/a", Proto: "HTTP/1.1", ContentLength: -1},
	},
	{
		name:    "POST with content-length",
		fields:  h2Req("POST", "/form", "content-type", "text/plain", "content-length", "5"),
		want:    "POST /form HTTP/1.1\r\nHost: example.com\r\ncontent-type: text/plain\r\ncontent-length: 5\r\nConnection: close\r\n\r\n",
		wantReq: Request{Method: "POST", Scheme: "https", Host: "example.com", Path: "/form", Proto: "HTTP/1.1", ContentLength: 5},
	},
	{
		name:    "POST without content-length is chunked",
		fields:  h2Req("POST", "/up"),
		want:    "POST /up HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
		wantReq: Request{Method: "POST", Scheme: "https", Host: "example.com", Path: "/up", Proto: "HTTP/1.1", ContentLength: -1, Chunked: true},
	},
	{
		name:      "POST with END_STREAM gets content-length 0",
		fields:    h2Req("POST", "/up"),
		endStream: true,
		want:      "POST /up HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		wantReq:   Request{Method: "POST", Scheme: "https", Host: "example.com", Path: "/up", Proto: "HTTP/1.1", ContentLength: -1},
	},
	{
		name:      "content-length 0 with END_STREAM",
		fields:    h2Req("PUT", "/x", "content-length", "0"),
		endStream: true,
		want:      "PUT /x HTTP/1.1\r\nHost: example.com\r\ncontent-length: 0\r\nConnection: close\r\n\r\n",
		wantReq:   Request{Method: "PUT", Scheme: "https", Host: "example.com", Path: "/x", Proto: "HTTP/1.1", ContentLength: 0},
	},
	{
		name:      "cookies joined with \"; \" where the first was (RFC 9113 section 8.2.3)",
		fields:    h2Get("cookie", "a=1", "accept", "*/*", "cookie", "", "cookie", "b=2", "x-a", "1", "cookie", "c=3"),
		endStream: true,
		want:      "GET / HTTP/1.1\r\nHost: example.com\r\ncookie: a=1; b=2; c=3\r\naccept: */*\r\nx-a: 1\r\nConnection: close\r\n\r\n",
		wantReq:   Request{Method: "GET", Scheme: "https", Host: "example.com", Path: "/", Proto: "HTTP/1.1", ContentLength: -1},
	},
	{
		name:      "one cookie",
		fields:    h2Get("cookie", "a=1; b=2"),
		endStream: true,
		want:      "GET / HTTP/1.1\r\nHost: example.com\r\ncookie: a=1; b=2\r\nConnection: close\r\n\r\n",
		wantReq:   Request{Method: "GET", Scheme: "https", Host: "example.com", Path: "/", Proto: "HTTP/1.1", ContentLength: -1},
	},
	{
		name:      "repeated fields, empty and obs-text values, one line each",
		fields:    h2Get("accept", "text/html", "accept", "*/*", "x-empty", "", "x-utf8", "caf\xc3\xa9", "x-inner", "a \t b"),
		endStream: true,
		want:      "GET / HTTP/1.1\r\nHost: example.com\r\naccept: text/html\r\naccept: */*\r\nx-empty: \r\nx-utf8: caf\xc3\xa9\r\nx-inner: a \t b\r\nConnection: close\r\n\r\n",
		wantReq:   Request{Method: "GET", Scheme: "https", Host: "example.com", Path: "/", Proto: "HTTP/1.1", ContentLength: -1},
	},
	{
		name:      "host field without :authority",
		fields:    fieldList(":method", "GET", ":scheme", "http", ":path", "/", "host", "example.org:8080", "x-a", "1"),
		endStream: true,
		want:      "GET / HTTP/1.1\r\nHost: example.org:8080\r\nx-a: 1\r\nConnection: close\r\n\r\n",
		wantReq:   Request{Method: "GET", Scheme: "http", Host: "example.org:8080", Path: "/", Proto: "HTTP/1.1", ContentLength: -1},
	},
	{
		name:      "host agrees with :authority but for case and default port; :authority is Host",
		fields:    h2Get("host", "EXAMPLE.com:443", "host", "example.COM:"),
		endStream: true,
		want:      "GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
		wantReq:   Request{Method: "GET", Scheme: "https", Host: "example.com", Path: "/", Proto: "HTTP/1.1", ContentLength: -1},
	},
	{
		name:      "http default port",
		fields:    fieldList(":method", "GET", ":scheme", "HTTP", ":authority", "h:80", ":path", "/", "host", "h"),
		endStream: true,
		want:      "GET / HTTP/1.1\r\nHost: h:80\r\nConnection: close\r\n\r\n",
		wantReq:   Request{Method: "GET", Scheme: "HTTP", Host: "h:80", Path: "/", Proto: "HTTP/1.1", ContentLength: -1},
	},
	{
		name:      "te: trailers checked and dropped",
		fields:    h2Get("te", "trailers", "te", "Trailers", "x-a", "1"),
		endStream: true,
		want:      "GET / HTTP/1.1\r\nHost: example.com\r\nx-a: 1\r\nConnection: close\r\n\r\n",
		wantReq:   Request{Method: "GET", Scheme: "https", Host: "example.com", Path: "/", Proto: "HTTP/1.1", ContentLength: -1},
	},
	{
		name:      "OPTIONS *",
		fields:    h2Req("OPTIONS", "*"),
		endStream: true,
		want:      "OPTIONS * HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
		wantReq:   Request{Method: "OPTIONS", Scheme: "https", Host: "example.com", Path: "*", Proto: "HTTP/1.1", ContentLength: -1},
	},
	{
		name:      "IPv6 authority, other scheme",
		fields:    fieldList(":method", "GET", ":scheme", "coap+tcp", ":authority", "[::1]:5683", ":path", "/%41"),
		endStream: true,
		want:      "GET /%41 HTTP/1.1\r\nHost: [::1]:5683\r\nConnection: close\r\n\r\n",
		wantReq:   Request{Method: "GET", Scheme: "coap+tcp", Host: "[::1]:5683", Path: "/%41", Proto: "HTTP/1.1", ContentLength: -1},
	},
	{
		name:      "SPDY names are ordinary fields",
		fields:    h2Get("method", "m", "url", "u", "version", "v", "accept-encoding", "br"),
		endStream: true,
		want:      "GET / HTTP/1.1\r\nHost: example.com\r\nmethod: m\r\nurl: u\r\nversion: v\r\naccept-encoding: br\r\nConnection: close\r\n\r\n",
		wantReq:   Request{Method: "GET", Scheme: "https", Host: "example.com", Path: "/", Proto: "HTTP/1.1", ContentLength: -1},
	},
}

func TestAppendRequestHeadH2(t *testing.T) {
	for _, tt := range requestTestsH2 {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("prefix")
			got, req, err := AppendRequestHead(prefix, H2, tt.fields, tt.endStream)
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

// badRequestTestsH2 are HTTP/2 requests that are malformed (status 0) or
// answered with an HTTP status.
var badRequestTestsH2 = []struct {
	name      string
	fields    []HeaderField
	endStream bool
	status    int // 0: a *MalformedError
}{
	// Field names and values (RFC 9113 section 8.2.1).
	{"uppercase name", h2Get("User-Agent", "x"), true, 0},
	{"uppercase content-length", h2Get("Content-Length", "0"), true, 0},
	{"empty name", h2Get("", "x"), true, 0},
	{"name with space", h2Get("x a", "1"), true, 0},
	{"name with colon", h2Get("x:a", "1"), true, 0},
	{"name with CRLF", h2Get("x\r\ny", "1"), true, 0},
	{"name with NUL", h2Get("x\x00", "1"), true, 0},
	{"value with NUL", h2Get("x-a", "1\x002"), true, 0},
	{"value with CR", h2Get("x-a", "1\rX-B: 2"), true, 0},
	{"value with LF", h2Get("x-a", "1\nX-B: 2"), true, 0},
	{"value with control byte", h2Get("x-a", "1\x01"), true, 0},
	{"value with DEL", h2Get("x-a", "1\x7f"), true, 0},
	{"value with leading space", h2Get("x-a", " 1"), true, 0},
	{"value with trailing space", h2Get("x-a", "1 "), true, 0},
	{"value with leading tab", h2Get("x-a", "\t1"), true, 0},
	{"value of blanks", h2Get("x-a", " "), true, 0},
	{"cookie with trailing space", h2Get("cookie", "a=1 "), true, 0},

	// Pseudo-headers (section 8.3, 8.3.1).
	{"pseudo-header after a regular field", fieldList(":method", "GET", ":scheme", "https", ":authority", "h", "x-a", "1", ":path", "/"), true, 0},
	{"SPDY :host", h2Get(":host", "h"), true, 0},
	{"SPDY :version", fieldList(":method", "GET", ":scheme", "https", ":authority", "h", ":path", "/", ":version", "HTTP/1.1"), true, 0},
	{":protocol (RFC 8441 not enabled)", fieldList(":method", "CONNECT", ":protocol", "websocket", ":scheme", "https", ":authority", "h", ":path", "/chat"), true, 0},
	{":status in a request", fieldList(":status", "200", ":method", "GET", ":scheme", "https", ":authority", "h", ":path", "/"), true, 0},
	{"bare colon", fieldList(":", "x", ":method", "GET", ":scheme", "https", ":authority", "h", ":path", "/"), true, 0},
	{"repeated :method", fieldList(":method", "GET", ":method", "GET", ":scheme", "https", ":authority", "h", ":path", "/"), true, 0},
	{"repeated :scheme", fieldList(":method", "GET", ":scheme", "https", ":scheme", "https", ":authority", "h", ":path", "/"), true, 0},
	{"repeated :authority", fieldList(":method", "GET", ":scheme", "https", ":authority", "h", ":authority", "h", ":path", "/"), true, 0},
	{"repeated :path", fieldList(":method", "GET", ":scheme", "https", ":authority", "h", ":path", "/", ":path", "/"), true, 0},
	{"missing :method", fieldList(":scheme", "https", ":authority", "h", ":path", "/"), true, 0},
	{"missing :scheme", fieldList(":method", "GET", ":authority", "h", ":path", "/"), true, 0},
	{"missing :path", fieldList(":method", "GET", ":scheme", "https", ":authority", "h"), true, 0},
	{"nothing", nil, true, 0},
	{"empty :method", h2Req("", "/"), true, 0},
	{"method with space", h2Req("GE T", "/"), true, 0},
	{"lowercase method is fine but empty scheme is not", fieldList(":method", "get", ":scheme", "", ":authority", "h", ":path", "/"), true, 0},
	{"bad scheme", fieldList(":method", "GET", ":scheme", "ht*p", ":authority", "h", ":path", "/"), true, 0},
	{"empty :authority", fieldList(":method", "GET", ":scheme", "https", ":authority", "", ":path", "/"), true, 0},
	{":authority with userinfo", fieldList(":method", "GET", ":scheme", "https", ":authority", "user@h", ":path", "/"), true, 0},
	{":authority with space", fieldList(":method", "GET", ":scheme", "https", ":authority", "a b", ":path", "/"), true, 0},
	{":authority foo\\bar", fieldList(":method", "GET", ":scheme", "https", ":authority", `foo\bar`, ":path", "/"), true, 0},
	{"empty :path", h2Req("GET", ""), true, 0},
	{":path * for GET", h2Req("GET", "*"), true, 0},
	{"relative :path", h2Req("GET", "index.html"), true, 0},
	{"absolute :path", h2Req("GET", "https://example.com/"), true, 0},
	{":path with space", h2Req("GET", "/a b"), true, 0},
	{":path with bad escape", h2Req("GET", "/%zz"), true, 0},

	// Connection-specific fields (section 8.2.2).
	{"connection", h2Get("connection", "close"), true, 0},
	{"keep-alive", h2Get("keep-alive", "300"), true, 0},
	{"proxy-connection", h2Get("proxy-connection", "close"), true, 0},
	{"transfer-encoding", h2Get("transfer-encoding", "chunked"), false, 0},
	{"upgrade", h2Get("upgrade", "websocket"), true, 0},
	{"te gzip", h2Get("te", "gzip"), true, 0},
	{"te trailers, gzip", h2Get("te", "trailers, gzip"), true, 0},
	{"te empty", h2Get("te", ""), true, 0},

	// Content-length (section 8.1.1).
	{"repeated content-length", h2Req("POST", "/", "content-length", "3", "content-length", "3"), false, 0},
	{"empty content-length", h2Req("POST", "/", "content-length", ""), false, 0},
	{"non-numeric content-length", h2Req("POST", "/", "content-length", "12a"), false, 0},
	{"negative content-length", h2Req("POST", "/", "content-length", "-1"), false, 0},
	{"content-length list", h2Req("POST", "/", "content-length", "3, 3"), false, 0},
	{"content-length overflow", h2Req("POST", "/", "content-length", "9223372036854775808"), false, 0},
	{"content-length with END_STREAM", h2Req("POST", "/", "content-length", "5"), true, 0},

	// Host and :authority (section 8.3.1).
	{"host differs from :authority", h2Get("host", "evil.example"), true, 0},
	{"host differs in port", h2Get("host", "example.com:8443"), true, 0},
	{"host with the other scheme's default port", h2Get("host", "example.com:80"), true, 0},
	{"second host differs", h2Get("host", "example.com", "host", "evil.example"), true, 0},
	{"no :authority, no host", fieldList(":method", "GET", ":scheme", "https", ":path", "/"), true, 400},
	{"no :authority, two hosts", fieldList(":method", "GET", ":scheme", "https", ":path", "/", "host", "h", "host", "h"), true, 400},
	{"no :authority, bad host", fieldList(":method", "GET", ":scheme", "https", ":path", "/", "host", "a/b"), true, 400},

	// CONNECT (section 8.5).
	{"CONNECT", fieldList(":method", "CONNECT", ":authority", "example.com:443"), false, 501},
	{"CONNECT with :path", fieldList(":method", "CONNECT", ":authority", "example.com:443", ":path", "/"), false, 0},
	{"CONNECT with :scheme", fieldList(":method", "CONNECT", ":scheme", "https", ":authority", "example.com:443"), false, 0},
	{"CONNECT without :authority", fieldList(":method", "CONNECT"), false, 0},
	{"CONNECT with a bad field", fieldList(":method", "CONNECT", ":authority", "example.com:443", "connection", "close"), false, 0},
}

func TestAppendRequestHeadH2Errors(t *testing.T) {
	for _, tt := range badRequestTestsH2 {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("prefix")
			got, req, err := AppendRequestHead(dst, H2, tt.fields, tt.endStream)
			var me *MalformedError
			var bre *BadRequestError
			switch {
			case tt.status == 0 && !errors.As(err, &me):
				t.Fatalf("got error %v (head %q); want a *MalformedError", err, got)
			case tt.status == 0 && !strings.HasPrefix(err.Error(), "httpconv: malformed message: "):
				t.Errorf("got message %q; want the malformed message prefix", err)
			case tt.status != 0 && !errors.As(err, &bre):
				t.Fatalf("got error %v (head %q); want a *BadRequestError", err, got)
			case tt.status != 0 && bre.Status != tt.status:
				t.Errorf("got status %d; want %d", bre.Status, tt.status)
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

// SPDY keeps answering what HTTP/2 resets.
func TestAppendRequestHeadSPDYNeverMalformed(t *testing.T) {
	for _, d := range []Dialect{SPDY2, SPDY3} {
		for _, tt := range badRequestTests {
			_, _, err := AppendRequestHead(nil, d, tt.fields, tt.endStream)
			var me *MalformedError
			if errors.As(err, &me) {
				t.Errorf("%v %s: got %v; want no *MalformedError", d, tt.name, err)
			}
		}
	}
}

func TestCheckTrailers(t *testing.T) {
	tests := []struct {
		name     string
		trailers []HeaderField
		ok       bool
	}{
		{"none", nil, true},
		{"plain", fieldList("x-sum", "abc", "x-sum", "def", "grpc-status", "0"), true},
		{"pseudo-header (RFC 9113 section 8.1)", fieldList(":status", "200"), false},
		{"pseudo-header after a field", fieldList("x-a", "1", ":path", "/"), false},
		{"uppercase", fieldList("X-Sum", "1"), false},
		{"bad value", fieldList("x-sum", "1\r\nx: y"), false},
		{"whitespace around a value", fieldList("x-sum", "1 "), false},
		{"connection-specific", fieldList("transfer-encoding", "chunked"), false},
		{"te gzip", fieldList("te", "gzip"), false},
	}
	for _, tt := range tests {
		err := CheckTrailers(H2, tt.trailers)
		var me *MalformedError
		if tt.ok && err != nil || !tt.ok && !errors.As(err, &me) {
			t.Errorf("%s: got %v; want ok %v (or a *MalformedError)", tt.name, err, tt.ok)
		}
		for _, d := range []Dialect{SPDY2, SPDY3} {
			if err := CheckTrailers(d, tt.trailers); err != nil {
				t.Errorf("%s on %v: got %v; want nil", tt.name, d, err)
			}
		}
	}
}

func TestAppendRequestHeadH2Allocs(t *testing.T) {
	fields := benchRequestFieldsH2()
	dst := make([]byte, 0, 1024)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		dst, _, err = AppendRequestHead(dst[:0], H2, fields, true)
		if err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("got %v allocs per AppendRequestHead; want 0", allocs)
	}
}
