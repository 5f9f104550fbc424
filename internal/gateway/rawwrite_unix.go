//go:build unix

package gateway

import (
	"os"

	"golang.org/x/sys/unix"
)

// rawWrites reports whether writeSome can write a socket on this system.
const rawWrites = true

// writeSome writes what it can of p on the socket fd without waiting: n
// bytes went out, and full is set if the socket's buffer took no more.
func writeSome(fd uintptr, p []byte) (n int, full bool, err error) {
	for {
		n, err := unix.Write(int(fd), p)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return 0, true, nil
		case err != nil:
			return 0, false, os.NewSyscallError("write", err)
		}
		return n, n < len(p), nil
	}
}
