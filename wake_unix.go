//go:build unix

package spdymux

import "golang.org/x/sys/unix"

// socketHasInput reports whether the socket has bytes to read, without
// taking them or waiting.
func socketHasInput(fd uintptr) bool {
	var b [1]byte
	n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	return err == nil && n > 0
}
