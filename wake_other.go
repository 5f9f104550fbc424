//go:build !unix

package spdymux

func socketHasInput(fd uintptr) bool { return false }
