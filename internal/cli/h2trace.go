package cli

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/spdymux/spdymux"
)

// frameTrace prints the frames of get's HTTP/2 connections as -v prints
// SPDY's: a line per frame in spdymux.FrameEvent's form, followed by what
// the frame says (settings, increments, error codes; a header block's
// fields on lines of their own). x/net/http2's Transport has no frame hook,
// so the trace reads a copy of the bytes it writes and reads, after TLS,
// and decodes them with x/net/http2's Framer and hpack: it shows the frames
// as they crossed the wire. It is safe for concurrent use; each line is
// written whole.
type frameTrace struct {
	mu       sync.Mutex // serializes writes to w
	w        io.Writer
	sessions atomic.Uint64
}

func (t *frameTrace) println(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	io.WriteString(t.w, s+"\n")
}

// wrap returns c, whose bytes are HTTP/2 (proto h2 or h2c), with its
// frames traced; it keeps a *tls.Conn's ConnectionState for the Transport.
func (t *frameTrace) wrap(c net.Conn, proto string) net.Conn {
	id := t.sessions.Add(1)
	how := "cleartext, prior knowledge"
	if tc, ok := c.(*tls.Conn); ok {
		how = tls.VersionName(tc.ConnectionState().Version) + ", ALPN " + tc.ConnectionState().NegotiatedProtocol
	}
	t.println(fmt.Sprintf("[session %d] %s connection to %s (%s)", id, proto, c.RemoteAddr(), how))
	ev := spdymux.FrameEvent{SessionID: id, Proto: proto}
	tr := &tracedConn{Conn: c, in: newFrameDecoder(t, ev, false), out: newFrameDecoder(t, ev, true)}
	if tc, ok := c.(*tls.Conn); ok {
		return &tracedTLSConn{tracedConn: tr, tls: tc}
	}
	return tr
}

// tracedConn passes a copy of what it reads and writes to its decoders.
type tracedConn struct {
	net.Conn
	in, out *frameDecoder
}

func (c *tracedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.feed(p[:n])
	return n, err
}

func (c *tracedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.feed(p[:n])
	return n, err
}

// tracedTLSConn is a tracedConn over TLS; the Transport reads the TLS
// state of a connection that has a ConnectionState method.
type tracedTLSConn struct {
	*tracedConn
	tls *tls.Conn
}

func (c *tracedTLSConn) ConnectionState() tls.ConnectionState { return c.tls.ConnectionState() }

// frameDecoder decodes the frames of one direction of a connection from
// the bytes fed to it, printing each as soon as it is whole.
type frameDecoder struct {
	t  *frameTrace
	ev spdymux.FrameEvent // SessionID, Proto and Out set

	mu      sync.Mutex // one feed at a time; guards the fields below
	preface int        // bytes of the client preface still to come
	buf     []byte     // bytes of an incomplete frame
	r       bytes.Reader
	fr      *http2.Framer
	dec     *hpack.Decoder
	fields  []string // of the header block being decoded
	broken  bool     // a frame did not decode; the rest is not traced
}

func newFrameDecoder(t *frameTrace, ev spdymux.FrameEvent, out bool) *frameDecoder {
	d := &frameDecoder{t: t, ev: ev}
	d.ev.Out = out
	if out {
		d.preface = len(http2.ClientPreface)
	}
	d.fr = http2.NewFramer(nil, &d.r)
	d.fr.AllowIllegalReads = true // CONTINUATION is decoded here, frame by frame
	d.fr.SetMaxReadFrameSize(1<<24 - 1)
	d.dec = hpack.NewDecoder(4096, func(f hpack.HeaderField) {
		d.fields = append(d.fields, "    "+f.Name+": "+f.Value)
	})
	// The peer's SETTINGS_HEADER_TABLE_SIZE bounds the table; a trace
	// need not enforce it.
	d.dec.SetAllowedMaxDynamicTableSize(1 << 20)
	return d
}

func (d *frameDecoder) feed(p []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.broken || len(p) == 0 {
		return
	}
	if d.preface > 0 {
		n := min(d.preface, len(p))
		d.preface -= n
		p = p[n:]
		if d.preface == 0 {
			d.t.println(d.prefix() + "client preface")
		}
	}
	d.buf = append(d.buf, p...)
	for len(d.buf) >= 9 {
		size := 9 + (int(d.buf[0])<<16 | int(d.buf[1])<<8 | int(d.buf[2]))
		if len(d.buf) < size {
			return
		}
		d.r.Reset(d.buf[:size])
		f, err := d.fr.ReadFrame()
		if err != nil {
			d.t.println(fmt.Sprintf("%sframe not decoded (%v); no more are traced", d.prefix(), err))
			d.broken = true
			return
		}
		d.print(f)
		d.buf = d.buf[:copy(d.buf, d.buf[size:])]
	}
}

