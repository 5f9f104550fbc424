package spdymux

import (
	"errors"
	"io"
	"sync"
)

// A session's reader spends most of its life waiting for the peer, and a
// read buffer held through that wait is most of what an idle session
// costs: 16 KiB of an HTTP/2 session's 24 KiB of heap. sessionReader is a
// buffered reader that holds its large buffer only while the peer is
// sending more than a few frames at a time. It reads into a small buffer
// of its own after a read that brought little (the usual request, the
// usual idle chatter: SETTINGS, PING, WINDOW_UPDATE), and into a pooled
// large one after a read that filled the small one; a large buffer goes
// back to the pool as soon as it has been read out, so it is not held
// across a wait. The cost is one more read(2) when a burst of more than
// smallReadSize bytes follows a quiet spell.
type sessionReader struct {
	r     io.Reader
	pool  *sync.Pool // of *[]byte, the large buffers
	size  int        // a large buffer's size
	buf   []byte     // the buffer read from: small[:], *large or nil
	large *[]byte    // the pooled buffer held, if any
	r0    int        // buf[r0:w0] is unread
	w0    int
	err   error // from a read that brought bytes too, returned next
	big   bool  // read large next: the last read filled its buffer, or was large and brought more than smallReadSize
	small [smallReadSize]byte
}

// smallReadSize is what a session reads at once after a read that
// brought less: a browser's request with its cookies, or h2load's
// dozens of HEADERS in a burst, fit.
const smallReadSize = 1 << 10

// maxEmptyReads is how many reads may bring nothing and no error before
// the connection counts as broken, as in bufio.
const maxEmptyReads = 100

var errBadReadCount = errors.New("spdymux: a connection's Read returned an impossible count")

var largeReadBufs sync.Map // size -> *sync.Pool of *[]byte

func largeReadPool(size int) *sync.Pool {
	if p, ok := largeReadBufs.Load(size); ok {
		return p.(*sync.Pool)
	}
	p, _ := largeReadBufs.LoadOrStore(size, &sync.Pool{New: func() any { b := make([]byte, size); return &b }})
	return p.(*sync.Pool)
}

func newSessionReader(r io.Reader, size int) *sessionReader {
	size = max(size, 2*smallReadSize)
	return &sessionReader{r: r, pool: largeReadPool(size), size: size}
}

// Read reads as bufio.Reader does: from the buffer while it holds bytes,
// else straight into p when p is at least the large buffer's size, else
// one read into the buffer.
func (b *sessionReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.r0 == b.w0 {
		if len(p) >= b.size {
			return b.r.Read(p)
		}
		if err := b.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, b.buf[b.r0:b.w0])
	b.r0 += n
	if b.r0 == b.w0 {
		b.drained()
	}
	return n, nil
}

// fill reads once into an empty buffer: the small one, unless the last
// read filled it. It returns an error only if no byte came.
func (b *sessionReader) fill() error {
	if err := b.err; err != nil {
		b.err = nil
		return err
	}
	if b.big {
		b.large = b.pool.Get().(*[]byte)
		b.buf = *b.large
	} else {
		b.buf = b.small[:]
	}
	var n int
	var err error
	for range maxEmptyReads {
		n, err = b.r.Read(b.buf)
		if n != 0 || err != nil {
			break
		}
	}
	if n < 0 || n > len(b.buf) {
		n, err = 0, errBadReadCount
	}
	b.r0, b.w0 = 0, n
	b.big = n == len(b.buf) || (b.big && n > smallReadSize)
	if n > 0 {
		b.err = err
		return nil
	}
	b.drained()
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// drained gives a large buffer back once it has been read out.
func (b *sessionReader) drained() {
	b.r0, b.w0 = 0, 0
	b.buf = nil
	if b.large != nil {
		b.pool.Put(b.large)
		b.large = nil
	}
}
