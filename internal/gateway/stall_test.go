package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spdymux/spdymux"
)

// stallTimeout is StallTimeout in these tests; the core's WindowTimeout
// (30 s) is far away, so what ends the exchanges here is the gateway.
const stallTimeout = 300 * time.Millisecond

// A client that does not read a response longer than the read-ahead
// buffer holds its backend connection for StallTimeout, not longer: the
// exchange is then cut, the connection closed and the stream reset.
func TestStallResponse(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1048576")
		w.Write(pattern(1 << 20))
	}))
	defer backend.Close()
	s := startStack(t, backend.URL, Config{StallTimeout: stallTimeout})
	// A window of 1 KiB the client never opens: it reads nothing.
	tr := &spdymux.Transport{PlainProtocol: spdymux.ProtoSPDY31, Config: &spdymux.Config{InitialWindowSize: 1024}}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("GET", s.base+"/big", nil)
	start := time.Now()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	deadline := time.Now().Add(stallTimeout + 3*time.Second)
	for s.g.Stats().Stalled == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	held := time.Since(start)
	st := s.g.Stats()
	if st.Stalled != 1 || st.Busy != 0 {
		t.Fatalf("%v after the request: %d exchanges cut, %d backend connections busy; want 1 and 0", held, st.Stalled, st.Busy)
	}
	if held < stallTimeout {
		t.Errorf("the exchange was cut %v after the request; want no sooner than StallTimeout %v", held, stallTimeout)
	}
	b, err := io.ReadAll(resp.Body)
	if err == nil || !strings.Contains(err.Error(), "reset") {
		t.Errorf("the stalled response: %d bytes, %v; want the stream reset", len(b), err)
	}
	t.Logf("backend connection released %v after the request; the client got %d bytes, then %v", held.Round(time.Millisecond), len(b), err)
	if !strings.Contains(s.log.String(), "client too slow") {
		t.Errorf("the gateway did not log the stalled exchange:\n%s", s.log)
	}
	checkIdle(t, s.g)
}

// A request body from which nothing comes for StallTimeout (a POST fed
// nothing, as with empty DATA frames) does not hold its backend
// connection: the exchange is cut and the client gets 408.
func TestStallRequestBody(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}))
	defer backend.Close()
	s := startStack(t, backend.URL, Config{StallTimeout: stallTimeout})
	for proto, c := range clients(t) {
		t.Run(proto, func(t *testing.T) {
			pr, pw := io.Pipe()
			defer pw.Close()
			go pw.Write([]byte("the first bytes, then nothing"))
			req, _ := http.NewRequest("POST", s.base+"/upload", pr)
			req.ContentLength = -1
			start := time.Now()
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			d := time.Since(start)
			if resp.StatusCode != http.StatusRequestTimeout || d < stallTimeout || d > stallTimeout+3*time.Second {
				t.Errorf("%d %q after %v; want 408 after StallTimeout %v", resp.StatusCode, body, d.Round(time.Millisecond), stallTimeout)
			}
		})
	}
	if st := s.g.Stats(); st.Stalled != 3 {
		t.Errorf("%d exchanges cut for a stalled client; want 3", st.Stalled)
	}
	checkIdle(t, s.g)
}
