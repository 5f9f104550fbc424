package cli

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/spdymux/spdymux"
)

// benchOptions are the flags of `spdymux bench`.
type benchOptions struct {
	clientFlags
	conns    int
	streams  int
	requests int
	duration time.Duration
	warmup   time.Duration
	json     bool
	timeout  time.Duration
	progress time.Duration
}

// benchProtos are the values of bench's -proto.
var benchProtos = []string{spdymux.ProtoH2, spdymux.ProtoH2C, spdymux.ProtoSPDY31, spdymux.ProtoSPDY3, spdymux.ProtoSPDY2, spdymux.ProtoHTTP11}

func (o *benchOptions) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("spdymux bench", flag.ContinueOnError)
	o.register(fs, spdymux.ProtoSPDY31, "`protocol`: h2 (HTTP/2: ALPN h2 on https, h2c with prior knowledge on http), h2c (http only), "+
		"spdy/3.1, spdy/3, spdy/2 (offered alone by ALPN on https, spoken on http) or http/1.1 (keep-alive HTTP/1.1 through net/http)")
	fs.IntVar(&o.conns, "c", 1, "`connections`: each is its own session over its own TCP connection")
	fs.IntVar(&o.streams, "m", 100, "`streams` in flight per connection (forced to 1 for http/1.1)")
	fs.IntVar(&o.requests, "n", 10000, "`requests` in all, unless -D is given")
	fs.DurationVar(&o.duration, "D", 0, "run for this `duration` instead of -n requests (as h2load -D)")
	fs.DurationVar(&o.warmup, "warmup", 0, "send load for this `duration` before measuring")
	fs.BoolVar(&o.json, "json", false, "print the report as one JSON object (fields in 'spdymux bench -h')")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "count a request as timed out after this `duration`; 0 for none")
	fs.DurationVar(&o.progress, "progress", time.Second, "print progress to stderr at this `interval`; 0 for none")
	return fs
}

const benchUsageHead = `Usage: spdymux bench [flags] URL

Sends requests (GET, or -X and -d as in get) to URL as fast as the server
answers them, with -c connections and -m streams in flight on each, in the
spirit of h2load (whose -d is a body too, and -D the duration). With
-proto h2 it speaks HTTP/2 through golang.org/x/net/http2's client, one
connection per -c (requests past the server's stream limit wait for a stream),
so that the figures can be checked against h2load -c C -m M on the same
server (h2load speaks h2c with prior knowledge on http URLs too). With -proto
http/1.1 it sends keep-alive HTTP/1.1 over -c connections, one request at a
time on each, as wrk does. Progress goes to stderr, the report to stdout.

Latency is recorded in a log-linear histogram (128 buckets per power of two
of nanoseconds: each percentile is within 0.4% of the true value, memory is
fixed); min, max and mean are exact. Wire bytes are counted on the TCP
connections, TLS records and frame headers included.

Requests that fail are counted by kind: status_5xx (a response with status
500 or more), reset (a stream reset or a connection broken during the
request), connect (dial or TLS handshake failed), timeout (-timeout passed)
and other. The exit status is 1 when no request succeeded, 2 for a bad
command line.

-json fields: url, proto (h2c for h2 on an http URL), connections (TCP connections dialed),
streams_per_connection, requests (completed, in the measured phase),
succeeded, failed, duration_s, req_per_s, body_bytes, body_bytes_per_s,
wire_bytes_in, wire_bytes_out, wire_bytes_per_s (in plus out),
latency_ms {min, mean, p50, p90, p99, max}, latency_method, status {2xx, 3xx,
4xx, 5xx}, errors {status_5xx, reset, connect, timeout, other}.

Flags:
`

func runBench(ctx context.Context, e *env, args []string) (int, error) {
	var o benchOptions
	fs := o.flags()
	if err := parseFlags(e, fs, args, benchUsageHead, ""); err != nil {
		return exitUsage, err
	}
	u, err := o.check(fs.Args())
	if err != nil {
		return exitUsage, err
	}
	body, err := o.body()
	if err != nil {
		return exitUsage, err
	}
	b := newBench(&o, u, body)
	defer b.close()
	if o.progress > 0 {
		fmt.Fprintf(e.stderr, "connecting: %d connections to %s (%s)\n", o.conns, u, wireProto(o.proto, u.Scheme))
	}
	if err := b.connect(ctx); err != nil {
		return exitFailure, err
	}
	if o.warmup > 0 {
		b.run(ctx, phase{until: time.Now().Add(o.warmup)}, newStats(), nil)
	}
	b.resetWire()
	st := newStats()
	ph := phase{until: time.Now().Add(o.duration)}
	if o.duration == 0 {
		ph = phase{n: int64(o.requests)}
	}
	var prog io.Writer
	if o.progress > 0 {
		prog = e.stderr
	}
	elapsed := b.run(ctx, ph, st, prog)
	r := b.report(st, elapsed)
	if o.json {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(r)
	} else {
		r.writeText(e.stdout)
	}
	if r.Succeeded == 0 {
		return exitFailure, errors.New("no request succeeded")
	}
	return exitOK, nil
}

