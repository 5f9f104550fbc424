package gateway

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spdymux/spdymux"
)

// A response read whole into the read-ahead buffer frees its backend
// connection at once; when the client then resets the stream, the
// connection, back in the pool and perhaps serving another request, must
// not be closed.
func TestReadAheadReturnedConnection(t *testing.T) {
	body := strings.Repeat("a", 40000)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/small" {
			io.WriteString(w, "ok")
			return
		}
		// Not all with the head: the read-ahead takes it.
		w.Header().Set("Content-Length", "40000")
		io.WriteString(w, body[:1000])
		w.(http.Flusher).Flush()
		time.Sleep(10 * time.Millisecond)
		io.WriteString(w, body[1000:])
	}))
	defer backend.Close()
	s := startStack(t, backend.URL, Config{})

	// A window of 1 KiB: the handler's writes wait for the client.
	slow := &spdymux.Transport{PlainProtocol: spdymux.ProtoSPDY31, Config: &spdymux.Config{InitialWindowSize: 1024}}
	defer slow.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", s.base+"/mid", nil)
	resp, err := slow.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	// The backend has sent it all and the connection is idle again.
	deadline := time.Now().Add(3 * time.Second)
	for st := s.g.Stats(); st.Idle != 1 || st.Busy != 0; st = s.g.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("the response is not read ahead in full: %+v", st)
		}
		time.Sleep(time.Millisecond)
	}
	cancel() // RST_STREAM: the handler's write fails
	resp.Body.Close()
	time.Sleep(50 * time.Millisecond)

	before := s.g.Stats()
	c := clients(t)["h2c"]
	if code, got := fetch(t, c, s.base+"/small"); code != 200 || got != "ok" {
		t.Fatalf("the next request: %d %q", code, got)
	}
	after := s.g.Stats()
	if after.Stale != before.Stale || after.Reuses != before.Reuses+1 {
		t.Errorf("the next request: %d connections found closed, %d reused (before: %d, %d); want the idle one reused: the reset closed a connection already back in the pool",
			after.Stale, after.Reuses, before.Stale, before.Reuses)
	}
}
