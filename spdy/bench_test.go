package spdy

import (
	"bufio"
	"bytes"
	"io"
	"runtime"
	"strconv"
	"testing"
)

// typicalResponse is a SYN_REPLY header set as an HTTP/1.1 server sends it.
var typicalResponse = []HeaderField{
	{":status", "200 OK"},
	{":version", "HTTP/1.1"},
	{"cache-control", "private, max-age=0"},
	{"content-length", "5120"},
	{"content-type", "text/html; charset=utf-8"},
	{"date", "Mon, 02 Jan 2006 15:04:05 GMT"},
	{"server", "Apache/2.4.7 (Ubuntu)"},
	{"set-cookie", "session=8a1b2c3d4e5f; Path=/; HttpOnly\x00theme=dark; Path=/"},
	{"vary", "Accept-Encoding"},
}

func rawSize(hdr []HeaderField) int64 {
	n := 4
	for _, h := range hdr {
		n += 8 + len(h.Name) + len(h.Value)
	}
	return int64(n)
}

// loopReader returns the same bytes over and over.
type loopReader struct {
	b   []byte
	off int
}

func (r *loopReader) Read(p []byte) (int, error) {
	n := copy(p, r.b[r.off:])
	r.off = (r.off + n) % len(r.b)
	return n, nil
}

func BenchmarkWriteData(b *testing.B) {
	f := NewFramer(io.Discard, nil, V3)
	data := make([]byte, 4096)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := f.WriteData(1, 0, data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadData(b *testing.B) {
	for _, size := range []int{4096, 16384} {
		b.Run(byteSize(size), func(b *testing.B) {
			var buf bytes.Buffer
			NewFramer(&buf, nil, V3).WriteData(1, 0, make([]byte, size))
			f := NewFramer(nil, bufio.NewReaderSize(&loopReader{b: buf.Bytes()}, 64<<10), V3)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.ReadFrame(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func byteSize(n int) string {
	if n%1024 == 0 {
		return strconv.Itoa(n/1024) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}

func BenchmarkEncodeHeader(b *testing.B) {
	f := NewFramer(io.Discard, nil, V3)
	var dst []byte
	b.SetBytes(rawSize(typicalResponse))
	b.ReportAllocs()
	for b.Loop() {
		dst, _ = f.appendHeaderBlock(dst[:0], typicalResponse)
	}
	b.ReportMetric(float64(len(dst)), "B/block")
}

func BenchmarkWriteSynReply(b *testing.B) {
	f := NewFramer(io.Discard, nil, V3)
	fr := &SynReplyFrame{StreamID: 1, Header: typicalResponse}
	b.SetBytes(rawSize(typicalResponse))
	b.ReportAllocs()
	for b.Loop() {
		if err := f.WriteSynReply(fr); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeHeader(b *testing.B) {
	// A stream of SYN_REPLY frames over one compression context; when it
	// runs out, a new reader starts again from the first.
	const n = 10000
	var buf bytes.Buffer
	w := NewFramer(&buf, nil, V3)
	for i := range n {
		w.WriteSynReply(&SynReplyFrame{StreamID: StreamID(2*i + 1), Header: typicalResponse})
	}
	wire := buf.Bytes()
	var f *Framer
	left := 0
	b.SetBytes(rawSize(typicalResponse))
	b.ReportAllocs()
	for b.Loop() {
		if left == 0 {
			f, left = readerFramer(V3, wire), n
		}
		if _, err := f.ReadFrame(); err != nil {
			b.Fatal(err)
		}
		left--
	}
}

// BenchmarkHeapPerFramer measures the heap one framer keeps after it has
// written and read one header block: its inflate and deflate contexts and
// buffers.
func BenchmarkHeapPerFramer(b *testing.B) {
	var buf bytes.Buffer
	NewFramer(&buf, nil, V3).WriteSynReply(&SynReplyFrame{StreamID: 1, Header: typicalResponse})
	wire := buf.Bytes()
	const n = 100
	framers := make([]*Framer, n)
	readers := make([]bytes.Reader, n)
	var perFramer float64
	b.ReportAllocs()
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range framers {
			readers[i].Reset(wire)
			f := NewFramer(io.Discard, &readers[i], V3)
			if err := f.WriteSynReply(&SynReplyFrame{StreamID: 1, Header: typicalResponse}); err != nil {
				b.Fatal(err)
			}
			if _, err := f.ReadFrame(); err != nil {
				b.Fatal(err)
			}
			framers[i] = f
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perFramer = float64(after.HeapAlloc-before.HeapAlloc) / n
		clear(framers)
	}
	b.ReportMetric(perFramer, "B/framer")
}
