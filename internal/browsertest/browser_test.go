package browsertest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	stdlog "log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/spdymux/spdymux/internal/cli"
	"github.com/spdymux/spdymux/internal/demo"
)

// chromiumPath is where Debian's chromium package puts the browser.
const chromiumPath = "/usr/bin/chromium"

// stepTimeout bounds each step in the browser: a load, a poll, a command.
const stepTimeout = 30 * time.Second

var (
	// pageStream matches the words of a page that came over an HTTP/2
	// stream of spdymux, giving its session and stream ids.
	pageStream = regexp.MustCompile(`This page came over HTTP/2 session (\d+) stream (\d+)\.`)
	// tileStream matches the last line of a tile that came over a
	// stream, giving its session and stream ids.
	tileStream = regexp.MustCompile(`>s(\d+) · stream (\d+)<`)
)

// TestDemo loads the demo page in Chromium, waits for every tile, and
// checks that the page and the tiles came over HTTP/2 on one connection,
// each tile on a stream of its own as it says, with no console error.
func TestDemo(t *testing.T) {
	requireChromium(t)
	reference := os.Getenv("BROWSERTEST_REFERENCE") == "1"
	mode, url := "spdymux", ""
	if reference {
		mode, url = "reference", serveReference(t)
	} else {
		url = serveSpdymux(t)
	}
	ctx := newBrowser(t)
	rec := &recorder{}
	if err := chromedp.Listen(ctx, rec.event); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}

	step, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(step, chromedp.Navigate(url)); err != nil {
		t.Fatalf("loading %s: %v", url, err)
	}
	loaded := fmt.Sprintf(`(() => {
		const tiles = Array.from(document.querySelectorAll('img[src^="/tile/"]'));
		return tiles.length === %d && tiles.every(i => i.complete && i.naturalWidth > 0);
	})()`, demo.Tiles)
	if _, err := chromedp.Run(step, chromedp.Poll[bool](loaded, chromedp.WithPollingTimeout(stepTimeout))); err != nil {
		t.Fatalf("waiting for the %d tiles to load: %v", demo.Tiles, err)
	}
	facts, err := chromedp.Run(step, chromedp.Evaluate[pageFacts](pageFactsJS))
	if err != nil {
		t.Fatalf("reading the page's performance entries: %v", err)
	}
	shot, err := chromedp.Run(step, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("taking a screenshot: %v", err)
	}
	saveScreenshot(t, fmt.Sprintf("demo-%s-%s.png", mode, strings.ReplaceAll(facts.Navigation, "/", "")), shot)

	// What holds whatever the protocol.
	if len(facts.Tiles) != demo.Tiles {
		t.Errorf("%d tile resource entries; want %d", len(facts.Tiles), demo.Tiles)
	}
	for _, e := range facts.Tiles {
		if e.Protocol != facts.Navigation {
			t.Errorf("%s came over %q, the page over %q; want the same", e.URL, e.Protocol, facts.Navigation)
		}
	}
	page, tiles := rec.split(url)
	if page == nil {
		t.Fatalf("no Network.responseReceived for the page %s", url)
	}
	if len(tiles) != demo.Tiles {
		t.Errorf("Network.responseReceived for %d tiles; want %d", len(tiles), demo.Tiles)
	}
	for _, ev := range append([]*network.EventResponseReceived{page}, tiles...) {
		if ev.Response.Status != 200 {
			t.Errorf("%s: status %d; want 200", ev.Response.URL, ev.Response.Status)
		}
	}
	for _, e := range rec.problems() {
		t.Errorf("console: %s", e)
	}
	conns := connections(page, tiles)

	if facts.Navigation == "http/1.1" && !reference {
		// Until spdymux offers h2: the page must still say what it is.
		for _, want := range []string{"This page came over HTTP/1.1 over TLS.", "HTTP/1.1 carries one request at a time per connection"} {
			if !strings.Contains(facts.Text, want) {
				t.Errorf("the HTTP/1.1 page does not say %q:\n%s", want, facts.Text)
			}
		}
		t.Skipf("spdymux does not negotiate h2 yet: Chromium got http/1.1 (the page and %d tiles over %d connections)", len(tiles), conns)
	}

	// HTTP/2, as a browser gets it.
	if facts.Navigation != "h2" {
		t.Fatalf("navigation nextHopProtocol %q; want h2", facts.Navigation)
	}
	for _, e := range facts.Tiles {
		if e.Protocol != "h2" {
			t.Errorf("%s: nextHopProtocol %q; want h2", e.URL, e.Protocol)
		}
	}
	if conns != 1 {
		t.Errorf("the page and its tiles came over %d connections; want 1", conns)
	}
	if !strings.Contains(facts.Text, "This page came over HTTP/2") {
		t.Errorf("the page does not say it came over HTTP/2:\n%s", facts.Text)
	}
	if !reference {
		checkStreams(t, ctx, facts.Text, tiles)
		if os.Getenv("UPDATE_SCREENSHOT") == "1" && !t.Failed() {
			out := filepath.Join("..", "..", "docs", "demo-h2.png")
			if err := os.WriteFile(out, shot, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s", out)
		}
	}
}

