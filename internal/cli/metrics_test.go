package cli

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// scrape fetches /metrics and returns its samples: each line's series
// ("name{label="value",...}", labels sorted as Prometheus writes them)
// mapped to its value.
func scrape(t *testing.T, addr net.Addr) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample %q", line)
		}
		samples[line[:i]] = v
	}
	return samples
}

// series names a sample: name and label pairs, in Prometheus's order
// (sorted by label name).
func series(name string, labels ...string) string {
	if len(labels) == 0 {
		return name
	}
	var b strings.Builder
	b.WriteString(name + "{")
	for i := 0; i < len(labels); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(labels[i] + `="` + labels[i+1] + `"`)
	}
	b.WriteString("}")
	return b.String()
}

// countingConn for the test's own client: the bytes it reads and writes.
type countedClientConn struct {
	net.Conn
	in, out *atomic.Int64
}

func (c *countedClientConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.Add(int64(n))
	return n, err
}

func (c *countedClientConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.Add(int64(n))
	return n, err
}

// rawH2C opens a cleartext HTTP/2 connection, sends the preface and
// SETTINGS, then what more writes, and reads until the server closes it.
func rawH2C(t *testing.T, addr net.Addr, more func(fr *http2.Framer)) {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, c)
	fr.WriteSettings()
	more(fr)
	io.Copy(io.Discard, c)
}

