package spdymux

import (
	"context"
	"net"
	"testing"

	"golang.org/x/net/nettest"

	"github.com/spdymux/spdymux/internal/httpconv"
)

// rawPipe opens one stream over a real loopback SPDY session and returns
// its two ends: the client's and the server's.
func rawPipe(t *testing.T, proto string) nettest.MakePipe {
	return func() (c1, c2 net.Conn, stop func(), err error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, nil, err
		}
		cfg := (&Config{Logger: discardLogger}).settings()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// A server session whose streams are bare byte streams: each
			// gets a reply head and goes to the test as a rawConn.
			s := newSPDYSession(c, proto, cfg, &listenerCounters{}, false)
			s.onStream = func(st *stream, _ []httpconv.HeaderField) error {
				s.mu.Lock()
				st.head = s.w.errorHead(200, 0)[:2]
				st.headQueued = true
				s.scheduleLocked(st)
				s.mu.Unlock()
				accepted <- newRawConn(st)
				return nil
			}
			s.serve()
		}()
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			ln.Close()
			return nil, nil, nil, err
		}
		cs := newClientSession(conn, proto, (&Config{Logger: discardLogger}).settings())
		st, err := cs.openStream(context.Background(), []httpconv.HeaderField{{Name: ":path", Value: "/"}}, 0, false)
		if err != nil {
			ln.Close()
			cs.close(nil)
			return nil, nil, nil, err
		}
		c1 = newRawConn(st)
		// The server learns of the stream when the client first sends.
		c2 = <-accepted
		stop = func() {
			c1.Close()
			c2.Close()
			cs.close(nil)
			ln.Close()
			<-cs.done
		}
		return c1, c2, stop, nil
	}
}

func TestRawConnNettest(t *testing.T) {
	for _, proto := range []string{ProtoSPDY31, ProtoSPDY3, ProtoSPDY2} {
		t.Run(proto, func(t *testing.T) {
			nettest.TestConn(t, rawPipe(t, proto))
		})
	}
}