// checkStreams checks what only spdymux can tell: the page names the
// HTTP/2 session and stream it came over, and every tile names the same
// session and a stream of its own.
func checkStreams(t *testing.T, ctx context.Context, text string, tiles []*network.EventResponseReceived) {
	t.Helper()
	m := pageStream.FindStringSubmatch(text)
	if m == nil {
		t.Errorf("the page does not name its HTTP/2 session and stream:\n%s", text)
		return
	}
	session, streams := m[1], map[string]string{m[2]: "the page"}
	for _, ev := range tiles {
		step, cancel := context.WithTimeout(ctx, stepTimeout)
		body, err := chromedp.Call(step, network.GetResponseBody, network.GetResponseBodyParams{RequestID: ev.RequestID})
		cancel()
		if err != nil {
			t.Errorf("%s: reading the body: %v", ev.Response.URL, err)
			continue
		}
		svg := string(body.Body)
		m := tileStream.FindStringSubmatch(svg)
		if m == nil || !strings.Contains(svg, ">HTTP/2<") {
			t.Errorf("%s does not name HTTP/2, its session and its stream:\n%s", ev.Response.URL, svg)
			continue
		}
		if m[1] != session {
			t.Errorf("%s came over session %s, the page over %s; want one session", ev.Response.URL, m[1], session)
		}
		if prev, ok := streams[m[2]]; ok {
			t.Errorf("%s and %s both name stream %s", ev.Response.URL, prev, m[2])
		}
		streams[m[2]] = ev.Response.URL
	}
}

// requireChromium skips the test when Chromium is missing, or fails it in
// CI, where it must be installed.
func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no Chromium (apt-get install chromium): %v", err)
		}
		t.Skipf("no Chromium (apt-get install chromium): %v", err)
	}
}

// serveSpdymux runs `spdymux serve` in process as a user runs it: the demo
// site over TLS on 127.0.0.1 with a self-signed certificate made at start.
// It returns the URL of the page. At the end of the test the server gets
// SIGINT, as from a terminal, and must exit 0.
func serveSpdymux(t *testing.T) string {
	t.Helper()
	pr, pw := io.Pipe()
	var stdout, stderr syncBuffer
	exited := make(chan int, 1)
	go func() {
		// The log (stderr) names the listener's URL at level info.
		code := cli.Main([]string{"serve", "-listen", "127.0.0.1:0", "-log-level", "info", "-shutdown-timeout", "5s"}, &stdout, pw)
		pw.Close()
		exited <- code
	}()
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			stderr.Write([]byte(line + "\n"))
			if !strings.Contains(line, `msg="listening for TLS"`) {
				continue
			}
			for _, f := range strings.Fields(line) {
				if f, ok := strings.CutPrefix(f, "url="); ok && strings.HasPrefix(f, "https://") {
					select {
					case urls <- f:
					default:
					}
				}
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case url := <-urls:
		t.Cleanup(func() { stopServe(t, exited, &stdout, &stderr) })
		return url
	case code := <-exited:
		t.Fatalf("spdymux serve exited %d before it listened:\n%s%s", code, &stdout, &stderr)
	case <-time.After(stepTimeout):
		t.Fatalf("spdymux serve printed no https URL within %v:\n%s%s", stepTimeout, &stdout, &stderr)
	}
	return ""
}

// stopServe interrupts the running `spdymux serve` and waits for its exit.
// Main has installed its signal handler by the time it prints its URL, so
// the signal stops it and not the test.
func stopServe(t *testing.T, exited <-chan int, stdout, stderr *syncBuffer) {
	p, err := os.FindProcess(os.Getpid())
	if err == nil {
		err = p.Signal(os.Interrupt)
	}
	if err != nil {
		t.Errorf("interrupting spdymux serve: %v", err)
		return
	}
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("spdymux serve exited %d on SIGINT; want 0", code)
		}
	case <-time.After(stepTimeout):
		t.Errorf("spdymux serve still runs %v after SIGINT", stepTimeout)
	}
	if t.Failed() {
		t.Logf("spdymux serve's output:\n%s%s", stdout, stderr)
	}
}

