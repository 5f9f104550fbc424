package cli

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
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
		wantStreams int
	}{
		{"spdy/3.1 tls", []string{"-k", "-c", "3", "-m", "5", "-n", "300"}, s.tlsURL, 5},
		{"spdy/2 plain", []string{"-proto", "spdy/2", "-c", "2", "-m", "20", "-n", "300"}, s.plainURL, 20},
		{"http/1.1", []string{"-proto", "http/1.1", "-c", "3", "-m", "50", "-n", "300"}, s.plainURL, 1},
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
			conns := int64(3)
			if tc.name == "spdy/2 plain" {
				conns = 2
			}
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
			if r.ReqPerS <= 0 || r.DurationS <= 0 || r.Proto == "" || r.LatencyMethod == "" {
				t.Errorf("report incomplete: %+v", r)
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
	code, stdout, stderr := runCmd(t, "bench", "-d", "300ms", "-progress", "100ms", "-warmup", "50ms", "-m", "4", s.plainURL+"/hello")
	if code != 0 {
		t.Fatalf("-d: exit %d, stderr %q", code, stderr)
	}
	for _, w := range []string{"spdymux bench " + s.plainURL + "/hello: spdy/3.1, 1 connections, 4 streams each\n",
		"\nreq/s:", "\nbody:", "\nwire:", "\nlatency:   min ", " p50 ", " p99 ", "\nstatus:    2xx ", "\nerrors:    status>=500 0, reset 0, connect 0, timeout 0, other 0\n"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("text report lacks %q:\n%s", w, stdout)
		}
	}
	if n := strings.Count(stderr, "progress: "); n < 1 || !strings.Contains(stderr, "req/s so far") {
		t.Errorf("progress: %d lines: %q", n, stderr)
	}

	// Nobody listening: connect errors.
	code, _, stderr = runCmd(t, "bench", "-n", "1", "http://127.0.0.1:1/")
	if code != 1 || !strings.Contains(stderr, "connection refused") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("refused: exit %d, stderr %q", code, stderr)
	}
}

func TestBenchUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"bench"}, "no URL given"},
		{[]string{"bench", "http://x/", "http://y/"}, `unexpected argument "http://y/"`},
		{[]string{"bench", "-c", "0", "http://x/"}, "bad -c 0"},
		{[]string{"bench", "-m", "-1", "http://x/"}, "bad -m -1"},
		{[]string{"bench", "-n", "0", "http://x/"}, "bad -n 0"},
		{[]string{"bench", "-d", "-1s", "http://x/"}, "bad -d -1s"},
		{[]string{"bench", "-proto", "h2", "http://x/"}, `bad -proto "h2"`},
		{[]string{"bench", "-n", "lots", "http://x/"}, `invalid value "lots" for flag -n`},
		{[]string{"bench", "localhost:8080"}, `bad URL "localhost:8080"`},
	} {
		code, stdout, stderr := runCmd(t, tc.args...)
		if code != 2 || stdout != "" {
			t.Errorf("%q: exit %d, stdout %q; want 2 and nothing", tc.args, code, stdout)
		}
		if n := strings.Count(stderr, "\n"); n != 1 || !strings.HasPrefix(stderr, "spdymux bench: ") || !strings.Contains(stderr, tc.wantErr) {
			t.Errorf("%q: stderr %q; want one line \"spdymux bench: ...%s...\"", tc.args, stderr, tc.wantErr)
		}
	}
	code, stdout, _ := runCmd(t, "bench", "-h")
	for _, w := range []string{"Usage: spdymux bench", "-json fields:", "wire_bytes_in", "latency_ms", "-warmup duration"} {
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
