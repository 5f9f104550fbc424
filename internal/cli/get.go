package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spdymux/spdymux"
)

// getOptions are the flags of `spdymux get`.
type getOptions struct {
	clientFlags
	verbose   bool
	output    string
	outputSet bool // -o was given, "-" included: write binary to a terminal
	priority  int
	include   bool
	fail      bool
	timeout   time.Duration
	maxTime   time.Duration
}

// getProtos are the values of get's -proto.
var getProtos = []string{spdymux.ProtoH2, spdymux.ProtoH2C, spdymux.ProtoSPDY31, spdymux.ProtoSPDY3, spdymux.ProtoSPDY2}

func (o *getOptions) flags() *flag.FlagSet {
	fs := flag.NewFlagSet("spdymux get", flag.ContinueOnError)
	o.register(fs, "", "`protocol` to speak: h2 (HTTP/2: ALPN h2 on https, h2c with prior knowledge on http), h2c (http only), "+
		"or spdy/3.1, spdy/3 or spdy/2 (offered alone by ALPN on https, spoken on http) (default: offer the three SPDY versions on https, spdy/3.1 on http)")
	fs.BoolVar(&o.verbose, "v", false, "print a trace of every frame sent and received to stderr (SPDY and HTTP/2), "+
		"and after each response its trailers and, on SPDY, the responses the server pushed with it (taken only with -v)")
	fs.StringVar(&o.output, "o", "-", "write the response body to `FILE` (one URL only); - for stdout, binary or not")
	fs.IntVar(&o.priority, "p", spdymux.DefaultPriority, "stream `priority`, 0 (highest) to 7; halved on SPDY/2, sent as the RFC 9218 urgency (priority: u=N) on HTTP/2")
	fs.BoolVar(&o.include, "i", false, "write the response status line and headers before the body")
	fs.BoolVar(&o.fail, "f", false, "fail on a response status of 400 or more: write no body, exit 22 (as curl --fail)")
	fs.BoolVar(&o.fail, "fail", false, "the same as -f")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "give up on a request whose response header has not come after this `duration`; 0 for none")
	fs.DurationVar(&o.maxTime, "max-time", 0, "give up on a request, body included, after this `duration` (default none)")
	return fs
}

const getUsageHead = `Usage: spdymux get [flags] URL...

Fetches the URLs concurrently over SPDY, or over HTTP/2 with -proto h2, one
session per origin (scheme, host and port), and writes the response bodies to
stdout in the order of the URLs. For each URL it prints to stderr the status,
the negotiated protocol and the timing: connect and TLS (for the request that
opened its session), first byte of the response and total.

As curl, any response status counts as success unless -f is given; a binary
body (one with a NUL byte) is not written to a terminal unless -o says so.
Exit status: 0 success, 1 a request failed, 2 a bad command line, 22 with -f
a response status of 400 or more.

The HTTP/2 client is golang.org/x/net/http2's; -v traces its frames by
decoding a copy of the bytes of each connection (after TLS).

Flags:
`

