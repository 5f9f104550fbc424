package httpconv

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

var responseTestsH2 = []struct {
	name   string
	method string
	input  string
	want   parseResult
}{
	{
		name:  "content-length body",
		input: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nServer: test\r\n\r\nHello, world!",
		want: parseResult{events: []string{
			`head :status="200" content-type="text/plain" content-length="13" server="test"`,
			"body Hello, world!", "end"}},
	},
	{
		name:  "no reason phrase, no version (RFC 9113 section 8.3.2)",
		input: "HTTP/1.0 404 Not Found\r\nContent-Length: 2\r\n\r\nno",
		want:  parseResult{events: []string{`head :status="404" content-length="2"`, "body no", "end"}},
	},
	{
		name:  "status and version are ordinary names",
		input: "HTTP/1.1 200\r\nStatus: 404\r\nVersion: 1\r\nContent-Length: 0\r\n\r\n",
		want:  parseResult{events: []string{`head :status="200" status="404" version="1" content-length="0" (no body)`, "end"}},
	},
	{
		name: "repeated fields stay apart, in order, empty values kept",
		input: "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX-One: 1\r\nset-cookie: b=2; Path=/\r\nX-Empty:\r\nSET-COOKIE:  c=3  \r\n" +
			"Vary: Accept\r\nVary: Cookie\r\nContent-Length: 0\r\n\r\n",
		want: parseResult{events: []string{
			`head :status="200" set-cookie="a=1" x-one="1" set-cookie="b=2; Path=/" x-empty="" set-cookie="c=3" vary="Accept" vary="Cookie" content-length="0" (no body)`,
			"end"}},
	},
	{
		name: "connection-specific fields dropped (RFC 9113 section 8.2.2)",
		input: "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\nProxy-Connection: close\r\nX-Hop: 1\r\n" +
			"Upgrade: h2c\r\nTE: trailers\r\nX-End: 2\r\nContent-Length: 0\r\n\r\n",
		want: parseResult{events: []string{`head :status="200" x-end="2" content-length="0" (no body)`, "end"}},
	},
	{
		name:  "repeated equal content-length sent once",
		input: "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\nX-A: 1\r\nContent-Length: 3\r\n\r\nabc",
		want:  parseResult{events: []string{`head :status="200" content-length="3" x-a="1"`, "body abc", "end"}},
	},
	{
		name:   "HEAD",
		method: "HEAD",
		input:  "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n",
		want:   parseResult{events: []string{`head :status="200" content-length="13" (no body)`, "end"}},
	},
	{
		name: "chunked with trailers apart, content-length dropped",
		input: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\nTrailer: X-Sum\r\n\r\n" +
			"5\r\nhello\r\n0\r\nX-Sum: abc\r\nx-sum: def\r\nContent-Length: 5\r\nConnection: close\r\nGrpc-Status: 0\r\n\r\n",
		want: parseResult{events: []string{
			`head :status="200" trailer="X-Sum"`,
			"body hello",
			`end x-sum="abc" x-sum="def" grpc-status="0"`}},
	},
	{
		name: "interim responses (RFC 9110 section 15.2)",
		input: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\nLink: </app.js>; rel=preload\r\n" +
			"Content-Length: 7\r\nConnection: x-hint\r\nX-Hint: 1\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		want: parseResult{events: []string{
			`interim :status="100"`,
			`interim :status="103" link="</style.css>; rel=preload" link="</app.js>; rel=preload"`,
			`interim :status="102"`,
			`head :status="200" content-length="2"`, "body ok", "end"}},
	},
	{
		name:  "101 fails",
		input: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
		want: parseResult{
			writeErr: "httpconv: malformed response: 101 Switching Protocols cannot be carried over HTTP/2",
			closeErr: "httpconv: malformed response: 101 Switching Protocols cannot be carried over HTTP/2"},
	},
	{
		name:  "control byte in a value (RFC 9113 section 8.2.1)",
		input: "HTTP/1.1 200 OK\r\nX-A: 1\x012\r\nContent-Length: 0\r\n\r\n",
		want: parseResult{
			writeErr: "httpconv: malformed response: control byte in the value of header X-A",
			closeErr: "httpconv: malformed response: control byte in the value of header X-A"},
	},
	{
		name:  "bad interim head",
		input: "HTTP/1.1 103 Early Hints\r\nLink : x\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
		want: parseResult{
			writeErr: `httpconv: malformed response: invalid header name "Link "`,
			closeErr: `httpconv: malformed response: invalid header name "Link "`},
	},
}

