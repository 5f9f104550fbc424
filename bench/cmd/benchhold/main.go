// Command benchhold holds connections open against a server so that the
// server's memory per connection or per stream can be read, for
// bench/run.sh. It speaks SPDY/3.1, HTTP/1.1 or HTTP/2 with prior
// knowledge (h2c), over TCP, or over TLS with -tls (HTTP/2 then by ALPN
// h2):
//
//	-idle N     N connections, each of which sends one GET /hello, reads the
//	            whole response, and then stays open doing nothing
//	-active N   N requests for GET /slow?ms=M held open by the server: over
//	            ceil(N / -per-conn) connections for SPDY and HTTP/2, over N
//	            connections for HTTP/1.1
//
// It prints "ready N" once every connection or request is in place (the
// server has answered each /hello; each /slow request is written), then
// keeps everything open until stdin reaches EOF (unless -stdin=false) or
// -hold passes, and
// exits. Connections are dialed -parallel at a time; each dial and each
// /hello answer has -timeout.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spdymux/spdymux/spdy"
	"golang.org/x/net/http2/hpack"
)

var hello = []byte("hello, world\n")

func main() {
	var (
		addr     = flag.String("addr", "127.0.0.1:8080", "server `host:port`")
		proto    = flag.String("proto", "spdy/3.1", "spdy/3.1, http/1.1 or h2c")
		idle     = flag.Int("idle", 0, "open `N` connections that each make one request and then idle")
		active   = flag.Int("active", 0, "hold `N` requests for /slow open")
		perConn  = flag.Int("per-conn", 100, "requests held open per connection (SPDY and h2c)")
		slowMS   = flag.Int("slow-ms", 60000, "the ms parameter of /slow")
		parallel = flag.Int("parallel", 200, "connections dialed at once")
		timeout  = flag.Duration("timeout", 20*time.Second, "dial and answer timeout per connection")
		hold     = flag.Duration("hold", 120*time.Second, "keep everything open at most this long")
		stdin    = flag.Bool("stdin", true, "also stop when stdin reaches EOF")
		useTLS   = flag.Bool("tls", false, "connect over TLS, offering by ALPN the protocol (h2 for -proto h2c), certificate unchecked")
	)
	flag.Parse()
	log.SetPrefix("benchhold: ")
	log.SetFlags(0)
	if (*idle > 0) == (*active > 0) {
		log.Fatal("give one of -idle N or -active N")
	}
	if *perConn < 1 || *parallel < 1 {
		log.Fatal("-per-conn and -parallel must be at least 1")
	}
	var open func(c net.Conn, paths []string, wait bool) error
	switch *proto {
	case "spdy/3.1":
		open = openSPDY
	case "http/1.1":
		open = openHTTP1
		*perConn = 1
	case "h2c":
		open = openH2C
	default:
		log.Fatalf("bad -proto %q", *proto)
	}

	// jobs: the paths each connection requests.
	var jobs [][]string
	if *idle > 0 {
		for range *idle {
			jobs = append(jobs, []string{"/hello"})
		}
	} else {
		for left := *active; left > 0; left -= *perConn {
			n := min(left, *perConn)
			paths := make([]string, n)
			for i := range paths {
				paths[i] = "/slow?ms=" + strconv.Itoa(*slowMS)
			}
			jobs = append(jobs, paths)
		}
	}

	deadline := time.Now().Add(*hold)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	conns := make([]net.Conn, len(jobs))
	sem := make(chan struct{}, *parallel)
	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	for i, paths := range jobs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			d := net.Dialer{Timeout: *timeout}
			c, err := d.DialContext(ctx, "tcp", *addr)
			if err == nil && *useTLS {
				alpn := *proto
				if alpn == "h2c" {
					alpn = "h2"
				}
				tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{alpn}})
				c.SetDeadline(time.Now().Add(*timeout))
				if err = tc.HandshakeContext(ctx); err == nil && tc.ConnectionState().NegotiatedProtocol != alpn {
					err = fmt.Errorf("the server chose %q by ALPN, not %q", tc.ConnectionState().NegotiatedProtocol, alpn)
				}
				c = tc
			}
			if err == nil {
				c.SetDeadline(time.Now().Add(*timeout))
				err = open(c, paths, *idle > 0)
				c.SetDeadline(time.Time{})
			}
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
				if c != nil {
					c.Close()
				}
				return
			}
			conns[i] = c
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		log.Fatalf("%d of %d connections failed; first: %v", n, len(jobs), firstErr.Load())
	}
	n := *idle + *active
	fmt.Printf("ready %d (%d connections in %.2fs)\n", n, len(jobs), time.Since(start).Seconds())

	// Keep reading whatever the servers send on busy connections, so that
	// nothing blocks; idle ones are left alone.
	if *active > 0 {
		for _, c := range conns {
			go io.Copy(io.Discard, c)
		}
	}
	stdinDone := make(chan struct{})
	if *stdin {
		go func() {
			io.Copy(io.Discard, os.Stdin)
			close(stdinDone)
		}()
	}
	select {
	case <-stdinDone:
	case <-ctx.Done():
	}
	for _, c := range conns {
		c.Close()
	}
}

