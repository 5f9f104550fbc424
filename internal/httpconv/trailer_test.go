package httpconv

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestForbiddenTrailer(t *testing.T) {
	for name, want := range map[string]bool{
		"grpc-status":       false,
		"Grpc-Message":      false,
		"x-checksum":        false,
		"content-length":    true,
		"Content-Type":      true,
		"TRANSFER-ENCODING": true,
		"host":              true,
		"authorization":     true,
		"set-cookie":        true,
		"trailer":           true,
		":status":           true,
		":path":             true,
		"www-authenticate":  true,
		"www-authenticatex": false,
		"":                  false,
	} {
		if got := ForbiddenTrailer(name); got != want {
			t.Errorf("ForbiddenTrailer(%q) = %v; want %v", name, got, want)
		}
	}
}

func TestTrailerFields(t *testing.T) {
	trailer := http.Header{
		"Grpc-Status":    {"0"},
		"Grpc-Message":   {"ok"},
		"X-Multi":        {"a", "", "b"},
		"Content-Length": {"3"},   // forbidden
		"Set-Cookie":     {"a=1"}, // forbidden
		"Bad Name":       {"x"},   // not a token
		"X-Bad-Value":    {"a\r\nb"},
		"X-Empty":        {""},
	}
	for _, tt := range []struct {
		d    Dialect
		want string
	}{
		{SPDY3, `grpc-message="ok" grpc-status="0" x-multi="a\x00b"`},
		{SPDY2, `grpc-message="ok" grpc-status="0" x-multi="a\x00b"`},
		{H2, `grpc-message="ok" grpc-status="0" x-empty="" x-multi="a" x-multi="" x-multi="b"`},
	} {
		if got := formatFields(TrailerFields(nil, tt.d, trailer)); got != tt.want {
			t.Errorf("%v: got %s; want %s", tt.d, got, tt.want)
		}
	}
	// SPDY: names that differ in case only are one field.
	got := formatFields(TrailerFields(nil, SPDY3, http.Header{"X-A": {"1"}, "x-a": {"2"}}))
	if got != `x-a="1\x002"` && got != `x-a="2\x001"` {
		t.Errorf("SPDY3, one name in two cases: got %s; want one x-a field", got)
	}
}

func TestTrailerFromFields(t *testing.T) {
	got := TrailerFromFields(fieldList("grpc-status", "0", "x-multi", "a\x00b", "content-type", "text/plain", ":status", "200"))
	want := http.Header{"Grpc-Status": {"0"}, "X-Multi": {"a", "b"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v; want %v", got, want)
	}
}

// Response trailers that RFC 9110 §6.5.1 keeps out of a trailer section
// are dropped; the rest go through, in every dialect.
func TestResponseForbiddenTrailersDropped(t *testing.T) {
	in := "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: Grpc-Status, Content-Type\r\n\r\n" +
		"2\r\nok\r\n0\r\nGrpc-Status: 0\r\nContent-Type: text/html\r\nSet-Cookie: a=1\r\nHost: evil\r\nX-Sum: 1\r\n\r\n"
	for _, d := range []Dialect{SPDY2, SPDY3, H2} {
		res := parseParts(t, d, "GET", 0, []byte(in))
		last := res.events[len(res.events)-1]
		if last != `end grpc-status="0" x-sum="1"` {
			t.Errorf("%v: last event %q; want the trailers grpc-status and x-sum only\n%v", d, last, res)
		}
	}
}

// Request trailers from the client reach the server without the fields
// a trailer section must not hold.
func TestLastChunkForbiddenTrailersDropped(t *testing.T) {
	got := string(AppendLastChunk(nil, fieldList("grpc-status", "0", "content-type", "x", "authorization", "y", "x-sum", "1")))
	if want := "0\r\ngrpc-status: 0\r\nx-sum: 1\r\n\r\n"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
	if strings.Contains(got, "authorization") {
		t.Error("authorization went through")
	}
}
