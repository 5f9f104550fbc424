//go:build unix

package sockpeek

import "golang.org/x/sys/unix"

func peek(fd uintptr) State {
	var b [1]byte
	n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	switch {
	case err == unix.EAGAIN || err == unix.EWOULDBLOCK || err == unix.EINTR:
		return Empty
	case err != nil || n == 0: // n == 0: the peer's FIN
		return Closed
	}
	return Data
}