func runGet(ctx context.Context, e *env, args []string) (int, error) {
	var o getOptions
	fs := o.flags()
	if err := parseFlags(e, fs, args, getUsageHead, ""); err != nil {
		return exitUsage, err
	}
	fs.Visit(func(f *flag.Flag) { o.outputSet = o.outputSet || f.Name == "o" })
	urls, err := o.check(fs.Args())
	if err != nil {
		return exitUsage, err
	}
	body, err := o.body()
	if err != nil {
		return exitUsage, err
	}

	sn := &sniffer{want: "SPDY", silence: o.connectTimeout}
	if isH2(o.proto) {
		sn.want = "HTTP/2"
	}
	pushes := &pushRegistry{}
	tr := o.transport(e, sn, pushes)
	defer tr.CloseIdleConnections()

	out := e.stdout
	// As curl: no binary body to a terminal unless -o says so.
	guard := !o.outputSet && e.terminal(out)
	if o.output != "-" {
		f, err := os.Create(o.output)
		if err != nil {
			return exitFailure, fmt.Errorf("-o: %w", err)
		}
		defer f.Close()
		out = f
	}

	// One URL streams its body to the output; several are buffered and
	// written in order, so that their bodies do not interleave.
	fetches := make([]*fetch, len(urls))
	for i, u := range urls {
		f := &fetch{url: u, done: make(chan struct{}), head: out, pushes: pushes}
		if len(urls) == 1 {
			f.out = out
		} else {
			f.buf = &bytes.Buffer{}
			f.head, f.out = f.buf, f.buf
		}
		if guard {
			f.out = &binaryGuard{w: f.out}
		}
		fetches[i] = f
		go f.run(ctx, tr, &o, body)
	}
	failed, httpFailed := 0, 0
	for _, f := range fetches {
		<-f.done
		if f.buf != nil {
			if _, err := f.buf.WriteTo(out); err != nil {
				return exitFailure, fmt.Errorf("writing the body: %w", err)
			}
		}
		if f.err != nil {
			failed++
			fmt.Fprintf(e.stderr, "%s %s: %v\n", f.method, f.url, sn.explain(f.err))
			continue
		}
		fmt.Fprintln(e.stderr, f.summary())
		if o.verbose {
			for _, l := range f.details() {
				fmt.Fprintln(e.stderr, l)
			}
		}
		if o.fail && f.code >= 400 {
			httpFailed++
		}
	}
	switch {
	case failed > 0:
		return exitFailure, fmt.Errorf("%d of %d requests failed", failed, len(urls))
	case httpFailed > 0:
		return exitHTTP, fmt.Errorf("%d of %d responses had a status of 400 or more (-f)", httpFailed, len(urls))
	}
	return exitOK, nil
}

// errBinary stops a binary body on its way to a terminal.
var errBinary = errors.New("binary body not written to the terminal: use -o FILE, or -o - to write it anyway")

// binaryGuard passes a body on to w unless its first bytes hold a NUL, as
// curl tells binary output.
type binaryGuard struct {
	w       io.Writer
	checked bool
}

func (g *binaryGuard) Write(p []byte) (int, error) {
	if !g.checked {
		g.checked = true
		if bytes.IndexByte(p[:min(len(p), 2000)], 0) >= 0 {
			return 0, errBinary
		}
	}
	return g.w.Write(p)
}

// check validates the flags and the URLs.
func (o *getOptions) check(args []string) ([]*url.URL, error) {
	if len(args) == 0 {
		return nil, errors.New("no URL given (run 'spdymux get -h')")
	}
	if o.priority < 0 || o.priority > 7 {
		return nil, fmt.Errorf("bad -p %d: want 0 to 7", o.priority)
	}
	if o.output != "-" && len(args) > 1 {
		return nil, errors.New("-o takes one URL only")
	}
	if o.timeout < 0 {
		return nil, fmt.Errorf("bad -timeout %v", o.timeout)
	}
	if o.maxTime < 0 {
		return nil, fmt.Errorf("bad -max-time %v", o.maxTime)
	}
	if err := o.checkShared(); err != nil {
		return nil, err
	}
	var urls []*url.URL
	for _, a := range args {
		u, err := parseURL(a)
		if err != nil {
			return nil, err
		}
		urls = append(urls, u)
	}
	if o.proto != "" {
		if err := o.checkProto(getProtos, urls...); err != nil {
			return nil, err
		}
	}
	return urls, nil
}

func validMethod(m string) bool {
	for _, c := range m {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, c) {
			return false
		}
	}
	return m != ""
}

// requestBody is the -d body: bytes, or a file read afresh for each
// request.
type requestBody struct {
	data []byte
	file string
	size int64
}

func (o *clientFlags) body() (*requestBody, error) {
	if o.data == "" {
		return nil, nil
	}
	if name, ok := strings.CutPrefix(o.data, "@"); ok {
		st, err := os.Stat(name)
		if err != nil {
			return nil, fmt.Errorf("-d: %w", err)
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("-d: %s is not a regular file", name)
		}
		return &requestBody{file: name, size: st.Size()}, nil
	}
	return &requestBody{data: []byte(o.data), size: int64(len(o.data))}, nil
}