func (o *benchOptions) check(args []string) (*url.URL, error) {
	switch {
	case len(args) == 0:
		return nil, errors.New("no URL given (run 'spdymux bench -h')")
	case len(args) > 1:
		return nil, fmt.Errorf("unexpected argument %q: bench takes one URL", args[1])
	case o.conns < 1:
		return nil, fmt.Errorf("bad -c %d: want 1 or more", o.conns)
	case o.streams < 1:
		return nil, fmt.Errorf("bad -m %d: want 1 or more", o.streams)
	case o.requests < 1 && o.duration == 0:
		return nil, fmt.Errorf("bad -n %d: want 1 or more", o.requests)
	case o.duration < 0:
		return nil, fmt.Errorf("bad -D %v", o.duration)
	case o.warmup < 0:
		return nil, fmt.Errorf("bad -warmup %v", o.warmup)
	case o.timeout < 0:
		return nil, fmt.Errorf("bad -timeout %v", o.timeout)
	case o.progress < 0:
		return nil, fmt.Errorf("bad -progress %v", o.progress)
	case looksLikeDuration(o.data):
		return nil, fmt.Errorf("-d %s is a request body, as in get and h2load; the duration is -D %s", o.data, o.data)
	}
	if err := o.checkShared(); err != nil {
		return nil, err
	}
	u, err := parseURL(args[0])
	if err != nil {
		return nil, err
	}
	if err := o.checkProto(benchProtos, u); err != nil {
		return nil, err
	}
	if o.proto == spdymux.ProtoHTTP11 {
		o.streams = 1
	}
	return u, nil
}

// bench is one run of `spdymux bench`: the clients, one per connection,
// and the wire counters.
type bench struct {
	o       *benchOptions
	url     *url.URL
	method  string
	body    *requestBody // nil for none
	sniff   sniffer
	header  http.Header
	clients []*http.Client // one per connection for SPDY and HTTP/2; one shared for HTTP/1.1
	closers []func()

	dials           atomic.Int64
	wireIn, wireOut atomic.Int64
}

func newBench(o *benchOptions, u *url.URL, body *requestBody) *bench {
	b := &bench{o: o, url: u, method: o.requestMethod(), body: body, header: o.headers.header()}
	b.sniff.want, b.sniff.silence = "SPDY", o.connectTimeout
	tlsConfig := o.tlsConfig()
	switch {
	case isH2(o.proto):
		b.sniff.want = "HTTP/2"
		for range o.conns {
			tr := newH2Client(h2Options{tls: tlsConfig, dial: b.dial, connectTimeout: o.connectTimeout, oneConn: true, disableCompression: true})
			b.clients = append(b.clients, &http.Client{Transport: tr})
			b.closers = append(b.closers, tr.CloseIdleConnections)
		}
		return b
	case o.proto == spdymux.ProtoHTTP11:
		tr := &http.Transport{
			DialContext:         b.dial,
			TLSHandshakeTimeout: o.connectTimeout,
			TLSClientConfig:     tlsConfig,
			TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{}, // no HTTP/2
			MaxConnsPerHost:     o.conns,
			MaxIdleConnsPerHost: o.conns,
			DisableCompression:  true,
		}
		b.clients = []*http.Client{{Transport: tr}}
		b.closers = append(b.closers, tr.CloseIdleConnections)
		return b
	}
	for range o.conns {
		tr := &spdymux.Transport{
			TLSClientConfig:    tlsConfig,
			Protocols:          []string{o.proto},
			PlainProtocol:      o.proto,
			DialContext:        b.dial,
			DialTimeout:        o.connectTimeout,
			DisableCompression: true,
			IdleConnTimeout:    -1,
		}
		if o.connectTimeout == 0 {
			tr.DialTimeout = 24 * time.Hour // none, in effect
		}
		b.clients = append(b.clients, &http.Client{Transport: tr})
		b.closers = append(b.closers, tr.CloseIdleConnections)
	}
	return b
}

