package spdymux

import (
	"bytes"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"golang.org/x/sys/unix"
)

// capturingListener records the sockets it accepts.
type capturingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*net.TCPConn
}

func (l *capturingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		l.mu.Lock()
		l.conns = append(l.conns, tc)
		l.mu.Unlock()
	}
	return c, err
}

func (l *capturingListener) last(t *testing.T) *net.TCPConn {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.conns) == 0 {
		t.Fatal("no connection accepted")
	}
	return l.conns[len(l.conns)-1]
}

func sockopt(t *testing.T, c *net.TCPConn, f func(fd int)) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Control(func(fd uintptr) { f(int(fd)) }); err != nil {
		t.Fatal(err)
	}
}

func notSentLowat(t *testing.T, c *net.TCPConn) int {
	var v int
	var err error
	sockopt(t, c, func(fd int) { v, err = unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT) })
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestNotSentLowatWrappers: the option reaches the socket through the
// wrappers a Listener meets.
func TestNotSentLowatWrappers(t *testing.T) {
	raw, _ := tcpPair(t)
	tc := raw.(*net.TCPConn)
	for i, c := range []net.Conn{
		tc,
		tls.Client(tc, &tls.Config{}),
		proxyproto.NewConn(tc),
		tls.Server(proxyproto.NewConn(tc), &tls.Config{}),
		&wakeConn{Conn: tc},
	} {
		n := 4096 * (i + 1)
		if !setNotSentLowat(c, n) {
			t.Fatalf("%T: not set", c)
		}
		if got := notSentLowat(t, tc); got != n {
			t.Errorf("%T: TCP_NOTSENT_LOWAT %d, want %d", c, got, n)
		}
	}
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	if setNotSentLowat(p1, 4096) {
		t.Error("set on a net.Pipe")
	}
}

// TestNotSentLowatBoundsKernelQueue: with a client that stops reading a
// download its window allows, the session's socket holds about
// NotSentLowat unsent bytes, not the megabytes of a grown send buffer, so
// a response of higher priority is not queued behind them.
func TestNotSentLowatBoundsKernelQueue(t *testing.T) {
	for _, lowat := range []int{0, -1} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cl := &capturingListener{Listener: ln}
		big := bytes.Repeat([]byte("x"), 64<<10)
		l := NewListener(cl, &Config{NotSentLowat: lowat, Logger: discardLogger,
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for r.Context().Err() == nil {
					if _, err := w.Write(big); err != nil {
						return
					}
				}
			})})
		go l.Accept()

		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		// A small receive buffer that the client never drains: the
		// server's sending stops at once, and what it writes more stays
		// in its own socket.
		c.(*net.TCPConn).SetReadBuffer(64 << 10)
		var buf bytes.Buffer
		buf.WriteString(http2.ClientPreface)
		fr := http2.NewFramer(&buf, nil)
		fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1})
		fr.WriteWindowUpdate(0, 1<<31-1-65535)
		var hb bytes.Buffer
		enc := hpack.NewEncoder(&hb)
		for _, f := range h2Request("GET", "/") {
			enc.WriteField(f)
		}
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
		if _, err := c.Write(buf.Bytes()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		sc := cl.last(t)
		var most uint32
		for range 20 {
			var info *unix.TCPInfo
			sockopt(t, sc, func(fd int) { info, err = unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO) })
			if err != nil {
				t.Fatal(err)
			}
			most = max(most, info.Notsent_bytes)
			time.Sleep(20 * time.Millisecond)
		}
		set := notSentLowat(t, sc)
		c.Close()
		l.Close()
		if lowat == -1 {
			t.Logf("without TCP_NOTSENT_LOWAT: up to %d bytes unsent in the kernel", most)
			continue
		}
		if set != DefaultNotSentLowat {
			t.Errorf("TCP_NOTSENT_LOWAT %d, want %d", set, DefaultNotSentLowat)
		}
		// The kernel may take one write's worth past the mark: a turn's
		// batch and a frame.
		if limit := uint32(DefaultNotSentLowat + 256<<10); most > limit {
			t.Errorf("up to %d bytes unsent in the kernel, want at most %d", most, limit)
		}
		t.Logf("with TCP_NOTSENT_LOWAT %d: up to %d bytes unsent in the kernel", DefaultNotSentLowat, most)
	}
}
