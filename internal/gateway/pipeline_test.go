package gateway

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/spdymux/spdymux/internal/apachetest"
)

// Pipelining (Config.PipelineDepth): GET and HEAD requests of a session
// that would wait for a backend connection queue on one the session holds.

// oneSession puts every request in one session, as the streams of one
// HTTP/2 connection are.
func oneSession(*http.Request) string { return "the session" }

// pipeBackend is a backend on loopback that reads the requests of each
// connection as they come, pipelined or not, and answers them in order:
// the body is the request's path, repeated as its "n" query parameter
// says, after as many milliseconds as its "ms" parameter says. An answer
// waits while gate is closed; heads counts the request heads read, in
// all, and conns the connections accepted.
type pipeBackend struct {
	addr  string
	heads atomic.Int64
	conns atomic.Int64

	mu       sync.Mutex
	gate     chan struct{} // answers wait until it is closed
	methods  []string      // the method of every head read, in order
	closeNth int           // if set, the nth answer of each connection says Connection: close, and the connection ends
	varyNth  bool          // ... on the first, third, ... connection; the 2nth on the others
}

func newPipeBackend(t *testing.T) *pipeBackend {
	b := &pipeBackend{gate: make(chan struct{})}
	close(b.gate)
	b.addr = "http://" + serveLoopback(t, b.serve)
	return b
}

// hold makes answers wait until the returned function is called.
func (b *pipeBackend) hold() (release func()) {
	gate := make(chan struct{})
	b.mu.Lock()
	b.gate = gate
	b.mu.Unlock()
	return sync.OnceFunc(func() { close(gate) })
}

func pipeBody(r *http.Request) string {
	n, _ := strconv.Atoi(r.URL.Query().Get("n"))
	return strings.Repeat(r.URL.Path, max(n, 1))
}

func (b *pipeBackend) serve(c net.Conn) {
	defer c.Close()
	conn := b.conns.Add(1)
	reqs := make(chan *http.Request, 64)
	go func() {
		defer close(reqs)
		br := bufio.NewReader(c)
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, r.Body)
			b.mu.Lock()
			b.methods = append(b.methods, r.Method)
			b.mu.Unlock()
			b.heads.Add(1)
			reqs <- r
		}
	}()
	bw := bufio.NewWriter(c)
	n := 0
	for r := range reqs {
		n++
		b.mu.Lock()
		gate, closeNth := b.gate, b.closeNth
		if b.varyNth && conn%2 == 0 {
			closeNth *= 2
		}
		b.mu.Unlock()
		<-gate
		if ms, _ := strconv.Atoi(r.URL.Query().Get("ms")); ms > 0 {
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
		body := pipeBody(r)
		closing := closeNth > 0 && n == closeNth
		fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n", len(body))
		if closing {
			bw.WriteString("Connection: close\r\n")
		}
		bw.WriteString("\r\n")
		if r.Method != "HEAD" {
			bw.WriteString(body)
		}
		if bw.Flush() != nil || closing {
			return
		}
	}
}

// get fetches path and checks that the answer is the pipeBackend's.
func getChecked(ctx context.Context, c *http.Client, base, method, path string) error {
	req, err := http.NewRequestWithContext(ctx, method, base+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: %v", method, path, err)
	}
	want := pipeBody(req)
	if method == "HEAD" {
		if resp.ContentLength != int64(len(want)) || len(b) != 0 {
			return fmt.Errorf("HEAD %s: %d, length %d, %d bytes; want 200, length %d, none", path, resp.StatusCode, resp.ContentLength, len(b), len(want))
		}
		return nil
	}
	if resp.StatusCode != 200 || string(b) != want {
		return fmt.Errorf("%s %s: %d, %d bytes (%.40q); want 200, %d bytes", method, path, resp.StatusCode, len(b), b, len(want))
	}
	return nil
}

// goGet fetches path on a goroutine of wg's and checks the answer as
// getChecked does; a failure fails t.
func goGet(t *testing.T, wg *sync.WaitGroup, c *http.Client, base, method, path string) {
	wg.Go(func() {
		if err := getChecked(context.Background(), c, base, method, path); err != nil {
			t.Error(err)
		}
	})
}

