package sockpeek

import (
	"net"
	"testing"
	"time"
)

func TestStates(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()

	if st := Conn(server); st != Empty {
		t.Fatalf("idle: %v, want Empty", st)
	}
	client.Write([]byte("x"))
	time.Sleep(20 * time.Millisecond)
	for range 2 { // a look takes nothing
		if st := Conn(server); st != Data {
			t.Fatalf("after a byte: %v, want Data", st)
		}
	}
	b := make([]byte, 1)
	if _, err := server.Read(b); err != nil || b[0] != 'x' {
		t.Fatalf("read %q, %v", b, err)
	}
	client.Close()
	time.Sleep(20 * time.Millisecond)
	if st := Conn(server); st != Closed {
		t.Fatalf("after the peer's close: %v, want Closed", st)
	}
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	if st := Conn(p1); st != Unknown {
		t.Fatalf("net.Pipe: %v, want Unknown", st)
	}
}
