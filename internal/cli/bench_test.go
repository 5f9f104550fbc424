package cli

import (
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

func benchJSON(t *testing.T, args ...string) (int, benchReport, string) {
	t.Helper()
	code, stdout, stderr := runCmd(t, append([]string{"bench", "-json", "-progress", "0"}, args...)...)
	var r benchReport
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("%q: stdout is not a report: %v\n%s\nstderr: %s", args, err, stdout, stderr)
	}
	return code, r, stderr
}

func TestBenchConnections(t *testing.T) {
	s := startSPDYServer(t)
	for _, tc := range []struct {
		name        string
		args        []string
		url         string
		conns       int64
		wantStreams int
		wantProto   string
	}{
		{"spdy/3.1 tls", []string{"-k", "-c", "3", "-m", "5", "-n", "300"}, s.tlsURL, 3, 5, "spdy/3.1"},
		{"spdy/2 plain", []string{"-proto", "spdy/2", "-c", "2", "-m", "20", "-n", "300"}, s.plainURL, 2, 20, "spdy/2"},
		{"h2 tls", []string{"-proto", "h2", "-k", "-c", "3", "-m", "5", "-n", "300"}, s.tlsURL, 3, 5, "h2"},
		{"h2c", []string{"-proto", "h2", "-c", "2", "-m", "20", "-n", "300"}, s.plainURL, 2, 20, "h2c"},
		{"h2c by name", []string{"-proto", "h2c", "-c", "1", "-m", "7", "-n", "300"}, s.plainURL, 1, 7, "h2c"},
		{"http/1.1", []string{"-proto", "http/1.1", "-c", "3", "-m", "50", "-n", "300"}, s.plainURL, 3, 1, "http/1.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := s.plain
			if strings.HasPrefix(tc.url, "https") {
				l = s.tls
			}
			before := l.Stats()
			code, r, stderr := benchJSON(t, append(tc.args, tc.url+"/hello")...)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q; want 0 and nothing", code, stderr)
			}
			after := l.Stats()
			conns := tc.conns
			// Each connection is its own TCP connection and, for SPDY, its
			// own session.
			if r.Connections != conns || int64(after.Conns-before.Conns) != conns {
				t.Errorf("connections: report %d, server %d; want %d", r.Connections, after.Conns-before.Conns, conns)
			}
			wantSessions := uint64(conns)
			if tc.name == "http/1.1" {
				wantSessions = 0
			}
			if got := after.Sessions - before.Sessions; got != wantSessions {
				t.Errorf("sessions at the server: got %d; want %d", got, wantSessions)
			}
			if r.Requests != 300 || r.Succeeded != 300 || r.Failed != 0 || r.Status["2xx"] != 300 {
				t.Errorf("requests %d, succeeded %d, failed %d, 2xx %d; want 300, 300, 0, 300", r.Requests, r.Succeeded, r.Failed, r.Status["2xx"])
			}
			if r.StreamsPerConnection != tc.wantStreams {
				t.Errorf("streams per connection: got %d; want %d", r.StreamsPerConnection, tc.wantStreams)
			}
			if r.BodyBytes != 300*13 || r.WireBytesIn <= r.BodyBytes || r.WireBytesOut == 0 {
				t.Errorf("bytes: body %d, wire in %d, out %d; want 3900 and more on the wire", r.BodyBytes, r.WireBytesIn, r.WireBytesOut)
			}
			l8 := r.LatencyMs
			if !(0 < l8.Min && l8.Min <= l8.P50 && l8.P50 <= l8.P90 && l8.P90 <= l8.P99 && l8.P99 <= l8.Max && l8.Min <= l8.Mean && l8.Mean <= l8.Max) {
				t.Errorf("latency out of order: %+v", l8)
			}
			if r.ReqPerS <= 0 || r.DurationS <= 0 || r.LatencyMethod == "" {
				t.Errorf("report incomplete: %+v", r)
			}
			if r.Proto != tc.wantProto {
				t.Errorf("proto %q; want %q", r.Proto, tc.wantProto)
			}
		})
	}
}

// TestBenchStreamsInFlight checks that bench keeps -m streams in flight on
// each of its -c connections, over HTTP/2 as over SPDY: the server sees
// c*m requests at once, at most m on one session.
func TestBenchStreamsInFlight(t *testing.T) {
	s := startSPDYServer(t)
	for _, tc := range []struct {
		proto, url string
	}{
		{"h2", s.tlsURL},
		{"h2", s.plainURL},
		{"spdy/3.1", s.tlsURL},
	} {
		t.Run(tc.proto+" "+tc.url[:strings.Index(tc.url, ":")], func(t *testing.T) {
			s.inFlight.reset()
			code, r, stderr := benchJSON(t, "-proto", tc.proto, "-k", "-c", "3", "-m", "8", "-n", "240", tc.url+"/wait")
			if code != 0 || r.Succeeded != 240 {
				t.Fatalf("exit %d, %d succeeded; want 0 and 240 (stderr %q)", code, r.Succeeded, stderr)
			}
			all, perSession := s.inFlight.peaks()
			if all != 24 || perSession != 8 {
				t.Errorf("peak streams in flight: %d at the server, %d on one session; want 24 and 8", all, perSession)
			}
		})
	}
}

