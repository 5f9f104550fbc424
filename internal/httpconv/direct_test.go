package httpconv

import (
	"net/http"
	"net/textproto"
	"slices"
	"strings"
	"testing"
)

func TestRequestHeaderH2(t *testing.T) {
	fields := []HeaderField{
		{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "https"}, {Name: ":authority", Value: "example.com"}, {Name: ":path", Value: "/"},
		{Name: "cookie", Value: "a=1"}, {Name: "x-multi", Value: "1"}, {Name: "cookie", Value: "b=2"}, {Name: "x-multi", Value: "2"},
		{Name: "te", Value: "trailers"}, {Name: "user-agent", Value: "ua"}, {Name: "x-custom-name", Value: "v"},
	}
	_, r, err := AppendRequestHead(nil, H2, fields, true)
	if err != nil {
		t.Fatal(err)
	}
	h := RequestHeader(H2, fields, r)
	want := http.Header{
		"Cookie":        {"a=1; b=2"},
		"X-Multi":       {"1", "2"},
		"User-Agent":    {"ua"},
		"X-Custom-Name": {"v"},
	}
	if !equalHeader(h, want) {
		t.Errorf("got %v; want %v", h, want)
	}
	// The names share one array of values: a handler that adds to one
	// name's values must not write over another's.
	for k := range want {
		h[k] = append(h[k], "added")
	}
	for k, vv := range want {
		if got := h[k]; !slices.Equal(got[:len(got)-1], vv) || got[len(got)-1] != "added" {
			t.Errorf("after appending to every name, %s is %q; want %q and added", k, got, vv)
		}
	}
}

func TestRequestHeaderSPDY(t *testing.T) {
	for _, d := range []Dialect{SPDY2, SPDY3} {
		t.Run(d.String(), func(t *testing.T) {
			var fields []HeaderField
			if d == SPDY2 {
				fields = []HeaderField{{Name: "method", Value: "GET"}, {Name: "url", Value: "/"}, {Name: "version", Value: "HTTP/1.1"}, {Name: "host", Value: "example.com"}, {Name: "scheme", Value: "https"}}
			} else {
				fields = []HeaderField{{Name: ":method", Value: "GET"}, {Name: ":path", Value: "/"}, {Name: ":version", Value: "HTTP/1.1"}, {Name: ":host", Value: "example.com"}, {Name: ":scheme", Value: "https"}}
			}
			fields = append(fields, HeaderField{Name: "x-multi", Value: "1\x002"}, HeaderField{Name: "connection", Value: "close"}, HeaderField{Name: "accept", Value: "*/*"})
			_, r, err := AppendRequestHead(nil, d, fields, true)
			if err != nil {
				t.Fatal(err)
			}
			h := RequestHeader(d, fields, r)
			want := http.Header{
				"X-Multi":         {"1", "2"},
				"Accept":          {"*/*"},
				"Accept-Encoding": {"gzip, deflate"},
			}
			if !equalHeader(h, want) {
				t.Errorf("got %v; want %v", h, want)
			}
		})
	}
}

func TestAppendResponseFields(t *testing.T) {
	h := http.Header{
		"Content-Type":      {"text/plain"},
		"Set-Cookie":        {"a=1", "b=2"},
		"Connection":        {"x-hop, keep-alive"},
		"X-Hop":             {"1"},
		"Keep-Alive":        {"timeout=5"},
		"Transfer-Encoding": {"chunked"},
		"Upgrade":           {"h2c"},
		"Content-Length":    {"99"},
		"Bad Name":          {"x"},
		"X-Bad-Value":       {"a\nb"},
		"Status":            {"spoof"},
	}
	for _, tc := range []struct {
		d    Dialect
		cl   int64
		want []string
	}{
		{H2, 5, []string{":status=404", "content-length=5", "content-type=text/plain", "set-cookie=a=1", "set-cookie=b=2", "status=spoof"}},
		{H2, -1, []string{":status=404", "content-length=99", "content-type=text/plain", "set-cookie=a=1", "set-cookie=b=2", "status=spoof"}},
		{SPDY3, -1, []string{":status=404 Not Found", ":version=HTTP/1.1", "content-length=99", "content-type=text/plain", "set-cookie=a=1\x00b=2", "status=spoof", "upgrade=h2c"}},
		{SPDY2, -1, []string{"status=404 Not Found", "version=HTTP/1.1", "content-length=99", "content-type=text/plain", "set-cookie=a=1\x00b=2", "upgrade=h2c"}},
	} {
		var got []string
		for _, f := range AppendResponseFields(nil, tc.d, 404, h, tc.cl) {
			got = append(got, f.Name+"="+f.Value)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%v (content-length %d):\n got %q\nwant %q", tc.d, tc.cl, got, tc.want)
		}
	}
	// Keys differing only in case become one SPDY field.
	got := AppendResponseFields(nil, SPDY3, 200, http.Header{"X-A": {"1"}, "x-a": {"2"}}, -1)
	if len(got) != 3 || got[2].Name != "x-a" || !slices.Equal(slices.Sorted(slices.Values(strings.Split(got[2].Value, "\x00"))), []string{"1", "2"}) {
		t.Errorf("got %q; want one x-a field with both values", got)
	}
}

