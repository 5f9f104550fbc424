package spdymux

import (
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// sessionPoll is, on Linux, a second epoll set holding the socket of
// every server session in the process, edge-triggered for input. A busy
// writer that finds readWakeInterval passed since anyone last looked
// collects its events without waiting, one system call, and wakes the
// readers of the sessions that got bytes: its own, and sessions whose
// writers are idle, which a per-session look cannot reach.
type sessionPoll struct {
	epfd int
	last atomic.Int64 // when it was last looked at, in nanoseconds since pollEpoch

	mu     sync.Mutex
	next   uint64
	conns  map[uint64]*wakeConn
	events []unix.EpollEvent // guarded by the one look at a time (looking)

	looking atomic.Bool
}

var (
	pollOnce  sync.Once
	thePoll   *sessionPoll // nil when epoll is not to be had
	pollEpoch = time.Now()
)

func getSessionPoll() *sessionPoll {
	pollOnce.Do(func() { thePoll = newSessionPoll() })
	return thePoll
}

func newSessionPoll() *sessionPoll {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	return &sessionPoll{epfd: fd, conns: map[uint64]*wakeConn{}, events: make([]unix.EpollEvent, 128)}
}

// add puts the socket behind rc in the set; it returns a token for
// remove, or 0 if it could not.
func (p *sessionPoll) add(c *wakeConn, rc syscall.RawConn) uint64 {
	p.mu.Lock()
	p.next++
	tok := p.next
	p.conns[tok] = c
	p.mu.Unlock()
	var err error
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(uint32(tok)), Pad: int32(uint32(tok >> 32))}
	if cerr := rc.Control(func(fd uintptr) { err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev) }); cerr != nil {
		err = cerr
	}
	if err != nil {
		p.remove(tok)
		return 0
	}
	return tok
}

// remove forgets a session. Its socket leaves the set when it is closed
// (the kernel drops a closed file from every epoll set), so a late event
// of its token finds nothing; an explicit EPOLL_CTL_DEL could, after the
// close, hit another socket given the same descriptor.
func (p *sessionPoll) remove(tok uint64) {
	p.mu.Lock()
	delete(p.conns, tok)
	p.mu.Unlock()
}

// look collects the set's events and wakes their readers, unless someone
// looked less than readWakeInterval ago or is looking now.
func (p *sessionPoll) look(now time.Time) {
	t := int64(now.Sub(pollEpoch))
	last := p.last.Load()
	if t-last < int64(readWakeInterval) || !p.last.CompareAndSwap(last, t) || p.looking.Swap(true) {
		return
	}
	defer p.looking.Store(false)
	n, err := unix.EpollWait(p.epfd, p.events, 0)
	if err != nil || n <= 0 {
		return
	}
	p.mu.Lock()
	for _, ev := range p.events[:n] {
		tok := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
		if c := p.conns[tok]; c != nil {
			c.wake()
		}
	}
	p.mu.Unlock()
}
