package httpconv

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
)

// recorder is a ResponseHandler that records the events it receives, with
// consecutive Body calls merged so that any split of the input gives the
// same events.
type recorder struct {
	dialect Dialect // SPDY3 if 0
	events  []string
	heads   int
	ends    int
	err     error // returned by every call when set
}

func formatFields(fs []HeaderField) string {
	var b strings.Builder
	for i, f := range fs {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%q", f.Name, f.Value)
	}
	return b.String()
}

// checkBlock returns what is wrong with a SPDY header block, or "".
func checkBlock(fields []HeaderField) string {
	seen := map[string]bool{}
	for _, f := range fields {
		switch {
		case f.Name == "" || strings.ToLower(f.Name) != f.Name:
			return fmt.Sprintf("name %q is empty or not lowercase", f.Name)
		case seen[f.Name]:
			return fmt.Sprintf("name %q repeated", f.Name)
		case strings.ContainsAny(f.Value, "\r\n"):
			return fmt.Sprintf("value %q of %s has CR or LF", f.Value, f.Name)
		case strings.HasPrefix(f.Value, "\x00") || strings.HasSuffix(f.Value, "\x00") || strings.Contains(f.Value, "\x00\x00"):
			return fmt.Sprintf("value %q of %s has an empty NUL-separated value", f.Value, f.Name)
		}
		seen[f.Name] = true
	}
	return ""
}

// checkBlockH2 returns what is wrong with an HTTP/2 response header block,
// or "": a :status of three digits first, then regular fields that HTTP/2
// allows.
func checkBlockH2(fields []HeaderField, status bool) string {
	if status {
		if len(fields) == 0 || fields[0].Name != ":status" || len(fields[0].Value) != 3 {
			return "no three-digit :status first"
		}
		fields = fields[1:]
	}
	for _, f := range fields {
		switch {
		case !validH2Name(f.Name):
			return fmt.Sprintf("name %q is not a lowercase token", f.Name)
		case !validH2Value(f.Value):
			return fmt.Sprintf("value %q of %s is invalid", f.Value, f.Name)
		}
		switch f.Name {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te":
			return "connection-specific field " + f.Name
		}
	}
	return ""
}

func (r *recorder) check(what string, fields []HeaderField, status bool) {
	if r.dialect == 0 {
		r.dialect = SPDY3
	}
	var bad string
	if r.dialect == H2 {
		bad = checkBlockH2(fields, status)
	} else {
		bad = checkBlock(fields)
		if status && (len(fields) < 2 || !strings.HasSuffix(fields[0].Name, "status") || !strings.HasSuffix(fields[1].Name, "version")) {
			bad = "no status and version first"
		}
	}
	if bad != "" {
		r.events = append(r.events, "INVALID "+what+": "+bad)
	}
}

func (r *recorder) Interim(status int, fields []HeaderField) error {
	if r.dialect != H2 || r.heads > 0 {
		r.events = append(r.events, "INVALID interim response on "+r.dialect.String()+" or after the head")
	}
	r.check("interim", fields, true)
	if len(fields) > 0 && fields[0].Value != strconv.Itoa(status) {
		r.events = append(r.events, fmt.Sprintf("INVALID interim: status %d, fields %s", status, formatFields(fields)))
	}
	for _, f := range fields {
		if f.Name == "content-length" {
			r.events = append(r.events, "INVALID interim: content-length")
		}
	}
	r.events = append(r.events, "interim "+formatFields(fields))
	return r.err
}

func (r *recorder) Head(fields []HeaderField, noBody bool) error {
	if r.dialect == 0 {
		r.dialect = SPDY3
	}
	r.heads++
	r.check("head", fields, true)
	if _, err := ResponseFromFields(r.dialect, fields); err != nil {
		r.events = append(r.events, "INVALID head: ResponseFromFields: "+err.Error())
	}
	s := "head " + formatFields(fields)
	if noBody {
		s += " (no body)"
	}
	r.events = append(r.events, s)
	return r.err
}

func (r *recorder) Body(p []byte) error {
	if len(p) == 0 {
		r.events = append(r.events, "empty Body call")
	}
	if n := len(r.events); n > 0 && strings.HasPrefix(r.events[n-1], "body ") {
		r.events[n-1] += string(p)
	} else {
		r.events = append(r.events, "body "+string(p))
	}
	return r.err
}

func (r *recorder) End(trailers []HeaderField) error {
	r.ends++
	r.check("trailers", trailers, false)
	for _, f := range trailers {
		if f.Name == "content-length" {
			r.events = append(r.events, "INVALID trailers: content-length")
		}
	}
	s := "end"
	if trailers != nil {
		s += " " + formatFields(trailers)
	}
	r.events = append(r.events, s)
	return r.err
}

// parseResult is what parsing a response gave: the events, the first
// error from Write, and the error from Close.
type parseResult struct {
	events   []string
	writeErr string
	closeErr string
}

func (r parseResult) String() string {
	return fmt.Sprintf("events:\n\t%s\nwrite error: %s\nclose error: %s", strings.Join(r.events, "\n\t"), r.writeErr, r.closeErr)
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// parseParts writes parts to a fresh parser, stopping at the first error,
// then closes it.
func parseParts(t testing.TB, version Dialect, method string, maxHead int, parts ...[]byte) parseResult {
	t.Helper()
	rec := recorder{dialect: version}
	p := ResponseParser{MaxHeadBytes: maxHead}
	p.Reset(version, method, &rec)
	res := parseResult{writeErr: "<nil>"}
	for _, b := range parts {
		n, err := p.Write(b)
		if err != nil {
			res.writeErr = err.Error()
			break
		}
		if n != len(b) {
			t.Fatalf("Write of %d bytes returned %d and no error", len(b), n)
		}
	}
	done := p.Done()
	res.closeErr = errString(p.Close())
	if done && res.writeErr == "<nil>" && res.closeErr != "<nil>" {
		t.Errorf("Close after Done returned %s; want nil", res.closeErr)
	}
	if rec.heads > 1 || rec.ends > 1 || rec.ends > rec.heads {
		t.Errorf("got %d Head and %d End calls; want at most one each, Head first", rec.heads, rec.ends)
	}
	if p.Done() != (rec.ends == 1) && res.closeErr == "<nil>" {
		t.Errorf("got Done %v after %d End calls", p.Done(), rec.ends)
	}
	res.events = rec.events
	return res
}

// checkSplits parses input whole, split at every position, and byte at a
// time, and checks the results are all the same. It returns the result.
func checkSplits(t *testing.T, version Dialect, method string, maxHead int, input string) parseResult {
	t.Helper()
	b := []byte(input)
	whole := parseParts(t, version, method, maxHead, b)
	for i := 0; i <= len(b); i++ {
		got := parseParts(t, version, method, maxHead, b[:i], b[i:])
		if got.String() != whole.String() {
			t.Fatalf("split at %d: got\n%v\nwant (unsplit)\n%v", i, got, whole)
		}
	}
	parts := make([][]byte, len(b))
	for i := range b {
		parts[i] = b[i : i+1]
	}
	if got := parseParts(t, version, method, maxHead, parts...); got.String() != whole.String() {
		t.Fatalf("byte at a time: got\n%v\nwant (unsplit)\n%v", got, whole)
	}
	return whole
}

var responseTests = []struct {
	name    string
	version Dialect
	method  string
	maxHead int
	input   string
	want    parseResult
}{
	{
		name:  "content-length body",
		input: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nServer: test\r\n\r\nHello, world!",
		want: parseResult{events: []string{
			`head :status="200 OK" :version="HTTP/1.1" content-type="text/plain" content-length="13" server="test"`,
			"body Hello, world!", "end"}},
	},
	{
		name:    "v2 names",
		version: 2,
		input:   "HTTP/1.1 404 Not Found\r\nStatus: 404\r\nVersion: 1\r\nContent-Length: 2\r\n\r\nno",
		want: parseResult{events: []string{
			`head status="404 Not Found" version="HTTP/1.1" content-length="2"`,
			"body no", "end"}},
	},
	{
		name:  "status without reason",
		input: "HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nx",
		want:  parseResult{events: []string{`head :status="200" :version="HTTP/1.1" content-length="1"`, "body x", "end"}},
	},
	{
		name:  "status with empty reason, bare LF lines",
		input: "HTTP/1.1 201 \nLocation: /new\nContent-Length: 0\n\n",
		want:  parseResult{events: []string{`head :status="201" :version="HTTP/1.1" location="/new" content-length="0" (no body)`, "end"}},
	},
	{
		name: "interim responses skipped",
		input: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n" +
			"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		want: parseResult{events: []string{`head :status="200 OK" :version="HTTP/1.1" content-length="2"`, "body ok", "end"}},
	},
	{
		name:   "HEAD with content-length",
		method: "HEAD",
		input:  "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n",
		want:   parseResult{events: []string{`head :status="200 OK" :version="HTTP/1.1" content-length="13" (no body)`, "end"}},
	},
	{
		name:   "HEAD with chunked",
		method: "HEAD",
		input:  "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		want:   parseResult{events: []string{`head :status="200 OK" :version="HTTP/1.1" (no body)`, "end"}},
	},
	{
		name:  "204",
		input: "HTTP/1.1 204 No Content\r\nDate: x\r\n\r\n",
		want:  parseResult{events: []string{`head :status="204 No Content" :version="HTTP/1.1" date="x" (no body)`, "end"}},
	},
	{
		name:  "304 with content-length",
		input: "HTTP/1.1 304 Not Modified\r\nETag: \"a\"\r\nContent-Length: 100\r\n\r\n",
		want:  parseResult{events: []string{`head :status="304 Not Modified" :version="HTTP/1.1" etag="\"a\"" content-length="100" (no body)`, "end"}},
	},
	{
		name:  "content-length 0",
		input: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		want:  parseResult{events: []string{`head :status="200 OK" :version="HTTP/1.1" content-length="0" (no body)`, "end"}},
	},
	{
		name:  "repeated equal content-length",
		input: "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc",
		want:  parseResult{events: []string{`head :status="200 OK" :version="HTTP/1.1" content-length="3"`, "body abc", "end"}},
	},
	{
		name: "chunked with extensions and trailers",
		input: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\nTrailer: X-Sum\r\n\r\n" +
			"5;name=value\r\nhello\r\n7 ; a=\"b;c\"\t; d\r\n, world\r\n000A\r\n0123456789\r\n0\r\nX-Sum: abc\r\nx-sum: def\r\nContent-Length: 3\r\nConnection: close\r\n\r\n",
		want: parseResult{events: []string{
			`head :status="200 OK" :version="HTTP/1.1" content-type="text/plain" trailer="X-Sum"`,
			"body hello, world0123456789",
			`end x-sum="abc\x00def"`}},
	},
	{
		name:  "chunked without trailers",
		input: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		want:  parseResult{events: []string{`head :status="200 OK" :version="HTTP/1.1"`, "body abc", "end"}},
	},
	{
		name:  "chunked, lowercase hex, trailers all dropped",
		input: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n0\r\nContent-Length: 10\r\nKeep-Alive: 1\r\n\r\n",
		want:  parseResult{events: []string{`head :status="200 OK" :version="HTTP/1.1"`, "body 0123456789", "end"}},
	},
	{
		name:  "chunked, empty",
		input: "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n",
		want:  parseResult{events: []string{`head :status="200 OK" :version="HTTP/1.1"`, "end"}},
	},
	{
		name:  "close-delimited",
		input: "HTTP/1.0 200 OK\r\nServer: old\r\n\r\nsome body",
		want:  parseResult{events: []string{`head :status="200 OK" :version="HTTP/1.0" server="old"`, "body some body", "end"}},
	},
	{
		name:  "close-delimited, empty",
		input: "HTTP/1.1 200 OK\r\n\r\n",
		want:  parseResult{events: []string{`head :status="200 OK" :version="HTTP/1.1"`, "end"}},
	},
	{
		name: "set-cookie merging and position",
		input: "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX-One: 1\r\nset-cookie: b=2; Path=/\r\nX-Empty:\r\nSET-COOKIE:  c=3  \r\n" +
			"Vary: Accept\r\nX-Empty: \r\nVary: Cookie\r\nX-Half:\r\nX-Half: h\r\nContent-Length: 0\r\n\r\n",
		want: parseResult{events: []string{
			`head :status="200 OK" :version="HTTP/1.1" set-cookie="a=1\x00b=2; Path=/\x00c=3" x-one="1" x-empty="" vary="Accept\x00Cookie" x-half="h" content-length="0" (no body)`,
			"end"}},
	},
	{
		name:  "connection-specific headers dropped",
		input: "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\nProxy-Connection: close\r\nX-Hop: 1\r\nUpgrade: h2\r\nConnection: Upgrade\r\nX-End: 2\r\nContent-Length: 0\r\n\r\n",
		want:  parseResult{events: []string{`head :status="200 OK" :version="HTTP/1.1" x-end="2" content-length="0" (no body)`, "end"}},
	},

	// Incomplete responses.
	{name: "nothing", input: "", want: parseResult{closeErr: "unexpected EOF"}},
	{name: "partial status line", input: "HTTP/1.1 200", want: parseResult{closeErr: "unexpected EOF"}},
	{name: "partial head", input: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", want: parseResult{closeErr: "unexpected EOF"}},
	{name: "only interim", input: "HTTP/1.1 100 Continue\r\n\r\n", want: parseResult{closeErr: "unexpected EOF"}},
	{
		name:  "short content-length body",
		input: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc",
		want:  parseResult{events: []string{`head :status="200 OK" :version="HTTP/1.1" content-length="5"`, "body abc"}, closeErr: "unexpected EOF"},
	},
	{
		name:  "chunked cut in data",
		input: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
		want:  parseResult{events: []string{`head :status="200 OK" :version="HTTP/1.1"`, "body ab"}, closeErr: "unexpected EOF"},
	},
	{
		name:  "chunked without last chunk",
		input: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n",
		want:  parseResult{events: []string{`head :status="200 OK" :version="HTTP/1.1"`, "body ab"}, closeErr: "unexpected EOF"},
	},
	{
		name:  "chunked without end of trailers",
		input: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-A: 1\r\n",
		want:  parseResult{events: []string{`head :status="200 OK" :version="HTTP/1.1"`}, closeErr: "unexpected EOF"},
	},

	// Bytes after the end.
	{
		name:  "bytes after content-length body",
		input: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n",
		want:  parseResult{events: []string{`head :status="200 OK" :version="HTTP/1.1" content-length="2"`, "body ok", "end"}, writeErr: ErrBytesAfterEnd.Error()},
	},
	{
		name:   "body after HEAD",
		method: "HEAD",
		input:  "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		want:   parseResult{events: []string{`head :status="200 OK" :version="HTTP/1.1" content-length="2" (no body)`, "end"}, writeErr: ErrBytesAfterEnd.Error()},
	},
	{
		name:  "body after 204",
		input: "HTTP/1.1 204 No Content\r\n\r\nx",
		want:  parseResult{events: []string{`head :status="204 No Content" :version="HTTP/1.1" (no body)`, "end"}, writeErr: ErrBytesAfterEnd.Error()},
	},
	{
		name:  "bytes after chunked body",
		input: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\r\n",
		want:  parseResult{events: []string{`head :status="200 OK" :version="HTTP/1.1"`, "end"}, writeErr: ErrBytesAfterEnd.Error()},
	},

	// Head size.
	{
		name:    "head at MaxHeadBytes",
		maxHead: 38,
		input:   "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		want:    parseResult{events: []string{`head :status="200 OK" :version="HTTP/1.1" content-length="0" (no body)`, "end"}},
	},
	{
		name:    "head over MaxHeadBytes",
		maxHead: 37,
		input:   "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		want:    parseResult{writeErr: "httpconv: malformed response: head larger than 37 bytes", closeErr: "httpconv: malformed response: head larger than 37 bytes"},
	},
	{
		name:    "head and trailers over MaxHeadBytes",
		maxHead: 60,
		input:   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Trailer: 123456\r\n\r\n",
		want: parseResult{events: []string{`head :status="200 OK" :version="HTTP/1.1"`},
			writeErr: "httpconv: malformed response: head larger than 60 bytes", closeErr: "httpconv: malformed response: head larger than 60 bytes"},
	},
}

func TestResponseParser(t *testing.T) {
	for _, tt := range responseTests {
		t.Run(tt.name, func(t *testing.T) {
			version := tt.version
			if version == 0 {
				version = 3
			}
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
				if want.writeErr != "<nil>" {
					want.closeErr = want.writeErr
				}
			}
			if got := checkSplits(t, version, method, tt.maxHead, tt.input); got.String() != want.String() {
				t.Errorf("got\n%v\nwant\n%v", got, want)
			}
		})
	}
}

func TestResponseParserMalformed(t *testing.T) {
	tests := []struct {
		name, input string
	}{
		{"blank first line", "\r\nHTTP/1.1 200 OK\r\n\r\n"},
		{"HTTP/2 status line", "HTTP/2 200 OK\r\n\r\n"},
		{"HTTP/2.0", "HTTP/2.0 200 OK\r\n\r\n"},
		{"lowercase version", "http/1.1 200 OK\r\n\r\n"},
		{"no space after version", "HTTP/1.1\t200 OK\r\n\r\n"},
		{"two-digit status", "HTTP/1.1 20 OK\r\n\r\n"},
		{"four-digit status", "HTTP/1.1 2000 OK\r\n\r\n"},
		{"status below 100", "HTTP/1.1 099 Low\r\n\r\n"},
		{"letter in status", "HTTP/1.1 2x0 OK\r\n\r\n"},
		{"NUL in reason", "HTTP/1.1 200 O\x00K\r\n\r\n"},
		{"CR in reason", "HTTP/1.1 200 O\rK\r\n\r\n"},
		{"101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: 1\r\n  continued\r\nContent-Length: 0\r\n\r\n"},
		{"whitespace before first header", "HTTP/1.1 200 OK\r\n X-A: 1\r\n\r\n"},
		{"no colon", "HTTP/1.1 200 OK\r\nX-A 1\r\n\r\n"},
		{"space before colon", "HTTP/1.1 200 OK\r\nX-A : 1\r\n\r\n"},
		{"empty name", "HTTP/1.1 200 OK\r\n: 1\r\n\r\n"},
		{"NUL in value", "HTTP/1.1 200 OK\r\nX-A: 1\x002\r\n\r\n"},
		{"CR in value", "HTTP/1.1 200 OK\r\nX-A: 1\r2\r\n\r\n"},
		{"conflicting content-length", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab"},
		{"content-length list", "HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\nab"},
		{"empty content-length", "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n"},
		{"negative content-length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"},
		{"content-length overflow", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n"},
		{"gzip transfer-encoding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"},
		{"gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"},
		{"chunked twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"},
		{"chunk size not hex", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"},
		{"chunk size missing", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n;ext\r\n"},
		{"chunk size 17 digits", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000001\r\n"},
		{"chunk size overflow", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8000000000000000\r\n"},
		{"chunk size with bare LF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n"},
		{"chunk size CR CR", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\rabc\r\n0\r\n\r\n"},
		{"chunk extension with LF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;a\nabc\r\n0\r\n\r\n"},
		{"chunk size then junk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3 x\r\nabc\r\n0\r\n\r\n"},
		{"chunk data too long", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n"},
		{"chunk data without CRLF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n"},
		{"chunk extension too long", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;" + strings.Repeat("a", maxChunkLine) + "\r\nabc\r\n0\r\n\r\n"},
		{"bad trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checkSplits(t, 3, "GET", 0, tt.input)
			if !strings.HasPrefix(got.writeErr, "httpconv: malformed response: ") {
				t.Fatalf("got\n%v\nwant a malformed response error from Write", got)
			}
			if got.closeErr != got.writeErr {
				t.Errorf("got close error %q; want the write error %q", got.closeErr, got.writeErr)
			}
			var rec recorder
			var p ResponseParser
			p.Reset(3, "GET", &rec)
			_, err := p.Write([]byte(tt.input))
			var re *ResponseError
			if !errors.As(err, &re) {
				t.Errorf("got error %T %v; want a *ResponseError", err, err)
			}
		})
	}
}

func TestResponseParserReuse(t *testing.T) {
	var p ResponseParser
	for i := range 3 {
		var rec recorder
		p.Reset(3, "GET", &rec)
		in := fmt.Sprintf("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n%d\r\n0\r\n\r\n", i)
		if n, err := p.Write([]byte(in)); n != len(in) || err != nil {
			t.Fatalf("response %d: got Write %d, %v; want %d, nil", i, n, err, len(in))
		}
		want := []string{`head :status="200 OK" :version="HTTP/1.1"`, fmt.Sprintf("body %d", i), "end"}
		if fmt.Sprint(rec.events) != fmt.Sprint(want) || !p.Done() {
			t.Errorf("response %d: got %q, done %v; want %q, done", i, rec.events, p.Done(), want)
		}
	}
}

func TestResponseParserHandlerError(t *testing.T) {
	errStop := errors.New("stop")
	for _, in := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"HTTP/1.1 204 No Content\r\n\r\n",
	} {
		var p ResponseParser
		p.Reset(3, "GET", &recorder{err: errStop})
		if _, err := p.Write([]byte(in)); err != errStop {
			t.Errorf("%q: got Write error %v; want the handler's", in, err)
		}
		if _, err := p.Write([]byte("x")); err != errStop {
			t.Errorf("%q: got second Write error %v; want the handler's", in, err)
		}
		if err := p.Close(); err != errStop {
			t.Errorf("%q: got Close error %v; want the handler's", in, err)
		}
	}

	// End's error at Close of a close-delimited body.
	var p ResponseParser
	rec := &recorder{}
	p.Reset(3, "GET", rec)
	if _, err := p.Write([]byte("HTTP/1.1 200 OK\r\n\r\nabc")); err != nil {
		t.Fatal(err)
	}
	rec.err = errStop
	if err := p.Close(); err != errStop {
		t.Errorf("got Close error %v; want the handler's", err)
	}
}

func TestResponseParserBadVersionPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Errorf("got no panic for dialect 1; want one")
		}
	}()
	var p ResponseParser
	p.Reset(1, "GET", &recorder{})
}

func TestResponseParserCloseErrors(t *testing.T) {
	var p ResponseParser
	p.Reset(3, "GET", &recorder{})
	if err := p.Close(); err != io.ErrUnexpectedEOF {
		t.Errorf("got Close error %v; want io.ErrUnexpectedEOF", err)
	}
	if _, err := p.Write([]byte("HTTP/1.1 200 OK\r\n\r\n")); err != io.ErrUnexpectedEOF {
		t.Errorf("got Write after Close error %v; want io.ErrUnexpectedEOF", err)
	}
}

func TestResponseParserAllocs(t *testing.T) {
	var p ResponseParser
	var h discard
	head := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nTransfer-Encoding: chunked\r\n\r\n")
	chunk := []byte("4\r\nbody\r\n")
	p.Reset(3, "GET", &h)
	p.Write(head) // grow the buffers once
	headAllocs := testing.AllocsPerRun(100, func() {
		p.Reset(3, "GET", &h)
		if _, err := p.Write(head); err != nil {
			t.Fatal(err)
		}
	})
	if headAllocs > 2 {
		t.Errorf("got %v allocs per head; want at most 2", headAllocs)
	}
	bodyAllocs := testing.AllocsPerRun(100, func() {
		if _, err := p.Write(chunk); err != nil {
			t.Fatal(err)
		}
	})
	if bodyAllocs != 0 {
		t.Errorf("got %v allocs per chunk; want 0", bodyAllocs)
	}
}

// discard is a ResponseHandler that keeps nothing.
type discard struct{ n int }

func (d *discard) Head([]HeaderField, bool) error { return nil }
func (d *discard) Body(p []byte) error            { d.n += len(p); return nil }
func (d *discard) End([]HeaderField) error        { return nil }
