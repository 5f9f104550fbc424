package gateway

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/spdymux/spdymux/internal/sockpeek"
)

// tcpPair is a connected pair of loopback TCP sockets: the gateway's end
// and the backend's.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// sentAt records when its head went out.
type sentAt struct{ at []time.Time }

func (s *sentAt) headSent() { s.at = append(s.at, time.Now()) }

func awaitConn(t *testing.T, conn net.Conn) *backendConn {
	t.Helper()
	if !rawWrites {
		t.Skip("no raw socket writes on this system")
	}
	c := newBackendConn(conn, time.Second)
	if c.raw == nil {
		t.Fatal("a TCP connection has no raw socket")
	}
	return c
}

// writeAwaitingAnswer writes the head, then returns only once the answer
// can be read, however soon it comes: an answer that arrives between the
// write and the wait is not missed.
func TestWriteAwaitingAnswer(t *testing.T) {
	gw, be := tcpPair(t)
	c := awaitConn(t, gw)
	head := []byte("GET /x HTTP/1.1\r\nHost: b\r\n\r\n")
	answer := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	const n = 300
	delay := func(i int) time.Duration {
		if i%50 == 0 {
			return 20 * time.Millisecond // an answer that takes a while
		}
		return 0 // one that comes as soon as it can
	}
	go func() {
		buf := make([]byte, len(head))
		for i := range n {
			if _, err := io.ReadFull(be, buf); err != nil || !bytes.Equal(buf, head) {
				t.Errorf("backend read %q, %v", buf, err)
				return
			}
			time.Sleep(delay(i))
			if _, err := io.WriteString(be, answer); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var sent sentAt
	for i := range n {
		c.start(time.Now().Add(5 * time.Second))
		rest, err := c.writeAwaitingAnswer(head, &sent)
		if err != nil || len(rest) != 0 {
			t.Fatalf("request %d: %q left, %v", i, rest, err)
		}
		if len(sent.at) != i+1 {
			t.Fatalf("request %d: headSent called %d times in all", i, len(sent.at))
		}
		if took := time.Since(sent.at[i]); took > 2*time.Second {
			t.Fatalf("request %d: the wait ended %v after the head went out: an answer was missed", i, took)
		} else if took < delay(i)/2 {
			t.Fatalf("request %d: the wait ended %v after the head went out, before the answer", i, took)
		}
		if st := sockpeek.Conn(gw); st != sockpeek.Data {
			t.Fatalf("request %d: after the wait the socket is %v, not readable", i, st)
		}
		got := make([]byte, len(answer))
		if _, err := io.ReadFull(c.br, got); err != nil || string(got) != answer {
			t.Fatalf("request %d: read %q, %v", i, got, err)
		}
	}
}

// A head the socket does not take at once is left for the usual write,
// and headSent is the caller's to call.
func TestWriteAwaitingAnswerFullSocket(t *testing.T) {
	gw, be := tcpPair(t)
	gw.SetWriteBuffer(64 << 10) // the backend reads nothing until the head is part written
	c := awaitConn(t, gw)
	c.timeout = 10 * time.Second // the usual write takes the rest in one go
	head := []byte("GET / HTTP/1.1\r\nX-Big: " + strings.Repeat("a", 8<<20) + "\r\n\r\n")
	c.start(time.Now().Add(5 * time.Second))
	var sent sentAt
	rest, err := c.writeAwaitingAnswer(head, &sent)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) == 0 || len(rest) == len(head) {
		t.Fatalf("%d of %d bytes left: want part of the head written", len(rest), len(head))
	}
	if len(sent.at) != 0 {
		t.Fatal("headSent called before the head was out")
	}
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(be, int64(len(head))))
		got <- b
	}()
	if _, err := c.bw.Write(rest); err != nil {
		t.Fatal(err)
	}
	if err := c.bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, head) {
		t.Fatalf("the backend got %d bytes, not the head's %d", len(b), len(head))
	}
}

// Past the read deadline nothing is written: the usual write and read
// find out.
func TestWriteAwaitingAnswerPastDeadline(t *testing.T) {
	gw, _ := tcpPair(t)
	c := awaitConn(t, gw)
	head := []byte("GET / HTTP/1.1\r\n\r\n")
	c.start(time.Now().Add(-time.Second))
	var sent sentAt
	rest, err := c.writeAwaitingAnswer(head, &sent)
	if err != nil || !bytes.Equal(rest, head) || len(sent.at) != 0 {
		t.Fatalf("%q left, %v, %d headSent: want the whole head left, no error", rest, err, len(sent.at))
	}
}

// A backend that reset the connection fails the write.
func TestWriteAwaitingAnswerReset(t *testing.T) {
	gw, be := tcpPair(t)
	c := awaitConn(t, gw)
	be.SetLinger(0)
	be.Close()
	deadline := time.Now().Add(5 * time.Second)
	for sockpeek.Conn(gw) != sockpeek.Closed && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	c.start(deadline)
	var sent sentAt
	_, err := c.writeAwaitingAnswer([]byte("GET / HTTP/1.1\r\n\r\n"), &sent)
	if err == nil || len(sent.at) != 0 {
		t.Fatalf("err %v, %d headSent: want a write error", err, len(sent.at))
	}
}