// TestMetrics sends known traffic and checks the scraped figures against
// it.
func TestMetrics(t *testing.T) {
	s := startServe(t, "-listen", "127.0.0.1:0", "-listen-plain", "127.0.0.1:0", "-metrics", "127.0.0.1:0", "-workers", "8",
		"-log-level", "error")
	plainURL := "http://" + s.addrs.plain.String()
	tlsURL := "https://" + s.addrs.tls.String()

	// SPDY/3.1 over cleartext: three requests in one session.
	if code, _, stderr := runCmd(t, "get", plainURL+"/hello", plainURL+"/hello", plainURL+"/status/404"); code != 0 {
		t.Fatalf("get: exit %d, %s", code, stderr)
	}
	// h2c: two requests in one session.
	if code, _, stderr := runCmd(t, "get", "-proto", "h2", plainURL+"/hello", plainURL+"/status/503"); code != 0 {
		t.Fatalf("get -proto h2: exit %d, %s", code, stderr)
	}
	// HTTP/1.1: one request.
	if code, _ := get(t, http.DefaultClient, plainURL+"/status/500"); code != 500 {
		t.Fatalf("HTTP/1.1: %d", code)
	}
	// h2 over TLS, its bytes counted on the client's TCP connection.
	var in, out atomic.Int64
	h2c := &http2.Transport{
		DialTLSContext: func(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
			raw, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			cfg = cfg.Clone()
			cfg.InsecureSkipVerify = true
			tc := tls.Client(&countedClientConn{Conn: raw, in: &in, out: &out}, cfg)
			return tc, tc.HandshakeContext(ctx)
		},
	}
	for range 4 {
		if code, body := get(t, &http.Client{Transport: h2c}, tlsURL+"/bytes/20000"); code != 200 || len(body) != 20000 {
			t.Fatalf("h2 /bytes/20000: %d, %d bytes", code, len(body))
		}
	}
	// At rest, every byte either side wrote the other has read: the
	// server's counts are the client's.
	for deadline := time.Now().Add(5 * time.Second); ; {
		m := scrape(t, s.addrs.metrics)
		sent, recv := m[series("spdymux_sent_bytes_total", "listener", "tls")], m[series("spdymux_received_bytes_total", "listener", "tls")]
		if sent == float64(in.Load()) && recv == float64(out.Load()) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("TLS listener: %v bytes sent, %v received; the client read %d and wrote %d", sent, recv, in.Load(), out.Load())
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if in.Load() < 4*20000 {
		t.Errorf("the client read %d bytes; want at least the bodies", in.Load())
	}
	h2c.CloseIdleConnections()
	// A raw h2c client that resets an idle stream (a connection error:
	// GOAWAY PROTOCOL_ERROR), and one whose SETTINGS are over the limit.
	rawH2C(t, s.addrs.plain, func(fr *http2.Framer) { fr.WriteRSTStream(1, http2.ErrCodeCancel) })
	rawH2C(t, s.addrs.plain, func(fr *http2.Framer) {
		sets := make([]http2.Setting, 40)
		for i := range sets {
			sets[i] = http2.Setting{ID: http2.SettingEnablePush, Val: 0}
		}
		fr.WriteSettings(sets...)
	})
	// A connection that speaks nothing the listener knows.
	if c, err := net.Dial("tcp", s.addrs.plain.String()); err == nil {
		c.Write([]byte{0x01, 0x02, 0x03})
		io.Copy(io.Discard, c)
		c.Close()
	}

	// The sessions end when their clients go; then every byte has been
	// counted on both sides.
	var m map[string]float64
	deadline := time.Now().Add(10 * time.Second)
	for {
		m = scrape(t, s.addrs.metrics)
		open := 0.0
		for _, p := range []string{"h2", "h2c", "spdy/3.1"} {
			open += m[series("spdymux_sessions_open", "protocol", p)]
		}
		if open == 0 && m[series("spdymux_streams_active", "protocol", "h2")] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sessions still open: %v", open)
		}
		time.Sleep(20 * time.Millisecond)
	}

	for _, w := range []struct {
		series string
		want   float64
	}{
		{series("spdymux_sessions_total", "protocol", "spdy/3.1"), 1},
		{series("spdymux_sessions_total", "protocol", "h2c"), 3},
		{series("spdymux_sessions_total", "protocol", "h2"), 1},
		{series("spdymux_sessions_total", "protocol", "spdy/2"), 0},
		{series("spdymux_streams_total", "protocol", "spdy/3.1", "status_class", "2xx"), 2},
		{series("spdymux_streams_total", "protocol", "spdy/3.1", "status_class", "4xx"), 1},
		{series("spdymux_streams_total", "protocol", "h2c", "status_class", "2xx"), 1},
		{series("spdymux_streams_total", "protocol", "h2c", "status_class", "5xx"), 1},
		{series("spdymux_streams_total", "protocol", "h2", "status_class", "2xx"), 4},
		{series("spdymux_streams_total", "protocol", "http/1.1", "status_class", "5xx"), 1},
		{series("spdymux_stream_duration_seconds_count", "protocol", "spdy/3.1"), 3},
		{series("spdymux_stream_duration_seconds_count", "protocol", "h2"), 4},
		{series("spdymux_streams_active", "protocol", "spdy/3.1"), 0},
		{series("spdymux_frames_total", "direction", "received", "protocol", "spdy/3.1", "type", "SYN_STREAM"), 3},
		{series("spdymux_frames_total", "direction", "sent", "protocol", "spdy/3.1", "type", "SYN_REPLY"), 3},
		{series("spdymux_frames_total", "direction", "received", "protocol", "h2", "type", "HEADERS"), 4},
		{series("spdymux_frames_total", "direction", "received", "protocol", "h2c", "type", "RST_STREAM"), 1},
		{series("spdymux_rst_streams_total", "code", "CANCEL", "direction", "received", "protocol", "h2c"), 1},
		{series("spdymux_goaways_total", "code", "PROTOCOL_ERROR", "direction", "sent", "protocol", "h2c"), 1},
		{series("spdymux_goaways_total", "code", "ENHANCE_YOUR_CALM", "direction", "sent", "protocol", "h2c"), 1},
		{series("spdymux_limit_hits_total", "limit", "MaxSettingsEntries"), 1},
		{series("spdymux_limit_hits_total", "limit", "MaxConcurrentStreams"), 0},
		{series("spdymux_handshake_errors_total", "listener", "plain"), 1},
		{series("spdymux_connections_total", "listener", "tls"), 1},
		{series("spdymux_worker_slots"), 8},
		{series("spdymux_worker_slots_busy"), 0},
		{series("spdymux_worker_queue_length"), 0},
		{series("spdymux_draining"), 0},
	} {
		got, ok := m[w.series]
		if !ok || got != w.want {
			t.Errorf("%s = %v (present %v); want %v", w.series, got, ok, w.want)
		}
	}
	if m[series("spdymux_build_info", "version", "devel")] != 1 {
		t.Errorf("no spdymux_build_info{version=\"devel\"} 1")
	}
	if _, ok := m["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}

	// /debug/pprof/ and /healthz on the same address.
	base := "http://" + s.addrs.metrics.String()
	if code, body := get(t, http.DefaultClient, base+"/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/: %d", code)
	}
	if code, body := get(t, http.DefaultClient, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}

	// While draining, /healthz is 503 and spdymux_draining 1; the
	// request in flight finishes.
	slow := make(chan int, 1)
	go func() {
		resp, err := http.Get(plainURL + "/slow?ms=1500")
		if err != nil {
			slow <- 0
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	time.Sleep(200 * time.Millisecond)
	go s.stop()
	deadline = time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			t.Fatalf("/healthz while draining: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 503 {
			if string(body) != "draining\n" {
				t.Errorf("/healthz while draining: %q", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz stayed %d after the signal", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if m := scrape(t, s.addrs.metrics); m["spdymux_draining"] != 1 {
		t.Errorf("spdymux_draining = %v while draining; want 1", m["spdymux_draining"])
	}
	if code := <-slow; code != 200 {
		t.Errorf("request in flight at the signal: %d; want 200", code)
	}
}

// TestMetricsGateway checks the backend metrics and the access log's
// backend time.
func TestMetricsGateway(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(10 * time.Millisecond)
		io.WriteString(w, "from the backend\n")
	}))
	s := startServe(t, "-listen", "", "-listen-plain", "127.0.0.1:0", "-metrics", "127.0.0.1:0", "-backend", backend.URL,
		"-access-log", "-", "-log-level", "error")
	plainURL := "http://" + s.addrs.plain.String()
	if code, _, stderr := runCmd(t, "get", plainURL+"/a", plainURL+"/b", plainURL+"/c"); code != 0 {
		t.Fatalf("get: exit %d, %s", code, stderr)
	}
	m := scrape(t, s.addrs.metrics)
	for _, w := range []struct {
		series string
		want   float64
	}{
		{series("spdymux_backend_response_header_seconds_count"), 3},
		{series("spdymux_backend_response_header_seconds_bucket", "le", "0.005"), 0},
		{series("spdymux_backend_errors_total", "kind", "connect"), 0},
		{series("spdymux_backend_connections", "state", "busy"), 0},
		{series("spdymux_backend_retries_total"), 0},
		{series("spdymux_backend_pipelined_total"), 0},
	} {
		if got, ok := m[w.series]; !ok || got != w.want {
			t.Errorf("%s = %v (present %v); want %v", w.series, got, ok, w.want)
		}
	}
	if idle := m[series("spdymux_backend_connections", "state", "idle")]; idle < 1 || idle > 3 {
		t.Errorf("idle backend connections %v; want 1 to 3", idle)
	}
	if sum := m["spdymux_backend_response_header_seconds_sum"]; sum < 0.030 {
		t.Errorf("backend latency sum %v; want at least 3 × 10ms", sum)
	}

	backend.Close()
	if code, _, _ := runCmd(t, "get", "-f", plainURL+"/down"); code != exitHTTP {
		t.Errorf("backend down: exit %d; want 22 (a 502)", code)
	}
	m = scrape(t, s.addrs.metrics)
	if got := m[series("spdymux_backend_errors_total", "kind", "connect")]; got != 1 {
		t.Errorf("backend errors of kind connect: %v; want 1", got)
	}
	if got := m[series("spdymux_streams_total", "protocol", "spdy/3.1", "status_class", "5xx")]; got != 1 {
		t.Errorf("5xx streams: %v; want 1", got)
	}

	// The access log tells the backend's time, and "-" where it sent no
	// header.
	log := s.stdout.String()
	var backed, down int
	for line := range strings.Lines(log) {
		switch {
		case strings.Contains(line, `"GET /down SPDY/3.1" 502 `) && strings.HasSuffix(line, " backend_ms=-\n"):
			down++
		case strings.Contains(line, " 200 17 ") && strings.Contains(line, " backend_ms=") && !strings.Contains(line, "backend_ms=-"):
			ms, _ := strconv.ParseFloat(strings.TrimSpace(line[strings.LastIndex(line, "=")+1:]), 64)
			if ms >= 10 {
				backed++
			}
		}
	}
	if backed != 3 || down != 1 {
		t.Errorf("access log: %d lines with a backend time of 10ms or more, %d with none; want 3 and 1:\n%s", backed, down, log)
	}
}

// With -shutdown-delay, /healthz is 503 while the server still takes new
// connections, then it drains as without.
func TestShutdownDelay(t *testing.T) {
	s := startServe(t, "-listen", "", "-listen-plain", "127.0.0.1:0", "-metrics", "127.0.0.1:0", "-shutdown-delay", "1s",
		"-log-level", "error")
	base := "http://" + s.addrs.metrics.String()
	begin := time.Now()
	go s.stop()
	for {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 503 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Unhealthy, yet serving new clients.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if code, body := get(t, c, "http://"+s.addrs.plain.String()+"/hello"); code != 200 || body != "hello, world\n" {
		t.Errorf("during -shutdown-delay: %d %q; want the request served", code, body)
	}
	if code := <-s.exit; code != 0 {
		t.Errorf("exit %d; want 0", code)
	}
	s.exit <- 0
	if d := time.Since(begin); d < time.Second {
		t.Errorf("stopped %v after the signal; want -shutdown-delay 1s first", d)
	}
}

// TestServeBackendPipeline runs the gateway with -backend-pipeline: with
// 16 requests in flight on one session and at most two backend
// connections for it, requests queue on those connections, and every
// one is answered.
func TestServeBackendPipeline(t *testing.T) {
	var conns atomic.Int32
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Millisecond)
		io.WriteString(w, "hello, world\n")
	}))
	backend.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	backend.Start()
	defer backend.Close()
	s := startServe(t, "-listen", "", "-listen-plain", "127.0.0.1:0", "-metrics", "127.0.0.1:0", "-backend", backend.URL,
		"-backend-pipeline", "8", "-backend-max-conns", "16", "-log-level", "error")
	plainURL := "http://" + s.addrs.plain.String()
	code, stdout, stderr := runCmd(t, "bench", "-n", "400", "-m", "16", "-progress", "0", "-warmup", "0", plainURL+"/hello")
	if code != 0 {
		t.Fatalf("bench: exit %d\n%s\n%s", code, stdout, stderr)
	}
	m := scrape(t, s.addrs.metrics)
	if n := m[series("spdymux_backend_pipelined_total")]; n < 1 {
		t.Errorf("spdymux_backend_pipelined_total = %v; want requests pipelined", n)
	}
	if n := m[series("spdymux_backend_errors_total", "kind", "broken")]; n != 0 {
		t.Errorf("%v broken backend exchanges", n)
	}
	// Two per session (-backend-max-conns 16 / 8); bench's first
	// connection, which tells the protocol, may be a session of its own.
	if n := conns.Load(); n > 4 {
		t.Errorf("%d backend connections; want at most 4", n)
	}
	if !strings.Contains(stdout, "400") {
		t.Errorf("bench output does not count 400 requests:\n%s", stdout)
	}
}

