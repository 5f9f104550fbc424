package spdy

import (
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// maxInflateTail bounds the compressed bytes of one header block that the
// inflater has not consumed by the time the block's name/value data is
// complete: normally only the end-of-block code and the sync-flush marker.
const maxInflateTail = 256

// blockInput feeds the session's single inflate context. It implements
// io.ByteReader, so compress/flate reads it directly instead of through a
// bufio.Reader of its own that would read ahead and lose bytes between
// frames.
//
// Go's flate reader may hand over the last bytes of a header block when its
// 32 KiB window fills, before it has consumed the end of the deflate block
// and the sync-flush marker; it reads them at the start of the next block.
// So the unread end of each frame's compressed bytes is kept in tail, never
// dropped, and read before the next frame's bytes.
type blockInput struct {
	tail       [maxInflateTail]byte
	toff, tlen int
	cur        []byte // the current frame's compressed bytes; nil between frames
}

func (in *blockInput) ReadByte() (byte, error) {
	if in.toff < in.tlen {
		b := in.tail[in.toff]
		in.toff++
		return b, nil
	}
	if len(in.cur) > 0 {
		b := in.cur[0]
		in.cur = in.cur[1:]
		return b, nil
	}
	return 0, io.EOF
}

func (in *blockInput) Read(p []byte) (int, error) {
	n := copy(p, in.tail[in.toff:in.tlen])
	in.toff += n
	m := copy(p[n:], in.cur)
	in.cur = in.cur[m:]
	if n+m == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	return n + m, nil
}

// keep moves the unread bytes of the current frame into tail, so that the
// frame's buffer may be reused. It reports false if they do not fit.
func (in *blockInput) keep() bool {
	n := copy(in.tail[:], in.tail[in.toff:in.tlen])
	if n+len(in.cur) > len(in.tail) {
		return false
	}
	n += copy(in.tail[n:], in.cur)
	in.toff, in.tlen, in.cur = 0, n, nil
	return true
}

// inflater is the read side's zlib context, shared by all header blocks of
// the session (§2.6.10.1).
type inflater struct {
	in    blockInput
	fr    io.Reader // compress/flate reader; nil until the zlib header is read
	dict  []byte
	adler uint32
	err   error // once set, the context is lost; every later block fails
}

func newInflater(v Version) *inflater {
	z := new(inflater)
	z.dict, z.adler = dictionary(v)
	return z
}

var errNoHeaderBlock = errors.New("header block too short for the zlib header")

// begin starts inflating the compressed block b, which must stay unmodified
// until end.
func (z *inflater) begin(b []byte) error {
	if z.err != nil {
		return z.err
	}
	z.in.cur = b
	if z.fr != nil {
		return nil
	}
	var h [6]byte
	if _, err := io.ReadFull(&z.in, h[:2]); err != nil {
		return z.fail(errNoHeaderBlock)
	}
	cmf, flg := h[0], h[1]
	if cmf&0x0f != 8 || cmf>>4 > 7 || (uint16(cmf)<<8|uint16(flg))%31 != 0 {
		return z.fail(fmt.Errorf("bad zlib header %02x %02x", cmf, flg))
	}
	if flg&0x20 != 0 {
		if _, err := io.ReadFull(&z.in, h[2:6]); err != nil {
			return z.fail(errNoHeaderBlock)
		}
		// The dictionary is mandatory (§2.6.10.1); a stream without FDICT
		// simply never refers to it.
		if id := binary.BigEndian.Uint32(h[2:]); id != z.adler {
			return z.fail(fmt.Errorf("zlib dictionary id %#08x; want %#08x", id, z.adler))
		}
	}
	z.fr = flate.NewReaderDict(&z.in, z.dict)
	return nil
}

// read fills p with inflated bytes.
func (z *inflater) read(p []byte) error {
	if _, err := io.ReadFull(z.fr, p); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return z.fail(fmt.Errorf("header block: %w", err))
	}
	return nil
}

// end finishes the current block.
func (z *inflater) end() error {
	if z.err != nil {
		return z.err
	}
	if !z.in.keep() {
		return z.fail(fmt.Errorf("header block has over %d bytes after its name/value data", maxInflateTail))
	}
	return nil
}

func (z *inflater) fail(err error) error {
	z.err = &SessionError{Status: GoAwayProtocolError, Err: err}
	z.in.cur = nil
	return z.err
}