func TestResponseParserH2(t *testing.T) {
	for _, tt := range responseTestsH2 {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = "GET"
			}
			want := tt.want
			if want.writeErr == "" {
				want.writeErr = "<nil>"
			}
			if want.closeErr == "" {
				want.closeErr = "<nil>"
			}
			if got := checkSplits(t, H2, method, 0, tt.input); got.String() != want.String() {
				t.Errorf("got\n%v\nwant\n%v", got, want)
			}
		})
	}
}

// headOnly hides a handler's Interim method.
type headOnly struct{ ResponseHandler }

func TestResponseParserInterim(t *testing.T) {
	const in = "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"
	tests := []struct {
		name    string
		dialect Dialect
		hide    bool
		want    string
	}{
		{"H2", H2, false, `[interim :status="103" link="</a.css>; rel=preload" head :status="204" (no body) end]`},
		{"H2 without InterimHandler", H2, true, `[head :status="204" (no body) end]`},
		{"SPDY/3 never", SPDY3, false, `[head :status="204 No Content" :version="HTTP/1.1" (no body) end]`},
		{"SPDY/2 never", SPDY2, false, `[head status="204 No Content" version="HTTP/1.1" (no body) end]`},
	}
	for _, tt := range tests {
		rec := &recorder{dialect: tt.dialect}
		var h ResponseHandler = rec
		if tt.hide {
			h = headOnly{rec}
		}
		var p ResponseParser
		p.Reset(tt.dialect, "GET", h)
		if _, err := p.Write([]byte(in)); err != nil {
			t.Errorf("%s: got error %v; want none", tt.name, err)
		}
		if got := fmt.Sprint(rec.events); got != tt.want {
			t.Errorf("%s: got %s; want %s", tt.name, got, tt.want)
		}
	}

	// Interim's error stops the parser.
	errStop := errors.New("stop")
	var p ResponseParser
	p.Reset(H2, "GET", &recorder{dialect: H2, err: errStop})
	if _, err := p.Write([]byte(in)); err != errStop {
		t.Errorf("got Write error %v; want the handler's", err)
	}
	if err := p.Close(); err != errStop {
		t.Errorf("got Close error %v; want the handler's", err)
	}
}

func TestResponseParserH2Allocs(t *testing.T) {
	var p ResponseParser
	var h discard
	head := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nTransfer-Encoding: chunked\r\n\r\n")
	p.Reset(H2, "GET", &h)
	p.Write(head) // grow the buffers once
	allocs := testing.AllocsPerRun(100, func() {
		p.Reset(H2, "GET", &h)
		if _, err := p.Write(head); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 2 {
		t.Errorf("got %v allocs per head; want at most 2", allocs)
	}
}

func TestDialectString(t *testing.T) {
	for d, want := range map[Dialect]string{SPDY2: "SPDY/2", SPDY3: "SPDY/3", H2: "HTTP/2", 7: "UNKNOWN_DIALECT_7"} {
		if got := d.String(); got != want {
			t.Errorf("Dialect(%d).String() = %q; want %q", int(d), got, want)
		}
	}
	if !strings.HasPrefix(malformed("x").Error(), "httpconv: malformed message: ") {
		t.Errorf("got %q; want the httpconv prefix", malformed("x").Error())
	}
}
