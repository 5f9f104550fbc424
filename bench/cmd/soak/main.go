// Command soak drives a spdymux server with a mix of clients for a long
// time and checks every answer, for bench/soak.sh:
//
//	soak -mode probe -url https://127.0.0.1:PORT [-duration 8s] [-conc 48]
//
// runs the mix as fast as it goes, -conc requests at a time, and prints
// "capacity R" (requests per second);
//
//	soak -mode soak -url URL -metrics URL -rate R -duration D [-csv FILE] [-json FILE]
//
// sends the mix at R requests per second (open loop: a request that finds
// every worker busy is counted as late, not dropped) for D, then closes
// every session and checks that the server's goroutines and backend
// connections come back to what they were before. Every second it prints
// and records the requests answered, the errors, the latency p50 and p99
// of that second, and the server's resident memory, goroutines and busy
// and idle backend connections (from its Prometheus -metrics). At the end
// it prints a summary (and writes it as JSON): totals, p50/p99 over the
// run, the slope of memory and goroutines after warm-up, and the final
// check. It exits 1 if any request failed or the final check did not
// pass.
//
//	soak -write-pattern FILE -size N
//
// writes N bytes of the pattern to FILE, for a backend's static files.
//
// The mix, over TLS (ALPN picks each client's protocol): sessions of
// SPDY/3.1, SPDY/3, SPDY/2 (spdymux.Transport), HTTP/2 (x/net/http2) and
// HTTP/1.1 (net/http, one connection per request in flight), each session
// closed after a few hundred requests and a new one opened; per request,
// by weight: small downloads (1 KB, 10 KB), large downloads (1 MiB,
// 8 MiB), uploads of 64 KiB and 1 MiB with a length and of 64 KiB without
// (chunked; a SPDY or HTTP/2 stream without content-length), and resets: a
// download of 8 MiB cancelled after 256 KiB. Every downloaded body must be
// the pattern (byte i is i mod 251) of the length asked for; every upload
// comes back echoed, checked by SHA-256.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/spdymux/spdymux"
)