func (b *bench) close() {
	for _, c := range b.closers {
		c()
	}
}

// dial dials a TCP connection whose bytes are counted and whose first
// bytes from the server are checked for HTTP/1.x (but for -proto
// http/1.1).
func (b *bench) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{Timeout: b.o.connectTimeout, KeepAlive: 30 * time.Second}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	b.dials.Add(1)
	if e := b.sniff.seen.Load(); e != nil && b.o.proto != spdymux.ProtoHTTP11 {
		c.Close()
		return nil, e.err // a Transport's retry would meet the same server
	}
	c = &countingConn{Conn: c, in: &b.wireIn, out: &b.wireOut}
	if b.o.proto != spdymux.ProtoHTTP11 {
		c = b.sniff.wrap(c)
	}
	return c, nil
}

func (b *bench) resetWire() {
	b.wireIn.Store(0)
	b.wireOut.Store(0)
}

// countingConn counts the bytes read and written on a connection.
type countingConn struct {
	net.Conn
	in, out *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.Add(int64(n))
	return n, err
}

// connect opens every connection with one request, so that dialing is
// not measured. Its error is one line: the first failure, and how many
// connections failed.
func (b *bench) connect(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, b.o.conns)
	for i := range b.o.conns {
		c := b.clients[min(i, len(b.clients)-1)]
		wg.Go(func() {
			_, _, errs[i] = b.do(ctx, c)
		})
	}
	wg.Wait()
	failed := 0
	var first error
	for _, err := range errs {
		if err != nil {
			failed++
			first = cmp.Or(first, err)
		}
	}
	if failed == 0 {
		return nil
	}
	if ue, ok := errors.AsType[*url.Error](first); ok {
		first = ue.Err // http.Client's "Get URL:" says what the report does
	}
	first = b.sniff.explain(first)
	if failed == 1 && b.o.conns == 1 {
		return fmt.Errorf("connecting: %w", first)
	}
	return fmt.Errorf("connecting: %d of %d connections failed: %w", failed, b.o.conns, first)
}

// looksLikeDuration reports whether s, a -d value, is a duration: bench -d
// was the duration before it was the body.
func looksLikeDuration(s string) bool {
	if s == "" || strings.HasPrefix(s, "@") {
		return false
	}
	_, err := time.ParseDuration(s)
	return err == nil
}

// do sends one request and reads its response; it returns the status
// (0 if none) and the body bytes.
func (b *bench) do(ctx context.Context, c *http.Client) (int, int64, error) {
	if b.o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.o.timeout)
		defer cancel()
	}
	req := &http.Request{Method: b.method, URL: b.url, Header: b.header, Host: b.header.Get("Host")}
	if b.body != nil {
		body, err := b.body.open()
		if err != nil {
			return 0, 0, err
		}
		req.Body, req.ContentLength, req.GetBody = body, b.body.size, b.body.open
	}
	req = req.WithContext(ctx)
	resp, err := c.Do(req)
	if err != nil {
		return 0, 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, n, err
}

// phase says when a run stops: after n requests, or at until.
type phase struct {
	n     int64
	until time.Time
}