func TestBenchErrorsAndText(t *testing.T) {
	s := startSPDYServer(t)
	// Every response is a 503: no request succeeds.
	code, r, stderr := benchJSON(t, "-n", "50", "-m", "10", s.plainURL+"/fail")
	if code != 1 || r.Errors["status_5xx"] != 50 || r.Failed != 50 || r.Status["5xx"] != 50 {
		t.Errorf("503s: exit %d, errors %v, failed %d; want 1, 50 status_5xx", code, r.Errors, r.Failed)
	}
	if stderr != "spdymux bench: no request succeeded\n" {
		t.Errorf("503s: stderr %q", stderr)
	}

	// Text report and progress lines, by duration.
	code, stdout, stderr := runCmd(t, "bench", "-D", "300ms", "-progress", "100ms", "-warmup", "50ms", "-m", "4", s.plainURL+"/hello")
	if code != 0 {
		t.Fatalf("-D: exit %d, stderr %q", code, stderr)
	}
	for _, w := range []string{"spdymux bench " + s.plainURL + "/hello: spdy/3.1, 1 connections, 4 streams each\n",
		"\nreq/s:", "\nbody:", "\nwire:", "\nlatency:   min ", " p50 ", " p99 ", "\nstatus:    2xx ", "\nerrors:    status>=500 0, reset 0, connect 0, timeout 0, other 0\n"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("text report lacks %q:\n%s", w, stdout)
		}
	}
	if n := strings.Count(stderr, "progress: "); n < 1 || !strings.Contains(stderr, "req/s so far") ||
		!strings.HasPrefix(stderr, "connecting: 1 connections to "+s.plainURL+"/hello (spdy/3.1)\n") {
		t.Errorf("progress: %d lines: %q", n, stderr)
	}

	// Nobody listening: one line, that says so once.
	code, _, stderr = runCmd(t, "bench", "-progress", "0", "-c", "3", "http://127.0.0.1:1/")
	if code != 1 || stderr != "spdymux bench: connecting: 3 of 3 connections failed: spdymux: dial tcp 127.0.0.1:1: connect: connection refused\n" {
		t.Errorf("refused: exit %d, stderr %q", code, stderr)
	}
}

// A request body with -d, as get's; -X sets the method.
func TestBenchBody(t *testing.T) {
	s := startSPDYServer(t)
	for _, proto := range []string{"spdy/3.1", "h2", "http/1.1"} {
		code, r, stderr := benchJSON(t, "-proto", proto, "-n", "20", "-m", "5", "-d", "abc", s.plainURL+"/echo")
		if code != 0 || r.Succeeded != 20 || r.BodyBytes != 20*int64(len("POST  abc")) {
			t.Errorf("%s -d abc: exit %d, %d succeeded, %d body bytes; want 20 echoes of \"POST  abc\" (stderr %q)", proto, code, r.Succeeded, r.BodyBytes, stderr)
		}
	}
	code, r, _ := benchJSON(t, "-n", "10", "-X", "PUT", "-d", "abcd", s.plainURL+"/echo")
	if code != 0 || r.BodyBytes != 10*int64(len("PUT  abcd")) {
		t.Errorf("-X PUT -d abcd: exit %d, %d body bytes; want 10 echoes of \"PUT  abcd\"", code, r.BodyBytes)
	}
}

// get and bench against a server that speaks HTTP/1.x alone say so in one
// line, at once.
func TestHTTP1OnlyServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<!DOCTYPE html>\n")
	}))
	defer srv.Close()
	tlsSrv := httptest.NewTLSServer(srv.Config.Handler)
	defer tlsSrv.Close()
	// net/http's server answers the SPDY client's binary frames with 400,
	// or waits for the end of a request line: either way the client says
	// it speaks no SPDY there.
	spdyAnswer := "it speaks no SPDY on this port"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "-connect-timeout", "1s", srv.URL + "/"}, spdyAnswer},
		{[]string{"get", "-proto", "h2", srv.URL + "/"}, `the server answered in HTTP/1.x ("HTTP/1.1 `},
		{[]string{"get", "-proto", "h2", srv.URL + "/"}, "it speaks no HTTP/2 on this port"},
		{[]string{"get", "https" + strings.TrimPrefix(srv.URL, "http") + "/"}, "the server answered the TLS handshake in plain HTTP/1.x"},
		{[]string{"get", "-k", tlsSrv.URL + "/"}, "tls: no application protocol"},
		{[]string{"bench", "-connect-timeout", "1s", "-progress", "0", srv.URL + "/"}, spdyAnswer},
		{[]string{"bench", "-progress", "0", "-proto", "h2", "-c", "2", srv.URL + "/"}, "connecting: 2 of 2 connections failed: the server answered in HTTP/1.x"},
	} {
		start := time.Now()
		code, _, stderr := runCmd(t, tc.args...)
		lines := 1
		if tc.args[0] == "get" {
			lines = 2 // the request's line, and the count of failures
		}
		if code != 1 || strings.Count(stderr, "\n") != lines || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 1 and %q", tc.args, code, stderr, tc.want)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%q took %v; want a quick answer", tc.args, d)
		}
	}
	// bench -proto http/1.1 is what such a server speaks.
	if code, r, stderr := benchJSON(t, "-proto", "http/1.1", "-n", "10", srv.URL+"/"); code != 0 || r.Succeeded != 10 {
		t.Errorf("http/1.1 to an HTTP/1.1 server: exit %d, %+v, %q", code, r, stderr)
	}
}

