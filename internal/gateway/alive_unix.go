//go:build unix

package gateway

import (
	"net"
	"syscall"
)

// peekAlive looks at the socket without waiting: an open connection with
// nothing to read is alive; one the peer closed (a read of 0 bytes), one
// with an error, or one with bytes nobody asked for is not.
func peekAlive(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// Nothing to read yet. (A read of 0 bytes without an error is
		// the peer's FIN; bytes are a response nobody asked for.)
		alive = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK || err == syscall.EINTR
		return true // never wait for the socket
	})
	return err == nil && alive
}
