package spdymux

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/spdymux/spdymux/spdy"
)

// BenchmarkIdleSessionHeap measures the heap a SPDY/3.1 session holds
// while idle after serving one request, so that both of its compression
// contexts exist: the figure is "heap-B/session". Sessions run over
// net.Pipe; the client side replays pre-encoded frames and keeps nothing.
func BenchmarkIdleSessionHeap(b *testing.B) {
	for _, proto := range []string{ProtoSPDY31, ProtoSPDY2} {
		b.Run(proto, func(b *testing.B) {
			const sessions = 1000
			v := spdy.V3
			if proto == ProtoSPDY2 {
				v = spdy.V2
			}
			var req bytes.Buffer
			fr := spdy.NewFramer(&req, nil, v)
			path, host := ":path", ":host"
			hdr := []spdy.HeaderField{{Name: ":method", Value: "GET"}, {Name: path, Value: "/hello"}, {Name: ":version", Value: "HTTP/1.1"}, {Name: host, Value: "localhost"}, {Name: ":scheme", Value: "https"}, {Name: "user-agent", Value: "bench"}}
			if v == spdy.V2 {
				hdr = []spdy.HeaderField{{Name: "method", Value: "GET"}, {Name: "url", Value: "/hello"}, {Name: "version", Value: "HTTP/1.1"}, {Name: "host", Value: "localhost"}, {Name: "scheme", Value: "https"}, {Name: "user-agent", Value: "bench"}}
			}
			fr.WriteSynStream(&spdy.SynStreamFrame{StreamID: 1, Flags: spdy.FlagFin, Header: hdr})
			wire := req.Bytes()

			for b.Loop() {
				pl := newPipeListener()
				cfg := (&Config{Logger: discardLogger, CleartextV3: proto, IdleTimeout: -1}).settings()
				l := newListener(pl, cfg)
				srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					io.WriteString(w, "hello, world\n")
				})}
				ConfigureServer(srv)
				go srv.Serve(l)
				var clients []net.Conn
				runtime.GC()
				var before runtime.MemStats
				runtime.ReadMemStats(&before)
				for range sessions {
					c, s := net.Pipe()
					pl.ch <- s
					clients = append(clients, c)
					go func() {
						c.Write(wire)
						// Read until the response's DATA frame with FIN.
						buf := make([]byte, 512)
						var got []byte
						for !bytes.Contains(got, []byte("hello, world\n")) {
							n, err := c.Read(buf)
							if err != nil {
								return
							}
							got = append(got, buf[:n]...)
						}
					}()
				}
				waitFor(b, func() bool { return l.Stats().Streams == sessions && l.Stats().ActiveStreams == 0 })
				time.Sleep(50 * time.Millisecond) // let the handlers' goroutines finish
				runtime.GC()
				var after runtime.MemStats
				runtime.ReadMemStats(&after)
				if n := l.Stats().ActiveSessions; n != sessions {
					b.Fatalf("%d sessions open at the measurement; want %d", n, sessions)
				}
				b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/sessions, "heap-B/session")
				b.ReportMetric(float64(int64(after.StackInuse)-int64(before.StackInuse))/sessions, "stack-B/session")
				for _, c := range clients {
					c.Close()
				}
				l.Close()
				srv.Close()
				// Let this round's sessions end before the next one
				// measures.
				waitFor(b, func() bool { return l.Stats().ActiveSessions == 0 })
			}
		})
	}
}

func waitFor(tb testing.TB, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatal("condition not met in 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkScheduler measures the writer's choice and encoding of one DATA
// frame with 100 streams ready at mixed priorities, without a socket.
func BenchmarkScheduler(b *testing.B) {
	c, peer := net.Pipe()
	defer c.Close()
	defer peer.Close()
	cfg := (&Config{Logger: discardLogger}).settings()
	s := newSPDYSession(c, ProtoSPDY31, cfg, &listenerCounters{}, false)
	s.sendFlow.n = maxWindow
	payload := make([]byte, 4096)
	var streams []*stream
	for i := range 100 {
		st := newStream(s, uint32(2*i+1), uint8(i%8))
		st.sendFlow.n = maxWindow
		st.sentHead = true
		s.streams[st.id] = st
		streams = append(streams, st)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wbuf.b = make([]byte, 0, 1<<20)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		for _, st := range streams {
			if st.outLen == 0 {
				st.queueDataLocked(payload)
				st.sendFlow.n = maxWindow
			}
		}
		s.sendFlow.n = maxWindow
		if !s.nextFrameLocked() {
			b.Fatal("nothing to write")
		}
		s.wbuf.b = s.wbuf.b[:0]
	}
}

// BenchmarkRequestOneSession measures requests per second over one
// SPDY/3.1 session on loopback with 100 streams in flight, the handler
// returning 13 bytes; the client is a scripted framer, so the figure is
// the server's cost.
func BenchmarkRequestOneSession(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	l := NewListener(ln, &Config{Logger: discardLogger})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello, world\n")
	})}
	ConfigureServer(srv)
	go srv.Serve(l)
	defer srv.Close()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	cs := newClientSession(conn, ProtoSPDY31, (&Config{Logger: discardLogger}).settings())
	defer cs.close(nil)
	hdr := []spdy.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":path", Value: "/hello"}, {Name: ":version", Value: "HTTP/1.1"}, {Name: ":host", Value: "localhost"}, {Name: ":scheme", Value: "http"}}
	const inFlight = 100
	work := make(chan struct{}, inFlight)
	errs := make(chan error, inFlight)
	b.ReportAllocs()
	start := time.Now()
	b.ResetTimer()
	for range inFlight {
		go func() {
			buf := make([]byte, 64)
			for range work {
				st, err := cs.openStream(b.Context(), hdr, 0, true)
				if err != nil {
					errs <- err
					return
				}
				if _, err := st.waitReply(b.Context()); err != nil {
					errs <- err
					return
				}
				rc := newRawConn(st)
				n, err := io.ReadFull(rc, buf[:13])
				if err != nil || n != 13 {
					errs <- fmt.Errorf("body: %d bytes, %v", n, err)
					return
				}
				rc.Close()
				errs <- nil
			}
		}()
	}
	go func() {
		for range b.N {
			work <- struct{}{}
		}
		close(work)
	}()
	for range b.N {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}
