package spdymux_test

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	ss "github.com/moby/spdystream/spdy"

	"github.com/spdymux/spdymux"
	"github.com/spdymux/spdymux/internal/interop"
)

// ssClient is a SPDY/3 client on github.com/moby/spdystream's framer, an
// implementation of SPDY written independently of this module: the
// compression contexts, frame layouts and header blocks all come from it.
// Flow control is done here: received DATA is credited at once, and
// request bodies wait for the server's stream and session windows.
type ssClient struct {
	t      *testing.T
	conn   net.Conn
	fr     *ss.Framer
	v31    bool
	wmu    sync.Mutex // serialises writes: compression order is write order
	mu     sync.Mutex
	cond   *sync.Cond
	next   ss.StreamId
	window int64 // initial stream send window from SETTINGS
	sess   int64 // session send window (3.1)
	strs   map[ss.StreamId]*ssStream
	pings  map[uint32]bool
	err    error
}

type ssStream struct {
	reply    http.Header
	body     []byte
	fin      bool
	rst      ss.RstStreamStatus
	window   int64
	resetAt  int // reset after this many body bytes (0: never)
	resetted bool
}

func dialSS(t *testing.T, addr string, tlsProto string) *ssClient {
	t.Helper()
	var conn net.Conn
	var err error
	if tlsProto != "" {
		conn, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{tlsProto}})
		if err == nil && conn.(*tls.Conn).ConnectionState().NegotiatedProtocol != tlsProto {
			t.Fatalf("ALPN chose %q, want %q", conn.(*tls.Conn).ConnectionState().NegotiatedProtocol, tlsProto)
		}
	} else {
		conn, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	fr, err := ss.NewFramer(conn, bufio.NewReader(conn))
	if err != nil {
		t.Fatal(err)
	}
	c := &ssClient{t: t, conn: conn, fr: fr, v31: tlsProto != spdymux.ProtoSPDY3, next: 1, window: 65536, sess: 65536,
		strs: map[ss.StreamId]*ssStream{}, pings: map[uint32]bool{}}
	c.cond = sync.NewCond(&c.mu)
	if c.v31 {
		c.write(&ss.WindowUpdateFrame{StreamId: 0, DeltaWindowSize: 1<<30 - 65536})
	}
	go c.readLoop()
	t.Cleanup(func() { conn.Close() })
	return c
}

func (c *ssClient) write(f ss.Frame) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.fr.WriteFrame(f); err != nil {
		c.mu.Lock()
		if c.err == nil {
			c.err = err
		}
		c.cond.Broadcast()
		c.mu.Unlock()
	}
}

func (c *ssClient) readLoop() {
	for {
		f, err := c.fr.ReadFrame()
		c.mu.Lock()
		if err != nil {
			if c.err == nil {
				c.err = err
			}
			c.cond.Broadcast()
			c.mu.Unlock()
			return
		}
		var credit []ss.Frame
		switch f := f.(type) {
		case *ss.SettingsFrame:
			for _, s := range f.FlagIdValues {
				if s.Id == ss.SettingsInitialWindowSize {
					delta := int64(s.Value) - c.window
					c.window = int64(s.Value)
					for _, st := range c.strs {
						st.window += delta
					}
				}
			}
		case *ss.SynReplyFrame:
			st := c.strs[f.StreamId]
			st.reply = f.Headers
			st.fin = f.CFHeader.Flags&ss.ControlFlagFin != 0
		case *ss.DataFrame:
			st := c.strs[f.StreamId]
			if st.resetted {
				break // in flight before our RST_STREAM
			}
			st.body = append(st.body, f.Data...)
			st.fin = f.Flags&ss.DataFlagFin != 0
			if n := uint32(len(f.Data)); n > 0 {
				if !st.fin {
					credit = append(credit, &ss.WindowUpdateFrame{StreamId: f.StreamId, DeltaWindowSize: n})
				}
				if c.v31 {
					credit = append(credit, &ss.WindowUpdateFrame{StreamId: 0, DeltaWindowSize: n})
				}
			}
			if st.resetAt > 0 && len(st.body) >= st.resetAt {
				st.resetted = true
				credit = append(credit, &ss.RstStreamFrame{StreamId: f.StreamId, Status: ss.Cancel})
			}
		case *ss.WindowUpdateFrame:
			if f.StreamId == 0 {
				c.sess += int64(f.DeltaWindowSize)
			} else if st := c.strs[f.StreamId]; st != nil {
				st.window += int64(f.DeltaWindowSize)
			}
		case *ss.RstStreamFrame:
			if st := c.strs[f.StreamId]; st != nil {
				st.rst = f.Status
			}
		case *ss.PingFrame:
			c.pings[f.Id] = true
		case *ss.GoAwayFrame:
			c.err = fmt.Errorf("GOAWAY %d", f.Status)
		}
		c.cond.Broadcast()
		c.mu.Unlock()
		for _, f := range credit {
			c.write(f)
		}
	}
}