// TestServeBackendPipelineWait runs the gateway with -backend-pipeline and
// -backend-pipeline-wait: with connections to spare, requests for a path
// the backend answers at once queue behind one another, fewer backend
// connections serve them, and every one is answered.
func TestServeBackendPipelineWait(t *testing.T) {
	var conns atomic.Int32
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello, world\n")
	}))
	backend.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	backend.Start()
	defer backend.Close()
	s := startServe(t, "-listen", "", "-listen-plain", "127.0.0.1:0", "-metrics", "127.0.0.1:0", "-backend", backend.URL,
		"-backend-pipeline", "32", "-backend-pipeline-wait", "500ms", "-log-level", "error")
	plainURL := "http://" + s.addrs.plain.String()
	code, stdout, stderr := runCmd(t, "bench", "-n", "2000", "-m", "16", "-progress", "0", "-warmup", "0", plainURL+"/hello")
	if code != 0 {
		t.Fatalf("bench: exit %d\n%s\n%s", code, stdout, stderr)
	}
	m := scrape(t, s.addrs.metrics)
	joined, piped := m[series("spdymux_backend_pipeline_joined_total")], m[series("spdymux_backend_pipelined_total")]
	if joined < 1 || joined > piped {
		t.Errorf("spdymux_backend_pipeline_joined_total = %v, spdymux_backend_pipelined_total = %v; want some joined, at most all pipelined", joined, piped)
	}
	if n := m[series("spdymux_backend_errors_total", "kind", "broken")]; n != 0 {
		t.Errorf("%v broken backend exchanges", n)
	}
	// 16 in flight would take 16 connections without pipelining; the
	// session may hold 32.
	if n := conns.Load(); n >= 16 {
		t.Errorf("%d backend connections for 16 requests in flight; want fewer", n)
	}
	if !strings.Contains(stdout, "2000") {
		t.Errorf("bench output does not count 2000 requests:\n%s", stdout)
	}
	t.Logf("%v of 2000 requests joined, %d backend connections", joined, conns.Load())
}
