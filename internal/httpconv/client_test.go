package httpconv

import (
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// newRequest is a client request for rawURL with the given header lines.
func newRequest(t *testing.T, method, rawURL string, kv ...string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header[kv[i]] = append(req.Header[kv[i]], kv[i+1])
	}
	return req
}

// synStreamHeader is the header block builder that spdymux's Transport
// used before AppendRequestFields, kept here to show that the SPDY
// dialects build the same blocks.
func synStreamHeader(d Dialect, req *http.Request, acceptEncoding bool) []HeaderField {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	path := req.URL.RequestURI()
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	h := make([]HeaderField, 0, 6+len(req.Header))
	if d == SPDY2 {
		h = append(h, HeaderField{Name: "method", Value: method}, HeaderField{Name: "url", Value: path},
			HeaderField{Name: "version", Value: "HTTP/1.1"}, HeaderField{Name: "scheme", Value: req.URL.Scheme},
			HeaderField{Name: "host", Value: host})
	} else {
		h = append(h, HeaderField{Name: ":method", Value: method}, HeaderField{Name: ":path", Value: path},
			HeaderField{Name: ":version", Value: "HTTP/1.1"}, HeaderField{Name: ":host", Value: host},
			HeaderField{Name: ":scheme", Value: req.URL.Scheme})
	}
	pseudo := len(h)
	var dropped []string
	for _, c := range req.Header["Connection"] {
		for f := range strings.SplitSeq(c, ",") {
			if f = strings.TrimSpace(f); f != "" {
				dropped = append(dropped, http.CanonicalHeaderKey(f))
			}
		}
	}
	for k, vs := range req.Header {
		if spdyConnectionHeaders[k] || len(vs) == 0 || k == "Content-Length" || slices.Contains(dropped, k) {
			continue
		}
		value := vs[0]
		if len(vs) > 1 {
			value = joinValues(vs)
		}
		h = append(h, HeaderField{Name: strings.ToLower(k), Value: value})
	}
	if req.ContentLength > 0 {
		h = append(h, HeaderField{Name: "content-length", Value: strconv.FormatInt(req.ContentLength, 10)})
	}
	if acceptEncoding {
		h = append(h, HeaderField{Name: "accept-encoding", Value: "gzip, deflate"})
	}
	rest := h[pseudo:]
	slices.SortFunc(rest, func(a, b HeaderField) int { return strings.Compare(a.Name, b.Name) })
	out := h[:pseudo]
	for _, f := range rest {
		if n := len(out); n > pseudo && out[n-1].Name == f.Name {
			out[n-1].Value = joinValues([]string{out[n-1].Value, f.Value})
			continue
		}
		if d == SPDY2 && f.Name == "host" {
			continue
		}
		out = append(out, f)
	}
	return out
}