// open sends a request; body (if any) is sent within the windows.
func (c *ssClient) open(method, path string, hdr http.Header, body []byte, resetAt int) ss.StreamId {
	h := http.Header{}
	for k, v := range hdr {
		h[k] = v
	}
	h.Set(":method", method)
	h.Set(":path", path)
	h.Set(":version", "HTTP/1.1")
	h.Set(":host", "localhost")
	h.Set(":scheme", "https")
	c.mu.Lock()
	id := c.next
	c.next += 2
	c.strs[id] = &ssStream{window: c.window, resetAt: resetAt}
	c.mu.Unlock()
	var flags ss.ControlFlags
	if body == nil {
		flags = ss.ControlFlagFin
	}
	c.write(&ss.SynStreamFrame{CFHeader: ss.ControlFrameHeader{Flags: flags}, StreamId: id, Headers: h})
	if body != nil {
		go c.sendBody(id, body)
	}
	return id
}

func (c *ssClient) sendBody(id ss.StreamId, body []byte) {
	for len(body) > 0 {
		c.mu.Lock()
		st := c.strs[id]
		for c.err == nil && st.rst == 0 && (st.window <= 0 || c.v31 && c.sess <= 0) {
			c.cond.Wait()
		}
		if c.err != nil || st.rst != 0 {
			c.mu.Unlock()
			return
		}
		n := min(int64(len(body)), 8192, st.window)
		if c.v31 {
			n = min(n, c.sess)
			c.sess -= n
		}
		st.window -= n
		c.mu.Unlock()
		var flags ss.DataFlags
		if int(n) == len(body) {
			flags = ss.DataFlagFin
		}
		c.write(&ss.DataFrame{StreamId: id, Flags: flags, Data: body[:n]})
		body = body[n:]
	}
}