// Many requests of one session, GETs and HEADs with answers from a few
// bytes to several times the response buffer, over two connections: each
// gets its own answer, and the connections carry several at a time.
func TestPipelineAnswersInOrder(t *testing.T) {
	b := newPipeBackend(t)
	// One session, though a client may open a second connection past the
	// server's stream limit.
	s := startStack(t, b.addr, Config{PipelineDepth: 4, MaxConnsPerSession: 2, ResponseBuffer: 4 << 10, Session: oneSession})
	for proto, c := range clients(t) {
		if proto == "http/1.1" {
			continue // one request per client connection: nothing to pipeline
		}
		t.Run(proto, func(t *testing.T) {
			before := s.g.Stats()
			var wg sync.WaitGroup
			for i := range 200 {
				method := "GET"
				if i%7 == 3 {
					method = "HEAD"
				}
				// Paths of 6-8 bytes: n = 1 to 3,000 makes up to 24 KB.
				goGet(t, &wg, c, s.base, method, fmt.Sprintf("/p%d?n=%d", i, 1+(i*997)%3000))
			}
			wg.Wait()
			st := s.g.Stats()
			if st.Pipelined == before.Pipelined {
				t.Errorf("no request was pipelined: %+v", st)
			}
			if n := st.Dials - before.Dials; n > 2 {
				t.Errorf("%d connections dialed; want at most MaxConnsPerSession, 2", n)
			}
			t.Logf("%d of 200 requests pipelined, %d connections", st.Pipelined-before.Pipelined, st.Dials-before.Dials)
		})
	}
	checkIdle(t, s.g)
}

// A connection carries at most PipelineDepth requests behind the one being
// answered; a request with a body never queues, and never has one queued
// behind it.
func TestPipelineDepth(t *testing.T) {
	b := newPipeBackend(t)
	s := startStack(t, b.addr, Config{PipelineDepth: 3, MaxConnsPerSession: 1})
	c := clients(t)["h2c"]
	release := b.hold()
	defer release()
	var wg sync.WaitGroup
	for i := range 10 {
		goGet(t, &wg, c, s.base, "GET", fmt.Sprintf("/d%d", i))
	}
	// The backend holds its first answer: 1 + 3 heads arrive, no more.
	deadline := time.Now().Add(5 * time.Second)
	for b.heads.Load() < 4 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	// A POST does not queue behind them.
	wg.Go(func() {
		req, _ := http.NewRequest("POST", s.base+"/post", strings.NewReader("body"))
		resp, err := c.Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "/post" {
			t.Errorf("POST: %q", b)
		}
	})
	time.Sleep(100 * time.Millisecond)
	if n := b.heads.Load(); n != 4 {
		t.Errorf("%d request heads reached the backend while its first answer was held; want 4 (1 + PipelineDepth)", n)
	}
	b.mu.Lock()
	for _, m := range b.methods {
		if m != "GET" {
			t.Errorf("a %s was pipelined", m)
		}
	}
	b.mu.Unlock()
	release()
	wg.Wait()
	if n := b.conns.Load(); n != 1 {
		t.Errorf("%d backend connections; want 1", n)
	}
	checkIdle(t, s.g)
}

// With PipelineWait negative, a request queues on a connection only when
// it would wait for one: while its session may take a connection of its
// own, it does. (So it does with the default wait behind paths not
// answered yet, as these are.)
func TestPipelineOnlyInsteadOfWaiting(t *testing.T) {
	b := newPipeBackend(t)
	s := startStack(t, b.addr, Config{PipelineDepth: 4, PipelineWait: -1, MaxConnsPerSession: 4, Session: oneSession})
	c := clients(t)["h2c"]
	release := b.hold()
	defer release()
	var wg sync.WaitGroup
	send := func(n int) {
		for i := range n {
			goGet(t, &wg, c, s.base, "GET", fmt.Sprintf("/w%d", i))
		}
	}
	waitHeads := func(n int64) {
		deadline := time.Now().Add(5 * time.Second)
		for b.heads.Load() < n && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond)
		if got := b.heads.Load(); got != n {
			t.Fatalf("%d heads at the backend; want %d", got, n)
		}
	}
	send(3)
	waitHeads(3)
	if st := s.g.Stats(); st.Pipelined != 0 || st.Busy != 3 {
		t.Errorf("3 requests, the session may hold 4 connections: %+v; want 3 busy, none pipelined", st)
	}
	send(5)
	waitHeads(8)
	if st := s.g.Stats(); st.Pipelined != 4 || st.Busy != 4 {
		t.Errorf("8 requests: %+v; want 4 busy, 4 pipelined", st)
	}
	release()
	wg.Wait()
	checkIdle(t, s.g)
}