// TestAppendResponseFieldList checks the list form against the map form
// on TestAppendResponseFields's header given as fields, repeated and
// differently cased names among them.
func TestAppendResponseFieldList(t *testing.T) {
	fields := []HeaderField{
		{Name: "Content-Type", Value: "text/plain"},
		{Name: "Set-Cookie", Value: "a=1"},
		{Name: "connection", Value: "x-hop, keep-alive"},
		{Name: "X-Hop", Value: "1"},
		{Name: "Keep-Alive", Value: "timeout=5"},
		{Name: "Transfer-Encoding", Value: "chunked"},
		{Name: "set-cookie", Value: "b=2"},
		{Name: "Upgrade", Value: "h2c"},
		{Name: "Content-Length", Value: "99"},
		{Name: "Content-Length", Value: "7"},
		{Name: "Bad Name", Value: "x"},
		{Name: "X-Bad-Value", Value: "a\nb"},
		{Name: "Status", Value: "spoof"},
		{Name: "X-Empty", Value: ""},
		{Name: "X-Trim", Value: " v\t"},
	}
	for _, d := range []Dialect{H2, SPDY3, SPDY2} {
		for _, cl := range []int64{-1, 5} {
			checkFieldList(t, d, 404, fields, cl)
		}
	}
	// InsertField puts a field where the block made with it has it.
	for _, d := range []Dialect{H2, SPDY3, SPDY2} {
		for _, name := range []string{"Content-Type", "A", "Zz", "Set-Cookie"} {
			fs := slices.DeleteFunc(slices.Clone(fields), func(f HeaderField) bool { return strings.EqualFold(f.Name, name) })
			h := http.Header{}
			for _, f := range fs {
				h.Add(f.Name, f.Value)
			}
			h.Set(name, "v")
			want := AppendResponseFields(nil, d, 200, h, 3)
			got := InsertField(AppendResponseFieldList(nil, d, 200, fs, 3), d, HeaderField{Name: strings.ToLower(name), Value: "v"})
			if !slices.Equal(got, want) {
				t.Errorf("%v: inserting %s: got %q; want %q", d, name, got, want)
			}
		}
	}
	got := AppendResponseFieldList(nil, SPDY3, 200, []HeaderField{{Name: "X-A", Value: "1"}, {Name: "x-a", Value: "2"}}, -1)
	if len(got) != 3 || got[2] != (HeaderField{Name: "x-a", Value: "1\x002"}) {
		t.Errorf("got %q; want one x-a field with both values in order", got)
	}
}

// checkFieldList compares AppendResponseFieldList on fields with
// AppendResponseFields on the http.Header they make.
func checkFieldList(t *testing.T, d Dialect, code int, fields []HeaderField, cl int64) {
	t.Helper()
	h := http.Header{}
	for _, f := range fields {
		k := textproto.CanonicalMIMEHeaderKey(f.Name)
		h[k] = append(h[k], f.Value)
	}
	want := AppendResponseFields(nil, d, code, h, cl)
	got := AppendResponseFieldList(nil, d, code, fields, cl)
	if !slices.Equal(got, want) {
		t.Errorf("%v (content-length %d), %q:\n got %q\nwant %q", d, cl, fields, got, want)
	}
}

func FuzzResponseFieldList(f *testing.F) {
	f.Add([]byte("Content-Type: text/plain\nSet-Cookie: a=1\nset-cookie: b=2\nConnection: x-a\nX-A: 1\nContent-Length: 3"), uint8(0), int64(-1))
	f.Add([]byte("connection: close, te\nTE: trailers\nUpgrade: x\nstatus: 1\nversion: 2\nx: \x00"), uint8(1), int64(0))
	f.Add([]byte("Content-Length: 1\nContent-Length: x\nA: b\na: c"), uint8(2), int64(-1))
	f.Fuzz(func(t *testing.T, data []byte, dialect uint8, cl int64) {
		var fields []HeaderField
		for line := range strings.SplitSeq(string(data), "\n") {
			name, value, _ := strings.Cut(line, ":")
			fields = append(fields, HeaderField{Name: name, Value: value})
		}
		if cl < -1 {
			cl = -1
		}
		checkFieldList(t, fuzzDialect(dialect), 200, fields, cl)
	})
}

func equalHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}
