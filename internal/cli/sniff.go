package cli

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"time"
)

// get and bench speak SPDY or HTTP/2 from the first byte. A server that
// speaks HTTP/1.x alone answers those bytes with an HTTP/1.x error
// response, which a SPDY framer reads as a DATA frame of "HTTP" (a
// stream id of 0x48545450 and a length of megabytes) and an HTTP/2 one as
// a frame of the same nonsense; or it answers nothing at all, waiting for
// the end of a request line that never comes. sniffConn looks at the
// server's first bytes, and at their absence, and turns either into one
// clear error.

// http1Error is a server's HTTP/1.x answer, or another answer in text,
// where SPDY, HTTP/2 or TLS was spoken.
type http1Error struct {
	line  string // the status line, or the first line, cut short
	http1 bool   // it is an HTTP/1.x status line (else an HTTP/0.9 body or other text)
	tls   bool   // the client had started a TLS handshake
	want  string // what the client spoke: "SPDY", "HTTP/2"
}

func (e *http1Error) Error() string {
	what := "HTTP/1.x"
	if !e.http1 {
		what = "text"
	}
	if e.tls {
		return fmt.Sprintf("the server answered the TLS handshake in plain %s (%q): use an http:// URL for this port", what, e.line)
	}
	return fmt.Sprintf("the server answered in %s (%q): it speaks no %s on this port (try curl, or bench -proto http/1.1)", what, e.line, e.want)
}

// isText reports whether b, the first bytes from a server, are text: a
// SPDY server starts with a control frame (0x80), an HTTP/2 one with the
// length of its SETTINGS (0x00), a TLS one with a handshake record (0x16).
func isText(b []byte) bool {
	for _, c := range b[:min(len(b), 8)] {
		if (c < 0x20 || c > 0x7e) && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return len(b) > 0
}

// silentError is a server that sent nothing at all for a while after the
// connection was made: a SPDY or HTTP/2 server sends its SETTINGS at once.
type silentError struct {
	after time.Duration
	want  string
}

func (e *silentError) Error() string {
	return fmt.Sprintf("the server sent nothing within %v (-connect-timeout) of the connection, where a %s server sends its SETTINGS at once: "+
		"it speaks no %s on this port (an HTTP/1.x server waits for a request line), or it is stuck", e.after, e.want, e.want)
}

// sniffer wraps the connections of a client, and keeps the first error it
// found: a Transport may report a broken session in its own words, and
// the command says what happened instead.
type sniffer struct {
	want    string        // what the client speaks: "SPDY", "HTTP/2"
	silence time.Duration // how long the server may send nothing; 0 for ever
	seen    atomic.Pointer[sniffed]
}

type sniffed struct{ err error }

// wrap returns c with its first bytes from the server checked.
func (s *sniffer) wrap(c net.Conn) net.Conn {
	sc := &sniffConn{Conn: c, s: s}
	if s.silence > 0 {
		sc.timer = time.AfterFunc(s.silence, sc.silent)
	}
	return sc
}

// dial returns a dial function with a timeout whose connections are
// checked.
func (s *sniffer) dial(timeout time.Duration) dialFunc {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if e := s.seen.Load(); e != nil {
			return nil, e.err // a Transport's retry would meet the same server
		}
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return s.wrap(c), nil
	}
}

// explain returns the error the sniffer found, if any, else err.
func (s *sniffer) explain(err error) error {
	if e := s.seen.Load(); e != nil && err != nil {
		return e.err
	}
	return err
}

func (s *sniffer) found(err error) { s.seen.CompareAndSwap(nil, &sniffed{err}) }

// sniffConn is a client connection whose first read is checked for an
// HTTP/1.x status line, and which is closed when the server sends nothing
// for the sniffer's silence. Reads happen on one goroutine at a time, as
// do writes.
type sniffConn struct {
	net.Conn
	s        *sniffer
	timer    *time.Timer // nil without a silence limit
	read     bool        // the first read is done; owned by the reader
	gotByte  atomic.Bool
	wrote    atomic.Bool // the first write is done
	wroteTLS atomic.Bool // it began a TLS record of type handshake
}

func (c *sniffConn) silent() {
	if !c.gotByte.Load() {
		c.s.found(&silentError{after: c.s.silence, want: c.s.want})
		c.Conn.Close()
	}
}

func (c *sniffConn) Write(p []byte) (int, error) {
	if len(p) > 0 && !c.wrote.Swap(true) {
		c.wroteTLS.Store(p[0] == 0x16)
	}
	return c.Conn.Write(p)
}

func (c *sniffConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.read || n == 0 {
		return n, err
	}
	c.read = true
	c.gotByte.Store(true)
	if c.timer != nil {
		c.timer.Stop()
	}
	if b := p[:n]; isText(b) {
		line := b
		if i := bytes.IndexAny(line, "\r\n"); i >= 0 {
			line = line[:i]
		}
		if len(line) > 60 {
			line = line[:60]
		}
		http1 := bytes.HasPrefix(b, []byte("HTTP/1.")) || n < 7 && bytes.HasPrefix([]byte("HTTP/1."), b)
		e := &http1Error{line: string(line), http1: http1, tls: c.wroteTLS.Load(), want: c.s.want}
		c.s.found(e)
		return 0, e
	}
	return n, err
}

func (c *sniffConn) Close() error {
	if c.timer != nil {
		c.timer.Stop()
	}
	return c.Conn.Close()
}
