package spdymux_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spdymux/spdymux"
	"github.com/spdymux/spdymux/internal/demo"
)

// What push buys: the demo page (one page that names Tiles images, all in
// its X-Associated-Content) loaded the way a browser loads it, through a
// proxy that adds a round trip of demoRTT on the client's side, with the
// server's push on and off. Each load is a fresh session, as a first visit
// is: connection, page, then the tiles. BENCHMARKS.md, "Server push".
//
//	go test -run '^$' -bench DemoPage -benchtime 20x .

// demoRTT is the round trip the proxy adds: half of it each way.
const demoRTT = 50 * time.Millisecond

// BenchmarkDemoPageSPDY loads the demo page over SPDY/3.1 with
// spdymux.Transport as the browser: the page, then every tile it names
// that was not pushed, all at once.
func BenchmarkDemoPageSPDY(b *testing.B) {
	for _, push := range []bool{true, false} {
		name := "push"
		if !push {
			name = "no-push"
		}
		b.Run(name, func(b *testing.B) {
			base := startDemo(b, spdymux.Config{DisableSPDYPush: !push})
			url := "http://" + delayProxy(b, base, demoRTT/2)
			var pushed, tiles int
			var loads, pages []time.Duration
			for b.Loop() {
				d, page, p, n, err := loadDemoSPDY(url)
				if err != nil {
					b.Fatal(err)
				}
				loads, pages = append(loads, d), append(pages, page)
				pushed, tiles = p, n
			}
			reportLoads(b, loads)
			// The page's own last byte: its FIN waits for its pushes' heads.
			slices.Sort(pages)
			b.ReportMetric(float64(pages[len(pages)/2])/float64(time.Millisecond), "page-ms")
			b.ReportMetric(float64(pushed), "pushed/load")
			if tiles != demo.Tiles || push != (pushed == demo.Tiles) {
				b.Errorf("last load: %d tiles, %d pushed", tiles, pushed)
			}
		})
	}
}

// BenchmarkDemoPageH2 loads the demo page over h2c with nghttp -a (it
// fetches the images a page names, and takes pushes) as the browser.
func BenchmarkDemoPageH2(b *testing.B) {
	bin, err := exec.LookPath("nghttp")
	if err != nil {
		b.Skip("nghttp not found: install nghttp2's client (Debian: nghttp2-client)")
	}
	for _, push := range []bool{true, false} {
		name := "push"
		if !push {
			name = "no-push"
		}
		b.Run(name, func(b *testing.B) {
			base := startDemo(b, spdymux.Config{EnableH2Push: push})
			url := "http://" + delayProxy(b, base, demoRTT/2) + "/"
			var out []byte
			var loads []time.Duration
			for b.Loop() {
				if out, err = exec.Command(bin, "-a", "-n", "-s", url).Output(); err != nil {
					b.Fatal(err)
				}
				// -s lists every response with the time its last byte
				// came, from the connection's start: the last is the load.
				var last time.Duration
				for _, m := range nghttpEnd.FindAllSubmatch(out, -1) {
					d, err := time.ParseDuration(string(m[1]))
					if err != nil {
						b.Fatal(err)
					}
					last = max(last, d)
				}
				loads = append(loads, last)
			}
			reportLoads(b, loads)
			// Pushed responses are marked with "*".
			lines := nghttpTile.FindAll(out, -1)
			pushed := 0
			for _, l := range lines {
				if bytes.Contains(l, []byte("*")) {
					pushed++
				}
			}
			b.ReportMetric(float64(pushed), "pushed/load")
			if len(lines) != demo.Tiles || push != (pushed == demo.Tiles) {
				b.Errorf("last load: %d tiles, %d pushed:\n%s", len(lines), pushed, out)
			}
		})
	}
}

var (
	nghttpTile = regexp.MustCompile(`(?m)^.*/tile/\d+\.svg$`)
	nghttpEnd  = regexp.MustCompile(`(?m)^\s*\d+\s+\+([0-9.]+(?:ms|us|s))`)
)

