//go:build !linux && !darwin

package spdymux

import "errors"

func setsockoptNotSentLowat(fd uintptr, n int) error {
	return errors.ErrUnsupported
}