func main() {
	var (
		mode      = flag.String("mode", "soak", "probe or soak")
		base      = flag.String("url", "", "the server's `base URL`, https://host:port")
		metrics   = flag.String("metrics", "", "the server's Prometheus `URL` (…/metrics)")
		rate      = flag.Float64("rate", 100, "requests per second (soak)")
		duration  = flag.Duration("duration", time.Minute, "how long to run")
		conc      = flag.Int("conc", 48, "requests in flight at most")
		warmup    = flag.Duration("warmup", 0, "leave this first part out of the slopes (default a sixth of -duration, at most 1 minute)")
		csvPath   = flag.String("csv", "", "write the per-second samples to `file`")
		jsonPath  = flag.String("json", "", "write the summary to `file`")
		label     = flag.String("label", "", "a name for the report")
		gTol      = flag.Int("goroutine-slack", 8, "goroutines over the baseline the final check allows")
		settle    = flag.Duration("settle", 30*time.Second, "how long the final check waits for the server to settle")
		writePath = flag.String("write-pattern", "", "write -size pattern bytes to `file` and exit")
		size      = flag.Int64("size", 0, "with -write-pattern: the number of bytes")
	)
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("soak: ")
	if *writePath != "" {
		if err := writePattern(*writePath, *size); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *base == "" {
		log.Fatal("-url is required")
	}
	l := newLoad(*base, *conc)
	switch *mode {
	case "probe":
		r := l.probe(*duration)
		l.close()
		if l.errors.Load() > 0 {
			log.Printf("%d errors while probing: %s", l.errors.Load(), strings.Join(l.firstErrors(), "; "))
			os.Exit(1)
		}
		fmt.Printf("capacity %.0f\n", r)
	case "soak":
		if *warmup == 0 {
			*warmup = min(*duration/6, time.Minute)
		}
		s := &soaker{load: l, metricsURL: *metrics, label: *label, warmup: *warmup, gTol: *gTol, settle: *settle}
		ok := s.run(*rate, *duration, *csvPath, *jsonPath)
		if !ok {
			os.Exit(1)
		}
	default:
		log.Fatalf("bad -mode %q", *mode)
	}
}

// patternBuf is the pattern, a whole number of periods long.
var patternBuf = func() []byte {
	b := make([]byte, 251*256)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}()

func writePattern(name string, n int64) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for n > 0 {
		k := min(n, int64(len(patternBuf)))
		w.Write(patternBuf[:k])
		n -= k
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// protocols are the clients of the mix and their weights.
var protocols = []struct {
	name   string
	weight int
}{
	{spdymux.ProtoSPDY31, 3}, {spdymux.ProtoSPDY3, 1}, {spdymux.ProtoSPDY2, 1}, {"h2", 3}, {"http/1.1", 2},
}

// kinds are the requests of the mix and their weights.
var kinds = []struct {
	name   string
	weight int
}{
	{"get-1k", 30}, {"get-10k", 25}, {"get-1m", 8}, {"get-8m", 2},
	{"post-64k", 12}, {"post-1m", 3}, {"post-64k-chunked", 12}, {"reset-8m", 8},
}

func pick[T any](r *rand.Rand, items []T, weight func(T) int) T {
	total := 0
	for _, it := range items {
		total += weight(it)
	}
	n := r.IntN(total)
	for _, it := range items {
		if n -= weight(it); n < 0 {
			return it
		}
	}
	return items[len(items)-1]
}

// session is one client connection of a protocol (for HTTP/1.1, one
// Transport and its connections), used for a number of requests and then
// closed.
type session struct {
	proto string
	rt    http.RoundTripper
	close func()
	left  atomic.Int64 // requests it takes before it is replaced
	busy  sync.WaitGroup
}

// load is the mix: sessions of each protocol, and the checks.
type load struct {
	base string
	conc int

	mu       sync.Mutex
	sessions map[string]*session // the current session of each protocol
	retired  sync.WaitGroup      // sessions being closed
	opened   atomic.Int64

	requests, errors, resets, late atomic.Int64
	errMu                          sync.Mutex
	errs                           []string

	latMu sync.Mutex
	lats  []time.Duration // this second's
	all   []time.Duration // the run's, after warm-up
	keep  bool            // append to all
}

func newLoad(base string, conc int) *load {
	return &load{base: strings.TrimRight(base, "/"), conc: conc, sessions: make(map[string]*session)}
}

var tlsConfig = &tls.Config{InsecureSkipVerify: true}

func (l *load) newSession(proto string) *session {
	s := &session{proto: proto}
	switch proto {
	case "h2":
		tr := &http2.Transport{TLSClientConfig: tlsConfig.Clone()}
		s.rt, s.close = tr, tr.CloseIdleConnections
	case "http/1.1":
		c := tlsConfig.Clone()
		c.NextProtos = []string{"http/1.1"}
		tr := &http.Transport{TLSClientConfig: c, MaxIdleConnsPerHost: 16, DisableCompression: true}
		s.rt, s.close = tr, tr.CloseIdleConnections
	default:
		tr := &spdymux.Transport{TLSClientConfig: tlsConfig.Clone(), Protocols: []string{proto}, DisableCompression: true}
		s.rt, s.close = tr, tr.CloseIdleConnections
	}
	s.left.Store(200 + rand.Int64N(600))
	l.opened.Add(1)
	return s
}

// take returns a session of proto for one request; the caller calls done
// when the request is over. A session whose quota is spent is replaced and
// closed once its requests are over.
func (l *load) take(proto string) *session {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sessions[proto]
	if s == nil || s.left.Add(-1) < 0 {
		if s != nil {
			old := s
			l.retired.Go(func() {
				old.busy.Wait()
				old.close()
			})
		}
		s = l.newSession(proto)
		s.left.Add(-1)
		l.sessions[proto] = s
	}
	s.busy.Add(1)
	return s
}

// close closes every session.
func (l *load) close() {
	l.mu.Lock()
	ss := l.sessions
	l.sessions = map[string]*session{}
	l.mu.Unlock()
	for _, s := range ss {
		s.busy.Wait()
		s.close()
	}
	l.retired.Wait()
}

func (l *load) fail(what string, err error) {
	l.errors.Add(1)
	l.errMu.Lock()
	if len(l.errs) < 20 {
		l.errs = append(l.errs, what+": "+err.Error())
	}
	l.errMu.Unlock()
}

func (l *load) firstErrors() []string {
	l.errMu.Lock()
	defer l.errMu.Unlock()
	return slices.Clone(l.errs)
}

// one makes one request of the mix and checks it.
func (l *load) one(r *rand.Rand) {
	proto := pick(r, protocols, func(p struct {
		name   string
		weight int
	}) int {
		return p.weight
	}).name
	kind := pick(r, kinds, func(k struct {
		name   string
		weight int
	}) int {
		return k.weight
	}).name
	s := l.take(proto)
	defer s.busy.Done()
	start := time.Now()
	err := l.do(r, s, kind)
	d := time.Since(start)
	l.requests.Add(1)
	if err != nil {
		l.fail(proto+" "+kind, err)
		return
	}
	l.latMu.Lock()
	l.lats = append(l.lats, d)
	if l.keep {
		l.all = append(l.all, d)
	}
	l.latMu.Unlock()
}

const requestTimeout = 60 * time.Second

func (l *load) do(r *rand.Rand, s *session, kind string) error {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	switch kind {
	case "get-1k":
		return l.get(ctx, s, 1000)
	case "get-10k":
		return l.get(ctx, s, 10000)
	case "get-1m":
		return l.get(ctx, s, 1<<20)
	case "get-8m":
		return l.get(ctx, s, 8<<20)
	case "post-64k":
		return l.post(ctx, r, s, 64<<10, false)
	case "post-1m":
		return l.post(ctx, r, s, 1<<20, false)
	case "post-64k-chunked":
		return l.post(ctx, r, s, 64<<10, true)
	case "reset-8m":
		return l.reset(ctx, s, 8<<20, 256<<10)
	}
	return fmt.Errorf("unknown kind %q", kind)
}

func (l *load) get(ctx context.Context, s *session, n int) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", l.base+"/bytes/"+strconv.Itoa(n), nil)
	resp, err := s.rt.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		io.Copy(io.Discard, resp.Body)
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return checkPattern(resp.Body, int64(n), int64(n))
}

// checkPattern reads up to limit bytes of body and checks that they are
// the pattern, and, unless it stopped at limit, that there were n.
func checkPattern(body io.Reader, n, limit int64) error {
	buf := make([]byte, 32<<10)
	var off int64
	for off < limit {
		k, err := body.Read(buf[:min(int64(len(buf)), limit-off)])
		for i, b := range buf[:k] {
			if want := byte((off + int64(i)) % 251); b != want {
				return fmt.Errorf("body byte %d is %d; want %d", off+int64(i), b, want)
			}
		}
		off += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("after %d body bytes: %w", off, err)
		}
	}
	if off != limit {
		return fmt.Errorf("%d body bytes; want %d", off, n)
	}
	if limit == n {
		// The body must end there.
		var one [1]byte
		if k, err := body.Read(one[:]); k > 0 || err != io.EOF && err != nil {
			return fmt.Errorf("more than %d body bytes, or a bad end: %v", n, err)
		}
	}
	return nil
}