func (b *requestBody) open() (io.ReadCloser, error) {
	if b.file != "" {
		return os.Open(b.file)
	}
	return io.NopCloser(bytes.NewReader(b.data)), nil
}

// roundTripper is a client Transport of get or bench.
type roundTripper interface {
	http.RoundTripper
	CloseIdleConnections()
}

// transport makes the client for -proto, -k and -connect-timeout,
// tracing frames to e.stderr with -v; sn checks its connections.
func (o *getOptions) transport(e *env, sn *sniffer, pushes *pushRegistry) roundTripper {
	if isH2(o.proto) {
		h2 := h2Options{tls: o.tlsConfig(), dial: sn.dial(0), connectTimeout: o.connectTimeout}
		if o.verbose {
			h2.wrap = (&frameTrace{w: e.stderr}).wrap
		}
		return newH2Client(h2)
	}
	tr := &spdymux.Transport{TLSClientConfig: o.tlsConfig(), DialContext: sn.dial(0), DialTimeout: o.connectTimeout}
	if o.connectTimeout == 0 {
		tr.DialTimeout = 24 * time.Hour // none, in effect
	}
	if o.proto != "" {
		tr.Protocols = []string{o.proto}
		tr.PlainProtocol = o.proto
	}
	if o.verbose {
		var mu sync.Mutex
		tr.Trace = func(ev spdymux.FrameEvent) {
			mu.Lock()
			fmt.Fprintln(e.stderr, ev)
			mu.Unlock()
		}
		tr.PushHandler = pushes.handle
	}
	return tr
}

// pushRegistry takes the responses a SPDY server pushes (with -v) and
// gives each to the fetch whose request it came with.
type pushRegistry struct{ fetches sync.Map } // *http.Request → *fetch

// handle is the Transport's PushHandler: it runs on the session's reader,
// before the end of the associated response's body, so the fetch waits
// for every push it counts here.
func (r *pushRegistry) handle(p *spdymux.Push) {
	v, ok := r.fetches.Load(p.Associated)
	if !ok {
		p.Cancel()
		return
	}
	f := v.(*fetch)
	resp, err := p.Response()
	if err != nil {
		return
	}
	f.pushWG.Add(1)
	go func() {
		defer f.pushWG.Done()
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		line := fmt.Sprintf("  pushed GET %s: %s, %d bytes", p.Request.URL, resp.Status, n)
		if err != nil {
			line += fmt.Sprintf(" (%v)", err)
		}
		f.mu.Lock()
		f.pushed = append(f.pushed, line)
		f.mu.Unlock()
	}()
}

// fetch is one URL of a get.
type fetch struct {
	url    *url.URL
	method string
	head   io.Writer     // -i's status line and header
	out    io.Writer     // the body
	buf    *bytes.Buffer // head and out when several URLs are fetched
	done   chan struct{}

	pushes *pushRegistry
	pushWG sync.WaitGroup // the pushes being read
	mu     sync.Mutex
	pushed []string // a line for each push read, guarded by mu

	// Set by run before done is closed:
	err                  error
	code                 int
	status, proto        string
	bytes                int64
	start                time.Time
	connect, tlsTime     time.Duration // zero for a session already open
	firstByte, total     time.Duration
	connectStart, tlsBeg time.Time
	trailer              http.Header
}

