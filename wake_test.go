package spdymux

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		client.Close()
		server.Close()
	})
	return client, server
}

// TestWakeConnRead: a wake ends the wait of a read but not the read: it
// goes on and returns the bytes that come; before a read, the next read
// is not failed either.
func TestWakeConnRead(t *testing.T) {
	client, server := tcpPair(t)
	wc := &wakeConn{Conn: server}
	wc.arm(time.Time{}) // as a session's
	got := make(chan string, 1)
	go func() {
		b := make([]byte, 16)
		n, err := wc.Read(b)
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		got <- string(b[:n])
	}()
	time.Sleep(20 * time.Millisecond) // the read waits
	for range 3 {
		wc.wake()
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case g := <-got:
		t.Fatalf("read returned %q after a wake, with nothing sent", g)
	default:
	}
	client.Write([]byte("hello"))
	if g := <-got; g != "hello" {
		t.Fatalf("read %q, want hello", g)
	}

	wc.wake() // no read waiting
	client.Write([]byte("again"))
	b := make([]byte, 16)
	n, err := wc.Read(b)
	if err != nil || string(b[:n]) != "again" {
		t.Fatalf("read after a wake: %q, %v", b[:n], err)
	}
}

// TestWakeConnDeadline: the read deadline its user sets still ends a read
// when wakes come before and during it.
func TestWakeConnDeadline(t *testing.T) {
	_, server := tcpPair(t)
	wc := &wakeConn{Conn: server}
	wc.arm(time.Time{}) // as a session's
	wc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	wc.wake()
	done := make(chan error, 1)
	go func() {
		_, err := wc.Read(make([]byte, 1))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	wc.wake()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read: %v, want the deadline's timeout", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the read deadline was lost to a wake")
	}
	// Cleared, the deadline no longer ends reads.
	wc.SetReadDeadline(time.Time{})
	go func() {
		_, err := wc.Read(make([]byte, 1))
		done <- err
	}()
	wc.wake()
	select {
	case err := <-done:
		t.Fatalf("read ended with %v; want it to wait", err)
	case <-time.After(150 * time.Millisecond):
	}
	server.Close()
	if err := <-done; err == nil || isTimeout(err) {
		t.Fatalf("read after Close: %v", err)
	}
}

// TestReadWaker: the writer's look at its own socket (where there is no
// sessionPoll) finds waiting bytes, without taking them, and wakes the
// reader; with none waiting it does not; it looks at most once per
// readWakeInterval.
func TestReadWaker(t *testing.T) {
	client, server := tcpPair(t)
	wc := &wakeConn{Conn: server}
	w := newReadWaker(wc, time.Time{})
	if w == nil {
		t.Fatal("no waker for a TCP connection")
	}
	w.release()
	w.poll = nil
	wc.reading.Store(true) // as a reader waiting in Read
	now := time.Now()
	w.check(now)
	if wc.woken.Load() {
		t.Fatal("woken with nothing to read")
	}
	client.Write([]byte("x"))
	time.Sleep(20 * time.Millisecond)
	w.check(now.Add(readWakeInterval / 2))
	if wc.woken.Load() {
		t.Fatal("looked again within readWakeInterval")
	}
	w.check(now.Add(readWakeInterval))
	if !wc.woken.Load() {
		t.Fatal("not woken with a byte waiting")
	}
	b, err := io.ReadAll(io.LimitReader(wc, 1))
	if err != nil || string(b) != "x" {
		t.Fatalf("read %q, %v after the wake", b, err)
	}
	// No reader under way: nothing to wake, the next read finds the bytes.
	client.Write([]byte("y"))
	time.Sleep(20 * time.Millisecond)
	w.check(now.Add(2 * readWakeInterval))
	if wc.woken.Load() || wc.wakes.Load() != 1 {
		t.Fatalf("woken %v, %d wakes; want the one wake, with a reader waiting", wc.woken.Load(), wc.wakes.Load())
	}
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	if newReadWaker(&wakeConn{Conn: p1}, time.Time{}) != nil {
		t.Error("a waker for a net.Pipe")
	}
}

// TestWakeConnUnarmed: a connection no session armed (one the inner
// server gets) passes reads and deadlines straight through; a wake does
// nothing to it.
func TestWakeConnUnarmed(t *testing.T) {
	_, server := tcpPair(t)
	wc := &wakeConn{Conn: server}
	done := make(chan error, 1)
	go func() {
		_, err := wc.Read(make([]byte, 1))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	wc.wake()
	if wc.woken.Load() || wc.wakes.Load() != 0 {
		t.Fatal("an unarmed connection was woken")
	}
	wc.SetReadDeadline(time.Now().Add(-time.Second))
	if err := <-done; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: %v, want the deadline set through it", err)
	}
}
