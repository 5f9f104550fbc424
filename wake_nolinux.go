//go:build !linux

package spdymux

import (
	"syscall"
	"time"
)

// sessionPoll is Linux's (wake_linux.go); elsewhere each busy writer
// looks at its own session's socket.
type sessionPoll struct{}

func getSessionPoll() *sessionPoll                                { return nil }
func (p *sessionPoll) add(c *wakeConn, rc syscall.RawConn) uint64 { return 0 }
func (p *sessionPoll) remove(tok uint64)                          {}
func (p *sessionPoll) look(now time.Time)                         {}