// post uploads n random bytes to /echo, with a Content-Length or without
// (chunked), and checks the echo by its SHA-256.
func (l *load) post(ctx context.Context, r *rand.Rand, s *session, n int, chunked bool) error {
	body := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			body[i+j] = byte(v >> (8 * j))
		}
	}
	sum := sha256.Sum256(body)
	var rd io.Reader = bytes.NewReader(body)
	if chunked {
		rd = io.MultiReader(bytes.NewReader(body[:n/2]), bytes.NewReader(body[n/2:])) // no length known
	}
	req, _ := http.NewRequestWithContext(ctx, "POST", l.base+"/echo", rd)
	if chunked {
		req.ContentLength = -1
	} else {
		req.ContentLength = int64(n)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := s.rt.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		io.Copy(io.Discard, resp.Body)
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	h := sha256.New()
	got, err := io.Copy(h, resp.Body)
	if err != nil {
		return fmt.Errorf("after %d echoed bytes: %w", got, err)
	}
	if got != int64(n) || !bytes.Equal(h.Sum(nil), sum[:]) {
		return fmt.Errorf("echo of %d bytes (chunked %v): %d bytes back, SHA-256 differs: %v", n, chunked, got, !bytes.Equal(h.Sum(nil), sum[:]))
	}
	return nil
}

// reset asks for n bytes, checks the first after of them and cancels the
// request: the client resets the stream (closes the HTTP/1.1 connection).
func (l *load) reset(ctx context.Context, s *session, n, after int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", l.base+"/bytes/"+strconv.Itoa(n), nil)
	resp, err := s.rt.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	if err := checkPattern(resp.Body, int64(n), int64(after)); err != nil {
		return err
	}
	cancel()
	l.resets.Add(1)
	return nil
}