// learnPaths gets each of paths in turn, so that the gateway learns how
// long the backend takes to answer them.
func learnPaths(t *testing.T, c *http.Client, base string, paths ...string) {
	t.Helper()
	for _, path := range paths {
		if err := getChecked(context.Background(), c, base, "GET", path); err != nil {
			t.Fatal(err)
		}
	}
}

// waitHeads waits until b has read n request heads, and a moment more,
// and fails t unless it has read exactly n.
func (b *pipeBackend) waitHeads(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for b.heads.Load() < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if got := b.heads.Load(); got != n {
		t.Fatalf("%d heads at the backend; want %d", got, n)
	}
}

// With PipelineWait, a request that could take a connection of its own
// queues instead on one of its session whose answers ahead are expected
// within the wait, by how long the backend took lately for their paths:
// behind a path answered quickly, not behind one answered slowly, nor
// behind one not answered yet; with PipelineWait negative, never. Three
// requests for a quick path follow one for the path ahead, one at a time:
// the first queues behind it or takes a connection of its own, and the
// others queue behind the quick path, unless the wait is negative.
func TestPipelineJoinsBehindQuickAnswers(t *testing.T) {
	for _, tc := range []struct {
		name     string
		wait     time.Duration
		ahead    string // the path of the request being answered
		busy     int    // connections taken then
		joined   uint64 // requests queued with a connection at hand
		pipeline uint64
	}{
		{"quick", 200 * time.Millisecond, "/quick", 1, 3, 3},
		{"slow", 200 * time.Millisecond, "/slow", 2, 2, 2},
		{"unknown", 200 * time.Millisecond, "/unknown", 2, 2, 2},
		{"never", -1, "/quick", 4, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newPipeBackend(t)
			s := startStack(t, b.addr, Config{PipelineDepth: 4, PipelineWait: tc.wait, MaxConnsPerSession: 8, Session: oneSession})
			c := clients(t)["h2c"]
			// One answer of each path to learn them: /slow takes longer
			// than the wait (the backend sleeps), /quick does not.
			learnPaths(t, c, s.base, "/quick", "/slow?ms=400")
			b.heads.Store(0)
			release := b.hold()
			defer release()
			var wg sync.WaitGroup
			goGet(t, &wg, c, s.base, "GET", tc.ahead)
			b.waitHeads(t, 1)
			for i := range 3 {
				goGet(t, &wg, c, s.base, "GET", "/quick")
				b.waitHeads(t, int64(i+2))
			}
			if st := s.g.Stats(); st.Busy != tc.busy || st.Joined != tc.joined || st.Pipelined != tc.pipeline {
				t.Errorf("%s being answered, 3 requests for /quick: %+v; want %d busy, %d joined, %d pipelined", tc.ahead, st, tc.busy, tc.joined, tc.pipeline)
			}
			release()
			wg.Wait()
			checkIdle(t, s.g)
		})
	}
}

