package cli

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestAccessLogLine(t *testing.T) {
	var out bytes.Buffer
	l := &accessLog{out: &out}
	req := httptest.NewRequest("GET", "/hello?x=\"1\"", nil)
	req.RemoteAddr = "192.0.2.9:4321"
	start := time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)
	l.write(req, start, 200, 13)
	l.write(req, start, 304, 0)
	want := `192.0.2.9 - - [28/Nov/2026:08:00:00 +0000] "GET /hello?x=\"1\" HTTP/1.1" 200 13` + "\n" +
		`192.0.2.9 - - [28/Nov/2026:08:00:00 +0000] "GET /hello?x=\"1\" HTTP/1.1" 304 -` + "\n"
	if got := out.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestAccessLogWrap(t *testing.T) {
	var out syncBuffer
	h := (&accessLog{out: &out}).wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("Flush through the log writer: %v", err)
		}
		w.Write([]byte("abc"))
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// The line is written when the handler returns, which may be just
	// after the client has the response.
	want := `"GET /x HTTP/1.1" 200 3` + "\n"
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(out.String(), want); {
		if time.Now().After(deadline) {
			t.Fatalf("log %q; want the request with status 200 and 3 bytes", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
