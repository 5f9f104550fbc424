package spdymux

import (
	"net"
	"syscall"
)

// DefaultNotSentLowat is the default Config.NotSentLowat.
const DefaultNotSentLowat = 16 << 10

// sysConnOf returns the socket under c, looking through the wrappers a
// Listener meets: a TLS connection (NetConn) and a PROXY protocol
// connection (Raw, as github.com/pires/go-proxyproto's Conn). It returns
// nil when there is no socket (net.Pipe, a custom net.Conn).
func sysConnOf(c net.Conn) syscall.Conn {
	for range 8 {
		switch x := c.(type) {
		case interface{ NetConn() net.Conn }:
			c = x.NetConn()
		case interface{ Raw() net.Conn }:
			c = x.Raw()
		case syscall.Conn:
			return x
		default:
			return nil
		}
	}
	return nil
}

// setNotSentLowat sets TCP_NOTSENT_LOWAT on c's socket, where the system
// has it (Linux, macOS): the kernel then takes no more bytes from a write
// while n of those it holds are not yet sent. What the client cannot take
// yet stays in the session's queues, where the writer orders it by
// priority, rather than in a socket buffer of several megabytes that a
// later, more urgent response must wait behind. It reports whether the
// option was set.
func setNotSentLowat(c net.Conn, n int) bool {
	if n <= 0 {
		return false
	}
	sc := sysConnOf(c)
	if sc == nil {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = setsockoptNotSentLowat(fd, n) }); err != nil {
		return false
	}
	return serr == nil
}