// run sends load until ph ends or ctx is done, recording into st, and
// returns the time it took. With prog set it prints a progress line there
// every -progress interval.
func (b *bench) run(ctx context.Context, ph phase, st *stats, prog io.Writer) time.Duration {
	var claimed atomic.Int64
	more := func() bool {
		if ctx.Err() != nil {
			return false
		}
		if ph.n > 0 {
			return claimed.Add(1) <= ph.n
		}
		return time.Now().Before(ph.until)
	}
	start := time.Now()
	stop := make(chan struct{})
	var progWG sync.WaitGroup
	if prog != nil {
		progWG.Go(func() { b.progress(prog, st, start, stop) })
	}
	var wg sync.WaitGroup
	workers := b.o.conns * b.o.streams
	for i := range workers {
		c := b.clients[min(i/b.o.streams, len(b.clients)-1)]
		wg.Go(func() {
			for more() {
				t0 := time.Now()
				status, n, err := b.do(ctx, c)
				st.record(time.Since(t0), status, n, err)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	progWG.Wait()
	return elapsed
}

func (b *bench) progress(w io.Writer, st *stats, start time.Time, stop chan struct{}) {
	t := time.NewTicker(b.o.progress)
	defer t.Stop()
	last, lastT := int64(0), start
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			done := st.count.Load()
			fmt.Fprintf(w, "progress: %5.1fs %d done, %.0f req/s so far, %.0f req/s in the last interval, %d failed\n",
				now.Sub(start).Seconds(), done, float64(done)/now.Sub(start).Seconds(),
				float64(done-last)/now.Sub(lastT).Seconds(), st.failed.Load())
			last, lastT = done, now
		}
	}
}

// stats are the counters of a run, updated concurrently by the workers.
type stats struct {
	count, failed, bodyBytes atomic.Int64
	status                   [6]atomic.Int64 // by status / 100
	errs                     [5]atomic.Int64 // by errorKind
	lat                      histogram
}

func newStats() *stats {
	s := &stats{}
	s.lat.min.Store(math.MaxInt64)
	return s
}

// Kinds of failed requests.
const (
	errStatus5xx = iota
	errReset
	errConnect
	errTimeout
	errOther
)

var errorKinds = [...]string{"status_5xx", "reset", "connect", "timeout", "other"}

func (s *stats) record(d time.Duration, status int, n int64, err error) {
	s.count.Add(1)
	s.bodyBytes.Add(n)
	if status > 0 {
		s.status[min(status/100, 5)].Add(1)
	}
	switch {
	case err != nil:
		s.failed.Add(1)
		s.errs[classify(err)].Add(1)
		return
	case status >= 500:
		s.failed.Add(1)
		s.errs[errStatus5xx].Add(1)
	}
	s.lat.record(int64(d))
}

// classify tells the kind of a failed request's error.
func classify(err error) int {
	var ne net.Error
	var op *net.OpError
	var certErr *tls.CertificateVerificationError
	var alert tls.AlertError
	var rec tls.RecordHeaderError
	var alpn *alpnError
	var h2Stream http2.StreamError
	var h2Conn http2.ConnectionError
	var h2GoAway http2.GoAwayError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return errTimeout
	case errors.As(err, &op) && op.Op == "dial" || errors.As(err, &certErr) || errors.As(err, &alert) || errors.As(err, &rec) || errors.As(err, &alpn):
		return errConnect
	case errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.As(err, &op) ||
		errors.As(err, &h2Stream) || errors.As(err, &h2Conn) || errors.As(err, &h2GoAway):
		return errReset
	}
	return errOther
}

// histogram is a log-linear latency histogram of nanoseconds: values
// below 2^subBits are exact, larger ones fall in one of 2^subBits
// buckets per power of two. It is safe for concurrent use.
type histogram struct {
	buckets  [64 << subBits]atomic.Int64
	sum      atomic.Int64
	min, max atomic.Int64
	n        atomic.Int64
}

const subBits = 7

func bucketOf(v int64) int {
	if v < 1<<subBits {
		return int(max(v, 0))
	}
	shift := bits.Len64(uint64(v)) - subBits - 1
	return (shift+1)<<subBits + int(v>>shift) - 1<<subBits
}

// bucketValue is the middle of bucket i's range.
func bucketValue(i int) int64 {
	if i < 1<<subBits {
		return int64(i)
	}
	shift := i>>subBits - 1
	low := int64(i&(1<<subBits-1)+1<<subBits) << shift
	return low + (int64(1)<<shift)/2
}

func (h *histogram) record(v int64) {
	h.buckets[bucketOf(v)].Add(1)
	h.sum.Add(v)
	h.n.Add(1)
	for m := h.min.Load(); v < m && !h.min.CompareAndSwap(m, v); m = h.min.Load() {
	}
	for m := h.max.Load(); v > m && !h.max.CompareAndSwap(m, v); m = h.max.Load() {
	}
}

// quantile returns the value below which a fraction q of the samples
// fall, clamped to the exact min and max.
func (h *histogram) quantile(q float64) int64 {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(n)))
	var seen int64
	for i := range h.buckets {
		seen += h.buckets[i].Load()
		if seen >= rank {
			return min(max(bucketValue(i), h.min.Load()), h.max.Load())
		}
	}
	return h.max.Load()
}