// probe runs the mix closed loop, l.conc at a time, for d after a short
// warm-up, and returns the requests per second.
func (l *load) probe(d time.Duration) float64 {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var counting atomic.Bool
	var done atomic.Int64
	for i := range l.conc {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				l.one(r)
				if counting.Load() {
					done.Add(1)
				}
			}
		})
	}
	time.Sleep(min(d/4, 3*time.Second))
	counting.Store(true)
	start := time.Now()
	time.Sleep(d)
	n := done.Load()
	el := time.Since(start)
	close(stop)
	wg.Wait()
	return float64(n) / el.Seconds()
}

// sample is one second of the soak.
type sample struct {
	T          float64 `json:"t"` // seconds since the start
	Requests   int64   `json:"requests"`
	Errors     int64   `json:"errors"`
	Late       int64   `json:"late"`
	P50ms      float64 `json:"p50_ms"`
	P99ms      float64 `json:"p99_ms"`
	RSSMiB     float64 `json:"rss_mib"`
	HeapMiB    float64 `json:"heap_inuse_mib"`
	Goroutines float64 `json:"goroutines"`
	BackBusy   float64 `json:"backend_busy"`
	BackIdle   float64 `json:"backend_idle"`
}

type summary struct {
	Label           string   `json:"label"`
	Rate            float64  `json:"rate"`
	DurationS       float64  `json:"duration_s"`
	Requests        int64    `json:"requests"`
	Errors          int64    `json:"errors"`
	Resets          int64    `json:"resets"`
	Late            int64    `json:"late"`
	Sessions        int64    `json:"sessions"`
	P50ms           float64  `json:"p50_ms"`
	P99ms           float64  `json:"p99_ms"`
	RSSStartMiB     float64  `json:"rss_after_warmup_mib"`
	RSSEndMiB       float64  `json:"rss_end_mib"`
	RSSSlope        float64  `json:"rss_slope_mib_per_min"`
	HeapStartMiB    float64  `json:"heap_after_warmup_mib"`
	HeapEndMiB      float64  `json:"heap_end_mib"`
	HeapSlope       float64  `json:"heap_slope_mib_per_min"`
	HeapMaxMiB      float64  `json:"heap_max_mib"`
	RSSMaxMiB       float64  `json:"rss_max_mib"`
	Served          float64  `json:"served_per_s"`
	GStart          float64  `json:"goroutines_after_warmup"`
	GEnd            float64  `json:"goroutines_end"`
	GSlope          float64  `json:"goroutines_slope_per_min"`
	BaseGoroutines  float64  `json:"baseline_goroutines"`
	FinalGoroutines float64  `json:"final_goroutines"`
	BaseBackend     float64  `json:"baseline_backend_conns"`
	FinalBackend    float64  `json:"final_backend_conns"`
	FinalBusy       float64  `json:"final_backend_busy"`
	BaseLiveMiB     float64  `json:"baseline_live_heap_mib"`
	FinalLiveMiB    float64  `json:"final_live_heap_mib"`
	FinalOK         bool     `json:"final_ok"`
	FirstErrors     []string `json:"first_errors,omitempty"`
}

type soaker struct {
	*load
	metricsURL string
	label      string
	warmup     time.Duration
	gTol       int
	settle     time.Duration
}

// metrics are what scrape reads of the server's metrics.
type metrics struct {
	rss, heap  float64 // resident memory and Go heap in use, MiB
	alloc      float64 // bytes of allocated heap objects, MiB
	goroutines float64
	busy, idle float64 // backend connections (0 without a gateway)
}

// liveHeap returns the bytes of live objects in the server's heap right
// after a collection, which /debug/pprof/heap?gc=1 (beside /metrics) runs
// first: garbage and free spans left out. With save set, the heap profile
// goes there, for what holds the bytes (go tool pprof -sample_index
// inuse_space).
func (s *soaker) liveHeap(save string) (float64, error) {
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(strings.TrimSuffix(s.metricsURL, "/metrics") + "/debug/pprof/heap?gc=1")
	if err != nil {
		return 0, err
	}
	prof, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, err
	}
	if save != "" {
		if err := os.WriteFile(save, prof, 0o644); err != nil {
			return 0, err
		}
	}
	m, err := s.scrape()
	return m.alloc, err
}