func (d *frameDecoder) prefix() string {
	dir := "recv"
	if d.ev.Out {
		dir = "send"
	}
	return fmt.Sprintf("[session %d] %s ", d.ev.SessionID, dir)
}

// print writes the line of frame f, and the fields of a header block that
// f ends.
func (d *frameDecoder) print(f http2.Frame) {
	h := f.Header()
	ev := d.ev
	ev.Name, ev.StreamID, ev.Flags, ev.Length = h.Type.String(), h.StreamID, uint8(h.Flags), int(h.Length)
	var what []string
	if names := flagNames(h); names != "" {
		what = append(what, names)
	}
	var block []byte
	switch f := f.(type) {
	case *http2.HeadersFrame:
		block = f.HeaderBlockFragment()
	case *http2.ContinuationFrame:
		block = f.HeaderBlockFragment()
	case *http2.PushPromiseFrame:
		what = append(what, fmt.Sprintf("promised=%d", f.PromiseID))
		block = f.HeaderBlockFragment()
	case *http2.SettingsFrame:
		f.ForeachSetting(func(s http2.Setting) error {
			what = append(what, fmt.Sprintf("%v=%d", s.ID, s.Val))
			return nil
		})
	case *http2.WindowUpdateFrame:
		what = append(what, fmt.Sprintf("increment=%d", f.Increment))
	case *http2.RSTStreamFrame:
		what = append(what, "error="+f.ErrCode.String())
	case *http2.GoAwayFrame:
		what = append(what, fmt.Sprintf("last_stream=%d error=%v", f.LastStreamID, f.ErrCode))
		if dd := f.DebugData(); len(dd) > 0 {
			what = append(what, fmt.Sprintf("debug=%q", dd))
		}
	case *http2.PingFrame:
		what = append(what, fmt.Sprintf("data=%x", f.Data))
	case *http2.PriorityUpdateFrame:
		what = append(what, fmt.Sprintf("prioritized=%d priority=%q", f.PrioritizedStreamID, f.Priority))
	}
	line := ev.String()
	if len(what) > 0 {
		line += " " + strings.Join(what, " ")
	}
	if block != nil {
		if _, err := d.dec.Write(block); err != nil {
			d.fields = append(d.fields, fmt.Sprintf("    (header block not decoded: %v)", err))
		}
		if h.Flags.Has(http2.FlagHeadersEndHeaders) { // the same bit for CONTINUATION and PUSH_PROMISE
			if err := d.dec.Close(); err != nil {
				d.fields = append(d.fields, fmt.Sprintf("    (header block not decoded: %v)", err))
			}
			line += "\n" + strings.Join(d.fields, "\n")
			d.fields = d.fields[:0]
		}
	}
	d.t.println(line)
}

// flagNames names the flags set in h, "END_STREAM|END_HEADERS", as RFC
// 9113 does for h's frame type.
func flagNames(h http2.FrameHeader) string {
	type flag struct {
		bit  http2.Flags
		name string
	}
	var known []flag
	switch h.Type {
	case http2.FrameData:
		known = []flag{{http2.FlagDataEndStream, "END_STREAM"}, {http2.FlagDataPadded, "PADDED"}}
	case http2.FrameHeaders:
		known = []flag{{http2.FlagHeadersEndStream, "END_STREAM"}, {http2.FlagHeadersEndHeaders, "END_HEADERS"},
			{http2.FlagHeadersPadded, "PADDED"}, {http2.FlagHeadersPriority, "PRIORITY"}}
	case http2.FrameContinuation:
		known = []flag{{http2.FlagContinuationEndHeaders, "END_HEADERS"}}
	case http2.FramePushPromise:
		known = []flag{{http2.FlagPushPromiseEndHeaders, "END_HEADERS"}, {http2.FlagPushPromisePadded, "PADDED"}}
	case http2.FrameSettings, http2.FramePing:
		known = []flag{{http2.FlagSettingsAck, "ACK"}}
	}
	var names []string
	for _, f := range known {
		if h.Flags.Has(f.bit) {
			names = append(names, f.name)
		}
	}
	return strings.Join(names, "|")
}