// wait waits until the stream ends and returns it.
func (c *ssClient) wait(id ss.StreamId) *ssStream {
	c.t.Helper()
	deadline := time.AfterFunc(30*time.Second, func() {
		c.mu.Lock()
		if c.err == nil {
			c.err = fmt.Errorf("timed out waiting for stream %d", id)
		}
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer deadline.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.strs[id]
	for !st.fin && st.rst == 0 && !st.resetted && c.err == nil {
		c.cond.Wait()
	}
	if c.err != nil {
		c.t.Fatalf("stream %d: session error: %v", id, c.err)
	}
	return st
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestInteropSpdystream(t *testing.T) {
	certFile, keyFile := interop.WriteSelfSignedCert(t, t.TempDir())
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	tlsPort, _ := startServer(t, &spdymux.Config{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}})
	plainPort, _ := startServer(t, nil)
	cases := []struct {
		name, proto string
		port        int
	}{
		{"spdy/3.1/tls", spdymux.ProtoSPDY31, tlsPort},
		{"spdy/3/tls", spdymux.ProtoSPDY3, tlsPort},
		{"spdy/3.1/plain", "", plainPort},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialSS(t, fmt.Sprintf("127.0.0.1:%d", tc.port), tc.proto)

			// 98 concurrent streams with exact bodies, and two more: the
			// server's MAX_CONCURRENT_STREAMS is 100.
			ids := map[ss.StreamId]int{}
			for i := range 98 {
				ids[c.open("GET", fmt.Sprintf("/bytes/%d", i*1009), nil, nil, 0)] = i * 1009
			}
			// Multi-megabyte download and upload through the windows.
			const big = 8 << 20
			down := c.open("GET", fmt.Sprintf("/bytes/%d", big), nil, nil, 0)
			up := c.open("POST", "/echo", nil, interop.PatternBytes(big), 0)
			for id, n := range ids {
				st := c.wait(id)
				if got := st.reply.Get(":status"); !strings.HasPrefix(got, "200") {
					t.Errorf("stream %d: status %q", id, got)
				}
				if len(st.body) != n || sha(st.body) != interop.PatternSHA256(n) {
					t.Errorf("stream %d: %d bytes (RST_STREAM status %d), want %d exact", id, len(st.body), st.rst, n)
				}
			}
			for _, id := range []ss.StreamId{down, up} {
				st := c.wait(id)
				if len(st.body) != big || sha(st.body) != interop.PatternSHA256(big) {
					t.Errorf("stream %d: %d bytes (RST_STREAM status %d), want %d exact", id, len(st.body), st.rst, big)
				}
			}

			// Bodiless responses end on SYN_REPLY.
			for _, p := range []struct{ method, path, status string }{
				{"HEAD", "/bytes/1000", "200"}, {"GET", "/status/204", "204"}, {"GET", "/status/304", "304"},
			} {
				st := c.wait(c.open(p.method, p.path, nil, nil, 0))
				if got := st.reply.Get(":status"); !strings.HasPrefix(got, p.status) || len(st.body) != 0 {
					t.Errorf("%s %s: status %q with %d body bytes", p.method, p.path, got, len(st.body))
				}
			}

			// Large and repeated headers, both ways.
			hdr := http.Header{"X-Large": {strings.Repeat("x", 20000)}, "X-Multi": {"one", "two"}}
			st := c.wait(c.open("GET", "/headers", hdr, nil, 0))
			var seen map[string][]string
			if err := json.Unmarshal(st.body, &seen); err != nil {
				t.Fatalf("/headers: %v: %q", err, st.body)
			}
			if len(seen["x-large"]) != 1 || len(seen["x-large"][0]) != 20000 {
				t.Errorf("x-large did not arrive whole")
			}
			if fmt.Sprint(seen["x-multi"]) != "[one two]" {
				t.Errorf("x-multi arrived as %q, want [one two]", seen["x-multi"])
			}
			if got := st.reply["Set-Cookie"]; fmt.Sprint(got) != "[a=1 b=2]" {
				t.Errorf("set-cookie %q, want [a=1 b=2]", got)
			}

			// A reset mid-download; the session goes on.
			st = c.wait(c.open("GET", fmt.Sprintf("/bytes/%d", big), nil, nil, 100<<10))
			if !st.resetted || len(st.body) >= big {
				t.Errorf("reset stream: %d bytes", len(st.body))
			}
			st = c.wait(c.open("GET", "/bytes/300000", nil, nil, 0))
			if len(st.body) != 300000 || sha(st.body) != interop.PatternSHA256(300000) {
				t.Errorf("after reset: %d bytes", len(st.body))
			}

			// PING is echoed.
			c.write(&ss.PingFrame{Id: 7})
			timer := time.AfterFunc(10*time.Second, func() {
				c.mu.Lock()
				c.err = fmt.Errorf("no PING reply")
				c.cond.Broadcast()
				c.mu.Unlock()
			})
			defer timer.Stop()
			c.mu.Lock()
			for !c.pings[7] && c.err == nil {
				c.cond.Wait()
			}
			err := c.err
			c.mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
