package spdy

import (
	"encoding/binary"
	"math/bits"
)

// encoder is a small zlib compressor for header blocks. It keeps one zlib
// stream across all blocks of a session, as SPDY requires (§2.6.10.1): a zlib
// header with FDICT and the dictionary's Adler-32, then per block one
// non-final fixed-Huffman deflate block of LZ77 matches against the recent
// history, ended by a sync flush (an empty stored block, 00 00 ff ff) so that
// the peer can inflate each block as it arrives. No trailer is ever written,
// so no running Adler-32 is kept.
//
// The history starts with the dictionary; match distances never exceed
// encWindow. The whole state is about 6 KiB, against 0.7-1.2 MB for a
// compress/zlib writer.
type encoder struct {
	hist  [encWindow]byte          // ring: absolute position p is at hist[p%encWindow]
	table [1 << encHashBits]uint16 // low 16 bits of the latest position per hash of 4 bytes
	pos   uint64                   // absolute position of the next byte to enter hist
	dict  []byte
	adler uint32 // dictionary id for the zlib header
	begun bool   // zlib header written

	bits  uint64 // pending output bits, LSB first
	nbits uint
}

const (
	encWindow   = 4 << 10 // the spec suggests a 2 KiB window (§2.6.10.1); 4 KiB holds the whole dictionary
	encHashBits = 10
	encMinMatch = 4
	encMaxMatch = 258
)

func newEncoder(v Version) *encoder {
	e := new(encoder)
	e.dict, e.adler = dictionary(v)
	return e
}

func encHash(b []byte) uint32 {
	return (binary.LittleEndian.Uint32(b) * 0x1e35a7bd) >> (32 - encHashBits)
}

// push appends b to the history ring.
func (e *encoder) push(b []byte) {
	for len(b) > 0 {
		n := copy(e.hist[e.pos%encWindow:], b)
		b = b[n:]
		e.pos += uint64(n)
	}
}

// appendBlock appends the compressed form of src, ended by a sync flush, to
// dst. The first call also writes the zlib header.
func (e *encoder) appendBlock(dst, src []byte) []byte {
	if !e.begun {
		e.begun = true
		d := e.dict
		if len(d) > encWindow {
			d = d[len(d)-encWindow:]
		}
		for i := 0; i+encMinMatch <= len(d); i++ {
			e.table[encHash(d[i:])] = uint16(i)
		}
		e.push(d)
		// CMF 0x78: deflate with a 32 KiB window; FLG 0xbb: FDICT and FCHECK.
		dst = append(dst, 0x78, 0xbb)
		dst = binary.BigEndian.AppendUint32(dst, e.adler)
	}
	// Block header: BFINAL 0, BTYPE 01 (fixed Huffman codes).
	dst = e.writeBits(dst, 0b010, 3)

	base := e.pos // absolute position of src[0]
	lit := 0      // src[:lit] has entered hist
	i := 0
	for i+encMinMatch <= len(src) {
		cur := base + uint64(i)
		h := encHash(src[i:])
		dist := (uint32(cur) - uint32(e.table[h])) & 0xffff
		e.table[h] = uint16(cur)
		n := 0
		// Stale entries alias to other positions; matchLen compares the
		// real bytes, so any distance it accepts is correct.
		if dist > 0 && dist <= encWindow && uint64(dist) <= cur {
			n = e.matchLen(src, i, dist, base)
		}
		if n < encMinMatch {
			dst = e.writeLiteral(dst, src[i])
			i++
			continue
		}
		dst = e.writeMatch(dst, n, dist)
		for j := i + 1; j < i+n && j+encMinMatch <= len(src); j++ {
			e.table[encHash(src[j:])] = uint16(base + uint64(j))
		}
		i += n
		if i-lit >= encWindow/2 {
			e.push(src[lit:i])
			lit = i
		}
	}
	for ; i < len(src); i++ {
		dst = e.writeLiteral(dst, src[i])
	}
	e.push(src[lit:])
	// End of block, then the sync flush: an empty stored block
	// (BFINAL 0, BTYPE 00, padding, LEN 0, NLEN 0xffff).
	dst = e.writeBits(dst, uint64(fixedLitCode[256]), uint(fixedLitLen[256]))
	dst = e.writeBits(dst, 0, 3)
	dst = e.flushBits(dst)
	return append(dst, 0x00, 0x00, 0xff, 0xff)
}

