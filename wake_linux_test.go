package spdymux

import (
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

func rawConnOf(t *testing.T, c net.Conn) syscall.RawConn {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

// TestSessionPoll: one look wakes the readers of exactly the sessions
// whose sockets got bytes, including sessions whose writers never look;
// looks come at most once per readWakeInterval; a removed session is not
// woken.
func TestSessionPoll(t *testing.T) {
	p := newSessionPoll()
	if p == nil {
		t.Fatal("no epoll")
	}
	var clients []net.Conn
	var wcs []*wakeConn
	var toks []uint64
	for range 3 {
		client, server := tcpPair(t)
		wc := &wakeConn{Conn: server}
		wc.arm(time.Time{})    // as a session's
		wc.reading.Store(true) // as a reader waiting in Read
		tok := p.add(wc, rawConnOf(t, server))
		if tok == 0 {
			t.Fatal("not added")
		}
		clients, wcs, toks = append(clients, client), append(wcs, wc), append(toks, tok)
	}
	woken := func() (w [3]bool) {
		for i, wc := range wcs {
			w[i] = wc.woken.Load()
		}
		return
	}
	now := time.Now()
	p.look(now)
	if w := woken(); w != [3]bool{} {
		t.Fatalf("woken %v with nothing sent", w)
	}
	clients[1].Write([]byte("a"))
	clients[2].Write([]byte("b"))
	time.Sleep(20 * time.Millisecond)
	p.look(now.Add(readWakeInterval / 2))
	if w := woken(); w != [3]bool{} {
		t.Fatalf("woken %v by a look within readWakeInterval", w)
	}
	p.look(now.Add(readWakeInterval))
	if w := woken(); w != [3]bool{false, true, true} {
		t.Fatalf("woken %v, want the two sessions that got bytes", w)
	}
	// The woken readers read on; the bytes are all there.
	for i, want := range []string{"", "a", "b"} {
		if want == "" {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(wcs[i], 1))
		if err != nil || string(b) != want {
			t.Fatalf("session %d read %q, %v", i, b, err)
		}
	}
	p.remove(toks[0])
	clients[0].Write([]byte("c"))
	time.Sleep(20 * time.Millisecond)
	p.look(now.Add(2 * readWakeInterval))
	if wcs[0].woken.Load() {
		t.Fatal("a removed session was woken")
	}
}
