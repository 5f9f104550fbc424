package gateway

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// The backend sees the client's Host unless RewriteHost; a path in the
// backend URL is a prefix.
func TestHost(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Path", r.URL.Path)
		headerEcho(w, r)
	}))
	defer backend.Close()
	for _, tc := range []struct {
		name     string
		rewrite  bool
		wantHost string
	}{
		{"kept", false, "vhost.example:8443"},
		{"rewritten", true, strings.TrimPrefix(backend.URL, "http://")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGateway(t, backend.URL+"/app", Config{RewriteHost: tc.rewrite})
			req := httptest.NewRequest("GET", "https://vhost.example:8443/a/b", nil)
			rec := httptest.NewRecorder()
			g.ServeHTTP(rec, req)
			var seen http.Header
			if err := json.Unmarshal(rec.Body.Bytes(), &seen); err != nil {
				t.Fatal(err)
			}
			if got := seen.Get("Host"); got != tc.wantHost {
				t.Errorf("backend saw Host %q; want %q", got, tc.wantHost)
			}
			if got := seen.Get("X-Forwarded-Host"); got != "vhost.example:8443" {
				t.Errorf("X-Forwarded-Host %q; want the client's Host", got)
			}
			if got := rec.Header().Get("X-Path"); got != "/app/a/b" {
				t.Errorf("backend saw path %q; want /app/a/b (the backend's path is a prefix)", got)
			}
		})
	}
}

type observed struct {
	d    time.Duration
	kind string
}

// Observe sees each exchange with its time to the response header, or
// its failure by kind; Conns counts the connections busy and idle.
func TestObserveAndConns(t *testing.T) {
	release := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/wait" {
			<-release
		}
		time.Sleep(20 * time.Millisecond)
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	var mu sync.Mutex
	var seen []observed
	g := newGateway(t, backend.URL, Config{Observe: func(r *http.Request, d time.Duration, err error) {
		o := observed{d: d}
		if err != nil {
			o.kind = ErrorKind(r, err)
		}
		mu.Lock()
		seen = append(seen, o)
		mu.Unlock()
	}})

	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	if busy, idle := g.Conns(); busy != 0 || idle != 1 {
		t.Errorf("after one exchange: %d busy, %d idle; want 0, 1", busy, idle)
	}
	mu.Lock()
	if len(seen) != 1 || seen[0].kind != "" || seen[0].d < 20*time.Millisecond {
		t.Errorf("observed %v; want one exchange of 20ms or more", seen)
	}
	mu.Unlock()

	done := make(chan struct{})
	go func() {
		defer close(done)
		g.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/wait", nil))
	}()
	deadline := time.Now().Add(5 * time.Second)
	for busy, _ := g.Conns(); busy != 1; busy, _ = g.Conns() {
		if time.Now().After(deadline) {
			t.Fatal("no busy connection while an exchange waits")
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	<-done
	g.CloseIdleConnections()
	if busy, idle := g.Conns(); busy != 0 || idle != 0 {
		t.Errorf("after CloseIdleConnections: %d busy, %d idle; want 0, 0", busy, idle)
	}

	// A backend that refuses connections: a connect error.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	var kinds []string
	g2 := newGateway(t, dead, Config{Observe: func(r *http.Request, d time.Duration, err error) {
		kinds = append(kinds, ErrorKind(r, err))
	}})
	rec = httptest.NewRecorder()
	g2.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusBadGateway || len(kinds) != 1 || kinds[0] != ErrConnect {
		t.Errorf("refused backend: status %d, kinds %v; want 502 and [%s]", rec.Code, kinds, ErrConnect)
	}
}

func TestErrorKind(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, ErrConnect},
		{&net.OpError{Op: "read", Err: errors.New("connection reset by peer")}, ErrBroken},
		{io.ErrUnexpectedEOF, ErrBroken},
		{timeoutErr{}, ErrTimeout},
	} {
		if got := ErrorKind(r, tc.err); got != tc.want {
			t.Errorf("ErrorKind(%v) = %q; want %q", tc.err, got, tc.want)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "timeout awaiting response headers" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }
