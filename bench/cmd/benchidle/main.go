// Command benchidle measures what idle HTTP/2 sessions cost a server when
// there are more of them than the process may open files: it serves the
// demo site's handler (internal/demo) over in-memory connections
// (net.Pipe), opens -n sessions, each of which sends the client preface
// and one GET /hello and reads the answer, and then reports the server's
// heap, goroutine stacks and RSS per idle session as one JSON line.
//
//	benchidle -server spdymux -n 50000
//	benchidle -server nethttp -n 50000
//
// -server spdymux is spdymux.Listener as `spdymux serve` and benchserver
// -spdy configure it (handler mode, one worker pool); -server nethttp is
// net/http's HTTP/2 with prior knowledge (benchserver -h2c). Both accept
// from the same in-memory listener, so the server code is the one that
// serves TCP: only the socket is missing.
//
// The client side lives in the same process. Its sessions are driven by
// -workers goroutines that reuse one read buffer each and exit before the
// measurement, so what stays is each session's pair of pipe ends. That is
// measured on its own first (the pipes are made, collected and counted
// before the server sees them) and reported apart: pipe_heap_bytes. The
// per-session heap and stacks exclude it; RSS cannot be split, so rss
// includes it (a kernel socket's buffers are not in a process's RSS
// either way). The figures are deltas from the server's state, after two
// forced collections, before the first session was opened.
package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2/hpack"

	"github.com/spdymux/spdymux"
	"github.com/spdymux/spdymux/internal/demo"
)

type result struct {
	Server     string  `json:"server"`
	Sessions   int     `json:"sessions"`
	HeapEach   float64 `json:"heap_bytes_each"`
	StackEach  float64 `json:"stack_bytes_each"`
	RSSEach    float64 `json:"rss_bytes_each"`
	RSSTotal   int64   `json:"rss_bytes_total"`
	PipeEach   float64 `json:"pipe_heap_bytes_each"`
	Goroutines [2]int  `json:"goroutines"` // before, after
	Seconds    float64 `json:"setup_seconds"`
}

type figures struct {
	heap, stack, rss int64
	goroutines       int
}

func measure() figures {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return figures{heap: int64(m.HeapAlloc), stack: int64(m.StackInuse), rss: rss(), goroutines: runtime.NumGoroutine()}
}

// rss is the process's resident set size from /proc/self/status.
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kib, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kib << 10
		}
	}
	return 0
}

// memListener hands out the server ends of in-memory connections.
type memListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *memListener) Addr() net.Addr { return memAddr{} }

type memAddr struct{}

func (memAddr) Network() string { return "memory" }
func (memAddr) String() string  { return "memory" }

func serve(kind string, ln net.Listener) error {
	handler := demo.Handler()
	srv := &http.Server{Handler: handler, ErrorLog: log.New(io.Discard, "", 0)}
	switch kind {
	case "spdymux":
		cfg := &spdymux.Config{
			Pool:    spdymux.NewPool(1024),
			Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
			Handler: handler,
		}
		l := spdymux.NewListener(ln, cfg)
		spdymux.ConfigureServer(srv)
		go srv.Serve(l)
	case "nethttp":
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
		go srv.Serve(ln)
	default:
		return fmt.Errorf("unknown -server %q (spdymux or nethttp)", kind)
	}
	return nil
}

// request is what every client sends: the preface, an empty SETTINGS
// frame and GET /hello on stream 1, ending the stream.
func request() []byte {
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "localhost"}, {":path", "/hello"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	b := []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	b = appendFrame(b, 0x4, 0, 0, nil)
	return appendFrame(b, 0x1, 0x1|0x4, 1, block.Bytes()) // END_STREAM | END_HEADERS
}

func appendFrame(b []byte, typ, flags byte, stream uint32, payload []byte) []byte {
	n := len(payload)
	b = append(b, byte(n>>16), byte(n>>8), byte(n), typ, flags)
	b = binary.BigEndian.AppendUint32(b, stream)
	return append(b, payload...)
}