// scrape reads the server's metrics.
func (s *soaker) scrape() (m metrics, err error) {
	if s.metricsURL == "" {
		return m, errors.New("no -metrics")
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(s.metricsURL)
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, perr := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if perr != nil {
			continue
		}
		switch name {
		case "process_resident_memory_bytes":
			m.rss = v / (1 << 20)
		case "go_memstats_heap_inuse_bytes":
			m.heap = v / (1 << 20)
		case "go_memstats_heap_alloc_bytes":
			m.alloc = v / (1 << 20)
		case "go_goroutines":
			m.goroutines = v
		case `spdymux_backend_connections{state="busy"}`:
			m.busy = v
		case `spdymux_backend_connections{state="idle"}`:
			m.idle = v
		}
	}
	return m, sc.Err()
}

func quantile(lats []time.Duration, q float64) time.Duration {
	if len(lats) == 0 {
		return 0
	}
	s := slices.Clone(lats)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// slope returns the least-squares slope of ys over xs.
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / den
}

func (s *soaker) run(rate float64, d time.Duration, csvPath, jsonPath string) bool {
	// The baseline: the server idle, before any session of ours.
	base, err := s.scrape()
	if err != nil {
		log.Printf("metrics: %v", err)
	}
	baseG, baseBack := base.goroutines, base.busy+base.idle
	baseLive, err := s.liveHeap("")
	if err != nil {
		log.Printf("heap: %v", err)
	}
	fmt.Printf("%s: baseline: %.0f goroutines, %.0f backend connections; %.0f requests/s for %v\n", s.label, baseG, baseBack, rate, d)

	var csv *os.File
	if csvPath != "" {
		if csv, err = os.Create(csvPath); err != nil {
			log.Fatal(err)
		}
		defer csv.Close()
		fmt.Fprintln(csv, "t,requests,errors,late,p50_ms,p99_ms,rss_mib,heap_inuse_mib,goroutines,backend_busy,backend_idle")
	}

	// Open loop: a dispatcher hands out tickets at the rate; l.conc
	// workers take them. A ticket no worker is free for is late.
	tickets := make(chan struct{}, s.conc)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range s.conc {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 2))
			for range tickets {
				s.one(r)
			}
		})
	}
	wg.Go(func() {
		defer close(tickets)
		interval := time.Duration(float64(time.Second) / rate)
		next := time.Now()
		for {
			next = next.Add(interval)
			if wait := time.Until(next); wait > 0 {
				select {
				case <-stop:
					return
				case <-time.After(wait):
				}
			}
			select {
			case <-stop:
				return
			case tickets <- struct{}{}:
			default:
				s.late.Add(1)
			}
		}
	})

	start := time.Now()
	var samples []sample
	var prevReq, prevErr, prevLate int64
	tick := time.NewTicker(time.Second)
	for now := range tick.C {
		el := now.Sub(start)
		if el >= s.warmup {
			s.latMu.Lock()
			s.keep = true
			s.latMu.Unlock()
		}
		s.latMu.Lock()
		lats := s.lats
		s.lats = nil
		s.latMu.Unlock()
		m, err := s.scrape()
		if err != nil {
			log.Printf("metrics: %v", err)
		}
		req, e, late := s.requests.Load(), s.errors.Load(), s.late.Load()
		sm := sample{
			T: math.Round(el.Seconds()), Requests: req - prevReq, Errors: e - prevErr, Late: late - prevLate,
			P50ms: ms(quantile(lats, 0.5)), P99ms: ms(quantile(lats, 0.99)),
			RSSMiB: m.rss, HeapMiB: m.heap, Goroutines: m.goroutines, BackBusy: m.busy, BackIdle: m.idle,
		}
		prevReq, prevErr, prevLate = req, e, late
		samples = append(samples, sm)
		fmt.Printf("%s t=%3.0fs req=%5d err=%d late=%d p50=%6.2fms p99=%7.2fms rss=%6.1fMiB heap=%6.1fMiB goroutines=%4.0f backend=%.0f/%.0f\n",
			s.label, sm.T, sm.Requests, sm.Errors, sm.Late, sm.P50ms, sm.P99ms, sm.RSSMiB, sm.HeapMiB, sm.Goroutines, m.busy, m.idle)
		if csv != nil {
			fmt.Fprintf(csv, "%.0f,%d,%d,%d,%.3f,%.3f,%.2f,%.2f,%.0f,%.0f,%.0f\n", sm.T, sm.Requests, sm.Errors, sm.Late, sm.P50ms, sm.P99ms, sm.RSSMiB, sm.HeapMiB, sm.Goroutines, m.busy, m.idle)
		}
		if el >= d {
			break
		}
	}
	tick.Stop()
	close(stop)
	wg.Wait()
	s.close()

	sum := summary{
		Label: s.label, Rate: rate, DurationS: time.Since(start).Seconds(),
		Requests: s.requests.Load(), Errors: s.errors.Load(), Resets: s.resets.Load(), Late: s.late.Load(),
		Sessions: s.opened.Load(), BaseGoroutines: baseG, BaseBackend: baseBack, BaseLiveMiB: baseLive, FirstErrors: s.firstErrors(),
	}
	s.latMu.Lock()
	sum.P50ms, sum.P99ms = ms(quantile(s.all, 0.5)), ms(quantile(s.all, 0.99))
	s.latMu.Unlock()
	var xs, rs, hs, gs []float64
	for _, sm := range samples {
		if sm.T >= s.warmup.Seconds() {
			xs = append(xs, sm.T/60)
			rs = append(rs, sm.RSSMiB)
			hs = append(hs, sm.HeapMiB)
			gs = append(gs, sm.Goroutines)
		}
	}
	if len(xs) > 0 {
		sum.RSSStartMiB, sum.RSSEndMiB = rs[0], rs[len(rs)-1]
		sum.HeapStartMiB, sum.HeapEndMiB = hs[0], hs[len(hs)-1]
		sum.GStart, sum.GEnd = gs[0], gs[len(gs)-1]
		sum.RSSSlope, sum.HeapSlope, sum.GSlope = slope(xs, rs), slope(xs, hs), slope(xs, gs)
		sum.RSSMaxMiB, sum.HeapMaxMiB = slices.Max(rs), slices.Max(hs)
	}
	sum.Served = float64(sum.Requests) / sum.DurationS

	// The final check: every session of ours closed, the server must come
	// back to its baseline.
	deadline := time.Now().Add(s.settle)
	for {
		m, err := s.scrape()
		sum.FinalGoroutines, sum.FinalBackend, sum.FinalBusy = m.goroutines, m.busy+m.idle, m.busy
		sum.FinalOK = err == nil && m.goroutines <= baseG+float64(s.gTol) && m.busy == 0 && m.busy+m.idle <= baseBack
		if sum.FinalOK || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	heapProfile := ""
	if jsonPath != "" {
		heapProfile = strings.TrimSuffix(jsonPath, ".json") + ".heap.pprof"
	}
	if sum.FinalLiveMiB, err = s.liveHeap(heapProfile); err != nil {
		log.Printf("heap: %v", err)
	}
	fmt.Printf("%s: %d requests in %.0fs (%.0f/s asked, %d late), %d errors, %d client resets, %d sessions; p50 %.2fms p99 %.2fms after warm-up (%v)\n",
		s.label, sum.Requests, sum.DurationS, rate, sum.Late, sum.Errors, sum.Resets, sum.Sessions, sum.P50ms, sum.P99ms, s.warmup)
	fmt.Printf("%s: after warm-up RSS %.1f -> %.1f MiB (slope %+.2f MiB/min, max %.1f), heap in use %.1f -> %.1f MiB (slope %+.2f MiB/min, max %.1f), goroutines %.0f -> %.0f (slope %+.2f/min)\n",
		s.label, sum.RSSStartMiB, sum.RSSEndMiB, sum.RSSSlope, sum.RSSMaxMiB, sum.HeapStartMiB, sum.HeapEndMiB, sum.HeapSlope, sum.HeapMaxMiB, sum.GStart, sum.GEnd, sum.GSlope)
	fmt.Printf("%s: final check: goroutines %.0f (baseline %.0f, +%d allowed), backend connections %.0f, busy %.0f (baseline %.0f): %s; live heap %.1f MiB (baseline %.1f)\n",
		s.label, sum.FinalGoroutines, baseG, s.gTol, sum.FinalBackend, sum.FinalBusy, baseBack, map[bool]string{true: "ok", false: "FAILED"}[sum.FinalOK], sum.FinalLiveMiB, baseLive)
	for _, e := range sum.FirstErrors {
		fmt.Printf("%s: error: %s\n", s.label, e)
	}
	if jsonPath != "" {
		b, _ := json.MarshalIndent(sum, "", "  ")
		if err := os.WriteFile(jsonPath, append(b, '\n'), 0o644); err != nil {
			log.Print(err)
		}
	}
	return sum.Errors == 0 && sum.FinalOK
}