// reportLoads reports the median and the 90th percentile of the load
// times (ns/op counts more: a Transport's close, nghttp's start).
func reportLoads(b *testing.B, loads []time.Duration) {
	slices.Sort(loads)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(loads[len(loads)/2]), "ms/load")
	b.ReportMetric(ms(loads[len(loads)*9/10]), "p90-ms/load")
}

// startDemo serves the demo site over cleartext on loopback with cfg and
// returns its address.
func startDemo(tb testing.TB, cfg spdymux.Config) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	cfg.Logger = quietLogger()
	l := spdymux.NewListener(ln, &cfg)
	srv := &http.Server{Handler: demo.Handler()}
	spdymux.ConfigureServer(srv)
	go srv.Serve(l)
	tb.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

var demoTileSrc = regexp.MustCompile(`<img src="(/tile/\d+\.svg)"`)

// loadDemoSPDY loads the demo page at url as a browser would, over a new
// SPDY/3.1 session: the page, then at once every tile the page names that
// did not come pushed. It returns the time it took, from the dial to the
// last tile's last byte, and to the page's last byte; how many tiles came
// pushed, and how many the page named.
func loadDemoSPDY(url string) (took, pageTook time.Duration, pushed, tiles int, err error) {
	start := time.Now()
	var mu sync.Mutex
	var wg sync.WaitGroup
	promised := map[string]bool{} // tiles pushed
	var failed error
	tr := &spdymux.Transport{PlainProtocol: spdymux.ProtoSPDY31, PushHandler: func(p *spdymux.Push) {
		resp, err := p.Response()
		if err != nil {
			return
		}
		mu.Lock()
		promised[p.Request.URL.Path] = true
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil {
				mu.Lock()
				failed = err
				mu.Unlock()
			}
		}()
	}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	resp, err := c.Get(url + "/")
	if err != nil {
		return 0, 0, 0, 0, err
	}
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, 0, 0, 0, err
	}
	pageTook = time.Since(start)
	// Every push was offered before the page's end (the handler runs on
	// the session's reader); the tiles not pushed are asked for, all at
	// once, while the pushed ones come.
	srcs := demoTileSrc.FindAllSubmatch(page, -1)
	for _, m := range srcs {
		path := string(m[1])
		mu.Lock()
		pushedTile := promised[path]
		mu.Unlock()
		if pushedTile {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Get(url + path)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = err
			}
		}()
	}
	wg.Wait()
	took = time.Since(start)
	mu.Lock()
	defer mu.Unlock()
	if failed != nil {
		return 0, 0, 0, 0, failed
	}
	return took, pageTook, len(promised), len(srcs), nil
}

// delayProxy forwards the TCP connections it accepts to target, every
// byte delayed by oneWay in each direction: a round trip of 2×oneWay
// added, as a long path would, with no limit on bandwidth and bytes kept
// in order. It returns its address.
func delayProxy(tb testing.TB, target string, oneWay time.Duration) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	tb.Cleanup(func() {
		cancel()
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); delayCopy(ctx, s.(*net.TCPConn), c.(*net.TCPConn), oneWay) }()
			go func() { defer wg.Done(); delayCopy(ctx, c.(*net.TCPConn), s.(*net.TCPConn), oneWay) }()
		}
	}()
	return ln.Addr().String()
}

// delayCopy copies src to dst, each chunk written oneWay after it was
// read; src's end is passed on, as late, with CloseWrite.
func delayCopy(ctx context.Context, dst, src *net.TCPConn, oneWay time.Duration) {
	type chunk struct {
		b  []byte
		at time.Time
	}
	q := make(chan chunk, 1024)
	go func() {
		defer close(q)
		buf := make([]byte, 64<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{bytes.Clone(buf[:n]), time.Now().Add(oneWay)}
			}
			if err != nil {
				q <- chunk{nil, time.Now().Add(oneWay)}
				return
			}
		}
	}()
	defer dst.Close()
	for c := range q {
		select {
		case <-time.After(time.Until(c.at)):
		case <-ctx.Done():
			src.Close()
			return
		}
		if c.b == nil {
			dst.CloseWrite()
			continue
		}
		if _, err := dst.Write(c.b); err != nil && !errors.Is(err, net.ErrClosed) {
			src.Close()
			return
		}
	}
}