// serveReference serves the demo handler with net/http's own HTTP/2 over
// TLS: what a browser should see of the page, but without spdymux's
// stream facts.
func serveReference(t *testing.T) string {
	srv := httptest.NewUnstartedServer(demo.Handler())
	srv.EnableHTTP2 = true
	// Chromium may open a spare connection and close it unused; the
	// server's complaint about that is shown only if the test fails.
	var errs syncBuffer
	srv.Config.ErrorLog = stdlog.New(&errs, "", 0)
	srv.StartTLS()
	t.Cleanup(func() {
		srv.Close()
		if t.Failed() {
			t.Logf("net/http server's error log:\n%s", &errs)
		}
	})
	return srv.URL + "/"
}

// newBrowser starts a headless Chromium with a fresh profile and returns a
// chromedp context for one tab. The browser ends with the test.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	var out syncBuffer
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true), // QUIC would hide the one TCP connection
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("ignore-certificate-errors", true), // the certificate is self-signed
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 800),
		chromedp.CombinedOutput(&out),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	// Cleanups run last first: the tab, then the browser, whose exit the
	// allocator's cancel waits for, then the removal of its profile.
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		if t.Failed() {
			t.Logf("Chromium's output:\n%s", &out)
		}
	})
	return ctx
}

// pageFacts is what the page itself tells of how it was loaded.
type pageFacts struct {
	// Navigation is the page's nextHopProtocol: "h2", "http/1.1".
	Navigation string `json:"navigation"`
	// Tiles are the resource entries of the tiles.
	Tiles []struct {
		URL      string `json:"url"`
		Protocol string `json:"protocol"`
	} `json:"tiles"`
	// Text is the page's text as shown.
	Text string `json:"text"`
}

const pageFactsJS = `(() => {
	const nav = performance.getEntriesByType('navigation')[0];
	const tiles = performance.getEntriesByType('resource')
		.filter(e => new URL(e.name).pathname.startsWith('/tile/'))
		.map(e => ({url: e.name, protocol: e.nextHopProtocol}));
	return {navigation: nav ? nav.nextHopProtocol : '', tiles: tiles, text: document.body.innerText};
})()`

// recorder keeps the DevTools events the test looks at. Its event method
// runs on chromedp's reading goroutine; the test reads what it kept.
type recorder struct {
	mu        sync.Mutex
	responses []*network.EventResponseReceived
	errors    []string
}

func (r *recorder) event(ev any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventResponseReceived:
		r.responses = append(r.responses, ev)
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError {
			var args []string
			for _, a := range ev.Args {
				args = append(args, remoteText(a))
			}
			r.errors = append(r.errors, "console.error("+strings.Join(args, ", ")+")")
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg := d.Text
		if d.Exception != nil {
			msg += " " + remoteText(d.Exception)
		}
		r.errors = append(r.errors, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber, msg))
	case *log.EventEntryAdded:
		if e := ev.Entry; e.Level == log.EntryLevelError {
			r.errors = append(r.errors, fmt.Sprintf("%s error: %s (%s)", e.Source, e.Text, e.URL))
		}
	}
}

func remoteText(o *runtime.RemoteObject) string {
	if o.Description != "" {
		return o.Description
	}
	return string(o.Value)
}

// problems returns the console errors and exceptions seen so far.
func (r *recorder) problems() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.errors...)
}

// split returns the response to the page at url and those to its tiles.
func (r *recorder) split(url string) (page *network.EventResponseReceived, tiles []*network.EventResponseReceived) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range r.responses {
		switch u := ev.Response.URL; {
		case u == url:
			page = ev
		case strings.HasPrefix(u, strings.TrimSuffix(url, "/")+"/tile/"):
			tiles = append(tiles, ev)
		}
	}
	return page, tiles
}

// connections returns how many connections the responses came over, told
// apart by the DevTools connection id.
func connections(page *network.EventResponseReceived, tiles []*network.EventResponseReceived) int {
	ids := map[float64]bool{page.Response.ConnectionID: true}
	for _, ev := range tiles {
		ids[ev.Response.ConnectionID] = true
	}
	return len(ids)
}

// saveScreenshot writes png to $SCREENSHOT_DIR, or to the test's temporary
// directory.
func saveScreenshot(t *testing.T, name string, png []byte) {
	t.Helper()
	dir := os.Getenv("SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", p, len(png))
}

// syncBuffer is a bytes.Buffer for one writer goroutine and a reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