// A path that turns slow stops requests from queuing behind it once its
// answers took longer than the wait: one answer of ten times the wait
// does it.
func TestPipelineStopsJoiningBehindAPathTurnedSlow(t *testing.T) {
	b := newPipeBackend(t)
	s := startStack(t, b.addr, Config{PipelineDepth: 4, PipelineWait: 30 * time.Millisecond, MaxConnsPerSession: 8, Session: oneSession})
	c := clients(t)["h2c"]
	learnPaths(t, c, s.base, "/p", "/p?ms=300")
	b.heads.Store(0)
	release := b.hold()
	defer release()
	var wg sync.WaitGroup
	goGet(t, &wg, c, s.base, "GET", "/p")
	b.waitHeads(t, 1)
	goGet(t, &wg, c, s.base, "GET", "/p")
	b.waitHeads(t, 2)
	if st := s.g.Stats(); st.Busy != 2 || st.Joined != 0 {
		t.Errorf("behind a path whose last answer took 300 ms, with a wait of 30 ms: %+v; want 2 busy, none joined", st)
	}
	release()
	wg.Wait()
	checkIdle(t, s.g)
}

// The backend closes the connection after an answer, with requests
// queued behind it: they go again on a new connection, and every client
// gets its answer. It closes some connections after 3 answers, others
// after 6, so that the most it was seen to answer on one (6) leaves
// requests queued beyond the third.
func TestPipelineBackendCloses(t *testing.T) {
	b := newPipeBackend(t)
	b.closeNth, b.varyNth = 3, true
	s := startStack(t, b.addr, Config{PipelineDepth: 4, MaxConnsPerSession: 2})
	c := clients(t)["spdy/3.1"]
	var wg sync.WaitGroup
	for i := range 100 {
		goGet(t, &wg, c, s.base, "GET", fmt.Sprintf("/c%d?n=%d", i, i))
	}
	wg.Wait()
	st := s.g.Stats()
	if st.Retries == 0 || st.Pipelined == 0 {
		t.Errorf("%+v; want requests pipelined and some sent again", st)
	}
	checkIdle(t, s.g)
}

// The backend closes every connection after its fifth answer, as Apache
// does after MaxKeepAliveRequests: once the gateway has seen it, no
// request queues to be answered after the fifth, and none is lost with
// the connection and sent again.
func TestPipelineLearnsKeepAliveMax(t *testing.T) {
	b := newPipeBackend(t)
	b.closeNth = 5
	s := startStack(t, b.addr, Config{PipelineDepth: 8, MaxConnsPerSession: 2, Session: oneSession})
	c := clients(t)["h2c"]
	burst := func(n int) {
		var wg sync.WaitGroup
		for i := range n {
			goGet(t, &wg, c, s.base, "GET", fmt.Sprintf("/k%d", i))
		}
		wg.Wait()
	}
	burst(50)
	before := s.g.Stats()
	s.g.pool.mu.Lock()
	learned := s.g.pool.keepMax
	s.g.pool.mu.Unlock()
	if learned != 5 {
		t.Fatalf("learned %d answers a connection; want 5", learned)
	}
	for range 4 {
		burst(50)
	}
	st := s.g.Stats()
	if st.Retries != before.Retries || st.Pipelined == before.Pipelined {
		t.Errorf("after learning: %d requests sent again, %d pipelined; want none sent again, some pipelined", st.Retries-before.Retries, st.Pipelined-before.Pipelined)
	}
	checkIdle(t, s.g)
}

