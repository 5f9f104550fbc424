package spdy

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
)

// zlibSink inflates the output of an encoder with compress/zlib, block by
// block, the way a peer does.
type zlibSink struct {
	in bytes.Buffer
	zr io.ReadCloser
	v  Version
}

func (s *zlibSink) inflate(t testing.TB, compressed []byte, n int) []byte {
	t.Helper()
	s.in.Write(compressed)
	if s.zr == nil {
		d, _ := dictionary(s.v)
		zr, err := zlib.NewReaderDict(&s.in, d)
		if err != nil {
			t.Fatalf("zlib header: %v", err)
		}
		s.zr = zr
	}
	out := make([]byte, n)
	if _, err := io.ReadFull(s.zr, out); err != nil {
		t.Fatalf("inflate %d bytes: %v", n, err)
	}
	return out
}

func realisticBlock(r *rand.Rand, i int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, ":status200 OK:versionHTTP/1.1content-typetext/html; charset=utf-8")
	fmt.Fprintf(&b, "content-length%d", r.IntN(100000))
	fmt.Fprintf(&b, "dateMon, 02 Jan 2006 15:04:%02d GMT", i%60)
	fmt.Fprintf(&b, "servernginx/1.2.3cache-controlmax-age=%d", r.IntN(1000))
	if i%3 == 0 {
		fmt.Fprintf(&b, "set-cookieid=%x; Path=/; HttpOnly", r.Uint64())
	}
	return b.Bytes()
}

func randomBlock(r *rand.Rand) []byte {
	var n int
	switch r.IntN(10) {
	case 0:
		n = r.IntN(40000) // larger than the history
	case 1, 2:
		n = r.IntN(10)
	default:
		n = r.IntN(2000)
	}
	b := make([]byte, n)
	switch r.IntN(3) {
	case 0: // binary
		for i := range b {
			b[i] = byte(r.Uint32())
		}
	case 1: // small alphabet, many matches
		for i := range b {
			b[i] = "abcab\x00"[r.IntN(6)]
		}
	default: // runs and repeats
		for i := range b {
			if i > 10 && r.IntN(4) != 0 {
				b[i] = b[i-1-r.IntN(10)]
			} else {
				b[i] = byte('a' + r.IntN(26))
			}
		}
	}
	return b
}

func TestEncoderRoundTrip(t *testing.T) {
	for _, v := range []Version{V2, V3} {
		t.Run(v.String(), func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(v)))
			e := newEncoder(v)
			s := &zlibSink{v: v}
			var out []byte
			for i := range 3000 {
				var src []byte
				if i%2 == 0 {
					src = realisticBlock(r, i)
				} else {
					src = randomBlock(r)
				}
				out = e.appendBlock(out[:0], src)
				got := s.inflate(t, out, len(src))
				if !bytes.Equal(got, src) {
					t.Fatalf("block %d (%d bytes): inflated differs", i, len(src))
				}
			}
		})
	}
}

func TestEncoderRatio(t *testing.T) {
	e := newEncoder(V3)
	r := rand.New(rand.NewPCG(2, 2))
	var sizes []int
	var raw int
	for i := range 10 {
		src := realisticBlock(r, i)
		raw = len(src)
		sizes = append(sizes, len(e.appendBlock(nil, src)))
	}
	t.Logf("raw %d bytes; compressed sizes %v", raw, sizes)
	for i, n := range sizes[1:] {
		if n*3 > raw {
			t.Errorf("block %d: got %d compressed bytes of %d; want under a third", i+1, n, raw)
		}
	}
}
