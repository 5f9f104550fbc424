package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spdymux/spdymux"
)

func TestAccessLogLine(t *testing.T) {
	start := time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)
	req := httptest.NewRequest("GET", "/hello?x=\"1\"", nil)
	req.RemoteAddr = "192.0.2.9:4321"
	req.Header.Set("User-Agent", "curl/8.5.0")
	req.Header.Set("Referer", "https://site.example/a\"b")
	stream := &spdymux.StreamInfo{Protocol: spdymux.ProtoH2, SessionID: 7, StreamID: 3}

	for _, tc := range []struct {
		name    string
		gateway bool
		si      *spdymux.StreamInfo
		rec     record
		status  int
		bytes   int64
		want    string
	}{
		{"http/1.1", false, nil, record{start: start}, 200, 13,
			`192.0.2.9 - - [28/Nov/2026:08:00:00 +0000] "GET /hello?x=\"1\" HTTP/1.1" 200 13 "https://site.example/a\"b" "curl/8.5.0" proto=http/1.1 session=- stream=- duration_ms=1.500`},
		{"h2, no body", false, stream, record{start: start}, 304, 0,
			`192.0.2.9 - - [28/Nov/2026:08:00:00 +0000] "GET /hello?x=\"1\" HTTP/2.0" 304 - "https://site.example/a\"b" "curl/8.5.0" proto=h2 session=7 stream=3 duration_ms=1.500`},
		{"gateway", true, stream, record{start: start, backend: 1200 * time.Microsecond, backed: true}, 200, 13,
			`192.0.2.9 - - [28/Nov/2026:08:00:00 +0000] "GET /hello?x=\"1\" HTTP/2.0" 200 13 "https://site.example/a\"b" "curl/8.5.0" proto=h2 session=7 stream=3 duration_ms=1.500 backend_ms=1.200`},
		{"gateway, backend down", true, stream, record{start: start}, 502, 38,
			`192.0.2.9 - - [28/Nov/2026:08:00:00 +0000] "GET /hello?x=\"1\" HTTP/2.0" 502 38 "https://site.example/a\"b" "curl/8.5.0" proto=h2 session=7 stream=3 duration_ms=1.500 backend_ms=-`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			l := newAccessLog(&out, logText, tc.gateway)
			l.write(req, tc.si, &tc.rec, tc.status, tc.bytes, 1500*time.Microsecond)
			if got := out.String(); got != tc.want+"\n" {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}

			out.Reset()
			l = newAccessLog(&out, logJSON, tc.gateway)
			l.write(req, tc.si, &tc.rec, tc.status, tc.bytes, 1500*time.Microsecond)
			var got map[string]any
			if err := json.Unmarshal(out.Bytes(), &got); err != nil {
				t.Fatalf("JSON line %q: %v", out.String(), err)
			}
			want := map[string]any{
				"time": "2026-11-28T08:00:00Z", "level": "INFO", "msg": "access",
				"remote_addr": "192.0.2.9", "method": "GET", "uri": `/hello?x="1"`, "status": float64(tc.status),
				"bytes": float64(tc.bytes), "referer": `https://site.example/a"b`, "user_agent": "curl/8.5.0",
				"duration_ms": 1.5,
			}
			if tc.si == nil {
				want["request_proto"], want["proto"], want["session"], want["stream"] = "HTTP/1.1", "http/1.1", float64(0), float64(0)
			} else {
				want["request_proto"], want["proto"], want["session"], want["stream"] = "HTTP/2.0", "h2", float64(7), float64(3)
			}
			if tc.gateway {
				want["backend_ms"] = -1.0
				if tc.rec.backed {
					want["backend_ms"] = 1.2
				}
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("JSON %s = %#v; want %#v", k, got[k], v)
				}
			}
			if len(got) != len(want) {
				t.Errorf("JSON has %d fields; want %d: %s", len(got), len(want), out.String())
			}
		})
	}
}

func TestAccessLogObserve(t *testing.T) {
	var out syncBuffer
	h := observe(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("Flush through the log writer: %v", err)
		}
		w.Write([]byte("abc"))
	}), newAccessLog(&out, logText, false), nil)
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// The line is written when the handler returns, which may be just
	// after the client has the response.
	want := `"GET /x HTTP/1.1" 200 3 "-" "Go-http-client/1.1" proto=http/1.1 session=- stream=- duration_ms=`
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(out.String(), want); {
		if time.Now().After(deadline) {
			t.Fatalf("log %q; want the request with status 200 and 3 bytes", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