// readUntil reads from c until what it has read contains want.
func readUntil(c net.Conn, want []byte) error {
	buf := make([]byte, 4096)
	var got []byte
	for !bytes.Contains(got, want) {
		n, err := c.Read(buf)
		if err != nil {
			return fmt.Errorf("reading the answer: %w", err)
		}
		got = append(got, buf[:n]...)
		if len(got) > 1<<20 {
			return fmt.Errorf("no %q in the first MiB of the answer", want)
		}
	}
	return nil
}

// openSPDY opens one SPDY/3.1 stream per path; with wait it reads until
// the /hello body has arrived.
func openSPDY(c net.Conn, paths []string, wait bool) error {
	fr := spdy.NewFramer(c, nil, spdy.V3)
	// A 1 MiB session window, as clients send, so the session is a 3.1 one.
	if err := fr.WriteWindowUpdate(0, 1<<20); err != nil {
		return err
	}
	for i, p := range paths {
		err := fr.WriteSynStream(&spdy.SynStreamFrame{
			StreamID: spdy.StreamID(2*i + 1),
			Flags:    spdy.FlagFin,
			Header: []spdy.HeaderField{
				{Name: ":method", Value: "GET"},
				{Name: ":path", Value: p},
				{Name: ":version", Value: "HTTP/1.1"},
				{Name: ":host", Value: "localhost"},
				{Name: ":scheme", Value: "http"},
				{Name: "user-agent", Value: "benchhold"},
			},
		})
		if err != nil {
			return err
		}
	}
	if wait {
		return readUntil(c, hello)
	}
	return nil
}

// openHTTP1 sends one request (a connection holds one at a time).
func openHTTP1(c net.Conn, paths []string, wait bool) error {
	if _, err := io.WriteString(c, "GET "+paths[0]+" HTTP/1.1\r\nHost: localhost\r\nUser-Agent: benchhold\r\n\r\n"); err != nil {
		return err
	}
	if wait {
		return readUntil(c, hello)
	}
	return nil
}

// openH2C speaks HTTP/2 with prior knowledge: the preface, SETTINGS, one
// HEADERS frame per path, and the ACK of the server's SETTINGS (RFC 9113
// §4.1 frame layout, written by hand).
func openH2C(c net.Conn, paths []string, wait bool) error {
	out := []byte(h2Preface)
	out = appendH2Frame(out, h2Settings, 0, 0, nil)
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for i, p := range paths {
		hb.Reset()
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "localhost"}, {":path", p}, {"user-agent", "benchhold"}} {
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		out = appendH2Frame(out, h2Headers, h2EndStream|h2EndHeaders, uint32(2*i+1), hb.Bytes())
	}
	if _, err := c.Write(out); err != nil {
		return err
	}
	// Read until the server's SETTINGS (to ACK them) and, with wait, the
	// end of stream 1.
	acked, done := false, !wait
	var head [9]byte
	for !acked || !done {
		if _, err := io.ReadFull(c, head[:]); err != nil {
			return fmt.Errorf("reading the answer: %w", err)
		}
		n := int(head[0])<<16 | int(head[1])<<8 | int(head[2])
		typ, flags := head[3], head[4]
		id := binary.BigEndian.Uint32(head[5:]) & 0x7fffffff
		if _, err := io.CopyN(io.Discard, c, int64(n)); err != nil {
			return fmt.Errorf("reading the answer: %w", err)
		}
		switch {
		case typ == h2Settings && flags&h2Ack == 0:
			if _, err := c.Write(appendH2Frame(nil, h2Settings, h2Ack, 0, nil)); err != nil {
				return err
			}
			acked = true
		case (typ == h2Data || typ == h2Headers) && id == 1 && flags&h2EndStream != 0:
			done = true
		case typ == h2GoAway:
			return errors.New("GOAWAY from the server")
		}
	}
	return nil
}

const (
	h2Preface                 = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	h2Data, h2Headers         = 0x0, 0x1
	h2Settings, h2GoAway      = 0x4, 0x7
	h2EndStream, h2Ack        = 0x1, 0x1
	h2EndHeaders         byte = 0x4
)

func appendH2Frame(b []byte, typ, flags byte, id uint32, payload []byte) []byte {
	n := len(payload)
	b = append(b, byte(n>>16), byte(n>>8), byte(n), typ, flags)
	b = binary.BigEndian.AppendUint32(b, id)
	return append(b, payload...)
}