func TestBenchUsageErrors(t *testing.T) {
	checkUsageErrors(t, "bench", []usageCase{
		{[]string{}, "no URL given"},
		{[]string{"http://x/", "http://y/"}, `unexpected argument "http://y/"`},
		{[]string{"-c", "0", "http://x/"}, "bad -c 0"},
		{[]string{"-m", "-1", "http://x/"}, "bad -m -1"},
		{[]string{"-n", "0", "http://x/"}, "bad -n 0"},
		{[]string{"-D", "-1s", "http://x/"}, "bad -D -1s"},
		{[]string{"-d", "10s", "http://x/"}, "-d 10s is a request body, as in get and h2load; the duration is -D 10s"},
		{[]string{"-X", "GE T", "http://x/"}, `bad -X "GE T"`},
		{[]string{"-connect-timeout", "-1s", "http://x/"}, "bad -connect-timeout"},
		{[]string{"-d", "@/no/such/file", "http://x/"}, "-d: stat /no/such/file"},
		{[]string{"-proto", "h3", "http://x/"}, `bad -proto "h3": want h2, h2c, spdy/3.1, spdy/3, spdy/2 or http/1.1`},
		{[]string{"-proto", "", "http://x/"}, `bad -proto ""`},
		{[]string{"-proto", "h2c", "https://x/"}, "-proto h2c is HTTP/2 over cleartext: want an http URL"},
		{[]string{"-n", "lots", "http://x/"}, `invalid value "lots" for flag -n`},
		{[]string{"localhost:8080"}, `bad URL "localhost:8080"`},
	})
	code, stdout, _ := runCmd(t, "bench", "-h")
	for _, w := range []string{"Usage: spdymux bench", "-json fields:", "wire_bytes_in", "latency_ms", "-warmup duration", "h2load", "h2c with prior knowledge"} {
		if code != 0 || !strings.Contains(stdout, w) {
			t.Errorf("bench -h: exit %d, stdout lacks %q", code, w)
		}
	}
}

func TestHistogram(t *testing.T) {
	// Buckets are contiguous and each value falls within 0.4% of its
	// bucket's middle.
	for _, v := range []int64{0, 1, 127, 128, 129, 255, 256, 1000, 12345, 1e6, 1e9, 3e11, math.MaxInt64 >> 2} {
		i := bucketOf(v)
		mid := bucketValue(i)
		if d := math.Abs(float64(mid-v)) / math.Max(float64(v), 1); d > 0.004 && v >= 128 {
			t.Errorf("value %d: bucket %d, middle %d, off by %.3f%%", v, i, mid, d*100)
		}
		if v < 128 && mid != v {
			t.Errorf("value %d: middle %d; want exact", v, mid)
		}
		if bucketOf(v+1) < i || bucketOf(v+1) > i+1 {
			t.Errorf("value %d: bucket %d, next value's %d; want contiguous", v, i, bucketOf(v+1))
		}
	}
	var h histogram
	h.min.Store(math.MaxInt64)
	samples := make([]int64, 100000)
	for i := range samples {
		samples[i] = 1000 + rand.Int64N(1e9)
		h.record(samples[i])
	}
	slices.Sort(samples)
	for _, q := range []float64{0.5, 0.9, 0.99} {
		want := samples[int(math.Ceil(q*float64(len(samples))))-1]
		got := h.quantile(q)
		if d := math.Abs(float64(got-want)) / float64(want); d > 0.01 {
			t.Errorf("quantile %.2f: got %d; want %d (within 1%%)", q, got, want)
		}
	}
	if h.quantile(0) != samples[0] && h.min.Load() != samples[0] || h.max.Load() != samples[len(samples)-1] {
		t.Errorf("min %d, max %d; want %d, %d", h.min.Load(), h.max.Load(), samples[0], samples[len(samples)-1])
	}
}