// The backend dies with requests queued on a kept-alive connection: they
// go again on a new connection.
func TestPipelineBackendDies(t *testing.T) {
	var conns atomic.Int64
	addr := serveLoopback(t, func(c net.Conn) {
		defer c.Close()
		first := conns.Add(1) == 1
		br := bufio.NewReader(c)
		for n := 0; ; n++ {
			if first && n > 0 {
				// After the first answer, read the heads, answer none,
				// and die once no more come.
				c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			}
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if first && n > 0 {
				continue
			}
			body := r.URL.Path
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		}
	})
	s := startStack(t, "http://"+addr, Config{PipelineDepth: 4, MaxConnsPerSession: 1})
	c := clients(t)["h2c"]
	if err := getChecked(context.Background(), c, s.base, "GET", "/x"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 5 {
		goGet(t, &wg, c, s.base, "GET", fmt.Sprintf("/x%d", i)) // the backend answers with the path
	}
	wg.Wait()
	if st := s.g.Stats(); st.Retries < 2 || st.Pipelined == 0 {
		t.Errorf("%+v; want requests pipelined on the first connection and sent again", st)
	}
	checkIdle(t, s.g)
}

// A client gives up on a request queued behind a slow answer: the slow
// answer, another stream's, arrives whole; the dropped request's answer
// is read and thrown away, and the connection serves on.
func TestPipelineClientGivesUp(t *testing.T) {
	for _, tc := range []struct {
		name  string
		n     int   // the dropped answer: n times "/dropped", 8 bytes
		conns int64 // connections to the backend in all
	}{
		{"answer read and dropped", 100, 1},
		{"answer over ResponseBuffer, connection closed", 3000, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newPipeBackend(t)
			// The gateway sees the reset when the dropped request's
			// exchange fails: only then may the answers come.
			dropped := make(chan struct{})
			observe := func(r *http.Request, _ time.Duration, err error) {
				if err != nil && r.URL.Path == "/dropped" {
					close(dropped)
				}
			}
			s := startStack(t, b.addr, Config{PipelineDepth: 4, MaxConnsPerSession: 1, ResponseBuffer: 4 << 10, Observe: observe})
			c := clients(t)["h2c"]
			release := b.hold()
			defer release()
			slow := make(chan error, 1)
			go func() { slow <- getChecked(context.Background(), c, s.base, "GET", "/slow?n=20000") }()
			for b.heads.Load() < 1 {
				time.Sleep(time.Millisecond)
			}
			ctx, cancel := context.WithCancel(context.Background())
			gaveUp := make(chan error, 1)
			go func() { gaveUp <- getChecked(ctx, c, s.base, "GET", fmt.Sprintf("/dropped?n=%d", tc.n)) }()
			for b.heads.Load() < 2 {
				time.Sleep(time.Millisecond)
			}
			cancel()
			if err := <-gaveUp; err == nil {
				t.Error("the request given up on succeeded")
			}
			<-dropped
			release()
			if err := <-slow; err != nil {
				t.Errorf("the answer ahead of the dropped one: %v", err)
			}
			for i := range 5 {
				if err := getChecked(context.Background(), c, s.base, "GET", fmt.Sprintf("/after%d?n=%d", i, 10*i)); err != nil {
					t.Error(err)
				}
			}
			if n := b.conns.Load(); n != tc.conns {
				t.Errorf("%d backend connections; want %d", n, tc.conns)
			}
			checkIdle(t, s.g)
		})
	}
}

// Clients give up on a third of 300 requests at random moments, queued or
// answered or in between: every other request gets its own answer whole,
// and the gateway ends with no connection busy and no request waiting.
func TestPipelineClientsGiveUpAtRandom(t *testing.T) {
	b := newPipeBackend(t)
	s := startStack(t, b.addr, Config{PipelineDepth: 8, MaxConnsPerSession: 2, ResponseBuffer: 4 << 10, Session: oneSession})
	// The client shares a dial between the requests that wait for it; it
	// dials without their contexts, so that a request given up on does
	// not fail the others with it.
	tr := &http2.Transport{
		AllowHTTP:                  true,
		StrictMaxConcurrentStreams: true,
		DialTLSContext: func(_ context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return net.Dial(network, addr)
		},
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	request := func(i int) {
		path := fmt.Sprintf("/r%d?n=%d", i, 1+(i*331)%2000)
		if i%3 == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%7)*time.Millisecond)
			defer cancel()
			getChecked(ctx, c, s.base, "GET", path)
			return
		}
		if err := getChecked(context.Background(), c, s.base, "GET", path); err != nil {
			t.Error(err)
		}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 90 {
		wg.Go(func() {
			for i := int(next.Add(1)); i <= 300; i = int(next.Add(1)) {
				request(i)
			}
		})
	}
	wg.Wait()
	if st := s.g.Stats(); st.Pipelined == 0 {
		t.Errorf("no request pipelined: %+v", st)
	}
	checkIdle(t, s.g)
}