// matchLen returns how many bytes from src[i] on equal the bytes dist
// positions earlier. base is the absolute position of src[0]; positions from
// e.pos on have not entered hist yet and are read from src.
func (e *encoder) matchLen(src []byte, i int, dist uint32, base uint64) int {
	limit := min(len(src)-i, encMaxMatch)
	q := base + uint64(i) - uint64(dist)
	n := 0
	for ; n < limit; n++ {
		var b byte
		if q >= e.pos {
			b = src[q-base]
		} else {
			b = e.hist[q%encWindow]
		}
		if b != src[i+n] {
			break
		}
		q++
	}
	return n
}

func (e *encoder) writeBits(dst []byte, v uint64, n uint) []byte {
	e.bits |= v << e.nbits
	e.nbits += n
	if e.nbits >= 32 {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(e.bits))
		e.bits >>= 32
		e.nbits -= 32
	}
	return dst
}

// flushBits pads the pending bits to a byte boundary and appends them.
func (e *encoder) flushBits(dst []byte) []byte {
	for e.nbits > 0 {
		dst = append(dst, byte(e.bits))
		e.bits >>= 8
		e.nbits -= min(e.nbits, 8)
	}
	e.bits = 0
	return dst
}

func (e *encoder) writeLiteral(dst []byte, b byte) []byte {
	return e.writeBits(dst, uint64(fixedLitCode[b]), uint(fixedLitLen[b]))
}

// writeMatch writes a length/distance pair: 4 <= n <= 258, 1 <= dist <= 32768.
func (e *encoder) writeMatch(dst []byte, n int, dist uint32) []byte {
	lc := lengthCode[n]
	sym := 257 + int(lc)
	dst = e.writeBits(dst, uint64(fixedLitCode[sym]), uint(fixedLitLen[sym]))
	if x := lengthExtra[lc]; x > 0 {
		dst = e.writeBits(dst, uint64(n-int(lengthBase[lc])), uint(x))
	}
	var dc, dx uint32
	var dv uint32
	if dist <= 4 {
		dc = dist - 1
	} else {
		k := uint32(bits.Len32(dist-1)) - 1 // dist-1 has its top bit at k >= 2
		dc = 2*k + (dist-1)>>(k-1)&1
		dx = k - 1
		dv = (dist - 1) & (1<<dx - 1)
	}
	dst = e.writeBits(dst, uint64(bits.Reverse8(uint8(dc))>>3), 5)
	if dx > 0 {
		dst = e.writeBits(dst, uint64(dv), uint(dx))
	}
	return dst
}

var (
	lengthBase = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
		35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
		3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}

	lengthCode   [encMaxMatch + 1]uint8 // match length -> index into lengthBase
	fixedLitCode [288]uint16            // bit-reversed fixed Huffman codes (RFC 1951 §3.2.6)
	fixedLitLen  [288]uint8
)

func init() {
	for c := len(lengthBase) - 1; c >= 0; c-- {
		for n := int(lengthBase[c]); n <= encMaxMatch && lengthCode[n] == 0 && n < int(lengthBase[c])+1<<lengthExtra[c]; n++ {
			lengthCode[n] = uint8(c)
		}
	}
	for s := range fixedLitCode {
		var code, n uint16
		switch {
		case s < 144:
			code, n = 0x30+uint16(s), 8
		case s < 256:
			code, n = 0x190+uint16(s-144), 9
		case s < 280:
			code, n = uint16(s-256), 7
		default:
			code, n = 0xc0+uint16(s-280), 8
		}
		fixedLitCode[s] = bits.Reverse16(code) >> (16 - n)
		fixedLitLen[s] = uint8(n)
	}
}