func TestAppendRequestFields(t *testing.T) {
	tests := []struct {
		name     string
		d        Dialect
		req      func(t *testing.T) *http.Request
		decode   bool
		want     string
		wantSame bool // the same as synStreamHeader
	}{
		{
			name: "SPDY/3 GET", d: SPDY3, decode: true, wantSame: true,
			req: func(t *testing.T) *http.Request {
				return newRequest(t, "GET", "https://example.com/a?b=c", "User-Agent", "x", "Accept", "text/html", "Accept", "*/*")
			},
			want: `:method="GET" :path="/a?b=c" :version="HTTP/1.1" :host="example.com" :scheme="https" accept="text/html\x00*/*" accept-encoding="gzip, deflate" user-agent="x"`,
		},
		{
			name: "SPDY/2 POST, connection-specific and listed headers dropped", d: SPDY2, wantSame: true,
			req: func(t *testing.T) *http.Request {
				r := newRequest(t, "POST", "http://h:8080/p", "Connection", "x-hop, Keep-Alive", "X-Hop", "1", "Keep-Alive", "1",
					"Te", "trailers", "Upgrade", "h2c", "Transfer-Encoding", "chunked", "Content-Length", "9", "Host", "other", "X-Empty", "", "X-Empty", "e")
				r.ContentLength = 3
				return r
			},
			want: `method="POST" url="/p" version="HTTP/1.1" scheme="http" host="h:8080" content-length="3" x-empty="e"`,
		},
		{
			name: "SPDY/3 req.Host wins", d: SPDY3, wantSame: true,
			req: func(t *testing.T) *http.Request {
				r := newRequest(t, "OPTIONS", "https://example.com/")
				r.Host = "example.org"
				r.URL.Path = "*"
				return r
			},
			want: `:method="OPTIONS" :path="*" :version="HTTP/1.1" :host="example.org" :scheme="https"`,
		},
		{
			name: "H2 GET", d: H2, decode: true,
			req: func(t *testing.T) *http.Request {
				return newRequest(t, "GET", "https://example.com/a?b=c", "User-Agent", "x", "Accept", "text/html", "Accept", "*/*",
					"Cookie", "a=1", "Cookie", "b=2")
			},
			want: `:method="GET" :scheme="https" :authority="example.com" :path="/a?b=c" accept="text/html" accept="*/*" accept-encoding="gzip, deflate" cookie="a=1" cookie="b=2" user-agent="x"`,
		},
		{
			name: "H2 connection-specific fields dropped, whatever the case (RFC 9113 section 8.2.2)", d: H2,
			req: func(t *testing.T) *http.Request {
				r := newRequest(t, "POST", "http://h:8080/p", "Connection", "x-hop, keep-alive", "X-Hop", "1", "keep-alive", "1",
					"proxy-connection", "close", "Upgrade", "h2c", "transfer-encoding", "chunked", "Content-Length", "9",
					"Host", "other", "host", "other", "X-Empty", "", "X-Empty", " e\t")
				r.ContentLength = 3
				return r
			},
			want: `:method="POST" :scheme="http" :authority="h:8080" :path="/p" content-length="3" x-empty="" x-empty="e"`,
		},
		{
			name: "H2 te: trailers only", d: H2,
			req: func(t *testing.T) *http.Request {
				return newRequest(t, "GET", "https://h/", "Te", "gzip, Trailers", "te", "deflate")
			},
			want: `:method="GET" :scheme="https" :authority="h" :path="/" te="trailers"`,
		},
		{
			name: "H2 te without trailers dropped", d: H2,
			req:  func(t *testing.T) *http.Request { return newRequest(t, "GET", "https://h/", "Te", "gzip") },
			want: `:method="GET" :scheme="https" :authority="h" :path="/"`,
		},
		{
			name: "H2 CONNECT (RFC 9113 section 8.5)", d: H2,
			req: func(t *testing.T) *http.Request {
				return &http.Request{Method: "CONNECT", URL: &url.URL{Host: "example.com:443"}, Header: http.Header{}}
			},
			want: `:method="CONNECT" :authority="example.com:443"`,
		},
		{
			name: "H2 OPTIONS *", d: H2,
			req: func(t *testing.T) *http.Request {
				return &http.Request{Method: "OPTIONS", URL: &url.URL{Scheme: "https", Host: "h", Path: "*"}}
			},
			want: `:method="OPTIONS" :scheme="https" :authority="h" :path="*"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []HeaderField{{Name: "x", Value: "y"}}
			got, err := AppendRequestFields(prefix, tt.d, tt.req(t), tt.decode)
			if err != nil {
				t.Fatalf("got error %v; want none", err)
			}
			if got[0] != prefix[0] {
				t.Fatalf("got %v; want it to start with dst", formatFields(got))
			}
			if s := formatFields(got[1:]); s != tt.want {
				t.Errorf("got\n%s\nwant\n%s", s, tt.want)
			}
			if tt.wantSame {
				if want := formatFields(synStreamHeader(tt.d, tt.req(t), tt.decode)); formatFields(got[1:]) != want {
					t.Errorf("got\n%s\nwant what synStreamHeader gave\n%s", formatFields(got[1:]), want)
				}
			}
			// The server side takes what the client side sends.
			body := tt.req(t).ContentLength > 0
			_, _, err = AppendRequestHead(nil, tt.d, got[1:], !body)
			var bre *BadRequestError
			if err != nil && !(errors.As(err, &bre) && bre.Status == 501) {
				t.Errorf("AppendRequestHead of %s: %v", formatFields(got[1:]), err)
			}
		})
	}
}

func TestAppendRequestFieldsErrors(t *testing.T) {
	tests := []struct {
		name string
		d    Dialect
		req  *http.Request
	}{
		{"bad header name", SPDY3, &http.Request{Method: "GET", URL: &url.URL{Scheme: "https", Host: "h", Path: "/"}, Header: http.Header{"X A": {"1"}}}},
		{"pseudo-header name", H2, &http.Request{Method: "GET", URL: &url.URL{Scheme: "https", Host: "h", Path: "/"}, Header: http.Header{":path": {"/x"}}}},
		{"header value with CRLF", SPDY2, &http.Request{Method: "GET", URL: &url.URL{Scheme: "https", Host: "h", Path: "/"}, Header: http.Header{"X-A": {"1\r\nX-B: 2"}}}},
		{"header value with NUL", H2, &http.Request{Method: "GET", URL: &url.URL{Scheme: "https", Host: "h", Path: "/"}, Header: http.Header{"X-A": {"1\x00"}}}},
		{"H2 bad method", H2, &http.Request{Method: "GE T", URL: &url.URL{Scheme: "https", Host: "h", Path: "/"}}},
		{"H2 no host", H2, &http.Request{Method: "GET", URL: &url.URL{Scheme: "https", Path: "/"}}},
		{"H2 bad host", H2, &http.Request{Method: "GET", Host: "a b", URL: &url.URL{Scheme: "https", Host: "h", Path: "/"}}},
		{"H2 no scheme", H2, &http.Request{Method: "GET", URL: &url.URL{Host: "h", Path: "/"}}},
		{"H2 opaque path", H2, &http.Request{Method: "GET", URL: &url.URL{Scheme: "https", Host: "h", Opaque: "x"}}},
		{"H2 * for GET", H2, &http.Request{Method: "GET", URL: &url.URL{Scheme: "https", Host: "h", Path: "*"}}},
	}
	for _, tt := range tests {
		dst := []HeaderField{{Name: "x", Value: "y"}}
		got, err := AppendRequestFields(dst, tt.d, tt.req, false)
		if err == nil {
			t.Errorf("%s: got %s; want an error", tt.name, formatFields(got))
		}
		if len(got) != 1 || got[0] != dst[0] {
			t.Errorf("%s: got dst %s; want it unchanged", tt.name, formatFields(got))
		}
	}
}

func TestCheckHeader(t *testing.T) {
	tests := []struct {
		h  http.Header
		ok bool
	}{
		{http.Header{"X-A": {"1", "", "caf\xc3\xa9", "a\tb"}, "lower-case": {"ok"}, "!#$%&'*+-.^_`|~": {"x"}}, true},
		{http.Header{"": {"1"}}, false},
		{http.Header{"X A": {"1"}}, false},
		{http.Header{"X:A": {"1"}}, false},
		{http.Header{"X-\xc3\xa9": {"1"}}, false},
		{http.Header{"X-A": {"1\r\n"}}, false},
		{http.Header{"X-A": {"\x00"}}, false},
		{http.Header{"X-A": {"\x7f"}}, false},
	}
	for _, tt := range tests {
		if err := CheckHeader(tt.h); (err == nil) != tt.ok {
			t.Errorf("CheckHeader(%q) = %v; want ok %v", tt.h, err, tt.ok)
		}
	}
}

func TestResponseFromFields(t *testing.T) {
	tests := []struct {
		name   string
		d      Dialect
		fields []HeaderField
		want   string // status, proto, content-length, header; "" for a *MalformedError
	}{
		{"SPDY/3", SPDY3, fieldList(":status", "200 OK", ":version", "HTTP/1.1", "set-cookie", "a=1\x00b=2", "content-length", "5", ":x", "y"),
			`200 OK SPDY/3 5 map[Content-Length:[5] Set-Cookie:[a=1 b=2]]`},
		{"SPDY/3 code alone", SPDY3, fieldList(":status", "404"), `404 Not Found SPDY/3 -1 map[]`},
		{"SPDY/3 unknown code", SPDY3, fieldList(":status", "599"), `599  SPDY/3 -1 map[]`},
		{"SPDY/3 bad content-length ignored", SPDY3, fieldList(":status", "200", "content-length", "+5"), `200 OK SPDY/3 -1 map[Content-Length:[+5]]`},
		{"SPDY/3 two content-length ignored", SPDY3, fieldList(":status", "200", "content-length", "5\x005"), `200 OK SPDY/3 -1 map[Content-Length:[5 5]]`},
		{"SPDY/2", SPDY2, fieldList("status", "204 No Content", "version", "HTTP/1.1", "x-a", "1"), `204 No Content SPDY/2 -1 map[X-A:[1]]`},
		{"SPDY/3 missing :status", SPDY3, fieldList(":version", "HTTP/1.1"), ""},
		{"SPDY/3 status with v2 name", SPDY3, fieldList("status", "200"), ""},
		{"SPDY/3 two-digit status", SPDY3, fieldList(":status", "20 OK"), ""},
		{"SPDY/3 status 099", SPDY3, fieldList(":status", "099"), ""},
		{"SPDY/3 status +20", SPDY3, fieldList(":status", "+20"), ""},

		{"H2", H2, fieldList(":status", "200", "set-cookie", "a=1", "content-type", "text/plain", "set-cookie", "b=2", "content-length", "5", "x-empty", ""),
			`200 OK HTTP/2.0 5 map[Content-Length:[5] Content-Type:[text/plain] Set-Cookie:[a=1 b=2] X-Empty:[]]`},
		{"H2 interim", H2, fieldList(":status", "103", "link", "</a>"), `103 Early Hints HTTP/2.0 -1 map[Link:[</a>]]`},
		{"H2 NUL is no separator", H2, fieldList(":status", "200", "x-a", "1\x002"), ""},
		{"H2 missing :status (RFC 9113 section 8.3.2)", H2, fieldList("x-a", "1"), ""},
		{"H2 reason phrase", H2, fieldList(":status", "200 OK"), ""},
		{"H2 repeated :status", H2, fieldList(":status", "200", ":status", "200"), ""},
		{"H2 :status after a field (section 8.3)", H2, fieldList("x-a", "1", ":status", "200"), ""},
		{"H2 request pseudo-header", H2, fieldList(":status", "200", ":path", "/"), ""},
		{"H2 :version", H2, fieldList(":status", "200", ":version", "HTTP/1.1"), ""},
		{"H2 uppercase (section 8.2)", H2, fieldList(":status", "200", "X-A", "1"), ""},
		{"H2 bad name", H2, fieldList(":status", "200", "x a", "1"), ""},
		{"H2 value with whitespace", H2, fieldList(":status", "200", "x-a", "1 "), ""},
		{"H2 connection (section 8.2.2)", H2, fieldList(":status", "200", "connection", "close"), ""},
		{"H2 transfer-encoding", H2, fieldList(":status", "200", "transfer-encoding", "chunked"), ""},
		{"H2 te in a response", H2, fieldList(":status", "200", "te", "trailers"), ""},
		{"H2 repeated content-length", H2, fieldList(":status", "200", "content-length", "5", "content-length", "5"), ""},
		{"H2 bad content-length", H2, fieldList(":status", "200", "content-length", "5x"), ""},
	}
	for _, tt := range tests {
		resp, err := ResponseFromFields(tt.d, tt.fields)
		if tt.want == "" {
			var me *MalformedError
			if !errors.As(err, &me) {
				t.Errorf("%s: got %v, %v; want a *MalformedError", tt.name, resp, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: got error %v; want none", tt.name, err)
			continue
		}
		got := resp.Status + " " + resp.Proto + " " + strconv.FormatInt(resp.ContentLength, 10) + " " + fmtHeader(resp.Header)
		if got != tt.want {
			t.Errorf("%s: got %q; want %q", tt.name, got, tt.want)
		}
		if code, _, _ := strings.Cut(resp.Status, " "); code != strconv.Itoa(resp.StatusCode) {
			t.Errorf("%s: got StatusCode %d with Status %q", tt.name, resp.StatusCode, resp.Status)
		}
		if want := map[Dialect]int{SPDY2: 2, SPDY3: 3, H2: 2}[tt.d]; resp.ProtoMajor != want || resp.ProtoMinor != 0 {
			t.Errorf("%s: got proto %d.%d; want %d.0", tt.name, resp.ProtoMajor, resp.ProtoMinor, want)
		}
	}
}

func fmtHeader(h http.Header) string {
	var b strings.Builder
	b.WriteString("map[")
	for i, k := range slices.Sorted(maps.Keys(h)) {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k + ":[" + strings.Join(h[k], " ") + "]")
	}
	b.WriteString("]")
	return b.String()
}