// Apache httpd takes pipelined requests: small files and the 16 MiB one
// from one session, many at once, each whole.
func TestPipelineApache(t *testing.T) {
	a := apachetest.Start(t)
	g := newGateway(t, a.URL(), Config{PipelineDepth: 8, MaxConnsPerSession: 2, Session: oneSession, Logger: discard()})
	front := httptest.NewServer(g)
	defer front.Close()
	client := front.Client()
	var wg sync.WaitGroup
	for i := range 300 {
		wg.Go(func() {
			if i%100 == 50 {
				resp, err := client.Get(front.URL + apachetest.BigPath)
				if err != nil {
					t.Error(err)
					return
				}
				h := sha256.New()
				n, err := io.Copy(h, resp.Body)
				resp.Body.Close()
				if err != nil || n != apachetest.BigSize || [32]byte(h.Sum(nil)) != patternSHA(apachetest.BigSize) {
					t.Errorf("16 MiB file: %d bytes, %v", n, err)
				}
				return
			}
			method := "GET"
			if i%5 == 0 {
				method = "HEAD"
			}
			i %= apachetest.SmallFiles
			req, _ := http.NewRequest(method, front.URL+apachetest.SmallPath(i), nil)
			resp, err := client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := apachetest.SmallBody(i)
			if method == "HEAD" {
				if resp.StatusCode != 200 || resp.ContentLength != int64(len(want)) {
					t.Errorf("HEAD %s: %d, length %d", apachetest.SmallPath(i), resp.StatusCode, resp.ContentLength)
				}
				return
			}
			if resp.StatusCode != 200 || string(b) != want {
				t.Errorf("%s: %d %q; want %q", apachetest.SmallPath(i), resp.StatusCode, b, want)
			}
		})
	}
	wg.Wait()
	st := g.Stats()
	if st.Pipelined == 0 {
		t.Errorf("no request pipelined: %+v", st)
	}
	t.Logf("%+v", st)
}

// A request that would wait for a connection does not queue behind an
// answer expected to be slow when a place behind quick answers is about
// to open: with one connection held by a slow answer and the other by a
// quick one with another queued behind it (the session may hold two, a
// depth of one), a third request for the quick path waits, takes the
// place that opens behind the quick answers, and is answered while the
// slow answer is still being made.
func TestPipelineWaitsRatherThanBehindASlowAnswer(t *testing.T) {
	b := newPipeBackend(t)
	s := startStack(t, b.addr, Config{PipelineDepth: 1, PipelineWait: 50 * time.Millisecond, MaxConnsPerSession: 2, Session: oneSession})
	c := clients(t)["h2c"]
	learnPaths(t, c, s.base, "/quick", "/slow?ms=400")
	b.heads.Store(0)
	release := b.hold()
	defer release()
	var wg sync.WaitGroup
	var slowDone, quickDone atomic.Int64
	get := func(path string, done *atomic.Int64) {
		wg.Go(func() {
			if err := getChecked(context.Background(), c, s.base, "GET", path); err != nil {
				t.Error(err)
			}
			if done != nil {
				done.Store(time.Now().UnixNano())
			}
		})
	}
	get("/slow?ms=400", &slowDone)
	b.waitHeads(t, 1)
	for i := range 2 {
		get("/quick", nil)
		b.waitHeads(t, int64(i+2))
	}
	get("/quick", &quickDone)
	deadline := time.Now().Add(5 * time.Second)
	for s.g.Stats().Waiting != 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if st := s.g.Stats(); st.Busy != 2 || st.Pipelined != 1 || st.Waiting != 1 {
		t.Errorf("a slow answer on one connection, a quick one and one queued on the other, one more quick request: %+v; want 2 busy, 1 pipelined, 1 waiting", st)
	}
	release()
	wg.Wait()
	// The slow answer comes 400 ms after the release, the quick one at
	// once; behind the slow answer, it would come right after it.
	if q, sl := quickDone.Load(), slowDone.Load(); q > sl-int64(100*time.Millisecond) {
		t.Errorf("the last quick request was answered %v before the slow one; want well before", time.Duration(sl-q))
	}
	if st := s.g.Stats(); st.Pipelined != 2 {
		t.Errorf("%+v; want 2 pipelined", st)
	}
	checkIdle(t, s.g)
}