func (f *fetch) run(ctx context.Context, tr http.RoundTripper, o *getOptions, body *requestBody) {
	defer close(f.done)
	f.method = o.requestMethod()
	if o.maxTime > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.maxTime)
		defer cancel()
	}
	// -timeout bounds the wait for the response header only.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	headerTimer := time.AfterFunc(max(o.timeout, 0), func() {
		if o.timeout > 0 {
			cancel(fmt.Errorf("no response header within %v (-timeout)", o.timeout))
		}
	})
	defer headerTimer.Stop()
	var mu sync.Mutex // the trace's callbacks may run on other goroutines
	trace := &httptrace.ClientTrace{
		ConnectStart: func(string, string) { mu.Lock(); f.connectStart = time.Now(); mu.Unlock() },
		ConnectDone: func(string, string, error) {
			mu.Lock()
			f.connect = time.Since(f.connectStart)
			mu.Unlock()
		},
		TLSHandshakeStart: func() { mu.Lock(); f.tlsBeg = time.Now(); mu.Unlock() },
		TLSHandshakeDone: func(tls.ConnectionState, error) {
			mu.Lock()
			f.tlsTime = time.Since(f.tlsBeg)
			mu.Unlock()
		},
		GotFirstResponseByte: func() { mu.Lock(); f.firstByte = time.Since(f.start); mu.Unlock() },
	}
	ctx = spdymux.WithPriority(httptrace.WithClientTrace(ctx, trace), uint8(o.priority))
	req, err := http.NewRequestWithContext(ctx, f.method, f.url.String(), nil)
	if err != nil {
		f.err = err
		return
	}
	req.Header = o.headers.header()
	if h := req.Header.Get("Host"); h != "" {
		req.Host = h
	}
	if isH2(o.proto) && o.priority != spdymux.DefaultPriority && req.Header.Get("Priority") == "" {
		// RFC 9218 §4.1: urgency 0 (highest) to 7, default 3, as SPDY/3's
		// priorities.
		req.Header.Set("Priority", fmt.Sprintf("u=%d", o.priority))
	}
	if body != nil {
		if req.Body, err = body.open(); err != nil {
			f.err = err
			return
		}
		req.ContentLength = body.size
		req.GetBody = body.open
	}
	f.start = time.Now()
	f.pushes.fetches.Store(req, f)
	defer f.pushes.fetches.Delete(req)
	resp, err := tr.RoundTrip(req)
	headerTimer.Stop()
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
			err = cause // the Transport says "context canceled"
		}
		f.err = err
		return
	}
	defer resp.Body.Close()
	f.code, f.status, f.proto = resp.StatusCode, resp.Status, resp.Proto
	if resp.ProtoMajor == 2 {
		f.proto += " (" + wireProto(spdymux.ProtoH2, f.url.Scheme) + ")"
	}
	if o.include {
		fmt.Fprintf(f.head, "%s %s\r\n", resp.Proto, resp.Status)
		resp.Header.Write(f.head)
		io.WriteString(f.head, "\r\n")
	}
	if o.fail && resp.StatusCode >= 400 {
		// As curl --fail: the body of an error is not written.
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		mu.Lock()
		f.total = time.Since(f.start)
		mu.Unlock()
		return
	}
	f.bytes, err = io.Copy(f.out, resp.Body)
	f.pushWG.Wait() // every push was offered before the body's end
	mu.Lock()
	defer mu.Unlock()
	f.total = time.Since(f.start)
	f.trailer = resp.Trailer
	if err != nil {
		f.err = fmt.Errorf("%s after %d body bytes: %w", resp.Status, f.bytes, err)
	}
}

// details are the lines -v prints after a fetch's summary: the pushes
// read with it, then its trailers.
func (f *fetch) details() []string {
	f.mu.Lock()
	lines := slices.Clone(f.pushed)
	f.mu.Unlock()
	slices.Sort(lines)
	for _, k := range slices.Sorted(maps.Keys(f.trailer)) {
		for _, v := range f.trailer[k] {
			lines = append(lines, fmt.Sprintf("  trailer %s: %s", k, v))
		}
	}
	return lines
}

// summary is the line printed to stderr for a fetch that worked.
func (f *fetch) summary() string {
	conn := "session already open"
	if f.connect > 0 {
		conn = "connect " + ms(f.connect)
		if f.tlsTime > 0 {
			conn += ", tls " + ms(f.tlsTime)
		}
	}
	return fmt.Sprintf("%s %s: %s, %s, %d bytes; %s, first byte %s, total %s",
		f.method, f.url, f.status, f.proto, f.bytes, conn, ms(f.firstByte), ms(f.total))
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}
