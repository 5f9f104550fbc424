// Package sockpeek looks at a socket's receive queue without taking from
// it or waiting: whether the peer sent bytes, closed, or neither.
package sockpeek

import (
	"net"
	"syscall"
)

// State is what a look at a socket finds.
type State int

const (
	Unknown State = iota // not a socket, or no way to look on this system
	Empty                // open, nothing to read
	Data                 // bytes to read
	Closed               // the peer's FIN, or an error
)

// Conn looks at c's socket, if c is one (syscall.Conn).
func Conn(c net.Conn) State {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return Unknown
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return Closed
	}
	return Raw(rc)
}

// Raw looks at the socket behind rc. It uses rc.Control, so it may run
// while another goroutine waits to read the socket.
func Raw(rc syscall.RawConn) State {
	st := Unknown
	if err := rc.Control(func(fd uintptr) { st = peek(fd) }); err != nil {
		return Closed
	}
	return st
}