// benchReport is the result of a run; its JSON form is -json's output.
type benchReport struct {
	URL                  string           `json:"url"`
	Proto                string           `json:"proto"`
	Connections          int64            `json:"connections"`
	StreamsPerConnection int              `json:"streams_per_connection"`
	Requests             int64            `json:"requests"`
	Succeeded            int64            `json:"succeeded"`
	Failed               int64            `json:"failed"`
	DurationS            float64          `json:"duration_s"`
	ReqPerS              float64          `json:"req_per_s"`
	BodyBytes            int64            `json:"body_bytes"`
	BodyBytesPerS        float64          `json:"body_bytes_per_s"`
	WireBytesIn          int64            `json:"wire_bytes_in"`
	WireBytesOut         int64            `json:"wire_bytes_out"`
	WireBytesPerS        float64          `json:"wire_bytes_per_s"`
	LatencyMs            latencyReport    `json:"latency_ms"`
	LatencyMethod        string           `json:"latency_method"`
	Status               map[string]int64 `json:"status"`
	Errors               map[string]int64 `json:"errors"`
}

type latencyReport struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

func (b *bench) report(st *stats, elapsed time.Duration) *benchReport {
	secs := elapsed.Seconds()
	r := &benchReport{
		URL:                  b.url.String(),
		Proto:                wireProto(b.o.proto, b.url.Scheme),
		Connections:          b.dials.Load(),
		StreamsPerConnection: b.o.streams,
		Requests:             st.count.Load(),
		Failed:               st.failed.Load(),
		DurationS:            secs,
		BodyBytes:            st.bodyBytes.Load(),
		WireBytesIn:          b.wireIn.Load(),
		WireBytesOut:         b.wireOut.Load(),
		LatencyMethod:        "log-linear histogram, 128 buckets per power of two (within 0.4%); min, mean, max exact",
		Status:               map[string]int64{},
		Errors:               map[string]int64{},
	}
	r.Succeeded = r.Requests - r.Failed
	if secs > 0 {
		r.ReqPerS = float64(r.Requests) / secs
		r.BodyBytesPerS = float64(r.BodyBytes) / secs
		r.WireBytesPerS = float64(r.WireBytesIn+r.WireBytesOut) / secs
	}
	msf := func(ns int64) float64 { return float64(ns) / 1e6 }
	if n := st.lat.n.Load(); n > 0 {
		r.LatencyMs = latencyReport{
			Min:  msf(st.lat.min.Load()),
			Mean: msf(st.lat.sum.Load() / n),
			P50:  msf(st.lat.quantile(0.50)),
			P90:  msf(st.lat.quantile(0.90)),
			P99:  msf(st.lat.quantile(0.99)),
			Max:  msf(st.lat.max.Load()),
		}
	}
	for i := 2; i <= 5; i++ {
		r.Status[fmt.Sprintf("%dxx", i)] = st.status[i].Load()
	}
	for i, k := range errorKinds {
		r.Errors[k] = st.errs[i].Load()
	}
	return r
}

func (r *benchReport) writeText(w io.Writer) {
	fmt.Fprintf(w, "spdymux bench %s: %s, %d connections, %d streams each\n", r.URL, r.Proto, r.Connections, r.StreamsPerConnection)
	fmt.Fprintf(w, "requests:  %d done, %d succeeded, %d failed in %.2fs\n", r.Requests, r.Succeeded, r.Failed, r.DurationS)
	fmt.Fprintf(w, "req/s:     %.1f\n", r.ReqPerS)
	fmt.Fprintf(w, "body:      %s/s (%d bytes)\n", byteSize(r.BodyBytesPerS), r.BodyBytes)
	fmt.Fprintf(w, "wire:      %s/s (%d bytes in, %d out)\n", byteSize(r.WireBytesPerS), r.WireBytesIn, r.WireBytesOut)
	l := r.LatencyMs
	fmt.Fprintf(w, "latency:   min %.3fms, mean %.3fms, p50 %.3fms, p90 %.3fms, p99 %.3fms, max %.3fms\n", l.Min, l.Mean, l.P50, l.P90, l.P99, l.Max)
	fmt.Fprintf(w, "           (%s)\n", r.LatencyMethod)
	fmt.Fprintf(w, "status:    2xx %d, 3xx %d, 4xx %d, 5xx %d\n", r.Status["2xx"], r.Status["3xx"], r.Status["4xx"], r.Status["5xx"])
	fmt.Fprintf(w, "errors:    status>=500 %d, reset %d, connect %d, timeout %d, other %d\n",
		r.Errors["status_5xx"], r.Errors["reset"], r.Errors["connect"], r.Errors["timeout"], r.Errors["other"])
}

func byteSize(v float64) string {
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%.2f GiB", v/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%.2f MiB", v/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.2f KiB", v/(1<<10))
	}
	return fmt.Sprintf("%.0f B", v)
}
