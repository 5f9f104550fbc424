package spdymux

import (
	"context"
	"net"
	"testing"

	"golang.org/x/net/nettest"

	"github.com/spdymux/spdymux/spdy"
)

// rawPipe opens one stream over a real loopback SPDY session and returns
// its two ends: the client's and the server's.
func rawPipe(t *testing.T, proto string) nettest.MakePipe {
	return func() (c1, c2 net.Conn, stop func(), err error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, nil, err
		}
		cfg := (&Config{Logger: discardLogger, CleartextV3: proto}).settings()
		accepted := make(chan net.Conn, 1)
		cfg.rawStreams = func(c net.Conn) { accepted <- c }
		l := newListener(ln, cfg)
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			l.Close()
			return nil, nil, nil, err
		}
		cs := newClientSession(conn, proto, (&Config{Logger: discardLogger}).settings())
		st, err := cs.openStream(context.Background(), []spdy.HeaderField{{Name: ":path", Value: "/"}}, 0, false)
		if err != nil {
			l.Close()
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
			l.Close()
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
