package spdy

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestInflateWindowBoundary sends thousands of header blocks compressed by
// compress/zlib with sync flushes, many of them ending exactly at (or a byte
// or two around) the end of the inflater's 32 KiB window. There Go's flate
// reader returns the block's last bytes before reading its end-of-block code
// and the sync-flush marker, which it reads with the next block: a reader
// that drops the unread end of a frame breaks here.
func TestInflateWindowBoundary(t *testing.T) {
	const window = 32 << 10
	r := rand.New(rand.NewPCG(3, 3))
	var wire, zbuf bytes.Buffer
	zw, err := zlib.NewWriterLevelDict(&zbuf, zlib.DefaultCompression, dictV3)
	if err != nil {
		t.Fatal(err)
	}
	const fixed = 4 + 4 + len("x-pad") + 4 // raw bytes besides the value
	pos := len(dictV3)                     // the inflater's window starts with the dictionary
	var want [][]HeaderField
	boundaries := 0
	for i := range 3000 {
		n := r.IntN(3000)
		if room := window - pos%window - fixed; room >= 0 && room < 8000 {
			n = room
			if i%4 == 0 {
				n = max(0, room+r.IntN(5)-2)
			}
			if n == room {
				boundaries++
			}
		}
		val := make([]byte, n)
		for j := range val {
			val[j] = byte('a' + r.IntN(26))
		}
		raw := nv(V3, "x-pad", string(val))
		zw.Write(raw)
		zw.Flush()
		id := StreamID(2*i + 1)
		b := binary.BigEndian.AppendUint32(nil, uint32(id))
		b = append(b, zbuf.Bytes()...)
		zbuf.Reset()
		h := []byte{0x80, 3, 0, byte(TypeHeaders), 0, 0, 0, 0}
		putLength((*[8]byte)(h), len(b))
		wire.Write(h)
		wire.Write(b)
		pos += len(raw)
		want = append(want, []HeaderField{{"x-pad", string(val)}})
	}
	if boundaries < 100 {
		t.Fatalf("only %d blocks end on the window boundary", boundaries)
	}
	f := readerFramer(V3, wire.Bytes())
	for i, w := range want {
		fr, err := f.ReadFrame()
		if err != nil {
			t.Fatalf("block %d: %v", i, err)
		}
		if got := fr.(*HeadersFrame).Header; !reflect.DeepEqual(got, w) {
			t.Fatalf("block %d: header differs", i)
		}
	}
}