var settingsAck = appendFrame(nil, 0x4, 0x1, 0, nil)

// exchange sends the request on c and reads frames until stream 1 ends,
// acknowledging the server's SETTINGS; buf is the worker's.
func exchange(c net.Conn, req []byte, buf []byte, timeout time.Duration) error {
	c.SetDeadline(time.Now().Add(timeout))
	defer c.SetDeadline(time.Time{})
	// net.Pipe is unbuffered: the request is written while the
	// server's answer is read.
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(req)
		werr <- err
	}()
	var hdr [9]byte
	acked := false
	for {
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return fmt.Errorf("reading a frame: %w", err)
		}
		n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
		typ, flags := hdr[3], hdr[4]
		stream := binary.BigEndian.Uint32(hdr[5:]) & 0x7fffffff
		if n > len(buf) {
			return fmt.Errorf("a %d-byte frame", n)
		}
		if _, err := io.ReadFull(c, buf[:n]); err != nil {
			return fmt.Errorf("reading a frame: %w", err)
		}
		switch {
		case typ == 0x4 && flags&0x1 == 0 && !acked:
			if err := <-werr; err != nil {
				return fmt.Errorf("writing the request: %w", err)
			}
			go func() {
				_, err := c.Write(settingsAck)
				werr <- err
			}()
			acked = true
		case typ == 0x3 || typ == 0x7: // RST_STREAM, GOAWAY
			return fmt.Errorf("frame type %d from the server", typ)
		case stream == 1 && (typ == 0x0 || typ == 0x1) && flags&0x1 != 0:
			if !acked {
				return errors.New("the answer came before the server's SETTINGS")
			}
			return <-werr
		}
	}
}

func main() {
	var (
		kind    string
		n       int
		workers int
		timeout time.Duration
		settle  time.Duration
		memprof string
	)
	flag.StringVar(&kind, "server", "spdymux", "`server` to measure: spdymux or nethttp")
	flag.IntVar(&n, "n", 50000, "idle sessions to open")
	flag.IntVar(&workers, "workers", 64, "sessions opened at once")
	flag.DurationVar(&timeout, "timeout", 30*time.Second, "time allowed for one session's request")
	flag.DurationVar(&settle, "settle", 3*time.Second, "wait after the last session before measuring, for handlers to finish")
	flag.StringVar(&memprof, "memprofile", "", "write a heap profile of the idle sessions to `file`")
	flag.Parse()
	log.SetPrefix("benchidle: ")
	log.SetFlags(0)

	ln := &memListener{conns: make(chan net.Conn), done: make(chan struct{})}
	if err := serve(kind, ln); err != nil {
		log.Fatal(err)
	}
	req := request()

	// The pipes alone, so that they can be left out.
	base := measure()
	clients := make([]net.Conn, n)
	servers := make([]net.Conn, n)
	for i := range n {
		clients[i], servers[i] = net.Pipe()
	}
	withPipes := measure()
	pipeHeap := withPipes.heap - base.heap

	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			buf := make([]byte, 1<<14+9)
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				ln.conns <- servers[i]
				servers[i] = nil
				if err := exchange(clients[i], req, buf, timeout); err != nil {
					errc <- fmt.Errorf("session %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		log.Fatal(err)
	}
	setup := time.Since(start)
	time.Sleep(settle)
	after := measure()

	per := func(d int64) float64 { return float64(d) / float64(n) }
	res := result{
		Server:     kind,
		Sessions:   n,
		HeapEach:   per(after.heap - withPipes.heap),
		StackEach:  per(after.stack - base.stack),
		RSSEach:    per(after.rss - base.rss),
		RSSTotal:   after.rss,
		PipeEach:   per(pipeHeap),
		Goroutines: [2]int{base.goroutines, after.goroutines},
		Seconds:    setup.Seconds(),
	}
	json.NewEncoder(os.Stdout).Encode(res)
	if memprof != "" {
		f, err := os.Create(memprof)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			log.Fatal(err)
		}
		f.Close()
	}
	runtime.KeepAlive(clients)
}
