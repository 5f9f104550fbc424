package spdymux

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

func TestSessionReaderContent(t *testing.T) {
	content := make([]byte, 300<<10)
	for i := range content {
		content[i] = byte(i*7 + i>>10)
	}
	for name, wrap := range map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
		"data+EOF": iotest.DataErrReader,
		"chunks":   func(r io.Reader) io.Reader { return &chunkReader{r: r, rng: rand.New(rand.NewPCG(1, 2))} },
	} {
		t.Run(name, func(t *testing.T) {
			if err := iotest.TestReader(newSessionReader(wrap(bytes.NewReader(content)), 16<<10), content); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// chunkReader returns what r has in pieces of random size, some of them
// of the whole small buffer or more, as a socket does under load.
type chunkReader struct {
	r   io.Reader
	rng *rand.Rand
}

func (c *chunkReader) Read(p []byte) (int, error) {
	n := len(p)
	switch c.rng.IntN(3) {
	case 0:
		n = min(n, 1+c.rng.IntN(64))
	case 1:
		n = min(n, 1+c.rng.IntN(4<<10))
	}
	return c.r.Read(p[:n])
}

// The large buffer is held only while it has unread bytes: a reader
// waiting for the peer after a quiet exchange or after a burst holds
// none.
func TestSessionReaderReleasesLargeBuffer(t *testing.T) {
	pr, pw := io.Pipe()
	r := newSessionReader(pr, 16<<10)
	send := func(n int) {
		go pw.Write(bytes.Repeat([]byte{'x'}, n))
	}
	read := func(n int) {
		t.Helper()
		if _, err := io.ReadFull(r, make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}

	send(100)
	read(100)
	if r.large != nil || r.big {
		t.Fatalf("after 100 bytes: holds a large buffer %v, reads large next %v", r.large != nil, r.big)
	}

	// A burst fills the small buffer; the rest is read into a large one.
	send(10 << 10)
	read(9)
	if r.large != nil || !r.big {
		t.Fatalf("after the burst's first read: holds a large buffer %v, reads large next %v", r.large != nil, r.big)
	}
	read(smallReadSize - 9 + 1)
	if r.large == nil {
		t.Fatal("the burst's second read did not use a large buffer")
	}
	read(10<<10 - smallReadSize - 1)
	if r.large != nil {
		t.Fatal("a read-out large buffer is still held")
	}

	// After a burst, a read that brings little goes back to small.
	send(100)
	read(100)
	send(100)
	read(100)
	if r.large != nil || r.big {
		t.Fatalf("after quiet reads: holds a large buffer %v, reads large next %v", r.large != nil, r.big)
	}
	pw.Close()
	if _, err := r.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("at the end: %v, want EOF", err)
	}
}

// An error that comes with bytes is returned after them, once.
func TestSessionReaderErrorAfterData(t *testing.T) {
	boom := errors.New("boom")
	r := newSessionReader(&oneShot{data: []byte("abc"), err: boom}, 16<<10)
	b := make([]byte, 10)
	if n, err := r.Read(b); n != 3 || err != nil {
		t.Fatalf("first read: %d, %v", n, err)
	}
	if _, err := r.Read(b); err != boom {
		t.Fatalf("second read: %v, want boom", err)
	}
}

type oneShot struct {
	data []byte
	err  error
	done bool
}

func (o *oneShot) Read(p []byte) (int, error) {
	if o.done {
		return 0, io.EOF
	}
	o.done = true
	return copy(p, o.data), o.err
}

// The session's reader allocates nothing per read once warm.
func TestSessionReaderAllocs(t *testing.T) {
	src := &chunkReader{r: zeros{}, rng: rand.New(rand.NewPCG(3, 4))}
	r := newSessionReader(src, 16<<10)
	p := make([]byte, 9)
	q := make([]byte, 8<<10)
	allocs := testing.AllocsPerRun(1000, func() {
		io.ReadFull(r, p)
		io.ReadFull(r, q)
	})
	if allocs > 0 {
		t.Fatalf("%v allocations per two reads", allocs)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }
